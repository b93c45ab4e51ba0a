/* file.c — atomic writes, files written for people without clobbering,
 * and bounded reads of regular files only. */
#include "core/file.h"
#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int om_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = fsync(fd) == 0 ? 0 : errno;
	close(fd);
	return err;
}

static void dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(dir, len, ".");
	} else if (slash == path) {
		snprintf(dir, len, "/");
	} else {
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
	}
}

/* What a path that is not a regular file is, as an errno. */
static int kind_err(mode_t m)
{
	if (S_ISDIR(m))
		return EISDIR;
	if (S_ISFIFO(m) || S_ISSOCK(m))
		return ESPIPE;
	if (S_ISCHR(m) || S_ISBLK(m))
		return ENODEV;
	if (S_ISLNK(m))
		return ELOOP;
	return EINVAL;
}

const char *om_file_strerror(int err)
{
	switch (err) {
	case EISDIR:
		return "is a directory, not a file";
	case ESPIPE:
		return "is a FIFO, pipe or socket, not a regular file";
	case ENODEV:
		return "is a device, not a regular file";
	case ELOOP:
		return "is a symbolic link: give the real path";
	case EEXIST:
		return "exists already: give --force to replace it, or another path";
	case EFBIG:
		return "is too large";
	default:
		return strerror(err);
	}
}

int om_file_open_input(const char *path, int *fd_out, struct stat *st_out)
{
	struct stat st;
	/* O_NONBLOCK: opening a FIFO without a writer, or a tape or terminal
	 * device, must not hang; the type is checked before any read. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno;
	if (fstat(fd, &st) != 0) {
		int err = errno;
		close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return kind_err(st.st_mode);
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	*fd_out = fd;
	if (st_out)
		*st_out = st;
	return 0;
}

int om_file_read(const char *path, size_t max, char **out, size_t *outlen)
{
	struct stat st;
	int fd, err = om_file_open_input(path, &fd, &st);
	char *buf = NULL;
	size_t len = 0;
	if (err)
		return err;
	if ((size_t)st.st_size > max) {
		err = EFBIG;
		goto out;
	}
	buf = om_malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	om_free(buf);
	close(fd);
	return err;
}

/* The temporary file of a write: same folder, mode applied, data synced.
 * 0 with tmp filled, or errno (nothing left behind). */
static int write_tmp(const char *path, const void *data, size_t len, mode_t mode, char *tmp,
                     size_t tmplen)
{
	int err = 0, fd;
	if (snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path) >= (int)tmplen)
		return ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fchmod(fd, mode) != 0) {
		err = errno;
		goto fail;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		err = errno;
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		err = errno;
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return err;
}

int om_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int err = write_tmp(path, data, len, mode, tmp, sizeof(tmp));
	if (err)
		return err;
	if (rename(tmp, path) != 0) {
		err = errno;
		unlink(tmp);
		return err;
	}
	dir_of(path, dir, sizeof(dir));
	return om_fsync_dir(dir);
}

int om_file_write_new(const char *path, const void *data, size_t len, mode_t mode, bool force)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	bool exists = lstat(path, &st) == 0;
	if (!exists && errno != ENOENT)
		return errno;
	if (exists && !S_ISREG(st.st_mode))
		return kind_err(st.st_mode); /* even with force */
	if (exists && !force)
		return EEXIST;
	int err = write_tmp(path, data, len, mode, tmp, sizeof(tmp));
	if (err)
		return err;
	if (exists) {
		/* rename replaces the directory entry: never writes through
		 * whatever the name points at. */
		if (rename(tmp, path) != 0)
			err = errno;
	} else {
		/* link fails with EEXIST when something appeared meanwhile:
		 * nothing is replaced by surprise. */
		if (link(tmp, path) != 0) {
			err = errno;
			/* A file system without hard links: the same promise
			 * from renameat2 (Linux 3.15). */
			if (err == EPERM || err == EOPNOTSUPP || err == ENOSYS)
				err = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE)
				          ? errno
				          : 0;
		}
		unlink(tmp);
	}
	if (err) {
		unlink(tmp);
		return err;
	}
	dir_of(path, dir, sizeof(dir));
	return om_fsync_dir(dir);
}

int om_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return errno;
	struct stat st;
	if (stat(tmp, &st) != 0)
		return errno;
	return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}
