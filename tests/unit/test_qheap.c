/*
 * test_qheap.c - unit tests for the scheduler's timer heap (qheap.c):
 * earliest first, equal times in the order they were set, a node moved
 * or removed in place, and the heap property after many random changes.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qheap.h"

#define N	5000

static void
test_order(void **state)
{
	struct qheap h = { 0 };
	struct qheap_node n[5] = { { 0 } };
	const time_t at[5] = { 50, 10, 30, 10, 20 };
	const int want[5] = { 1, 3, 4, 2, 0 };
	int i;

	(void)state;
	for (i = 0; i < 5; i++)
		qheap_set(&h, &n[i], at[i]);
	for (i = 0; i < 5; i++)
		assert_true(qheap_pending(&n[i]));
	for (i = 0; i < 5; i++) {
		assert_ptr_equal(qheap_top(&h), &n[want[i]]);
		assert_ptr_equal(qheap_pop(&h), &n[want[i]]);
		assert_false(qheap_pending(&n[want[i]]));
	}
	assert_null(qheap_pop(&h));
	qheap_free(&h);
}

/* Setting a node again moves it (behind nodes of the same time). */
static void
test_move_and_del(void **state)
{
	struct qheap h = { 0 };
	struct qheap_node a = { 0 }, b = { 0 }, c = { 0 };

	(void)state;
	qheap_set(&h, &a, 10);
	qheap_set(&h, &b, 20);
	qheap_set(&h, &c, 30);
	qheap_set(&h, &c, 5);
	assert_ptr_equal(qheap_top(&h), &c);
	qheap_set(&h, &c, 10);		/* same time as a, set later */
	assert_ptr_equal(qheap_pop(&h), &a);
	assert_ptr_equal(qheap_pop(&h), &c);
	qheap_del(&h, &b);
	assert_false(qheap_pending(&b));
	qheap_del(&h, &b);		/* twice: nothing happens */
	assert_null(qheap_top(&h));
	qheap_free(&h);
}

static void
check_heap(const struct qheap *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		assert_int_equal(h->v[i]->idx, i + 1);
		if (i > 0)
			assert_false(qheap_before(h->v[i], h->v[(i - 1) / 2]));
	}
}

/* Random sets, moves and removals: the heap stays a heap and pops in
 * order of (time, setting). */
static void
test_random(void **state)
{
	struct qheap h = { 0 };
	struct qheap_node *n = calloc(N, sizeof(*n)), *p, *prev = NULL;
	size_t i, popped = 0, left = 0;

	(void)state;
	assert_non_null(n);
	srand(17);
	for (i = 0; i < 4 * N; i++) {
		struct qheap_node *x = &n[(size_t)rand() % N];

		if (rand() % 5 == 0)
			qheap_del(&h, x);
		else
			qheap_set(&h, x, rand() % 1000);
	}
	check_heap(&h);
	for (i = 0; i < N; i++)
		left += qheap_pending(&n[i]);
	assert_int_equal(left, h.n);
	while ((p = qheap_pop(&h)) != NULL) {
		if (prev != NULL)
			assert_false(qheap_before(p, prev));
		prev = p;
		popped++;
	}
	assert_int_equal(popped, left);
	qheap_free(&h);
	free(n);
}

/* The order of setting survives the counter wrapping. */
static void
test_seq_wrap(void **state)
{
	struct qheap h = { 0 };
	struct qheap_node a = { 0 }, b = { 0 };

	(void)state;
	h.seq = UINT32_MAX;
	qheap_set(&h, &a, 7);
	qheap_set(&h, &b, 7);
	assert_int_equal(b.seq, 0);
	assert_ptr_equal(qheap_pop(&h), &a);
	assert_ptr_equal(qheap_pop(&h), &b);
	qheap_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_move_and_del),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_seq_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
