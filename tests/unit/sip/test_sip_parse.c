/* test_sip_parse.c — placeholder */
#include "ut.h"
#include "sip/sip.h"
UT_TEST(placeholder)
{
	UT_TRUE(1);
}
UT_MAIN(UT_CASE(placeholder))
