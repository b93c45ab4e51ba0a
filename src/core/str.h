/* str.h — string slices (pointer + length) borrowed from a buffer someone
 * else owns (Kamailio's `str`). A slice lives exactly as long as its buffer.
 * Also a small growable buffer (om_buf) for building output. */
#ifndef OM_CORE_STR_H
#define OM_CORE_STR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct om_str {
	const char *p;
	size_t len;
};

#define OM_STR_NULL   ((struct om_str){ NULL, 0 })
#define OM_STR_LIT(s) ((struct om_str){ (s), sizeof(s) - 1 })
#define OM_STR_FMT    "%.*s"
#define OM_STR_ARG(s) (int)(s).len, (s).p

struct om_str om_str_c(const char *s);
bool om_str_eq(struct om_str a, struct om_str b);
bool om_str_caseeq(struct om_str a, struct om_str b);
bool om_str_eq_c(struct om_str a, const char *b);
bool om_str_caseeq_c(struct om_str a, const char *b);
struct om_str om_str_trim(struct om_str s);
/* Decimal without sign, no overflow past max: 0 or EINVAL/ERANGE. */
int om_str_to_u64(struct om_str s, uint64_t max, uint64_t *out);
/* Copy into a NUL-terminated heap string (om_free it); NULL on no memory. */
char *om_str_dup(struct om_str s);

/* Growable output buffer. Owner calls om_buf_free. Writes after an
 * allocation failure are ignored and om_buf_err() reports ENOMEM once. A
 * buffer marked secret (it holds a key: an SDP body with a=crypto) is
 * cleansed whenever it moves to a larger block and when it is freed. */
struct om_buf {
	char *p;
	size_t len;
	size_t cap;
	int err;
	bool secret;
};

void om_buf_init(struct om_buf *b);
void om_buf_free(struct om_buf *b);
/* From now on, growing or freeing b first zeroes the old block
 * (explicit_bzero); a buffer that is copied elsewhere must be marked too. */
void om_buf_secret(struct om_buf *b);
/* Makes room for n more bytes (and the NUL) in one allocation, so that a
 * caller who knows the final size grows the buffer once, not by doubling
 * and copying. The bytes may then be written at p + len directly (len
 * moved by the caller, p[len] = NUL kept). 0 or ENOMEM (also set as the
 * buffer's error). */
int om_buf_reserve(struct om_buf *b, size_t n);
void om_buf_add(struct om_buf *b, const void *data, size_t n);
void om_buf_adds(struct om_buf *b, const char *s);
void om_buf_addstr(struct om_buf *b, struct om_str s);
void om_buf_printf(struct om_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void om_buf_vprintf(struct om_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* JSON string with quotes and escapes. */
void om_buf_json_str(struct om_buf *b, const char *s);
/* NUL-terminated view of the contents ("" when empty); NULL after ENOMEM. */
const char *om_buf_cstr(struct om_buf *b);
int om_buf_err(const struct om_buf *b);

#endif
