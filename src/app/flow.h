/* flow.h — the decisions of the call flows (R11): pure functions, without
 * sockets, media or timers, so that every rule is table-tested
 * (tests/unit/app/test_flow.c). flow.c drives a call with them.
 *
 *   - the digits of an extension a caller enters (ask for the extension);
 *   - retry or give up after a failed entry (`input_failures`);
 *   - which greeting plays (the mailbox's own for the reason, else the
 *     built-in prompts);
 *   - whether a recording becomes a message (`min_message_seconds` of voice)
 *     and what the caller hears after it;
 *   - the end reason written to the spool's .end marker;
 *   - the X-Openum-Test header of a test call (openum test-connectivity). */
#ifndef OM_APP_FLOW_H
#define OM_APP_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define OM_FLOW_DIGITS_MAX 20 /* a dial plan's longest extension */

/* An extension being entered, digit by digit. */
struct om_flow_digits {
	char d[OM_FLOW_DIGITS_MAX + 1];
	size_t n;
	size_t want; /* the dial plan's digits */
};

enum om_flow_entry {
	OM_FLOW_MORE,     /* wait for the next digit (input_timeout) */
	OM_FLOW_COMPLETE, /* d holds the entry: look it up */
	OM_FLOW_EMPTY,    /* nothing entered: a failure ("not heard") */
};

/* want: 1..OM_FLOW_DIGITS_MAX (clamped). */
void om_flow_digits_init(struct om_flow_digits *e, size_t want);
/* A key: 0-9 appended (COMPLETE when `want` digits are there); `#` ends
 * the entry early (COMPLETE with what was entered, EMPTY when nothing);
 * `*` starts the entry again (MORE); A-D are ignored (MORE). */
enum om_flow_entry om_flow_digits_add(struct om_flow_digits *e, char key);
/* input_timeout passed without a key: COMPLETE with a partial entry (it
 * is looked up as entered: a shorter number is not valid), EMPTY when
 * nothing was entered. */
enum om_flow_entry om_flow_digits_timeout(const struct om_flow_digits *e);

/* After `failures` failed entries (1 after the first), another try? True
 * while failures < max (input_failures; 0 counts as 1). */
bool om_flow_retry(unsigned failures, unsigned max);

/* The greeting slot to play: the mailbox's own busy greeting for a busy
 * call, its unavailable greeting for any other reason; when that slot is
 * empty, its default greeting (the same for every reason); -1: none, the
 * built-in prompts play. `have[slot]` says whether the mailbox has that
 * file (slots as directory.h: 0 default, 1 busy, 2 unavailable). */
int om_flow_greeting_slot(bool busy, const bool have[3]);

/* Whether a recording becomes a message: at least min_s seconds of voice
 * (voiced_ms, ms), or min_s == 0. */
bool om_flow_message_keep(uint64_t voiced_ms, unsigned min_s);

/* The prompt before "goodbye" when a recording has stopped and the call
 * is still up: "service-unavailable" when the spool could not be written
 * (record_error, an errno: the recording could not start or was cut; the
 * prompt of every refusal for the spool, as below min_free_mb), else
 * "message-recorded" when the message is kept, else NULL (only
 * "goodbye": discarded as too short). */
const char *om_flow_stopped_prompt(bool kept, int record_error);

/* What ended a recording, for the .end marker (hangup, dtmf, silence,
 * limit, drain, timeout, error), when the call ended first, from the
 * call's end reason: "rtp-timeout" → timeout, "drain"/"server-stop" →
 * drain, anything else (a BYE) → hangup. */
const char *om_flow_end_reason_of_call(const char *call_end_reason);

/* X-Openum-Test (testcall/conntest.h): `connectivity` with the parameters
 * `deliver` and `echo-dtmf` (any order and case; unknown parameters are
 * ignored). 0, or EINVAL when the value is not `connectivity[;param]*`. */
struct om_flow_test {
	bool deliver;   /* a test call to a mailbox is delivered */
	bool echo_dtmf; /* every digit received is sent back in an INFO */
};
int om_flow_test_parse(struct om_str value, struct om_flow_test *out);

#endif
