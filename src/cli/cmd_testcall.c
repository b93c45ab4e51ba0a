/* cmd_testcall.c — `openum test-connectivity`: proves a server's path the
 * way an IP gateway uses it (mutual TLS, SRTP, OPTIONS, a call, its media
 * and DTMF), step by step, like Exchange's Test-UMConnectivity. The work
 * is testcall/conntest.c; this file reads the options, the certificates
 * (files, or the store's personal and trusted certificates) and prints the
 * steps for people or as JSON (docs/modules/testcall.md names the
 * fields). Exit 0 when every step passed, 1 naming the failing step, 2 on
 * bad usage. */
#include "cert/cert.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/str.h"
#include "testcall/conntest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>

static const char usage[] =
    "usage: openum test-connectivity --server HOST[:PORT] [options]\n"
    "\n"
    "Places a test call to an openum server the way an IP gateway does and checks\n"
    "each step: resolve, connect, the TLS handshake (protocol, cipher, the server's\n"
    "certificate and name), OPTIONS, INVITE -> 200 (the security mode the server\n"
    "applied, the SRTP suite), RTP/SRTP from the server (authenticated, not\n"
    "silence), DTMF acknowledged by the server, BYE. For each step: the result,\n"
    "how long it took and, on failure, why and what to do. Exit 0 when every step\n"
    "passed, 1 when one failed (it is named), 2 on bad usage.\n"
    "\n"
    "The machine running the test must be a gateway the server trusts (its\n"
    "address over TCP, its certificate's name over TLS: `openum gateway list`).\n"
    "\n"
    "  --server HOST[:PORT]   the server (port: 5061 with --secured, else 5060)\n"
    "  --secured              mutual TLS (--secured=false: plain TCP, the default)\n"
    "  --media-secured        offer SRTP (RTP/SAVP with SDES keys), every suite or\n"
    "  --suite NAME           only this one (AES_CM_128_HMAC_SHA1_80, ..._32,\n"
    "                         AES_256_CM_HMAC_SHA1_80, AEAD_AES_128_GCM, AEAD_AES_256_GCM)\n"
    "  --cert F --key F       the gateway's certificate (PEM, with its chain) and key\n"
    "  --cert-thumbprint T    or a certificate of the store's personal certificates\n"
    "                         (SHA-1 thumbprint or a unique prefix: `openum cert list`)\n"
    "  --ca F                 the roots openum's certificate must chain to (PEM; default:\n"
    "                         the store's trusted certificates)\n"
    "  --tls-name NAME        the name openum's certificate must carry (default: HOST\n"
    "                         when it is a name)\n"
    "  --extension N          call mailbox N (default: the server's diagnostic extension\n"
    "                         openum-test, which answers with a short prompt and echoes\n"
    "                         digits); a test call is never delivered to a mailbox ...\n"
    "  --deliver              ... unless this is given (with --extension)\n"
    "  --dtmf SEQ             digits to send after the greeting (0-9 * # A-D, up to 32);\n"
    "                         each must be acknowledged by the server\n"
    "  --wav FILE             what the caller says (any WAV/FLAC/OGG, converted to\n"
    "                         8 kHz; up to 60 s); default: a 1.5 s tone\n"
    "  --timeout S            the longest wait of each step (default 10, 1-120)\n"
    "  --bind ADDR            our source address (a host with several)\n"
    "  --from NUMBER          the caller's number (default: test)\n"
    "  --verbose              every fact of every step, one a line\n"
    "  --json                 one JSON object (fields in docs/modules/testcall.md)\n";

struct tc_args {
	const char *server, *suite, *cert, *key, *thumb, *ca, *tls_name, *ext, *dtmf, *wav, *bind,
	    *from, *timeout;
	bool secured, media_secured, deliver, json, verbose;
};

/* A flag: "--name", "--name=true|false", "--name:true|false". 1 matched,
 * 0 not this flag, -1 a bad value. */
static int flag(const char *a, const char *name, bool *out)
{
	size_t n = strlen(name);
	if (strncmp(a, name, n))
		return 0;
	if (!a[n]) {
		*out = true;
		return 1;
	}
	if (a[n] != '=' && a[n] != ':')
		return 0;
	const char *v = a + n + 1;
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1") ||
	    !strcasecmp(v, "$true"))
		*out = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0") ||
	         !strcasecmp(v, "$false"))
		*out = false;
	else
		return -1;
	return 1;
}

static int parse(int argc, char **argv, struct tc_args *a)
{
	static const struct {
		const char *name;
		size_t off;
	} vals[] = {
		{ "--server", offsetof(struct tc_args, server) },
		{ "--suite", offsetof(struct tc_args, suite) },
		{ "--cert", offsetof(struct tc_args, cert) },
		{ "--key", offsetof(struct tc_args, key) },
		{ "--cert-thumbprint", offsetof(struct tc_args, thumb) },
		{ "--ca", offsetof(struct tc_args, ca) },
		{ "--tls-name", offsetof(struct tc_args, tls_name) },
		{ "--extension", offsetof(struct tc_args, ext) },
		{ "--dtmf", offsetof(struct tc_args, dtmf) },
		{ "--wav", offsetof(struct tc_args, wav) },
		{ "--bind", offsetof(struct tc_args, bind) },
		{ "--from", offsetof(struct tc_args, from) },
		{ "--timeout", offsetof(struct tc_args, timeout) },
	};
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		int f;
		if ((f = flag(s, "--secured", &a->secured)) ||
		    (f = flag(s, "--media-secured", &a->media_secured)) ||
		    (f = flag(s, "--deliver", &a->deliver)) || (f = flag(s, "--json", &a->json)) ||
		    (f = flag(s, "--verbose", &a->verbose))) {
			if (f < 0) {
				om_cli_error("%s: the value is true or false", s);
				return OM_EXIT_USAGE;
			}
			continue;
		}
		size_t k;
		for (k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
			size_t n = strlen(vals[k].name);
			const char **dst = (const char **)((char *)a + vals[k].off);
			if (!strcmp(s, vals[k].name)) {
				if (i + 1 >= argc) {
					om_cli_error("%s needs a value", s);
					return OM_EXIT_USAGE;
				}
				*dst = argv[++i];
				break;
			}
			if (!strncmp(s, vals[k].name, n) && s[n] == '=') {
				*dst = s + n + 1;
				break;
			}
		}
		if (k == sizeof(vals) / sizeof(vals[0])) {
			om_cli_error("unexpected argument '%s'; `openum test-connectivity --help` "
			             "lists the options",
			             s);
			return OM_EXIT_USAGE;
		}
	}
	return OM_EXIT_OK;
}

/* HOST, HOST:PORT, [V6]:PORT or a bare IPv6 address. */
static int split_server(const char *s, char *host, size_t hlen, unsigned *port)
{
	const char *colon = NULL;
	*port = 0;
	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		if (!e || (size_t)(e - s - 1) >= hlen || e == s + 1)
			return EINVAL;
		snprintf(host, hlen, "%.*s", (int)(e - s - 1), s + 1);
		if (e[1] == ':')
			colon = e + 1;
		else if (e[1])
			return EINVAL;
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* a bare IPv6 address */
		size_t n = colon ? (size_t)(colon - s) : strlen(s);
		if (!n || n >= hlen)
			return EINVAL;
		snprintf(host, hlen, "%.*s", (int)n, s);
	}
	if (colon) {
		char *end;
		long p = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || p < 1 || p > 65535)
			return EINVAL;
		*port = (unsigned)p;
	}
	for (const char *p = host; *p; p++)
		if (*p <= ' ' || *p == '/' || *p == '@')
			return EINVAL;
	return 0;
}

static bool is_address(const char *h)
{
	unsigned char b[16];
	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

/* A bounded PEM file: 0 or an exit code (message printed). */
static int pem_open(const char *path, const char *what, FILE **out)
{
	struct stat st;
	FILE *f = fopen(path, "r");
	if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (off_t)OM_CERT_FILE_MAX) {
		om_cli_error("%s %s: %s", what, path,
		             !f                     ? strerror(errno)
		             : !S_ISREG(st.st_mode) ? "not a regular file"
		                                    : "larger than 16 MiB");
		if (f)
			fclose(f);
		return OM_EXIT_FAIL;
	}
	*out = f;
	return 0;
}

struct creds {
	X509 *cert;
	STACK_OF(X509) * chain;
	EVP_PKEY *key;
	X509_STORE *ca;
	struct om_cert_store *store;
};

static void creds_free(struct creds *c)
{
	X509_free(c->cert);
	sk_X509_pop_free(c->chain, X509_free);
	EVP_PKEY_free(c->key);
	X509_STORE_free(c->ca);
	om_cert_store_free(c->store);
}

static int open_store(struct om_cli *cli, struct creds *c, const char *why)
{
	if (c->store)
		return 0;
	struct stat st;
	if (stat(cli->data_dir, &st) != 0) {
		om_cli_error("%s, and there is no store at %s (--data DIR)", why, cli->data_dir);
		return OM_EXIT_USAGE;
	}
	int rc = om_cli_store_check(cli, false);
	if (rc)
		return rc;
	if ((rc = om_cert_store_open(cli->data_dir, &c->store)) != 0) {
		om_cli_error("cannot read the certificate store of %s: %s", cli->data_dir,
		             strerror(rc));
		return OM_EXIT_FAIL;
	}
	return 0;
}

static int load_creds(struct om_cli *cli, const struct tc_args *a, struct creds *c)
{
	FILE *f;
	int rc;
	if (a->cert) {
		if ((rc = pem_open(a->cert, "--cert", &f)) != 0)
			return rc;
		c->cert = PEM_read_X509(f, NULL, NULL, NULL);
		c->chain = sk_X509_new_null();
		X509 *x;
		while (c->chain && (x = PEM_read_X509(f, NULL, NULL, NULL)))
			sk_X509_push(c->chain, x);
		fclose(f);
		ERR_clear_error();
		if (!c->cert) {
			om_cli_error("--cert %s: no PEM certificate in it", a->cert);
			return OM_EXIT_FAIL;
		}
		if ((rc = pem_open(a->key, "--key", &f)) != 0)
			return rc;
		c->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		ERR_clear_error();
		if (!c->key) {
			om_cli_error("--key %s: no unencrypted PEM private key in it", a->key);
			return OM_EXIT_FAIL;
		}
		if (X509_check_private_key(c->cert, c->key) != 1) {
			ERR_clear_error();
			om_cli_error("--key %s is not the key of --cert %s", a->key, a->cert);
			return OM_EXIT_FAIL;
		}
	} else {
		if ((rc = open_store(cli, c, "--cert-thumbprint reads the store's certificates")))
			return rc;
		const struct om_cert *pc = NULL;
		rc = om_cert_store_find_personal(c->store, a->thumb, &pc);
		if (rc) {
			om_cli_error(
			    "--cert-thumbprint %s: %s (`openum cert list` shows the personal "
			    "certificates)",
			    a->thumb,
			    rc == ENOENT   ? "no personal certificate has it"
			    : rc == EEXIST ? "several certificates start with it: give more"
			                   : "not a hexadecimal thumbprint");
			return rc == EINVAL ? OM_EXIT_USAGE : OM_EXIT_FAIL;
		}
		if (!pc->key) {
			om_cli_error("certificate %s has no private key in the store", pc->sha1);
			return OM_EXIT_FAIL;
		}
		c->cert = X509_dup(pc->x509);
		c->chain = pc->chain ? X509_chain_up_ref(pc->chain) : NULL;
		EVP_PKEY_up_ref(pc->key);
		c->key = pc->key;
	}
	if (a->ca) {
		if ((rc = pem_open(a->ca, "--ca", &f)) != 0)
			return rc;
		c->ca = X509_STORE_new();
		X509 *x;
		int n = 0;
		while (c->ca && (x = PEM_read_X509(f, NULL, NULL, NULL))) {
			X509_STORE_add_cert(c->ca, x);
			X509_free(x);
			n++;
		}
		fclose(f);
		ERR_clear_error();
		if (!n) {
			om_cli_error("--ca %s: no PEM certificate in it", a->ca);
			return OM_EXIT_FAIL;
		}
	} else {
		if ((rc = open_store(cli, c,
		                     "without --ca the server's certificate is checked against the "
		                     "store's trusted certificates")))
			return rc;
		if (om_cert_store_count(c->store, OM_CERT_TRUSTED) == 0) {
			om_cli_error("the store %s trusts no certificate: give --ca FILE (openum's "
			             "exported certificate or its root)",
			             cli->data_dir);
			return OM_EXIT_USAGE;
		}
		if ((rc = om_cert_store_x509(c->store, &c->ca)) != 0) {
			om_cli_error("cannot load the trusted certificates: %s", strerror(rc));
			return OM_EXIT_FAIL;
		}
	}
	return c->cert && c->key && c->ca ? 0 : OM_EXIT_FAIL;
}

/* ------------------------------------------------------------ output */

static void json_kv(struct om_buf *b, const struct om_conntest_step *s)
{
	om_buf_adds(b, "{");
	for (size_t k = 0; k < s->nkv; k++) {
		const struct om_conntest_kv *v = &s->kv[k];
		om_buf_printf(b, "%s", k ? "," : "");
		om_buf_json_str(b, v->key);
		om_buf_adds(b, ":");
		if (v->type == OM_CT_NUM)
			om_buf_printf(b, "%lld", (long long)v->num);
		else if (v->type == OM_CT_BOOL)
			om_buf_adds(b, v->num ? "true" : "false");
		else
			om_buf_json_str(b, v->str);
	}
	om_buf_adds(b, "}");
}

static const struct om_conntest_kv *kv(const struct om_conntest_step *s, const char *key)
{
	for (size_t k = 0; k < s->nkv; k++)
		if (!strcmp(s->kv[k].key, key))
			return &s->kv[k];
	return NULL;
}

static const char *kstr(const struct om_conntest_step *s, const char *key)
{
	const struct om_conntest_kv *v = kv(s, key);
	return v && v->type == OM_CT_STR ? v->str : "";
}

static long long knum(const struct om_conntest_step *s, const char *key)
{
	const struct om_conntest_kv *v = kv(s, key);
	return v && v->type != OM_CT_STR ? (long long)v->num : 0;
}

/* What a person wants to see of a step, on one line (--verbose: every
 * fact on a line of its own). */
static void summary(const struct om_conntest_step *s, char *b, size_t n)
{
	b[0] = '\0';
	switch (s->id) {
	case OM_CT_RESOLVE:
		snprintf(b, n, "%s%s%s", kstr(s, "host"),
		         strcmp(kstr(s, "host"), kstr(s, "address")) ? " -> " : "",
		         strcmp(kstr(s, "host"), kstr(s, "address")) ? kstr(s, "address") : "");
		break;
	case OM_CT_CONNECT:
		snprintf(b, n, "%s port %lld over %s, from %s", kstr(s, "address"), knum(s, "port"),
		         !strcmp(kstr(s, "transport"), "tls") ? "TLS" : "TCP",
		         kstr(s, "local_address"));
		break;
	case OM_CT_TLS:
		if (!kstr(s, "protocol")[0])
			break;
		snprintf(b, n,
		         "%s %s; server certificate %s, issued by %s, SHA-1 %s, valid until %s; "
		         "name %s: %s",
		         kstr(s, "protocol"), kstr(s, "cipher"), kstr(s, "server_subject"),
		         kstr(s, "server_issuer"), kstr(s, "server_sha1"),
		         kstr(s, "server_not_after"), kstr(s, "tls_name"),
		         knum(s, "name_ok") ? "ok" : "NOT carried");
		break;
	case OM_CT_OPTIONS:
		if (knum(s, "status"))
			snprintf(b, n, "%lld %s", knum(s, "status"), kstr(s, "reason_phrase"));
		break;
	case OM_CT_INVITE:
		if (!knum(s, "status"))
			snprintf(b, n, "%s", kstr(s, "request_uri"));
		else if (!kstr(s, "media")[0])
			snprintf(b, n, "%s: %lld %s", kstr(s, "request_uri"), knum(s, "status"),
			         kstr(s, "reason_phrase"));
		else
			snprintf(b, n, "%s: %lld %s; %s%s: %s + %s%s%s; media at %s (%s)",
			         kstr(s, "request_uri"), knum(s, "status"),
			         kstr(s, "reason_phrase"), kstr(s, "security_mode"),
			         kstr(s, "security_mode_source")[0] ? " (inferred)" : "",
			         !strcmp(kstr(s, "signalling"), "tls") ? "TLS" : "TCP",
			         kstr(s, "media"), kstr(s, "suite")[0] ? " " : "", kstr(s, "suite"),
			         kstr(s, "server_media"), kstr(s, "codec"));
		break;
	case OM_CT_MEDIA:
		snprintf(b, n,
		         "received %lld %s packets (%lld failed authentication): %.1f s of the "
		         "server's audio (its greeting and prompts), %.1f s of it voiced (not "
		         "silence), peak %lld dBov; sent %.1f s of the caller's audio",
		         knum(s, "packets_received"), kstr(s, "media"),
		         knum(s, "srtp_auth_failures"), knum(s, "audio_ms") / 1000.0,
		         knum(s, "voiced_ms") / 1000.0, knum(s, "peak_dbov"),
		         knum(s, "said_ms") / 1000.0);
		break;
	case OM_CT_DTMF:
		snprintf(b, n, "sent %s (%s), acknowledged %s", kstr(s, "digits"),
		         !strcmp(kstr(s, "method"), "info") ? "SIP INFO" : "RFC 4733",
		         kstr(s, "acknowledged")[0] ? kstr(s, "acknowledged") : "none");
		break;
	case OM_CT_BYE:
		if (knum(s, "server_hung_up"))
			snprintf(b, n, "the server hung up");
		else if (knum(s, "status"))
			snprintf(b, n, "%lld", knum(s, "status"));
		break;
	default:
		break;
	}
}

static bool verbose;

static void print_step(const struct om_conntest_step *s, void *arg)
{
	static const char *const label[] = { "not run", "ok", "FAILED", "skipped" };
	char line[1200];
	if (s->result == OM_CT_NOT_REACHED) {
		printf("  %-7s %s\n", label[0], s->name);
		return;
	}
	if (s->result == OM_CT_SKIPPED) {
		printf("  %-7s %-8s          %s\n", label[3], s->name, s->reason);
		return;
	}
	summary(s, line, sizeof(line));
	printf("  %-7s %-8s %6lld ms  %s\n", label[s->result], s->name, (long long)s->latency_ms,
	       line);
	for (size_t k = 0; verbose && k < s->nkv; k++) {
		const struct om_conntest_kv *v = &s->kv[k];
		if (v->type == OM_CT_NUM)
			printf("%29s%-20s %lld\n", "", v->key, (long long)v->num);
		else if (v->type == OM_CT_BOOL)
			printf("%29s%-20s %s\n", "", v->key, v->num ? "yes" : "no");
		else if (v->str[0])
			printf("%29s%-20s %s\n", "", v->key, v->str);
	}
	if (s->result == OM_CT_FAILED) {
		printf("%29swhy: %s\n", "", s->reason);
		if (s->action[0])
			printf("%29swhat to do: %s\n", "", s->action);
	}
	fflush(stdout);
}

int om_cmd_testcall(struct om_cli *cli, int argc, char **argv)
{
	struct tc_args a = { 0 };
	struct creds cr = { 0 };
	int16_t *audio = NULL;
	size_t audio_n = 0;
	char host[256], err[512];
	unsigned port;
	int rc;
	if (om_cli_wants_help(argc, argv, usage))
		return OM_EXIT_OK;
	if ((rc = parse(argc, argv, &a)) != 0)
		return rc;
	a.json = a.json || cli->json;
	if (!a.server) {
		om_cli_error("--server HOST[:PORT] is needed\n%s", usage);
		return OM_EXIT_USAGE;
	}
	if (split_server(a.server, host, sizeof(host), &port) != 0) {
		om_cli_error("--server %s: HOST, HOST:PORT or [IPv6]:PORT", a.server);
		return OM_EXIT_USAGE;
	}
	if (!port)
		port = a.secured ? 5061 : 5060;
	struct om_conntest_opts o = {
		.host = host,
		.port = (uint16_t)port,
		.secured = a.secured,
		.media_secured = a.media_secured,
		.extension = a.ext,
		.deliver = a.deliver,
		.dtmf = a.dtmf,
		.timeout_ms = 10000,
		.bind = a.bind,
		.from_user = a.from,
	};
	if (a.timeout) {
		char *end;
		long t = strtol(a.timeout, &end, 10);
		if (*end || t < 1 || t > 120) {
			om_cli_error("--timeout %s: seconds, 1 to 120", a.timeout);
			return OM_EXIT_USAGE;
		}
		o.timeout_ms = (int)t * 1000;
	}
	if (a.suite) {
		if (!a.media_secured) {
			om_cli_error("--suite goes with --media-secured");
			return OM_EXIT_USAGE;
		}
		o.suite = om_sdp_suite_parse(om_str_c(a.suite));
		if (!o.suite) {
			om_cli_error("--suite %s: one of AES_CM_128_HMAC_SHA1_80, "
			             "AES_CM_128_HMAC_SHA1_32, AES_256_CM_HMAC_SHA1_80, "
			             "AEAD_AES_128_GCM, AEAD_AES_256_GCM",
			             a.suite);
			return OM_EXIT_USAGE;
		}
	}
	if (a.deliver && !a.ext) {
		om_cli_error(
		    "--deliver needs --extension (the diagnostic extension has no mailbox)");
		return OM_EXIT_USAGE;
	}
	if (a.ext && (!a.ext[0] || strlen(a.ext) > 64 || strpbrk(a.ext, " @:;<>\"\\"))) {
		om_cli_error("--extension %s: a mailbox extension (digits)", a.ext);
		return OM_EXIT_USAGE;
	}
	if (a.dtmf && (!a.dtmf[0] || strlen(a.dtmf) > 32 ||
	               strspn(a.dtmf, "0123456789*#ABCD") != strlen(a.dtmf))) {
		om_cli_error("--dtmf %s: up to 32 of 0-9 * # A-D", a.dtmf);
		return OM_EXIT_USAGE;
	}
	if (a.from && (!a.from[0] || strlen(a.from) > 32 || strpbrk(a.from, " @:;<>\"\\"))) {
		om_cli_error("--from %s: a number", a.from);
		return OM_EXIT_USAGE;
	}
	if (a.bind && !is_address(a.bind)) {
		om_cli_error("--bind %s: a numeric address of this host", a.bind);
		return OM_EXIT_USAGE;
	}
	if (!a.secured && (a.cert || a.key || a.thumb || a.ca || a.tls_name)) {
		om_cli_error(
		    "--cert, --key, --cert-thumbprint, --ca and --tls-name go with --secured");
		return OM_EXIT_USAGE;
	}
	if (a.secured) {
		if ((a.cert != NULL) != (a.key != NULL) || (a.cert && a.thumb) ||
		    (!a.cert && !a.thumb)) {
			om_cli_error("--secured needs the gateway's certificate: --cert FILE --key "
			             "FILE, or --cert-thumbprint T (a personal certificate of the "
			             "store)");
			return OM_EXIT_USAGE;
		}
		o.tls_name = a.tls_name ? a.tls_name : is_address(host) ? NULL : host;
		if (!o.tls_name) {
			om_cli_error(
			    "--server %s is an address: give --tls-name, the name openum's "
			    "certificate carries (its fqdn)",
			    host);
			return OM_EXIT_USAGE;
		}
		if ((rc = load_creds(cli, &a, &cr)) != 0) {
			creds_free(&cr);
			return rc;
		}
		o.cert = cr.cert;
		o.chain = cr.chain;
		o.key = cr.key;
		o.ca = cr.ca;
	}
	if (a.wav) {
		if (om_conntest_load_audio(a.wav, 60, &audio, &audio_n, err, sizeof(err)) != 0) {
			om_cli_error("--wav %s", err);
			creds_free(&cr);
			return OM_EXIT_FAIL;
		}
		o.audio = audio;
		o.audio_samples = audio_n;
	}
	/* A hook for the project's tests only: an SRTP key that cannot work. */
	const char *hook = getenv("OPENUM_TEST_HOOK");
	o.hook_bad_srtp_key = hook && !strcmp(hook, "srtp-bad-key");
	if (!a.json) {
		printf("openum test-connectivity: %s port %u, %s, %s, extension %s%s\n", host, port,
		       a.secured ? "mutual TLS" : "TCP", a.media_secured ? "SRTP" : "RTP",
		       a.ext ? a.ext : OM_CONNTEST_EXTENSION " (diagnostic)",
		       a.ext ? a.deliver ? " (delivered)" : " (test call: not delivered)" : "");
		fflush(stdout);
		o.step_h = print_step;
		verbose = a.verbose;
	}
	struct om_conntest_report rep;
	int res = om_conntest_run(&o, &rep);
	if (a.json) {
		struct om_buf b;
		om_buf_init(&b);
		om_buf_printf(&b, "{\"result\":\"%s\",\"failed_step\":", res ? "failed" : "passed");
		if (rep.failed >= 0)
			om_buf_json_str(&b, rep.step[rep.failed].name);
		else
			om_buf_adds(&b, "null");
		om_buf_adds(&b, ",\"server\":");
		om_buf_json_str(&b, host);
		om_buf_printf(
		    &b, ",\"port\":%u,\"secured\":%s,\"media_secured\":%s,\"extension\":", port,
		    a.secured ? "true" : "false", a.media_secured ? "true" : "false");
		om_buf_json_str(&b, a.ext ? a.ext : OM_CONNTEST_EXTENSION);
		om_buf_printf(&b, ",\"deliver\":%s,\"steps\":[", a.deliver ? "true" : "false");
		for (int k = 0; k < OM_CT_NSTEPS; k++) {
			const struct om_conntest_step *s = &rep.step[k];
			om_buf_printf(&b, "%s{\"name\":", k ? "," : "");
			om_buf_json_str(&b, s->name);
			om_buf_printf(&b, ",\"result\":\"%s\",\"latency_ms\":%lld,\"reason\":",
			              om_conntest_result_name(s->result), (long long)s->latency_ms);
			om_buf_json_str(&b, s->reason);
			om_buf_adds(&b, ",\"action\":");
			om_buf_json_str(&b, s->action);
			om_buf_adds(&b, ",\"detail\":");
			json_kv(&b, s);
			om_buf_adds(&b, "}");
		}
		om_buf_adds(&b, "]}\n");
		fputs(om_buf_cstr(&b) ? om_buf_cstr(&b) : "{\"result\":\"failed\"}\n", stdout);
		om_buf_free(&b);
	} else if (res) {
		printf("FAILED at step %s: %s\n", rep.step[rep.failed].name,
		       rep.step[rep.failed].reason);
	} else {
		printf("passed: every step\n");
	}
	creds_free(&cr);
	om_free(audio);
	return res ? OM_EXIT_FAIL : OM_EXIT_OK;
}
