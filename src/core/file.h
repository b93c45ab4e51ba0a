/* file.h — file-system helpers. Every write of a file openum keeps goes
 * through om_file_write_atomic: temporary file in the same folder, fsync,
 * rename over the target, fsync the folder. A crash leaves either the old
 * file or the new one, never half of one.
 *
 * Files given on the command line follow one rule everywhere: an input is
 * read only when it is a regular file (a directory, FIFO, socket or device
 * is refused at once and never blocks: om_file_open_input); an output
 * (om_file_write_new) never replaces an existing file without `force` and
 * never replaces or writes through a device, FIFO, socket or symbolic
 * link, even with it. */
#ifndef OM_CORE_FILE_H
#define OM_CORE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* 0 or errno. mode is applied to the new file (e.g. 0600). */
int om_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* A file written for a person (`cert export --out`, `cert request --out`):
 * tmp + fsync + link/rename + fsync of the folder, mode applied. An
 * existing regular file is replaced only when force (else EEXIST); a
 * symbolic link (ELOOP), directory (EISDIR), FIFO or socket (ESPIPE) or
 * device (ENODEV) in its place is refused even with force. 0 or errno. */
int om_file_write_new(const char *path, const void *data, size_t len, mode_t mode, bool force);
/* Opens an input file read-only without blocking on what is not a regular
 * file: EISDIR, ESPIPE (FIFO or socket), ENODEV (device), or the open
 * error. On 0, *fd is a blocking descriptor of a regular file (caller
 * closes) and *st (when not NULL) its fstat. */
int om_file_open_input(const char *path, int *fd, struct stat *st);
/* Reads at most max bytes of a regular file (om_file_open_input; EFBIG if
 * the file is larger). *out is NUL-terminated and owned by the caller
 * (om_free). 0 or errno. */
int om_file_read(const char *path, size_t max, char **out, size_t *outlen);
/* Text for the errors above ("is a directory, not a file", "is a FIFO,
 * pipe or socket, not a regular file", "exists already: give --force ...");
 * strerror for the rest. */
const char *om_file_strerror(int err);
/* mkdir -p with `mode` for every folder it creates. 0 or errno. */
int om_mkdir_p(const char *path, mode_t mode);
/* fsync a directory. 0 or errno. */
int om_fsync_dir(const char *dir);

#endif
