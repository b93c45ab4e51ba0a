/* uac_int.h — the test UAC's private structures (uac.c, uac_net.c). */
#ifndef OM_TESTCALL_UAC_INT_H
#define OM_TESTCALL_UAC_INT_H

#include "testcall/uac.h"
#include "tls/tls.h"

#define UAC_MAX_CONNS 8
/* Bytes a connection may hold unsent (the server not reading): past it a
 * send fails with ENOBUFS instead of waiting. */
#define UAC_WQ_MAX    (4u << 20)

struct uac_conn {
	int fd;
	uint64_t id;
	struct om_tls_sess *tls;
	char *rbuf;
	size_t rlen, rcap;
	char *wq; /* bytes the socket did not take yet: [woff, wlen) */
	size_t woff, wlen, wcap;
	bool closed;
	bool accepted; /* the server connected to our listener */
};

struct om_uac {
	struct om_uac_cfg cfg;
	char domain[128];
	char sent_by[160];
	struct om_sip_stack *stack;
	struct om_sip_dialog_table *dialogs;
	struct om_tls_ctx *cli_ctx, *srv_ctx;
	struct uac_conn conns[UAC_MAX_CONNS]; /* [0]: ours to the server */
	size_t nconns;
	uint64_t next_conn_id;
	int lfd;
	unsigned accepted;
	struct om_uac_call *calls;
	int options_status; /* the final answer to om_uac_options, 0 until then */
	char options_reason[64];
};

int uac_tls_ctx(const struct om_uac_cfg *cfg, bool server, struct om_tls_ctx **out, char *err,
                size_t errlen);
int uac_conn_open(struct om_uac *u, struct uac_conn *c, int timeout_ms, char *err, size_t errlen);
int uac_conn_send(struct uac_conn *c, const char *buf, size_t len);
/* Sends what the connection holds unsent, without waiting. 0, or the
 * socket's errno (the connection is then closed). */
int uac_conn_flush(struct uac_conn *c);
void uac_conn_close(struct uac_conn *c);
int uac_listen(struct om_uac *u, char *err, size_t errlen);
/* One framed message from connection c. */
void uac_recv(struct om_uac *u, struct uac_conn *c, const char *buf, size_t len);

#endif
