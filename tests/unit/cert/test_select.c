/* test_select.c — certificate stores, selection order (R7), pinning,
 * generation, fallback, expiry watch (R8), import/export and CSR matching.
 * Certificates are made here with the OpenSSL API so that their validity
 * can be anywhere in time (expired, not yet valid). */
#include "ut.h"
#include "cert/cert.h"
#include "core/events.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define DAY (86400LL)

/* ===================== fixtures ===================== */

static char tmpdir[64];
static int64_t now_ms;

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/om-cert-ut.XXXXXX");
	if (!mkdtemp(tmpdir))
		UT_FAIL("mkdtemp");
	now_ms = (int64_t)time(NULL) * 1000;
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

/* Captured events. */
struct ev {
	int id;
	enum om_level level;
};
static struct ev evs[64];
static int nev;

static void sink(const struct om_event_rec *r, void *arg)
{
	(void)arg;
	if (nev < 64)
		evs[nev++] = (struct ev){ r->id, r->level };
}

static int count_ev(int id)
{
	int n = 0;
	for (int i = 0; i < nev; i++)
		n += evs[i].id == id;
	return n;
}

static enum om_level level_of(int id)
{
	for (int i = 0; i < nev; i++)
		if (evs[i].id == id)
			return evs[i].level;
	return (enum om_level) - 1;
}

static void ev_reset(void)
{
	nev = 0;
	om_events_set_sink(sink, NULL);
	om_events_set_interval(0);
	om_events_reset();
}

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = NULL;
	if (om_cert_key_new(OM_CERT_KEY_EC, &k) != 0)
		UT_FAIL("keygen");
	return k;
}

static void ext(X509 *x, X509 *issuer, int nid, const char *v)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, v);
	if (!e || !X509_add_ext(x, e, -1))
		UT_FAIL("extension %d", nid);
	X509_EXTENSION_free(e);
}

/* A certificate for `cn`, valid from now+nb to now+na seconds, signed by
 * (ikey, issuer) or self-signed when issuer is NULL. eku NULL: no EKU. */
static const EVP_MD *sign_md; /* NULL: SHA-256 */
/* The SAN of end-entity certificates made here: the FQDN the manager's
 * policy names (NULL: none). */
static const char *test_san = "DNS:um.example.com";

static X509 *make_cert(const char *cn, EVP_PKEY *key, int64_t nb, int64_t na, EVP_PKEY *ikey,
                       X509 *issuer, const char *eku, bool ca)
{
	static long serial = 1000;
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	time_t t = (time_t)(now_ms / 1000);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_time_adj_ex(X509_getm_notBefore(x), 0, (long)nb, &t);
	X509_time_adj_ex(X509_getm_notAfter(x), 0, (long)na, &t);
	X509_set_pubkey(x, key);
	ext(x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (!ca && test_san)
		ext(x, issuer, NID_subject_alt_name, test_san);
	if (eku)
		ext(x, issuer, NID_ext_key_usage, eku);
	if (!X509_sign(x, ikey ? ikey : key, sign_md ? sign_md : EVP_sha256()))
		UT_FAIL("sign");
	X509_NAME_free(n);
	return x;
}

struct ca {
	EVP_PKEY *key;
	X509 *x;
};

static struct ca make_ca(void)
{
	struct ca c;
	c.key = ec_key();
	c.x = make_cert("Test Root CA", c.key, -DAY, 3650 * DAY, NULL, NULL, NULL, true);
	return c;
}

static void free_ca(struct ca *c)
{
	X509_free(c->x);
	EVP_PKEY_free(c->key);
}

/* Adds a certificate to the personal store: issued by ca (or self-signed
 * when ca is NULL), with its key unless keyless. Returns its SHA-1. */
static const struct om_cert *add(struct om_cert_store *s, const char *cn, int64_t nb, int64_t na,
                                 struct ca *ca, const char *eku, bool keyless)
{
	EVP_PKEY *k = ec_key();
	X509 *x = make_cert(cn, k, nb, na, ca ? ca->key : NULL, ca ? ca->x : NULL, eku, false);
	const struct om_cert *c = NULL, *t = NULL;
	/* "CA-issued" means a CA trusted here (issue 18): the CA goes to the
	 * trusted store with it. */
	if (ca && om_cert_store_add(s, OM_CERT_TRUSTED, ca->x, NULL, NULL, &t) != 0)
		UT_FAIL("trusted add");
	int err = om_cert_store_add(s, OM_CERT_PERSONAL, x, NULL, keyless ? NULL : k, &c);
	X509_free(x);
	EVP_PKEY_free(k);
	if (err)
		UT_FAIL("store add: %s", strerror(err));
	return c;
}

static struct om_cert_store *reopen(struct om_cert_store *s)
{
	om_cert_store_free(s);
	struct om_cert_store *n = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &n));
	return n;
}

/* Selection as the server makes it, without an FQDN check. */
static int select_with(const struct om_cert_store *s, const char *pin, int level,
                       struct om_cert_selection *sel)
{
	struct om_cert_select_opts o = { .pin = pin, .fqdn = NULL, .security_level = level };
	return om_cert_select(s, &o, now_ms, sel);
}

static const char *chosen_cn(const struct om_cert_selection *sel)
{
	return sel->chosen ? sel->chosen->subject : "(none)";
}

static enum om_cert_verdict verdict_of(const struct om_cert_selection *sel, const char *sha1)
{
	for (size_t i = 0; i < sel->ncands; i++)
		if (strcmp(sel->cands[i].cert->sha1, sha1) == 0)
			return sel->cands[i].verdict;
	return (enum om_cert_verdict) - 1;
}

/* ===================== the order ===================== */

/* Every step of the seed's order: CA-issued longest, CA-issued shorter,
 * self-signed longest, self-signed shorter, then nothing. */
UT_TEST(order_every_step)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	char a[41], b[41], c[41], d[41];
	snprintf(a, 41, "%s", add(s, "ca-long", -DAY, 400 * DAY, &ca, "serverAuth", false)->sha1);
	snprintf(b, 41, "%s", add(s, "ca-short", -DAY, 200 * DAY, &ca, "serverAuth", false)->sha1);
	snprintf(c, 41, "%s", add(s, "ss-long", -DAY, 900 * DAY, NULL, NULL, false)->sha1);
	snprintf(d, 41, "%s", add(s, "ss-short", -DAY, 100 * DAY, NULL, NULL, false)->sha1);
	s = reopen(s);

	const char *expect[] = { "CN=ca-long", "CN=ca-short", "CN=ss-long", "CN=ss-short" };
	const char *ids[] = { a, b, c, d };
	for (int step = 0; step < 4; step++) {
		struct om_cert_selection sel;
		UT_EQ_INT(0, select_with(s, NULL, 2, &sel));
		UT_EQ_STR(expect[step], chosen_cn(&sel));
		UT_EQ_INT(4 - step, sel.ncands);
		UT_EQ_STR(ids[step], sel.cands[0].cert->sha1);
		for (int j = step + 1; j < 4; j++) {
			UT_EQ_INT(OM_CERT_RANKED_LOWER, verdict_of(&sel, ids[j]));
			UT_EQ_STR(ids[j], sel.cands[j - step].cert->sha1); /* ranking order */
		}
		om_cert_selection_free(&sel);
		const struct om_cert *gone;
		UT_EQ_INT(0, om_cert_store_find(s, ids[step], &gone));
		UT_EQ_INT(0, om_cert_store_remove(s, gone));
		s = reopen(s);
	}
	struct om_cert_selection sel;
	UT_EQ_INT(0, select_with(s, NULL, 2, &sel));
	UT_TRUE(sel.chosen == NULL);
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	free_ca(&ca);
	teardown();
}

/* A CA-issued certificate wins over a self-signed one expiring much later. */
UT_TEST(ca_issued_beats_longer_selfsigned)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	add(s, "ss", -DAY, 3000 * DAY, NULL, "serverAuth,clientAuth", false);
	add(s, "ca", -DAY, 10 * DAY, &ca, "serverAuth,clientAuth", false);
	struct om_cert_selection sel;
	UT_EQ_INT(0, select_with(s, NULL, 2, &sel));
	UT_EQ_STR("CN=ca", chosen_cn(&sel));
	UT_TRUE(!sel.chosen->self_signed);
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	free_ca(&ca);
	teardown();
}

/* Exclusions: expired, not yet valid, keyless, EKU without serverAuth.
 * No EKU at all counts as usable for serverAuth. */
UT_TEST(exclusions)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	const struct om_cert *exp = add(s, "expired", -400 * DAY, -DAY, &ca, NULL, false);
	const struct om_cert *nyv = add(s, "future", DAY, 900 * DAY, &ca, NULL, false);
	const struct om_cert *nok = add(s, "keyless", -DAY, 800 * DAY, &ca, NULL, true);
	const struct om_cert *cli = add(s, "clientonly", -DAY, 700 * DAY, &ca, "clientAuth", false);
	const struct om_cert *ss = add(s, "selfsigned", -DAY, 50 * DAY, NULL, NULL, false);
	char id[5][41];
	snprintf(id[0], 41, "%s", exp->sha1);
	snprintf(id[1], 41, "%s", nyv->sha1);
	snprintf(id[2], 41, "%s", nok->sha1);
	snprintf(id[3], 41, "%s", cli->sha1);
	snprintf(id[4], 41, "%s", ss->sha1);
	s = reopen(s);
	struct om_cert_selection sel;
	UT_EQ_INT(0, select_with(s, NULL, 2, &sel));
	UT_EQ_STR("CN=selfsigned", chosen_cn(&sel));
	UT_EQ_INT(OM_CERT_EXPIRED, verdict_of(&sel, id[0]));
	UT_EQ_INT(OM_CERT_NOT_YET_VALID, verdict_of(&sel, id[1]));
	UT_EQ_INT(OM_CERT_NO_KEY, verdict_of(&sel, id[2]));
	UT_EQ_INT(OM_CERT_NO_SERVERAUTH, verdict_of(&sel, id[3]));
	UT_EQ_INT(OM_CERT_CHOSEN, verdict_of(&sel, id[4]));
	om_cert_selection_free(&sel);

	/* A CA-issued one without any EKU is usable. */
	add(s, "noeku", -DAY, 30 * DAY, &ca, NULL, false);
	UT_EQ_INT(0, select_with(s, NULL, 2, &sel));
	UT_EQ_STR("CN=noeku", chosen_cn(&sel));
	UT_TRUE(!sel.chosen->eku_present && sel.chosen->eku_server && sel.chosen->eku_client);
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	free_ca(&ca);
	teardown();
}

/* Self-signed means issuer == subject AND its own key verifies it. */
UT_TEST(selfsigned_needs_own_signature)
{
	setup();
	EVP_PKEY *k = ec_key(), *other = ec_key();
	/* Issuer name equals subject, but signed by another key. */
	X509 *fake = make_cert("same", k, -DAY, DAY * 10, other, NULL, NULL, false);
	X509 *real = make_cert("same", k, -DAY, DAY * 10, NULL, NULL, NULL, false);
	struct om_cert_store *s = NULL;
	const struct om_cert *c1, *c2;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	UT_EQ_INT(0, om_cert_store_add(s, OM_CERT_PERSONAL, fake, NULL, k, &c1));
	UT_TRUE(!c1->self_signed);
	UT_EQ_INT(0, om_cert_store_add(s, OM_CERT_PERSONAL, real, NULL, k, &c2));
	UT_TRUE(c2->self_signed);
	/* A key that belongs to another certificate is refused. */
	const struct om_cert *c3;
	UT_EQ_INT(EKEYREJECTED, om_cert_store_add(s, OM_CERT_PERSONAL, real, NULL, other, &c3));
	om_cert_store_free(s);
	X509_free(fake);
	X509_free(real);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
	teardown();
}

/* ===================== pinning ===================== */

UT_TEST(pin_overrides_order)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	char cas[41], ss[41], sha256[65], pfx[16];
	const struct om_cert *sc;
	snprintf(cas, 41, "%s", add(s, "ca", -DAY, 400 * DAY, &ca, NULL, false)->sha1);
	sc = add(s, "ss", -DAY, 100 * DAY, NULL, NULL, false);
	snprintf(ss, 41, "%s", sc->sha1);
	snprintf(sha256, 65, "%s", sc->sha256);
	snprintf(pfx, sizeof(pfx), "%.2s:%.2s:%.2s", ss, ss + 2, ss + 4);

	/* The pin may be the SHA-1, a prefix of it (colons too) or the SHA-256. */
	const char *pins[] = { ss, pfx, sha256 };
	for (int i = 0; i < 3; i++) {
		struct om_cert_selection sel;
		UT_EQ_INT(0, select_with(s, pins[i], 2, &sel));
		UT_EQ_STR("CN=ss", chosen_cn(&sel));
		UT_TRUE(sel.pinned && sel.pin_found && !sel.pin_ambiguous);
		UT_EQ_INT(OM_CERT_CHOSEN, sel.pin_verdict);
		UT_EQ_INT(OM_CERT_NOT_PINNED, verdict_of(&sel, cas));
		UT_EQ_STR(ss, sel.cands[0].cert->sha1);
		om_cert_selection_free(&sel);
	}

	/* Through the manager: the pinned self-signed one is in use, and it is
	 * no "fallback" (1123): the administrator chose it. */
	struct om_cert_policy pol = { .fqdn = "um.example.com",
		                      .auto_selfsigned = true,
		                      .tls_security_level = 2 };
	struct om_cert_mgr *m = NULL;
	UT_EQ_INT(0, om_cert_mgr_new(tmpdir, &pol, &m));
	ev_reset();
	pol.pin = ss;
	UT_EQ_INT(0, om_cert_mgr_apply(m, &pol, now_ms));
	UT_EQ_STR(ss, om_cert_mgr_current(m)->sha1);
	UT_EQ_INT(0, count_ev(OM_EV_CERT_FALLBACK_SELFSIGNED));
	UT_EQ_INT(0, count_ev(OM_CERT_EV_PIN_INVALID));
	/* Back to auto: the CA-issued one is taken on the next apply. */
	pol.pin = "";
	ev_reset();
	UT_EQ_INT(0, om_cert_mgr_apply(m, &pol, now_ms));
	UT_EQ_STR(cas, om_cert_mgr_current(m)->sha1);
	UT_EQ_INT(1, count_ev(OM_EV_CERT_IN_USE));
	om_cert_mgr_free(m);
	om_cert_store_free(s);
	free_ca(&ca);
	teardown();
}

/* A pinned certificate that becomes invalid stays in use with an error
 * event (1125), never a silent switch to another valid one; a pin naming
 * nothing gives no certificate and generates none. */
UT_TEST(pin_invalid_is_error_not_switch)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	char exp[41];
	add(s, "valid", -DAY, 400 * DAY, &ca, NULL, false);
	snprintf(exp, 41, "%s", add(s, "expired", -400 * DAY, -DAY, &ca, NULL, false)->sha1);
	om_cert_store_free(s);

	struct om_cert_policy pol = { .fqdn = "um.example.com",
		                      .auto_selfsigned = true,
		                      .tls_security_level = 2,
		                      .pin = exp };
	struct om_cert_mgr *m = NULL;
	UT_EQ_INT(0, om_cert_mgr_new(tmpdir, &pol, &m));
	ev_reset();
	UT_EQ_INT(0, om_cert_mgr_apply(m, &pol, now_ms));
	UT_EQ_STR("CN=expired", om_cert_mgr_current(m)->subject);
	UT_EQ_INT(1, count_ev(OM_CERT_EV_PIN_INVALID));
	UT_EQ_INT(OM_LOG_ERROR, level_of(OM_CERT_EV_PIN_INVALID));
	UT_EQ_INT(1, count_ev(OM_EV_CERT_IN_USE));

	/* Pin a thumbprint that is in no store: nothing usable, nothing made. */
	pol.pin = "0123456789ABCDEF0123456789ABCDEF01234567";
	ev_reset();
	UT_EQ_INT(ENOENT, om_cert_mgr_apply(m, &pol, now_ms));
	UT_EQ_INT(1, count_ev(OM_CERT_EV_PIN_INVALID));
	UT_EQ_INT(0, count_ev(OM_EV_CERT_GENERATED));
	/* The previous choice stays (validate-then-swap). */
	UT_EQ_STR("CN=expired", om_cert_mgr_current(m)->subject);
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	UT_EQ_INT(2, om_cert_store_count(s, OM_CERT_PERSONAL));
	/* A prefix naming several is ambiguous: the pin finds nothing and the
	 * automatic order decides (a pin never fails a start or a reload).
	 * 17 certificates: two of them share a first hex digit. */
	for (int i = 0; i < 15; i++)
		add(s, "expired-more", -400 * DAY, -DAY, &ca, NULL, false);
	struct om_cert_selection sel;
	int amb = 0;
	const char *hex = "0123456789ABCDEF";
	for (int i = 0; i < 16; i++) {
		char one[2] = { hex[i], 0 };
		UT_EQ_INT(0, select_with(s, one, 2, &sel));
		if (sel.pin_ambiguous) {
			amb++;
			UT_TRUE(!sel.pin_found);
			UT_EQ_STR("CN=valid", chosen_cn(&sel));
		}
		om_cert_selection_free(&sel);
	}
	UT_TRUE(amb > 0);
	om_cert_store_free(s);
	om_cert_mgr_free(m);
	free_ca(&ca);
	teardown();
}

/* tls_security_level: what OpenSSL's TLS context would refuse is never
 * chosen (RSA-1024 key, SHA-1 signature at level 2); level 0 checks
 * nothing. */
UT_TEST(too_weak_for_security_level)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	const struct om_cert *c;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	UT_TRUE(rsa != NULL);
	X509 *x = make_cert("rsa1024", rsa, -DAY, 900 * DAY, ca.key, ca.x, NULL, false);
	UT_EQ_INT(0, om_cert_store_add(s, OM_CERT_PERSONAL, x, NULL, rsa, &c));
	char weak_key[41], weak_sig[41];
	snprintf(weak_key, 41, "%s", c->sha1);
	X509_free(x);
	EVP_PKEY_free(rsa);
	sign_md = EVP_sha1();
	snprintf(weak_sig, 41, "%s", add(s, "sha1sig", -DAY, 800 * DAY, &ca, NULL, false)->sha1);
	sign_md = NULL;
	add(s, "ok", -DAY, 10 * DAY, NULL, NULL, false);

	struct om_cert_selection sel;
	UT_EQ_INT(0, select_with(s, NULL, 2, &sel));
	UT_EQ_STR("CN=ok", chosen_cn(&sel));
	UT_EQ_INT(OM_CERT_TOO_WEAK, verdict_of(&sel, weak_key));
	UT_EQ_INT(OM_CERT_TOO_WEAK, verdict_of(&sel, weak_sig));
	om_cert_selection_free(&sel);
	UT_EQ_INT(0, select_with(s, NULL, 0, &sel));
	UT_EQ_STR("CN=rsa1024", chosen_cn(&sel));
	om_cert_selection_free(&sel);
	/* Level 3 wants 128 bits: RSA-2048 falls too; P-256 stays. */
	const struct om_cert *r2;
	UT_EQ_INT(0, om_cert_store_new_selfsigned(s, "r.example.com", OM_CERT_KEY_RSA2048, 3000,
	                                          now_ms, &r2));
	char r2s[41];
	snprintf(r2s, 41, "%s", r2->sha1);
	UT_EQ_INT(0, select_with(s, NULL, 3, &sel));
	UT_EQ_STR("CN=ok", chosen_cn(&sel));
	UT_EQ_INT(OM_CERT_TOO_WEAK, verdict_of(&sel, r2s));
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	free_ca(&ca);
	teardown();
}

/* ===================== generation and fallback ===================== */

UT_TEST(generates_when_none_valid)
{
	setup();
	struct om_cert_policy pol = { .fqdn = "um.example.com",
		                      .auto_selfsigned = true,
		                      .tls_security_level = 2 };
	struct om_cert_mgr *m = NULL;
	UT_EQ_INT(0, om_cert_mgr_new(tmpdir, &pol, &m));
	ev_reset();
	UT_EQ_INT(0, om_cert_mgr_apply(m, &pol, now_ms));
	const struct om_cert *c = om_cert_mgr_current(m);
	UT_TRUE(c != NULL);
	UT_TRUE(c->self_signed);
	UT_EQ_STR("CN=um.example.com", c->subject);
	UT_EQ_STR("DNS:um.example.com", c->sans);
	UT_EQ_STR("EC P-256", c->key_type);
	UT_TRUE(c->eku_present && c->eku_server && c->eku_client);
	UT_TRUE(!c->is_ca);
	int64_t days = (c->not_after_ms - now_ms) / (DAY * 1000);
	UT_TRUE(days >= OM_CERT_DEFAULT_DAYS - 1 && days <= OM_CERT_DEFAULT_DAYS);
	UT_EQ_INT(1, count_ev(OM_EV_CERT_GENERATED));
	UT_EQ_INT(1, count_ev(OM_EV_CERT_IN_USE));
	UT_EQ_INT(0, count_ev(OM_EV_CERT_NO_CLIENTAUTH));
	UT_EQ_INT(0, count_ev(OM_EV_CERT_FALLBACK_SELFSIGNED));

	/* Key file 0600, folders 0700. */
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/certs/personal/%s.key", tmpdir, c->sha256);
	UT_EQ_INT(0, stat(path, &st));
	UT_EQ_INT(0600, st.st_mode & 0777);
	snprintf(path, sizeof(path), "%s/certs/personal", tmpdir);
	UT_EQ_INT(0, stat(path, &st));
	UT_EQ_INT(0700, st.st_mode & 0777);

	/* Again: same certificate, no new event, nothing generated. */
	ev_reset();
	UT_EQ_INT(0, om_cert_mgr_apply(m, &pol, now_ms));
	UT_EQ_INT(0, nev);
	UT_EQ_INT(1, om_cert_store_count(om_cert_mgr_store(m), OM_CERT_PERSONAL));
	om_cert_mgr_free(m);

	/* RSA keys on request. */
	struct om_cert_store *s = NULL;
	const struct om_cert *r;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	UT_EQ_INT(0, om_cert_store_new_selfsigned(s, "rsa.example.com", OM_CERT_KEY_RSA2048, 10,
	                                          now_ms, &r));
	UT_EQ_STR("RSA 2048", r->key_type);
	UT_EQ_INT(EINVAL,
	          om_cert_store_new_selfsigned(s, "bad,name", OM_CERT_KEY_EC, 10, now_ms, &r));
	om_cert_store_free(s);
	teardown();
}

UT_TEST(no_auto_selfsigned_fails)
{
	setup();
	struct om_cert_policy pol = { .fqdn = "um.example.com",
		                      .auto_selfsigned = false,
		                      .tls_security_level = 2 };
	struct om_cert_mgr *m = NULL;
	UT_EQ_INT(0, om_cert_mgr_new(tmpdir, &pol, &m));
	ev_reset();
	UT_EQ_INT(ENOENT, om_cert_mgr_apply(m, &pol, now_ms));
	UT_TRUE(om_cert_mgr_current(m) == NULL);
	UT_EQ_INT(0, count_ev(OM_EV_CERT_GENERATED));
	om_cert_mgr_free(m);
	teardown();
}

/* The CA-issued certificate expires: the server falls back to a generated
 * self-signed one and says so at error level (1123). */
UT_TEST(fallback_ca_to_selfsigned_is_error)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	add(s, "ca", -DAY, 10 * DAY, &ca, "serverAuth", false);
	om_cert_store_free(s);
	struct om_cert_policy pol = { .fqdn = "um.example.com",
		                      .auto_selfsigned = true,
		                      .tls_security_level = 2 };
	struct om_cert_mgr *m = NULL;
	UT_EQ_INT(0, om_cert_mgr_new(tmpdir, &pol, &m));
	ev_reset();
	UT_EQ_INT(0, om_cert_mgr_apply(m, &pol, now_ms));
	UT_EQ_STR("CN=ca", om_cert_mgr_current(m)->subject);
	UT_EQ_INT(1, count_ev(OM_EV_CERT_IN_USE));
	/* serverAuth only: 1115. */
	UT_EQ_INT(1, count_ev(OM_EV_CERT_NO_CLIENTAUTH));

	/* Eleven days later: expired, so a self-signed one is generated. */
	ev_reset();
	UT_EQ_INT(0, om_cert_mgr_apply(m, &pol, now_ms + 11 * DAY * 1000));
	UT_TRUE(om_cert_mgr_current(m)->self_signed);
	UT_EQ_INT(1, count_ev(OM_EV_CERT_GENERATED));
	UT_EQ_INT(1, count_ev(OM_EV_CERT_FALLBACK_SELFSIGNED));
	UT_EQ_INT(OM_LOG_ERROR, level_of(OM_EV_CERT_FALLBACK_SELFSIGNED));
	UT_EQ_INT(1, count_ev(OM_EV_CERT_IN_USE));
	om_cert_mgr_free(m);

	/* A fresh start finding only the expired CA-issued one and a valid
	 * self-signed one also reports the fallback. */
	struct om_cert_mgr *m2 = NULL;
	UT_EQ_INT(0, om_cert_mgr_new(tmpdir, &pol, &m2));
	ev_reset();
	UT_EQ_INT(0, om_cert_mgr_apply(m2, &pol, now_ms + 11 * DAY * 1000));
	UT_EQ_INT(0, count_ev(OM_EV_CERT_GENERATED));
	UT_EQ_INT(1, count_ev(OM_EV_CERT_FALLBACK_SELFSIGNED));
	om_cert_mgr_free(m2);
	free_ca(&ca);
	teardown();
}

/* A newly imported better certificate is taken on the next apply (reload)
 * and logged again (1114 whenever it changes). */
UT_TEST(change_logs_in_use_again)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_policy pol = { .fqdn = "um.example.com",
		                      .auto_selfsigned = true,
		                      .tls_security_level = 2 };
	struct om_cert_mgr *m = NULL;
	UT_EQ_INT(0, om_cert_mgr_new(tmpdir, &pol, &m));
	ev_reset();
	UT_EQ_INT(0, om_cert_mgr_apply(m, &pol, now_ms));
	UT_TRUE(om_cert_mgr_current(m)->self_signed);
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	add(s, "ca", -DAY, 100 * DAY, &ca, "serverAuth,clientAuth", false);
	om_cert_store_free(s);
	ev_reset();
	UT_EQ_INT(0, om_cert_mgr_apply(m, &pol, now_ms));
	UT_EQ_STR("CN=ca", om_cert_mgr_current(m)->subject);
	UT_EQ_INT(1, count_ev(OM_EV_CERT_IN_USE));
	UT_EQ_INT(0, count_ev(OM_EV_CERT_FALLBACK_SELFSIGNED));
	om_cert_mgr_free(m);
	free_ca(&ca);
	teardown();
}

/* ===================== expiry watch ===================== */

UT_TEST(watch_expiry)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	add(s, "ca", -DAY, 40 * DAY, &ca, NULL, false);
	/* A trusted root expiring in 60 days. */
	EVP_PKEY *rk = ec_key();
	X509 *root = make_cert("Old Root", rk, -DAY, 60 * DAY, NULL, NULL, NULL, true);
	const struct om_cert *rc;
	UT_EQ_INT(0, om_cert_store_add(s, OM_CERT_TRUSTED, root, NULL, NULL, &rc));
	UT_TRUE(rc->key == NULL);
	om_cert_store_free(s);
	struct om_cert_policy pol = { .fqdn = "um.example.com",
		                      .auto_selfsigned = true,
		                      .tls_security_level = 2 };
	struct om_cert_mgr *m = NULL;
	UT_EQ_INT(0, om_cert_mgr_new(tmpdir, &pol, &m));
	UT_EQ_INT(0, om_cert_mgr_apply(m, &pol, now_ms));
	int64_t d = DAY * 1000;

	ev_reset();
	UT_EQ_INT(0, om_cert_watch_tick(m, now_ms)); /* 40 days left: quiet */
	UT_EQ_INT(0, om_cert_watch_tick(m, now_ms + 9 * d + d / 2));
	UT_EQ_INT(0, nev);
	/* 29.5 days left: 1120 once that day (the root has 49.5: quiet). */
	UT_EQ_INT(1, om_cert_watch_tick(m, now_ms + 10 * d + d / 2));
	UT_EQ_INT(1, count_ev(OM_EV_CERT_EXPIRING));
	UT_EQ_INT(0, count_ev(OM_EV_TRUSTED_EXPIRING));
	UT_EQ_INT(0, om_cert_watch_tick(m, now_ms + 10 * d + d / 2 + 60000)); /* same day */
	/* Then daily. */
	UT_EQ_INT(1, om_cert_watch_tick(m, now_ms + 11 * d + d / 2));
	UT_EQ_INT(2, count_ev(OM_EV_CERT_EXPIRING));
	/* After expiry: 1121 daily, no more 1120; the root (19 days left) 1124. */
	ev_reset();
	UT_EQ_INT(2, om_cert_watch_tick(m, now_ms + 41 * d));
	UT_EQ_INT(1, count_ev(OM_EV_CERT_EXPIRED));
	UT_EQ_INT(1, count_ev(OM_EV_TRUSTED_EXPIRING));
	UT_EQ_INT(0, count_ev(OM_EV_CERT_EXPIRING));
	UT_EQ_INT(0, om_cert_watch_tick(m, now_ms + 41 * d + 1000));
	UT_EQ_INT(2, om_cert_watch_tick(m, now_ms + 42 * d));
	UT_EQ_INT(2, count_ev(OM_EV_CERT_EXPIRED));
	/* A gateway's certificate seen in a handshake: same rule, by peer. */
	EVP_PKEY *gk = ec_key();
	X509 *gw = make_cert("gw.example.com", gk, -DAY, 20 * DAY, ca.key, ca.x, NULL, false);
	ev_reset();
	UT_EQ_INT(1, om_cert_watch_peer(m, gw, "10.0.0.7:5061", now_ms));
	UT_EQ_INT(0, om_cert_watch_peer(m, gw, "10.0.0.7:5061", now_ms + 1000));
	UT_EQ_INT(1, om_cert_watch_peer(m, gw, "10.0.0.7:5061", now_ms + d));
	UT_EQ_INT(0, om_cert_watch_peer(m, ca.x, "ca", now_ms)); /* ten years left */
	UT_EQ_INT(2, count_ev(OM_EV_TRUSTED_EXPIRING));
	X509_free(gw);
	EVP_PKEY_free(gk);
	om_cert_mgr_free(m);
	X509_free(root);
	EVP_PKEY_free(rk);
	free_ca(&ca);
	teardown();
}

/* ===================== lookup ===================== */

UT_TEST(find_by_prefix)
{
	setup();
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	const struct om_cert *a = add(s, "a", -DAY, DAY, NULL, NULL, false), *f;
	char pfx[8], colons[64];
	snprintf(pfx, sizeof(pfx), "%.6s", a->sha1);
	for (int i = 0; pfx[i]; i++)
		pfx[i] = (char)(pfx[i] >= 'A' ? pfx[i] + 32 : pfx[i]); /* lowercase works */
	UT_EQ_INT(0, om_cert_store_find(s, pfx, &f));
	UT_TRUE(f == a);
	snprintf(colons, sizeof(colons), "%.2s:%.2s:%.2s", a->sha1, a->sha1 + 2, a->sha1 + 4);
	UT_EQ_INT(0, om_cert_store_find(s, colons, &f));
	UT_EQ_INT(0, om_cert_store_find(s, a->sha256, &f));
	UT_TRUE(f == a);
	UT_EQ_INT(EINVAL, om_cert_store_find(s, "xyz", &f));
	UT_EQ_INT(EINVAL, om_cert_store_find(s, "", &f));
	/* Many certificates: the 0-length-prefix-like short prefix gets
	 * ambiguous sooner or later; a single hex digit shared by two. */
	for (int i = 0; i < 20; i++)
		add(s, "many", -DAY, DAY, NULL, NULL, false);
	int amb = 0;
	const char *hex = "0123456789ABCDEF";
	for (int i = 0; i < 16; i++) {
		char one[2] = { hex[i], 0 };
		amb += om_cert_store_find(s, one, &f) == EEXIST;
	}
	UT_TRUE(amb > 0);
	om_cert_store_free(s);
	teardown();
}

/* ===================== import / export ===================== */

static struct om_cert_bundle parse_ok(const char *data, size_t len, const char *pw)
{
	struct om_cert_bundle b;
	int err = om_cert_bundle_parse(data, len, pw, &b);
	if (err)
		UT_FAIL("parse: %s", strerror(err));
	return b;
}

UT_TEST(export_import_roundtrip)
{
	setup();
	struct om_cert_store *s = NULL;
	const struct om_cert *c, *c2;
	char *data = NULL;
	size_t len;
	struct om_cert_import_report rep;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	UT_EQ_INT(
	    0, om_cert_store_new_selfsigned(s, "um.example.com", OM_CERT_KEY_EC, 30, now_ms, &c));
	char sha[65];
	snprintf(sha, sizeof(sha), "%s", c->sha256);

	/* PEM without key: no key in it. */
	UT_EQ_INT(0, om_cert_export(c, OM_CERT_FMT_PEM, false, NULL, false, &data, &len));
	UT_TRUE(!om_cert_has_pem_key(data, len));
	struct om_cert_bundle b = parse_ok(data, len, NULL);
	UT_EQ_INT(1, sk_X509_num(b.certs));
	UT_TRUE(!b.had_key);
	om_cert_bundle_free(&b);
	om_free(data);

	/* DER. */
	UT_EQ_INT(0, om_cert_export(c, OM_CERT_FMT_DER, false, NULL, false, &data, &len));
	b = parse_ok(data, len, NULL);
	UT_EQ_INT(1, sk_X509_num(b.certs));
	om_cert_bundle_free(&b);
	om_free(data);
	UT_EQ_INT(EINVAL, om_cert_export(c, OM_CERT_FMT_DER, true, NULL, false, &data, &len));
	UT_EQ_INT(EINVAL, om_cert_export(c, OM_CERT_FMT_PFX, true, NULL, false, &data, &len));

	/* Encrypted PEM with key. */
	UT_EQ_INT(0, om_cert_export(c, OM_CERT_FMT_PEM, true, "s3cret", false, &data, &len));
	UT_TRUE(om_cert_has_pem_key(data, len));
	UT_TRUE(strstr(data, "ENCRYPTED PRIVATE KEY") != NULL);
	b = parse_ok(data, len, "s3cret");
	UT_TRUE(b.key != NULL);
	om_cert_bundle_free(&b);
	UT_TRUE(om_cert_bundle_parse(data, len, "wrong", &b) != 0 || b.key == NULL);
	if (b.certs)
		om_cert_bundle_free(&b);
	om_free(data);

	/* PFX, modern and legacy; each imports back with its key. */
	for (int legacy = 0; legacy < 2; legacy++) {
		UT_EQ_INT(0, om_cert_export(c, OM_CERT_FMT_PFX, true, "pw", legacy, &data, &len));
		UT_EQ_INT(EACCES, om_cert_bundle_parse(data, len, "nope", &b));
		b = parse_ok(data, len, "pw");
		UT_TRUE(b.pkcs12 && b.key && b.had_key);
		UT_EQ_INT(1, sk_X509_num(b.certs));
		UT_EQ_INT(0, om_cert_import_personal(s, &b, &c2, &rep));
		UT_EQ_STR(sha, c2->sha256);
		UT_TRUE(c2->key != NULL);
		UT_TRUE(!rep.matched_request);
		c = c2; /* the entry was replaced */
		om_cert_bundle_free(&b);
		om_free(data);
	}
	UT_EQ_INT(1, om_cert_store_count(s, OM_CERT_PERSONAL));

	/* Garbage is refused; a key alone is ENOKEY. */
	UT_EQ_INT(EINVAL, om_cert_bundle_parse("hello", 5, NULL, &b));
	UT_EQ_INT(0, om_cert_export(c, OM_CERT_FMT_PEM, true, NULL, false, &data, &len));
	char *kp = strstr(data, "-----BEGIN PRIVATE KEY");
	UT_TRUE(kp != NULL);
	UT_EQ_INT(ENOKEY, om_cert_bundle_parse(kp, strlen(kp), NULL, &b));
	om_free(data);
	om_cert_store_free(s);
	teardown();
}

/* The PKI steps in the library: CSR with the key kept here, the CA signs
 * it, the issued certificate imported alone finds its key. */
UT_TEST(csr_matches_issued_certificate)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	char *pem = NULL;
	size_t len;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	UT_EQ_INT(0, om_cert_request_new(s, "um.example.com", OM_CERT_KEY_EC, &pem, &len, NULL));
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	BIO_free(b);
	UT_TRUE(req != NULL);
	UT_EQ_INT(1, X509_REQ_verify(req, X509_REQ_get0_pubkey(req)));
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	UT_TRUE(exts && sk_X509_EXTENSION_num(exts) >= 3);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	/* The CA issues it. */
	X509 *x = make_cert("um.example.com", X509_REQ_get0_pubkey(req), -DAY, 365 * DAY, ca.key,
	                    ca.x, "serverAuth,clientAuth", false);
	struct om_cert_bundle bun = { 0 };
	bun.certs = sk_X509_new_null();
	bun.crls = sk_X509_CRL_new_null();
	sk_X509_push(bun.certs, x);
	X509_up_ref(ca.x);
	sk_X509_push(bun.certs, ca.x);
	const struct om_cert *c;
	struct om_cert_import_report rep;
	UT_EQ_INT(0, om_cert_import_personal(s, &bun, &c, &rep));
	UT_TRUE(rep.matched_request);
	UT_EQ_INT(1, rep.nchain);
	UT_TRUE(c->key != NULL);
	UT_TRUE(!c->self_signed);
	UT_EQ_STR("CN=um.example.com", c->subject);
	UT_EQ_INT(1, sk_X509_num(c->chain));
	/* Survives a reopen: key and chain on disk. */
	s = reopen(s);
	UT_EQ_INT(1, om_cert_store_count(s, OM_CERT_PERSONAL));
	c = om_cert_store_at(s, OM_CERT_PERSONAL, 0);
	UT_TRUE(c->key != NULL && c->chain && sk_X509_num(c->chain) == 1);
	om_cert_bundle_free(&bun);
	X509_REQ_free(req);
	om_free(pem);
	om_cert_store_free(s);
	free_ca(&ca);
	teardown();
}

/* Trusted roots and CRLs become one X509_STORE for the TLS module: a leaf
 * the CRL revokes fails verification, another passes. */
UT_TEST(x509_store_honours_crl)
{
	setup();
	struct ca ca = make_ca();
	EVP_PKEY *k = ec_key();
	X509 *good = make_cert("good", k, -DAY, 100 * DAY, ca.key, ca.x, NULL, false);
	X509 *bad = make_cert("bad", k, -DAY, 100 * DAY, ca.key, ca.x, NULL, false);
	struct om_cert_store *s = NULL;
	const struct om_cert *c;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	UT_EQ_INT(0, om_cert_store_add(s, OM_CERT_TRUSTED, ca.x, NULL, NULL, &c));

	X509_CRL *crl = X509_CRL_new();
	X509_REVOKED *rev = X509_REVOKED_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)(now_ms / 1000) - 60);
	ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)(now_ms / 1000) + 86400);
	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca.x));
	X509_CRL_set1_lastUpdate(crl, t);
	X509_CRL_set1_nextUpdate(crl, next);
	X509_REVOKED_set_serialNumber(rev, X509_get_serialNumber(bad));
	X509_REVOKED_set_revocationDate(rev, t);
	X509_CRL_add0_revoked(crl, rev);
	UT_TRUE(X509_CRL_sign(crl, ca.key, EVP_sha256()) > 0);
	const struct om_cert_crl *stored;
	UT_EQ_INT(0, om_cert_store_add_crl(s, crl, now_ms, &stored));
	s = reopen(s);
	UT_EQ_INT(1, om_cert_store_count(s, OM_CERT_TRUSTED));

	X509_STORE *st = NULL;
	UT_EQ_INT(0, om_cert_store_x509(s, &st));
	X509 *leaf[2] = { good, bad };
	int want[2] = { X509_V_OK, X509_V_ERR_CERT_REVOKED };
	for (int i = 0; i < 2; i++) {
		X509_STORE_CTX *ctx = X509_STORE_CTX_new();
		X509_STORE_CTX_init(ctx, st, leaf[i], NULL);
		/* The store carries the CRL; how CRLs are checked is the TLS
		 * module's policy (tests/unit/tls). */
		X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_CRL_CHECK);
		X509_verify_cert(ctx);
		UT_EQ_INT(want[i], X509_STORE_CTX_get_error(ctx));
		X509_STORE_CTX_free(ctx);
	}
	X509_STORE_free(st);
	ASN1_TIME_free(t);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	X509_free(good);
	X509_free(bad);
	EVP_PKEY_free(k);
	om_cert_store_free(s);
	free_ca(&ca);
	teardown();
}

/* ===================== out of memory ===================== */

static int oom_open_select(void *arg)
{
	(void)arg;
	struct om_cert_store *s = NULL;
	struct om_cert_selection sel;
	int err = om_cert_store_open(tmpdir, &s);
	if (err)
		return err;
	err = select_with(s, NULL, 2, &sel);
	if (!err)
		om_cert_selection_free(&sel);
	om_cert_store_free(s);
	return err;
}

UT_TEST(oom_sweep_store)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	for (int i = 0; i < 3; i++)
		add(s, "x", -DAY, (i + 1) * DAY, i ? &ca : NULL, NULL, false);
	om_cert_store_free(s);
	UT_TRUE(ut_oom_sweep(oom_open_select, NULL) > 5);
	free_ca(&ca);
	teardown();
}

static int oom_apply(void *arg)
{
	struct om_cert_policy pol = { .fqdn = "um.example.com",
		                      .auto_selfsigned = false,
		                      .tls_security_level = 2 };
	struct om_cert_mgr *m = NULL;
	int err = om_cert_mgr_new(tmpdir, &pol, &m);
	(void)arg;
	if (err)
		return err;
	err = om_cert_mgr_apply(m, &pol, now_ms);
	if (!err)
		(void)om_cert_watch_tick(m, now_ms + 20 * DAY * 1000);
	om_cert_mgr_free(m);
	return err;
}

UT_TEST(oom_sweep_apply_and_watch)
{
	setup();
	struct ca ca = make_ca();
	struct om_cert_store *s = NULL;
	UT_EQ_INT(0, om_cert_store_open(tmpdir, &s));
	add(s, "ca", -DAY, 30 * DAY, &ca, NULL, false);
	add(s, "ss", -DAY, 300 * DAY, NULL, NULL, false);
	EVP_PKEY *rk = ec_key();
	X509 *root = make_cert("Root", rk, -DAY, 25 * DAY, NULL, NULL, NULL, true);
	const struct om_cert *rc;
	UT_EQ_INT(0, om_cert_store_add(s, OM_CERT_TRUSTED, root, NULL, NULL, &rc));
	om_cert_store_free(s);
	ev_reset();
	UT_TRUE(ut_oom_sweep(oom_apply, NULL) > 5);
	/* The last, complete run chose the CA-issued one and watched both. */
	UT_TRUE(count_ev(OM_EV_CERT_IN_USE) >= 1);
	UT_TRUE(count_ev(OM_EV_CERT_EXPIRING) >= 1);
	UT_TRUE(count_ev(OM_EV_TRUSTED_EXPIRING) >= 1);
	X509_free(root);
	EVP_PKEY_free(rk);
	free_ca(&ca);
	teardown();
}

UT_MAIN(UT_CASE(order_every_step), UT_CASE(ca_issued_beats_longer_selfsigned), UT_CASE(exclusions),
        UT_CASE(selfsigned_needs_own_signature), UT_CASE(pin_overrides_order),
        UT_CASE(pin_invalid_is_error_not_switch), UT_CASE(too_weak_for_security_level),
        UT_CASE(generates_when_none_valid), UT_CASE(no_auto_selfsigned_fails),
        UT_CASE(fallback_ca_to_selfsigned_is_error), UT_CASE(change_logs_in_use_again),
        UT_CASE(watch_expiry), UT_CASE(find_by_prefix), UT_CASE(export_import_roundtrip),
        UT_CASE(csr_matches_issued_certificate), UT_CASE(x509_store_honours_crl),
        UT_CASE(oom_sweep_store), UT_CASE(oom_sweep_apply_and_watch))
