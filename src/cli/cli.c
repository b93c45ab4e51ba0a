/* cli.c — shared helpers of the `openum` sub-commands (see cli.h). */
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/ctl.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

void om_cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("openum: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void om_cli_note(const char *fmt, ...)
{
	va_list ap;
	fputs("openum: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *om_cli_path(const struct om_cli *cli, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", cli->data_dir, name);
	return buf;
}

static const char *user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);
	if (pw)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
	return buf;
}

/* Become the owner of the store (uid and gid, supplementary groups
 * dropped) so that nothing written belongs to the caller. */
static int become_owner(const struct om_cli *cli, const struct stat *st)
{
	char who[64];
	if (geteuid() != 0) {
		om_cli_error("--as-owner needs root to act as %s, the owner of %s",
		             user_name(st->st_uid, who, sizeof(who)), cli->data_dir);
		return OM_EXIT_FAIL;
	}
	gid_t gid = st->st_gid;
	if (setgroups(1, &gid) != 0 || setgid(st->st_gid) != 0 || setuid(st->st_uid) != 0 ||
	    geteuid() != st->st_uid || getegid() != st->st_gid) {
		om_cli_error("cannot act as the owner of %s: %s", cli->data_dir, strerror(errno));
		return OM_EXIT_FAIL;
	}
	return OM_EXIT_OK;
}

int om_cli_store_check(struct om_cli *cli, bool write)
{
	struct stat st;
	char db[4096], who[64], me[64];
	if (stat(cli->data_dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    stat(om_cli_path(cli, "openum.db", db, sizeof(db)), &st) != 0) {
		om_cli_error("no openum store at %s; create it with `openum init --data %s` "
		             "(or point --data / OPENUM_DATA at an existing one)",
		             cli->data_dir, cli->data_dir);
		return OM_EXIT_FAIL;
	}
	if (stat(cli->data_dir, &st) != 0)
		return OM_EXIT_FAIL;
	if (st.st_uid != geteuid()) {
		if (!cli->as_owner) {
			om_cli_error(
			    "the store %s belongs to %s, not to %s: run this as that user "
			    "(e.g. `sudo -u %s openum ...`) or add --as-owner so that openum "
			    "acts as %s and leaves no file %s cannot read",
			    cli->data_dir, user_name(st.st_uid, who, sizeof(who)),
			    user_name(geteuid(), me, sizeof(me)), who, who, who);
			return OM_EXIT_FAIL;
		}
		return become_owner(cli, &st);
	}
	(void)write;
	return OM_EXIT_OK;
}

int om_cli_store_open(struct om_cli *cli, bool write, struct om_db **out)
{
	char err[1024];
	int rc = om_cli_store_check(cli, write);
	if (rc)
		return rc;
	umask(077);
	if (om_db_open(cli->data_dir, 0, out, err, sizeof(err)) != 0) {
		om_cli_error("%s", err);
		return OM_EXIT_FAIL;
	}
	return OM_EXIT_OK;
}

int om_cli_reload(struct om_cli *cli)
{
	char path[4096], *reply = NULL;
	om_cli_path(cli, "control.sock", path, sizeof(path));
	int rc = om_ctl_request(path, "reload", 15000, &reply);
	if (rc == ENOENT || rc == ECONNREFUSED) {
		if (!cli->json)
			printf("no server running on %s: the change takes effect when it starts\n",
			       cli->data_dir);
		return 0;
	}
	if (rc) {
		om_cli_error("could not ask the running server to reload: %s; run `openum reload`",
		             strerror(rc));
		return 1;
	}
	int ok = strstr(reply, "\"ok\":true") != NULL;
	if (!cli->json) {
		if (ok)
			printf("running server reloaded: the change is in effect\n");
		else
			printf("running server rejected the reload: %s\n", reply);
	}
	om_free(reply);
	return ok ? 0 : 1;
}

/* A terminal's echo is off while a secret is typed; a signal that ends
 * the command in between restores it first. */
static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;

static void restore_echo(int sig)
{
	if (tio_saved)
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads at most len-1 bytes; *more when the secret goes on beyond them
 * (bytes other than a final line end were left unread). */
static int read_fd(int fd, char *buf, size_t len, bool one_line, bool *more)
{
	size_t n = 0;
	*more = false;
	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, one_line ? 1 : len - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (one_line && buf[n - 1] == '\n')
			break;
	}
	buf[n] = '\0';
	if (n + 1 == len && buf[n - 1] != '\n') {
		/* Full: only a line end may follow (a typed line ends at one). */
		for (int k = 0; k < 2 && !*more;) {
			char c;
			ssize_t r = read(fd, &c, 1);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			k++;
			*more = !(c == '\n' || (c == '\r' && k == 1));
			if (c == '\n')
				break;
		}
	}
	return (int)n;
}

int om_cli_read_secret(const char *file, char *buf, size_t len)
{
	int fd, err;
	struct stat st;
	size_t n = 0;
	bool too_long = false;
	if (!strcmp(file, "-")) {
		if (isatty(STDIN_FILENO)) {
			/* Typed by a person: no echo (the terminal's own setting
			 * comes back afterwards, also on SIGINT/SIGTERM). */
			struct termios t;
			if (tcgetattr(STDIN_FILENO, &saved_tio) != 0) {
				om_cli_error("cannot read the secret from the terminal: %s",
				             strerror(errno));
				return OM_EXIT_FAIL;
			}
			struct sigaction sa, old_int, old_term, old_hup;
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = restore_echo;
			sigaction(SIGINT, &sa, &old_int);
			sigaction(SIGTERM, &sa, &old_term);
			sigaction(SIGHUP, &sa, &old_hup);
			t = saved_tio;
			t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
			t.c_lflag |= ICANON;
			tio_saved = 1;
			if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0) {
				tio_saved = 0;
				om_cli_error("cannot turn the terminal's echo off: %s",
				             strerror(errno));
				return OM_EXIT_FAIL;
			}
			/* The prompt only once the echo is off: what is typed
			 * after it is never shown, nor flushed away. */
			fputs("secret (not echoed): ", stderr);
			fflush(stderr);
			n = (size_t)read_fd(STDIN_FILENO, buf, len, true, &too_long);
			(void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
			tio_saved = 0;
			sigaction(SIGINT, &old_int, NULL);
			sigaction(SIGTERM, &old_term, NULL);
			sigaction(SIGHUP, &old_hup, NULL);
			fputc('\n', stderr);
		} else {
			n = (size_t)read_fd(STDIN_FILENO, buf, len, false, &too_long);
		}
	} else {
		err = om_file_open_input(file, &fd, &st);
		if (err == ESPIPE) {
			om_cli_error("%s %s: give a file only you can read, or '-' to read the "
			             "secret from standard input",
			             file, om_file_strerror(err));
			return OM_EXIT_FAIL;
		}
		if (err) {
			om_cli_error("cannot read %s: %s", file, om_file_strerror(err));
			return OM_EXIT_FAIL;
		}
		if (st.st_mode & 077) {
			om_cli_error("%s is readable by group or others (mode %03o); "
			             "secrets must be private: chmod 600 %s",
			             file, (unsigned)(st.st_mode & 0777), file);
			close(fd);
			return OM_EXIT_FAIL;
		}
		n = (size_t)read_fd(fd, buf, len, false, &too_long);
		close(fd);
	}
	const char *from = strcmp(file, "-") ? file : "standard input";
	/* Never cut a secret silently: a NUL byte would end it there, and
	 * bytes beyond the buffer would be dropped; either way the key would
	 * be protected with, or opened by, something else than what the file
	 * says. */
	if (memchr(buf, '\0', n)) {
		om_cli_error("the secret in %s holds a NUL byte (at byte %zu): it would be cut "
		             "there. Give the secret as text, without NUL bytes",
		             from, (size_t)((const char *)memchr(buf, '\0', n) - buf) + 1);
		explicit_bzero(buf, len);
		return OM_EXIT_FAIL;
	}
	if (too_long) {
		om_cli_error("the secret in %s is longer than %zu bytes: it would be cut", from,
		             len - 1);
		explicit_bzero(buf, len);
		return OM_EXIT_FAIL;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (n == 0) {
		om_cli_error("the secret in %s is empty",
		             strcmp(file, "-") ? file : "standard input");
		return OM_EXIT_FAIL;
	}
	return OM_EXIT_OK;
}
