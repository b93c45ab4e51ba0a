/* file.c — atomic writes (replacing, or only new files) and bounded reads. */
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

/* Writes a new temporary file next to `path` (name in tmp), fsynced. */
static int write_tmp(const char *path, const void *data, size_t len, mode_t mode, char *tmp,
                     size_t tmplen)
{
	int err = 0, fd;
	if (snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path) >= (int)tmplen)
		return ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fchmod(fd, mode) != 0)
		err = errno;
	for (size_t off = 0; !err && off < len;) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = errno;
		else
			off += (size_t)n;
	}
	if (!err && fsync(fd) != 0)
		err = errno;
	if (close(fd) != 0 && !err)
		err = errno;
	if (err)
		unlink(tmp);
	return err;
}

int om_file_write_new(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int err = write_tmp(path, data, len, mode, tmp, sizeof(tmp));
	if (err)
		return err;
	/* link(2) fails with EEXIST on anything at `path`; a file system
	 * without hard links gets rename without replacing (Linux 3.15) */
	if (link(tmp, path) != 0) {
		err = errno;
		if (err != EEXIST &&
		    renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
			err = 0;
		else if (err != EEXIST && errno == EEXIST)
			err = EEXIST;
	}
	unlink(tmp);
	if (err)
		return err;
	dir_of(path, dir, sizeof(dir));
	return om_fsync_dir(dir);
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

int om_file_read(const char *path, size_t max, char **out, size_t *outlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int err = 0;
	char *buf = NULL;
	size_t len = 0;
	if (fd < 0)
		return errno;
	if (fstat(fd, &st) != 0) {
		err = errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = EINVAL;
		goto out;
	}
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
