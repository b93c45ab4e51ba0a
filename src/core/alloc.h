/* alloc.h — the om_alloc family: every heap allocation in openum goes through
 * here so that tests can make the Nth allocation fail (out-of-memory sweeps,
 * as libre's and SQLite's test runners do).
 *
 * Ownership: whoever receives a pointer from om_malloc & co. owns it and
 * releases it with om_free (never free()). */
#ifndef OM_CORE_ALLOC_H
#define OM_CORE_ALLOC_H

#include <stddef.h>

void *om_malloc(size_t n);
void *om_calloc(size_t nmemb, size_t size);
void *om_realloc(void *p, size_t n);
char *om_strdup(const char *s);
char *om_strndup(const char *s, size_t n);
void om_free(void *p);

/* Fault injection. om_alloc_fail_at(n) makes the nth allocation from now on
 * fail (n >= 1) and every one after it too when `sticky`; n == 0 turns
 * injection off. Returns how many allocations were attempted since the last
 * call, so a sweep knows when a run completed without reaching the fault. */
unsigned long om_alloc_fail_at(unsigned long n, int sticky);
/* True once an injected failure has been returned since the last fail_at. */
int om_alloc_fault_hit(void);
/* Allocations attempted since the last om_alloc_fail_at call. */
unsigned long om_alloc_count(void);
/* Tests only (single-threaded): h sees every block om_free releases and
 * every block om_realloc may move, with its usable size, before it is
 * given back — to prove secrets are cleansed first. NULL removes it. */
void om_alloc_set_release_hook(void (*h)(const void *p, size_t size, void *arg), void *arg);

#endif
