/* spool.c — the metadata of a recorded call, as the call wrote it
 * (spool/<id>.json, version 1) and its end marker (spool/<id>.end).
 * Parsed with jansson, whose allocations go through om_alloc. Every text
 * field is bounded; a structural field (id, mailbox uid) that breaks its
 * rules makes the spool unusable (EINVAL), never a path outside spool/
 * or mail/. */
#include "delivery/delivery.h"

#include "core/alloc.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t jansson_once = PTHREAD_ONCE_INIT;

/* jansson reports a failed allocation as a syntax error (or not at all):
 * the allocator notes it, per thread, so a parse that ran out of memory
 * says ENOMEM and never "malformed". */
static _Thread_local bool json_oom;

static void *json_alloc(size_t n)
{
	void *p = om_malloc(n);
	if (!p)
		json_oom = true;
	return p;
}

static void jansson_init(void)
{
	json_set_alloc_funcs(json_alloc, om_free);
}

bool om_spool_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > OM_SPOOL_ID_MAX || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool hex_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Copies at most size-1 bytes of src[0..n), NUL characters left out; when
 * the text is cut, it is cut back to a UTF-8 character boundary. */
static void copy_cut(char *dst, size_t size, const char *src, size_t n)
{
	size_t o = 0, i = 0;
	for (; i < n && o + 1 < size; i++)
		if (src[i])
			dst[o++] = src[i];
	while (i < n && !src[i]) /* NULs left at the end are no cut */
		i++;
	/* cut inside a character: back to its first byte */
	unsigned char next = i < n ? (unsigned char)src[i] : 0;
	while (o > 0 && (next & 0xc0) == 0x80)
		next = (unsigned char)dst[--o];
	dst[o] = '\0';
}

static int get_str(json_t *o, const char *key, char *dst, size_t size, bool required, char *err,
                   size_t errlen)
{
	json_t *v = json_object_get(o, key);
	dst[0] = '\0';
	if (!v || json_is_null(v)) {
		if (required) {
			snprintf(err, errlen, "field \"%s\" is missing", key);
			return EINVAL;
		}
		return 0;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "field \"%s\" is not a string", key);
		return EINVAL;
	}
	copy_cut(dst, size, json_string_value(v), json_string_length(v));
	return 0;
}

/* A structural field (a file name) with a NUL inside is refused, not
 * shortened into another name. */
static bool has_nul(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v);
}

static int get_int(json_t *o, const char *key, int64_t *dst, bool required, char *err,
                   size_t errlen)
{
	json_t *v = json_object_get(o, key);
	*dst = 0;
	if (!v) {
		if (required) {
			snprintf(err, errlen, "field \"%s\" is missing", key);
			return EINVAL;
		}
		return 0;
	}
	if (json_is_integer(v)) {
		*dst = (int64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		/* never converted outside int64_t's range (undefined in C) */
		if (!(d > -9.2e18 && d < 9.2e18)) {
			snprintf(err, errlen, "field \"%s\" is out of range", key);
			return EINVAL;
		}
		*dst = (int64_t)d;
		return 0;
	}
	snprintf(err, errlen, "field \"%s\" is not a number", key);
	return EINVAL;
}

static int get_bool(json_t *o, const char *key, bool *dst, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	*dst = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "field \"%s\" is not true or false", key);
		return EINVAL;
	}
	*dst = json_is_true(v);
	return 0;
}

static json_t *load(const char *text, size_t len, const char *what, int *rc, char *err,
                    size_t errlen)
{
	json_error_t je;
	json_oom = false;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	*rc = 0;
	if (json_oom) {
		json_decref(o);
		*rc = ENOMEM;
		snprintf(err, errlen, "%s: out of memory", what);
		return NULL;
	}
	if (!o) {
		*rc = json_error_code(&je) == json_error_out_of_memory ? ENOMEM : EINVAL;
		snprintf(err, errlen, "%s: %s (line %d)", what, je.text, je.line);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		*rc = EINVAL;
		snprintf(err, errlen, "%s is not a JSON object", what);
		return NULL;
	}
	return o;
}

int om_spool_meta_parse(const char *json, size_t len, const char *end_text, size_t end_len,
                        struct om_spool_meta *m, char *err, size_t errlen)
{
	int64_t n;
	int rc;
	json_t *o;
	pthread_once(&jansson_once, jansson_init);
	memset(m, 0, sizeof(*m));
	if (!(o = load(json, len, "metadata", &rc, err, errlen)))
		return rc;
	if ((rc = get_int(o, "version", &n, true, err, errlen)))
		goto out;
	if (n != 1) {
		snprintf(err, errlen, "metadata version %lld is not one this openum reads (1)",
		         (long long)n);
		rc = EINVAL;
		goto out;
	}
	m->version = 1;
	if ((rc = get_str(o, "id", m->id, sizeof(m->id), true, err, errlen)) ||
	    (rc = get_str(o, "call_id", m->call_id, sizeof(m->call_id), false, err, errlen)) ||
	    (rc = get_str(o, "from_tag", m->from_tag, sizeof(m->from_tag), false, err, errlen)) ||
	    (rc = get_str(o, "to_tag", m->to_tag, sizeof(m->to_tag), false, err, errlen)) ||
	    (rc = get_str(o, "mailbox_uid", m->mailbox_uid, sizeof(m->mailbox_uid), false, err,
	                  errlen)) ||
	    (rc =
	         get_str(o, "extension", m->extension, sizeof(m->extension), false, err, errlen)) ||
	    (rc = get_str(o, "dialplan", m->dialplan, sizeof(m->dialplan), false, err, errlen)) ||
	    (rc = get_str(o, "mailbox_name", m->mailbox_name, sizeof(m->mailbox_name), false, err,
	                  errlen)) ||
	    (rc = get_str(o, "mailbox_email", m->mailbox_email, sizeof(m->mailbox_email), false,
	                  err, errlen)) ||
	    (rc = get_str(o, "caller", m->caller, sizeof(m->caller), false, err, errlen)) ||
	    (rc = get_str(o, "caller_name", m->caller_name, sizeof(m->caller_name), false, err,
	                  errlen)) ||
	    (rc = get_str(o, "reason", m->reason, sizeof(m->reason), false, err, errlen)) ||
	    (rc = get_str(o, "security_mode", m->security_mode, sizeof(m->security_mode), false,
	                  err, errlen)) ||
	    (rc =
	         get_str(o, "transport", m->transport, sizeof(m->transport), false, err, errlen)) ||
	    (rc = get_str(o, "srtp_suite", m->srtp_suite, sizeof(m->srtp_suite), false, err,
	                  errlen)) ||
	    (rc = get_str(o, "gateway", m->gateway, sizeof(m->gateway), false, err, errlen)) ||
	    (rc = get_int(o, "start_ms", &m->start_ms, true, err, errlen)) ||
	    (rc = get_bool(o, "anonymous", &m->anonymous, err, errlen)) ||
	    (rc = get_bool(o, "test", &m->test, err, errlen)))
		goto out;
	if (has_nul(o, "id") || has_nul(o, "mailbox_uid")) {
		snprintf(err, errlen, "field \"%s\" holds a NUL character",
		         has_nul(o, "id") ? "id" : "mailbox_uid");
		rc = EINVAL;
		goto out;
	}
	if (!om_spool_id_valid(m->id)) {
		snprintf(err, errlen, "field \"id\" is not a spool id ([A-Za-z0-9._-], 1-%d)",
		         OM_SPOOL_ID_MAX);
		rc = EINVAL;
		goto out;
	}
	if (!m->test && !hex_valid(m->mailbox_uid)) {
		snprintf(err, errlen, "field \"mailbox_uid\" is not a mailbox uid (hex)");
		rc = EINVAL;
		goto out;
	}
	if (m->start_ms < 0) {
		snprintf(err, errlen, "field \"start_ms\" is negative");
		rc = EINVAL;
		goto out;
	}
	if (m->start_ms > OM_SPOOL_TIME_MAX) {
		snprintf(err, errlen, "field \"start_ms\" is after the year 9999");
		rc = EINVAL;
		goto out;
	}
	json_decref(o);
	o = NULL;
	if (end_text) {
		/* The metadata is good: an end marker openum cannot read only
		 * means the end is unknown, as after an interruption. */
		if (!(o = load(end_text, end_len, "end marker", &rc, err, errlen))) {
			if (rc == ENOMEM)
				return rc;
			m->end_unusable = true;
			return 0;
		}
		if ((rc = get_int(o, "end_ms", &m->end_ms, false, err, errlen)) ||
		    (rc = get_str(o, "end_reason", m->end_reason, sizeof(m->end_reason), false, err,
		                  errlen))) {
			m->end_ms = 0;
			m->end_reason[0] = '\0';
			m->end_unusable = true;
			rc = 0;
			goto out;
		}
		m->ended = true;
	}
out:
	json_decref(o);
	return rc;
}
