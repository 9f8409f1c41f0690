/*
 * qheap.c - the scheduler's timers: a binary min-heap of nodes embedded
 * in the messages, O(log n) to set, move or remove one, O(1) to find the
 * earliest.  queue_sched.c keeps a single libevent timer for the top of
 * its heaps, instead of one libevent event per message and purpose.
 *
 * Each node knows its place in the array (idx), so a message's timer is
 * moved or removed without a search.  Equal times keep the order they
 * were set in (seq, compared modulo 2^32: a heap never holds nodes set
 * 2^31 settings apart in practice, and a wrong order among equal times
 * would only reorder attempts due at the same second).
 *
 * Security: no input from outside; the array grows by doubling
 * (mr_xreallocarray aborts on overflow or exhaustion).
 */
#include "config.h"

#include <stdlib.h>

#include "buf.h"
#include "qheap.h"

int
qheap_before(const struct qheap_node *a, const struct qheap_node *b)
{
	if (a->at != b->at)
		return a->at < b->at;
	return (int32_t)(a->seq - b->seq) < 0;
}

static void
place(struct qheap *h, size_t i, struct qheap_node *n)
{
	h->v[i] = n;
	n->idx = (uint32_t)i + 1;
}

static void
sift_up(struct qheap *h, size_t i)
{
	struct qheap_node *n = h->v[i];
	size_t parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (!qheap_before(n, h->v[parent]))
			break;
		place(h, i, h->v[parent]);
		i = parent;
	}
	place(h, i, n);
}

static void
sift_down(struct qheap *h, size_t i)
{
	struct qheap_node *n = h->v[i];
	size_t c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && qheap_before(h->v[c + 1], h->v[c]))
			c++;
		if (!qheap_before(h->v[c], n))
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, n);
}

void
qheap_set(struct qheap *h, struct qheap_node *n, time_t at)
{
	qheap_del(h, n);
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 64;
		h->v = mr_xreallocarray(h->v, h->cap,
		    sizeof(struct qheap_node *));
	}
	n->at = at;
	n->seq = h->seq++;
	h->v[h->n] = n;
	sift_up(h, h->n++);
}

void
qheap_del(struct qheap *h, struct qheap_node *n)
{
	size_t i;

	if (n->idx == 0 || n->idx > h->n || h->v[n->idx - 1] != n)
		return;
	i = n->idx - 1;
	n->idx = 0;
	if (i == --h->n)
		return;
	h->v[i] = h->v[h->n];
	h->v[i]->idx = (uint32_t)i + 1;
	if (i > 0 && qheap_before(h->v[i], h->v[(i - 1) / 2]))
		sift_up(h, i);
	else
		sift_down(h, i);
}

struct qheap_node *
qheap_top(const struct qheap *h)
{
	return h->n > 0 ? h->v[0] : NULL;
}

struct qheap_node *
qheap_pop(struct qheap *h)
{
	struct qheap_node *n = qheap_top(h);

	if (n != NULL)
		qheap_del(h, n);
	return n;
}

void
qheap_free(struct qheap *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		h->v[i]->idx = 0;
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
