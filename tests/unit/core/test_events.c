/* test_events.c — the event table and the per-source rate limit. */
#include "ut.h"
#include "core/clock.h"
#include "core/events.h"
#include "core/log.h"

#include <string.h>

static int64_t now_ms = 1000000;

static int64_t test_clock(void *arg)
{
	return now_ms;
}

struct seen {
	int n;
	unsigned long suppressed_total;
	unsigned long last_suppressed;
	int last_id;
	char last_source[64];
};

static void sink(const struct om_event_rec *ev, void *arg)
{
	struct seen *s = arg;
	s->n++;
	s->suppressed_total += ev->suppressed;
	s->last_suppressed = ev->suppressed;
	s->last_id = ev->id;
	snprintf(s->last_source, sizeof(s->last_source), "%s", ev->source);
}

static void setup(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	om_log_init(OM_LOG_ERROR + 1, 0); /* keep the test output quiet */
	om_clock_set(test_clock, NULL);
	om_events_reset();
	om_events_set_interval(60000);
	om_events_set_sink(sink, s);
}

UT_TEST(table_has_design_ids)
{
	int ids[] = { 1112, 1113, 1114, 1115, 1120, 1121, 1122, 1123, 1124, 1130, 1131,
		      1132, 1133, 1140, 1150, 1160, 1170, 1171, 1172, 1180, 1181 };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (!om_event_info(ids[i]))
			UT_FAIL("event %d missing", ids[i]);
	UT_TRUE(om_event_info(9999) == NULL);
	UT_EQ_INT(OM_LOG_ERROR, om_event_info(1123)->level);
	UT_EQ_INT(OM_LOG_ERROR, om_event_info(1181)->level);
}

UT_TEST(flood_from_one_source_is_one_line_per_interval)
{
	struct seen s;
	setup(&s);
	int emitted = 0;
	for (int i = 0; i < 10000; i++)
		emitted += om_event(1131, "192.0.2.66", "SIP from an untrusted device dropped",
		                    "port", "5060", NULL);
	UT_EQ_INT(1, emitted);
	UT_EQ_INT(1, s.n);
	/* Still inside the interval: the summary waits. */
	now_ms += 30000;
	om_events_flush(0);
	UT_EQ_INT(1, s.n);
	/* Interval over: one summary line with the count of the 9,999. */
	now_ms += 30000;
	om_events_flush(0);
	UT_EQ_INT(2, s.n);
	UT_EQ_INT(9999, s.last_suppressed);
	/* Next flood interval: again one line, then its count. */
	for (int i = 0; i < 10000; i++)
		om_event(1131, "192.0.2.66", "dropped", NULL);
	UT_EQ_INT(2, s.n);
	now_ms += 60000;
	om_event(1131, "192.0.2.66", "dropped", NULL);
	UT_EQ_INT(3, s.n);
	UT_EQ_INT(10000, s.last_suppressed);
	om_events_set_sink(NULL, NULL);
	om_clock_set(NULL, NULL);
}

UT_TEST(sources_are_limited_separately)
{
	struct seen s;
	setup(&s);
	om_event(1130, "198.51.100.1", "tls rejected", NULL);
	om_event(1130, "198.51.100.2", "tls rejected", NULL);
	om_event(1131, "198.51.100.1", "dropped", NULL);
	om_event(1130, "198.51.100.1", "tls rejected", NULL);
	UT_EQ_INT(3, s.n);
	om_events_set_sink(NULL, NULL);
	om_clock_set(NULL, NULL);
}

UT_TEST(many_sources_stay_bounded)
{
	struct seen s;
	setup(&s);
	char src[32];
	/* A scan from 100,000 addresses: the table fills, the rest share the
	 * overflow slot, so the number of lines stays bounded. */
	for (int i = 0; i < 100000; i++) {
		snprintf(src, sizeof(src), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		om_event(1131, src, "dropped", NULL);
	}
	UT_TRUE(s.n <= 4096);
	UT_TRUE(s.n >= 1000);
	now_ms += 60000;
	om_events_flush(0);
	UT_TRUE(s.suppressed_total > 90000);
	om_events_set_sink(NULL, NULL);
	om_clock_set(NULL, NULL);
}

UT_TEST(flush_all_at_exit)
{
	struct seen s;
	setup(&s);
	om_event(1140, "call-1", "srtp", NULL);
	om_event(1140, "call-1", "srtp", NULL);
	om_events_flush(1);
	UT_EQ_INT(2, s.n);
	UT_EQ_INT(1, s.last_suppressed);
	om_events_set_sink(NULL, NULL);
	om_clock_set(NULL, NULL);
}

UT_MAIN(UT_CASE(table_has_design_ids), UT_CASE(flood_from_one_source_is_one_line_per_interval),
        UT_CASE(sources_are_limited_separately), UT_CASE(many_sources_stay_bounded),
        UT_CASE(flush_all_at_exit))
