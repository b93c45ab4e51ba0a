/* tls_int.h — what the files of the tls module share beyond tls.h: the
 * client side (client.c) wraps its own SSL_CTX in a struct om_tls_ctx and
 * reaches a session's SSL handle for SNI. Not for other modules. */
#ifndef OM_TLS_INT_H
#define OM_TLS_INT_H

#include "tls/tls.h"

/* Takes ownership of ssl (freed with the context) and a reference to
 * store. 0 or ENOMEM (ssl is then freed). */
int om_tls_ctx_wrap_i(SSL_CTX *ssl, X509_STORE *store, const struct om_tls_opts *o,
                      struct om_tls_ctx **out);
SSL *om_tls_sess_ssl_i(struct om_tls_sess *t);
SSL_CTX *om_tls_ctx_ssl_i(const struct om_tls_ctx *c);

#endif
