/* cmd_cert.c — `openum cert`: the certificate stores for people and
 * scripts (R6, R7, R8; DESIGN.md "The operator's interface").
 *
 *   cert list [--store personal|trusted|crl|requests]
 *   cert show ID
 *   cert new-selfsigned [--fqdn NAME] [--key ec|rsa2048|rsa3072] [--days N]
 *   cert request --fqdn NAME --out FILE [--key ec|rsa2048|rsa3072] [--force]
 *   cert import FILE [--trusted --yes] [--password-file F|-]
 *   cert export ID --out FILE [--format pem|der|pfx] [--with-key --password-file F]
 *                  [--legacy] [--force]
 *   cert remove ID [--force] [--yes]
 *   cert select
 *
 * ID: a unique prefix of the SHA-1 thumbprint or the SHA-256 of a
 * certificate or CRL, or of a pending request's id. Safety rules: trusting
 * a root shows its subject and SHA-256 and needs --yes, and a file holding
 * a private key is refused there; a CA certificate is never imported with
 * its key; a CRL is stored only when a trusted certificate signed it;
 * export never writes the key without --with-key and never replaces a file
 * without --force; removing the certificate in use needs --force;
 * passwords come from files that only their owner can read. */
#include "cert/cert.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/file.h"
#include "core/fqdn.h"
#include "core/str.h"
#include "directory/db.h"
#include "directory/directory.h"
#include "tls/tls.h"

#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

int om_cmd_cert(struct om_cli *cli, int argc, char **argv);

#define DAY_MS (86400 * (int64_t)1000)

#define CERT_TRUSTED                                                                       \
	"import --trusted adds a root to the trusted store: openum shows the subject\n"    \
	"and SHA-256 of each certificate and imports nothing unless --yes confirms\n"      \
	"that these are the roots to trust. A file with a private key is refused there.\n" \
	"A CRL is imported only when a trusted certificate signed it; a CA without a\n"    \
	"CRL here is not checked for revocation.\n"
#define CERT_ID                                                                                \
	"ID is a unique prefix of the SHA-1 thumbprint, or the SHA-256, of a certificate or\n" \
	"CRL; or of a pending request's id (`openum cert list --store requests`).\n"
#define CERT_RELOAD                                                                           \
	"Commands that change the certificate in use or the trusted store reload a running\n" \
	"server unless --no-reload.\n"
#define CERT_OUT                                                                               \
	"--out never replaces an existing file without --force, and never a device, FIFO or\n" \
	"symbolic link.\n"

static const char usage[] =
    "usage: openum cert list [--store personal|trusted|crl|requests]\n"
    "       openum cert show ID\n"
    "       openum cert new-selfsigned [--fqdn NAME] [--key ec|rsa2048|rsa3072] [--days N]\n"
    "                                  [--no-reload]\n"
    "       openum cert request --fqdn NAME --out FILE [--key ec|rsa2048|rsa3072] [--force]\n"
    "       openum cert import FILE [--trusted --yes] [--password-file F|-] [--no-reload]\n"
    "       openum cert export ID --out FILE [--format pem|der|pfx] [--with-key]\n"
    "                          [--password-file F|-] [--legacy] [--force]\n"
    "       openum cert remove ID [--force] [--yes] [--no-reload]\n"
    "       openum cert select\n"
    "\n"
    "The personal store holds this server's own certificates with their private\n"
    "keys; the one in use is presented to gateways over TLS. The trusted store\n"
    "holds the roots (a CA's certificate, or a gateway's self-signed one) that a\n"
    "gateway's certificate must chain to for mutual TLS, and the CRLs of those CAs.\n"
    "\n"
    "  list            the stores (or one: personal, trusted, crl, requests)\n"
    "  show            one certificate, CRL or request: names, thumbprints, dates, why\n"
    "  new-selfsigned  make a self-signed certificate (and key) in the personal store\n"
    "  request         make a key and a certificate request (CSR) to send to a CA\n"
    "  import          add a certificate with its key, or a CA's answer to `request`\n"
    "                  (PEM, DER, PKCS#12 .pfx/.p12, PKCS#7 .p7b chains)\n"
    "  export          write a certificate and chain for gateways (no key by default)\n"
    "  remove          delete a certificate, CRL or pending request (the one in use\n"
    "                  only with --force; a CRL only with --yes: what it revokes is\n"
    "                  accepted again)\n"
    "  select          show which certificate a secured start uses, and why\n"
    "\n" CERT_TRUSTED CERT_ID CERT_RELOAD CERT_OUT "\n"
    "`openum cert SUB --help` shows one sub-command.\n";

static const struct om_cli_sub_help sub_help[] = {
	{ "list", "The stores (or one: personal, trusted, crl, requests): each certificate\n"
	          "with its thumbprints, names, dates and whether it is in use.\n" },
	{ "show", "One certificate, CRL or request: names, thumbprints, dates, why it is or\n"
	          "is not used.\n\n" CERT_ID },
	{ "new-selfsigned",
	  "Makes a self-signed certificate (and key) in the personal store.\n\n" CERT_RELOAD },
	{ "request", "Makes a key and a certificate request (CSR) to send to a CA; import the\n"
	             "CA's answer with `openum cert import`.\n\n" CERT_OUT },
	{ "import", "Adds a certificate with its key, or a CA's answer to `request` (PEM, DER,\n"
	            "PKCS#12 .pfx/.p12, PKCS#7 .p7b chains).\n\n" CERT_TRUSTED CERT_RELOAD },
	{ "export", "Writes a certificate and its chain for gateways (no key unless\n"
	            "--with-key).\n\n" CERT_ID CERT_OUT },
	{ "remove",
	  "Deletes a certificate, CRL or pending request (the one in use only with\n"
	  "--force; a CRL only with --yes: what it revokes is accepted again).\n\n" CERT_ID
	      CERT_RELOAD },
	{ "select", "Shows which certificate a secured start uses, and why.\n" },
};

/* ===================== options ===================== */

struct opts {
	const char *pos[2];
	int npos;
	const char *store, *fqdn, *key, *days, *out, *format, *password_file;
	bool trusted, yes, with_key, legacy, force, no_reload;
};

/* Value options and flags; anything else starting with "--" is bad usage. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct {
		const char *name;
		size_t off;
	} vals[] = {
		{ "--store", offsetof(struct opts, store) },
		{ "--fqdn", offsetof(struct opts, fqdn) },
		{ "--key", offsetof(struct opts, key) },
		{ "--days", offsetof(struct opts, days) },
		{ "--out", offsetof(struct opts, out) },
		{ "--format", offsetof(struct opts, format) },
		{ "--password-file", offsetof(struct opts, password_file) },
	};
	static const struct {
		const char *name;
		size_t off;
	} flags[] = {
		{ "--trusted", offsetof(struct opts, trusted) },
		{ "--yes", offsetof(struct opts, yes) },
		{ "--with-key", offsetof(struct opts, with_key) },
		{ "--legacy", offsetof(struct opts, legacy) },
		{ "--force", offsetof(struct opts, force) },
		{ "--no-reload", offsetof(struct opts, no_reload) },
	};
	memset(o, 0, sizeof(*o));
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		bool done = false;
		if (strncmp(a, "--", 2) != 0 || strcmp(a, "-") == 0) {
			if (o->npos == 2) {
				om_cli_error("unexpected argument '%s'", a);
				return OM_EXIT_USAGE;
			}
			o->pos[o->npos++] = a;
			continue;
		}
		for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]) && !done; k++) {
			size_t n = strlen(vals[k].name);
			const char **slot = (const char **)((char *)o + vals[k].off);
			if (strcmp(a, vals[k].name) == 0) {
				if (i + 1 >= argc) {
					om_cli_error("%s needs a value", a);
					return OM_EXIT_USAGE;
				}
				*slot = argv[++i];
				done = true;
			} else if (strncmp(a, vals[k].name, n) == 0 && a[n] == '=') {
				*slot = a + n + 1;
				done = true;
			}
		}
		for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]) && !done; k++) {
			if (strcmp(a, flags[k].name) == 0) {
				*(bool *)((char *)o + flags[k].off) = true;
				done = true;
			}
		}
		if (!done && strcmp(a, "--json") == 0)
			done = true; /* handled by the caller */
		if (!done) {
			om_cli_error("unknown option '%s' (see: openum cert --help)", a);
			return OM_EXIT_USAGE;
		}
	}
	return OM_EXIT_OK;
}

/* Only the options a sub-command accepts may be present. */
static int only(const struct opts *o, const char *sub, int maxpos, const char *allowed)
{
	struct {
		const char *name;
		bool set;
	} all[] = {
		{ "--store", o->store != NULL },
		{ "--fqdn", o->fqdn != NULL },
		{ "--key", o->key != NULL },
		{ "--days", o->days != NULL },
		{ "--out", o->out != NULL },
		{ "--format", o->format != NULL },
		{ "--password-file", o->password_file != NULL },
		{ "--trusted", o->trusted },
		{ "--yes", o->yes },
		{ "--with-key", o->with_key },
		{ "--legacy", o->legacy },
		{ "--force", o->force },
		{ "--no-reload", o->no_reload },
	};
	if (o->npos > maxpos) {
		om_cli_error("cert %s: unexpected argument '%s'", sub, o->pos[maxpos]);
		return OM_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		char pat[40];
		snprintf(pat, sizeof(pat), " %s ", all[i].name);
		if (all[i].set && !strstr(allowed, pat)) {
			om_cli_error("cert %s does not take %s (see: openum cert --help)", sub,
			             all[i].name);
			return OM_EXIT_USAGE;
		}
	}
	return OM_EXIT_OK;
}

/* ===================== shared steps ===================== */

/* The directory (openum.db) of this command run: the pin and the server's
 * FQDN live there. Opened with the stores, closed by om_cmd_cert. */
static struct om_db *dir_db;

static int open_store(struct om_cli *cli, bool write, struct om_cert_store **s)
{
	int rc = om_cli_store_open(cli, write, &dir_db);
	if (rc != OM_EXIT_OK)
		return rc;
	int err = om_cert_store_open(cli->data_dir, s);
	if (err) {
		om_cli_error("cannot read the certificate stores in %s/certs: %s", cli->data_dir,
		             strerror(err));
		return OM_EXIT_FAIL;
	}
	return OM_EXIT_OK;
}

static int id_error(const char *id, int err)
{
	switch (err) {
	case EINVAL:
		om_cli_error(
		    "'%s' is not a thumbprint: give hex digits of the SHA-1 or the SHA-256 "
		    "(see: openum cert list)",
		    id);
		return OM_EXIT_USAGE;
	case EEXIST:
		om_cli_error("'%s' matches several certificates: give more digits", id);
		return OM_EXIT_FAIL;
	default:
		om_cli_error("no certificate matches '%s' (see: openum cert list)", id);
		return OM_EXIT_FAIL;
	}
}

static int find(const struct om_cert_store *s, const char *id, const struct om_cert **c)
{
	int err = om_cert_store_find(s, id, c);
	return err ? id_error(id, err) : OM_EXIT_OK;
}

/* What the server decides with: tls_security_level and fqdn from
 * openum.conf (their defaults when it cannot be read: the server would not
 * start with it anyway), the directory's fqdn over it, and the pin. */
struct policy {
	int level;
	char fqdn[256];
	char pin[128];
};

static void server_policy(struct om_cli *cli, struct policy *p)
{
	struct om_config *cfg = NULL;
	struct om_dir_server srv;
	struct om_dir_err e = { "" };
	char why[512];
	memset(p, 0, sizeof(*p));
	p->level = 2;
	if (om_config_load(cli->config_path, !cli->config_explicit, &cfg, why, sizeof(why)) == 0) {
		p->level = cfg->tls_security_level;
		snprintf(p->fqdn, sizeof(p->fqdn), "%s", cfg->fqdn);
		om_config_free(cfg);
	}
	if (dir_db && om_dir_server_get(dir_db, &srv, &e) == 0) {
		if (srv.fqdn[0])
			snprintf(p->fqdn, sizeof(p->fqdn), "%s", srv.fqdn);
		snprintf(p->pin, sizeof(p->pin), "%s", srv.pinned_certificate);
	}
}

/* The FQDN the server uses (dir_db open): `openum server set --fqdn` in
 * the directory, else fqdn from openum.conf (the host name by default). */
static int server_fqdn(struct om_cli *cli, char *buf, size_t len)
{
	struct om_dir_server srv;
	struct om_dir_err e = { "" };
	struct om_config *cfg = NULL;
	char why[512];
	if (dir_db && om_dir_server_get(dir_db, &srv, &e) == 0 && srv.fqdn[0]) {
		snprintf(buf, len, "%s", srv.fqdn);
		return OM_EXIT_OK;
	}
	if (om_config_load(cli->config_path, !cli->config_explicit, &cfg, why, sizeof(why)) != 0) {
		om_cli_error("%s (or give --fqdn NAME)", why);
		return OM_EXIT_FAIL;
	}
	snprintf(buf, len, "%s", cfg->fqdn);
	om_config_free(cfg);
	if (!*buf) {
		om_cli_error("no fqdn in %s: give --fqdn NAME", cli->config_path);
		return OM_EXIT_USAGE;
	}
	return OM_EXIT_OK;
}

/* The selection as a running server would make it now. */
static int current_selection(struct om_cli *cli, const struct om_cert_store *s,
                             struct om_cert_selection *sel)
{
	struct policy p;
	server_policy(cli, &p);
	struct om_cert_select_opts o = { .pin = p.pin, .fqdn = p.fqdn, .security_level = p.level };
	if (om_cert_select(s, &o, om_now_ms(), sel) != 0) {
		om_cli_error("out of memory");
		return OM_EXIT_FAIL;
	}
	return OM_EXIT_OK;
}

/* A pin kept as a prefix by an older version: resolved to the full SHA-1
 * before anything is added, so that no import can make it ambiguous. */
static void pin_full(const struct om_cert_store *s)
{
	struct om_dir_server srv, out;
	struct om_dir_err e = { "" };
	const struct om_cert *c;
	if (!dir_db || om_dir_server_get(dir_db, &srv, &e) != 0 || !srv.pinned_certificate[0])
		return;
	size_t hex = 0;
	for (const char *p = srv.pinned_certificate; *p; p++)
		hex += *p != ':';
	if (hex == 40 || hex == 64)
		return;
	if (om_cert_store_find_personal(s, srv.pinned_certificate, &c) == 0) {
		struct om_dir_server in;
		memset(&in, 0, sizeof(in));
		snprintf(in.pinned_certificate, sizeof(in.pinned_certificate), "%s", c->sha1);
		if (om_dir_server_set(dir_db, &in, OM_SRV_F_CERT, 0, &out, &e) == 0)
			om_cli_note("the pin %s is now the full thumbprint %s",
			            srv.pinned_certificate, c->sha1);
	}
}

static int reload(struct om_cli *cli, const struct opts *o)
{
	if (o->no_reload)
		return OM_EXIT_OK;
	return om_cli_reload(cli) == 0 ? OM_EXIT_OK : OM_EXIT_FAIL;
}

static int read_password(const char *file, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!file)
		return OM_EXIT_OK;
	return om_cli_read_secret(file, buf, len);
}

/* ===================== printing ===================== */

static void eku_text(const struct om_cert *c, char *buf, size_t len)
{
	if (!c->eku_present)
		snprintf(buf, len, "(none: any purpose)");
	else
		snprintf(buf, len, "%s%s%s", c->eku_server ? "serverAuth" : "",
		         c->eku_server && c->eku_client ? ", " : "",
		         c->eku_client ? "clientAuth" : "");
	if (c->eku_present && !c->eku_server && !c->eku_client)
		snprintf(buf, len, "(neither serverAuth nor clientAuth)");
}

static long long days_until(int64_t t, int64_t now)
{
	int64_t d = t - now;
	return (long long)(d >= 0 ? d / DAY_MS : -((-d + DAY_MS - 1) / DAY_MS));
}

static long long days_left(const struct om_cert *c, int64_t now)
{
	return days_until(c->not_after_ms, now);
}

/* Why a personal certificate is unusable (selection's verdict), or NULL
 * when it is usable. */
static const char *unusable(const struct om_cert_cand *cd)
{
	if (!cd)
		return NULL;
	switch (cd->verdict) {
	case OM_CERT_CHOSEN:
	case OM_CERT_RANKED_LOWER:
	case OM_CERT_NOT_PINNED:
		return NULL;
	default:
		return om_cert_verdict_str(cd->verdict);
	}
}

static const char *in_use_text(const struct om_cert *c, const struct om_cert_selection *sel)
{
	if (sel->chosen != c)
		return "no";
	return sel->pinned && !sel->pin_ambiguous ? "yes (pinned)" : "yes";
}

/* The trusted certificate's CRL in this store, or NULL. */
static const struct om_cert_crl *crl_of(const struct om_cert_store *s, const struct om_cert *t)
{
	for (size_t i = 0; i < om_cert_store_crl_count(s); i++) {
		const struct om_cert_crl *c = om_cert_store_crl_at(s, i);
		if (c->signed_by_trusted && !strcmp(c->signer_sha256, t->sha256))
			return c;
	}
	return NULL;
}

static void subject_of(X509 *x, char *buf, size_t len)
{
	X509_NAME_oneline(X509_get_subject_name(x), buf, (int)len);
}

static void print_cert(const struct om_cert_store *s, const struct om_cert *c,
                       const struct om_cert_selection *sel, int64_t now)
{
	char nb[40], na[40], eku[64], line[512];
	const struct om_cert_cand *cd = om_cert_selection_find(sel, c);
	om_time_format(c->not_before_ms, nb, sizeof(nb));
	om_time_format(c->not_after_ms, na, sizeof(na));
	eku_text(c, eku, sizeof(eku));
	printf("%s %s\n", c->where == OM_CERT_PERSONAL ? "personal" : "trusted", c->sha1);
	printf("  subject      %s\n", c->subject);
	printf("  SANs         %s\n", *c->sans ? c->sans : "(none)");
	printf("  issuer       %s\n", c->issuer);
	printf("  serial       %s\n", c->serial);
	printf("  SHA-1        %s\n", c->sha1);
	printf("  SHA-256      %s\n", c->sha256);
	printf("  not before   %s\n", nb);
	printf("  not after    %s (%lld days left)\n", na, days_left(c, now));
	printf("  kind         %s%s\n", c->self_signed ? "self-signed" : "CA-issued",
	       c->is_ca ? ", CA certificate" : "");
	printf("  key          %s%s\n", c->key_type,
	       c->where == OM_CERT_TRUSTED ? ""
	       : c->key                    ? ", private key present"
	                                   : ", NO private key");
	printf("  EKU          %s\n", eku);
	if (c->where == OM_CERT_PERSONAL) {
		const char *why = unusable(cd);
		printf("  in use       %s\n", in_use_text(c, sel));
		if (why)
			printf("  unusable     %s\n", why);
		if (cd && cd->detail[0])
			printf("  %-12s %s\n", why ? "why" : "note", cd->detail);
		if (cd && cd->chain) {
			for (int i = 0; i < sk_X509_num(cd->chain); i++) {
				subject_of(sk_X509_value(cd->chain, i), line, sizeof(line));
				printf("  sends[%d]     %s\n", i + 1, line);
			}
		} else {
			for (int i = 0; c->chain && i < sk_X509_num(c->chain); i++) {
				subject_of(sk_X509_value(c->chain, i), line, sizeof(line));
				printf("  chain[%d]     %s\n", i + 1, line);
			}
		}
	} else {
		const struct om_cert_crl *crl = crl_of(s, c);
		if (crl) {
			char nu[40];
			om_time_format(crl->next_update_ms, nu, sizeof(nu));
			printf("  CRL          %s, %zu revoked, next update %s%s\n", crl->sha1,
			       crl->nrevoked, crl->next_update_ms ? nu : "(none)",
			       crl->next_update_ms && crl->next_update_ms < now
			           ? " (STALE: its certificates are refused)"
			           : "");
		} else {
			printf("  CRL          none here: its certificates are not checked for "
			       "revocation\n");
		}
	}
}

static void print_crl(const struct om_cert_crl *c, int64_t now)
{
	char tu[40], nu[40];
	om_time_format(c->this_update_ms, tu, sizeof(tu));
	om_time_format(c->next_update_ms, nu, sizeof(nu));
	printf("crl %s\n", c->sha1);
	printf("  issuer       %s\n", c->issuer);
	printf("  SHA-1        %s\n", c->sha1);
	printf("  SHA-256      %s\n", c->sha256);
	printf("  this update  %s\n", tu);
	printf("  next update  %s%s\n", c->next_update_ms ? nu : "(none)",
	       c->next_update_ms && c->next_update_ms < now ? " (STALE: its CA's certificates are "
	                                                      "refused until a new one is imported)"
	                                                    : "");
	printf("  revoked      %zu\n", c->nrevoked);
	printf("  believed     %s\n",
	       c->signed_by_trusted ? "yes (signed by a trusted certificate)"
	                            : "no: no trusted certificate signed it (it is not used)");
}

static void print_request(const struct om_cert_request *r)
{
	char when[40];
	om_time_format(r->created_ms, when, sizeof(when));
	printf("request %s\n", r->id);
	printf("  subject      %s\n", r->subject[0] ? r->subject : "(CSR unreadable)");
	printf("  made         %s\n", when);
	printf("  waiting for  the certificate your CA issues: openum cert import FILE\n");
}

static void json_chain(struct om_buf *b, STACK_OF(X509) * chain)
{
	char line[512];
	om_buf_adds(b, "[");
	for (int i = 0; chain && i < sk_X509_num(chain); i++) {
		subject_of(sk_X509_value(chain, i), line, sizeof(line));
		if (i)
			om_buf_adds(b, ",");
		om_buf_json_str(b, line);
	}
	om_buf_adds(b, "]");
}

static void json_cert(struct om_buf *b, const struct om_cert_store *s, const struct om_cert *c,
                      const struct om_cert_selection *sel, int64_t now)
{
	char nb[40], na[40];
	const struct om_cert_cand *cd = om_cert_selection_find(sel, c);
	om_time_format(c->not_before_ms, nb, sizeof(nb));
	om_time_format(c->not_after_ms, na, sizeof(na));
	om_buf_adds(b, "{\"store\":");
	om_buf_json_str(b, c->where == OM_CERT_PERSONAL ? "personal" : "trusted");
	om_buf_adds(b, ",\"subject\":");
	om_buf_json_str(b, c->subject);
	om_buf_adds(b, ",\"sans\":");
	om_buf_json_str(b, c->sans);
	om_buf_adds(b, ",\"issuer\":");
	om_buf_json_str(b, c->issuer);
	om_buf_printf(b, ",\"serial\":\"%s\",\"sha1\":\"%s\",\"sha256\":\"%s\"", c->serial, c->sha1,
	              c->sha256);
	om_buf_printf(b, ",\"not_before\":\"%s\",\"not_after\":\"%s\",\"days_left\":%lld", nb, na,
	              days_left(c, now));
	om_buf_printf(b, ",\"self_signed\":%s,\"ca\":%s,\"key_type\":\"%s\",\"has_key\":%s",
	              c->self_signed ? "true" : "false", c->is_ca ? "true" : "false", c->key_type,
	              c->key ? "true" : "false");
	om_buf_printf(b, ",\"eku\":%s", c->eku_present ? "[" : "null");
	if (c->eku_present)
		om_buf_printf(b, "%s%s%s]", c->eku_server ? "\"serverAuth\"" : "",
		              c->eku_server && c->eku_client ? "," : "",
		              c->eku_client ? "\"clientAuth\"" : "");
	if (c->where == OM_CERT_PERSONAL) {
		om_buf_printf(b, ",\"in_use\":%s", sel->chosen == c ? "true" : "false");
		const char *why = unusable(cd);
		om_buf_printf(b, ",\"usable\":%s", why ? "false" : "true");
		if (why) {
			om_buf_adds(b, ",\"unusable\":");
			om_buf_json_str(b, why);
		}
		om_buf_adds(b, ",\"detail\":");
		om_buf_json_str(b, cd ? cd->detail : "");
		om_buf_adds(b, ",\"chain\":");
		json_chain(b, c->chain);
		om_buf_adds(b, ",\"sends\":");
		json_chain(b, cd ? cd->chain : NULL);
		om_buf_printf(b, ",\"chain_completed\":%s", cd && cd->completed ? "true" : "false");
	} else {
		const struct om_cert_crl *crl = crl_of(s, c);
		om_buf_adds(b, ",\"crl\":");
		if (crl)
			om_buf_printf(b, "\"%s\"", crl->sha1);
		else
			om_buf_adds(b, "null");
	}
	om_buf_adds(b, "}");
}

static void json_crl(struct om_buf *b, const struct om_cert_crl *c, int64_t now)
{
	char tu[40], nu[40];
	om_time_format(c->this_update_ms, tu, sizeof(tu));
	om_time_format(c->next_update_ms, nu, sizeof(nu));
	om_buf_adds(b, "{\"store\":\"crl\",\"issuer\":");
	om_buf_json_str(b, c->issuer);
	om_buf_printf(b,
	              ",\"sha1\":\"%s\",\"sha256\":\"%s\",\"this_update\":\"%s\","
	              "\"next_update\":%s%s%s,\"revoked\":%zu,\"stale\":%s,\"believed\":%s}",
	              c->sha1, c->sha256, tu, c->next_update_ms ? "\"" : "",
	              c->next_update_ms ? nu : "null", c->next_update_ms ? "\"" : "", c->nrevoked,
	              c->next_update_ms && c->next_update_ms < now ? "true" : "false",
	              c->signed_by_trusted ? "true" : "false");
}

static void json_request(struct om_buf *b, const struct om_cert_request *r)
{
	char when[40];
	om_time_format(r->created_ms, when, sizeof(when));
	om_buf_printf(b, "{\"store\":\"requests\",\"id\":\"%s\",\"subject\":", r->id);
	om_buf_json_str(b, r->subject);
	om_buf_printf(b, ",\"made\":\"%s\"}", when);
}

static int json_out(struct om_buf *b)
{
	const char *s = om_buf_cstr(b);
	if (!s) {
		om_buf_free(b);
		om_cli_error("out of memory");
		return OM_EXIT_FAIL;
	}
	printf("%s\n", s);
	om_buf_free(b);
	return OM_EXIT_OK;
}

/* ===================== list / show ===================== */

enum { ST_PERSONAL = 1, ST_TRUSTED = 2, ST_CRL = 4, ST_REQUESTS = 8 };

static int cmd_list(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	struct om_cert_selection sel;
	struct om_cert_request *reqs = NULL;
	size_t nreq = 0;
	int rc = only(o, "list", 0, " --store ");
	unsigned want = ST_PERSONAL | ST_TRUSTED | ST_CRL | ST_REQUESTS;
	int64_t now = om_now_ms();
	if (rc)
		return rc;
	if (o->store) {
		static const struct {
			const char *name;
			unsigned bit;
		} stores[] = { { "personal", ST_PERSONAL },
			       { "trusted", ST_TRUSTED },
			       { "crl", ST_CRL },
			       { "crls", ST_CRL },
			       { "requests", ST_REQUESTS } };
		want = 0;
		for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++)
			if (!strcmp(o->store, stores[i].name))
				want = stores[i].bit;
		if (!want) {
			om_cli_error("--store is personal, trusted, crl or requests, not '%s'",
			             o->store);
			return OM_EXIT_USAGE;
		}
	}
	rc = open_store(cli, false, &s);
	if (rc)
		return rc;
	rc = current_selection(cli, s, &sel);
	if (rc) {
		om_cert_store_free(s);
		return rc;
	}
	if ((want & ST_REQUESTS) && om_cert_requests_list(cli->data_dir, &reqs, &nreq) != 0)
		nreq = 0;
	struct om_buf b;
	om_buf_init(&b);
	om_buf_adds(&b, "[");
	int n = 0;
	for (int w = 0; w < 2; w++) {
		if (!(want & (w == OM_CERT_PERSONAL ? ST_PERSONAL : ST_TRUSTED)))
			continue;
		/* personal: in selection order; trusted: as stored. */
		size_t cnt = om_cert_store_count(s, (enum om_cert_where)w);
		for (size_t i = 0; i < cnt; i++) {
			const struct om_cert *c = w == OM_CERT_PERSONAL
			                              ? sel.cands[i].cert
			                              : om_cert_store_at(s, OM_CERT_TRUSTED, i);
			if (cli->json) {
				if (n)
					om_buf_adds(&b, ",");
				json_cert(&b, s, c, &sel, now);
			} else {
				if (n)
					printf("\n");
				print_cert(s, c, &sel, now);
			}
			n++;
		}
	}
	for (size_t i = 0; (want & ST_CRL) && i < om_cert_store_crl_count(s); i++) {
		const struct om_cert_crl *c = om_cert_store_crl_at(s, i);
		if (cli->json) {
			if (n)
				om_buf_adds(&b, ",");
			json_crl(&b, c, now);
		} else {
			if (n)
				printf("\n");
			print_crl(c, now);
		}
		n++;
	}
	for (size_t i = 0; i < nreq; i++) {
		if (cli->json) {
			if (n)
				om_buf_adds(&b, ",");
			json_request(&b, &reqs[i]);
		} else {
			if (n)
				printf("\n");
			print_request(&reqs[i]);
		}
		n++;
	}
	om_buf_adds(&b, "]");
	if (cli->json)
		rc = json_out(&b);
	else if (n == 0)
		printf("nothing%s (add a certificate: openum cert new-selfsigned, or openum cert "
		       "import FILE)\n",
		       o->store ? " in this store" : "");
	om_buf_free(&b);
	om_free(reqs);
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	return rc;
}

/* What an ID names: a certificate, a CRL or a pending request (exactly
 * one of them). */
struct target {
	const struct om_cert *cert;
	const struct om_cert_crl *crl;
	struct om_cert_request *reqs;
	size_t nreq, req;
	bool is_req;
};

static int resolve(struct om_cli *cli, const struct om_cert_store *s, const char *id,
                   struct target *t)
{
	memset(t, 0, sizeof(*t));
	int ec = om_cert_store_find(s, id, &t->cert);
	int el = om_cert_store_find_crl(s, id, &t->crl);
	int er = ENOENT;
	if (om_cert_requests_list(cli->data_dir, &t->reqs, &t->nreq) == 0)
		er = om_cert_request_find(t->reqs, t->nreq, id, &t->req);
	t->is_req = er == 0;
	int hits = (ec == 0) + (el == 0) + (er == 0);
	if (ec == EEXIST || el == EEXIST || er == EEXIST || hits > 1) {
		om_cli_error(
		    "'%s' matches several certificates, CRLs or requests: give more digits", id);
		return OM_EXIT_FAIL;
	}
	if (hits == 1)
		return OM_EXIT_OK;
	return id_error(id, ec == EINVAL && el == EINVAL ? EINVAL : ENOENT);
}

static int cmd_show(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	struct om_cert_selection sel = { 0 };
	struct target t = { 0 };
	int64_t now = om_now_ms();
	int rc = only(o, "show", 1, "");
	if (rc)
		return rc;
	if (o->npos != 1) {
		om_cli_error("cert show needs the certificate's ID (see: openum cert list)");
		return OM_EXIT_USAGE;
	}
	rc = open_store(cli, false, &s);
	if (!rc)
		rc = resolve(cli, s, o->pos[0], &t);
	if (!rc)
		rc = current_selection(cli, s, &sel);
	if (rc)
		goto out;
	struct om_buf b;
	om_buf_init(&b);
	if (t.cert) {
		if (cli->json)
			json_cert(&b, s, t.cert, &sel, now);
		else
			print_cert(s, t.cert, &sel, now);
	} else if (t.crl) {
		if (cli->json)
			json_crl(&b, t.crl, now);
		else
			print_crl(t.crl, now);
	} else {
		if (cli->json)
			json_request(&b, &t.reqs[t.req]);
		else
			print_request(&t.reqs[t.req]);
	}
	if (cli->json)
		rc = json_out(&b);
	om_buf_free(&b);
out:
	om_free(t.reqs);
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	return rc;
}

/* ===================== output files ===================== */

/* --out is checked before anything is made: an existing file needs
 * --force, and a device, FIFO, socket, directory or symbolic link is never
 * replaced (om_file_write_new checks again when writing). */
/* Why a file given with --out could not be written, with what --as-owner
 * changes: the file is written as the store's owner. */
static const char *out_hint(const struct om_cli *cli, int err)
{
	static char buf[160];
	struct passwd *pw;
	if (!cli->as_owner || (err != EACCES && err != EPERM))
		return "";
	pw = getpwuid(geteuid());
	snprintf(buf, sizeof(buf),
	         " (with --as-owner it is written as %s: give a folder %s can write)",
	         pw ? pw->pw_name : "the store's owner", pw ? pw->pw_name : "it");
	return buf;
}

static int out_path_ok(const struct opts *o)
{
	struct stat st;
	if (lstat(o->out, &st) != 0)
		return OM_EXIT_OK;
	if (S_ISREG(st.st_mode) && o->force)
		return OM_EXIT_OK;
	int err = S_ISREG(st.st_mode)                              ? EEXIST
	          : S_ISDIR(st.st_mode)                            ? EISDIR
	          : S_ISLNK(st.st_mode)                            ? ELOOP
	          : (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) ? ESPIPE
	                                                           : ENODEV;
	om_cli_error("cannot write %s: %s%s", o->out, om_file_strerror(err),
	             err == EEXIST ? "" : " (never replaced, even with --force)");
	return OM_EXIT_FAIL;
}

/* ---- revocation lists in an imported file ---- */

/* Every CRL of the file is checked before anything is written (R5: checked
 * before believed). also_trusted: the CA certificates this import is about
 * to trust. */
static int check_crls(const struct om_cert_store *s, struct om_cert_bundle *b,
                      STACK_OF(X509) * also_trusted, const char *file)
{
	int64_t now = om_now_ms();
	for (int i = 0; i < sk_X509_CRL_num(b->crls); i++) {
		X509_CRL *crl = sk_X509_CRL_value(b->crls, i);
		char issuer[512], when[40];
		X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
		int err = om_cert_crl_check(s, crl, now, also_trusted);
		switch (err) {
		case 0:
			continue;
		case ENOENT:
			om_cli_error(
			    "%s: the revocation list of %s is signed by no trusted "
			    "certificate: import that CA first (openum cert import CA-FILE "
			    "--trusted --yes). Nothing imported",
			    file, issuer);
			break;
		case EBADMSG:
			om_cli_error(
			    "%s: the revocation list names %s as its issuer, but that CA's "
			    "key does not verify its signature (forged, or another CA with "
			    "the same name). Nothing imported",
			    file, issuer);
			break;
		case ESTALE:
			om_time_format(om_cert_asn1_ms(X509_CRL_get0_nextUpdate(crl)), when,
			               sizeof(when));
			om_cli_error(
			    "%s: the revocation list of %s is stale: its next update was due "
			    "%s. Get the current one from the CA. Nothing imported",
			    file, issuer, when);
			break;
		case EAGAIN:
			om_time_format(om_cert_asn1_ms(X509_CRL_get0_lastUpdate(crl)), when,
			               sizeof(when));
			om_cli_error("%s: the revocation list of %s was issued in the future (%s): "
			             "check this server's clock. Nothing imported",
			             file, issuer, when);
			break;
		case ENOTSUP:
			om_cli_error("%s: the revocation list of %s is a delta CRL: openum checks "
			             "against the CA's complete CRL only; import that one. Nothing "
			             "imported",
			             file, issuer);
			break;
		case EALREADY: {
			const struct om_cert_crl *o = om_cert_store_crl_newer(s, crl);
			char mine[40];
			om_time_format(om_cert_asn1_ms(X509_CRL_get0_lastUpdate(crl)), mine,
			               sizeof(mine));
			if (o)
				om_time_format(o->this_update_ms, when, sizeof(when));
			om_cli_error(
			    "%s: the revocation list of %s issued %s is not newer than the "
			    "one here (%s, issued %s): an older list would hide the "
			    "revocations made since. Nothing imported",
			    file, issuer, mine, o ? o->sha1 : "?", o ? when : "?");
			break;
		}
		default:
			om_cli_error("%s: cannot check the revocation list of %s: %s", file, issuer,
			             strerror(err));
		}
		return OM_EXIT_FAIL;
	}
	return OM_EXIT_OK;
}

static int store_crls(struct om_cli *cli, struct om_cert_store *s, struct om_cert_bundle *b)
{
	for (int i = 0; i < sk_X509_CRL_num(b->crls); i++) {
		const struct om_cert_crl *c;
		char when[40];
		int err = om_cert_store_add_crl(s, sk_X509_CRL_value(b->crls, i), om_now_ms(), &c);
		if (err) {
			om_cli_error("could not store the revocation list: %s", strerror(err));
			return OM_EXIT_FAIL;
		}
		if (c->next_update_ms)
			om_time_format(c->next_update_ms, when, sizeof(when));
		else
			snprintf(when, sizeof(when), "none given");
		fprintf(cli->json ? stderr : stdout,
		        "revocation list %s of %s: %zu revoked, next update %s\n", c->sha1,
		        c->issuer, c->nrevoked, when);
		/* The CA's newest list is the one in force: the ones it replaces
		 * go (they would only be reported stale later). */
		for (size_t k = om_cert_store_crl_count(s); k-- > 0;) {
			const struct om_cert_crl *o = om_cert_store_crl_at(s, k);
			char sha1[41];
			if (o == c || !om_cert_store_crl_superseded(s, o))
				continue;
			snprintf(sha1, sizeof(sha1), "%s", o->sha1);
			om_time_format(o->this_update_ms, when, sizeof(when));
			if (om_cert_store_remove_crl(s, o) == 0)
				fprintf(cli->json ? stderr : stdout,
				        "  it replaces the revocation list %s (issued %s)\n", sha1,
				        when);
		}
	}
	return OM_EXIT_OK;
}

/* The revocation policy, said when it matters: a trusted CA without a CRL
 * here is not checked (docs/modules/tls.md). */
static void note_cas_without_crl(struct om_cli *cli, const struct om_cert_store *s)
{
	for (size_t i = 0; i < om_cert_store_count(s, OM_CERT_TRUSTED); i++) {
		const struct om_cert *t = om_cert_store_at(s, OM_CERT_TRUSTED, i);
		bool has = false;
		for (size_t k = 0; k < om_cert_store_crl_count(s) && !has; k++) {
			const struct om_cert_crl *c = om_cert_store_crl_at(s, k);
			has = c->signed_by_trusted && !strcmp(c->signer_sha256, t->sha256);
		}
		if (!has)
			fprintf(cli->json ? stderr : stdout,
			        "note: no revocation list here for %s: the certificates it issues "
			        "are not checked for revocation (import its CRL to check them)\n",
			        t->subject);
	}
}

/* ---- what a trust change does to the certificate the server presents ---- */

/* The certificate in use before a change of the trusted store or of its
 * CRLs, by thumbprint (the store's objects may go with the change). */
struct in_use_before {
	char sha1[41];
	bool valid;
	bool self_signed;
	char anchor[512]; /* what gateways must trust for it: the name of its root */
};

/* The name of what a gateway must have in its trusted store to accept c:
 * c itself when self-signed, else the issuer of the top of the chain it
 * sends (the root, or the intermediate the trusted store ends with). */
static void anchor_of(const struct om_cert *c, const struct om_cert_cand *cd, char *buf, size_t len)
{
	if (c->self_signed) {
		snprintf(buf, len, "%s", c->subject);
		return;
	}
	X509 *top = cd && cd->chain && sk_X509_num(cd->chain) > 0
	                ? sk_X509_value(cd->chain, sk_X509_num(cd->chain) - 1)
	                : c->x509;
	X509_NAME_oneline(X509_get_issuer_name(top), buf, (int)len);
}

static void in_use_take(struct om_cli *cli, const struct om_cert_store *s, struct in_use_before *b)
{
	struct om_cert_selection sel = { 0 };
	memset(b, 0, sizeof(*b));
	if (current_selection(cli, s, &sel) == 0 && sel.chosen) {
		snprintf(b->sha1, sizeof(b->sha1), "%s", sel.chosen->sha1);
		b->valid = !unusable(sel.cand);
		b->self_signed = sel.chosen->self_signed;
		anchor_of(sel.chosen, sel.cand, b->anchor, sizeof(b->anchor));
	}
	om_cert_selection_free(&sel);
}

/* After a certificate was added to the personal store: when the server
 * will now present another certificate that the gateways trusting the one
 * in use do not trust yet (a new self-signed one, or one of another root),
 * say so and how to switch only once they do (R7: the pin). */
static void swap_warning(struct om_cli *cli, const struct om_cert_store *s,
                         const struct in_use_before *b)
{
	struct om_cert_selection sel = { 0 };
	FILE *out = cli->json ? stderr : stdout;
	char anchor[512];
	if (!b->sha1[0] || !b->valid || current_selection(cli, s, &sel) != 0)
		return;
	const struct om_cert *c = sel.chosen;
	if (c && strcmp(c->sha1, b->sha1) != 0 && !unusable(sel.cand)) {
		anchor_of(c, sel.cand, anchor, sizeof(anchor));
		if (c->self_signed || b->self_signed || strcmp(anchor, b->anchor) != 0) {
			if (c->self_signed)
				fprintf(
				    out,
				    "warning: gateways that trust the certificate in use (%s) refuse "
				    "%s until it is in their trusted root store (openum cert export "
				    "%s --out FILE)\n",
				    b->sha1, c->sha1, c->sha1);
			else
				fprintf(
				    out,
				    "warning: gateways that trust the certificate in use (%s%s%s) "
				    "refuse %s until they trust %s\n",
				    b->sha1, b->self_signed ? ", self-signed" : ", under ",
				    b->self_signed ? "" : b->anchor, c->sha1, anchor);
			fprintf(out,
			        "  to keep the one in use until they do: openum server set "
			        "--certificate %s (and `auto` afterwards)\n",
			        b->sha1);
		}
	}
	om_cert_selection_free(&sel);
}

static const char *kind_text(const struct om_cert *c)
{
	return c->self_signed ? "self-signed: every gateway must have it in its trusted root store"
	                      : "CA-issued";
}

/* After a trusted certificate or a CRL was added or removed: a CRL that
 * revokes the server's own chain, or a root taken away, changes what every
 * gateway is shown — say so here, not only in the events of the reload. */
static void in_use_report(struct om_cli *cli, const struct om_cert_store *s,
                          const struct in_use_before *b)
{
	struct om_cert_selection sel = { 0 };
	FILE *out = cli->json ? stderr : stdout;
	if (current_selection(cli, s, &sel) != 0)
		return;
	const struct om_cert_cand *old = NULL;
	for (size_t i = 0; b->sha1[0] && i < sel.ncands; i++)
		if (!strcmp(sel.cands[i].cert->sha1, b->sha1))
			old = &sel.cands[i];
	const char *why = old ? unusable(old) : NULL;
	if (b->valid && old && why) {
		fprintf(out, "warning: the certificate in use %s can no longer be used: %s%s%s\n",
		        b->sha1, why, old->detail[0] ? ": " : "", old->detail);
		if (sel.chosen && sel.chosen != old->cert)
			fprintf(out, "warning: the server will present %s instead (%s)\n",
			        sel.chosen->sha1, kind_text(sel.chosen));
		else if (sel.chosen == old->cert)
			fprintf(out,
			        "warning: it is pinned: the server goes on presenting it (event "
			        "1125); gateways will refuse it\n");
		else
			fprintf(out,
			        "warning: no valid certificate is left: a running server "
			        "generates a self-signed one (auto_selfsigned = 1, event 1123) or "
			        "keeps this one (auto_selfsigned = 0)\n");
	} else if (sel.chosen && strcmp(sel.chosen->sha1, b->sha1) != 0 && !unusable(sel.cand)) {
		fprintf(out, "note: the server will present %s now (%s)\n", sel.chosen->sha1,
		        kind_text(sel.chosen));
	}
	om_cert_selection_free(&sel);
}

/* ===================== import ===================== */

/* A gateway's own self-signed certificate trusted as the seed's first
 * route says (om_tls_cert_is_device): when it is also a CA certificate
 * (what `openssl req -x509` makes by default), it is trusted for itself
 * only — certificates its key signs are refused, so it cannot vouch for
 * another gateway. Said before it is trusted. */
static void device_ca_warning(FILE *out, X509 *x)
{
	struct om_tls_names nm;
	char subj[256];
	if (!om_tls_cert_is_device(x) || X509_check_ca(x) == 0)
		return;
	om_tls_cert_subject(x, subj, sizeof(subj));
	if (om_tls_cert_names(x, &nm) != 0)
		memset(&nm, 0, sizeof(nm));
	fprintf(out,
	        "  note: this is a device's own certificate (it names %s%s) and also a CA "
	        "certificate: it is trusted for itself only; certificates its key signs are "
	        "refused, for any gateway's name. A gateway's certificate is better made with "
	        "basicConstraints CA:FALSE\n",
	        nm.n ? nm.v[0] : subj, nm.n > 1 ? ", ..." : "");
	om_tls_names_free(&nm);
	ERR_clear_error();
}

static int import_trusted(struct om_cli *cli, const struct opts *o, struct om_cert_store *s,
                          struct om_cert_bundle *b)
{
	int n = sk_X509_num(b->certs), nc = sk_X509_CRL_num(b->crls);
	FILE *out = cli->json ? stderr : stdout;
	for (int i = 0; i < n; i++) {
		X509 *x = sk_X509_value(b->certs, i);
		unsigned char md[32];
		unsigned int mdlen = 0;
		char line[512], sha[65];
		X509_NAME_oneline(X509_get_subject_name(x), line, sizeof(line));
		X509_digest(x, EVP_sha256(), md, &mdlen);
		for (unsigned j = 0; j < mdlen; j++)
			sprintf(sha + 2 * j, "%02x", md[j]);
		fprintf(out, "%s %s\n  subject  %s\n  SHA-256  %s\n",
		        o->yes ? "trusting" : "would trust", "certificate", line, sha);
		device_ca_warning(out, x);
	}
	if (nc)
		fprintf(out, "%s %d revocation list(s)\n", o->yes ? "adding" : "would add", nc);
	if (!o->yes) {
		om_cli_error("nothing imported: check the subject and SHA-256 above with the "
		             "issuer, then re-run with --yes to trust %s",
		             n + nc == 1 ? "it" : "them");
		return OM_EXIT_FAIL;
	}
	int rc = check_crls(s, b, b->certs, o->pos[0]);
	if (rc)
		return rc;
	for (int i = 0; i < n; i++) {
		const struct om_cert *c;
		int err = om_cert_store_add(s, OM_CERT_TRUSTED, sk_X509_value(b->certs, i), NULL,
		                            NULL, &c);
		if (err) {
			om_cli_error("could not store the certificate: %s", strerror(err));
			return OM_EXIT_FAIL;
		}
	}
	rc = store_crls(cli, s, b);
	if (rc)
		return rc;
	if (cli->json)
		printf("{\"ok\":true,\"trusted\":%d,\"crls\":%d}\n", n, nc);
	else
		printf("trusted %d certificate(s), %d revocation list(s)\n", n, nc);
	note_cas_without_crl(cli, s);
	return OM_EXIT_OK;
}

/* After a personal import: whether the server can use it, and why not. */
static void import_verdict(struct om_cli *cli, const struct om_cert *c,
                           const struct om_cert_selection *sel)
{
	const struct om_cert_cand *cd = om_cert_selection_find(sel, c);
	FILE *out = cli->json ? stderr : stdout;
	if (!cd)
		return;
	const char *why = unusable(cd);
	if (why)
		fprintf(out, "warning: the server cannot use it: %s%s%s\n", why,
		        cd->detail[0] ? ": " : "", cd->detail);
	else if (cd->detail[0])
		fprintf(out, "note: %s\n", cd->detail);
	if (!why)
		fprintf(out, "%s\n",
		        sel->chosen == c
		            ? "it is now the certificate the server uses"
		            : "valid; another certificate ranks first (see: openum cert "
		              "select)");
}

static int import_personal(struct om_cli *cli, const struct opts *o, struct om_cert_store *s,
                           struct om_cert_bundle *b)
{
	const struct om_cert *c;
	struct om_cert_import_report rep;
	int nc = sk_X509_CRL_num(b->crls);
	int rc = check_crls(s, b, NULL, o->pos[0]);
	if (rc)
		return rc;
	if (sk_X509_num(b->certs) == 0) {
		rc = store_crls(cli, s, b);
		if (rc)
			return rc;
		if (cli->json)
			printf("{\"ok\":true,\"crls\":%d}\n", nc);
		else
			printf("added %d revocation list(s)\n", nc);
		return OM_EXIT_OK;
	}
	pin_full(s);
	int err = om_cert_import_personal(s, b, &c, &rep);
	if (err == EKEYREJECTED) {
		om_cli_error("the private key in the file belongs to none of its certificates: "
		             "nothing imported");
		return OM_EXIT_FAIL;
	}
	if (err == EPERM) {
		om_cli_error("the file holds CA certificates and no private key: nothing imported. "
		             "To trust them: openum cert import FILE --trusted");
		return OM_EXIT_FAIL;
	}
	if (err == ENOTSUP) {
		om_cli_error(
		    "the file holds a CA certificate (basicConstraints CA:TRUE or keyUsage "
		    "keyCertSign) with its private key: nothing imported. A CA's private "
		    "key does not belong on a UM server: keep it on the CA, import this "
		    "server's own certificate and key, and the CA certificate alone with "
		    "--trusted. (A self-signed certificate made with `openssl req -x509` is "
		    "a CA certificate unless given -addext basicConstraints=CA:FALSE; "
		    "`openum cert new-selfsigned` makes a proper one.)");
		return OM_EXIT_FAIL;
	}
	if (err) {
		om_cli_error("could not store the certificate: %s", strerror(err));
		return OM_EXIT_FAIL;
	}
	rc = store_crls(cli, s, b);
	if (rc)
		return rc;
	struct om_cert_selection sel;
	rc = current_selection(cli, s, &sel);
	if (rc)
		return rc;
	FILE *out = cli->json ? stderr : stdout;
	if (!cli->json)
		printf("imported %s into the personal store\n  subject  %s\n  SHA-256  %s\n",
		       c->sha1, c->subject, c->sha256);
	if (rep.matched_request)
		fprintf(out, "matched to the key of the request made here\n");
	else if (rep.matched_stored)
		fprintf(out, "paired with the private key already stored for the same public key "
		             "(a certificate re-issued for it)\n");
	else if (c->key)
		fprintf(out, "with its private key%s\n",
		        b->legacy ? " (legacy PKCS#12 encryption)" : "");
	else
		fprintf(out, "no private key: the server cannot use it until its key is imported "
		             "(a PKCS#12 file, or the certificate issued for `openum cert "
		             "request`)\n");
	if (rep.nchain)
		fprintf(out, "chain: %d certificate(s) stored in issuer order\n", rep.nchain);
	else if (rep.kept_chain)
		fprintf(out, "no chain in the file: the chain stored before is kept\n");
	for (int i = 0; i < rep.ndropped && i < 4; i++)
		fprintf(out, "note: dropped %s: not in this certificate's chain\n", rep.dropped[i]);
	if (rep.ndropped > 4)
		fprintf(out, "note: dropped %d more certificates not in its chain\n",
		        rep.ndropped - 4);
	import_verdict(cli, c, &sel);
	if (cli->json) {
		struct om_buf jb;
		om_buf_init(&jb);
		json_cert(&jb, s, c, &sel, om_now_ms());
		rc = json_out(&jb);
	}
	om_cert_selection_free(&sel);
	return rc;
}

static int cmd_import(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	struct om_cert_bundle b = { 0 };
	char pw[1024];
	char *data = NULL;
	size_t len = 0;
	int rc = only(o, "import", 1, " --trusted --yes --password-file --no-reload ");
	if (rc)
		return rc;
	if (o->npos != 1) {
		om_cli_error("cert import needs the FILE to import");
		return OM_EXIT_USAGE;
	}
	if (o->yes && !o->trusted) {
		om_cli_error("--yes only confirms --trusted");
		return OM_EXIT_USAGE;
	}
	/* The file and its password are read with the caller's rights, before
	 * --as-owner drops them: the administrator's private files stay
	 * readable. */
	rc = read_password(o->password_file, pw, sizeof(pw));
	if (rc)
		return rc;
	int err = om_file_read(o->pos[0], OM_CERT_FILE_MAX, &data, &len);
	if (err) {
		om_cli_error("cannot read %s: %s", o->pos[0], om_file_strerror(err));
		rc = OM_EXIT_FAIL;
		goto out;
	}
	rc = open_store(cli, true, &s);
	if (rc)
		goto out;
	if (o->trusted && om_cert_has_pem_key(data, len)) {
		om_cli_error("%s holds a private key: a trusted root is imported without one. "
		             "Nothing imported (export the CA certificate alone, or import this "
		             "file without --trusted if it is this server's certificate)",
		             o->pos[0]);
		rc = OM_EXIT_FAIL;
		goto out;
	}
	err = om_cert_bundle_parse(data, len, o->password_file ? pw : NULL, &b);
	if (err == EACCES) {
		om_cli_error("cannot decrypt %s: %s", o->pos[0],
		             o->password_file ? "wrong password"
		                              : "it is protected: give --password-file F");
		rc = OM_EXIT_FAIL;
		goto out;
	}
	if (err == EBADMSG) {
		om_cli_error("the private key in %s is corrupt (it is not encrypted, and it cannot "
		             "be read): nothing imported",
		             o->pos[0]);
		rc = OM_EXIT_FAIL;
		goto out;
	}
	if (err == EILSEQ) {
		om_cli_error("%s: a certificate or revocation list in it is damaged (its private "
		             "key, if any, reads fine): nothing imported. Get the file again",
		             o->pos[0]);
		rc = OM_EXIT_FAIL;
		goto out;
	}
	if (err == ENOTSUP) {
		om_cli_error("%s needs OpenSSL's legacy provider (ossl-modules/legacy.so), which "
		             "cannot be loaded",
		             o->pos[0]);
		rc = OM_EXIT_FAIL;
		goto out;
	}
	if (err == ENOKEY) {
		om_cli_error("%s holds only a private key: import the certificate with it "
		             "(PEM with both, or PKCS#12)",
		             o->pos[0]);
		rc = OM_EXIT_FAIL;
		goto out;
	}
	if (err) {
		om_cli_error("%s is not a certificate file (PEM, DER, PKCS#12 or PKCS#7): %s",
		             o->pos[0], strerror(err));
		rc = OM_EXIT_FAIL;
		goto out;
	}
	if (o->trusted && b.had_key) {
		om_cli_error("%s holds a private key: a trusted root is imported without one. "
		             "Nothing imported",
		             o->pos[0]);
		rc = OM_EXIT_FAIL;
		goto out;
	}
	struct in_use_before before;
	bool trust_change = o->trusted || sk_X509_num(b.certs) == 0;
	in_use_take(cli, s, &before);
	rc = o->trusted ? import_trusted(cli, o, s, &b) : import_personal(cli, o, s, &b);
	if (!rc && trust_change)
		in_use_report(cli, s, &before);
	else if (!rc)
		swap_warning(cli, s, &before);
	if (!rc)
		rc = reload(cli, o);
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	om_cert_bundle_free(&b);
	om_free(data);
	om_cert_store_free(s);
	return rc;
}

/* The host-name rules every name openum takes follows (core/fqdn.h). */
static int fqdn_ok(const char *fqdn, const char *what)
{
	char why[160];
	if (om_fqdn_check(fqdn, OM_FQDN_MULTI_LABEL, why, sizeof(why)) == 0)
		return OM_EXIT_OK;
	om_cli_error("%s '%s' is not a fully qualified host name: %s", what, fqdn, why);
	return OM_EXIT_USAGE;
}

static int key_opt(const struct opts *o, enum om_cert_keytype *t)
{
	*t = OM_CERT_KEY_EC;
	if (o->key && om_cert_keytype_parse(o->key, t) != 0) {
		om_cli_error("--key is ec, rsa2048 or rsa3072, not '%s'", o->key);
		return OM_EXIT_USAGE;
	}
	return OM_EXIT_OK;
}

static int cmd_new_selfsigned(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	const struct om_cert *c;
	enum om_cert_keytype t;
	int days = OM_CERT_DEFAULT_DAYS;
	char host[256];
	const char *fqdn = o->fqdn;
	int rc = only(o, "new-selfsigned", 0, " --fqdn --key --days --no-reload ");
	if (!rc)
		rc = key_opt(o, &t);
	if (rc)
		return rc;
	if (o->days) {
		uint64_t v;
		if (om_str_to_u64(om_str_c(o->days), 36500, &v) != 0 || v == 0) {
			om_cli_error("--days is a number of days from 1 to 36500, not '%s'",
			             o->days);
			return OM_EXIT_USAGE;
		}
		days = (int)v;
	}
	rc = o->fqdn ? fqdn_ok(fqdn, "--fqdn") : OM_EXIT_OK;
	if (!rc)
		rc = open_store(cli, true, &s);
	if (rc)
		return rc;
	if (!fqdn) {
		/* The server's FQDN: `server set --fqdn`, else openum.conf's
		 * (itself the host name by default). */
		rc = server_fqdn(cli, host, sizeof(host));
		if (rc) {
			om_cert_store_free(s);
			return rc;
		}
		fqdn = host;
	}
	struct in_use_before before;
	in_use_take(cli, s, &before);
	int err = om_cert_store_new_selfsigned(s, fqdn, t, days, om_now_ms(), &c);
	if (err == EINVAL) {
		om_cli_error(
		    "'%s' is not a host name: give --fqdn with letters, digits, '-' and '.'", fqdn);
		om_cert_store_free(s);
		return OM_EXIT_USAGE;
	}
	if (err) {
		om_cli_error("could not create the certificate: %s", strerror(err));
		om_cert_store_free(s);
		return OM_EXIT_FAIL;
	}
	struct om_cert_selection sel;
	rc = current_selection(cli, s, &sel);
	if (!rc) {
		if (cli->json) {
			struct om_buf b;
			om_buf_init(&b);
			json_cert(&b, s, c, &sel, om_now_ms());
			rc = json_out(&b);
		} else {
			printf("created self-signed certificate %s for %s (%s, %d days)\n", c->sha1,
			       fqdn, c->key_type, days);
			printf("SHA-256 %s\n", c->sha256);
			import_verdict(cli, c, &sel);
		}
		swap_warning(cli, s, &before);
		om_cert_selection_free(&sel);
	}
	om_cert_store_free(s);
	return rc ? rc : reload(cli, o);
}

static int cmd_request(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	enum om_cert_keytype t;
	char *pem = NULL;
	size_t len;
	int rc = only(o, "request", 0, " --fqdn --key --out --force ");
	if (!rc)
		rc = key_opt(o, &t);
	if (rc)
		return rc;
	if (!o->fqdn || !o->out) {
		om_cli_error("cert request needs --fqdn NAME and --out FILE");
		return OM_EXIT_USAGE;
	}
	rc = fqdn_ok(o->fqdn, "--fqdn");
	if (!rc)
		rc = out_path_ok(o);
	if (!rc)
		rc = open_store(cli, true, &s);
	if (rc)
		return rc;
	char id[65];
	int err = om_cert_request_new(s, o->fqdn, t, &pem, &len, id);
	if (err == EINVAL) {
		om_cli_error(
		    "'%s' is not a host name: give --fqdn with letters, digits, '-' and '.'",
		    o->fqdn);
		rc = OM_EXIT_USAGE;
	} else if (err) {
		om_cli_error("could not create the request: %s", strerror(err));
		rc = OM_EXIT_FAIL;
	} else if ((err = om_file_write_new(o->out, pem, len, 0644, o->force)) != 0) {
		/* A request nobody received: its key goes too. */
		(void)om_cert_request_remove(om_cert_store_dir(s), id);
		om_cli_error("cannot write %s: %s%s; no request was kept", o->out,
		             om_file_strerror(err), out_hint(cli, err));
		rc = OM_EXIT_FAIL;
	} else if (cli->json) {
		printf("{\"ok\":true,\"out\":");
		struct om_buf b;
		om_buf_init(&b);
		om_buf_json_str(&b, o->out);
		printf("%s}\n", om_buf_cstr(&b) ? om_buf_cstr(&b) : "null");
		om_buf_free(&b);
	} else {
		printf("wrote the certificate request for %s to %s; its key stays in the store.\n"
		       "Have your CA sign it, then: openum cert import ISSUED-FILE\n",
		       o->fqdn, o->out);
	}
	om_free(pem);
	om_cert_store_free(s);
	return rc;
}

/* ===================== export ===================== */

static int cmd_export(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	const struct om_cert *c;
	enum om_cert_format f = OM_CERT_FMT_PEM;
	char pw[1024];
	char *data = NULL;
	size_t len = 0;
	int rc =
	    only(o, "export", 1, " --out --format --with-key --password-file --legacy --force ");
	if (rc)
		return rc;
	if (o->npos != 1 || !o->out) {
		om_cli_error("cert export needs the certificate's ID and --out FILE");
		return OM_EXIT_USAGE;
	}
	if (o->format && om_cert_format_parse(o->format, &f) != 0) {
		om_cli_error("--format is pem, der or pfx, not '%s'", o->format);
		return OM_EXIT_USAGE;
	}
	if (o->legacy && f != OM_CERT_FMT_PFX) {
		om_cli_error("--legacy only applies to --format pfx");
		return OM_EXIT_USAGE;
	}
	if (o->with_key && f == OM_CERT_FMT_DER) {
		om_cli_error("a DER file holds the certificate only: use --format pem or pfx with "
		             "--with-key");
		return OM_EXIT_USAGE;
	}
	if (o->with_key && f == OM_CERT_FMT_PFX && !o->password_file) {
		om_cli_error(
		    "a PKCS#12 file with the key needs a password: give --password-file F");
		return OM_EXIT_USAGE;
	}
	if (o->password_file && !o->with_key && f != OM_CERT_FMT_PFX) {
		om_cli_error("--password-file protects the key: it goes with --with-key");
		return OM_EXIT_USAGE;
	}
	rc = out_path_ok(o);
	if (!rc)
		rc = read_password(o->password_file, pw, sizeof(pw));
	if (rc)
		return rc;
	rc = open_store(cli, false, &s);
	if (!rc)
		rc = find(s, o->pos[0], &c);
	if (rc)
		goto out;
	if (o->with_key && !c->key) {
		om_cli_error("%s has no private key here: nothing to export with it", c->sha1);
		rc = OM_EXIT_FAIL;
		goto out;
	}
	int err =
	    om_cert_export(c, f, o->with_key, o->password_file ? pw : NULL, o->legacy, &data, &len);
	if (err) {
		om_cli_error("could not export %s: %s", c->sha1, strerror(err));
		rc = OM_EXIT_FAIL;
		goto out;
	}
	/* A file with a key is readable by its owner only. */
	err = om_file_write_new(o->out, data, len, o->with_key ? 0600 : 0644, o->force);
	if (err) {
		om_cli_error("cannot write %s: %s%s", o->out, om_file_strerror(err),
		             out_hint(cli, err));
		rc = OM_EXIT_FAIL;
		goto out;
	}
	if (cli->json)
		printf("{\"ok\":true,\"sha1\":\"%s\",\"with_key\":%s}\n", c->sha1,
		       o->with_key ? "true" : "false");
	else
		printf("exported %s to %s (%s%s%s)\n", c->sha1, o->out,
		       f == OM_CERT_FMT_PEM   ? "PEM"
		       : f == OM_CERT_FMT_DER ? "DER"
		                              : "PKCS#12",
		       o->legacy ? ", legacy RC2/3DES" : "",
		       o->with_key ? ", WITH the private key" : ", certificate only");
out:
	if (data) {
		OPENSSL_cleanse(data, len);
		om_free(data);
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	om_cert_store_free(s);
	return rc;
}

/* ===================== remove ===================== */

/* A yes from the person at the terminal (stdin and stderr both terminals),
 * else false: scripts say --yes. */
static bool confirmed_on_terminal(const char *question)
{
	char line[16];
	if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO))
		return false;
	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return !strcasecmp(line, "y") || !strcasecmp(line, "yes");
}

/* Removing a CRL widens trust: what it revokes is accepted again. Like
 * trusting a root (import --trusted), it is shown first and confirmed —
 * --yes, or a yes typed at the terminal. */
static int remove_crl(struct om_cli *cli, const struct opts *o, struct om_cert_store *s,
                      const struct om_cert_crl *c, const struct in_use_before *before)
{
	char sha1[41], issuer[512], nu[40];
	FILE *out = cli->json ? stderr : stdout;
	snprintf(sha1, sizeof(sha1), "%s", c->sha1);
	snprintf(issuer, sizeof(issuer), "%s", c->issuer);
	om_time_format(c->next_update_ms, nu, sizeof(nu));
	fprintf(out,
	        "%s the revocation list %s\n  issuer       %s\n  revoked      %zu "
	        "certificate(s)\n  next update  %s\n",
	        o->yes ? "removing" : "would remove", sha1, issuer, c->nrevoked,
	        c->next_update_ms ? nu : "(none)");
	if (!o->yes) {
		const struct om_cert_crl *newer = om_cert_store_crl_superseded(s, c);
		if (!newer)
			fprintf(out,
			        "  without it the certificates it revokes are accepted again, and "
			        "the CA's certificates are no longer checked for revocation\n");
		fflush(out);
		if (!confirmed_on_terminal("remove it?")) {
			om_cli_error(
			    "nothing removed: check the list above, then re-run with --yes "
			    "to remove it");
			return OM_EXIT_FAIL;
		}
	}
	int err = om_cert_store_remove_crl(s, c);
	if (err) {
		om_cli_error("could not remove the revocation list %s: %s", sha1, strerror(err));
		return OM_EXIT_FAIL;
	}
	if (cli->json)
		printf("{\"ok\":true,\"removed\":\"%s\",\"kind\":\"crl\"}\n", sha1);
	else
		printf("removed the revocation list %s of %s\n", sha1, issuer);
	in_use_report(cli, s, before);
	return reload(cli, o);
}

static int remove_request(struct om_cli *cli, const struct om_cert_request *r)
{
	int err = om_cert_request_remove(cli->data_dir, r->id);
	if (err) {
		om_cli_error("could not remove the request %s: %s", r->id, strerror(err));
		return OM_EXIT_FAIL;
	}
	if (cli->json)
		printf("{\"ok\":true,\"removed\":\"%s\",\"kind\":\"request\"}\n", r->id);
	else
		printf("removed the pending request %s (%s) and its key\n", r->id,
		       r->subject[0] ? r->subject : "?");
	return OM_EXIT_OK;
}

static int cmd_remove(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	struct om_cert_selection sel = { 0 };
	struct target t = { 0 };
	const struct om_cert *c, *pc = NULL;
	char sha1[41], subject[512];
	int ncrl = 0;
	int rc = only(o, "remove", 1, " --force --yes --no-reload ");
	if (rc)
		return rc;
	if (o->npos != 1) {
		om_cli_error("cert remove needs the certificate's ID (see: openum cert list)");
		return OM_EXIT_USAGE;
	}
	rc = open_store(cli, true, &s);
	if (!rc)
		rc = resolve(cli, s, o->pos[0], &t);
	if (rc)
		goto out;
	struct in_use_before before;
	in_use_take(cli, s, &before);
	if (t.crl) {
		rc = remove_crl(cli, o, s, t.crl, &before);
		goto out;
	}
	if (t.is_req) {
		rc = remove_request(cli, &t.reqs[t.req]);
		goto out;
	}
	c = t.cert;
	rc = current_selection(cli, s, &sel);
	if (rc)
		goto out;
	snprintf(sha1, sizeof(sha1), "%s", c->sha1);
	snprintf(subject, sizeof(subject), "%s", c->subject);
	bool was_trusted = c->where == OM_CERT_TRUSTED;
	bool pinned = sel.pinned && om_cert_store_find_personal(s, sel.pin, &pc) == 0 && pc == c;
	bool in_use = c->where == OM_CERT_PERSONAL && (sel.chosen == c || pinned);
	if (in_use && !o->force) {
		om_cli_error("%s is the certificate in use%s: removing it changes what the server "
		             "presents to every gateway. Nothing removed; use --force to remove it "
		             "anyway",
		             c->sha1, pinned ? " (pinned)" : "");
		rc = OM_EXIT_FAIL;
		goto out;
	}
	/* The pin goes first: a failure after it leaves the certificate in
	 * place and the order automatic, never a pin naming nothing. */
	if (pinned) {
		struct om_dir_server in, out_srv;
		struct om_dir_err e = { "" };
		memset(&in, 0, sizeof(in));
		if (om_dir_server_set(dir_db, &in, OM_SRV_F_CERT, 0, &out_srv, &e) != 0) {
			om_cli_error("could not clear the pin: %s. Nothing removed", e.msg);
			rc = OM_EXIT_FAIL;
			goto out;
		}
	}
	/* A trusted CA's CRLs go with it: nothing could believe them now. */
	for (size_t i = om_cert_store_crl_count(s); was_trusted && i-- > 0;) {
		const struct om_cert_crl *crl = om_cert_store_crl_at(s, i);
		if (crl->signed_by_trusted && !strcmp(crl->signer_sha256, c->sha256) &&
		    om_cert_store_remove_crl(s, crl) == 0)
			ncrl++;
	}
	int err = om_cert_store_remove(s, c);
	if (err) {
		om_cli_error("could not remove %s: %s", sha1, strerror(err));
		rc = OM_EXIT_FAIL;
		goto out;
	}
	if (cli->json)
		printf("{\"ok\":true,\"removed\":\"%s\",\"kind\":\"%s\",\"was_in_use\":%s,"
		       "\"unpinned\":%s,\"crls_removed\":%d}\n",
		       sha1, was_trusted ? "trusted" : "personal", in_use ? "true" : "false",
		       pinned ? "true" : "false", ncrl);
	else
		printf("removed %s %s (%s)%s%s\n", was_trusted ? "trusted" : "personal", sha1,
		       subject,
		       pinned   ? "; it was pinned: the pin is now auto"
		       : in_use ? "; it was in use"
		                : "",
		       ncrl ? "; its revocation list(s) removed too" : "");
	if (was_trusted)
		in_use_report(cli, s, &before);
	/* A trusted CA removed takes effect like one added: its gateways are
	 * refused at once (and open connections re-checked). */
	if (in_use || was_trusted)
		rc = reload(cli, o);
out:
	om_free(t.reqs);
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	return rc;
}

/* ===================== select ===================== */

static int cmd_select(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	struct om_cert_selection sel = { 0 };
	int64_t now = om_now_ms();
	int rc = only(o, "select", 0, " --no-reload ");
	if (!rc)
		rc = open_store(cli, false, &s);
	if (!rc)
		rc = current_selection(cli, s, &sel);
	if (rc)
		goto out;
	if (cli->json) {
		struct om_buf b;
		om_buf_init(&b);
		om_buf_printf(&b, "{\"chosen\":");
		if (sel.chosen)
			om_buf_printf(&b, "\"%s\"", sel.chosen->sha1);
		else
			om_buf_adds(&b, "null");
		om_buf_printf(&b, ",\"fqdn\":\"%s\",\"wrong_name\":%s", sel.fqdn,
		              sel.wrong_name ? "true" : "false");
		om_buf_printf(&b, ",\"pinned\":%s", sel.pinned ? "true" : "false");
		if (sel.pinned)
			om_buf_printf(&b, ",\"pin\":\"%s\",\"pin_valid\":%s", sel.pin,
			              sel.pin_found && sel.pin_verdict == OM_CERT_CHOSEN ? "true"
			                                                                 : "false");
		if (sel.cand) {
			om_buf_adds(&b, ",\"sends\":");
			json_chain(&b, sel.cand->chain);
		}
		om_buf_adds(&b, ",\"candidates\":[");
		for (size_t i = 0; i < sel.ncands; i++) {
			const struct om_cert_cand *cd = &sel.cands[i];
			const struct om_cert *c = cd->cert;
			char why[160] = "";
			if (cd->verdict == OM_CERT_RANKED_LOWER && sel.chosen)
				om_cert_rank_why(c, sel.chosen, why, sizeof(why));
			om_buf_printf(
			    &b, "%s{\"sha1\":\"%s\",\"kind\":\"%s\",\"verdict\":", i ? "," : "",
			    c->sha1, c->self_signed ? "self-signed" : "ca-issued");
			om_buf_json_str(&b, om_cert_verdict_str(cd->verdict));
			om_buf_adds(&b, ",\"detail\":");
			om_buf_json_str(&b, why[0] ? why : cd->detail);
			om_buf_printf(&b, ",\"rank\":%zu,\"days_left\":%lld}", i + 1,
			              days_left(c, now));
		}
		om_buf_adds(&b, "]}");
		rc = json_out(&b);
	} else {
		if (sel.chosen) {
			const struct om_cert *c = sel.chosen;
			printf("chosen %s  %s, %s, %lld days left%s\n", c->sha1, c->subject,
			       c->self_signed ? "self-signed" : "CA-issued", days_left(c, now),
			       sel.pinned && !sel.pin_ambiguous ? ", pinned" : "");
			for (int i = 0;
			     sel.cand && sel.cand->chain && i < sk_X509_num(sel.cand->chain); i++) {
				char line[512];
				subject_of(sk_X509_value(sel.cand->chain, i), line, sizeof(line));
				printf("  sends  %s\n", line);
			}
			if (sel.cand && sel.cand->completed)
				printf("  note: %s\n", sel.cand->detail);
			if (sel.wrong_name)
				printf(
				    "  ERROR: its SAN lacks this server's FQDN %s: chosen only because "
				    "no valid certificate carries it (event 1128)\n",
				    sel.fqdn);
			if (c->self_signed)
				printf("  note: self-signed: every gateway must have it in its "
				       "trusted root store\n");
			if (!c->eku_client)
				printf("  note: lacks clientAuth: gateways that check it refuse "
				       "our outgoing connections\n");
		}
		if (sel.pinned &&
		    (!sel.pin_found || sel.pin_ambiguous || sel.pin_verdict != OM_CERT_CHOSEN))
			printf("ERROR pinned certificate %s %s%s (the server raises event %d; fix: "
			       "openum server set --certificate THUMBPRINT|auto)\n",
			       sel.pin,
			       sel.pin_ambiguous
			           ? "matches several certificates: the automatic order "
			             "decides"
			       : sel.pin_found ? "is not valid: "
			                       : "is not in the personal store",
			       sel.pin_found && !sel.pin_ambiguous
			           ? om_cert_verdict_str(sel.pin_verdict)
			           : "",
			       OM_CERT_EV_PIN_INVALID);
		for (size_t i = 0; i < sel.ncands; i++) {
			const struct om_cert_cand *cd = &sel.cands[i];
			const struct om_cert *c = cd->cert;
			if (c == sel.chosen)
				continue;
			char more[600] = "";
			if (cd->verdict == OM_CERT_RANKED_LOWER && sel.chosen)
				om_cert_rank_why(c, sel.chosen, more, sizeof(more));
			else if (cd->detail[0])
				snprintf(more, sizeof(more), "%s", cd->detail);
			printf("lost   %s  %s, %s, %lld days left: %s%s%s\n", c->sha1, c->subject,
			       c->self_signed ? "self-signed" : "CA-issued", days_left(c, now),
			       om_cert_verdict_str(cd->verdict), more[0] ? ": " : "", more);
		}
		if (!sel.chosen && !sel.pinned)
			printf("no valid certificate: at a secured start the server generates a "
			       "self-signed one (auto_selfsigned), or run: openum cert "
			       "new-selfsigned\n");
	}
	if (!sel.chosen) {
		rc = OM_EXIT_FAIL;
		goto out;
	}
	rc = reload(cli, o);
out:
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	return rc;
}

/* ===================== dispatch ===================== */

int om_cmd_cert(struct om_cli *cli, int argc, char **argv)
{
	struct opts o;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? OM_EXIT_USAGE : OM_EXIT_OK;
	}
	if (om_cli_wants_sub_help(argc, argv, "cert", usage, sub_help,
	                          sizeof(sub_help) / sizeof(sub_help[0])))
		return OM_EXIT_OK;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return OM_EXIT_OK;
		}
		if (strcmp(argv[i], "--json") == 0)
			cli->json = true;
	}
	int rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc;
	static const struct {
		const char *name;
		int (*fn)(struct om_cli *cli, const struct opts *o);
	} subs[] = {
		{ "list", cmd_list },
		{ "show", cmd_show },
		{ "new-selfsigned", cmd_new_selfsigned },
		{ "request", cmd_request },
		{ "import", cmd_import },
		{ "export", cmd_export },
		{ "remove", cmd_remove },
		{ "select", cmd_select },
	};
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name) == 0) {
			rc = subs[i].fn(cli, &o);
			om_db_free(dir_db);
			dir_db = NULL;
			return rc;
		}
	}
	om_cli_error("unknown cert command '%s' (see: openum cert --help)", argv[1]);
	return OM_EXIT_USAGE;
}
