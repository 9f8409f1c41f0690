/*
 * qheap.h - a binary min-heap of timers keyed by (time, order of
 * setting): the scheduler's one timer structure for every message.
 */
#ifndef MR_QHEAP_H
#define MR_QHEAP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Embedded in what it times; all zero = not in a heap. */
struct qheap_node {
	time_t		 at;
	uint32_t	 seq;	/* order of setting, among equal times */
	uint32_t	 idx;	/* position + 1 in the heap; 0 = not in it */
};

struct qheap {
	struct qheap_node	**v;
	size_t			  n, cap;
	uint32_t		  seq;
};

/* (re)sets n to fire at at, after every node already set for at */
void	qheap_set(struct qheap *, struct qheap_node *, time_t at);
void	qheap_del(struct qheap *, struct qheap_node *);	/* if in it */
struct qheap_node *qheap_top(const struct qheap *);	/* NULL: empty */
struct qheap_node *qheap_pop(struct qheap *);
void	qheap_free(struct qheap *);	/* the array; nodes are the caller's */
/* a before b: earlier time, or the same time set earlier */
int	qheap_before(const struct qheap_node *, const struct qheap_node *);

static inline int
qheap_pending(const struct qheap_node *n)
{
	return n->idx != 0;
}

#endif
