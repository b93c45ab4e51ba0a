/* log.c — logfmt to stderr, or native journal records. */
#include "core/log.h"
#include "core/clock.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

static enum om_level g_min = OM_LOG_INFO;
static int g_journal;

static const char *const level_names[] = { "debug", "info", "warning", "error" };

const char *om_level_name(enum om_level l)
{
	return (unsigned)l < 4 ? level_names[l] : "?";
}

int om_level_parse(const char *s, enum om_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum om_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warn") == 0) {
		*out = OM_LOG_WARNING;
		return 0;
	}
	return EINVAL;
}

/* systemd: JOURNAL_STREAM=dev:ino names the stream stderr is connected to. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(2, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void om_log_init(enum om_level min, int journal)
{
	g_min = min;
	g_journal = journal < 0 ? stderr_is_journal() : journal;
}

void om_log_set_level(enum om_level min)
{
	g_min = min;
}

static int syslog_prio(enum om_level l)
{
	switch (l) {
	case OM_LOG_DEBUG:
		return LOG_DEBUG;
	case OM_LOG_INFO:
		return LOG_INFO;
	case OM_LOG_WARNING:
		return LOG_WARNING;
	default:
		return LOG_ERR;
	}
}

/* A record is formatted on the stack, never on the heap: logging keeps
 * working when memory runs out (and an out-of-memory sweep never sees an
 * allocation failure swallowed here). A record longer than RECORD_MAX
 * bytes is cut, ending in "...". */
enum { RECORD_MAX = 16384, JOURNAL_FIELDS = 40 };

struct rec {
	char p[RECORD_MAX];
	size_t len;
	bool cut;
};

static void r_add(struct rec *r, const char *s, size_t n)
{
	size_t room = sizeof(r->p) - 1 - r->len;
	if (r->cut)
		return;
	if (n > room - (room < 4 ? room : 4)) {
		n = room < 4 ? 0 : room - 4;
		memcpy(r->p + r->len, s, n);
		r->len += n;
		memcpy(r->p + r->len, "...", room - n < 3 ? room - n : 3);
		r->len += room - n < 3 ? room - n : 3;
		r->cut = true;
	} else {
		memcpy(r->p + r->len, s, n);
		r->len += n;
	}
	r->p[r->len] = '\0';
}

static void r_adds(struct rec *r, const char *s)
{
	r_add(r, s, strlen(s));
}

static void r_printf(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void r_printf(struct rec *r, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		r_add(r, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A logfmt value: quoted when empty or holding a space, a double quote,
 * '=', a backslash or a control character; inside quotes the double quote
 * and the backslash are escaped, control characters written \n or \xNN. */
static void r_value(struct rec *r, const char *v)
{
	bool quote = *v == '\0';
	for (const char *p = v; *p && !quote; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
			quote = true;
	if (!quote) {
		r_adds(r, v);
		return;
	}
	r_add(r, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\') {
			r_add(r, "\\", 1);
			r_add(r, (const char *)p, 1);
		} else if (*p == '\n') {
			r_adds(r, "\\n");
		} else if (*p < 0x20 || *p == 0x7f) {
			r_printf(r, "\\x%02x", *p);
		} else {
			r_add(r, (const char *)p, 1);
		}
	}
	r_add(r, "\"", 1);
}

static void to_journal(enum om_level l, int event_id, const char *msg, const struct om_kv *kv,
                       size_t n)
{
	struct iovec iov[JOURNAL_FIELDS];
	size_t nf = 0, start;
	struct rec r = { .len = 0 };
	/* Fields are laid one after the other in r; each iovec is one
	 * "NAME=value". The short ones first, so a cut only shortens text. */
#define FIELD_END()                                                       \
	do {                                                              \
		iov[nf++] = (struct iovec){ r.p + start, r.len - start }; \
	} while (0)
	start = r.len;
	r_printf(&r, "PRIORITY=%d", syslog_prio(l));
	FIELD_END();
	if (event_id) {
		start = r.len;
		r_printf(&r, "OPENUM_EVENT_ID=%d", event_id);
		FIELD_END();
	}
	start = r.len;
	r_adds(&r, "MESSAGE=");
	r_adds(&r, msg);
	for (size_t i = 0; i < n; i++) {
		r_printf(&r, " %s=", kv[i].k);
		r_value(&r, kv[i].v ? kv[i].v : "");
	}
	FIELD_END();
	for (size_t i = 0; i < n && nf < JOURNAL_FIELDS && !r.cut; i++) {
		char key[64];
		size_t k = 0;
		for (const char *p = kv[i].k; *p && k < sizeof(key) - 1; p++)
			key[k++] =
			    isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
		key[k] = '\0';
		start = r.len;
		r_printf(&r, "OPENUM_%s=", key);
		r_adds(&r, kv[i].v ? kv[i].v : "");
		FIELD_END();
	}
#undef FIELD_END
	sd_journal_sendv(iov, (int)nf);
}

void om_log_kv(enum om_level l, int event_id, const char *msg, const struct om_kv *kv, size_t n)
{
	if (l < g_min)
		return;
	if (g_journal) {
		to_journal(l, event_id, msg, kv, n);
		return;
	}
	struct rec r = { .len = 0 };
	char ts[40];
	om_time_format(om_now_ms(), ts, sizeof(ts));
	r_printf(&r, "time=%s level=%s", ts, om_level_name(l));
	if (event_id)
		r_printf(&r, " event=%d", event_id);
	r_adds(&r, " msg=");
	r_value(&r, msg);
	for (size_t i = 0; i < n; i++) {
		r_printf(&r, " %s=", kv[i].k);
		r_value(&r, kv[i].v ? kv[i].v : "");
	}
	r.cut = false; /* room for the end of line, always kept */
	if (r.len > sizeof(r.p) - 2)
		r.len = sizeof(r.p) - 2;
	r.p[r.len++] = '\n';
	r.p[r.len] = '\0';
	fputs(r.p, stderr);
}

void om_log(enum om_level l, const char *msg, ...)
{
	struct om_kv kv[16];
	size_t n = 0;
	va_list ap;
	if (l < g_min)
		return;
	va_start(ap, msg);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *v = va_arg(ap, const char *);
		if (n < 16)
			kv[n++] = (struct om_kv){ k, v ? v : "" };
	}
	va_end(ap);
	om_log_kv(l, 0, msg, kv, n);
}
