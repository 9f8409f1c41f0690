/*
 * test_qstr.c - unit tests for queued's shared strings (qstr.c): one copy
 * per distinct text, counted; the last reference frees it; qstr_set
 * replaces a field (also with its own text); the table grows and keeps
 * every string.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queued.h"

#define N	3000

static void
test_shared(void **state)
{
	char buf[64];
	const char *a, *b, *c;

	(void)state;
	snprintf(buf, sizeof(buf), "451 4.3.0 Try again later");
	a = qstr_get(buf);
	b = qstr_get("451 4.3.0 Try again later");
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, buf);
	assert_string_equal(a, buf);
	c = qstr_get("250 2.0.0 OK");
	assert_ptr_not_equal(a, c);
	qstr_put(a);
	assert_string_equal(b, buf);	/* b still holds it */
	qstr_put(b);
	qstr_put(c);
	assert_null(qstr_get(NULL));
	qstr_put(NULL);
}

static void
test_set(void **state)
{
	const char *f = NULL, *g;

	(void)state;
	qstr_set(&f, "client.example");
	assert_string_equal(f, "client.example");
	qstr_set(&f, f);		/* its own text: still held */
	assert_string_equal(f, "client.example");
	g = qstr_get("client.example");
	assert_ptr_equal(f, g);
	qstr_set(&f, "other.example");
	assert_string_equal(f, "other.example");
	assert_string_equal(g, "client.example");
	qstr_set(&f, NULL);
	assert_null(f);
	qstr_put(g);
}

/* Many distinct strings, each taken twice: the table grows, every
 * string keeps its text, and all go (ASan's leak check in CI). */
static void
test_many(void **state)
{
	static const char *v[N];
	char buf[32];
	size_t i;

	(void)state;
	for (i = 0; i < N; i++) {
		snprintf(buf, sizeof(buf), "user%zu@remote.test", i);
		v[i] = qstr_get(buf);
		assert_ptr_equal(qstr_get(buf), v[i]);
	}
	for (i = 0; i < N; i++) {
		snprintf(buf, sizeof(buf), "user%zu@remote.test", i);
		assert_string_equal(v[i], buf);
		qstr_put(v[i]);
		qstr_put(v[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
