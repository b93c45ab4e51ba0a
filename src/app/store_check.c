/* store_check.c — before `openum serve` opens anything: the data directory
 * and what decides trust in it belong to the service user and nobody else.
 *
 * A folder another user can write lets them plant a trusted root in
 * certs/trusted/, a key in certs/personal/ or a message in mail/; a folder
 * others can read exposes recordings (R11: "readable by the service
 * only") and mailbox ids. `openum init` creates everything 0700/0600, so a
 * store that differs was changed by someone: the server refuses to start
 * and says which path and what to run. */
#include "app/server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const folders[] = {
	"", "certs", "certs/personal", "certs/trusted", "certs/crl", "spool", "mail"
};
static const char *const files[] = { "openum.db", "openum.db-wal", "openum.db-shm", "pepper" };

/* 0 when absent or private to the service user; else EPERM/ENOTDIR with err. */
static int check_path(const char *path, bool folder, mode_t forbidden, char *err, size_t errlen)
{
	struct stat st;
	uid_t me = geteuid();
	if (stat(path, &st) != 0)
		return errno == ENOENT ? 0 : errno;
	if (folder != !!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a %s", path, folder ? "folder" : "file");
		return ENOTDIR;
	}
	if (st.st_uid != me) {
		snprintf(err, errlen,
		         "%s belongs to uid %u, not to uid %u that runs the server: run openum as "
		         "the store's owner, or chown -R the store to the service user",
		         path, (unsigned)st.st_uid, (unsigned)me);
		return EPERM;
	}
	if (st.st_mode & forbidden) {
		mode_t bad = (st.st_mode & 022) ? (st.st_mode & 022) : (st.st_mode & forbidden);
		snprintf(err, errlen,
		         "%s is %s by %s (mode %04o): the store must be private to the service "
		         "user; run `chmod %s %s`",
		         path, (st.st_mode & 022) ? "writable" : "readable",
		         (bad & 070) ? "its group" : "others", (unsigned)(st.st_mode & 07777),
		         folder ? "700" : "600", path);
		return EPERM;
	}
	return 0;
}

int om_server_check_store(const char *data_dir, const char *config_path, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	int rc;
	if (stat(data_dir, &st) != 0) {
		snprintf(err, errlen, "%s: %s", data_dir, strerror(errno));
		return errno;
	}
	for (size_t i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
		snprintf(path, sizeof(path), "%s%s%s", data_dir, folders[i][0] ? "/" : "",
		         folders[i]);
		if ((rc = check_path(path, true, 077, err, errlen)) != 0)
			return rc;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", data_dir, files[i]);
		if ((rc = check_path(path, false, 077, err, errlen)) != 0)
			return rc;
	}
	/* openum.conf decides what the server trusts: nobody else may change
	 * it (a packaged /etc/openum/openum.conf owned by root is fine). */
	if (config_path && stat(config_path, &st) == 0) {
		if (st.st_uid != geteuid() && st.st_uid != 0) {
			snprintf(
			    err, errlen,
			    "%s belongs to uid %u: the configuration must belong to the service "
			    "user or root",
			    config_path, (unsigned)st.st_uid);
			return EPERM;
		}
		if (st.st_mode & 022) {
			snprintf(err, errlen,
			         "%s is writable by %s (mode %04o): run `chmod go-w %s`",
			         config_path, (st.st_mode & 020) ? "its group" : "others",
			         (unsigned)(st.st_mode & 07777), config_path);
			return EPERM;
		}
	}
	return 0;
}
