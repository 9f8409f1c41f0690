/*
 * test_bdat.c - BDAT framing (common/bdat_frame.c) and the raw mode of
 * the DATA stream (common/dstream.c) that BDAT chunks go through.
 *
 * Every argument row is a line a client can send after "BDAT ".  Every
 * chunk row is fed whole and split at every position (chunks arrive in
 * pieces, and a message in several chunks), and must store the same
 * bytes: nothing in a chunk ends the message or loses a dot, and line
 * ends come out as CRLF.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "bdat_frame.h"
#include "dstream.h"

struct acase {
	const char	*in;
	int		 ok;
	uint64_t	 size;
	int		 last;
};

static const struct acase args[] = {
	{ "0", 1, 0, 0 },
	{ "0 LAST", 1, 0, 1 },
	{ "123 last", 1, 123, 1 },
	{ "00042 LaSt", 1, 42, 1 },
	{ "9999999999999999999", 1, 9999999999999999999ULL, 0 },
	{ "18446744073709551615", 0, 0, 0 },	/* 20 digits */
	{ "99999999999999999999 LAST", 0, 0, 0 },
	{ "", 0, 0, 0 },
	{ "LAST", 0, 0, 0 },
	{ " 12", 0, 0, 0 },
	{ "12 ", 0, 0, 0 },
	{ "12  LAST", 0, 0, 0 },
	{ "12 LAST ", 0, 0, 0 },
	{ "12 LASTX", 0, 0, 0 },
	{ "12 FIRST", 0, 0, 0 },
	{ "-1", 0, 0, 0 },
	{ "+1", 0, 0, 0 },
	{ "0x10", 0, 0, 0 },
	{ "1.5", 0, 0, 0 },
	{ "12\tLAST", 0, 0, 0 },
};

static void
t_args(void **state)
{
	struct mr_bdat b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(args) / sizeof(*args); i++) {
		int rc = mr_bdat_parse(args[i].in, &b);

		if (rc != (args[i].ok ? 0 : -1))
			fail_msg("\"%s\": got %d", args[i].in, rc);
		if (!args[i].ok)
			continue;
		assert_true(b.size == args[i].size);
		assert_int_equal(b.last, args[i].last);
	}
}

static void
t_chunk_count(void **state)
{
	struct mr_bdat b = { 10, 0 };
	struct mr_chunk c;

	(void)state;
	mr_chunk_init(&c, &b);
	assert_int_equal(mr_chunk_take(&c, 4), 4);
	assert_false(mr_chunk_done(&c));
	assert_int_equal(mr_chunk_take(&c, 100), 6);
	assert_true(mr_chunk_done(&c));
	assert_int_equal(mr_chunk_take(&c, 100), 0);
	b.size = 0;
	mr_chunk_init(&c, &b);
	assert_true(mr_chunk_done(&c));
}

struct sink {
	char	 buf[1024];
	size_t	 len;
};

static void
collect(void *arg, const char *p, size_t n)
{
	struct sink *k = arg;

	assert_true(k->len + n <= sizeof(k->buf));
	memcpy(k->buf + k->len, p, n);
	k->len += n;
}

struct ccase {
	const char	*in;
	const char	*out;
	int		 nul;
};

static const struct ccase chunks[] = {
	{ "a\r\n.\r\nb\r\n", "a\r\n.\r\nb\r\n", 0 },
	{ ".\r\n", ".\r\n", 0 },
	{ "..x\r\n.", "..x\r\n.\r\n", 0 },
	{ "a\nb\rc\r\n", "a\r\nb\r\nc\r\n", 0 },
	{ "a\r", "a\r\n", 0 },
	{ "no end", "no end\r\n", 0 },
	{ "", "", 0 },
	{ "\r\n.\r\n\r\n", "\r\n.\r\n\r\n", 0 },
	{ "S: x\r\n\r\n.\n.\r.", "S: x\r\n\r\n.\r\n.\r\n.\r\n", 0 },
};

/* in fed in two pieces split at cut, then finished */
static void
feed_split(const struct ccase *cc, size_t cut)
{
	struct mr_dstream d;
	struct sink k;
	size_t n = strlen(cc->in);
	int done;

	memset(&k, 0, sizeof(k));
	mr_dstream_init(&d, collect, &k);
	mr_dstream_set_raw(&d);
	assert_int_equal(mr_dstream_feed(&d, cc->in, cut, &done), cut);
	assert_int_equal(done, 0);
	assert_int_equal(mr_dstream_feed(&d, cc->in + cut, n - cut, &done),
	    n - cut);
	assert_int_equal(done, 0);
	mr_dstream_finish(&d);
	if (k.len != strlen(cc->out) || memcmp(k.buf, cc->out, k.len) != 0)
		fail_msg("\"%s\" cut at %zu: got \"%.*s\"", cc->in, cut,
		    (int)k.len, k.buf);
	assert_int_equal(d.nul, cc->nul);
}

static void
t_raw_chunks(void **state)
{
	size_t i, cut;

	(void)state;
	for (i = 0; i < sizeof(chunks) / sizeof(*chunks); i++)
		for (cut = 0; cut <= strlen(chunks[i].in); cut++)
			feed_split(&chunks[i], cut);
}

static void
t_raw_nul(void **state)
{
	struct mr_dstream d;
	struct sink k;
	int done;

	(void)state;
	memset(&k, 0, sizeof(k));
	mr_dstream_init(&d, collect, &k);
	mr_dstream_set_raw(&d);
	(void)mr_dstream_feed(&d, "a\0b", 3, &done);
	assert_int_equal(d.nul, 1);
}

int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_args),
		cmocka_unit_test(t_chunk_count),
		cmocka_unit_test(t_raw_chunks),
		cmocka_unit_test(t_raw_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
