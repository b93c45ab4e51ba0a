/* message.c — the voice message as an Internet message: RFC 5322 header
 * fields, MIME (RFC 2045/2046: multipart/mixed with a text/plain part in
 * quoted-printable and the audio in base64), RFC 2047 encoded-words for
 * text that is not ASCII, RFC 3834 Auto-Submitted.
 *
 * Everything that came from a caller or a gateway (caller number and
 * name) is treated as hostile: control characters are dropped, so no CR
 * or LF can end a header field and start another; quotes and backslashes
 * are escaped in quoted-strings; non-ASCII text becomes encoded-words.
 * The file uses LF line endings, as a Maildir file does. */
#include "delivery/delivery.h"

#include "core/alloc.h"
#include "core/str.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int om_message_key(const struct om_spool_meta *m, char key[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool none = !m->call_id[0] && !m->from_tag[0] && !m->to_tag[0];
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	if (ok && none)
		ok = EVP_DigestUpdate(c, "spool", 6) && EVP_DigestUpdate(c, m->id, strlen(m->id));
	else if (ok) /* NUL-separated, so ("ab", "c") and ("a", "bc") differ */
		ok = EVP_DigestUpdate(c, m->call_id, strlen(m->call_id) + 1) &&
		     EVP_DigestUpdate(c, m->from_tag, strlen(m->from_tag) + 1) &&
		     EVP_DigestUpdate(c, m->to_tag, strlen(m->to_tag));
	ok = ok && EVP_DigestFinal_ex(c, md, &mdlen) && mdlen >= 16;
	EVP_MD_CTX_free(c);
	if (!ok)
		return ENOMEM;
	for (unsigned i = 0; i < 16; i++)
		snprintf(key + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* ---------------------------------------------------- text helpers */

/* src without control characters (C0, DEL) and with invalid UTF-8
 * replaced by '?': what may go into a header or the text part. */
static void clean(const char *src, char *dst, size_t size)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)src;
	while (*p && o + 5 < size) {
		unsigned char c = *p;
		size_t len = c < 0x80             ? 1
		             : (c & 0xe0) == 0xc0 ? 2
		             : (c & 0xf0) == 0xe0 ? 3
		             : (c & 0xf8) == 0xf0 ? 4
		                                  : 0;
		bool ok = len > 0 && !(len == 2 && c < 0xc2);
		for (size_t k = 1; ok && k < len; k++)
			ok = (p[k] & 0xc0) == 0x80;
		if (!ok) {
			dst[o++] = '?';
			p++;
			continue;
		}
		if (len == 1 && (c < 0x20 || c == 0x7f)) {
			if (c == '\t' || c == '\n' || c == '\r')
				dst[o++] = ' ';
			p++;
			continue;
		}
		memcpy(dst + o, p, len);
		o += len;
		p += len;
	}
	dst[o] = '\0';
}

static bool ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 4648 §4 base64 of a short text, on one line (encoded-words). */
static void base64(struct om_buf *b, const unsigned char *p, size_t n)
{
	char q[4];
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = b64[(v >> 18) & 63];
		q[1] = b64[(v >> 12) & 63];
		q[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? b64[v & 63] : '=';
		om_buf_add(b, q, 4);
	}
}

/* ---------------------------------------------------- the attachment */

/* RFC 2045 §6.8: lines of 76 characters (57 bytes, 19 groups of 3) and a
 * LF; the last line shorter, padded with '=', also ending in LF. */
enum { LINE_IN = OM_MESSAGE_B64_LINE_IN, LINE_OUT = OM_MESSAGE_B64_LINE_OUT };

size_t om_message_b64_len(size_t n)
{
	size_t lines = n / LINE_IN, rest = n % LINE_IN;
	return lines * LINE_OUT + (rest ? (rest + 2) / 3 * 4 + 1 : 0);
}

/* Two base64 characters for every 12 bits: one look-up per half group. */
static uint16_t b64_pairs[4096];
static pthread_once_t b64_pairs_once = PTHREAD_ONCE_INIT;

static void b64_pairs_init(void)
{
	for (unsigned i = 0; i < 4096; i++) {
		char two[2] = { b64[i >> 6], b64[i & 63] };
		memcpy(&b64_pairs[i], two, 2);
	}
}

/* One whole line: 57 bytes in, 77 characters out. */
static char *b64_line(const unsigned char *in, char *o)
{
	for (int g = 0; g < LINE_IN / 3; g++, in += 3, o += 4) {
		uint32_t v = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
		memcpy(o, &b64_pairs[v >> 12], 2);
		memcpy(o + 2, &b64_pairs[v & 4095], 2);
	}
	*o++ = '\n';
	return o;
}

size_t om_message_b64_feed(struct om_message_b64 *s, const void *data, size_t n, char *out)
{
	const unsigned char *p = data;
	char *o = out;
	pthread_once(&b64_pairs_once, b64_pairs_init);
	if (s->ncarry) { /* complete the line begun by the previous piece */
		size_t take = LINE_IN - s->ncarry < n ? LINE_IN - s->ncarry : n;
		memcpy(s->carry + s->ncarry, p, take);
		s->ncarry += take;
		p += take;
		n -= take;
		if (s->ncarry < LINE_IN)
			return 0;
		o = b64_line(s->carry, o);
		s->ncarry = 0;
	}
	for (; n >= LINE_IN; p += LINE_IN, n -= LINE_IN)
		o = b64_line(p, o);
	memcpy(s->carry, p, n);
	s->ncarry = n;
	return (size_t)(o - out);
}

size_t om_message_b64_end(struct om_message_b64 *s, char *out)
{
	size_t n = s->ncarry, i = 0;
	char *o = out;
	if (!n)
		return 0;
	for (; i + 3 <= n; i += 3, o += 4) {
		const unsigned char *in = s->carry + i;
		uint32_t v = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
		o[0] = b64[v >> 18];
		o[1] = b64[(v >> 12) & 63];
		o[2] = b64[(v >> 6) & 63];
		o[3] = b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s->carry[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s->carry[i + 1] << 8;
		o[0] = b64[v >> 18];
		o[1] = b64[(v >> 12) & 63];
		o[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		o[3] = '=';
		o += 4;
	}
	*o++ = '\n';
	s->ncarry = 0;
	return (size_t)(o - out);
}

/* RFC 2047 §4.1 B-encoded words, folded one per line; 30 bytes of text
 * each (52 characters), so that even after the longest field name openum
 * writes a line stays within RFC 5322's 78. Cut at UTF-8 boundaries. */
static void encoded_words(struct om_buf *b, const char *s)
{
	size_t n = strlen(s), i = 0;
	bool first = true;
	while (i < n) {
		size_t take = n - i > 30 ? 30 : n - i;
		while (i + take < n && take > 0 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		if (take == 0)
			take = 1;
		om_buf_adds(b, first ? "=?UTF-8?B?" : "\n =?UTF-8?B?");
		base64(b, (const unsigned char *)s + i, take);
		om_buf_adds(b, "?=");
		i += take;
		first = false;
	}
}

/* True when ASCII text folded at its spaces fits lines of 78 characters,
 * the first starting at column `col`. */
static bool foldable(const char *s, size_t col)
{
	for (const char *p = s; *p;) {
		size_t w = strcspn(p, " ");
		if ((p == s ? col : 1) + w > 78)
			return false;
		p += w;
		while (*p == ' ')
			p++;
	}
	return true;
}

/* Unstructured header text (Subject, X- fields) after a field name of
 * `col` characters: ASCII folded at spaces within 78 characters, else
 * (not ASCII, or a word too long to fold) encoded-words. */
static void unstructured(struct om_buf *b, size_t col, const char *raw)
{
	char s[1024];
	clean(raw, s, sizeof(s));
	if (!ascii(s) || !foldable(s, col)) {
		encoded_words(b, s);
		return;
	}
	for (const char *p = s; *p;) {
		size_t w = strcspn(p, " ");
		if (p != s) {
			if (col + 1 + w > 78) {
				om_buf_adds(b, "\n ");
				col = 1;
			} else {
				om_buf_add(b, " ", 1);
				col++;
			}
		}
		om_buf_add(b, p, w);
		col += w;
		p += w;
		while (*p == ' ')
			p++;
	}
}

/* A display name (RFC 5322 phrase) at column `col`, followed on its line
 * by `tail` characters: a quoted-string when it is ASCII and the line
 * stays within 78 characters, else encoded-words (then true: the caller
 * folds before what follows). */
static bool phrase(struct om_buf *b, const char *raw, size_t col, size_t tail)
{
	char s[512];
	size_t quoted = 2;
	clean(raw, s, sizeof(s));
	for (const char *p = s; *p; p++)
		quoted += *p == '"' || *p == '\\' ? 2 : 1;
	if (!ascii(s) || col + quoted + tail > 78) {
		encoded_words(b, s);
		return true;
	}
	om_buf_add(b, "\"", 1);
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			om_buf_add(b, "\\", 1);
		om_buf_add(b, p, 1);
	}
	om_buf_add(b, "\"", 1);
	return false;
}

/* An addr-spec we can vouch for: dot-atom local part and domain of
 * letters, digits and a few symbols; anything else is not used. */
static bool addr_ok(const char *a)
{
	const char *at = strrchr(a, '@');
	if (!at || at == a || !at[1] || strlen(a) > 254)
		return false;
	for (const char *p = a; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || strchr("\"(),:;<>[\\]", c))
			return false;
	}
	return true;
}

/* RFC 2045 §6.7 quoted-printable, lines of at most 76 characters. */
static void quoted_printable(struct om_buf *b, const char *s)
{
	size_t col = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char tmp[4];
		size_t w;
		if (*p == '\n') {
			om_buf_add(b, "\n", 1);
			col = 0;
			continue;
		}
		bool lit = (*p >= 33 && *p <= 126 && *p != '=') ||
		           (*p == ' ' && p[1] != '\n' && p[1] != '\0');
		if (lit) {
			tmp[0] = (char)*p;
			w = 1;
		} else {
			snprintf(tmp, sizeof(tmp), "=%02X", *p);
			w = 3;
		}
		if (col + w > 75) {
			om_buf_adds(b, "=\n");
			col = 0;
		}
		om_buf_add(b, tmp, w);
		col += w;
	}
}

static void duration_str(size_t samples, char *out, size_t len)
{
	unsigned long s = (unsigned long)((samples + 4000) / 8000);
	if (s >= 3600)
		snprintf(out, len, "%lu:%02lu:%02lu", s / 3600, (s / 60) % 60, s % 60);
	else
		snprintf(out, len, "%lu:%02lu", s / 60, s % 60);
}

/* Who called, for people: "Name (number)", "number", "Anonymous". */
static void caller_str(const struct om_spool_meta *m, char *out, size_t len)
{
	if (m->anonymous || (!m->caller[0] && !m->caller_name[0]))
		snprintf(out, len, "Anonymous");
	else if (m->caller_name[0] && m->caller[0] && strcmp(m->caller_name, m->caller))
		snprintf(out, len, "%s (%s)", m->caller_name, m->caller);
	else
		snprintf(out, len, "%s", m->caller_name[0] ? m->caller_name : m->caller);
}

int om_message_head(const struct om_spool_meta *m, const struct om_message_opts *o,
                    size_t audio_len, struct om_buf *out, char tail[OM_MESSAGE_TAIL_MAX])
{
	char key[33], who[300], dur[32], date[64], local[64], utc[64], zone[16], fname[64];
	time_t t = (time_t)(m->start_ms / 1000);
	struct tm lt, ut;
	struct om_buf text;
	const char *fqdn = o->fqdn && *o->fqdn ? o->fqdn : "localhost";
	if (om_message_key(m, key))
		return ENOMEM;
	caller_str(m, who, sizeof(who));
	duration_str(o->samples, dur, sizeof(dur));
	localtime_r(&t, &lt);
	gmtime_r(&t, &ut);
	/* RFC 5322 §3.3 date-time, in the server's zone (C locale names) */
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	long off = lt.tm_gmtoff / 60;
	snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	         days[lt.tm_wday], lt.tm_mday, months[lt.tm_mon], lt.tm_year + 1900, lt.tm_hour,
	         lt.tm_min, lt.tm_sec, off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
	         (off < 0 ? -off : off) % 60);
	strftime(local, sizeof(local), "%Y-%m-%d %H:%M:%S", &lt);
	strftime(zone, sizeof(zone), "%Z", &lt);
	strftime(utc, sizeof(utc), "%Y-%m-%d %H:%M:%S UTC", &ut);
	strftime(fname, sizeof(fname), "voicemail-%Y%m%d-%H%M%S", &lt);

	om_buf_printf(out, "Date: %s\n", date);
	/* From: the caller as the display name (the caller has no address) */
	om_buf_adds(out, "From: ");
	bool folded = phrase(out, who, 6, strlen(" <voicemail@>") + strlen(fqdn));
	om_buf_printf(out, "%s<voicemail@%s>\n", folded ? "\n " : " ", fqdn);
	/* To: the mailbox's address, else its name as an empty group */
	om_buf_adds(out, "To: ");
	if (m->mailbox_email[0] && addr_ok(m->mailbox_email)) {
		if (m->mailbox_name[0])
			om_buf_adds(out, phrase(out, m->mailbox_name, 4,
			                        strlen(" <>") + strlen(m->mailbox_email))
			                     ? "\n "
			                     : " ");
		om_buf_printf(out, "<%s>\n", m->mailbox_email);
	} else {
		char grp[300];
		if (m->mailbox_name[0])
			snprintf(grp, sizeof(grp), "%s, extension %s", m->mailbox_name,
			         m->extension);
		else
			snprintf(grp, sizeof(grp), "Mailbox %s", m->extension);
		om_buf_adds(out, phrase(out, grp, 4, 2) ? "\n :;\n" : ":;\n");
	}
	om_buf_adds(out, "Subject: ");
	{
		char subj[400];
		snprintf(subj, sizeof(subj), "%sVoice message from %s (%s)",
		         o->recovered ? "[recovered] " : "", who, dur);
		unstructured(out, 9, subj);
	}
	om_buf_printf(out, "\nMessage-ID: <%s.voicemail@%s>\n", key, fqdn);
	om_buf_adds(out, "MIME-Version: 1.0\n"
	                 "Auto-Submitted: auto-generated\n");
	om_buf_adds(out, "X-Openum-Caller: ");
	unstructured(out, 17, m->anonymous || !m->caller[0] ? "anonymous" : m->caller);
	if (m->caller_name[0] && !m->anonymous) {
		om_buf_adds(out, "\nX-Openum-Caller-Name: ");
		unstructured(out, 22, m->caller_name);
	}
	om_buf_adds(out, "\nX-Openum-Extension: ");
	unstructured(out, 20, m->extension);
	om_buf_adds(out, "\nX-Openum-Dialplan: ");
	unstructured(out, 19, m->dialplan);
	om_buf_adds(out, "\nX-Openum-Security-Mode: ");
	unstructured(out, 24, m->security_mode[0] ? m->security_mode : "unknown");
	if (m->reason[0]) {
		om_buf_adds(out, "\nX-Openum-Reason: ");
		unstructured(out, 17, m->reason);
	}
	om_buf_printf(out, "\nX-Openum-Duration: %zu\n", (o->samples + 4000) / 8000);
	om_buf_printf(out, "X-Openum-Time: %lld\n", (long long)m->start_ms);
	if (audio_len)
		om_buf_printf(out, "X-Openum-Audio: %s\n", om_audio_format_name(o->format));
	if (o->recovered)
		om_buf_adds(out, "X-Openum-Recovered: yes\n");
	om_buf_printf(out,
	              "Content-Type: multipart/mixed; boundary=\"=_openum_%.16s\"\n"
	              "\n"
	              "This is a voice message in MIME format.\n"
	              "\n"
	              "--=_openum_%.16s\n"
	              "Content-Type: text/plain; charset=utf-8\n"
	              "Content-Transfer-Encoding: quoted-printable\n"
	              "\n",
	              key, key);

	/* the text part */
	om_buf_init(&text);
	{
		char c[400], line[600];
		clean(who, c, sizeof(c));
		om_buf_printf(&text, "Voice message from %s\n\n", c);
		om_buf_printf(&text, "Caller:     %s\n", c);
		clean(m->extension, c, sizeof(c));
		clean(m->dialplan, line, sizeof(line));
		om_buf_printf(&text, "Extension:  %s (dial plan %s)\n", c, line);
		if (m->mailbox_name[0]) {
			clean(m->mailbox_name, c, sizeof(c));
			om_buf_printf(&text, "Mailbox:    %s\n", c);
		}
		om_buf_printf(&text, "Time:       %s %s (%s)\n", local, zone, utc);
		om_buf_printf(&text, "Duration:   %s\n", dur);
		if (m->reason[0]) {
			clean(m->reason, c, sizeof(c));
			om_buf_printf(&text, "Reason:     %s\n", c);
		}
		clean(m->security_mode[0] ? m->security_mode : "unknown", c, sizeof(c));
		om_buf_printf(&text, "Security:   %s, signalling over %s, media %s\n", c,
		              !strcmp(m->transport, "tls") ? "TLS" : "TCP",
		              m->srtp_suite[0] ? "SRTP" : "RTP (not encrypted)");
		if (m->srtp_suite[0]) {
			clean(m->srtp_suite, c, sizeof(c));
			om_buf_printf(&text, "SRTP suite: %s\n", c);
		}
		if (m->gateway[0]) {
			clean(m->gateway, c, sizeof(c));
			om_buf_printf(&text, "Gateway:    %s\n", c);
		}
		if (o->recovered)
			om_buf_adds(&text,
			            "\nRecovered after an interruption: the service stopped while "
			            "this message was being recorded; the audio ends where the "
			            "recording stopped.\n");
		if (!audio_len)
			om_buf_adds(&text, "\nNo audio was recorded for this call.\n");
	}
	if (om_buf_err(&text)) {
		om_buf_free(&text);
		return ENOMEM;
	}
	quoted_printable(out, om_buf_cstr(&text) ? om_buf_cstr(&text) : "");
	om_buf_free(&text);
	om_buf_adds(out, "\n");
	if (audio_len) {
		const char *ext = om_audio_format_ext(o->format);
		om_buf_printf(out,
		              "--=_openum_%.16s\n"
		              "Content-Type: %s; name=\"%s.%s\"\n"
		              "Content-Disposition: attachment; filename=\"%s.%s\"\n"
		              "Content-Transfer-Encoding: base64\n"
		              "\n",
		              key, om_audio_format_mime(o->format), fname, ext, fname, ext);
	}
	snprintf(tail, OM_MESSAGE_TAIL_MAX, "--=_openum_%.16s--\n", key);
	return om_buf_err(out) ? ENOMEM : 0;
}

int om_message_build(const struct om_spool_meta *m, const struct om_message_opts *o,
                     const void *audio, size_t audio_len, struct om_buf *out)
{
	char tail[OM_MESSAGE_TAIL_MAX];
	struct om_message_b64 st = { .ncarry = 0 };
	int rc = om_message_head(m, o, audio_len, out, tail);
	size_t tlen = strlen(tail);
	/* one allocation for the rest: its size is known */
	if (rc || (rc = om_buf_reserve(out, om_message_b64_len(audio_len) + tlen)))
		return rc;
	if (audio_len) {
		out->len += om_message_b64_feed(&st, audio, audio_len, out->p + out->len);
		out->len += om_message_b64_end(&st, out->p + out->len);
	}
	memcpy(out->p + out->len, tail, tlen + 1);
	out->len += tlen;
	return 0;
}
