/* directory.h — the directory: dial plans (R3), IP gateways (R4), this
 * server's settings (R7 pinning, R9 associations) and mailboxes, kept in
 * openum.db, plus the immutable snapshot the server reads (trust, routing).
 *
 * Changes go through om_dir_<object>_new/set/remove: each runs in one
 * BEGIN IMMEDIATE transaction that reads the current rows, applies the
 * change, checks every rule against the whole store and commits, so two
 * administrators changing the directory at once never lose a change and
 * never leave it in a state the rules forbid. With OM_DIR_DRY_RUN the same
 * work is done and rolled back. On error nothing is changed and err->msg
 * says what was wrong and what to do.
 *
 * Return values: 0; EINVAL a value is malformed (bad usage); EPERM a rule
 * refuses the change given the rest of the directory; EEXIST a duplicate;
 * ENOENT no such object; EBUSY the object is still in use; ENOMEM; EIO the
 * database failed. */
#ifndef OM_DIRECTORY_DIRECTORY_H
#define OM_DIRECTORY_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "directory/db.h"

/* ------------------------------------------------------------------ values */

enum om_dir_security { OM_SEC_UNSECURED, OM_SEC_SIPSECURED, OM_SEC_SECURED };
enum om_dir_gw_status { OM_GW_ENABLED, OM_GW_DISABLED, OM_GW_NONEWCALLS };
enum om_dir_transport { OM_TRANSPORT_TCP, OM_TRANSPORT_TLS };
enum om_dir_srv_status { OM_SRV_ENABLED, OM_SRV_NONEWCALLS };

#define OM_DIR_NAME_MAX    64  /* dial plan and gateway names: [A-Za-z0-9._-] */
#define OM_DIR_HOST_MAX    253 /* an FQDN (RFC 1035 §2.3.4) or an IP literal */
#define OM_DIR_ADDRS_MAX   8   /* addresses per gateway */
#define OM_DIR_EXT_MAX     20  /* extension digits */
#define OM_DIR_PILOT_MAX   32
#define OM_DIR_DISPLAY_MAX 128
#define OM_DIR_EMAIL_MAX   254
#define OM_DIR_THUMB_MAX   64 /* SHA-1 (40) or SHA-256 (64) hex */
#define OM_DIR_PLANS_MAX   64 /* dial plans associated with one server */

/* Text forms used by the CLI, the store and JSON ("unsecured", "sipsecured",
 * "secured"; "enabled", "disabled", "nonewcalls"; "tcp", "tls"). Parsing is
 * case-insensitive; 0 or EINVAL. */
const char *om_dir_security_name(enum om_dir_security s);
int om_dir_security_parse(const char *s, enum om_dir_security *out);
const char *om_dir_gw_status_name(enum om_dir_gw_status s);
int om_dir_gw_status_parse(const char *s, enum om_dir_gw_status *out);
const char *om_dir_transport_name(enum om_dir_transport t);
int om_dir_transport_parse(const char *s, enum om_dir_transport *out);
const char *om_dir_srv_status_name(enum om_dir_srv_status s);
int om_dir_srv_status_parse(const char *s, enum om_dir_srv_status *out);
/* "yes"/"no" (also true/false, 1/0, on/off). */
int om_dir_bool_parse(const char *s, bool *out);

/* Syntax checks (no store needed). true when valid. */
bool om_dir_name_valid(const char *s);
bool om_dir_fqdn_valid(const char *s);      /* 2+ labels, LDH, no wildcard, TLD not numeric */
bool om_dir_extension_valid(const char *s); /* 1..20 digits */
bool om_dir_pilot_valid(const char *s);     /* optional '+', 1..32 digits */
bool om_dir_email_valid(const char *s);
bool om_dir_display_valid(const char *s); /* printable UTF-8, no control characters */
bool om_dir_thumbprint_valid(const char *s);

/* A gateway address: an IP literal (v4, v6, "[v6]") or an FQDN. IPs are kept
 * as 16 bytes, IPv4 as IPv4-mapped IPv6, so every comparison is binary. */
struct om_dir_host {
	char name[OM_DIR_HOST_MAX + 1]; /* canonical text: inet_ntop form, or lower-case FQDN */
	bool is_ip;
	uint8_t ip[16];
};
/* 0 or EINVAL (neither an IP nor a valid FQDN). */
int om_dir_host_parse(const char *s, struct om_dir_host *out);
/* The 16-byte form of a socket address (IPv4 → IPv4-mapped). 0 or EAFNOSUPPORT. */
int om_dir_sockaddr_ip(const struct sockaddr *sa, uint8_t ip[16]);

struct om_dir_err {
	char msg[1024];
};

/* Flags for changes. */
enum { OM_DIR_DRY_RUN = 1 << 0 };

/* ------------------------------------------------------------- dial plans */

struct om_dir_dialplan {
	int64_t id;
	char name[OM_DIR_NAME_MAX + 1];
	int digits; /* extension length, 1..20 */
	enum om_dir_security security;
	char pilot[OM_DIR_PILOT_MAX + 1]; /* "" = none */
	int max_message_s;                /* recording limits */
	int max_greeting_s;
	/* Plain RTP from this plan's gateways may come from another port than
	 * the SDP names (NAT): the media engine then follows the port once
	 * (never the IP). Off by default (R10: no latching onto strangers). */
	bool rtp_symmetric;
};

/* Fields a new/set takes from `in` (the others keep their value/default). */
enum {
	OM_DP_DIGITS = 1 << 0,
	OM_DP_SECURITY = 1 << 1,
	OM_DP_PILOT = 1 << 2,
	OM_DP_MAX_MESSAGE = 1 << 3,
	OM_DP_MAX_GREETING = 1 << 4,
	OM_DP_RTP_SYMMETRIC = 1 << 5,
};

/* new: name from in->name, digits required. out (may be NULL) receives the
 * stored row. */
int om_dir_dialplan_new(struct om_db *db, const struct om_dir_dialplan *in, unsigned fields,
                        int flags, struct om_dir_dialplan *out, struct om_dir_err *err);
int om_dir_dialplan_set(struct om_db *db, const char *name, const struct om_dir_dialplan *in,
                        unsigned fields, int flags, struct om_dir_dialplan *out,
                        struct om_dir_err *err);
int om_dir_dialplan_remove(struct om_db *db, const char *name, int flags, struct om_dir_err *err);
int om_dir_dialplan_get(struct om_db *db, const char *name, struct om_dir_dialplan *out,
                        struct om_dir_err *err);
/* All, by name. *out is om_free'd by the caller. */
int om_dir_dialplan_list(struct om_db *db, struct om_dir_dialplan **out, size_t *n);

/* --------------------------------------------------------------- gateways */

struct om_dir_gateway {
	int64_t id;
	char name[OM_DIR_NAME_MAX + 1];
	struct om_dir_host hosts[OM_DIR_ADDRS_MAX];
	size_t nhosts;
	char tls_name[OM_DIR_HOST_MAX + 1]; /* "" = none */
	int port;
	enum om_dir_transport transport;
	int64_t dialplan_id;
	char dialplan[OM_DIR_NAME_MAX + 1];
	enum om_dir_gw_status status;
	int max_calls; /* 0 = no limit */
	bool outcalls;
	bool mwi;
	bool diversion_bottom; /* R11: the bottom-most Diversion names the mailbox */
};

enum {
	OM_GW_F_HOSTS = 1 << 0,
	OM_GW_F_TLS_NAME = 1 << 1,
	OM_GW_F_PORT = 1 << 2,
	OM_GW_F_TRANSPORT = 1 << 3,
	OM_GW_F_DIALPLAN = 1 << 4, /* by in->dialplan (name) */
	OM_GW_F_STATUS = 1 << 5,
	OM_GW_F_MAX_CALLS = 1 << 6,
	OM_GW_F_OUTCALLS = 1 << 7,
	OM_GW_F_MWI = 1 << 8,
	OM_GW_F_DIVERSION = 1 << 9,
};

/* new: hosts and dialplan required. Defaults: transport tls when the plan
 * is SIPSecured/Secured or the port is 5061, else tcp; port 5061 for tls,
 * 5060 for tcp; TLS name = the first address when it is an FQDN. */
int om_dir_gateway_new(struct om_db *db, const struct om_dir_gateway *in, unsigned fields,
                       int flags, struct om_dir_gateway *out, struct om_dir_err *err);
int om_dir_gateway_set(struct om_db *db, const char *name, const struct om_dir_gateway *in,
                       unsigned fields, int flags, struct om_dir_gateway *out,
                       struct om_dir_err *err);
int om_dir_gateway_remove(struct om_db *db, const char *name, int flags, struct om_dir_err *err);
int om_dir_gateway_get(struct om_db *db, const char *name, struct om_dir_gateway *out,
                       struct om_dir_err *err);
int om_dir_gateway_list(struct om_db *db, struct om_dir_gateway **out, size_t *n);

/* ----------------------------------------------------------- this server */

/* One row (id 1) until several servers share a directory (R20). */
struct om_dir_server {
	char fqdn[OM_DIR_HOST_MAX + 1];                /* "" = from openum.conf */
	char pinned_certificate[OM_DIR_THUMB_MAX + 1]; /* "" = auto (R7 order) */
	enum om_dir_srv_status status;
	char dialplans[OM_DIR_PLANS_MAX][OM_DIR_NAME_MAX + 1]; /* associated plans (R9) */
	size_t ndialplans;
};

enum {
	OM_SRV_F_FQDN = 1 << 0,
	OM_SRV_F_CERT = 1 << 1,
	OM_SRV_F_STATUS = 1 << 2,
	OM_SRV_F_DIALPLANS = 1 << 3,
};

/* get: the defaults when never set. */
int om_dir_server_get(struct om_db *db, struct om_dir_server *out, struct om_dir_err *err);
int om_dir_server_set(struct om_db *db, const struct om_dir_server *in, unsigned fields, int flags,
                      struct om_dir_server *out, struct om_dir_err *err);
/* R9: how many plans this server serves and whether any is SIPSecured or
 * Secured (a secured start). */
int om_dir_server_plan_modes(struct om_db *db, size_t *nplans, bool *any_secured);

/* -------------------------------------------------------------- mailboxes */

/* Greetings a mailbox may have: files in the store (8 kHz mono PCM16 WAV,
 * "greetings/<file>", converted by `openum mailbox set --greeting`). NAME
 * is the owner's recorded name. */
enum {
	OM_GREETING_DEFAULT,
	OM_GREETING_BUSY,
	OM_GREETING_UNAVAILABLE,
	OM_GREETING_NAME,
	OM_GREETING_SLOTS
};

struct om_dir_mailbox {
	int64_t id;
	char uid[33]; /* stable id (random, hex): names mail/<uid>/ and survives renumbering */
	int64_t dialplan_id;
	char dialplan[OM_DIR_NAME_MAX + 1];
	char extension[OM_DIR_EXT_MAX + 1];
	char display_name[OM_DIR_DISPLAY_MAX + 1];
	char email[OM_DIR_EMAIL_MAX + 1];
	char greetings[OM_GREETING_SLOTS]
	              [OM_DIR_NAME_MAX + 1]; /* file in the store; "" = default */
	bool has_pin;
	bool pin_must_change;
	int64_t pin_set_ms; /* when the PIN was last set (Unix ms); 0 = never */
};

enum {
	OM_MB_F_DISPLAY = 1 << 0,
	OM_MB_F_EMAIL = 1 << 1,
	OM_MB_F_PIN = 1 << 2,
	/* greetings[slot] taken from `in`: OM_MB_F_GREETING << slot ("" clears) */
	OM_MB_F_GREETING = 1 << 4,
};

/* A greeting file name as the directory keeps it: "greetings/" and up to
 * 54 characters of [A-Za-z0-9._-] not starting with '.'. */
bool om_dir_greeting_valid(const char *s);

/* PIN: om_dir_pin_rules_check's rules. Stored as
 * "scrypt$N$r$p$<salt hex>$<hash hex>" of HMAC-SHA256(pepper, PIN); the
 * pepper is DATA/pepper (0600), outside the database (R14). */
struct om_dir_pin {
	const char *pin;      /* NULL = unchanged */
	const char *data_dir; /* where the pepper lives */
};

/* new: in->dialplan and in->extension name it. */
int om_dir_mailbox_new(struct om_db *db, const struct om_dir_mailbox *in, unsigned fields,
                       const struct om_dir_pin *pin, int flags, struct om_dir_mailbox *out,
                       struct om_dir_err *err);
/* dialplan NULL: the only mailbox with this extension (EEXIST if several). */
int om_dir_mailbox_set(struct om_db *db, const char *dialplan, const char *ext,
                       const struct om_dir_mailbox *in, unsigned fields,
                       const struct om_dir_pin *pin, int flags, struct om_dir_mailbox *out,
                       struct om_dir_err *err);
int om_dir_mailbox_remove(struct om_db *db, const char *dialplan, const char *ext, int flags,
                          struct om_dir_err *err);
int om_dir_mailbox_get(struct om_db *db, const char *dialplan, const char *ext,
                       struct om_dir_mailbox *out, struct om_dir_err *err);
/* dialplan NULL: every plan. */
int om_dir_mailbox_list(struct om_db *db, const char *dialplan, struct om_dir_mailbox **out,
                        size_t *n);
/* R14's PIN rules (dir_pin_rules.c): 4..24 digits and none of the common
 * patterns — the extension (whole, reversed, a part, or contained), the
 * pilot number likewise, one digit or a group repeated, a sequence (steps
 * of +-1 with 0 after 9, or +-2), straight lines on the telephone keypad.
 * extension and pilot may be NULL. 0, or EINVAL with err naming the rule
 * (the PIN itself is never put into the message). */
int om_dir_pin_rules_check(const char *pin, const char *extension, const char *pilot,
                           struct om_dir_err *err);
/* Checks a PIN against the stored hash: 0 match, EACCES mismatch, ENOENT no PIN. */
int om_dir_mailbox_pin_check(struct om_db *db, const char *data_dir, int64_t mailbox_id,
                             const char *pin);

/* --------------------------------------------------------------- snapshot */

/* An immutable view of the directory built in one read transaction. The
 * server builds a new one aside at start and on reload, checks it, and
 * swaps its pointer; readers that need it beyond one loop turn take a
 * reference. Lookups never return disabled gateways: the enabled and
 * nonewcalls ones are the trusted devices (R4). */
struct om_dir_snapshot;

int om_dir_snapshot_build(struct om_db *db, struct om_dir_snapshot **out, struct om_dir_err *err);
struct om_dir_snapshot *om_dir_snapshot_ref(struct om_dir_snapshot *s);
/* Drops a reference; the last one frees. NULL is fine. */
void om_dir_snapshot_free(struct om_dir_snapshot *s);

/* Increases with every snapshot built by this process (1, 2, ...). */
uint64_t om_dir_snapshot_generation(const struct om_dir_snapshot *s);

const struct om_dir_server *om_dir_snapshot_server(const struct om_dir_snapshot *s);
/* R9: the associated plans' modes. */
size_t om_dir_snapshot_server_plan_count(const struct om_dir_snapshot *s);
bool om_dir_snapshot_server_secured(const struct om_dir_snapshot *s);

size_t om_dir_snapshot_dialplan_count(const struct om_dir_snapshot *s);
const struct om_dir_dialplan *om_dir_snapshot_dialplan_at(const struct om_dir_snapshot *s,
                                                          size_t i);
const struct om_dir_dialplan *om_dir_snapshot_dialplan_by_name(const struct om_dir_snapshot *s,
                                                               const char *name);
const struct om_dir_dialplan *om_dir_snapshot_dialplan_by_id(const struct om_dir_snapshot *s,
                                                             int64_t id);

/* Every gateway (disabled too), by name. */
size_t om_dir_snapshot_gateway_count(const struct om_dir_snapshot *s);
const struct om_dir_gateway *om_dir_snapshot_gateway_at(const struct om_dir_snapshot *s, size_t i);
/* The plan of a gateway of this snapshot. */
const struct om_dir_dialplan *om_dir_snapshot_gateway_plan(const struct om_dir_snapshot *s,
                                                           const struct om_dir_gateway *gw);
/* Trusted gateway owning this peer address (port ignored): IP addresses
 * configured, plus resolved FQDN addresses added before publishing. */
const struct om_dir_gateway *om_dir_snapshot_gateway_by_addr(const struct om_dir_snapshot *s,
                                                             const struct sockaddr *sa);
/* Trusted gateway whose TLS name is `name` (case-insensitive, a root dot
 * ignored, exact: no wildcards). A binary search: O(log gateways). */
const struct om_dir_gateway *om_dir_snapshot_gateway_by_tls_name(const struct om_dir_snapshot *s,
                                                                 const char *name);
/* The identity rule of mutual TLS (R4, RFC 5922 §7.1) over the names a
 * peer certificate carries (tls/ extracts them once: om_tls_cert_names):
 * each is looked up in the index of TLS names, so the cost does not grow
 * with the number of gateways. Returns 0 (no trusted gateway named), 1
 * (exactly one: *gw) or 2 (more than one: refuse). *disabled: one of the
 * names is a disabled gateway's. */
size_t om_dir_snapshot_match_tls_names(const struct om_dir_snapshot *s, const char *const *names,
                                       size_t n, const struct om_dir_gateway **gw, bool *disabled);

/* FQDN addresses, for the resolver (c-ares, transport): each (gateway,
 * host) pair whose host is an FQDN. */
size_t om_dir_snapshot_fqdn_count(const struct om_dir_snapshot *s);
const char *om_dir_snapshot_fqdn_at(const struct om_dir_snapshot *s, size_t i,
                                    const struct om_dir_gateway **gw);
/* A new, unpublished snapshot with exactly src's directory content (same
 * dial plans, gateways, mailboxes, server) and none of its resolved
 * addresses, for a DNS refresh: the addresses are added again with
 * om_dir_snapshot_add_resolved, nothing is read from the store (a change
 * made with --no-reload stays unapplied). 0 or ENOMEM. */
int om_dir_snapshot_copy(const struct om_dir_snapshot *src, struct om_dir_snapshot **out);
/* Adds resolved addresses of FQDN i. Only while the snapshot is still being
 * prepared aside (not yet shared): it is immutable once published. An
 * address that already belongs to another gateway is left to that gateway
 * (EEXIST once the others are added): DNS cannot take a trusted address
 * away from its configured owner. */
int om_dir_snapshot_add_resolved(struct om_dir_snapshot *s, size_t i, const uint8_t (*ips)[16],
                                 size_t n);

/* Mailbox by extension in a plan; NULL when none. */
const struct om_dir_mailbox *om_dir_snapshot_mailbox(const struct om_dir_snapshot *s,
                                                     const struct om_dir_dialplan *plan,
                                                     const char *ext);
size_t om_dir_snapshot_mailbox_count(const struct om_dir_snapshot *s);
/* Mailbox i, in (dial plan id, extension) order; NULL past the end. */
const struct om_dir_mailbox *om_dir_snapshot_mailbox_at(const struct om_dir_snapshot *s, size_t i);

/* What an administrator changed between two snapshots, for `openum
 * reload` and event 1180 (dir_diff.c): dial plans added, removed or
 * changed (each field), gateways likewise (addresses, TLS name, port,
 * transport, plan, status, call limit, outcalls, MWI), this server's
 * settings (FQDN, pinned certificate, status, associated plans) and
 * mailboxes (extension, plan, name, e-mail, greetings, PIN set or
 * cleared). Items are appended to out separated by "; " (none before the
 * first when out is empty, none after the last); after about 4 KiB the
 * rest is summed up as "and N more changes". Addresses resolved from
 * gateway FQDNs are not compared (DNS is nobody's change). Returns the
 * number of changes; ENOMEM in out (om_buf_err) is the only failure. */
struct om_buf;
size_t om_dir_snapshot_diff(const struct om_dir_snapshot *old, const struct om_dir_snapshot *now,
                            struct om_buf *out);

#endif
