/* cmd_cert.c — `openum cert`: the certificate stores for people and
 * scripts (R6, R7; DESIGN.md "The operator's interface").
 *
 *   cert list [--store personal|trusted]
 *   cert show ID
 *   cert new-selfsigned [--fqdn NAME] [--key ec|rsa2048|rsa3072] [--days N]
 *   cert request --fqdn NAME --out FILE [--key ec|rsa2048|rsa3072]
 *   cert import FILE [--trusted --yes] [--password-file F|-]
 *   cert export ID --out FILE [--format pem|der|pfx] [--with-key --password-file F] [--legacy]
 *   cert remove ID [--force]
 *   cert select
 *
 * ID: a unique prefix of the SHA-1 thumbprint or the SHA-256. Safety rules:
 * trusting a root shows its subject and SHA-256 and needs --yes, and a file
 * holding a private key is refused there; export never writes the key
 * without --with-key; removing the certificate in use needs --force;
 * passwords come from files that only their owner can read. */
#include "cert/cert.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/file.h"
#include "core/fqdn.h"
#include "core/str.h"
#include "directory/db.h"
#include "directory/directory.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

int om_cmd_cert(struct om_cli *cli, int argc, char **argv);

#define DAY_MS (86400 * (int64_t)1000)

static const char usage[] =
    "usage: openum cert list [--store personal|trusted]\n"
    "       openum cert show ID\n"
    "       openum cert new-selfsigned [--fqdn NAME] [--key ec|rsa2048|rsa3072] [--days N]\n"
    "       openum cert request --fqdn NAME --out FILE [--key ec|rsa2048|rsa3072] [--force]\n"
    "       openum cert import FILE [--trusted --yes] [--password-file F|-]\n"
    "       openum cert export ID --out FILE [--format pem|der|pfx] [--with-key]\n"
    "                          [--password-file F|-] [--legacy] [--force]\n"
    "       openum cert remove ID [--force]\n"
    "       openum cert select\n"
    "\n"
    "The personal store holds this server's own certificates with their private\n"
    "keys; the one in use is presented to gateways over TLS. The trusted store\n"
    "holds the roots (a CA's certificate, or a gateway's self-signed one) that a\n"
    "gateway's certificate must chain to for mutual TLS.\n"
    "\n"
    "  list            both stores (or one), the certificate in use marked\n"
    "  show            one certificate: names, issuer, serial, thumbprints, dates\n"
    "  new-selfsigned  make a self-signed certificate (and key) in the personal store\n"
    "  request         make a key and a certificate request (CSR) to send to a CA\n"
    "  import          add a certificate with its key, or a CA's answer to `request`\n"
    "  export          write a certificate and chain for gateways (no key by default)\n"
    "  remove          delete a certificate (the one in use only with --force)\n"
    "  select          show which certificate a secured start uses, and why\n"
    "\n"
    "import --trusted adds a root to the trusted store: openum shows the subject\n"
    "and SHA-256 of each certificate and imports nothing unless --yes confirms\n"
    "that these are the roots to trust. A file with a private key is refused there.\n"
    "ID is a unique prefix of the SHA-1 thumbprint, or the SHA-256.\n"
    "Commands that change the certificate in use reload a running server unless --no-reload.\n"
    "--out never replaces an existing file without --force, and never a device, FIFO or\n"
    "symbolic link.\n";

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

/* The directory (openum.db) of this command run: the pin lives there
 * (`openum server set --certificate`). Opened with the stores, closed by
 * om_cmd_cert. */
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

static int find(const struct om_cert_store *s, const char *id, const struct om_cert **c)
{
	int err = om_cert_store_find(s, id, c);
	switch (err) {
	case 0:
		return OM_EXIT_OK;
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

/* tls_security_level from openum.conf (its default when the file cannot be
 * read: the server would not start with it anyway). */
static int security_level(struct om_cli *cli)
{
	struct om_config *cfg = NULL;
	char why[512];
	int level = 2;
	if (om_config_load(cli->config_path, !cli->config_explicit, &cfg, why, sizeof(why)) == 0) {
		level = cfg->tls_security_level;
		om_config_free(cfg);
	}
	return level;
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

/* The pinned certificate from the directory ("" = auto). */
static int read_pin(struct om_dir_server *srv)
{
	struct om_dir_err e = { "" };
	if (om_dir_server_get(dir_db, srv, &e) != 0) {
		om_cli_error("cannot read this server's settings from the directory: %s", e.msg);
		return OM_EXIT_FAIL;
	}
	return OM_EXIT_OK;
}

/* The selection as a running server would make it now. */
static int current_selection(struct om_cli *cli, const struct om_cert_store *s,
                             struct om_cert_selection *sel)
{
	struct om_dir_server srv;
	int rc = read_pin(&srv);
	if (rc)
		return rc;
	if (om_cert_select(s, srv.pinned_certificate, om_now_ms(), security_level(cli), sel) != 0) {
		om_cli_error("out of memory");
		return OM_EXIT_FAIL;
	}
	return OM_EXIT_OK;
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

static long long days_left(const struct om_cert *c, int64_t now)
{
	int64_t d = c->not_after_ms - now;
	return (long long)(d >= 0 ? d / DAY_MS : -((-d + DAY_MS - 1) / DAY_MS));
}

/* Why a personal certificate is unusable (selection's verdict, which also
 * knows tls_security_level), or NULL when it is usable. */
static const char *unusable(const struct om_cert *c, const struct om_cert_selection *sel)
{
	for (size_t i = 0; i < sel->ncands; i++) {
		if (sel->cands[i].cert != c)
			continue;
		switch (sel->cands[i].verdict) {
		case OM_CERT_CHOSEN:
		case OM_CERT_RANKED_LOWER:
		case OM_CERT_NOT_PINNED:
			return NULL;
		default:
			return om_cert_verdict_str(sel->cands[i].verdict);
		}
	}
	return NULL;
}

static const char *in_use_text(const struct om_cert *c, const struct om_cert_selection *sel)
{
	if (sel->chosen != c)
		return "no";
	return sel->pinned ? "yes (pinned)" : "yes";
}

static void print_cert(const struct om_cert *c, const struct om_cert_selection *sel, int64_t now)
{
	char nb[40], na[40], eku[64];
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
	printf("  kind         %s\n", c->self_signed ? "self-signed" : "CA-issued");
	printf("  key          %s%s\n", c->key_type,
	       c->where == OM_CERT_TRUSTED ? ""
	       : c->key                    ? ", private key present"
	                                   : ", NO private key");
	printf("  EKU          %s\n", eku);
	if (c->where == OM_CERT_PERSONAL) {
		const char *why = unusable(c, sel);
		printf("  in use       %s\n", in_use_text(c, sel));
		if (why)
			printf("  unusable     %s\n", why);
	}
}

static void json_cert(struct om_buf *b, const struct om_cert *c,
                      const struct om_cert_selection *sel, int64_t now)
{
	char nb[40], na[40];
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
	om_buf_printf(b, ",\"self_signed\":%s,\"key_type\":\"%s\",\"has_key\":%s",
	              c->self_signed ? "true" : "false", c->key_type, c->key ? "true" : "false");
	om_buf_printf(b, ",\"eku\":%s", c->eku_present ? "[" : "null");
	if (c->eku_present)
		om_buf_printf(b, "%s%s%s]", c->eku_server ? "\"serverAuth\"" : "",
		              c->eku_server && c->eku_client ? "," : "",
		              c->eku_client ? "\"clientAuth\"" : "");
	if (c->where == OM_CERT_PERSONAL) {
		om_buf_printf(b, ",\"in_use\":%s", sel->chosen == c ? "true" : "false");
		const char *why = unusable(c, sel);
		om_buf_printf(b, ",\"usable\":%s", why ? "false" : "true");
		if (why) {
			om_buf_adds(b, ",\"unusable\":");
			om_buf_json_str(b, why);
		}
	}
	om_buf_adds(b, "}");
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

static int cmd_list(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	struct om_cert_selection sel;
	int rc = only(o, "list", 0, " --store ");
	bool want[2] = { true, true };
	int64_t now = om_now_ms();
	if (rc)
		return rc;
	if (o->store) {
		if (strcmp(o->store, "personal") == 0) {
			want[OM_CERT_TRUSTED] = false;
		} else if (strcmp(o->store, "trusted") == 0) {
			want[OM_CERT_PERSONAL] = false;
		} else {
			om_cli_error("--store is personal or trusted, not '%s'", o->store);
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
	struct om_buf b;
	om_buf_init(&b);
	om_buf_adds(&b, "[");
	int n = 0;
	for (int w = 0; w < 2; w++) {
		if (!want[w])
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
				json_cert(&b, c, &sel, now);
			} else {
				if (n)
					printf("\n");
				print_cert(c, &sel, now);
			}
			n++;
		}
	}
	om_buf_adds(&b, "]");
	if (cli->json)
		rc = json_out(&b);
	else if (n == 0)
		printf("no certificates%s (add one: openum cert new-selfsigned, or openum cert "
		       "import FILE)\n",
		       o->store ? " in this store" : "");
	om_buf_free(&b);
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	return rc;
}

static int cmd_show(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	struct om_cert_selection sel;
	const struct om_cert *c;
	int64_t now = om_now_ms();
	int rc = only(o, "show", 1, "");
	if (rc)
		return rc;
	if (o->npos != 1) {
		om_cli_error("cert show needs the certificate's ID (see: openum cert list)");
		return OM_EXIT_USAGE;
	}
	rc = open_store(cli, false, &s);
	if (rc)
		return rc;
	rc = find(s, o->pos[0], &c);
	if (!rc)
		rc = current_selection(cli, s, &sel);
	if (rc) {
		om_cert_store_free(s);
		return rc;
	}
	if (cli->json) {
		struct om_buf b;
		om_buf_init(&b);
		json_cert(&b, c, &sel, now);
		rc = json_out(&b);
	} else {
		print_cert(c, &sel, now);
		for (int i = 0; c->chain && i < sk_X509_num(c->chain); i++) {
			char line[512];
			X509_NAME_oneline(X509_get_subject_name(sk_X509_value(c->chain, i)), line,
			                  sizeof(line));
			printf("  chain[%d]     %s\n", i, line);
		}
	}
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	return rc;
}

/* ===================== output files ===================== */

/* --out is checked before anything is made: an existing file needs
 * --force, and a device, FIFO, socket, directory or symbolic link is never
 * replaced (om_file_write_new checks again when writing). */
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
	om_cli_error("cannot write %s: it %s%s", o->out, om_file_strerror(err),
	             err == EEXIST ? "" : " (never replaced, even with --force)");
	return OM_EXIT_FAIL;
}

/* ===================== new-selfsigned / request ===================== */

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
			json_cert(&b, c, &sel, om_now_ms());
			rc = json_out(&b);
		} else {
			printf("created self-signed certificate %s for %s (%s, %d days)\n", c->sha1,
			       fqdn, c->key_type, days);
			printf("SHA-256 %s\n", c->sha256);
			printf("%s\n", sel.chosen == c ? "it is now the certificate the server uses"
			                               : "not in use: another certificate ranks "
			                                 "first (see: openum cert select)");
		}
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
	int err = om_cert_request_new(s, o->fqdn, t, &pem, &len);
	if (err == EINVAL) {
		om_cli_error(
		    "'%s' is not a host name: give --fqdn with letters, digits, '-' and '.'",
		    o->fqdn);
		rc = OM_EXIT_USAGE;
	} else if (err) {
		om_cli_error("could not create the request: %s", strerror(err));
		rc = OM_EXIT_FAIL;
	} else if ((err = om_file_write_new(o->out, pem, len, 0644, o->force)) != 0) {
		om_cli_error("cannot write %s: it %s", o->out, om_file_strerror(err));
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

/* ===================== import ===================== */

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

static int import_trusted(struct om_cli *cli, const struct opts *o, struct om_cert_store *s,
                          struct om_cert_bundle *b)
{
	int n = sk_X509_num(b->certs), nc = sk_X509_CRL_num(b->crls);
	char sha[65];
	for (int i = 0; i < n; i++) {
		X509 *x = sk_X509_value(b->certs, i);
		unsigned char md[32];
		unsigned int mdlen = 0;
		char line[512];
		X509_NAME_oneline(X509_get_subject_name(x), line, sizeof(line));
		X509_digest(x, EVP_sha256(), md, &mdlen);
		for (unsigned j = 0; j < mdlen; j++)
			sprintf(sha + 2 * j, "%02x", md[j]);
		fprintf(cli->json ? stderr : stdout, "%s %s\n  subject  %s\n  SHA-256  %s\n",
		        o->yes ? "trusting" : "would trust", "certificate", line, sha);
	}
	if (nc)
		fprintf(cli->json ? stderr : stdout, "%s %d revocation list(s)\n",
		        o->yes ? "adding" : "would add", nc);
	if (!o->yes) {
		om_cli_error("nothing imported: check the subject and SHA-256 above with the "
		             "issuer, then re-run with --yes to trust %s",
		             n == 1 ? "it" : "them");
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

static int import_personal(struct om_cli *cli, const struct opts *o, struct om_cert_store *s,
                           struct om_cert_bundle *b)
{
	const struct om_cert *c;
	bool matched;
	int nc = sk_X509_CRL_num(b->crls);
	int rc = check_crls(s, b, NULL, o->pos[0]);
	if (!rc)
		rc = store_crls(cli, s, b);
	if (rc)
		return rc;
	if (sk_X509_num(b->certs) == 0) {
		if (cli->json)
			printf("{\"ok\":true,\"crls\":%d}\n", nc);
		else
			printf("added %d revocation list(s)\n", nc);
		return OM_EXIT_OK;
	}
	int err = om_cert_import_personal(s, b, &c, &matched);
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
	if (err) {
		om_cli_error("could not store the certificate: %s", strerror(err));
		return OM_EXIT_FAIL;
	}
	if (cli->json) {
		struct om_cert_selection sel;
		if (current_selection(cli, s, &sel) == 0) {
			struct om_buf jb;
			om_buf_init(&jb);
			json_cert(&jb, c, &sel, om_now_ms());
			om_cert_selection_free(&sel);
			return json_out(&jb);
		}
		return OM_EXIT_FAIL;
	}
	printf("imported %s into the personal store\n  subject  %s\n  SHA-256  %s\n", c->sha1,
	       c->subject, c->sha256);
	if (matched)
		printf("matched to the key of the request made here\n");
	else if (c->key)
		printf("with its private key%s\n", b->legacy ? " (legacy PKCS#12 encryption)" : "");
	else
		printf("no private key: the server cannot use it until its key is imported "
		       "(a PKCS#12 file, or the certificate issued for `openum cert request`)\n");
	return OM_EXIT_OK;
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
	rc = read_password(o->password_file, pw, sizeof(pw));
	if (rc)
		return rc;
	rc = open_store(cli, true, &s);
	if (rc)
		goto out;
	int err = om_file_read(o->pos[0], OM_CERT_FILE_MAX, &data, &len);
	if (err) {
		om_cli_error("cannot read %s: it %s", o->pos[0], om_file_strerror(err));
		rc = OM_EXIT_FAIL;
		goto out;
	}
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
		om_cli_error("%s is not a certificate file (PEM, DER or PKCS#12): %s", o->pos[0],
		             strerror(err));
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
	rc = o->trusted ? import_trusted(cli, o, s, &b) : import_personal(cli, o, s, &b);
	if (!rc)
		rc = reload(cli, o);
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	om_cert_bundle_free(&b);
	om_free(data);
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
		om_cli_error("cannot write %s: it %s", o->out, om_file_strerror(err));
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

static int cmd_remove(struct om_cli *cli, const struct opts *o)
{
	struct om_cert_store *s = NULL;
	struct om_cert_selection sel = { 0 };
	const struct om_cert *c;
	const struct om_cert *pc = NULL;
	char sha1[41];
	int rc = only(o, "remove", 1, " --force --no-reload ");
	if (rc)
		return rc;
	if (o->npos != 1) {
		om_cli_error("cert remove needs the certificate's ID (see: openum cert list)");
		return OM_EXIT_USAGE;
	}
	rc = open_store(cli, true, &s);
	if (!rc)
		rc = find(s, o->pos[0], &c);
	if (!rc)
		rc = current_selection(cli, s, &sel);
	if (rc)
		goto out;
	snprintf(sha1, sizeof(sha1), "%s", c->sha1);
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
	int err = om_cert_store_remove(s, c);
	if (err) {
		om_cli_error("could not remove %s: %s", sha1, strerror(err));
		rc = OM_EXIT_FAIL;
		goto out;
	}
	if (cli->json)
		printf("{\"ok\":true,\"removed\":\"%s\",\"was_in_use\":%s,\"unpinned\":%s}\n", sha1,
		       in_use ? "true" : "false", pinned ? "true" : "false");
	else
		printf("removed %s%s\n", sha1,
		       pinned   ? "; it was pinned: the pin is now auto"
		       : in_use ? " (was in use)"
		                : "");
	/* A trusted CA removed takes effect like one added: its gateways are
	 * refused at once (and open connections re-checked). */
	if (in_use || was_trusted)
		rc = reload(cli, o);
out:
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
		om_buf_printf(&b, ",\"pinned\":%s", sel.pinned ? "true" : "false");
		if (sel.pinned)
			om_buf_printf(&b, ",\"pin\":\"%s\",\"pin_valid\":%s", sel.pin,
			              sel.pin_found && sel.pin_verdict == OM_CERT_CHOSEN ? "true"
			                                                                 : "false");
		om_buf_adds(&b, ",\"candidates\":[");
		for (size_t i = 0; i < sel.ncands; i++) {
			const struct om_cert *c = sel.cands[i].cert;
			om_buf_printf(
			    &b, "%s{\"sha1\":\"%s\",\"kind\":\"%s\",\"verdict\":", i ? "," : "",
			    c->sha1, c->self_signed ? "self-signed" : "ca-issued");
			om_buf_json_str(&b, om_cert_verdict_str(sel.cands[i].verdict));
			om_buf_printf(&b, ",\"days_left\":%lld}", days_left(c, now));
		}
		om_buf_adds(&b, "]}");
		rc = json_out(&b);
	} else {
		if (sel.chosen) {
			const struct om_cert *c = sel.chosen;
			printf("chosen %s  %s, %s, %lld days left%s\n", c->sha1, c->subject,
			       c->self_signed ? "self-signed" : "CA-issued", days_left(c, now),
			       sel.pinned ? ", pinned" : "");
			if (c->self_signed)
				printf("  note: self-signed: every gateway must have it in its "
				       "trusted root store\n");
			if (!c->eku_client)
				printf("  note: lacks clientAuth: gateways that check it refuse "
				       "our outgoing connections\n");
		}
		if (sel.pinned && (!sel.pin_found || sel.pin_verdict != OM_CERT_CHOSEN))
			printf("ERROR pinned certificate %s %s%s (the server raises event %d; fix: "
			       "openum server set --certificate THUMBPRINT|auto)\n",
			       sel.pin,
			       sel.pin_found       ? "is not valid: "
			       : sel.pin_ambiguous ? "matches several certificates"
			                           : "is not in the personal store",
			       sel.pin_found ? om_cert_verdict_str(sel.pin_verdict) : "",
			       OM_CERT_EV_PIN_INVALID);
		for (size_t i = 0; i < sel.ncands; i++) {
			const struct om_cert *c = sel.cands[i].cert;
			if (c == sel.chosen)
				continue;
			const char *why = om_cert_verdict_str(sel.cands[i].verdict);
			char more[96] = "";
			if (sel.cands[i].verdict == OM_CERT_RANKED_LOWER && sel.chosen) {
				if (c->self_signed && !sel.chosen->self_signed)
					snprintf(more, sizeof(more),
					         ": self-signed, the chosen one "
					         "is CA-issued");
				else
					snprintf(more, sizeof(more), ": expires earlier");
			}
			printf("lost   %s  %s, %s, %lld days left: %s%s\n", c->sha1, c->subject,
			       c->self_signed ? "self-signed" : "CA-issued", days_left(c, now), why,
			       more);
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
