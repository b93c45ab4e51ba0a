/* test_flow.c — the decisions of the call flows (app/flow.h), as tables:
 * the digits of an extension (complete, `#` early, `*` again, timeouts),
 * retries against input_failures, which greeting plays, whether a
 * recording becomes a message, the .end reason when the call ended first,
 * and the X-Openum-Test header of openum test-connectivity. */
#include "ut.h"
#include "app/flow.h"

#include <errno.h>
#include <string.h>

#define M OM_FLOW_MORE
#define C OM_FLOW_COMPLETE
#define E OM_FLOW_EMPTY
#define T 'T' /* the input timeout instead of a key */

static const struct {
	size_t want;
	const char *keys; /* T = input_timeout passed */
	int last;         /* the entry after the last key */
	const char *entered;
} entries[] = {
	{ 4, "2001", C, "2001" },    /* the plan's digits: complete at once */
	{ 4, "200", M, "200" },      /* not yet */
	{ 4, "20#", C, "20" },       /* `#` ends early: looked up as entered */
	{ 4, "#", E, "" },           /* `#` alone: nothing entered */
	{ 4, "T", E, "" },           /* silence: nothing entered */
	{ 4, "20T", C, "20" },       /* a partial entry times out: looked up */
	{ 4, "99*2001", C, "2001" }, /* `*` starts again */
	{ 4, "*", M, "" },
	{ 4, "2A00B1", C, "2001" }, /* A-D ignored */
	{ 1, "7", C, "7" },
	{ 0, "7", C, "7" }, /* clamped to 1 */
	{ 6, "123456", C, "123456" },
	{ 20, "12345678901234567890", C, "12345678901234567890" },
	{ 99, "12345678901234567890", C, "12345678901234567890" }, /* clamped to 20 */
};

UT_TEST(digits_of_an_extension)
{
	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		struct om_flow_digits d;
		int r = M;
		om_flow_digits_init(&d, entries[i].want);
		for (const char *k = entries[i].keys; *k; k++)
			r = *k == T ? (int)om_flow_digits_timeout(&d)
			            : (int)om_flow_digits_add(&d, *k);
		if (r != entries[i].last || strcmp(d.d, entries[i].entered) != 0)
			UT_FAIL("case %zu (%s): got %d \"%s\", want %d \"%s\"", i, entries[i].keys,
			        r, d.d, entries[i].last, entries[i].entered);
	}
}

UT_TEST(retries_against_input_failures)
{
	/* input_failures = 3: a first and a second failure are tried again,
	 * the third says goodbye */
	UT_TRUE(om_flow_retry(1, 3));
	UT_TRUE(om_flow_retry(2, 3));
	UT_TRUE(!om_flow_retry(3, 3));
	UT_TRUE(!om_flow_retry(1, 1));
	UT_TRUE(!om_flow_retry(1, 0)); /* 0 counts as one try */
	UT_TRUE(om_flow_retry(9, 10));
}

UT_TEST(which_greeting)
{
	static const struct {
		bool busy;
		bool have[3]; /* default, busy, unavailable */
		int slot;
	} t[] = {
		{ true, { false, false, false }, -1 }, { false, { false, false, false }, -1 },
		{ true, { false, true, false }, 1 },   { false, { false, true, false }, -1 },
		{ false, { false, false, true }, 2 },  { true, { false, false, true }, -1 },
		{ true, { true, false, true }, 0 },    { false, { true, true, false }, 0 },
		{ true, { true, true, true }, 1 },     { false, { true, true, true }, 2 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (om_flow_greeting_slot(t[i].busy, t[i].have) != t[i].slot)
			UT_FAIL("case %zu: got %d, want %d", i,
			        om_flow_greeting_slot(t[i].busy, t[i].have), t[i].slot);
}

UT_TEST(short_messages_discarded)
{
	UT_TRUE(om_flow_message_keep(1000, 1));
	UT_TRUE(!om_flow_message_keep(999, 1));
	UT_TRUE(!om_flow_message_keep(0, 1));
	UT_TRUE(om_flow_message_keep(0, 0)); /* min_message_seconds = 0 keeps all */
	UT_TRUE(!om_flow_message_keep(59999, 60));
	UT_TRUE(om_flow_message_keep(60000, 60));
}

UT_TEST(prompt_after_the_recording_stopped)
{
	UT_EQ_STR("message-recorded", om_flow_stopped_prompt(true, 0));
	UT_TRUE(om_flow_stopped_prompt(false, 0) == NULL); /* too short: "goodbye" only */
	/* the spool could not be written: never "recorded", never a bare goodbye */
	UT_EQ_STR("service-unavailable", om_flow_stopped_prompt(false, ENOTDIR));
	UT_EQ_STR("service-unavailable", om_flow_stopped_prompt(true, ENOSPC));
	UT_EQ_STR("service-unavailable", om_flow_stopped_prompt(false, EACCES));
}

UT_TEST(end_reason_when_the_call_ended_first)
{
	UT_EQ_STR("hangup", om_flow_end_reason_of_call("gateway-bye"));
	UT_EQ_STR("timeout", om_flow_end_reason_of_call("rtp-timeout"));
	UT_EQ_STR("drain", om_flow_end_reason_of_call("drain"));
	UT_EQ_STR("drain", om_flow_end_reason_of_call("server-stop"));
	UT_EQ_STR("hangup", om_flow_end_reason_of_call("session-expired"));
	UT_EQ_STR("hangup", om_flow_end_reason_of_call(NULL));
}

UT_TEST(test_header)
{
	static const struct {
		const char *v;
		int rc;
		bool deliver, echo;
	} t[] = {
		{ "connectivity", 0, false, false },
		{ "connectivity;echo-dtmf", 0, false, true },
		{ "connectivity;deliver", 0, true, false },
		{ "connectivity;deliver;echo-dtmf", 0, true, true },
		{ " Connectivity ; ECHO-DTMF ; Deliver ", 0, true, true },
		{ "connectivity;future=1;deliver", 0, true, false },
		{ "connectivity;", 0, false, false },
		{ "", EINVAL, false, false },
		{ "load", EINVAL, false, false },
		{ "connectivityx;deliver", EINVAL, false, false },
		{ "deliver;connectivity", EINVAL, false, false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_flow_test ft;
		int rc = om_flow_test_parse(om_str_c(t[i].v), &ft);
		if (rc != t[i].rc ||
		    (!rc && (ft.deliver != t[i].deliver || ft.echo_dtmf != t[i].echo)))
			UT_FAIL("case %zu \"%s\": rc %d deliver %d echo %d", i, t[i].v, rc,
			        ft.deliver, ft.echo_dtmf);
	}
}

UT_MAIN(UT_CASE(digits_of_an_extension), UT_CASE(retries_against_input_failures),
        UT_CASE(which_greeting), UT_CASE(short_messages_discarded),
        UT_CASE(prompt_after_the_recording_stopped), UT_CASE(end_reason_when_the_call_ended_first),
        UT_CASE(test_header))
