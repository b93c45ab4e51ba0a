/* fqdn.h — the one set of rules for DNS host names that openum takes from
 * people (RFC 1035 §2.3.4, RFC 1123 §2.1): this server's FQDN (openum.conf,
 * `server set --fqdn`), names put in certificates (`cert new-selfsigned`,
 * `cert request`), gateway TLS names and addresses. Also the canonical form
 * names are compared in (RFC 4343: case-insensitive; RFC 1034 §3.1: the
 * trailing dot names the root and changes nothing). */
#ifndef OM_CORE_FQDN_H
#define OM_CORE_FQDN_H

#include <stdbool.h>
#include <stddef.h>

/* Longest name in characters, without the root dot (RFC 1035 §2.3.4). */
#define OM_FQDN_MAX  253
#define OM_LABEL_MAX 63

/* At least two labels ("um1.example.com", not "um1"). */
#define OM_FQDN_MULTI_LABEL 1u

/* 0 when s is a host name: labels of letters, digits and '-' (not at
 * either end of a label), 1 to 63 characters each, separated by single
 * dots, at most 253 characters, optionally one final dot (the root); the
 * last label not all digits (an IPv4 address is no name). flags: see
 * above. Otherwise EINVAL and, when why is not NULL, the reason as a short
 * phrase for an error message ("label 'x…' is longer than 63 characters",
 * "an IP address is not a DNS name", "empty label: two dots in a row",
 * "wildcards are not allowed", ...). Pure; never allocates. */
int om_fqdn_check(const char *s, unsigned flags, char *why, size_t whylen);

/* The canonical form of a name for comparisons and indexes: lower case
 * (ASCII), one trailing root dot removed. Works on any text (the caller
 * checks validity); out receives at most outlen-1 bytes. 0, or
 * ENAMETOOLONG when it does not fit (out is then ""). */
int om_fqdn_norm(const char *s, size_t len, char *out, size_t outlen);

#endif
