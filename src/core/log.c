/* log.c — logfmt to stderr, or native journal records. */
#include "core/log.h"
#include "core/clock.h"
#include "core/str.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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

void om_logfmt_value(struct om_buf *b, const char *v)
{
	bool quote = *v == '\0';
	for (const char *p = v; *p && !quote; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
			quote = true;
	if (!quote) {
		om_buf_adds(b, v);
		return;
	}
	om_buf_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\') {
			om_buf_add(b, "\\", 1);
			om_buf_add(b, p, 1);
		} else if (*p == '\n') {
			om_buf_adds(b, "\\n");
		} else if (*p < 0x20 || *p == 0x7f) {
			om_buf_printf(b, "\\x%02x", *p);
		} else {
			om_buf_add(b, p, 1);
		}
	}
	om_buf_add(b, "\"", 1);
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

static void to_journal(enum om_level l, int event_id, const char *msg, const struct om_kv *kv,
                       size_t n)
{
	struct iovec iov[40];
	char *lines[40];
	size_t k = 0;
	struct om_buf b;
	om_buf_init(&b);
	om_buf_adds(&b, msg);
	for (size_t i = 0; i < n; i++) {
		om_buf_printf(&b, " %s=", kv[i].k);
		om_logfmt_value(&b, kv[i].v);
	}
	if (asprintf(&lines[k], "MESSAGE=%s", om_buf_cstr(&b) ? om_buf_cstr(&b) : msg) < 0)
		goto out;
	k++;
	if (asprintf(&lines[k], "PRIORITY=%d", syslog_prio(l)) < 0)
		goto out;
	k++;
	if (event_id && asprintf(&lines[k], "OPENUM_EVENT_ID=%d", event_id) >= 0)
		k++;
	for (size_t i = 0; i < n && k < 40; i++) {
		char key[64];
		size_t j = 0;
		for (const char *p = kv[i].k; *p && j < sizeof(key) - 1; p++)
			key[j++] =
			    isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
		key[j] = '\0';
		if (asprintf(&lines[k], "OPENUM_%s=%s", key, kv[i].v) >= 0)
			k++;
	}
	for (size_t i = 0; i < k; i++)
		iov[i] = (struct iovec){ lines[i], strlen(lines[i]) };
	sd_journal_sendv(iov, (int)k);
out:
	for (size_t i = 0; i < k; i++)
		free(lines[i]);
	om_buf_free(&b);
}

void om_log_kv(enum om_level l, int event_id, const char *msg, const struct om_kv *kv, size_t n)
{
	if (l < g_min)
		return;
	if (g_journal) {
		to_journal(l, event_id, msg, kv, n);
		return;
	}
	struct om_buf b;
	char ts[40];
	om_buf_init(&b);
	om_time_format(om_now_ms(), ts, sizeof(ts));
	om_buf_printf(&b, "time=%s level=%s", ts, om_level_name(l));
	if (event_id)
		om_buf_printf(&b, " event=%d", event_id);
	om_buf_adds(&b, " msg=");
	om_logfmt_value(&b, msg);
	for (size_t i = 0; i < n; i++) {
		om_buf_printf(&b, " %s=", kv[i].k);
		om_logfmt_value(&b, kv[i].v ? kv[i].v : "");
	}
	om_buf_add(&b, "\n", 1);
	if (om_buf_cstr(&b))
		fputs(om_buf_cstr(&b), stderr);
	else
		fprintf(stderr, "level=%s msg=\"%s\"\n", om_level_name(l), msg);
	om_buf_free(&b);
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
