/* test_log.c — log records: logfmt quoting, the 16 KiB bound, and no heap
 * allocation (logging works when memory runs out), to stderr and to the
 * journal. */
#include "ut.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Runs f with stderr sent to a temporary file; returns what was written. */
static char captured[40000];

static const char *capture(void (*f)(void))
{
	char path[] = "/tmp/om-ut-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	size_t n;
	fflush(stderr);
	dup2(fd, 2);
	f();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = (size_t)read(fd, captured, sizeof(captured) - 1);
	captured[n < sizeof(captured) ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return captured;
}

static void log_quoting(void)
{
	om_log(OM_LOG_WARNING, "a message", "plain", "v1", "spaced", "a b", "empty", "", "quote",
	       "say \"hi\"\n", NULL);
}

UT_TEST(logfmt_quoting)
{
	om_log_init(OM_LOG_INFO, 0);
	const char *t = capture(log_quoting);
	UT_TRUE(strstr(t, " level=warning msg=\"a message\" plain=v1 spaced=\"a b\" empty=\"\" "
	                  "quote=\"say \\\"hi\\\"\\n\"\n") != NULL);
}

static char big[20000];

static void log_big(void)
{
	om_log(OM_LOG_INFO, "big", "value", big, NULL);
}

UT_TEST(long_record_cut)
{
	om_log_init(OM_LOG_INFO, 0);
	memset(big, 'x', sizeof(big) - 1);
	const char *t = capture(log_big);
	size_t n = strlen(t);
	UT_TRUE(n < 16384 + 1);
	UT_TRUE(n > 16000);
	UT_EQ_STR("...\n", t + n - 4);
}

static void log_some(void)
{
	om_log(OM_LOG_ERROR, "no memory left", "what", "a test", "detail", big, NULL);
}

/* With every allocation failing, a record is still written whole, and the
 * logger never asked for memory. */
UT_TEST(no_heap_allocation)
{
	memset(big, 'y', 100);
	big[100] = '\0';
	for (int journal = 0; journal < 2; journal++) {
		om_log_init(OM_LOG_INFO, journal);
		om_alloc_fail_at(1, 1);
		const char *t = capture(log_some);
		unsigned long allocs = om_alloc_count();
		om_alloc_fail_at(0, 0);
		UT_EQ_INT(0, allocs);
		if (!journal)
			UT_TRUE(strstr(t, "msg=\"no memory left\" what=\"a test\" detail=yyy") !=
			        NULL);
	}
	om_log_init(OM_LOG_INFO, 0);
}

UT_MAIN(UT_CASE(logfmt_quoting), UT_CASE(long_record_cut), UT_CASE(no_heap_allocation))
