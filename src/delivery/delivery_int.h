/* delivery_int.h — shared inside the delivery module only. */
#ifndef OM_DELIVERY_DELIVERY_INT_H
#define OM_DELIVERY_DELIVERY_INT_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

/* snprintf for paths and messages: 0, or ENAMETOOLONG when the text was
 * cut (a path cut short must not be used; a message may be). */
static inline int dlv_fmt(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline int dlv_fmt(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? ENAMETOOLONG : 0;
}

/* write(2) until all of data is written (EINTR retried). 0 or errno. */
int dlv_write_all(int fd, const void *data, size_t len);

#endif
