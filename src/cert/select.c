/* select.c — which certificate the server presents (R7, R9) and the
 * expiry watch (R8).
 *
 * The seed's order ("How Unified Messaging Determines Security Mode and
 * Selects Certificates"), among valid certificates:
 *   1. PKI or commercial (CA-issued), longest time to expiry first
 *   2. the shorter ones
 *   3. self-signed, longest first
 *   4. the shorter ones
 *   none valid -> generate a self-signed one (auto_selfsigned).
 * Valid: not-before <= now <= not-after, private key present, serverAuth
 * in the EKU when there is an EKU. A pin overrides the order; a pinned
 * certificate that is invalid stays in use (when it has its key) and
 * raises 1125 at error level: never a silent change. */
#include "cert/cert_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/events.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#define DAY_MS (86400 * (int64_t)1000)

const char *om_cert_verdict_str(enum om_cert_verdict v)
{
	switch (v) {
	case OM_CERT_CHOSEN:
		return "chosen";
	case OM_CERT_RANKED_LOWER:
		return "valid, ranked lower";
	case OM_CERT_NOT_PINNED:
		return "valid, another certificate is pinned";
	case OM_CERT_EXPIRED:
		return "expired";
	case OM_CERT_NOT_YET_VALID:
		return "not yet valid";
	case OM_CERT_NO_KEY:
		return "no private key";
	case OM_CERT_NO_SERVERAUTH:
		return "EKU lacks serverAuth";
	case OM_CERT_TOO_WEAK:
		return "key or signature too weak for tls_security_level";
	}
	return "?";
}

enum om_cert_verdict om_cert_check(const struct om_cert *c, int64_t now_ms)
{
	if (!c->key)
		return OM_CERT_NO_KEY;
	if (now_ms > c->not_after_ms)
		return OM_CERT_EXPIRED;
	if (now_ms < c->not_before_ms)
		return OM_CERT_NOT_YET_VALID;
	if (!c->eku_server)
		return OM_CERT_NO_SERVERAUTH;
	return OM_CERT_CHOSEN;
}

int om_cert_rank_cmp(const struct om_cert *a, const struct om_cert *b)
{
	if (a->self_signed != b->self_signed)
		return a->self_signed ? 1 : -1; /* CA-issued first */
	if (a->not_after_ms != b->not_after_ms)
		return a->not_after_ms > b->not_after_ms ? -1 : 1; /* longest first */
	if (a->not_before_ms != b->not_before_ms)
		return a->not_before_ms > b->not_before_ms ? -1 : 1; /* newest */
	return strcmp(a->sha256, b->sha256);                         /* stable */
}

/* Valid ones before invalid ones, each in rank order. */
static int cand_cmp(const void *pa, const void *pb)
{
	const struct om_cert_cand *a = pa, *b = pb;
	bool va = a->verdict == OM_CERT_CHOSEN, vb = b->verdict == OM_CERT_CHOSEN;
	if (va != vb)
		return va ? -1 : 1;
	return om_cert_rank_cmp(a->cert, b->cert);
}

/* Asks OpenSSL what the TLS module will ask: a context at the level refuses
 * an end-entity key, a chain certificate's key or a (non-self-signed)
 * signature digest below the level's bits. */
static bool too_weak(SSL_CTX *ctx, const struct om_cert *c)
{
	bool weak = SSL_CTX_use_certificate(ctx, c->x509) != 1;
	for (int i = 0; !weak && c->chain && i < sk_X509_num(c->chain); i++)
		weak = SSL_CTX_add1_chain_cert(ctx, sk_X509_value(c->chain, i)) != 1;
	SSL_CTX_clear_chain_certs(ctx);
	ERR_clear_error();
	return weak;
}

int om_cert_select(const struct om_cert_store *s, const char *pin, int64_t now_ms,
                   int security_level, struct om_cert_selection *out)
{
	struct om_cert_selection sel;
	size_t n = om_cert_store_count(s, OM_CERT_PERSONAL);
	memset(&sel, 0, sizeof(sel));
	if (n) {
		sel.cands = om_calloc(n, sizeof(*sel.cands));
		if (!sel.cands)
			return ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		sel.cands[i].cert = om_cert_store_at(s, OM_CERT_PERSONAL, i);
		sel.cands[i].verdict = om_cert_check(sel.cands[i].cert, now_ms);
	}
	sel.ncands = n;
	if (security_level > 0 && n > 0) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_method());
		if (!ctx) {
			om_free(sel.cands);
			return ENOMEM;
		}
		SSL_CTX_set_security_level(ctx, security_level);
		for (size_t i = 0; i < n; i++)
			if (sel.cands[i].verdict == OM_CERT_CHOSEN &&
			    too_weak(ctx, sel.cands[i].cert))
				sel.cands[i].verdict = OM_CERT_TOO_WEAK;
		SSL_CTX_free(ctx);
	}
	if (n > 1)
		qsort(sel.cands, n, sizeof(*sel.cands), cand_cmp);

	if (pin && *pin) {
		const struct om_cert *pc = NULL;
		sel.pinned = true;
		snprintf(sel.pin, sizeof(sel.pin), "%s", pin);
		int ferr = om_cert_store_find_personal(s, pin, &pc);
		sel.pin_ambiguous = ferr == EEXIST;
		sel.pin_verdict = OM_CERT_NO_KEY;
		for (size_t i = 0; pc && i < n; i++) {
			if (sel.cands[i].cert != pc)
				continue;
			sel.pin_found = true;
			sel.pin_verdict = sel.cands[i].verdict;
			if (pc->key) {
				sel.chosen = pc;
				/* Move the pinned one to the front, keep the rest in order. */
				struct om_cert_cand pinned = sel.cands[i];
				memmove(&sel.cands[1], &sel.cands[0], i * sizeof(*sel.cands));
				sel.cands[0] = pinned;
			}
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (sel.cands[i].cert == sel.chosen)
				sel.cands[i].verdict = OM_CERT_CHOSEN;
			else if (sel.cands[i].verdict == OM_CERT_CHOSEN)
				sel.cands[i].verdict = OM_CERT_NOT_PINNED;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			if (sel.cands[i].verdict != OM_CERT_CHOSEN)
				continue;
			if (!sel.chosen)
				sel.chosen = sel.cands[i].cert;
			else
				sel.cands[i].verdict = OM_CERT_RANKED_LOWER;
		}
	}
	*out = sel;
	return 0;
}

void om_cert_selection_free(struct om_cert_selection *sel)
{
	om_free(sel->cands);
	memset(sel, 0, sizeof(*sel));
}

/* ===================== the server's view ===================== */

struct watch_mark {
	char sha256[65];
	int64_t day; /* UTC day of the last event */
};

struct om_cert_mgr {
	char *data_dir;
	struct om_cert_store *store;
	const struct om_cert *cur;
	char cur_sha256[65]; /* what 1114 last reported */
	bool cur_ca;
	struct watch_mark inuse;
	struct watch_mark *marks; /* trusted certificates */
	size_t nmarks, capmarks;
};

/* Room for `extra` more watch marks, so that the daily watch never needs
 * memory it could fail to get (0 or ENOMEM). */
static int marks_reserve(struct om_cert_mgr *m, size_t extra)
{
	size_t want = m->nmarks + extra;
	if (want <= m->capmarks)
		return 0;
	struct watch_mark *v = om_realloc(m->marks, want * sizeof(*v));
	if (!v)
		return ENOMEM;
	m->marks = v;
	m->capmarks = want;
	return 0;
}

int om_cert_mgr_new(const char *data_dir, const struct om_cert_policy *pol,
                    struct om_cert_mgr **out)
{
	struct om_cert_mgr *m = om_calloc(1, sizeof(*m));
	(void)pol;
	if (!m)
		return ENOMEM;
	m->data_dir = om_strdup(data_dir);
	if (!m->data_dir) {
		om_free(m);
		return ENOMEM;
	}
	m->inuse.day = -1;
	*out = m;
	return 0;
}

void om_cert_mgr_free(struct om_cert_mgr *m)
{
	if (!m)
		return;
	om_cert_store_free(m->store);
	om_free(m->marks);
	om_free(m->data_dir);
	om_free(m);
}

const struct om_cert *om_cert_mgr_current(const struct om_cert_mgr *m)
{
	return m->cur;
}

const struct om_cert_store *om_cert_mgr_store(const struct om_cert_mgr *m)
{
	return m->store;
}

static void fmt_time(int64_t ms, char *buf, size_t len)
{
	om_time_format(ms, buf, len);
}

static void emit_in_use(const struct om_cert *c, bool pinned)
{
	char na[40];
	fmt_time(c->not_after_ms, na, sizeof(na));
	/* Source = the certificate: every change is its own line (the rate
	 * limit is per source), a repeat of the same one is not. */
	om_event(OM_EV_CERT_IN_USE, c->sha1, "certificate in use", "issuer", c->issuer, "subject",
	         c->subject, "serial", c->serial, "sha1", c->sha1, "sha256", c->sha256, "not_after",
	         na, "kind", c->self_signed ? "self-signed" : "ca-issued", "pinned",
	         pinned ? "yes" : "no", NULL);
}

static void emit_pin_invalid(const struct om_cert_selection *sel)
{
	const char *why = sel->pin_found       ? om_cert_verdict_str(sel->pin_verdict)
	                  : sel->pin_ambiguous ? "matches several certificates: give more digits"
	                                       : "not in the personal store";
	om_event_level(OM_CERT_EV_PIN_INVALID, OM_LOG_ERROR, sel->pin,
	               sel->chosen ? "pinned certificate is not valid: still in use, as pinned"
	                           : "pinned certificate cannot be used: no certificate in use",
	               "pin", sel->pin, "reason", why, "fix",
	               "import a valid certificate and pin it, or set the pin to auto", NULL);
}

int om_cert_mgr_apply(struct om_cert_mgr *m, const struct om_cert_policy *pol, int64_t now_ms)
{
	struct om_cert_store *s = NULL;
	struct om_cert_selection sel = { 0 };
	bool pinned = pol->pin && *pol->pin, generated = false, had_ca = false;
	int err = om_cert_store_open(m->data_dir, &s);
	if (err)
		return err;
	err = om_cert_select(s, pol->pin, now_ms, pol->tls_security_level, &sel);
	if (err)
		goto out;
	for (size_t i = 0; i < sel.ncands; i++)
		if (!sel.cands[i].cert->self_signed)
			had_ca = true;
	if (pinned && (!sel.chosen || sel.pin_verdict != OM_CERT_CHOSEN))
		emit_pin_invalid(&sel);
	if (!sel.chosen && !pinned && pol->auto_selfsigned) {
		const struct om_cert *gen;
		char host[256];
		const char *fqdn = pol->fqdn;
		if (!fqdn || !*fqdn) {
			if (gethostname(host, sizeof(host)) != 0)
				snprintf(host, sizeof(host), "localhost");
			host[sizeof(host) - 1] = '\0';
			fqdn = host;
		}
		err = om_cert_store_new_selfsigned(s, fqdn, pol->key, pol->days, now_ms, &gen);
		if (err) {
			om_log(OM_LOG_ERROR, "could not generate a self-signed certificate",
			       "error", strerror(err), NULL);
			goto out;
		}
		if (pol->tls_security_level > 0) {
			/* Levels 4-5 want more than P-256 / RSA-3072 give. */
			SSL_CTX *ctx = SSL_CTX_new(TLS_method());
			bool weak = true;
			if (ctx) {
				SSL_CTX_set_security_level(ctx, pol->tls_security_level);
				weak = too_weak(ctx, gen);
				SSL_CTX_free(ctx);
			}
			if (weak) {
				om_log(OM_LOG_ERROR,
				       "generated certificate is too weak for tls_security_level",
				       "sha1", gen->sha1, "key", gen->key_type, "fix",
				       "import a stronger certificate or lower tls_security_level",
				       NULL);
				err = ENOENT;
				goto out;
			}
		}
		om_event(OM_EV_CERT_GENERATED, "server", "self-signed certificate generated",
		         "subject", gen->subject, "sha1", gen->sha1, "sha256", gen->sha256, "key",
		         gen->key_type, NULL);
		sel.chosen = gen;
		generated = true;
	}
	if (!sel.chosen) {
		err = ENOENT;
		if (!pinned)
			om_log(OM_LOG_ERROR, "no valid certificate and auto_selfsigned is off",
			       "fix", "import one or run: openum cert new-selfsigned", NULL);
		goto out;
	}
	/* The expiry watch's marks for every trusted certificate, now, while
	 * a failure can still be reported. */
	err = marks_reserve(m, om_cert_store_count(s, OM_CERT_TRUSTED));
	if (err)
		goto out;
	/* Swap: from here on nothing fails. */
	const struct om_cert *c = sel.chosen;
	bool changed = strcmp(m->cur_sha256, c->sha256) != 0;
	/* A pin is the administrator's own choice: only the automatic order
	 * "falls back". */
	bool fell_back = !pinned && c->self_signed && (m->cur ? m->cur_ca : had_ca);
	if (changed && fell_back) {
		om_event_level(OM_EV_CERT_FALLBACK_SELFSIGNED, OM_LOG_ERROR, "server",
		               "fell back from a CA-issued to a self-signed certificate: gateways "
		               "will refuse it",
		               "sha1", c->sha1, "previous", m->cur ? m->cur_sha256 : "",
		               "generated", generated ? "yes" : "no", NULL);
	}
	if (changed) {
		emit_in_use(c, pinned);
		if (!c->eku_client)
			om_event(OM_EV_CERT_NO_CLIENTAUTH, "server",
			         "certificate in use lacks clientAuth: gateways that check it "
			         "will refuse our outgoing connections",
			         "sha1", c->sha1, NULL);
		snprintf(m->cur_sha256, sizeof(m->cur_sha256), "%s", c->sha256);
		m->inuse.day = -1; /* a new certificate: the watch starts over */
	}
	m->cur_ca = !c->self_signed;
	om_cert_store_free(m->store);
	m->store = s;
	m->cur = c;
	s = NULL;
out:
	om_cert_selection_free(&sel);
	om_cert_store_free(s);
	return err;
}

/* ===================== expiry watch ===================== */

static struct watch_mark *mark_for(struct om_cert_mgr *m, const char *sha256)
{
	for (size_t i = 0; i < m->nmarks; i++)
		if (strcmp(m->marks[i].sha256, sha256) == 0)
			return &m->marks[i];
	if (marks_reserve(m, 1))
		return NULL;
	struct watch_mark *k = &m->marks[m->nmarks++];
	snprintf(k->sha256, sizeof(k->sha256), "%s", sha256);
	k->day = -1;
	return k;
}

static int64_t days_left(const struct om_cert *c, int64_t now_ms)
{
	int64_t d = c->not_after_ms - now_ms;
	return d >= 0 ? d / DAY_MS : -((-d + DAY_MS - 1) / DAY_MS);
}

int om_cert_watch_tick(struct om_cert_mgr *m, int64_t now_ms)
{
	int64_t day = now_ms / DAY_MS;
	int n = 0;
	char na[40], left[24];
	const struct om_cert *c = m->cur;
	if (c && m->inuse.day != day) {
		int64_t dl = days_left(c, now_ms);
		fmt_time(c->not_after_ms, na, sizeof(na));
		snprintf(left, sizeof(left), "%lld", (long long)dl);
		if (now_ms > c->not_after_ms) {
			om_event(OM_EV_CERT_EXPIRED, c->sha1, "certificate in use has expired",
			         "sha1", c->sha1, "subject", c->subject, "not_after", na,
			         "days_left", left, NULL);
			m->inuse.day = day;
			n++;
		} else if (c->not_after_ms - now_ms <= OM_CERT_WARN_DAYS * DAY_MS) {
			om_event(OM_EV_CERT_EXPIRING, c->sha1, "certificate in use expires soon",
			         "sha1", c->sha1, "subject", c->subject, "not_after", na,
			         "days_left", left, NULL);
			m->inuse.day = day;
			n++;
		}
	}
	size_t nt = m->store ? om_cert_store_count(m->store, OM_CERT_TRUSTED) : 0;
	for (size_t i = 0; i < nt; i++) {
		const struct om_cert *t = om_cert_store_at(m->store, OM_CERT_TRUSTED, i);
		if (t->not_after_ms - now_ms > OM_CERT_WARN_DAYS * DAY_MS)
			continue;
		struct watch_mark *k = mark_for(m, t->sha256); /* reserved by apply */
		if (k && k->day == day)
			continue;
		fmt_time(t->not_after_ms, na, sizeof(na));
		snprintf(left, sizeof(left), "%lld", (long long)days_left(t, now_ms));
		om_event(OM_EV_TRUSTED_EXPIRING, t->sha1,
		         now_ms > t->not_after_ms ? "trusted certificate has expired"
		                                  : "trusted certificate expires soon",
		         "sha1", t->sha1, "subject", t->subject, "not_after", na, "days_left", left,
		         NULL);
		if (k)
			k->day = day;
		n++;
	}
	return n;
}

int om_cert_watch_peer(struct om_cert_mgr *m, X509 *cert, const char *peer, int64_t now_ms)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char sha256[65], sha1[41], na[40], left[24];
	int64_t not_after = om_cert_asn1_ms(X509_get0_notAfter(cert));
	if (not_after - now_ms > OM_CERT_WARN_DAYS * DAY_MS)
		return 0;
	if (!X509_digest(cert, EVP_sha256(), md, &mdlen))
		return 0;
	om_cert_hex(md, mdlen, false, sha256);
	struct watch_mark *k = mark_for(m, sha256); /* NULL: warn, without the once-a-day memory */
	int64_t day = now_ms / DAY_MS;
	if (k && k->day == day)
		return 0;
	if (!X509_digest(cert, EVP_sha1(), md, &mdlen))
		return 0;
	om_cert_hex(md, mdlen, true, sha1);
	char subject[256];
	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
	fmt_time(not_after, na, sizeof(na));
	int64_t d = not_after - now_ms;
	snprintf(left, sizeof(left), "%lld",
	         (long long)(d >= 0 ? d / DAY_MS : -((-d + DAY_MS - 1) / DAY_MS)));
	om_event(OM_EV_TRUSTED_EXPIRING, peer ? peer : sha1,
	         now_ms > not_after ? "gateway certificate has expired"
	                            : "gateway certificate expires soon",
	         "peer", peer ? peer : "", "sha1", sha1, "subject", subject, "not_after", na,
	         "days_left", left, NULL);
	if (k)
		k->day = day;
	return 1;
}
