/* cmd_mailbox.c — `openum mailbox new|set|show|list|remove EXT`. An
 * extension is unique within its dial plan and has the plan's length. The
 * PIN is read from a private file or stdin (--pin-file F|-), never from the
 * command line where `ps` and shell histories would show it (R14, R15). */
#include "cli/commands.h"
#include "cli/dircmd.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

static const char usage[] =
    "usage: openum mailbox new EXT --dialplan NAME [--name TEXT] [--email ADDR]\n"
    "                          [--pin-file F|-] [--dry-run] [--no-reload]\n"
    "       openum mailbox set EXT [--dialplan NAME] [--name TEXT] [--email ADDR]\n"
    "                          [--pin-file F|-] [--dry-run] [--no-reload]\n"
    "       openum mailbox show EXT [--dialplan NAME]\n"
    "       openum mailbox list [--dialplan NAME]\n"
    "       openum mailbox remove EXT [--dialplan NAME] [--no-reload]\n"
    "\n"
    "EXT has as many digits as its dial plan says. --dialplan may be left out when\n"
    "only one plan has that extension. The PIN (4-24 digits) comes from a file\n"
    "readable by its owner only, or from stdin with --pin-file -; it is stored as\n"
    "a salted scrypt hash with a pepper kept in DATA/pepper, outside the database.\n";

static void mb_json(struct om_buf *b, const struct om_dir_mailbox *m)
{
	om_buf_adds(b, "{");
	dc_json_kv_str(b, "id", m->uid, false);
	dc_json_kv_str(b, "extension", m->extension, true);
	dc_json_kv_str(b, "dialplan", m->dialplan, true);
	dc_json_kv_str(b, "name", m->display_name, true);
	dc_json_kv_str(b, "email", m->email, true);
	om_buf_printf(b, ",\"pin_set\":%s}", m->has_pin ? "true" : "false");
}

static void mb_text(const struct om_dir_mailbox *m)
{
	printf("extension:  %s\n"
	       "dial plan:  %s\n"
	       "name:       %s\n"
	       "email:      %s\n"
	       "pin:        %s\n"
	       "id:         %s\n",
	       m->extension, m->dialplan, m->display_name, m->email[0] ? m->email : "(none)",
	       m->has_pin ? "set" : "not set", m->uid);
}

static int list_mbs(struct om_cli *cli, struct om_db *db, const char *plan)
{
	struct om_dir_mailbox *arr = NULL;
	size_t n = 0;
	struct om_buf b;
	if (plan) {
		struct om_dir_dialplan p;
		struct om_dir_err e;
		int rc = om_dir_dialplan_get(db, plan, &p, &e);
		if (rc)
			return dc_fail(rc, &e);
	}
	if (om_dir_mailbox_list(db, plan, &arr, &n)) {
		om_cli_error("could not read the mailboxes from %s", om_db_path(db));
		return OM_EXIT_FAIL;
	}
	om_buf_init(&b);
	if (cli->json) {
		om_buf_adds(&b, "[");
		for (size_t i = 0; i < n; i++) {
			if (i)
				om_buf_adds(&b, ",");
			mb_json(&b, &arr[i]);
		}
		om_buf_adds(&b, "]");
		printf("%s\n", om_buf_cstr(&b) ? om_buf_cstr(&b) : "[]");
	} else if (n == 0) {
		printf("no mailboxes: add one with `openum mailbox new EXT --dialplan PLAN`\n");
	} else {
		printf("%-20s %-20s %-4s %-30s %s\n", "EXTENSION", "DIAL PLAN", "PIN", "NAME",
		       "EMAIL");
		for (size_t i = 0; i < n; i++)
			printf("%-20s %-20s %-4s %-30s %s\n", arr[i].extension, arr[i].dialplan,
			       arr[i].has_pin ? "set" : "-", arr[i].display_name, arr[i].email);
	}
	om_buf_free(&b);
	om_free(arr);
	return OM_EXIT_OK;
}

/* A PIN on the command line is refused before anything else is looked at. */
static bool pin_on_argv(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--pin") || !strncmp(argv[i], "--pin=", 6))
			return true;
	}
	return false;
}

int om_cmd_mailbox(struct om_cli *cli, int argc, char **argv)
{
	enum { O_PLAN, O_NAME, O_EMAIL, O_PINFILE, O_N };
	struct dc_opt opts[O_N] = {
		[O_PLAN] = { "dialplan", true, NULL, false },
		[O_NAME] = { "name", true, NULL, false },
		[O_EMAIL] = { "email", true, NULL, false },
		[O_PINFILE] = { "pin-file", true, NULL, false },
	};
	struct om_dir_mailbox in, out;
	struct om_dir_err e = { "" };
	struct om_db *db = NULL;
	char pin[128] = "";
	struct om_dir_pin pinarg = { NULL, cli->data_dir };
	unsigned fields = 0;
	int rc;

	if (om_cli_wants_help(argc, argv, usage))
		return OM_EXIT_OK;
	if (pin_on_argv(argc, argv)) {
		om_cli_error("a PIN is never taken on the command line (other users see it in `ps` "
		             "and it stays in shell history): put it in a file only you can read "
		             "and use --pin-file FILE, or use --pin-file - to read it from stdin");
		return OM_EXIT_USAGE;
	}
	struct dc_args a;
	rc = dc_args_parse(argc, argv, "mailbox", "the mailbox's extension", opts, O_N, 1, usage,
	                   &a);
	if (rc)
		return rc;
	bool is_new = a.is_new, is_set = a.is_set, is_show = a.is_show, is_list = a.is_list;
	bool is_rm = a.is_rm, dry = a.dry, no_reload = a.no_reload;
	size_t npos = a.pos ? 1 : 0;
	const char *pos[1] = { a.pos };
	memset(&in, 0, sizeof(in));
	if (npos) {
		if (!om_dir_extension_valid(pos[0])) {
			om_cli_error("invalid extension '%s': give 1 to 20 digits", pos[0]);
			return OM_EXIT_USAGE;
		}
		snprintf(in.extension, sizeof(in.extension), "%s", pos[0]);
	}
	const char *plan = opts[O_PLAN].set ? opts[O_PLAN].val : NULL;
	if (plan) {
		if (!om_dir_name_valid(plan)) {
			om_cli_error("invalid --dialplan '%s': see `openum dialplan list`", plan);
			return OM_EXIT_USAGE;
		}
		snprintf(in.dialplan, sizeof(in.dialplan), "%s", plan);
	}
	if (is_new && !plan) {
		om_cli_error("a new mailbox needs --dialplan NAME");
		return OM_EXIT_USAGE;
	}
	if (opts[O_NAME].set) {
		if (!om_dir_display_valid(opts[O_NAME].val)) {
			om_cli_error("invalid --name: at most %d bytes of text without control "
			             "characters",
			             OM_DIR_DISPLAY_MAX);
			return OM_EXIT_USAGE;
		}
		snprintf(in.display_name, sizeof(in.display_name), "%s", opts[O_NAME].val);
		fields |= OM_MB_F_DISPLAY;
	}
	if (opts[O_EMAIL].set) {
		const char *v = opts[O_EMAIL].val;
		if (!strcmp(v, "none"))
			v = "";
		if (*v && !om_dir_email_valid(v)) {
			om_cli_error("invalid --email '%s': give an address like user@example.com",
			             v);
			return OM_EXIT_USAGE;
		}
		snprintf(in.email, sizeof(in.email), "%s", v);
		fields |= OM_MB_F_EMAIL;
	}
	if (is_set && !fields && !opts[O_PINFILE].set) {
		om_cli_error("nothing to change: give --name, --email or --pin-file");
		return OM_EXIT_USAGE;
	}
	/* The PIN is read with the caller's rights, before --as-owner drops
	 * them: the administrator's private file stays readable. */
	if (opts[O_PINFILE].set) {
		if ((rc = om_cli_read_secret(opts[O_PINFILE].val, pin, sizeof(pin))))
			goto out;
		pinarg.pin = pin;
		fields |= OM_MB_F_PIN;
	}
	if ((rc = om_cli_store_open(cli, is_new || is_set || is_rm, &db)))
		goto out;
	int flags = dry ? OM_DIR_DRY_RUN : 0;
	if (is_list) {
		rc = list_mbs(cli, db, plan);
	} else if (is_show) {
		rc = om_dir_mailbox_get(db, plan, in.extension, &out, &e);
		if (rc) {
			rc = dc_fail(rc, &e);
		} else if (cli->json) {
			struct om_buf b;
			om_buf_init(&b);
			mb_json(&b, &out);
			printf("%s\n", om_buf_cstr(&b) ? om_buf_cstr(&b) : "null");
			om_buf_free(&b);
		} else {
			mb_text(&out);
		}
	} else {
		if (is_new)
			rc = om_dir_mailbox_new(db, &in, fields, &pinarg, flags, &out, &e);
		else if (is_set)
			rc = om_dir_mailbox_set(db, plan, in.extension, &in, fields, &pinarg, flags,
			                        &out, &e);
		else
			rc = om_dir_mailbox_remove(db, plan, in.extension, flags, &e);
		if (rc) {
			rc = dc_fail(rc, &e);
		} else {
			struct om_buf b;
			om_buf_init(&b);
			if (!is_rm)
				mb_json(&b, &out);
			if (!cli->json) {
				dc_report("mailbox", in.extension, &a);
				if (!is_rm)
					mb_text(&out);
			}
			om_db_free(db);
			db = NULL;
			rc = dc_done(cli, is_rm ? NULL : "mailbox", dry, no_reload, &b);
			om_buf_free(&b);
		}
	}
out:
	OPENSSL_cleanse(pin, sizeof(pin));
	om_db_free(db);
	return rc;
}
