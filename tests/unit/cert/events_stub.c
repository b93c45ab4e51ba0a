/* events_stub.c — stand-in for core/events.c in the cert unit tests while
 * core has no event implementation: forwards every event to the sink. */
#include "core/events.h"

#include <stdarg.h>

static om_event_sink_h stub_sink;
static void *stub_arg;

void om_events_set_sink(om_event_sink_h sink, void *arg)
{
	stub_sink = sink;
	stub_arg = arg;
}

void om_events_set_interval(int64_t ms)
{
	(void)ms;
}

void om_events_reset(void)
{
}

int om_event_kv(int id, enum om_level level, const char *source, const char *msg,
                const struct om_kv *kv, size_t nkv)
{
	struct om_event_rec r = { 0, id, level, source, msg, kv, nkv, 0 };
	if (stub_sink)
		stub_sink(&r, stub_arg);
	return 1;
}

static int vevent(int id, enum om_level level, const char *source, const char *msg, va_list ap)
{
	struct om_kv kv[32];
	size_t n = 0;
	for (const char *k; (k = va_arg(ap, const char *)) != NULL && n < 32;) {
		kv[n].k = k;
		kv[n].v = va_arg(ap, const char *);
		n++;
	}
	return om_event_kv(id, level, source, msg, kv, n);
}

int om_event(int id, const char *source, const char *msg, ...)
{
	va_list ap;
	va_start(ap, msg);
	/* Default levels of the ids the cert module raises. */
	enum om_level l = id == OM_EV_CERT_IN_USE || id == OM_EV_CERT_GENERATED ? OM_LOG_INFO
	                  : id == OM_EV_CERT_EXPIRED || id == OM_EV_CERT_FALLBACK_SELFSIGNED
	                      ? OM_LOG_ERROR
	                      : OM_LOG_WARNING;
	int r = vevent(id, l, source, msg, ap);
	va_end(ap);
	return r;
}

int om_event_level(int id, enum om_level level, const char *source, const char *msg, ...)
{
	va_list ap;
	va_start(ap, msg);
	int r = vevent(id, level, source, msg, ap);
	va_end(ap);
	return r;
}
