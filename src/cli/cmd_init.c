/* cmd_init.c — `openum init`: create (or upgrade) the store.
 * `openum serve` runs on it; nothing else creates a store. */
#include "cli/commands.h"
#include "core/config.h"
#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char init_usage[] =
    "usage: openum init [--data DIR]\n"
    "\n"
    "Creates the store: DIR (mode 0700) with openum.conf (every key at its\n"
    "default, commented), openum.db, certs/{personal,trusted,crl}, spool/ and\n"
    "mail/. Running it again on an existing store changes nothing but upgrades\n"
    "the database schema if this openum is newer.\n";

int om_cli_wants_help(int argc, char **argv, const char *usage)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 1;
		}
	}
	return 0;
}

/* Lines of the usage block that belong to `openum CMD SUB` (see commands.h). */
static void sub_usage(const char *usage, const char *cmd, const char *sub)
{
	char head[96];
	int hl = snprintf(head, sizeof(head), "openum %s %s", cmd, sub);
	const char *end = strstr(usage, "\n\n");
	bool mine = false, first = true;
	if (hl <= 0 || (size_t)hl >= sizeof(head))
		return;
	if (!end)
		end = usage + strlen(usage);
	for (const char *l = usage; l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t len = nl ? (size_t)(nl - l) : (size_t)(end - l);
		/* a usage line has "openum" at column 7 ("usage: " or 7 blanks) */
		if (len >= 7 + 6 && !strncmp(l + 7, "openum", 6)) {
			const char *o = l + 7;
			size_t rest = len - 7;
			mine = rest >= (size_t)hl && !strncmp(o, head, (size_t)hl) &&
			       (rest == (size_t)hl || o[hl] == ' ');
		}
		if (mine && len > 7) {
			printf("%s%.*s\n", first ? "usage: " : "       ", (int)len - 7, l + 7);
			first = false;
		}
		l += len + 1;
	}
}

int om_cli_wants_sub_help(int argc, char **argv, const char *cmd, const char *usage,
                          const struct om_cli_sub_help *subs, size_t nsubs)
{
	if (argc < 3)
		return 0;
	for (size_t k = 0; k < nsubs; k++) {
		if (strcmp(argv[1], subs[k].sub))
			continue;
		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--"))
				break;
			if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
				sub_usage(usage, cmd, subs[k].sub);
				if (subs[k].text[0])
					printf("\n%s", subs[k].text);
				return 1;
			}
		}
	}
	return 0;
}

static const char *const subdirs[] = { "certs",     "certs/personal", "certs/trusted",
	                               "certs/crl", "spool",          "mail" };

/* Creates the store; returns 0 (created or already there) or an exit code. */
int om_cli_init_store(struct om_cli *cli, bool quiet);

int om_cli_init_store(struct om_cli *cli, bool quiet)
{
	struct stat st;
	char path[4096], err[1024];
	bool existed;
	int rc;

	umask(077);
	existed = stat(cli->data_dir, &st) == 0;
	if (existed && !S_ISDIR(st.st_mode)) {
		om_cli_error("%s exists and is not a folder", cli->data_dir);
		return OM_EXIT_FAIL;
	}
	if (existed && st.st_uid != geteuid()) {
		/* Same rule as every other command: act as the owner or refuse. */
		snprintf(path, sizeof(path), "%s/openum.db", cli->data_dir);
		if (!cli->as_owner) {
			om_cli_error("%s belongs to another user (uid %u): run as that user or add "
			             "--as-owner",
			             cli->data_dir, (unsigned)st.st_uid);
			return OM_EXIT_FAIL;
		}
		/* Reuse the store check's privilege drop when the db exists. */
		if (access(path, F_OK) == 0) {
			rc = om_cli_store_check(cli, true);
			if (rc)
				return rc;
		} else {
			om_cli_error("%s belongs to uid %u and holds no store; create the store as "
			             "that user",
			             cli->data_dir, (unsigned)st.st_uid);
			return OM_EXIT_FAIL;
		}
	}
	rc = om_mkdir_p(cli->data_dir, 0700);
	if (rc) {
		om_cli_error("cannot create %s: %s", cli->data_dir, strerror(rc));
		return OM_EXIT_FAIL;
	}
	if (stat(cli->data_dir, &st) == 0 && (st.st_mode & 077)) {
		if (chmod(cli->data_dir, 0700) != 0) {
			om_cli_error("cannot make %s private (chmod 0700): %s", cli->data_dir,
			             strerror(errno));
			return OM_EXIT_FAIL;
		}
		if (!quiet)
			om_cli_note("%s was readable by others; now 0700", cli->data_dir);
	}
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		om_cli_path(cli, subdirs[i], path, sizeof(path));
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			om_cli_error("cannot create %s: %s", path, strerror(errno));
			return OM_EXIT_FAIL;
		}
	}
	bool conf_created = false;
	om_cli_path(cli, "openum.conf", path, sizeof(path));
	if (access(path, F_OK) != 0) {
		const char *t = om_config_default_text();
		rc = om_file_write_atomic(path, t, strlen(t), 0600);
		if (rc) {
			om_cli_error("cannot write %s: %s", path, strerror(rc));
			return OM_EXIT_FAIL;
		}
		conf_created = true;
	}
	om_cli_path(cli, "openum.db", path, sizeof(path));
	bool db_existed = access(path, F_OK) == 0;
	struct om_db *db = NULL;
	if (om_db_open(cli->data_dir, OM_DB_CREATE, &db, err, sizeof(err)) != 0) {
		om_cli_error("%s", err);
		return OM_EXIT_FAIL;
	}
	int version = om_db_schema_version(db);
	om_db_free(db);
	if (cli->json) {
		printf("{\"ok\":true,\"data\":\"%s\",\"created\":%s,\"schema\":%d}\n",
		       cli->data_dir, db_existed ? "false" : "true", version);
	} else if (!quiet) {
		if (db_existed && !conf_created)
			printf("store at %s is already initialised (schema %d); nothing changed\n",
			       cli->data_dir, version);
		else
			printf("initialised store at %s (schema %d)\n", cli->data_dir, version);
	}
	return OM_EXIT_OK;
}

int om_cmd_init(struct om_cli *cli, int argc, char **argv)
{
	if (om_cli_wants_help(argc, argv, init_usage))
		return OM_EXIT_OK;
	if (argc > 1) {
		om_cli_error("unexpected argument '%s'\n%s", argv[1], init_usage);
		return OM_EXIT_USAGE;
	}
	return om_cli_init_store(cli, false);
}
