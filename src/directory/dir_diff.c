/* dir_diff.c — what changed between two directory snapshots, in words, for
 * the reload report (`openum reload`, event 1180).
 *
 * Dial plans and gateways are matched by row id (so a renamed object is
 * "renamed", not removed and added), mailboxes by their stable uid. Every
 * field an administrator can set is compared; addresses resolved from
 * FQDNs are not (they are DNS's, not a change). The text is bounded: an
 * import of thousands of mailboxes yields a few KiB and a count. */
#include "directory/dir_private.h"

#include "core/alloc.h"
#include "core/str.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIFF_TEXT_MAX = 4096 };

struct diff {
	struct om_buf *out;
	size_t n;    /* changes found */
	size_t more; /* changes found after the text was full */
	struct om_buf fields;
};

static void item(struct diff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A work buffer's text; after an allocation failure "" and the output
 * buffer reports ENOMEM. */
static const char *text(struct diff *d, struct om_buf *b)
{
	const char *s = om_buf_cstr(b);
	if (!s) {
		d->out->err = ENOMEM;
		return "";
	}
	return s;
}

static void item(struct diff *d, const char *fmt, ...)
{
	va_list ap;
	d->n++;
	if (d->out->len >= DIFF_TEXT_MAX) {
		d->more++;
		return;
	}
	if (d->out->len)
		om_buf_adds(d->out, "; ");
	va_start(ap, fmt);
	om_buf_vprintf(d->out, fmt, ap);
	va_end(ap);
}

/* Field changes of one object are gathered in d->fields, then emitted as
 * one item "what: a x -> y, b u -> v". */
static void field_str(struct diff *d, const char *name, const char *a, const char *b)
{
	if (!strcmp(a, b))
		return;
	om_buf_printf(&d->fields, "%s%s %s -> %s", d->fields.len ? ", " : "", name,
	              a[0] ? a : "(none)", b[0] ? b : "(none)");
}

static void field_int(struct diff *d, const char *name, long long a, long long b)
{
	if (a != b)
		om_buf_printf(&d->fields, "%s%s %lld -> %lld", d->fields.len ? ", " : "", name, a,
		              b);
}

static void field_bool(struct diff *d, const char *name, bool a, bool b)
{
	field_str(d, name, a ? "yes" : "no", b ? "yes" : "no");
}

static void fields_emit(struct diff *d, const char *what, const char *name)
{
	if (d->fields.len)
		item(d, "%s %s: %s", what, name, text(d, &d->fields));
	om_buf_free(&d->fields);
	om_buf_init(&d->fields);
}

static const struct om_dir_dialplan *plan_by_id(const struct om_dir_snapshot *s, int64_t id)
{
	return om_dir_snapshot_dialplan_by_id(s, id);
}

static void diff_plans(struct diff *d, const struct om_dir_snapshot *a,
                       const struct om_dir_snapshot *b)
{
	for (size_t i = 0; i < om_dir_snapshot_dialplan_count(a); i++) {
		const struct om_dir_dialplan *x = om_dir_snapshot_dialplan_at(a, i);
		const struct om_dir_dialplan *y = plan_by_id(b, x->id);
		if (!y) {
			item(d, "dial plan %s removed", x->name);
			continue;
		}
		if (strcmp(x->name, y->name))
			item(d, "dial plan %s renamed %s", x->name, y->name);
		field_int(d, "digits", x->digits, y->digits);
		field_str(d, "security", om_dir_security_name(x->security),
		          om_dir_security_name(y->security));
		field_str(d, "pilot", x->pilot, y->pilot);
		field_int(d, "max message s", x->max_message_s, y->max_message_s);
		field_int(d, "max greeting s", x->max_greeting_s, y->max_greeting_s);
		field_str(d, "rtp symmetric", x->rtp_symmetric ? "yes" : "no",
		          y->rtp_symmetric ? "yes" : "no");
		fields_emit(d, "dial plan", y->name);
	}
	for (size_t i = 0; i < om_dir_snapshot_dialplan_count(b); i++) {
		const struct om_dir_dialplan *y = om_dir_snapshot_dialplan_at(b, i);
		if (!plan_by_id(a, y->id))
			item(d, "dial plan %s added (%s)", y->name,
			     om_dir_security_name(y->security));
	}
}

static const struct om_dir_gateway *gw_by_id(const struct om_dir_snapshot *s, int64_t id)
{
	for (size_t i = 0; i < om_dir_snapshot_gateway_count(s); i++) {
		const struct om_dir_gateway *g = om_dir_snapshot_gateway_at(s, i);
		if (g->id == id)
			return g;
	}
	return NULL;
}

static void hosts_str(const struct om_dir_gateway *g, struct om_buf *b)
{
	for (size_t i = 0; i < g->nhosts; i++)
		om_buf_printf(b, "%s%s", i ? "," : "", g->hosts[i].name);
}

static void diff_gateways(struct diff *d, const struct om_dir_snapshot *a,
                          const struct om_dir_snapshot *b)
{
	for (size_t i = 0; i < om_dir_snapshot_gateway_count(a); i++) {
		const struct om_dir_gateway *x = om_dir_snapshot_gateway_at(a, i);
		const struct om_dir_gateway *y = gw_by_id(b, x->id);
		struct om_buf hx, hy;
		if (!y) {
			item(d, "gateway %s removed", x->name);
			continue;
		}
		if (strcmp(x->name, y->name))
			item(d, "gateway %s renamed %s", x->name, y->name);
		om_buf_init(&hx);
		om_buf_init(&hy);
		hosts_str(x, &hx);
		hosts_str(y, &hy);
		field_str(d, "addresses", text(d, &hx), text(d, &hy));
		om_buf_free(&hx);
		om_buf_free(&hy);
		field_str(d, "tls name", x->tls_name, y->tls_name);
		field_int(d, "port", x->port, y->port);
		field_str(d, "transport", om_dir_transport_name(x->transport),
		          om_dir_transport_name(y->transport));
		field_str(d, "dial plan", x->dialplan, y->dialplan);
		field_str(d, "status", om_dir_gw_status_name(x->status),
		          om_dir_gw_status_name(y->status));
		field_int(d, "max calls", x->max_calls, y->max_calls);
		field_bool(d, "outcalls", x->outcalls, y->outcalls);
		field_bool(d, "mwi", x->mwi, y->mwi);
		field_str(d, "diversion", x->diversion_bottom ? "bottom" : "top",
		          y->diversion_bottom ? "bottom" : "top");
		fields_emit(d, "gateway", y->name);
	}
	for (size_t i = 0; i < om_dir_snapshot_gateway_count(b); i++) {
		const struct om_dir_gateway *y = om_dir_snapshot_gateway_at(b, i);
		if (!gw_by_id(a, y->id))
			item(d, "gateway %s added (%s)", y->name, om_dir_gw_status_name(y->status));
	}
}

static void plans_str(const struct om_dir_server *s, struct om_buf *b)
{
	for (size_t i = 0; i < s->ndialplans; i++)
		om_buf_printf(b, "%s%s", i ? "," : "", s->dialplans[i]);
}

static void diff_server(struct diff *d, const struct om_dir_snapshot *a,
                        const struct om_dir_snapshot *b)
{
	const struct om_dir_server *x = om_dir_snapshot_server(a), *y = om_dir_snapshot_server(b);
	struct om_buf px, py;
	field_str(d, "fqdn", x->fqdn, y->fqdn);
	field_str(d, "pinned certificate", x->pinned_certificate, y->pinned_certificate);
	field_str(d, "status", om_dir_srv_status_name(x->status),
	          om_dir_srv_status_name(y->status));
	om_buf_init(&px);
	om_buf_init(&py);
	plans_str(x, &px);
	plans_str(y, &py);
	field_str(d, "dial plans", text(d, &px), text(d, &py));
	om_buf_free(&px);
	om_buf_free(&py);
	fields_emit(d, "server", "settings");
}

static int cmp_uid(const void *a, const void *b)
{
	const struct om_dir_mailbox *const *x = a, *const *y = b;
	return strcmp((*x)->uid, (*y)->uid);
}

/* Mailboxes sorted by uid (pointers into the snapshot); NULL on ENOMEM. */
static const struct om_dir_mailbox **by_uid(const struct om_dir_snapshot *s, size_t *n)
{
	const struct om_dir_mailbox **v;
	*n = om_dir_snapshot_mailbox_count(s);
	v = om_calloc(*n ? *n : 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < *n; i++)
		v[i] = om_dir_snapshot_mailbox_at(s, i);
	qsort(v, *n, sizeof(*v), cmp_uid);
	return v;
}

static const char *const greeting_names[OM_GREETING_SLOTS] = {
	[OM_GREETING_DEFAULT] = "default greeting",
	[OM_GREETING_BUSY] = "busy greeting",
	[OM_GREETING_UNAVAILABLE] = "unavailable greeting",
	[OM_GREETING_NAME] = "recorded name",
};

static void diff_mailbox(struct diff *d, const struct om_dir_mailbox *x,
                         const struct om_dir_mailbox *y)
{
	char name[OM_DIR_EXT_MAX + OM_DIR_NAME_MAX + 16];
	field_str(d, "extension", x->extension, y->extension);
	field_str(d, "dial plan", x->dialplan, y->dialplan);
	field_str(d, "name", x->display_name, y->display_name);
	field_str(d, "email", x->email, y->email);
	for (size_t g = 0; g < OM_GREETING_SLOTS; g++)
		field_str(d, greeting_names[g], x->greetings[g], y->greetings[g]);
	field_bool(d, "pin set", x->has_pin, y->has_pin);
	/* a new PIN over an old one: said, never shown */
	if (x->has_pin && y->has_pin && x->pin_set_ms != y->pin_set_ms)
		om_buf_printf(&d->fields, "%spin changed", d->fields.len ? ", " : "");
	field_bool(d, "pin must change", x->pin_must_change, y->pin_must_change);
	snprintf(name, sizeof(name), "%s in %s", y->extension, y->dialplan);
	fields_emit(d, "mailbox", name);
}

static void diff_mailboxes(struct diff *d, const struct om_dir_snapshot *a,
                           const struct om_dir_snapshot *b)
{
	size_t na, nb, i = 0, j = 0;
	const struct om_dir_mailbox **va = by_uid(a, &na), **vb = by_uid(b, &nb);
	if (!va || !vb) {
		d->out->err = ENOMEM;
		goto out;
	}
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : strcmp(va[i]->uid, vb[j]->uid);
		if (c < 0) {
			item(d, "mailbox %s in %s removed", va[i]->extension, va[i]->dialplan);
			i++;
		} else if (c > 0) {
			item(d, "mailbox %s in %s added", vb[j]->extension, vb[j]->dialplan);
			j++;
		} else {
			diff_mailbox(d, va[i++], vb[j++]);
		}
	}
out:
	om_free(va);
	om_free(vb);
}

size_t om_dir_snapshot_diff(const struct om_dir_snapshot *old, const struct om_dir_snapshot *now,
                            struct om_buf *out)
{
	struct diff d = { .out = out };
	if (!old || !now)
		return 0;
	om_buf_init(&d.fields);
	diff_server(&d, old, now);
	diff_plans(&d, old, now);
	diff_gateways(&d, old, now);
	diff_mailboxes(&d, old, now);
	om_buf_free(&d.fields);
	if (d.more)
		om_buf_printf(out, "; and %zu more change%s", d.more, d.more == 1 ? "" : "s");
	return d.n;
}
