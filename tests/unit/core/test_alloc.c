/* test_alloc.c — the fault-injection hook fails exactly the Nth allocation. */
#include "ut.h"
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
	int err = (a && b) ? 0 : 12;
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

UT_MAIN(UT_CASE(fails_nth_only), UT_CASE(sticky_fails_all_after), UT_CASE(off_by_default),
        UT_CASE(sweep_stops_after_clean_run))
