/* file.c — atomic writes and bounded reads. */
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

int om_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int err = 0, fd;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
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
	fd = -1;
	if (rename(tmp, path) != 0) {
		err = errno;
		goto fail;
	}
	dir_of(path, dir, sizeof(dir));
	return om_fsync_dir(dir);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return err;
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
