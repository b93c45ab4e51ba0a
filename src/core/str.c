/* str.c — slices and the growable output buffer. */
#include "core/str.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct om_str om_str_c(const char *s)
{
	return (struct om_str){ s, s ? strlen(s) : 0 };
}

bool om_str_eq(struct om_str a, struct om_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool om_str_caseeq(struct om_str a, struct om_str b)
{
	return a.len == b.len && (a.len == 0 || strncasecmp(a.p, b.p, a.len) == 0);
}

bool om_str_eq_c(struct om_str a, const char *b)
{
	return om_str_eq(a, om_str_c(b));
}

bool om_str_caseeq_c(struct om_str a, const char *b)
{
	return om_str_caseeq(a, om_str_c(b));
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct om_str om_str_trim(struct om_str s)
{
	while (s.len && is_ws(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len && is_ws(s.p[s.len - 1]))
		s.len--;
	return s;
}

int om_str_to_u64(struct om_str s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (s.len == 0)
		return EINVAL;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];
		if (c < '0' || c > '9')
			return EINVAL;
		unsigned d = (unsigned)(c - '0');
		if (v > (max - d) / 10)
			return ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

char *om_str_dup(struct om_str s)
{
	char *d = om_malloc(s.len + 1);
	if (!d)
		return NULL;
	if (s.len)
		memcpy(d, s.p, s.len);
	d[s.len] = '\0';
	return d;
}

void om_buf_init(struct om_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void om_buf_secret(struct om_buf *b)
{
	b->secret = true;
}

void om_buf_free(struct om_buf *b)
{
	if (b->secret && b->p)
		explicit_bzero(b->p, b->cap);
	om_free(b->p);
	memset(b, 0, sizeof(*b));
}

static int resize(struct om_buf *b, size_t cap);

static int grow(struct om_buf *b, size_t need)
{
	if (b->err)
		return b->err;
	if (b->len + need + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + need + 1)
		cap *= 2;
	return resize(b, cap);
}

int om_buf_reserve(struct om_buf *b, size_t n)
{
	if (b->err)
		return b->err;
	if (n > SIZE_MAX / 2 - b->len) {
		b->err = ENOMEM;
		return ENOMEM;
	}
	if (b->len + n + 1 <= b->cap)
		return 0;
	int rc = resize(b, b->len + n + 1);
	if (!rc && !b->len)
		b->p[0] = '\0';
	return rc;
}

/* Moves the contents to a block of cap bytes. */
static int resize(struct om_buf *b, size_t cap)
{
	char *p;
	if (b->secret) {
		/* realloc would free the old block with the secret in it. */
		p = om_malloc(cap);
		if (p && b->p) {
			memcpy(p, b->p, b->len + 1);
			explicit_bzero(b->p, b->cap);
			om_free(b->p);
		}
	} else {
		p = om_realloc(b->p, cap);
	}
	if (!p) {
		b->err = ENOMEM;
		return ENOMEM;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void om_buf_add(struct om_buf *b, const void *data, size_t n)
{
	if (grow(b, n))
		return;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void om_buf_adds(struct om_buf *b, const char *s)
{
	om_buf_add(b, s, strlen(s));
}

void om_buf_addstr(struct om_buf *b, struct om_str s)
{
	om_buf_add(b, s.p, s.len);
}

void om_buf_vprintf(struct om_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || grow(b, (size_t)n))
		return;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void om_buf_printf(struct om_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	om_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void om_buf_json_str(struct om_buf *b, const char *s)
{
	om_buf_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			om_buf_add(b, "\\\"", 2);
			break;
		case '\\':
			om_buf_add(b, "\\\\", 2);
			break;
		case '\n':
			om_buf_add(b, "\\n", 2);
			break;
		case '\r':
			om_buf_add(b, "\\r", 2);
			break;
		case '\t':
			om_buf_add(b, "\\t", 2);
			break;
		default:
			if (*p < 0x20)
				om_buf_printf(b, "\\u%04x", *p);
			else
				om_buf_add(b, p, 1);
		}
	}
	om_buf_add(b, "\"", 1);
}

const char *om_buf_cstr(struct om_buf *b)
{
	if (b->err)
		return NULL;
	return b->p ? b->p : "";
}

int om_buf_err(const struct om_buf *b)
{
	return b->err;
}
