/* cmd_events.c — `openum events`: the event log (R17) from openum.db. */
#include "cli/commands.h"
#include "core/clock.h"
#include "core/events.h"
#include "core/str.h"
#include "directory/eventlog.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char events_usage[] =
    "usage: openum events [--since TIME|DURATION] [--id N] [--level L] [--limit N]\n"
    "                     [--follow] [--json] [--data DIR]\n"
    "\n"
    "Shows stored events, oldest first; when none matches, a line says so (with\n"
    "--json: one JSON object per event, so no line).\n"
    "  --since    2026-11-27T10:00:00Z, '2026-11-27 10:00:00', 2026-11-27 (UTC),\n"
    "             or a duration back from now: 90s, 15m, 2h, 7d\n"
    "  --id N     only event N (e.g. 1130)\n"
    "  --level L  only L and above: debug, info, warning, error\n"
    "  --limit N  only the newest N (default: all)\n"
    "  --follow   keep printing new events until interrupted\n"
    "  --json     one JSON object per line\n"
    "\n"
    "Event IDs:\n";

struct out_ctx {
	bool json;
	long printed;
};

static int print_row(const struct om_eventlog_row *r, void *arg)
{
	struct out_ctx *o = arg;
	char ts[40];
	om_time_format(r->time_ms, ts, sizeof(ts));
	const struct om_event_info *info = om_event_info(r->id);
	if (o->json) {
		struct om_buf b;
		om_buf_init(&b);
		om_buf_printf(&b, "{\"seq\":%lld,\"time\":\"%s\",\"id\":%d,\"level\":",
		              (long long)r->seq, ts, r->id);
		om_buf_json_str(&b, r->level ? r->level : "");
		om_buf_adds(&b, ",\"name\":");
		om_buf_json_str(&b, info ? info->name : "");
		om_buf_adds(&b, ",\"source\":");
		om_buf_json_str(&b, r->source ? r->source : "");
		om_buf_adds(&b, ",\"message\":");
		om_buf_json_str(&b, r->message ? r->message : "");
		om_buf_printf(&b, ",\"fields\":%s,\"suppressed\":%ld}\n",
		              r->fields ? r->fields : "{}", r->suppressed);
		if (om_buf_cstr(&b))
			fputs(om_buf_cstr(&b), stdout);
		om_buf_free(&b);
	} else {
		printf("%s %-7s %d %s: %s", ts, r->level ? r->level : "", r->id,
		       info ? info->name : "?", r->message ? r->message : "");
		if (r->source && *r->source)
			printf(" source=%s", r->source);
		if (r->fields && strcmp(r->fields, "{}"))
			printf(" %s", r->fields);
		if (r->suppressed)
			printf(" (and %ld more held back by the rate limit)", r->suppressed);
		putchar('\n');
	}
	o->printed++;
	return 0;
}

/* For people, when nothing matched: a line saying so and which filters
 * applied (exit status stays 0; --json prints no line, as for any empty
 * result). */
static void empty_note(const struct om_eventlog_query *q, const char *level, bool follow)
{
	char ts[40];
	printf("no events");
	if (q->id)
		printf(" with id %d", q->id);
	if (level)
		printf(" at level %s or above", level);
	if (q->since_ms != INT64_MIN) {
		om_time_format(q->since_ms, ts, sizeof(ts));
		printf(" since %s", ts);
	}
	printf("%s\n", follow ? " yet; waiting for new ones" : "");
}

static volatile sig_atomic_t g_stop;

static void on_sig(int s)
{
	(void)s;
	g_stop = 1;
}

int om_cmd_events(struct om_cli *cli, int argc, char **argv)
{
	struct om_eventlog_query q = { .since_ms = INT64_MIN };
	struct out_ctx o = { .json = cli->json };
	bool follow = false;
	const char *level = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(events_usage, stdout);
			for (const struct om_event_info *e = om_event_table(); e->id; e++)
				printf("  %d %-8s %s\n", e->id, om_level_name(e->level), e->what);
			return OM_EXIT_OK;
		} else if (!strcmp(a, "--follow") || !strcmp(a, "-f")) {
			follow = true;
		} else if (!strcmp(a, "--since") || !strcmp(a, "--id") || !strcmp(a, "--level") ||
		           !strcmp(a, "--limit")) {
			if (!v) {
				om_cli_error("%s needs a value", a);
				return OM_EXIT_USAGE;
			}
			i++;
			if (!strcmp(a, "--since")) {
				if (om_time_parse(v, om_now_ms(), &q.since_ms)) {
					om_cli_error("--since '%s': give a time like "
					             "2026-11-27T10:00:00Z or a duration like 15m, "
					             "2h, 7d",
					             v);
					return OM_EXIT_USAGE;
				}
			} else if (!strcmp(a, "--id")) {
				uint64_t id;
				if (om_str_to_u64(om_str_c(v), 99999, &id) ||
				    !om_event_info((int)id)) {
					om_cli_error("--id '%s' is no event ID; `openum events "
					             "--help` lists them",
					             v);
					return OM_EXIT_USAGE;
				}
				q.id = (int)id;
			} else if (!strcmp(a, "--level")) {
				enum om_level l;
				if (om_level_parse(v, &l)) {
					om_cli_error("--level '%s': use debug, info, warning or "
					             "error",
					             v);
					return OM_EXIT_USAGE;
				}
				q.min_level = (int)l;
				level = v;
			} else {
				uint64_t n;
				if (om_str_to_u64(om_str_c(v), 100000000, &n) || n == 0) {
					om_cli_error("--limit '%s' must be a positive number", v);
					return OM_EXIT_USAGE;
				}
				q.limit = (long)n;
			}
		} else {
			om_cli_error("unexpected argument '%s'; see `openum events --help`", a);
			return OM_EXIT_USAGE;
		}
	}
	struct om_db *db;
	int rc = om_cli_store_open(cli, false, &db);
	if (rc)
		return rc;
	int64_t last = 0;
	if (om_eventlog_query(db, &q, print_row, &o, &last)) {
		om_cli_error("cannot read events from %s", om_db_path(db));
		om_db_free(db);
		return OM_EXIT_FAIL;
	}
	if (!o.json && o.printed == 0)
		empty_note(&q, level, follow);
	fflush(stdout);
	if (follow) {
		signal(SIGINT, on_sig);
		signal(SIGTERM, on_sig);
		q.limit = 0;
		while (!g_stop) {
			q.after_seq = last;
			om_eventlog_query(db, &q, print_row, &o, &last);
			fflush(stdout);
			usleep(300 * 1000);
		}
	}
	om_db_free(db);
	return OM_EXIT_OK;
}
