/* test_clock.c — time parsing for `openum events --since`. */
#include "ut.h"
#include "core/clock.h"

#include <errno.h>

UT_TEST(parse_absolute)
{
	int64_t ms;
	UT_EQ_INT(0, om_time_parse("2026-11-27T10:00:00Z", 0, &ms));
	UT_EQ_INT(1795773600000LL, ms);
	UT_EQ_INT(0, om_time_parse("2026-11-27 10:00:00", 0, &ms));
	UT_EQ_INT(1795773600000LL, ms);
	UT_EQ_INT(0, om_time_parse("2026-11-27", 0, &ms));
	UT_EQ_INT(1795737600000LL, ms);
}

UT_TEST(parse_duration)
{
	int64_t ms;
	UT_EQ_INT(0, om_time_parse("90s", 100000000, &ms));
	UT_EQ_INT(100000000 - 90000, ms);
	UT_EQ_INT(0, om_time_parse("2h", 100000000, &ms));
	UT_EQ_INT(100000000 - 7200000, ms);
	UT_EQ_INT(0, om_time_parse("7d", 1000000000000LL, &ms));
	UT_EQ_INT(1000000000000LL - 7 * 86400000LL, ms);
}

UT_TEST(parse_rejects)
{
	int64_t ms;
	const char *bad[] = { "",
		              "yesterday",
		              "10x",
		              "5mm",
		              "2026-13-01",
		              "2026-11-27T25:00:00Z",
		              "2026-11-27X",
		              "-5m" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (om_time_parse(bad[i], 0, &ms) != EINVAL)
			UT_FAIL("accepted \"%s\"", bad[i]);
}

static int64_t fixed(void *arg)
{
	return *(int64_t *)arg;
}

UT_TEST(injectable_clock)
{
	int64_t t = 1234567;
	char buf[40];
	om_clock_set(fixed, &t);
	UT_EQ_INT(1234567, om_now_ms());
	om_time_format(om_now_ms(), buf, sizeof(buf));
	UT_EQ_STR("1970-01-01T00:20:34.567Z", buf);
	om_clock_set(NULL, NULL);
	UT_TRUE(om_now_ms() > 1700000000000LL);
}

UT_MAIN(UT_CASE(parse_absolute), UT_CASE(parse_duration), UT_CASE(parse_rejects),
        UT_CASE(injectable_clock))
