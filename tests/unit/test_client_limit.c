/*
 * test_client_limit.c - the per-client counters of smtpd
 * (smtpd/client_limit.c): open connections and connections in the minute
 * by address, and the bound on what is remembered.
 *
 * The integration tests drive the limits through real sessions; these
 * check what a session cannot reach quickly: that addresses are told
 * apart by family and every byte, and that once more than 8192 other
 * clients have come and gone an idle client is forgotten (its count
 * starts again), while a client with an open connection never is.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtpd.h"

#define IDLE_MAX	8192	/* as in client_limit.c */

static struct sockaddr_storage
v4(uint32_t a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(a);
	return ss;
}

static struct sockaddr_storage
v6(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	return ss;
}

static struct client *
conn(struct client_table *t, struct sockaddr_storage ss, unsigned want_open,
    unsigned want_rate)
{
	unsigned open = 0, rate = 0;
	struct client *c;

	c = client_connect(t, (struct sockaddr *)&ss, &open, &rate);
	assert_non_null(c);
	assert_int_equal(open, want_open);
	assert_int_equal(rate, want_rate);
	return c;
}

static void
t_counts(void **state)
{
	struct client_table *t = client_table_new();
	struct client *a1, *a2, *b, *c6;
	struct sockaddr_storage un;
	unsigned open, rate;

	(void)state;
	a1 = conn(t, v4(0x7f000002), 1, 1);
	a2 = conn(t, v4(0x7f000002), 2, 2);
	assert_ptr_equal(a1, a2);
	b = conn(t, v4(0x7f000003), 1, 1);
	/* ::7f00:2 is not 127.0.0.2 */
	c6 = conn(t, v6("::7f00:2"), 1, 1);
	client_done(t, a1);
	client_done(t, a2);
	/* closed, still counted in the minute */
	a1 = conn(t, v4(0x7f000002), 1, 3);
	client_done(t, a1);
	client_done(t, b);
	client_done(t, c6);
	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;
	assert_null(client_connect(t, (struct sockaddr *)&un, &open, &rate));
	client_table_free(t);
}

static void
t_bounded(void **state)
{
	struct client_table *t = client_table_new();
	struct client *held, *c;
	uint32_t i;

	(void)state;
	c = conn(t, v4(0x0a000001), 1, 1);
	client_done(t, c);
	held = conn(t, v4(0x0a000002), 1, 1);
	/* more clients than are remembered come and go */
	for (i = 0; i < IDLE_MAX + 1; i++) {
		c = conn(t, v4(0xc0000000 + i), 1, 1);
		client_done(t, c);
	}
	/* the oldest idle one is forgotten: its minute starts again */
	c = conn(t, v4(0x0a000001), 1, 1);
	client_done(t, c);
	/* one with a connection open is kept */
	c = conn(t, v4(0x0a000002), 2, 2);
	assert_ptr_equal(c, held);
	client_done(t, c);
	client_done(t, held);
	client_table_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_counts),
		cmocka_unit_test(t_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
