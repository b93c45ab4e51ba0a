/* test_str.c — slices and the output buffer. */
#include "ut.h"
#include "core/str.h"

#include <errno.h>
#include <stdint.h>

UT_TEST(compare)
{
	UT_TRUE(om_str_eq_c(OM_STR_LIT("abc"), "abc"));
	UT_TRUE(!om_str_eq_c(OM_STR_LIT("abc"), "abd"));
	UT_TRUE(om_str_caseeq_c(OM_STR_LIT("Via"), "vIA"));
	UT_TRUE(!om_str_caseeq_c(OM_STR_LIT("Via"), "Vias"));
	struct om_str t = om_str_trim(OM_STR_LIT(" \t x y \r\n"));
	UT_EQ_SLICE("x y", t.p, t.len);
}

UT_TEST(to_u64_bounds)
{
	uint64_t v = 0;
	UT_EQ_INT(0, om_str_to_u64(OM_STR_LIT("4294967295"), UINT32_MAX, &v));
	UT_EQ_INT(4294967295LL, v);
	UT_EQ_INT(ERANGE, om_str_to_u64(OM_STR_LIT("4294967296"), UINT32_MAX, &v));
	UT_EQ_INT(ERANGE, om_str_to_u64(OM_STR_LIT("36893488147419103232"), UINT64_MAX, &v));
	UT_EQ_INT(EINVAL, om_str_to_u64(OM_STR_LIT("-1"), UINT64_MAX, &v));
	UT_EQ_INT(EINVAL, om_str_to_u64(OM_STR_LIT(""), UINT64_MAX, &v));
	UT_EQ_INT(EINVAL, om_str_to_u64(OM_STR_LIT("12a"), UINT64_MAX, &v));
}

UT_TEST(buf_json_and_printf)
{
	struct om_buf b;
	om_buf_init(&b);
	om_buf_printf(&b, "%d:", 42);
	om_buf_json_str(&b, "a\"b\\c\n\x01");
	UT_EQ_STR("42:\"a\\\"b\\\\c\\n\\u0001\"", om_buf_cstr(&b));
	om_buf_free(&b);
}

UT_TEST(buf_enomem_sticks)
{
	struct om_buf b;
	om_buf_init(&b);
	om_alloc_fail_at(1, 0);
	om_buf_adds(&b, "hello");
	om_alloc_fail_at(0, 0);
	om_buf_adds(&b, "world");
	UT_EQ_INT(ENOMEM, om_buf_err(&b));
	UT_TRUE(om_buf_cstr(&b) == NULL);
	om_buf_free(&b);
}

/* One allocation for a known size: adding up to it moves nothing. */
UT_TEST(buf_reserve)
{
	struct om_buf b;
	om_buf_init(&b);
	UT_EQ_INT(0, om_buf_reserve(&b, 100000));
	UT_TRUE(b.cap >= 100001);
	UT_EQ_STR("", om_buf_cstr(&b));
	char *p = b.p;
	unsigned long before = om_alloc_count();
	for (int i = 0; i < 10000; i++)
		om_buf_add(&b, "0123456789", 10);
	UT_EQ_INT(0, (long long)(om_alloc_count() - before));
	UT_TRUE(b.p == p);
	UT_EQ_INT(100000, (long long)b.len);
	om_buf_add(&b, "x", 1); /* beyond it: grows as before */
	UT_EQ_INT(100001, (long long)b.len);
	UT_EQ_INT('x', b.p[100000]);
	om_buf_free(&b);
	/* a failed reservation is the buffer's error, like a failed add */
	om_buf_init(&b);
	om_buf_adds(&b, "keep");
	om_alloc_fail_at(1, 0);
	UT_EQ_INT(ENOMEM, om_buf_reserve(&b, 1 << 20));
	om_alloc_fail_at(0, 0);
	UT_EQ_INT(ENOMEM, om_buf_err(&b));
	om_buf_free(&b);
	om_buf_init(&b);
	UT_EQ_INT(ENOMEM, om_buf_reserve(&b, SIZE_MAX - 1));
	om_buf_free(&b);
}

UT_MAIN(UT_CASE(compare), UT_CASE(to_u64_bounds), UT_CASE(buf_json_and_printf),
        UT_CASE(buf_enomem_sticks), UT_CASE(buf_reserve))
