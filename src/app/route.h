/* route.h — which mailbox a call is for, and who is calling (R11): a pure
 * function of the INVITE and the dial plan, table-tested.
 *
 * Sources, first that decides wins:
 *   1. RFC 4458 `target` (and `cause`) in the Request-URI;
 *   2. History-Info (RFC 7044): entries ordered by index (compared
 *      component by component as numbers). The entry with the highest index
 *      that carries a cause decides. A Reason header escaped in its URI
 *      (`?Reason=SIP%3Bcause%3D486`) means the request TO that entry got
 *      that response: the entry is the diverting user. An RFC 4458 `cause`
 *      URI parameter (3GPP CDIV) means the request was retargeted to that
 *      entry (usually our pilot): the mailbox is the entry its `mp` names,
 *      else its parent (`1.1` -> `1`), else the entry itself;
 *   3. Diversion (RFC 5806): every value of every header, in order; the
 *      top-most (last diverting party, default) or the bottom-most
 *      (originally called, a per-gateway option); an entry naming our
 *      pilot is skipped;
 *   4. P-Called-Party-ID (RFC 3455), then 5. the Request-URI user.
 * A malformed entry is skipped and reported in `warn`, never a reason to
 * refuse the call.
 *
 * Numbers (docs/modules/calls.md): %-escapes decoded, user parameters
 * (`;phone-context=...`, `;isub=...`) cut, visual separators (space, `-`,
 * `.`, `(`, `)`) and a leading `+` dropped; what is left must be digits.
 * The extension is the rightmost `digits` digits.
 *
 * Reason -> greeting: 486, 600, user-busy, Q.850 17 -> busy; 302 and
 * unconditional -> the unavailable greeting, recorded as unconditional;
 * anything else (408, 480, 487, 503, no-answer, unavailable,
 * out-of-service, deflection, none) -> unavailable.
 *
 * Caller: P-Asserted-Identity, then Remote-Party-ID (party=calling), then
 * From — trusted only because the peer is a trusted gateway. Anonymous
 * when Privacy has id, user or header, Remote-Party-ID has privacy=full
 * or uri, or From is `anonymous` / `anonymous.invalid`. */
#ifndef OM_APP_ROUTE_H
#define OM_APP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"
#include "sip/sip.h"

enum om_route_kind {
	OM_ROUTE_DEPOSIT,         /* leave a message in `mailbox` */
	OM_ROUTE_SUBSCRIBER,      /* the pilot, called from a mailbox's own number */
	OM_ROUTE_ASK_EXTENSION,   /* the pilot (or no usable number): ask */
	OM_ROUTE_UNKNOWN_MAILBOX, /* a diversion named a number with no mailbox */
};

enum om_route_reason { OM_ROUTE_UNAVAILABLE, OM_ROUTE_BUSY, OM_ROUTE_UNCONDITIONAL };

enum om_route_source {
	OM_ROUTE_SRC_NONE,
	OM_ROUTE_SRC_TARGET,
	OM_ROUTE_SRC_HISTORY_INFO,
	OM_ROUTE_SRC_DIVERSION,
	OM_ROUTE_SRC_P_CALLED_PARTY_ID,
	OM_ROUTE_SRC_REQUEST_URI,
};

enum om_route_caller_source {
	OM_ROUTE_CALLER_NONE,
	OM_ROUTE_CALLER_PAI,
	OM_ROUTE_CALLER_RPID,
	OM_ROUTE_CALLER_FROM,
};

struct om_route_in {
	const struct om_sip_msg *invite;
	const char *pilot;     /* the plan's pilot number ("" or NULL: none) */
	int digits;            /* extension length, 1..20 */
	bool diversion_bottom; /* the gateway's option: bottom-most Diversion */
	/* Is there a mailbox with this extension in the plan? */
	bool (*mailbox_h)(const char *ext, void *arg);
	void *arg;
};

#define OM_ROUTE_MAX_WARN 8
#define OM_ROUTE_NUM_MAX  64

struct om_route {
	enum om_route_kind kind;
	enum om_route_reason reason;
	bool busy_greeting;
	enum om_route_source source;
	char mailbox[OM_ROUTE_NUM_MAX]; /* the extension (DEPOSIT, SUBSCRIBER, UNKNOWN) */
	char number[OM_ROUTE_NUM_MAX];  /* the deciding number, all its digits */
	char cause[32];                 /* the cause as written ("486", "user-busy"), "" */
	char caller[OM_ROUTE_NUM_MAX];  /* number or URI user; "" when anonymous/unknown */
	char caller_name[128];          /* display name, "" */
	bool anonymous;
	enum om_route_caller_source caller_source;
	const char *warn[OM_ROUTE_MAX_WARN]; /* static texts: entries skipped */
	size_t nwarn;
};

/* Decides. Never fails on input: whatever is malformed is skipped (and
 * listed in out->warn). */
void om_route_decide(const struct om_route_in *in, struct om_route *out);

/* Normalises a telephone number or URI user (escaped as received) to its
 * digits; 0, or EINVAL when something other than digits and separators
 * remains (an alphanumeric user such as "alice"), or when it does not fit. */
int om_route_number(struct om_str user, char *out, size_t len);

const char *om_route_kind_name(enum om_route_kind k);
const char *om_route_reason_name(enum om_route_reason r);
const char *om_route_source_name(enum om_route_source s);
const char *om_route_caller_source_name(enum om_route_caller_source s);

#endif
