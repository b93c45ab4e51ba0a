/* dir_store.c — dial plans, gateways, this server and mailboxes in
 * openum.db, and the rules that keep them consistent (R3, R4, R9).
 *
 * Every change: BEGIN IMMEDIATE (one writer at a time; readers go on in
 * WAL), read the rows the rules need, apply, check, write, COMMIT — or
 * ROLLBACK on any error and on --dry-run. Rules are checked here and not in
 * the CLI so that no caller can bypass them. */
#include "directory/dir_private.h"

#include "core/fqdn.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/str.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void om_dir_seterr(struct om_dir_err *err, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

#define seterr om_dir_seterr

static int db_fail(sqlite3 *h, struct om_dir_err *err, const char *what)
{
	seterr(err, "the directory database failed while %s: %s", what, sqlite3_errmsg(h));
	return EIO;
}

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

#define COPY(dst, src) copy((dst), sizeof(dst), (src))

/* The text of a buffer, "" after an allocation failure. */
static const char *bs(struct om_buf *b)
{
	const char *s = om_buf_cstr(b);
	return s ? s : "";
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

/* ------------------------------------------------------------ statements */

/* Prepares sql and binds the arguments described by `types` ('t' text,
 * 'i' int64, 'n' NULL-or-text: NULL when the string is empty). */
static int prep(sqlite3 *h, sqlite3_stmt **st, const char *sql, const char *types, ...)
{
	va_list ap;
	if (sqlite3_prepare_v2(h, sql, -1, st, NULL) != SQLITE_OK)
		return EIO;
	va_start(ap, types);
	for (int i = 0; types && types[i]; i++) {
		int rc;
		if (types[i] == 't') {
			rc = sqlite3_bind_text(*st, i + 1, va_arg(ap, const char *), -1,
			                       SQLITE_TRANSIENT);
		} else if (types[i] == 'n') {
			const char *s = va_arg(ap, const char *);
			rc = (s && *s) ? sqlite3_bind_text(*st, i + 1, s, -1, SQLITE_TRANSIENT)
			               : sqlite3_bind_null(*st, i + 1);
		} else {
			rc = sqlite3_bind_int64(*st, i + 1, va_arg(ap, int64_t));
		}
		if (rc != SQLITE_OK) {
			va_end(ap);
			sqlite3_finalize(*st);
			*st = NULL;
			return EIO;
		}
	}
	va_end(ap);
	return 0;
}

/* Runs a statement that returns no rows. */
static int run(sqlite3 *h, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int rc;
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return EIO;
	va_start(ap, types);
	for (int i = 0; types && types[i]; i++) {
		if (types[i] == 't') {
			rc = sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1,
			                       SQLITE_TRANSIENT);
		} else if (types[i] == 'n') {
			const char *s = va_arg(ap, const char *);
			rc = (s && *s) ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT)
			               : sqlite3_bind_null(st, i + 1);
		} else {
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
		}
		if (rc != SQLITE_OK) {
			va_end(ap);
			sqlite3_finalize(st);
			return EIO;
		}
	}
	va_end(ap);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : EIO;
}

/* ----------------------------------------------------------- transactions */

static int tx_begin(struct om_db *db, struct om_dir_err *err)
{
	int rc = om_db_begin(db);
	if (rc)
		seterr(
		    err,
		    "the directory is busy or cannot be written (%s): try again; if it persists, "
		    "check that %s is writable",
		    strerror(rc), om_db_path(db));
	return rc;
}

/* Commits when rc is 0 and this is no dry run; else rolls back. */
static int tx_end(struct om_db *db, int rc, int flags, struct om_dir_err *err)
{
	if (rc == 0 && !(flags & OM_DIR_DRY_RUN)) {
		rc = om_db_commit(db);
		if (rc) {
			seterr(err, "the change could not be saved (%s): nothing was changed",
			       strerror(rc));
			om_db_rollback(db);
		}
		return rc;
	}
	om_db_rollback(db);
	return rc;
}

/* A read that is consistent across several statements. */
static int rd_begin(sqlite3 *h)
{
	return sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : EIO;
}

static void rd_end(sqlite3 *h)
{
	sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
}

/* -------------------------------------------------------------- dial plans */

#define DP_COLS "id, name, digits, security, pilot, max_message_s, max_greeting_s, rtp_symmetric"

static void dp_row(sqlite3_stmt *st, struct om_dir_dialplan *p)
{
	memset(p, 0, sizeof(*p));
	p->id = sqlite3_column_int64(st, 0);
	COPY(p->name, col(st, 1));
	p->digits = sqlite3_column_int(st, 2);
	(void)om_dir_security_parse(col(st, 3), &p->security);
	COPY(p->pilot, col(st, 4));
	p->max_message_s = sqlite3_column_int(st, 5);
	p->max_greeting_s = sqlite3_column_int(st, 6);
	p->rtp_symmetric = sqlite3_column_int(st, 7) != 0;
}

/* By name (when name) or id. 0, ENOENT, EIO. */
static int dp_load(sqlite3 *h, const char *name, int64_t id, struct om_dir_dialplan *out)
{
	sqlite3_stmt *st = NULL;
	int rc = name ? prep(h, &st, "SELECT " DP_COLS " FROM dialplans WHERE name = ?", "t", name)
	              : prep(h, &st, "SELECT " DP_COLS " FROM dialplans WHERE id = ?", "i", id);
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		dp_row(st, out);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? ENOENT : EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Steps `st` (finalized here) to its end, one element of `size` bytes per
 * row filled by `row`, into an array that grows as needed. On success
 * *out (om_free'd by the caller) and *n; on failure nothing is kept. */
static int load_rows(sqlite3_stmt *st, size_t size, void (*row)(sqlite3_stmt *, void *), void **out,
                     size_t *n)
{
	char *arr = NULL;
	size_t cnt = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			void *p = om_realloc(arr, ncap * size);
			if (!p) {
				rc = ENOMEM;
				goto out;
			}
			arr = p;
			cap = ncap;
		}
		row(st, arr + size * cnt++);
	}
	rc = rc == SQLITE_DONE ? 0 : EIO;
out:
	sqlite3_finalize(st);
	if (rc) {
		om_free(arr);
		return rc;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

static void dp_row_v(sqlite3_stmt *st, void *p)
{
	dp_row(st, p);
}

int om_dir_load_dialplans(sqlite3 *h, struct om_dir_dialplan **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(h, &st, "SELECT " DP_COLS " FROM dialplans ORDER BY name", NULL);
	if (rc)
		return rc;
	void *arr;
	if ((rc = load_rows(st, sizeof(**out), dp_row_v, &arr, n)))
		return rc;
	*out = arr;
	return 0;
}

static bool secured_mode(enum om_dir_security s)
{
	return s == OM_SEC_SIPSECURED || s == OM_SEC_SECURED;
}

static const char *sec_title(enum om_dir_security s)
{
	return s == OM_SEC_SECURED      ? "Secured"
	       : s == OM_SEC_SIPSECURED ? "SIPSecured"
	                                : "Unsecured";
}

static int dp_check_values(const struct om_dir_dialplan *p, struct om_dir_err *err)
{
	if (!om_dir_name_valid(p->name)) {
		seterr(err,
		       "invalid dial plan name \"%s\": use 1-64 letters, digits, '.', '_' or '-', "
		       "starting with a letter or digit",
		       p->name);
		return EINVAL;
	}
	if (p->digits < 1 || p->digits > 20) {
		seterr(err, "invalid --digits %d: an extension has 1 to 20 digits", p->digits);
		return EINVAL;
	}
	if (p->pilot[0] && !om_dir_pilot_valid(p->pilot)) {
		seterr(err, "invalid --pilot \"%s\": use digits, optionally after a '+'", p->pilot);
		return EINVAL;
	}
	if (p->max_message_s < 1 || p->max_message_s > 86400 || p->max_greeting_s < 1 ||
	    p->max_greeting_s > 3600) {
		seterr(err, "invalid recording limit: messages 1-86400 s, greetings 1-3600 s");
		return EINVAL;
	}
	return 0;
}

static void dp_apply(struct om_dir_dialplan *p, const struct om_dir_dialplan *in, unsigned f)
{
	if (f & OM_DP_DIGITS)
		p->digits = in->digits;
	if (f & OM_DP_SECURITY)
		p->security = in->security;
	if (f & OM_DP_PILOT)
		COPY(p->pilot, in->pilot);
	if (f & OM_DP_MAX_MESSAGE)
		p->max_message_s = in->max_message_s;
	if (f & OM_DP_MAX_GREETING)
		p->max_greeting_s = in->max_greeting_s;
	if (f & OM_DP_RTP_SYMMETRIC)
		p->rtp_symmetric = in->rtp_symmetric;
}

static void dp_not_found(const char *name, struct om_dir_err *err)
{
	seterr(err,
	       "no dial plan named \"%s\": see `openum dialplan list`, or create it with "
	       "`openum dialplan new NAME --digits N`",
	       name);
}

/* Appends ", name" for each row of a one-column query, at most 20. Returns
 * the row count, or -1 on a database error. */
static long names_of(sqlite3 *h, struct om_buf *b, const char *sql, int64_t id)
{
	sqlite3_stmt *st = NULL;
	long n = 0;
	int rc;
	if (prep(h, &st, sql, "i", id))
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n < 20)
			om_buf_printf(b, "%s%s", n ? ", " : "", col(st, 0));
		else if (n == 20)
			om_buf_adds(b, ", ...");
		n++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? n : -1;
}

static bool gw_meets_plan(const struct om_dir_gateway *g, enum om_dir_security s)
{
	if (!secured_mode(s))
		return true;
	return g->tls_name[0] && g->transport == OM_TRANSPORT_TLS && g->port == 5061;
}

int om_dir_dialplan_new(struct om_db *db, const struct om_dir_dialplan *in, unsigned fields,
                        int flags, struct om_dir_dialplan *out, struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_dialplan p, cur;
	int64_t now = om_now_ms();
	int rc;
	memset(&p, 0, sizeof(p));
	COPY(p.name, in->name);
	p.security = OM_SEC_UNSECURED;
	p.max_message_s = 300;
	p.max_greeting_s = 60;
	dp_apply(&p, in, fields);
	if (!(fields & OM_DP_DIGITS)) {
		seterr(err, "a dial plan needs --digits N (the length of its extensions, 1-20)");
		return EINVAL;
	}
	if ((rc = dp_check_values(&p, err)))
		return rc;
	if ((rc = tx_begin(db, err)))
		return rc;
	rc = dp_load(h, p.name, 0, &cur);
	if (rc == 0) {
		seterr(err,
		       "a dial plan named \"%s\" already exists (names are unique regardless of "
		       "case): choose another name, or change it with `openum dialplan set %s`",
		       cur.name, cur.name);
		rc = EEXIST;
		goto out;
	}
	if (rc != ENOENT) {
		rc = db_fail(h, err, "reading dial plans");
		goto out;
	}
	if (run(h,
	        "INSERT INTO dialplans (name, digits, security, pilot, max_message_s, "
	        "max_greeting_s, rtp_symmetric, created_ms, updated_ms) "
	        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	        "titniiiii", p.name, (int64_t)p.digits, om_dir_security_name(p.security), p.pilot,
	        (int64_t)p.max_message_s, (int64_t)p.max_greeting_s, (int64_t)p.rtp_symmetric, now,
	        now)) {
		rc = db_fail(h, err, "adding the dial plan");
		goto out;
	}
	rc = dp_load(h, p.name, 0, &p);
	if (rc)
		rc = db_fail(h, err, "reading the dial plan back");
out:
	rc = tx_end(db, rc, flags, err);
	if (!rc && out)
		*out = p;
	return rc;
}

int om_dir_dialplan_set(struct om_db *db, const char *name, const struct om_dir_dialplan *in,
                        unsigned fields, int flags, struct om_dir_dialplan *out,
                        struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_dialplan p, old;
	struct om_dir_gateway *gws = NULL;
	size_t ngw = 0;
	struct om_buf b;
	int rc;
	om_buf_init(&b);
	if ((rc = tx_begin(db, err)))
		return rc;
	rc = dp_load(h, name, 0, &p);
	if (rc) {
		if (rc == ENOENT)
			dp_not_found(name, err);
		else
			rc = db_fail(h, err, "reading dial plans");
		goto out;
	}
	old = p;
	dp_apply(&p, in, fields);
	if ((rc = dp_check_values(&p, err)))
		goto out;
	if (p.digits != old.digits) {
		long n = 0;
		sqlite3_stmt *st = NULL;
		if (prep(h, &st,
		         "SELECT extension FROM mailboxes WHERE dialplan_id = ? AND "
		         "length(extension) != ? ORDER BY extension",
		         "ii", p.id, (int64_t)p.digits)) {
			rc = db_fail(h, err, "reading mailboxes");
			goto out;
		}
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (n < 20)
				om_buf_printf(&b, "%s%s", n ? ", " : "", col(st, 0));
			n++;
		}
		sqlite3_finalize(st);
		if (n > 0) {
			seterr(
			    err,
			    "cannot change dial plan \"%s\" to %d-digit extensions: %ld mailbox(es) "
			    "have extensions of another length (%s%s). Remove or renumber them "
			    "first",
			    p.name, p.digits, n, bs(&b), n > 20 ? ", ..." : "");
			rc = EPERM;
			goto out;
		}
	}
	if (secured_mode(p.security) && !secured_mode(old.security)) {
		if ((rc = om_dir_load_gateways(h, &gws, &ngw))) {
			rc = db_fail(h, err, "reading gateways");
			goto out;
		}
		size_t bad = 0;
		om_buf_free(&b);
		om_buf_init(&b);
		for (size_t i = 0; i < ngw; i++) {
			if (gws[i].dialplan_id != p.id || gw_meets_plan(&gws[i], p.security))
				continue;
			om_buf_printf(&b, "%s%s", bad ? ", " : "", gws[i].name);
			bad++;
		}
		if (bad) {
			seterr(
			    err,
			    "cannot make dial plan \"%s\" %s: its gateway(s) %s do not use TLS on "
			    "port 5061 with a TLS name. Change them first (`openum gateway set NAME "
			    "--transport tls --port 5061 --tls-name FQDN`) or move them to another "
			    "dial plan",
			    p.name, sec_title(p.security), bs(&b));
			rc = EPERM;
			goto out;
		}
	}
	if (run(h,
	        "UPDATE dialplans SET digits = ?, security = ?, pilot = ?, max_message_s = ?, "
	        "max_greeting_s = ?, rtp_symmetric = ?, updated_ms = ? WHERE id = ?",
	        "itniiiii", (int64_t)p.digits, om_dir_security_name(p.security), p.pilot,
	        (int64_t)p.max_message_s, (int64_t)p.max_greeting_s, (int64_t)p.rtp_symmetric,
	        om_now_ms(), p.id)) {
		rc = db_fail(h, err, "changing the dial plan");
		goto out;
	}
	rc = dp_load(h, NULL, p.id, &p);
	if (rc)
		rc = db_fail(h, err, "reading the dial plan back");
out:
	om_free(gws);
	om_buf_free(&b);
	rc = tx_end(db, rc, flags, err);
	if (!rc && out)
		*out = p;
	return rc;
}

int om_dir_dialplan_remove(struct om_db *db, const char *name, int flags, struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_dialplan p;
	struct om_buf gw, mb;
	long ngw, nmb, nsrv = 0;
	int rc;
	om_buf_init(&gw);
	om_buf_init(&mb);
	if ((rc = tx_begin(db, err)))
		return rc;
	rc = dp_load(h, name, 0, &p);
	if (rc) {
		if (rc == ENOENT)
			dp_not_found(name, err);
		else
			rc = db_fail(h, err, "reading dial plans");
		goto out;
	}
	ngw =
	    names_of(h, &gw, "SELECT name FROM gateways WHERE dialplan_id = ? ORDER BY name", p.id);
	nmb = names_of(h, &mb,
	               "SELECT extension FROM mailboxes WHERE dialplan_id = ? ORDER BY extension",
	               p.id);
	{
		struct om_buf tmp;
		om_buf_init(&tmp);
		nsrv =
		    names_of(h, &tmp, "SELECT 1 FROM server_dialplans WHERE dialplan_id = ?", p.id);
		om_buf_free(&tmp);
	}
	if (ngw < 0 || nmb < 0 || nsrv < 0) {
		rc = db_fail(h, err, "reading what uses the dial plan");
		goto out;
	}
	if (ngw || nmb || nsrv) {
		seterr(err,
		       "dial plan \"%s\" is still in use:%s%s%s%s%s%s. Move or remove them first "
		       "(`openum gateway set NAME --dialplan OTHER`, `openum mailbox remove EXT "
		       "--dialplan %s`, `openum server set --dialplans ...`)",
		       p.name, ngw ? " gateway(s) " : "", ngw ? bs(&gw) : "",
		       nmb ? (ngw ? "; mailbox(es) " : " mailbox(es) ") : "", nmb ? bs(&mb) : "",
		       nsrv ? ((ngw || nmb) ? "; " : " ") : "",
		       nsrv ? "associated with this server" : "", p.name);
		rc = EBUSY;
		goto out;
	}
	if (run(h, "DELETE FROM dialplans WHERE id = ?", "i", p.id))
		rc = db_fail(h, err, "removing the dial plan");
out:
	om_buf_free(&gw);
	om_buf_free(&mb);
	return tx_end(db, rc, flags, err);
}

int om_dir_dialplan_get(struct om_db *db, const char *name, struct om_dir_dialplan *out,
                        struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	int rc = dp_load(h, name, 0, out);
	if (rc == ENOENT)
		dp_not_found(name, err);
	else if (rc)
		rc = db_fail(h, err, "reading dial plans");
	return rc;
}

int om_dir_dialplan_list(struct om_db *db, struct om_dir_dialplan **out, size_t *n)
{
	return om_dir_load_dialplans(om_db_sqlite(db), out, n);
}

/* ---------------------------------------------------------------- gateways */

#define GW_SELECT                                                                                 \
	"SELECT g.id, g.name, g.tls_name, g.port, g.transport, g.dialplan_id, d.name, g.status, " \
	"g.max_calls, g.outcalls, g.mwi, g.diversion FROM gateways g JOIN dialplans d ON d.id = g.dialplan_id "

static int gw_hosts(sqlite3 *h, struct om_dir_gateway *g)
{
	sqlite3_stmt *st = NULL;
	int rc =
	    prep(h, &st, "SELECT host FROM gateway_addresses WHERE gateway_id = ? ORDER BY pos",
	         "i", g->id);
	if (rc)
		return rc;
	g->nhosts = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (g->nhosts < OM_DIR_ADDRS_MAX &&
		    om_dir_host_parse(col(st, 0), &g->hosts[g->nhosts]) == 0)
			g->nhosts++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : EIO;
}

static void gw_row(sqlite3_stmt *st, struct om_dir_gateway *g)
{
	memset(g, 0, sizeof(*g));
	g->id = sqlite3_column_int64(st, 0);
	COPY(g->name, col(st, 1));
	COPY(g->tls_name, col(st, 2));
	g->port = sqlite3_column_int(st, 3);
	(void)om_dir_transport_parse(col(st, 4), &g->transport);
	g->dialplan_id = sqlite3_column_int64(st, 5);
	COPY(g->dialplan, col(st, 6));
	(void)om_dir_gw_status_parse(col(st, 7), &g->status);
	g->max_calls = sqlite3_column_int(st, 8);
	g->outcalls = sqlite3_column_int(st, 9) != 0;
	g->mwi = sqlite3_column_int(st, 10) != 0;
	g->diversion_bottom = !strcmp(col(st, 11), "bottom");
}

static int gw_load(sqlite3 *h, const char *name, struct om_dir_gateway *out)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(h, &st, GW_SELECT "WHERE g.name = ?", "t", name);
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		gw_row(st, out);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? ENOENT : EIO;
	}
	sqlite3_finalize(st);
	return rc ? rc : gw_hosts(h, out);
}

static void gw_row_v(sqlite3_stmt *st, void *g)
{
	gw_row(st, g);
}

int om_dir_load_gateways(sqlite3 *h, struct om_dir_gateway **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	struct om_dir_gateway *arr;
	void *v;
	size_t cnt;
	int rc = prep(h, &st, GW_SELECT "ORDER BY g.name", NULL);
	if (rc || (rc = load_rows(st, sizeof(*arr), gw_row_v, &v, &cnt)))
		return rc;
	arr = v;
	for (size_t i = 0; rc == 0 && i < cnt; i++)
		rc = gw_hosts(h, &arr[i]);
	if (rc) {
		om_free(arr);
		return rc;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

static void gw_not_found(const char *name, struct om_dir_err *err)
{
	seterr(err,
	       "no gateway named \"%s\": see `openum gateway list`, or create it with `openum "
	       "gateway new NAME --address HOST --dialplan PLAN`",
	       name);
}

static int gw_check_values(struct om_dir_gateway *g, struct om_dir_err *err)
{
	if (!om_dir_name_valid(g->name)) {
		seterr(err,
		       "invalid gateway name \"%s\": use 1-64 letters, digits, '.', '_' or '-', "
		       "starting with a letter or digit",
		       g->name);
		return EINVAL;
	}
	if (g->nhosts == 0 || g->nhosts > OM_DIR_ADDRS_MAX) {
		seterr(err, "a gateway needs 1 to %d addresses: --address HOST[,HOST...]",
		       OM_DIR_ADDRS_MAX);
		return EINVAL;
	}
	for (size_t i = 0; i < g->nhosts; i++) {
		struct om_dir_host hp;
		if (om_dir_host_parse(g->hosts[i].name, &hp)) {
			seterr(err,
			       "invalid address \"%s\": it is neither an IP address nor a fully "
			       "qualified domain name (give e.g. 192.0.2.10, 2001:db8::10 or "
			       "gw1.example.com)",
			       g->hosts[i].name);
			return EINVAL;
		}
		g->hosts[i] = hp;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(g->hosts[j].name, hp.name) == 0) {
				seterr(err, "address \"%s\" is given twice", hp.name);
				return EINVAL;
			}
		}
	}
	if (g->tls_name[0]) {
		char why[160];
		if (om_fqdn_check(g->tls_name, OM_FQDN_MULTI_LABEL, why, sizeof(why))) {
			seterr(err,
			       "invalid --tls-name \"%s\": %s. Give the fully qualified domain "
			       "name the gateway's certificate carries (no wildcards, no IP "
			       "address)",
			       g->tls_name, why);
			return EINVAL;
		}
		/* Kept and compared in canonical form: pbx.example.test. is
		 * pbx.example.test (RFC 1034 §3.1), PBX.Example.Test too. */
		(void)om_fqdn_norm(g->tls_name, strlen(g->tls_name), g->tls_name,
		                   sizeof(g->tls_name));
	}
	if (g->port < 1 || g->port > 65535) {
		seterr(err, "invalid --port %d: a port is 1-65535", g->port);
		return EINVAL;
	}
	if (g->max_calls < 0) {
		seterr(err, "invalid --max-calls %d: give 0 (no limit) or more", g->max_calls);
		return EINVAL;
	}
	return 0;
}

/* The rules that involve the plan and the other gateways (R4). */
static int gw_check_rules(sqlite3 *h, const struct om_dir_gateway *g,
                          const struct om_dir_dialplan *plan, struct om_dir_err *err)
{
	struct om_dir_gateway *all = NULL;
	size_t n = 0;
	int rc;
	if (!gw_meets_plan(g, plan->security)) {
		seterr(
		    err,
		    "gateway \"%s\": dial plan \"%s\" is %s, so its gateways must use TLS on port "
		    "5061 and have a TLS name (it has transport %s, port %d, %s%s). Give "
		    "--transport tls --port 5061 --tls-name FQDN",
		    g->name, plan->name, sec_title(plan->security),
		    om_dir_transport_name(g->transport), g->port,
		    g->tls_name[0] ? "TLS name " : "no TLS name", g->tls_name);
		return EPERM;
	}
	if (g->transport == OM_TRANSPORT_TLS && !g->tls_name[0]) {
		seterr(
		    err,
		    "gateway \"%s\" uses TLS but has no TLS name: give --tls-name FQDN (the name "
		    "its certificate carries)",
		    g->name);
		return EPERM;
	}
	if (g->status == OM_GW_DISABLED)
		return 0;
	if ((rc = om_dir_load_gateways(h, &all, &n)))
		return db_fail(h, err, "reading gateways");
	for (size_t i = 0; i < n && !rc; i++) {
		const struct om_dir_gateway *o = &all[i];
		if (o->id == g->id || o->status == OM_GW_DISABLED)
			continue;
		if (g->tls_name[0] && strcasecmp(o->tls_name, g->tls_name) == 0) {
			seterr(
			    err,
			    "TLS name \"%s\" is already claimed by %s gateway \"%s\": a TLS peer "
			    "must match exactly one trusted gateway. Use another TLS name, or "
			    "disable one of them (--status disabled)",
			    g->tls_name, om_dir_gw_status_name(o->status), o->name);
			rc = EPERM;
			break;
		}
		for (size_t a = 0; a < g->nhosts && !rc; a++) {
			for (size_t b = 0; b < o->nhosts; b++) {
				const struct om_dir_host *x = &g->hosts[a], *y = &o->hosts[b];
				bool same = x->is_ip == y->is_ip &&
				            (x->is_ip ? memcmp(x->ip, y->ip, 16) == 0
				                      : strcasecmp(x->name, y->name) == 0);
				if (!same)
					continue;
				seterr(err,
				       "address %s already belongs to %s gateway \"%s\": a peer "
				       "address must identify one trusted gateway. Use another "
				       "address, or disable one of them (--status disabled)",
				       x->name, om_dir_gw_status_name(o->status), o->name);
				rc = EPERM;
				break;
			}
		}
	}
	om_free(all);
	return rc;
}

static int gw_write_hosts(sqlite3 *h, const struct om_dir_gateway *g)
{
	if (run(h, "DELETE FROM gateway_addresses WHERE gateway_id = ?", "i", g->id))
		return EIO;
	for (size_t i = 0; i < g->nhosts; i++)
		if (run(h, "INSERT INTO gateway_addresses (gateway_id, pos, host) VALUES (?, ?, ?)",
		        "iit", g->id, (int64_t)i, g->hosts[i].name))
			return EIO;
	return 0;
}

static void gw_apply(struct om_dir_gateway *g, const struct om_dir_gateway *in, unsigned f)
{
	if (f & OM_GW_F_HOSTS) {
		memcpy(g->hosts, in->hosts, sizeof(g->hosts));
		g->nhosts = in->nhosts;
	}
	if (f & OM_GW_F_TLS_NAME)
		COPY(g->tls_name, in->tls_name);
	if (f & OM_GW_F_PORT)
		g->port = in->port;
	if (f & OM_GW_F_TRANSPORT)
		g->transport = in->transport;
	if (f & OM_GW_F_DIALPLAN)
		COPY(g->dialplan, in->dialplan);
	if (f & OM_GW_F_STATUS)
		g->status = in->status;
	if (f & OM_GW_F_MAX_CALLS)
		g->max_calls = in->max_calls;
	if (f & OM_GW_F_OUTCALLS)
		g->outcalls = in->outcalls;
	if (f & OM_GW_F_MWI)
		g->mwi = in->mwi;
	if (f & OM_GW_F_DIVERSION)
		g->diversion_bottom = in->diversion_bottom;
}

static int gw_update_row(sqlite3 *h, const struct om_dir_gateway *g)
{
	return run(
	    h,
	    "UPDATE gateways SET tls_name = ?, port = ?, transport = ?, dialplan_id = ?, "
	    "status = ?, max_calls = ?, outcalls = ?, mwi = ?, diversion = ?, updated_ms = ? "
	    "WHERE id = ?",
	    "nititiiitii", g->tls_name, (int64_t)g->port, om_dir_transport_name(g->transport),
	    g->dialplan_id, om_dir_gw_status_name(g->status), (int64_t)g->max_calls,
	    (int64_t)g->outcalls, (int64_t)g->mwi, g->diversion_bottom ? "bottom" : "top",
	    om_now_ms(), g->id);
}

int om_dir_gateway_new(struct om_db *db, const struct om_dir_gateway *in, unsigned fields,
                       int flags, struct om_dir_gateway *out, struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_gateway g, cur;
	struct om_dir_dialplan plan;
	int64_t now = om_now_ms();
	int rc;
	memset(&g, 0, sizeof(g));
	COPY(g.name, in->name);
	g.status = OM_GW_ENABLED;
	gw_apply(&g, in, fields);
	if (!(fields & OM_GW_F_HOSTS) || !(fields & OM_GW_F_DIALPLAN)) {
		seterr(err, "a new gateway needs --address HOST[,HOST...] and --dialplan NAME");
		return EINVAL;
	}
	if (!(fields & OM_GW_F_PORT))
		g.port = 5060; /* checked after the defaults below */
	if ((rc = gw_check_values(&g, err)))
		return rc;
	if ((rc = tx_begin(db, err)))
		return rc;
	rc = gw_load(h, g.name, &cur);
	if (rc == 0) {
		seterr(err,
		       "a gateway named \"%s\" already exists (names are unique regardless of "
		       "case): choose another name, or change it with `openum gateway set %s`",
		       cur.name, cur.name);
		rc = EEXIST;
		goto out;
	}
	if (rc != ENOENT) {
		rc = db_fail(h, err, "reading gateways");
		goto out;
	}
	rc = dp_load(h, g.dialplan, 0, &plan);
	if (rc) {
		if (rc == ENOENT)
			dp_not_found(g.dialplan, err);
		else
			rc = db_fail(h, err, "reading dial plans");
		goto out;
	}
	g.dialplan_id = plan.id;
	COPY(g.dialplan, plan.name);
	/* Defaults (R4): secured plans talk TLS on 5061; the TLS name defaults
	 * to the first address when that is an FQDN. */
	if (!(fields & OM_GW_F_TRANSPORT))
		g.transport =
		    (secured_mode(plan.security) || ((fields & OM_GW_F_PORT) && g.port == 5061))
		        ? OM_TRANSPORT_TLS
		        : OM_TRANSPORT_TCP;
	if (!(fields & OM_GW_F_PORT))
		g.port = g.transport == OM_TRANSPORT_TLS ? 5061 : 5060;
	if (!(fields & OM_GW_F_TLS_NAME) && !g.hosts[0].is_ip &&
	    (g.transport == OM_TRANSPORT_TLS || secured_mode(plan.security)))
		COPY(g.tls_name, g.hosts[0].name);
	if ((rc = gw_check_rules(h, &g, &plan, err)))
		goto out;
	if (run(h,
	        "INSERT INTO gateways (name, tls_name, port, transport, dialplan_id, status, "
	        "max_calls, outcalls, mwi, diversion, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, "
	        "?, ?, ?, ?, ?, ?, ?)",
	        "tnititiiitii", g.name, g.tls_name, (int64_t)g.port,
	        om_dir_transport_name(g.transport), g.dialplan_id, om_dir_gw_status_name(g.status),
	        (int64_t)g.max_calls, (int64_t)g.outcalls, (int64_t)g.mwi,
	        g.diversion_bottom ? "bottom" : "top", now, now)) {
		rc = db_fail(h, err, "adding the gateway");
		goto out;
	}
	g.id = sqlite3_last_insert_rowid(h);
	if (gw_write_hosts(h, &g) || gw_load(h, g.name, &g))
		rc = db_fail(h, err, "adding the gateway's addresses");
out:
	rc = tx_end(db, rc, flags, err);
	if (!rc && out)
		*out = g;
	return rc;
}

int om_dir_gateway_set(struct om_db *db, const char *name, const struct om_dir_gateway *in,
                       unsigned fields, int flags, struct om_dir_gateway *out,
                       struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_gateway g;
	struct om_dir_dialplan plan;
	int rc;
	if ((rc = tx_begin(db, err)))
		return rc;
	rc = gw_load(h, name, &g);
	if (rc) {
		if (rc == ENOENT)
			gw_not_found(name, err);
		else
			rc = db_fail(h, err, "reading gateways");
		goto out;
	}
	gw_apply(&g, in, fields);
	if ((rc = gw_check_values(&g, err)))
		goto out;
	rc = (fields & OM_GW_F_DIALPLAN) ? dp_load(h, g.dialplan, 0, &plan)
	                                 : dp_load(h, NULL, g.dialplan_id, &plan);
	if (rc) {
		if (rc == ENOENT)
			dp_not_found(g.dialplan, err);
		else
			rc = db_fail(h, err, "reading dial plans");
		goto out;
	}
	g.dialplan_id = plan.id;
	COPY(g.dialplan, plan.name);
	if ((rc = gw_check_rules(h, &g, &plan, err)))
		goto out;
	if (gw_update_row(h, &g) || ((fields & OM_GW_F_HOSTS) && gw_write_hosts(h, &g)) ||
	    gw_load(h, g.name, &g))
		rc = db_fail(h, err, "changing the gateway");
out:
	rc = tx_end(db, rc, flags, err);
	if (!rc && out)
		*out = g;
	return rc;
}

int om_dir_gateway_remove(struct om_db *db, const char *name, int flags, struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_gateway g;
	int rc;
	if ((rc = tx_begin(db, err)))
		return rc;
	rc = gw_load(h, name, &g);
	if (rc) {
		if (rc == ENOENT)
			gw_not_found(name, err);
		else
			rc = db_fail(h, err, "reading gateways");
		goto out;
	}
	if (run(h, "DELETE FROM gateways WHERE id = ?", "i", g.id))
		rc = db_fail(h, err, "removing the gateway");
out:
	return tx_end(db, rc, flags, err);
}

int om_dir_gateway_get(struct om_db *db, const char *name, struct om_dir_gateway *out,
                       struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	int rc;
	if (rd_begin(h))
		return db_fail(h, err, "reading gateways");
	rc = gw_load(h, name, out);
	rd_end(h);
	if (rc == ENOENT)
		gw_not_found(name, err);
	else if (rc)
		rc = db_fail(h, err, "reading gateways");
	return rc;
}

int om_dir_gateway_list(struct om_db *db, struct om_dir_gateway **out, size_t *n)
{
	sqlite3 *h = om_db_sqlite(db);
	int rc;
	if (rd_begin(h))
		return EIO;
	rc = om_dir_load_gateways(h, out, n);
	rd_end(h);
	return rc;
}

/* ------------------------------------------------------------- this server */

int om_dir_load_server(sqlite3 *h, struct om_dir_server *out)
{
	sqlite3_stmt *st = NULL;
	int rc;
	memset(out, 0, sizeof(*out));
	out->status = OM_SRV_ENABLED;
	if (prep(h, &st, "SELECT fqdn, pinned_certificate, status FROM servers WHERE id = 1", NULL))
		return EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		COPY(out->fqdn, col(st, 0));
		COPY(out->pinned_certificate, col(st, 1));
		(void)om_dir_srv_status_parse(col(st, 2), &out->status);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return EIO;
	if (prep(h, &st,
	         "SELECT d.name FROM server_dialplans s JOIN dialplans d ON d.id = s.dialplan_id "
	         "WHERE s.server_id = 1 ORDER BY d.name",
	         NULL))
		return EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (out->ndialplans < OM_DIR_PLANS_MAX)
			COPY(out->dialplans[out->ndialplans++], col(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : EIO;
}

int om_dir_server_get(struct om_db *db, struct om_dir_server *out, struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	int rc;
	if (rd_begin(h))
		return db_fail(h, err, "reading the server's settings");
	rc = om_dir_load_server(h, out);
	rd_end(h);
	if (rc)
		rc = db_fail(h, err, "reading the server's settings");
	return rc;
}

int om_dir_server_set(struct om_db *db, const struct om_dir_server *in, unsigned fields, int flags,
                      struct om_dir_server *out, struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_server s;
	int64_t ids[OM_DIR_PLANS_MAX];
	size_t nids = 0;
	int rc;
	char fqdn_why[160];
	if ((fields & OM_SRV_F_FQDN) && in->fqdn[0] &&
	    om_fqdn_check(in->fqdn, OM_FQDN_MULTI_LABEL, fqdn_why, sizeof(fqdn_why))) {
		seterr(err,
		       "invalid --fqdn \"%s\": %s. Give this server's fully qualified domain name",
		       in->fqdn, fqdn_why);
		return EINVAL;
	}
	if ((fields & OM_SRV_F_CERT) && in->pinned_certificate[0] &&
	    !om_dir_thumbprint_valid(in->pinned_certificate)) {
		seterr(err,
		       "invalid --certificate \"%s\": give a certificate's SHA-1 or SHA-256 "
		       "thumbprint (hex, see `openum cert list`) or `auto`",
		       in->pinned_certificate);
		return EINVAL;
	}
	if ((fields & OM_SRV_F_DIALPLANS) && in->ndialplans > OM_DIR_PLANS_MAX) {
		seterr(err, "too many dial plans: at most %d", OM_DIR_PLANS_MAX);
		return EINVAL;
	}
	if ((rc = tx_begin(db, err)))
		return rc;
	if (om_dir_load_server(h, &s)) {
		rc = db_fail(h, err, "reading the server's settings");
		goto out;
	}
	if (fields & OM_SRV_F_FQDN)
		(void)om_fqdn_norm(in->fqdn, strlen(in->fqdn), s.fqdn, sizeof(s.fqdn));
	if (fields & OM_SRV_F_CERT)
		COPY(s.pinned_certificate, in->pinned_certificate);
	if (fields & OM_SRV_F_STATUS)
		s.status = in->status;
	if (fields & OM_SRV_F_DIALPLANS) {
		for (size_t i = 0; i < in->ndialplans; i++) {
			struct om_dir_dialplan p;
			rc = dp_load(h, in->dialplans[i], 0, &p);
			if (rc) {
				if (rc == ENOENT)
					dp_not_found(in->dialplans[i], err);
				else
					rc = db_fail(h, err, "reading dial plans");
				goto out;
			}
			bool dup = false;
			for (size_t j = 0; j < nids; j++)
				dup = dup || ids[j] == p.id;
			if (!dup)
				ids[nids++] = p.id;
		}
	}
	if (run(h, "INSERT OR IGNORE INTO servers (id) VALUES (1)", NULL) ||
	    run(h,
	        "UPDATE servers SET fqdn = ?, pinned_certificate = ?, status = ?, updated_ms = ? "
	        "WHERE id = 1",
	        "nnti", s.fqdn, s.pinned_certificate, om_dir_srv_status_name(s.status),
	        om_now_ms())) {
		rc = db_fail(h, err, "saving the server's settings");
		goto out;
	}
	if (fields & OM_SRV_F_DIALPLANS) {
		if (run(h, "DELETE FROM server_dialplans WHERE server_id = 1", NULL)) {
			rc = db_fail(h, err, "saving the server's dial plans");
			goto out;
		}
		for (size_t i = 0; i < nids; i++) {
			if (run(h,
			        "INSERT INTO server_dialplans (server_id, dialplan_id) VALUES (1, ?)",
			        "i", ids[i])) {
				rc = db_fail(h, err, "saving the server's dial plans");
				goto out;
			}
		}
	}
	if (om_dir_load_server(h, &s))
		rc = db_fail(h, err, "reading the server's settings back");
out:
	rc = tx_end(db, rc, flags, err);
	if (!rc && out)
		*out = s;
	return rc;
}

int om_dir_server_plan_modes(struct om_db *db, size_t *nplans, bool *any_secured)
{
	sqlite3 *h = om_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	bool sec = false;
	int rc;
	if (prep(h, &st,
	         "SELECT d.security FROM server_dialplans s JOIN dialplans d ON d.id = "
	         "s.dialplan_id WHERE s.server_id = 1",
	         NULL))
		return EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		enum om_dir_security m = OM_SEC_UNSECURED;
		(void)om_dir_security_parse(col(st, 0), &m);
		sec = sec || secured_mode(m);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return EIO;
	*nplans = n;
	*any_secured = sec;
	return 0;
}

/* --------------------------------------------------------------- mailboxes */

#define MB_SELECT                                                                           \
	"SELECT m.id, m.uid, m.dialplan_id, d.name, m.extension, m.display_name, m.email, " \
	"m.greeting_default, m.greeting_busy, m.greeting_unavailable, m.greeting_name, "    \
	"m.pin_hash IS NOT NULL, m.pin_must_change, m.pin_set_ms "                          \
	"FROM mailboxes m JOIN dialplans d ON d.id = m.dialplan_id "

static void mb_row(sqlite3_stmt *st, struct om_dir_mailbox *m)
{
	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(st, 0);
	COPY(m->uid, col(st, 1));
	m->dialplan_id = sqlite3_column_int64(st, 2);
	COPY(m->dialplan, col(st, 3));
	COPY(m->extension, col(st, 4));
	COPY(m->display_name, col(st, 5));
	COPY(m->email, col(st, 6));
	for (int i = 0; i < OM_GREETING_SLOTS; i++)
		COPY(m->greetings[i], col(st, 7 + i));
	m->has_pin = sqlite3_column_int(st, 7 + OM_GREETING_SLOTS) != 0;
	m->pin_must_change = sqlite3_column_int(st, 8 + OM_GREETING_SLOTS) != 0;
	m->pin_set_ms = sqlite3_column_int64(st, 9 + OM_GREETING_SLOTS);
}

static void mb_row_v(sqlite3_stmt *st, void *m)
{
	mb_row(st, m);
}

int om_dir_load_mailboxes(sqlite3 *h, const char *dialplan, struct om_dir_mailbox **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc = dialplan ? prep(h, &st, MB_SELECT "WHERE d.name = ? ORDER BY d.name, m.extension",
	                         "t", dialplan)
	                  : prep(h, &st, MB_SELECT "ORDER BY d.name, m.extension", NULL);
	if (rc)
		return rc;
	void *arr;
	if ((rc = load_rows(st, sizeof(**out), mb_row_v, &arr, n)))
		return rc;
	*out = arr;
	return 0;
}

/* Finds the mailbox (dialplan NULL: the only one with this extension). */
static int mb_find(sqlite3 *h, const char *dialplan, const char *ext, struct om_dir_mailbox *out,
                   struct om_dir_err *err)
{
	sqlite3_stmt *st = NULL;
	struct om_buf plans;
	int rc, n = 0;
	if (dialplan) {
		struct om_dir_dialplan p;
		rc = dp_load(h, dialplan, 0, &p);
		if (rc == ENOENT) {
			dp_not_found(dialplan, err);
			return rc;
		}
		if (rc)
			return db_fail(h, err, "reading dial plans");
		rc = prep(h, &st, MB_SELECT "WHERE m.dialplan_id = ? AND m.extension = ?", "it",
		          p.id, ext);
	} else {
		rc = prep(h, &st, MB_SELECT "WHERE m.extension = ? ORDER BY d.name", "t", ext);
	}
	if (rc)
		return db_fail(h, err, "reading mailboxes");
	om_buf_init(&plans);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		mb_row(st, out);
		om_buf_printf(&plans, "%s%s", n ? ", " : "", out->dialplan);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		rc = db_fail(h, err, "reading mailboxes");
	} else if (n == 0) {
		seterr(err, "no mailbox with extension %s%s%s: see `openum mailbox list`", ext,
		       dialplan ? " in dial plan " : "", dialplan ? dialplan : "");
		rc = ENOENT;
	} else if (n > 1) {
		seterr(err,
		       "extension %s exists in several dial plans (%s): say which with --dialplan "
		       "NAME",
		       ext, bs(&plans));
		rc = EEXIST;
	} else {
		rc = 0;
	}
	om_buf_free(&plans);
	return rc;
}

static int mb_check_values(const struct om_dir_mailbox *m, struct om_dir_err *err)
{
	if (!om_dir_display_valid(m->display_name)) {
		seterr(err, "invalid --name: at most %d bytes of text without control characters",
		       OM_DIR_DISPLAY_MAX);
		return EINVAL;
	}
	if (m->email[0] && !om_dir_email_valid(m->email)) {
		seterr(err, "invalid --email \"%s\": give an address like user@example.com",
		       m->email);
		return EINVAL;
	}
	return 0;
}

static int mb_set_pin(sqlite3 *h, const struct om_dir_mailbox *m, const struct om_dir_pin *pin,
                      struct om_dir_err *err)
{
	char hash[OM_DIR_PIN_HASH_MAX];
	struct om_dir_dialplan plan;
	int rc;
	if (!pin || !pin->pin)
		return 0;
	if ((rc = dp_load(h, NULL, m->dialplan_id, &plan)) != 0 && rc != ENOENT)
		return db_fail(h, err, "reading the dial plan");
	if (om_dir_pin_rules_check(pin->pin, m->extension, rc == 0 ? plan.pilot : NULL, err))
		return EINVAL;
	rc = om_dir_pin_hash(pin->data_dir, pin->pin, hash, sizeof(hash));
	if (rc) {
		seterr(err,
		       "could not hash the PIN (%s): check that %s is writable (the pepper file)",
		       strerror(rc), pin->data_dir ? pin->data_dir : "the store");
		return rc;
	}
	rc = run(h,
	         "UPDATE mailboxes SET pin_hash = ?, pin_set_ms = ?, pin_must_change = 1, "
	         "pin_failures = 0, locked_until_ms = 0 WHERE id = ?",
	         "tii", hash, om_now_ms(), m->id);
	OPENSSL_cleanse(hash, sizeof(hash));
	return rc ? db_fail(h, err, "saving the PIN") : 0;
}

int om_dir_mailbox_new(struct om_db *db, const struct om_dir_mailbox *in, unsigned fields,
                       const struct om_dir_pin *pin, int flags, struct om_dir_mailbox *out,
                       struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_mailbox m, cur;
	struct om_dir_dialplan plan;
	unsigned char raw[16];
	int64_t now = om_now_ms();
	int rc;
	memset(&m, 0, sizeof(m));
	COPY(m.extension, in->extension);
	COPY(m.dialplan, in->dialplan);
	if (fields & OM_MB_F_DISPLAY)
		COPY(m.display_name, in->display_name);
	if (fields & OM_MB_F_EMAIL)
		COPY(m.email, in->email);
	if (!om_dir_extension_valid(m.extension)) {
		seterr(err, "invalid extension \"%s\": give 1 to 20 digits", in->extension);
		return EINVAL;
	}
	if (!m.dialplan[0]) {
		seterr(err, "a new mailbox needs --dialplan NAME");
		return EINVAL;
	}
	if ((rc = mb_check_values(&m, err)))
		return rc;
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		seterr(err, "no random numbers available for the mailbox id");
		return EIO;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(m.uid + 2 * i, 3, "%02x", raw[i]);
	if ((rc = tx_begin(db, err)))
		return rc;
	rc = dp_load(h, m.dialplan, 0, &plan);
	if (rc) {
		if (rc == ENOENT)
			dp_not_found(m.dialplan, err);
		else
			rc = db_fail(h, err, "reading dial plans");
		goto out;
	}
	if ((int)strlen(m.extension) != plan.digits) {
		seterr(err,
		       "extension %s has %zu digits but dial plan \"%s\" uses %d-digit extensions: "
		       "give a %d-digit extension",
		       m.extension, strlen(m.extension), plan.name, plan.digits, plan.digits);
		rc = EPERM;
		goto out;
	}
	rc = mb_find(h, plan.name, m.extension, &cur, NULL);
	if (rc == 0) {
		seterr(err,
		       "dial plan \"%s\" already has a mailbox with extension %s: choose another "
		       "extension, or change it with `openum mailbox set %s --dialplan %s`",
		       plan.name, m.extension, m.extension, plan.name);
		rc = EEXIST;
		goto out;
	}
	if (rc != ENOENT) {
		rc = db_fail(h, err, "reading mailboxes");
		goto out;
	}
	if (run(h,
	        "INSERT INTO mailboxes (uid, dialplan_id, extension, display_name, email, "
	        "created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
	        "titnnii", m.uid, plan.id, m.extension, m.display_name, m.email, now, now)) {
		rc = db_fail(h, err, "adding the mailbox");
		goto out;
	}
	m.id = sqlite3_last_insert_rowid(h);
	m.dialplan_id = plan.id;
	if ((rc = mb_set_pin(h, &m, pin, err)))
		goto out;
	if (mb_find(h, plan.name, m.extension, &m, err))
		rc = db_fail(h, err, "reading the mailbox back");
out:
	rc = tx_end(db, rc, flags, err);
	if (!rc && out)
		*out = m;
	return rc;
}

int om_dir_mailbox_set(struct om_db *db, const char *dialplan, const char *ext,
                       const struct om_dir_mailbox *in, unsigned fields,
                       const struct om_dir_pin *pin, int flags, struct om_dir_mailbox *out,
                       struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_mailbox m;
	int rc;
	if ((rc = tx_begin(db, err)))
		return rc;
	if ((rc = mb_find(h, dialplan, ext, &m, err)))
		goto out;
	if (fields & OM_MB_F_DISPLAY)
		COPY(m.display_name, in->display_name);
	if (fields & OM_MB_F_EMAIL)
		COPY(m.email, in->email);
	for (int g = 0; g < OM_GREETING_SLOTS; g++)
		if (fields & (OM_MB_F_GREETING << g)) {
			if (in->greetings[g][0] && !om_dir_greeting_valid(in->greetings[g])) {
				seterr(err, "invalid greeting file name \"%s\"", in->greetings[g]);
				rc = EINVAL;
				goto out;
			}
			COPY(m.greetings[g], in->greetings[g]);
		}
	if ((rc = mb_check_values(&m, err)))
		goto out;
	if (run(h,
	        "UPDATE mailboxes SET display_name = ?, email = ?, greeting_default = ?, "
	        "greeting_busy = ?, greeting_unavailable = ?, greeting_name = ?, updated_ms = ? "
	        "WHERE id = ?",
	        "nnnnnnii", m.display_name, m.email, m.greetings[OM_GREETING_DEFAULT],
	        m.greetings[OM_GREETING_BUSY], m.greetings[OM_GREETING_UNAVAILABLE],
	        m.greetings[OM_GREETING_NAME], om_now_ms(), m.id)) {
		rc = db_fail(h, err, "changing the mailbox");
		goto out;
	}
	if ((rc = mb_set_pin(h, &m, (fields & OM_MB_F_PIN) ? pin : NULL, err)))
		goto out;
	rc = mb_find(h, m.dialplan, m.extension, &m, err);
out:
	rc = tx_end(db, rc, flags, err);
	if (!rc && out)
		*out = m;
	return rc;
}

int om_dir_mailbox_remove(struct om_db *db, const char *dialplan, const char *ext, int flags,
                          struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	struct om_dir_mailbox m;
	int rc;
	if ((rc = tx_begin(db, err)))
		return rc;
	if ((rc = mb_find(h, dialplan, ext, &m, err)))
		goto out;
	if (run(h, "DELETE FROM mailboxes WHERE id = ?", "i", m.id))
		rc = db_fail(h, err, "removing the mailbox");
out:
	return tx_end(db, rc, flags, err);
}

int om_dir_mailbox_get(struct om_db *db, const char *dialplan, const char *ext,
                       struct om_dir_mailbox *out, struct om_dir_err *err)
{
	sqlite3 *h = om_db_sqlite(db);
	int rc;
	if (rd_begin(h))
		return db_fail(h, err, "reading mailboxes");
	rc = mb_find(h, dialplan, ext, out, err);
	rd_end(h);
	return rc;
}

int om_dir_mailbox_list(struct om_db *db, const char *dialplan, struct om_dir_mailbox **out,
                        size_t *n)
{
	return om_dir_load_mailboxes(om_db_sqlite(db), dialplan, out, n);
}

int om_dir_mailbox_pin_check(struct om_db *db, const char *data_dir, int64_t mailbox_id,
                             const char *pin)
{
	sqlite3 *h = om_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	char stored[OM_DIR_PIN_HASH_MAX];
	int rc;
	if (prep(h, &st, "SELECT pin_hash FROM mailboxes WHERE id = ?", "i", mailbox_id))
		return EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		COPY(stored, col(st, 0));
		rc = 0;
	} else {
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? ENOENT : EIO;
	}
	sqlite3_finalize(st);
	if (rc)
		return rc;
	rc = om_dir_pin_verify(data_dir, pin, stored);
	OPENSSL_cleanse(stored, sizeof(stored));
	return rc;
}
