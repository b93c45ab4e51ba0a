/* alloc.c — allocation wrappers with a fault-injection hook.
 *
 * The counters are atomics so media threads may allocate too; injection is
 * meant for single-threaded tests. */
#include "core/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong g_count;
static atomic_ulong g_fail_at;
static atomic_int g_sticky;
static atomic_int g_hit;

unsigned long om_alloc_fail_at(unsigned long n, int sticky)
{
	unsigned long prev = atomic_exchange(&g_count, 0);
	atomic_store(&g_fail_at, n);
	atomic_store(&g_sticky, sticky);
	atomic_store(&g_hit, 0);
	return prev;
}

int om_alloc_fault_hit(void)
{
	return atomic_load(&g_hit);
}

unsigned long om_alloc_count(void)
{
	return atomic_load(&g_count);
}

/* Returns nonzero when this allocation must fail. */
static int inject(void)
{
	unsigned long at = atomic_load(&g_fail_at);
	unsigned long n = atomic_fetch_add(&g_count, 1) + 1;
	if (at == 0)
		return 0;
	if (n == at || (n > at && atomic_load(&g_sticky))) {
		atomic_store(&g_hit, 1);
		return 1;
	}
	return 0;
}

void *om_malloc(size_t n)
{
	if (inject())
		return NULL;
	return malloc(n ? n : 1);
}

void *om_calloc(size_t nmemb, size_t size)
{
	if (inject())
		return NULL;
	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	return calloc(nmemb, size);
}

/* Tests: sees every block before it is given back (free, or a realloc
 * that may move it). */
static void (*g_release_h)(const void *p, size_t size, void *arg);
static void *g_release_arg;

void om_alloc_set_release_hook(void (*h)(const void *p, size_t size, void *arg), void *arg)
{
	g_release_h = h;
	g_release_arg = arg;
}

void *om_realloc(void *p, size_t n)
{
	if (inject())
		return NULL;
	if (g_release_h && p)
		g_release_h(p, malloc_usable_size(p), g_release_arg);
	return realloc(p, n ? n : 1);
}

char *om_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = om_malloc(len + 1);
	if (!d)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *om_strdup(const char *s)
{
	return om_strndup(s, strlen(s));
}

void om_free(void *p)
{
	if (g_release_h && p)
		g_release_h(p, malloc_usable_size(p), g_release_arg);
	free(p);
}
