/* file.h — file-system helpers. Every write of a file openum keeps goes
 * through om_file_write_atomic: temporary file in the same folder, fsync,
 * rename over the target, fsync the folder. A crash leaves either the old
 * file or the new one, never half of one. */
#ifndef OM_CORE_FILE_H
#define OM_CORE_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* 0 or errno. mode is applied to the new file (e.g. 0600). */
int om_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* As om_file_write_atomic, but never replaces anything: EEXIST when
 * `path` exists (a dangling symbolic link included), also when it appears
 * while the file is written (link(2) is the last step, atomic). 0 or errno. */
int om_file_write_new(const char *path, const void *data, size_t len, mode_t mode);
/* Reads at most max bytes (EFBIG if the file is larger). *out is
 * NUL-terminated and owned by the caller (om_free). 0 or errno. */
int om_file_read(const char *path, size_t max, char **out, size_t *outlen);
/* mkdir -p with `mode` for every folder it creates. 0 or errno. */
int om_mkdir_p(const char *path, mode_t mode);
/* fsync a directory. 0 or errno. */
int om_fsync_dir(const char *dir);

#endif
