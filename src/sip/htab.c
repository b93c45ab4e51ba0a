/* htab.c — the intrusive hash table of htab.h (transactions, dialogs). */
#include "sip/htab.h"
#include "core/alloc.h"

#include <errno.h>

int om_htab_init(struct om_htab *t, size_t nb)
{
	size_t n = 16;
	while (n < nb)
		n <<= 1;
	t->b = om_calloc(n, sizeof(*t->b));
	if (!t->b)
		return ENOMEM;
	t->nb = n;
	t->n = 0;
	return 0;
}

void om_htab_fini(struct om_htab *t)
{
	om_free(t->b);
	t->b = NULL;
	t->nb = t->n = 0;
}

static void grow(struct om_htab *t)
{
	size_t nb = t->nb * 2;
	struct om_hnode **b = om_calloc(nb, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nb; i++) {
		struct om_hnode *n = t->b[i];
		while (n) {
			struct om_hnode *next = n->next;
			size_t j = (size_t)(n->hash & (nb - 1));
			n->next = b[j];
			b[j] = n;
			n = next;
		}
	}
	om_free(t->b);
	t->b = b;
	t->nb = nb;
}

void om_htab_add(struct om_htab *t, struct om_hnode *n, uint64_t h)
{
	if (n->linked)
		return;
	if (t->n >= t->nb)
		grow(t);
	size_t i = (size_t)(h & (t->nb - 1));
	n->hash = h;
	n->next = t->b[i];
	t->b[i] = n;
	n->linked = true;
	t->n++;
}

void om_htab_del(struct om_htab *t, struct om_hnode *n)
{
	if (!n->linked)
		return;
	struct om_hnode **pp = &t->b[n->hash & (t->nb - 1)];
	while (*pp && *pp != n)
		pp = &(*pp)->next;
	if (*pp)
		*pp = n->next;
	n->next = NULL;
	n->linked = false;
	t->n--;
}

struct om_hnode *om_htab_find(const struct om_htab *t, uint64_t h,
                              bool (*eq)(const struct om_hnode *n, const void *key),
                              const void *key)
{
	for (struct om_hnode *n = t->b[h & (t->nb - 1)]; n; n = n->next)
		if (n->hash == h && eq(n, key))
			return n;
	return NULL;
}
