/* cmd_mailbox.c — `openum mailbox new|set|show|list|remove EXT` and
 * `openum mailbox messages EXT`. An extension is unique within its dial
 * plan and has the plan's length. The PIN is read from a private file or
 * stdin (--pin-file F|-), never from the command line where `ps` and shell
 * histories would show it (R14, R15). Greetings (--greeting KIND=FILE) are
 * converted to 8 kHz mono PCM16 WAV (libsndfile, libsamplerate) and kept in
 * DATA/greetings/ (0600); the directory row names the file. Messages are
 * read from the mailbox's Maildir (DATA/mail/<uid>/). */
#include "cli/commands.h"
#include "cli/dircmd.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/file.h"
#include "delivery/delivery.h"

static const char usage[] =
    "usage: openum mailbox new EXT --dialplan NAME [--name TEXT] [--email ADDR]\n"
    "                          [--pin-file F|-] [--dry-run] [--no-reload]\n"
    "       openum mailbox set EXT [--dialplan NAME] [--name TEXT] [--email ADDR]\n"
    "                          [--pin-file F|-] [--greeting busy|unavailable|name=FILE]\n"
    "                          [--remove-greeting busy|unavailable|name]\n"
    "                          [--dry-run] [--no-reload]\n"
    "       openum mailbox show EXT [--dialplan NAME]\n"
    "       openum mailbox list [--dialplan NAME]\n"
    "       openum mailbox remove EXT [--dialplan NAME] [--no-reload]\n"
    "       openum mailbox messages EXT [--dialplan NAME] [--json]\n"
    "       openum mailbox messages EXT [--dialplan NAME] --export ID --out FILE\n"
    "\n"
    "EXT has as many digits as its dial plan says. --dialplan may be left out when\n"
    "only one plan has that extension. The PIN (4-24 digits) comes from a file\n"
    "readable by its owner only, or from stdin with --pin-file -; it is stored as\n"
    "a salted scrypt hash with a pepper kept in DATA/pepper, outside the database.\n"
    "A PIN easy to guess is refused, naming the rule: the extension or the dial\n"
    "plan's pilot number (or a part of it), a digit or group repeated (1111, 1212,\n"
    "1122), digits in sequence (1234, 4321, 2468), lines on the keypad (2580).\n"
    "\n"
    "--greeting KIND=FILE takes any WAV, FLAC, Ogg or MP3 file, converts it to\n"
    "8 kHz mono 16-bit WAV and keeps it in the store: busy and unavailable are\n"
    "played for that reason instead of the default greeting; name is the owner's\n"
    "recorded name. It may last as long as the dial plan's max-greeting allows\n"
    "(`openum dialplan show`).\n"
    "\n"
    "messages lists the voice messages in the mailbox (new or saved, caller, time,\n"
    "duration); --export writes the audio of message ID (or a unique prefix of\n"
    "it) to FILE, which must not exist yet.\n"
    "\n"
    "`openum mailbox SUB --help` shows one sub-command.\n";

#define EXT_TEXT                                                                          \
	"EXT has as many digits as its dial plan says. --dialplan may be left out when\n" \
	"only one plan has that extension.\n"
#define PIN_TEXT                                                                          \
	"The PIN (4-24 digits) comes from a file readable by its owner only\n"            \
	"(--pin-file F), or from stdin with --pin-file -; it is stored as a salted\n"     \
	"scrypt hash with a pepper kept in DATA/pepper, outside the database. A PIN\n"    \
	"easy to guess is refused, naming the rule: the extension or the dial plan's\n"   \
	"pilot number (or a part of it), a digit or group repeated (1111, 1212, 1122),\n" \
	"digits in sequence (1234, 4321, 2468), lines on the keypad (2580).\n"
#define NEW_TEXT                                                                          \
	"--name and --email: the owner's name and the address voice messages are sent\n"  \
	"to. --dry-run checks and shows the change without making it; a running server\n" \
	"reloads unless --no-reload.\n"

static const struct om_cli_sub_help sub_help[] = {
	{ "new", "Creates a mailbox.\n" EXT_TEXT "\n" PIN_TEXT "\n" NEW_TEXT },
	{ "set", "Changes a mailbox.\n" EXT_TEXT "\n" PIN_TEXT "\n" NEW_TEXT "\n"
	         "--greeting KIND=FILE takes any WAV, FLAC, Ogg or MP3 file, converts it to\n"
	         "8 kHz mono 16-bit WAV and keeps it in the store: busy and unavailable are\n"
	         "played for that reason instead of the default greeting; name is the owner's\n"
	         "recorded name. It may last as long as the dial plan's max-greeting allows\n"
	         "(`openum dialplan show`). --remove-greeting KIND goes back to the default.\n" },
	{ "show", "Shows a mailbox and its settings.\n" EXT_TEXT },
	{ "list", "Lists the mailboxes (of one dial plan with --dialplan).\n" },
	{ "remove", "Removes a mailbox; a running server reloads unless --no-reload.\n" EXT_TEXT },
	{ "messages",
	  "Lists the voice messages in the mailbox: id, new or saved, caller, time and\n"
	  "duration (--json: one JSON array).\n" EXT_TEXT "\n"
	  "--export ID --out FILE writes the audio of message ID (or a unique prefix of\n"
	  "it) to FILE, which must not exist yet.\n" },
};

static void mb_json(struct om_buf *b, const struct om_dir_mailbox *m)
{
	om_buf_adds(b, "{");
	dc_json_kv_str(b, "id", m->uid, false);
	dc_json_kv_str(b, "extension", m->extension, true);
	dc_json_kv_str(b, "dialplan", m->dialplan, true);
	dc_json_kv_str(b, "name", m->display_name, true);
	dc_json_kv_str(b, "email", m->email, true);
	om_buf_adds(b, ",\"greetings\":{");
	dc_json_kv_str(b, "busy", m->greetings[OM_GREETING_BUSY], false);
	dc_json_kv_str(b, "unavailable", m->greetings[OM_GREETING_UNAVAILABLE], true);
	dc_json_kv_str(b, "name", m->greetings[OM_GREETING_NAME], true);
	om_buf_printf(b, "},\"pin_set\":%s}", m->has_pin ? "true" : "false");
}

static void mb_text(const struct om_dir_mailbox *m)
{
	printf("extension:  %s\n"
	       "dial plan:  %s\n"
	       "name:       %s\n"
	       "email:      %s\n"
	       "pin:        %s\n"
	       "greetings:  busy %s, unavailable %s, recorded name %s\n"
	       "id:         %s\n",
	       m->extension, m->dialplan, m->display_name, m->email[0] ? m->email : "(none)",
	       m->has_pin ? "set" : "not set",
	       m->greetings[OM_GREETING_BUSY][0] ? "own" : "default",
	       m->greetings[OM_GREETING_UNAVAILABLE][0] ? "own" : "default",
	       m->greetings[OM_GREETING_NAME][0] ? "recorded" : "none", m->uid);
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

/* ---------------------------------------------------- messages */

static void time_str(int64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static int export_audio(const struct om_maildir_msg *v, size_t n, const char *id, const char *out)
{
	const struct om_maildir_msg *hit = NULL;
	size_t idlen = strlen(id);
	if (!idlen) {
		om_cli_error("--export needs a message id (see `openum mailbox messages`)");
		return OM_EXIT_USAGE;
	}
	for (size_t i = 0; i < n; i++) {
		if (strncmp(v[i].id, id, idlen))
			continue;
		if (hit) {
			om_cli_error("message id '%s' is ambiguous: give more of it (see `openum "
			             "mailbox messages`)",
			             id);
			return OM_EXIT_USAGE;
		}
		hit = &v[i];
	}
	if (!hit) {
		om_cli_error("no message '%s' in this mailbox: see `openum mailbox messages`", id);
		return OM_EXIT_FAIL;
	}
	struct om_buf audio;
	char ext[8] = "";
	om_buf_init(&audio);
	int rc = om_maildir_audio(hit->file, &audio, ext);
	if (rc) {
		om_cli_error("message %s: %s", hit->id,
		             rc == ENOENT   ? "it has no audio (nothing was recorded)"
		             : rc == EINVAL ? "not a MIME message openum can read"
		                            : strerror(rc));
		om_buf_free(&audio);
		return OM_EXIT_FAIL;
	}
	rc = om_file_write_new(out, audio.p, audio.len, 0600, false);
	if (rc == EEXIST) {
		om_cli_error("%s exists: choose another file (nothing is overwritten)", out);
		om_buf_free(&audio);
		return OM_EXIT_FAIL;
	}
	if (rc) {
		om_cli_error("cannot write %s: %s", out, om_file_strerror(rc));
		om_buf_free(&audio);
		return OM_EXIT_FAIL;
	}
	printf("message %s: %zu bytes of %s audio written to %s\n", hit->id, audio.len, ext, out);
	om_buf_free(&audio);
	return OM_EXIT_OK;
}

/* `openum mailbox messages EXT [--dialplan NAME] [--export ID --out FILE]` */
static int cmd_messages(struct om_cli *cli, int argc, char **argv)
{
	enum { O_PLAN, O_EXPORT, O_OUT, O_N };
	struct dc_opt opts[O_N] = {
		[O_PLAN] = { "dialplan", true, NULL, false },
		[O_EXPORT] = { "export", true, NULL, false },
		[O_OUT] = { "out", true, NULL, false },
	};
	const char *pos[1];
	size_t npos = 0;
	struct om_db *db = NULL;
	struct om_dir_mailbox mb;
	struct om_dir_err e = { "" };
	struct om_maildir_msg *v = NULL;
	size_t n = 0;
	char dir[PATH_MAX];
	int rc = dc_parse(argc, argv, 2, opts, O_N, pos, 1, &npos, NULL, NULL, usage);
	if (rc)
		return rc;
	if (npos != 1 || !om_dir_extension_valid(pos[0])) {
		om_cli_error("give the mailbox's extension: openum mailbox messages EXT");
		return OM_EXIT_USAGE;
	}
	if (opts[O_EXPORT].set != opts[O_OUT].set) {
		om_cli_error("--export ID and --out FILE go together");
		return OM_EXIT_USAGE;
	}
	if ((rc = om_cli_store_open(cli, false, &db)))
		return rc;
	rc = om_dir_mailbox_get(db, opts[O_PLAN].set ? opts[O_PLAN].val : NULL, pos[0], &mb, &e);
	om_db_free(db);
	if (rc)
		return dc_fail(rc, &e);
	if (snprintf(dir, sizeof(dir), "%s/mail/%s", cli->data_dir, mb.uid) >= (int)sizeof(dir))
		return OM_EXIT_FAIL;
	rc = om_maildir_list(dir, &v, &n);
	if (rc) {
		om_cli_error("cannot read the mailbox %s: %s", dir, strerror(rc));
		return OM_EXIT_FAIL;
	}
	if (opts[O_EXPORT].set) {
		rc = export_audio(v, n, opts[O_EXPORT].val, opts[O_OUT].val);
		om_free(v);
		return rc;
	}
	if (cli->json) {
		struct om_buf b;
		om_buf_init(&b);
		om_buf_adds(&b, "[");
		for (size_t i = 0; i < n; i++) {
			char t[40];
			om_time_format(v[i].time_ms, t, sizeof(t));
			om_buf_adds(&b, i ? ",{" : "{");
			dc_json_kv_str(&b, "id", v[i].id, false);
			dc_json_kv_str(&b, "status", v[i].is_new ? "new" : "saved", true);
			dc_json_kv_str(&b, "caller", v[i].caller, true);
			dc_json_kv_str(&b, "caller_name", v[i].caller_name, true);
			dc_json_kv_str(&b, "time", t, true);
			om_buf_printf(&b, ",\"time_ms\":%lld,\"duration_s\":%u,\"recovered\":%s",
			              (long long)v[i].time_ms, v[i].duration_s,
			              v[i].recovered ? "true" : "false");
			dc_json_kv_str(&b, "format", v[i].format, true);
			om_buf_adds(&b, "}");
		}
		om_buf_adds(&b, "]");
		printf("%s\n", om_buf_cstr(&b) ? om_buf_cstr(&b) : "[]");
		om_buf_free(&b);
	} else if (!n) {
		printf("no messages in mailbox %s (dial plan %s)\n", mb.extension, mb.dialplan);
	} else {
		printf("%-12s  %-5s  %-19s  %8s  %s\n", "ID", "STATE", "TIME", "DURATION",
		       "CALLER");
		for (size_t i = 0; i < n; i++) {
			char t[40], who[300];
			time_str(v[i].time_ms, t, sizeof(t));
			if (v[i].caller_name[0] && strcmp(v[i].caller_name, v[i].caller))
				snprintf(who, sizeof(who), "%s (%s)", v[i].caller_name,
				         v[i].caller);
			else
				snprintf(who, sizeof(who), "%s", v[i].caller);
			printf("%-12.12s  %-5s  %-19s  %5u:%02u  %s%s\n", v[i].id,
			       v[i].is_new ? "new" : "saved", t, v[i].duration_s / 60,
			       v[i].duration_s % 60, who, v[i].recovered ? "  [recovered]" : "");
		}
	}
	om_free(v);
	return OM_EXIT_OK;
}

/* ---------------------------------------------------- greetings */

static int greeting_kind(const char *s, size_t len)
{
	if (len == 4 && !strncmp(s, "busy", 4))
		return OM_GREETING_BUSY;
	if (len == 11 && !strncmp(s, "unavailable", 11))
		return OM_GREETING_UNAVAILABLE;
	if (len == 4 && !strncmp(s, "name", 4))
		return OM_GREETING_NAME;
	return -1;
}

static const char *const kind_names[OM_GREETING_SLOTS] = { "default", "busy", "unavailable",
	                                                   "name" };

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
	enum { O_PLAN, O_NAME, O_EMAIL, O_PINFILE, O_GREETING, O_NOGREETING, O_N };
	struct dc_opt opts[O_N] = {
		[O_PLAN] = { "dialplan", true, NULL, false },
		[O_NAME] = { "name", true, NULL, false },
		[O_EMAIL] = { "email", true, NULL, false },
		[O_PINFILE] = { "pin-file", true, NULL, false },
		[O_GREETING] = { "greeting", true, NULL, false },
		[O_NOGREETING] = { "remove-greeting", true, NULL, false },
	};
	struct om_buf wav;
	unsigned wav_ms = 0;
	int gslot = -1, rmslot = -1;
	char gfile[PATH_MAX] = "", gname[OM_DIR_NAME_MAX + 1] = "";
	om_buf_init(&wav);
	struct om_dir_mailbox in, out;
	struct om_dir_err e = { "" };
	struct om_db *db = NULL;
	char pin[128] = "";
	struct om_dir_pin pinarg = { NULL, cli->data_dir };
	unsigned fields = 0;
	int rc;

	if (om_cli_wants_sub_help(argc, argv, "mailbox", usage, sub_help,
	                          sizeof(sub_help) / sizeof(sub_help[0])))
		return OM_EXIT_OK;
	if (om_cli_wants_help(argc, argv, usage))
		return OM_EXIT_OK;
	if (argc > 1 && !strcmp(argv[1], "messages"))
		return cmd_messages(cli, argc, argv);
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
	if ((opts[O_GREETING].set || opts[O_NOGREETING].set) && !is_set) {
		om_cli_error("greetings are set on an existing mailbox: openum mailbox set EXT "
		             "--greeting busy|unavailable|name=FILE");
		return OM_EXIT_USAGE;
	}
	if (opts[O_GREETING].set) {
		const char *v = opts[O_GREETING].val, *eq = strchr(v, '=');
		gslot = eq ? greeting_kind(v, (size_t)(eq - v)) : -1;
		if (gslot < 0 || !eq[1]) {
			om_cli_error(
			    "--greeting takes KIND=FILE, KIND one of busy, unavailable, name "
			    "(e.g. --greeting busy=/tmp/busy.wav)");
			return OM_EXIT_USAGE;
		}
		/* read with the caller's rights, before --as-owner drops them */
		char why[1024];
		rc = om_audio_greeting_convert(eq + 1, 3600, &wav, &wav_ms, why, sizeof(why));
		if (rc) {
			om_cli_error("greeting not changed: %s", why);
			om_buf_free(&wav);
			return OM_EXIT_FAIL;
		}
	}
	if (opts[O_NOGREETING].set) {
		const char *v = opts[O_NOGREETING].val;
		rmslot = greeting_kind(v, strlen(v));
		if (rmslot < 0 || rmslot == gslot) {
			om_cli_error(
			    "--remove-greeting takes busy, unavailable or name (not the one "
			    "--greeting sets)");
			om_buf_free(&wav);
			return OM_EXIT_USAGE;
		}
	}
	if (is_set && !fields && !opts[O_PINFILE].set && gslot < 0 && rmslot < 0) {
		om_cli_error("nothing to change: give --name, --email, --pin-file, --greeting or "
		             "--remove-greeting");
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
	struct om_dir_mailbox before;
	memset(&before, 0, sizeof(before));
	/* a removed mailbox's greetings go with it (its recorded name is
	 * someone's voice); its messages stay in mail/<uid>/ */
	if (is_rm && om_dir_mailbox_get(db, plan, in.extension, &before, &e) != 0)
		memset(&before, 0, sizeof(before)); /* the removal says why */
	if (is_set && (gslot >= 0 || rmslot >= 0)) {
		struct om_dir_dialplan p;
		rc = om_dir_mailbox_get(db, plan, in.extension, &before, &e);
		if (!rc)
			rc = om_dir_dialplan_get(db, before.dialplan, &p, &e);
		if (rc) {
			rc = dc_fail(rc, &e);
			goto out;
		}
		if (gslot >= 0 && wav_ms > (unsigned)p.max_greeting_s * 1000) {
			om_cli_error(
			    "greeting not changed: the file lasts %u.%u s, dial plan \"%s\" "
			    "allows greetings of at most %d s (dialplan set --max-greeting)",
			    wav_ms / 1000, (wav_ms % 1000) / 100, p.name, p.max_greeting_s);
			rc = OM_EXIT_FAIL;
			goto out;
		}
		if (gslot >= 0) {
			unsigned char rnd[4];
			char gdir[PATH_MAX];
			if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
				om_cli_error("no random numbers for the greeting's file name");
				rc = OM_EXIT_FAIL;
				goto out;
			}
			snprintf(gname, sizeof(gname), "greetings/%.32s.%s.%02x%02x%02x%02x.wav",
			         before.uid, kind_names[gslot], rnd[0], rnd[1], rnd[2], rnd[3]);
			snprintf(in.greetings[gslot], sizeof(in.greetings[gslot]), "%s", gname);
			fields |= OM_MB_F_GREETING << gslot;
			if (snprintf(gfile, sizeof(gfile), "%s/%s", cli->data_dir, gname) >=
			        (int)sizeof(gfile) ||
			    snprintf(gdir, sizeof(gdir), "%s/greetings", cli->data_dir) >=
			        (int)sizeof(gdir)) {
				om_cli_error("the store's path is too long");
				rc = OM_EXIT_FAIL;
				goto out;
			}
			if (!dry) {
				int w = mkdir(gdir, 0700) == 0 || errno == EEXIST ? 0 : errno;
				if (!w)
					w = om_file_write_atomic(gfile, wav.p, wav.len, 0600);
				if (w) {
					om_cli_error("cannot store the greeting as %s: %s", gfile,
					             strerror(w));
					gfile[0] = 0;
					rc = OM_EXIT_FAIL;
					goto out;
				}
			}
		}
		if (rmslot >= 0) {
			in.greetings[rmslot][0] = 0;
			fields |= OM_MB_F_GREETING << rmslot;
		}
	}
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
			/* the greeting files the row no longer names */
			for (int g = 0; (is_set || is_rm) && !dry && g < OM_GREETING_SLOTS; g++) {
				char old[PATH_MAX];
				if (is_rm)
					out.greetings[g][0] = '\0';
				if ((is_set && !(fields & (OM_MB_F_GREETING << g))) ||
				    !before.greetings[g][0] ||
				    !strcmp(before.greetings[g], out.greetings[g]) ||
				    !om_dir_greeting_valid(before.greetings[g]))
					continue;
				if (snprintf(old, sizeof(old), "%s/%s", cli->data_dir,
				             before.greetings[g]) < (int)sizeof(old))
					unlink(old);
			}
			if (gslot >= 0 && !cli->json && !dry)
				printf("greeting %s: %.1f s, stored as %s\n", kind_names[gslot],
				       wav_ms / 1000.0, gname);
			gfile[0] = 0; /* in use now */
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
	if (gfile[0] && !dry)
		unlink(gfile); /* stored, but the row does not name it */
	om_buf_free(&wav);
	OPENSSL_cleanse(pin, sizeof(pin));
	om_db_free(db);
	return rc;
}
