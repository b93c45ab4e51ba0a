/* mq.h — the queues between the control thread, the media threads and the
 * spool writer: an intrusive multi-producer, single-consumer stack (a
 * Treiber stack). Producers push with one compare-and-swap and no lock; the
 * consumer takes the whole stack with one exchange and reverses it, so
 * items come out in push order (each producer's pushes stay in its order,
 * and a push that happened before another comes out before it). The
 * consumer is woken with uv_async_send, which coalesces. */
#ifndef OM_MEDIA_MQ_H
#define OM_MEDIA_MQ_H

#include <stdatomic.h>
#include <stddef.h>

struct om_mq_node {
	struct om_mq_node *next;
};

struct om_mq {
	_Atomic(struct om_mq_node *) head;
};

static inline void om_mq_push(struct om_mq *q, struct om_mq_node *n)
{
	struct om_mq_node *h = atomic_load_explicit(&q->head, memory_order_relaxed);
	do
		n->next = h;
	while (!atomic_compare_exchange_weak_explicit(&q->head, &h, n, memory_order_release,
	                                              memory_order_relaxed));
}

/* Everything pushed so far, oldest first (NULL when empty). */
static inline struct om_mq_node *om_mq_take(struct om_mq *q)
{
	struct om_mq_node *n = atomic_exchange_explicit(&q->head, NULL, memory_order_acquire);
	struct om_mq_node *prev = NULL;
	while (n) {
		struct om_mq_node *next = n->next;
		n->next = prev;
		prev = n;
		n = next;
	}
	return prev;
}

#endif
