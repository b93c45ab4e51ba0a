/* fuzz_delivery.c — the delivery's parsers and its one output that
 * carries a caller's text:
 *   1. a spool's metadata (om_spool_meta_parse), and an end marker after
 *      good metadata (it must never make the spool unusable),
 *   2. a message read back for its audio (om_message_audio: MIME,
 *      multipart, base64),
 *   3. the message built from fields taken from the input (split at NUL):
 *      the header block must stay well formed whatever a caller sends —
 *      every line a field or a continuation, no CR, no 8-bit byte, no
 *      line over 998 characters (RFC 5322 §2.1.1). */
#include "delivery/delivery.h"
#include "core/str.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t field(const uint8_t *d, size_t n, size_t off, char *dst, size_t size)
{
	size_t k = 0;
	while (off < n && d[off] && k + 1 < size)
		dst[k++] = (char)d[off++];
	dst[k] = '\0';
	while (off < n && d[off])
		off++;
	return off < n ? off + 1 : n;
}

static void check_headers(const char *msg, size_t len)
{
	const char *end = strstr(msg, "\n\n");
	size_t hlen = end ? (size_t)(end - msg) + 1 : len;
	for (size_t i = 0; i < hlen;) {
		const char *line = msg + i, *nl = memchr(line, '\n', hlen - i);
		size_t ll = nl ? (size_t)(nl - line) : hlen - i;
		if (ll > 998)
			abort();
		if (ll && line[0] != ' ' && line[0] != '\t') {
			const char *colon = memchr(line, ':', ll);
			if (!colon || colon == line)
				abort();
			for (const char *c = line; c < colon; c++)
				if (*c <= ' ' || *c >= 127)
					abort();
		}
		for (size_t k = 0; k < ll; k++)
			if (line[k] == '\r' || (unsigned char)line[k] >= 0x80)
				abort();
		i += ll + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct om_spool_meta m;
	char err[256], ext[8];
	struct om_buf b;
	(void)om_spool_meta_parse((const char *)data, size, NULL, 0, &m, err, sizeof(err));
	static const char good[] = "{\"version\":1,\"id\":\"f\",\"mailbox_uid\":\"ab\","
	                           "\"start_ms\":1}";
	int rc = om_spool_meta_parse(good, sizeof(good) - 1, (const char *)data, size, &m, err,
	                             sizeof(err));
	if (rc != 0 && rc != ENOMEM)
		abort(); /* a bad end marker is an interrupted recording, never a lost one */

	om_buf_init(&b);
	(void)om_message_audio((const char *)data, size, &b, ext);
	om_buf_free(&b);

	memset(&m, 0, sizeof(m));
	size_t off = 0;
	off = field(data, size, off, m.caller_name, sizeof(m.caller_name));
	off = field(data, size, off, m.caller, sizeof(m.caller));
	off = field(data, size, off, m.mailbox_name, sizeof(m.mailbox_name));
	off = field(data, size, off, m.mailbox_email, sizeof(m.mailbox_email));
	off = field(data, size, off, m.extension, sizeof(m.extension));
	off = field(data, size, off, m.dialplan, sizeof(m.dialplan));
	off = field(data, size, off, m.reason, sizeof(m.reason));
	(void)field(data, size, off, m.call_id, sizeof(m.call_id));
	strcpy(m.id, "fuzz");
	strcpy(m.mailbox_uid, "00");
	m.anonymous = size && (data[0] & 1);
	m.start_ms = size ? (int64_t)data[size - 1] * 86400000LL : 0;
	struct om_message_opts o = { "um.example.com", OM_AUDIO_WAV, size > 3 && (data[1] & 1),
		                     size * 100 };
	om_buf_init(&b);
	if (om_message_build(&m, &o, data, size > 64 ? 64 : size, &b) == 0 && om_buf_cstr(&b))
		check_headers(om_buf_cstr(&b), b.len);
	om_buf_free(&b);
	return 0;
}
