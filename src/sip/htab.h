/* htab.h — a small intrusive hash table for the transaction and dialog
 * layers (private to sip/). Nodes are embedded in the objects they index;
 * the table only links them, it never owns or frees an object.
 *
 * Chained buckets, power-of-two size, grown (doubled) when the load passes
 * 1 and never shrunk. Keys are byte strings compared by the owner's
 * `eq` function after the 64-bit hash matched. */
#ifndef OM_SIP_HTAB_H
#define OM_SIP_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct om_hnode {
	struct om_hnode *next;
	uint64_t hash;
	bool linked;
};

struct om_htab {
	struct om_hnode **b;
	size_t nb; /* buckets (power of two) */
	size_t n;  /* linked nodes */
};

/* FNV-1a over bytes; `seed` chains several fields into one hash. */
static inline uint64_t om_hash_bytes(uint64_t seed, const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = seed ? seed : 14695981039346656037ull;
	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* Case-insensitive variant (host names, tokens). */
static inline uint64_t om_hash_ibytes(uint64_t seed, const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = seed ? seed : 14695981039346656037ull;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		h ^= c;
		h *= 1099511628211ull;
	}
	return h;
}

/* 0 or ENOMEM. */
int om_htab_init(struct om_htab *t, size_t nb);
void om_htab_fini(struct om_htab *t);
/* Links n under hash h. Never fails: when growing fails the chains just
 * get longer. */
void om_htab_add(struct om_htab *t, struct om_hnode *n, uint64_t h);
void om_htab_del(struct om_htab *t, struct om_hnode *n);
/* First node with hash h for which eq(node, key) holds; NULL if none. */
struct om_hnode *om_htab_find(const struct om_htab *t, uint64_t h,
                              bool (*eq)(const struct om_hnode *n, const void *key),
                              const void *key);

#define om_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
