/* clock.c — real and injectable clocks, time formatting and parsing. */
#include "core/clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static om_clock_h g_fn;
static void *g_arg;

int64_t om_now_ms(void)
{
	struct timespec ts;
	if (g_fn)
		return g_fn(g_arg);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void om_clock_set(om_clock_h fn, void *arg)
{
	g_fn = fn;
	g_arg = arg;
}

int64_t om_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void om_time_format(int64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int om_time_parse(const char *s, int64_t now_ms, int64_t *out_ms)
{
	struct tm tm;
	char unit = 0, extra = 0;
	long long n;
	int y, mo, d, h = 0, mi = 0, se = 0;

	if (sscanf(s, "%lld%c%c", &n, &unit, &extra) == 2 && n >= 0 && n < 100000000LL) {
		int64_t mult;
		switch (unit) {
		case 's':
			mult = 1000;
			break;
		case 'm':
			mult = 60 * 1000;
			break;
		case 'h':
			mult = 3600 * 1000;
			break;
		case 'd':
			mult = 86400 * 1000LL;
			break;
		default:
			return EINVAL;
		}
		*out_ms = now_ms - n * mult;
		return 0;
	}
	size_t len = strlen(s);
	int matched;
	if (len == 10)
		matched = sscanf(s, "%4d-%2d-%2d%c", &y, &mo, &d, &extra) == 3;
	else
		matched = (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%c", &y, &mo, &d, &h, &mi, &se,
		                  &unit, &extra) == 7 &&
		           unit == 'Z') ||
		          (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se,
		                  &extra) == 6) ||
		          (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se,
		                  &extra) == 6);
	if (!matched || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 ||
	    y < 1970 || y > 9999 || h < 0 || mi < 0 || se < 0)
		return EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*out_ms = (int64_t)timegm(&tm) * 1000;
	return 0;
}
