/* flow_rules.c — the pure decisions of the call flows (flow.h): digits of
 * an extension, retries, greeting choice, whether a recording is kept, the
 * end reason, and the X-Openum-Test header. No I/O. */
#include "app/flow.h"

#include <errno.h>
#include <string.h>

void om_flow_digits_init(struct om_flow_digits *e, size_t want)
{
	memset(e, 0, sizeof(*e));
	e->want = want < 1 ? 1 : want > OM_FLOW_DIGITS_MAX ? OM_FLOW_DIGITS_MAX : want;
}

enum om_flow_entry om_flow_digits_add(struct om_flow_digits *e, char key)
{
	if (key >= '0' && key <= '9') {
		if (e->n < e->want)
			e->d[e->n++] = key;
		e->d[e->n] = '\0';
		return e->n >= e->want ? OM_FLOW_COMPLETE : OM_FLOW_MORE;
	}
	if (key == '#')
		return e->n ? OM_FLOW_COMPLETE : OM_FLOW_EMPTY;
	if (key == '*') {
		e->n = 0;
		e->d[0] = '\0';
	}
	return OM_FLOW_MORE;
}

enum om_flow_entry om_flow_digits_timeout(const struct om_flow_digits *e)
{
	return e->n ? OM_FLOW_COMPLETE : OM_FLOW_EMPTY;
}

bool om_flow_retry(unsigned failures, unsigned max)
{
	return failures < (max ? max : 1);
}

int om_flow_greeting_slot(bool busy, const bool have[3])
{
	int want = busy ? 1 : 2;
	if (have[want])
		return want;
	if (have[0])
		return 0;
	return -1;
}

bool om_flow_message_keep(uint64_t voiced_ms, unsigned min_s)
{
	return voiced_ms >= (uint64_t)min_s * 1000;
}

const char *om_flow_stopped_prompt(bool kept, int record_error)
{
	if (record_error)
		return "service-unavailable";
	return kept ? "message-recorded" : NULL;
}

const char *om_flow_end_reason_of_call(const char *r)
{
	if (!r)
		return "hangup";
	if (!strcmp(r, "rtp-timeout"))
		return "timeout";
	if (!strcmp(r, "drain") || !strcmp(r, "server-stop"))
		return "drain";
	return "hangup";
}

/* The next `;`-separated part of rest, trimmed; rest moves past it. */
static struct om_str next_param(struct om_str *rest)
{
	struct om_str p = *rest;
	size_t i = 0;
	while (i < rest->len && rest->p[i] != ';')
		i++;
	p.len = i;
	size_t skip = i < rest->len ? i + 1 : i;
	rest->p += skip;
	rest->len -= skip;
	return om_str_trim(p);
}

int om_flow_test_parse(struct om_str v, struct om_flow_test *out)
{
	memset(out, 0, sizeof(*out));
	struct om_str rest = om_str_trim(v);
	struct om_str first = next_param(&rest);
	if (!om_str_caseeq_c(first, "connectivity"))
		return EINVAL;
	while (rest.len) {
		struct om_str p = next_param(&rest);
		if (om_str_caseeq_c(p, "deliver"))
			out->deliver = true;
		else if (om_str_caseeq_c(p, "echo-dtmf"))
			out->echo_dtmf = true;
	}
	return 0;
}
