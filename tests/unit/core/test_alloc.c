/* test_alloc.c — the fault-injection hook fails exactly the Nth allocation. */
#include "ut.h"

#include <errno.h>
#include "core/alloc.h"

UT_TEST(fails_nth_only)
{
	om_alloc_fail_at(3, 0);
	void *a = om_malloc(8), *b = om_malloc(8), *c = om_malloc(8), *d = om_malloc(8);
	UT_TRUE(a && b && !c && d);
	UT_TRUE(om_alloc_fault_hit());
	om_free(a);
	om_free(b);
	om_free(d);
}

UT_TEST(sticky_fails_all_after)
{
	om_alloc_fail_at(2, 1);
	void *a = om_malloc(8);
	UT_TRUE(a != NULL);
	UT_TRUE(om_malloc(1) == NULL);
	UT_TRUE(om_calloc(1, 1) == NULL);
	UT_TRUE(om_strdup("x") == NULL);
	om_free(a);
}

UT_TEST(off_by_default)
{
	om_alloc_fail_at(0, 0);
	for (int i = 0; i < 100; i++) {
		char *s = om_strdup("abc");
		UT_TRUE(s != NULL);
		om_free(s);
	}
	UT_TRUE(!om_alloc_fault_hit());
	UT_EQ_INT(100, om_alloc_count());
}

static int two_allocs(void *arg)
{
	int *runs = arg;
	(*runs)++;
	char *a = om_strdup("a");
	char *b = om_strndup("bcd", 2);
	int err = (a && b) ? 0 : ENOMEM;
	om_free(a);
	om_free(b);
	return err;
}

UT_TEST(sweep_stops_after_clean_run)
{
	int runs = 0;
	unsigned long n = ut_oom_sweep(two_allocs, &runs);
	UT_EQ_INT(3, n);
	UT_EQ_INT(3, runs);
}

/* Functions under a sweep: one reports the failure, one swallows it, one
 * turns it into another error. */
static int reports(void *arg)
{
	char *a = om_strdup("a"), *b = om_strdup("b");
	int err = a && b ? 0 : ENOMEM;
	om_free(a);
	om_free(b);
	return err;
}

static int swallows(void *arg)
{
	char *a = om_strdup("a"), *b = om_strdup("b");
	om_free(a);
	om_free(b);
	return 0;
}

static int other_error(void *arg)
{
	char *a = om_strdup("a");
	om_free(a);
	return a ? 0 : EINVAL;
}

UT_TEST(sweep_reports)
{
	UT_EQ_INT(3, ut_oom_sweep(reports, NULL));
}

UT_TEST(sweep_swallows)
{
	(void)ut_oom_sweep(swallows, NULL);
}

UT_TEST(sweep_other_error)
{
	(void)ut_oom_sweep(other_error, NULL);
}

/* As libre's runner: a run that reached the injected failure must return
 * ENOMEM, or the case fails (run here as nested cases). */
UT_TEST(sweep_demands_enomem)
{
	jmp_buf outer;
	memcpy(outer, ut_jmp, sizeof(outer));
	int f_reports = ut_run_one(sweep_reports);
	int f_swallows = ut_run_one(sweep_swallows);
	int f_other = ut_run_one(sweep_other_error);
	memcpy(ut_jmp, outer, sizeof(outer));
	ut_failed_now = 0;
	UT_EQ_INT(0, f_reports);
	UT_EQ_INT(1, f_swallows);
	UT_EQ_INT(1, f_other);
}

UT_MAIN(UT_CASE(fails_nth_only), UT_CASE(sticky_fails_all_after), UT_CASE(off_by_default),
        UT_CASE(sweep_stops_after_clean_run), UT_CASE(sweep_demands_enomem))
