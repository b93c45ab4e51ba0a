/* ut.h — openum's small unit-test runner (header only).
 *
 *   UT_TEST(parses_empty) { UT_EQ_INT(0, f()); }
 *   UT_MAIN(UT_CASE(parses_empty), ...)
 *
 * Assertions print both values and file:line, then end the current case.
 * Each binary prints one "ok"/"FAIL" line per case and closes with
 * "N passed, N failed"; exit status 1 when any case failed.
 * `./test_x NAME` runs only the cases whose name contains NAME.
 * ut_oom_sweep() re-runs a function making the 1st, 2nd, ... allocation fail
 * until a run completes without reaching the injected fault; each run that
 * reached it must return ENOMEM. */
#ifndef OM_UT_H
#define OM_UT_H

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

struct ut_case {
	const char *name;
	void (*fn)(void);
};

static jmp_buf ut_jmp;
static int ut_failed_now;

#define UT_TEST(name) static void name(void)
#define UT_CASE(fn)     \
	{               \
#fn, fn \
	}

#define UT_FAIL(...)                                              \
	do {                                                      \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                     \
		fprintf(stderr, "\n");                            \
		ut_failed_now = 1;                                \
		longjmp(ut_jmp, 1);                               \
	} while (0)

#define UT_TRUE(c)                                        \
	do {                                              \
		if (!(c))                                 \
			UT_FAIL("expected true: %s", #c); \
	} while (0)

#define UT_EQ_INT(exp, got)                                                                   \
	do {                                                                                  \
		long long ut_e = (long long)(exp), ut_g = (long long)(got);                   \
		if (ut_e != ut_g)                                                             \
			UT_FAIL("%s == %s: expected %lld, got %lld", #exp, #got, ut_e, ut_g); \
	} while (0)

#define UT_EQ_STR(exp, got)                                                          \
	do {                                                                         \
		const char *ut_e = (exp), *ut_g = (got);                             \
		if (!ut_e || !ut_g || strcmp(ut_e, ut_g) != 0)                       \
			UT_FAIL("%s == %s: expected \"%s\", got \"%s\"", #exp, #got, \
			        ut_e ? ut_e : "(null)", ut_g ? ut_g : "(null)");     \
	} while (0)

/* Compare a slice (p, len) with a C string. */
#define UT_EQ_SLICE(exp, p, len)                                                  \
	do {                                                                      \
		const char *ut_e = (exp);                                         \
		size_t ut_l = (size_t)(len);                                      \
		if (strlen(ut_e) != ut_l || memcmp(ut_e, (p), ut_l) != 0)         \
			UT_FAIL("expected \"%s\", got \"%.*s\"", ut_e, (int)ut_l, \
			        (const char *)(p));                               \
	} while (0)

#define UT_EQ_MEM(exp, got, n)                                                           \
	do {                                                                             \
		if (memcmp((exp), (got), (n)) != 0)                                      \
			UT_FAIL("memory %s != %s (%zu bytes)", #exp, #got, (size_t)(n)); \
	} while (0)

/* Runs fn(arg) with allocation 1, 2, 3 ... failing until a run does not
 * reach the fault. Returns the number of runs. As libre's runner does, a
 * run that reached the injected failure must report it: fn returns ENOMEM
 * (a failure swallowed, or turned into another error, fails the case).
 * fn must clean up after itself whatever happens (the sanitizer build
 * catches leaks). */
#define ut_oom_sweep(fn, arg) ut_oom_sweep_at(__FILE__, __LINE__, (fn), (arg))

static inline unsigned long ut_oom_sweep_at(const char *file, int line, int (*fn)(void *arg),
                                            void *arg)
{
	unsigned long n;
	for (n = 1; n < 1000000; n++) {
		om_alloc_fail_at(n, 0);
		int rc = fn(arg);
		if (!om_alloc_fault_hit())
			break;
		if (rc != ENOMEM) {
			om_alloc_fail_at(0, 0);
			fprintf(stderr,
			        "  %s:%d: allocation %lu failed but the function returned %d (%s), "
			        "not ENOMEM\n",
			        file, line, n, rc,
			        rc > 0 ? strerror(rc)
			        : rc   ? "?"
			               : "success");
			ut_failed_now = 1;
			longjmp(ut_jmp, 1);
		}
	}
	om_alloc_fail_at(0, 0);
	return n;
}

/* setjmp lives in its own frame so the runner's counters are not clobbered. */
static __attribute__((noinline)) int ut_run_one(void (*fn)(void))
{
	ut_failed_now = 0;
	if (setjmp(ut_jmp) == 0)
		fn();
	om_alloc_fail_at(0, 0);
	return ut_failed_now;
}

static inline int ut_main(int argc, char **argv, const struct ut_case *cases, size_t n)
{
	int passed = 0, failed = 0;
	const char *filter = argc > 1 ? argv[1] : NULL;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n; i++) {
		if (filter && !strstr(cases[i].name, filter))
			continue;
		if (ut_run_one(cases[i].fn)) {
			failed++;
			printf("FAIL %s\n", cases[i].name);
		} else {
			passed++;
			printf("ok   %s\n", cases[i].name);
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#define UT_MAIN(...)                                                                          \
	int main(int argc, char **argv)                                                       \
	{                                                                                     \
		static const struct ut_case ut_cases[] = { __VA_ARGS__ };                     \
		return ut_main(argc, argv, ut_cases, sizeof(ut_cases) / sizeof(ut_cases[0])); \
	}

#endif
