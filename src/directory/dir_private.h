/* dir_private.h — shared inside the directory module only. */
#ifndef OM_DIRECTORY_DIR_PRIVATE_H
#define OM_DIRECTORY_DIR_PRIVATE_H

#include <sqlite3.h>

#include "directory/directory.h"

void om_dir_seterr(struct om_dir_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Row loaders used by the store and the snapshot (inside the caller's
 * transaction). Arrays are om_free'd by the caller. 0, ENOMEM or EIO. */
int om_dir_load_dialplans(sqlite3 *h, struct om_dir_dialplan **out, size_t *n);
int om_dir_load_gateways(sqlite3 *h, struct om_dir_gateway **out, size_t *n);
int om_dir_load_mailboxes(sqlite3 *h, const char *dialplan, struct om_dir_mailbox **out, size_t *n);
int om_dir_load_server(sqlite3 *h, struct om_dir_server *out);

/* PIN hashing (dir_pin.c): "scrypt$N$r$p$salt$hash". 0, EINVAL, ENOMEM, EIO. */
#define OM_DIR_PIN_HASH_MAX 200
int om_dir_pin_hash(const char *data_dir, const char *pin, char *out, size_t outlen);
/* 0 match, EACCES mismatch, EINVAL malformed hash, EIO. */
int om_dir_pin_verify(const char *data_dir, const char *pin, const char *stored);

#endif
