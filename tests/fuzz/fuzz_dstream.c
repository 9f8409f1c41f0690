/*
 * fuzz_dstream.c - libFuzzer target for the DATA stream (dstream.c).
 *
 * The first two input bytes choose where the rest is split; the two parts
 * are fed in two calls, as bytes arrive from a socket.  Beyond "no crash",
 * the stream must keep the promise of dstream.h: only CRLF "." CRLF (or
 * "." CRLF at the very start) ends the data, and the first one does; the
 * output holds no bare LF or bare CR and at most twice the input (plus the
 * empty line hdr_end adds, once); and feeding the same bytes in one call
 * gives the same output, end and state, so nothing depends on how the
 * peer's bytes were cut into packets.  The same bytes go through once more
 * in lf_ends mode, which must end at the first "." line after a line
 * start (the beginning, or any LF) and emit the same CRLF-only text.
 */
#include "config.h"

#include "fuzz.h"
#include "dstream.h"

struct sink {
	char	*data;
	size_t	 len;
	size_t	 cap;
	int	 ends;		/* hdr_end calls */
};

static void
emit(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	CHECK(n > 0 && n <= s->cap - s->len);
	memcpy(s->data + s->len, p, n);
	s->len += n;
}

/* As smtpd: the empty line a message without header section lacks. */
static void
hdr_end(void *arg, int body)
{
	struct sink *s = arg;

	s->ends++;
	if (body)
		emit(s, "\r\n", 2);
}

/* Where the data must end: after the first CRLF.CRLF, or 0 if nowhere. */
static size_t
expected_end(const char *p, size_t n)
{
	const char *t;

	if (n >= 3 && memcmp(p, ".\r\n", 3) == 0)
		return 3;
	if ((t = memmem(p, n, "\r\n.\r\n", 5)) != NULL)
		return (size_t)(t - p) + 5;
	return 0;
}

/* lf_ends: after the first "." LF or "." CRLF at a line's start. */
static size_t
expected_end_lf(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0 && p[i - 1] != '\n')
			continue;
		if (p[i] != '.' || i + 1 >= n)
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void
check_output(const struct sink *s, size_t consumed)
{
	size_t i;

	CHECK(s->len <= 2 * consumed + 2);
	CHECK(s->ends <= 1);
	for (i = 0; i < s->len; i++) {
		if (s->data[i] == '\n')
			CHECK(i > 0 && s->data[i - 1] == '\r');
		/* a CR waiting for its LF is held back, never emitted */
		if (s->data[i] == '\r')
			CHECK(i + 1 < s->len && s->data[i + 1] == '\n');
	}
}

/* Feeds p in one call, or two when split < n; returns bytes consumed. */
static size_t
feed(struct mr_dstream *d, const char *p, size_t n, size_t split, int *done)
{
	size_t used;

	if (split >= n)
		return mr_dstream_feed(d, p, n, done);
	used = mr_dstream_feed(d, p, split, done);
	CHECK(used <= split);
	if (*done)
		return used;
	CHECK(used == split);
	used = mr_dstream_feed(d, p + split, n - split, done);
	CHECK(used <= n - split);
	return split + used;
}

/* The same input fed whole (d2) and in two pieces (d1), lf_ends as given. */
struct pair {
	struct mr_dstream d1, d2;
	struct sink s1, s2;
	size_t used1, used2;
	int done1, done2;
};

static void
feed_pair(struct pair *r, const char *p, size_t n, size_t split, int lf_ends)
{
	size_t end;

	r->s1.len = r->s2.len = 0;
	r->s1.ends = r->s2.ends = 0;
	mr_dstream_init(&r->d1, emit, &r->s1);
	r->d1.hdr_end = hdr_end;
	r->d1.lf_ends = lf_ends;
	r->used1 = feed(&r->d1, p, n, split, &r->done1);
	mr_dstream_init(&r->d2, emit, &r->s2);
	r->d2.hdr_end = hdr_end;
	r->d2.lf_ends = lf_ends;
	r->used2 = mr_dstream_feed(&r->d2, p, n, &r->done2);

	CHECK(r->used1 <= n && r->used2 <= n);
	end = lf_ends ? expected_end_lf(p, n) : expected_end(p, n);
	if (end != 0)
		CHECK(r->done2 && r->used2 == end);
	else
		CHECK(!r->done2 && r->used2 == n);
	check_output(&r->s2, r->used2);
	CHECK(r->done1 == r->done2 && r->used1 == r->used2);
	CHECK(r->s1.len == r->s2.len &&
	    memcmp(r->s1.data, r->s2.data, r->s1.len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pair r;
	const char *p;
	size_t n, split;

	if (size < 2)
		return 0;
	p = (const char *)data + 2;
	n = size - 2;
	split = ((size_t)data[0] << 8 | data[1]) % (n + 1);

	memset(&r, 0, sizeof(r));
	r.s1.cap = r.s2.cap = 2 * n + 3;
	r.s1.data = malloc(r.s1.cap);
	r.s2.data = malloc(r.s2.cap);
	CHECK(r.s1.data != NULL && r.s2.data != NULL);

	feed_pair(&r, p, n, split, 0);
	CHECK(r.d1.st == r.d2.st && r.d1.in_headers == r.d2.in_headers);
	CHECK(r.d1.received == r.d2.received && r.d1.hlen == r.d2.hlen);
	CHECK(r.d1.hst == r.d2.hst && r.s1.ends == r.s2.ends);
	CHECK(r.s2.ends == !r.d2.in_headers);
	CHECK(r.d1.has_date == r.d2.has_date &&
	    r.d1.has_msgid == r.d2.has_msgid);
	CHECK(r.d1.nul == r.d2.nul &&
	    r.d2.nul == (memchr(p, '\0', r.used2) != NULL));

	feed_pair(&r, p, n, split, 1);

	free(r.s1.data);
	free(r.s2.data);
	return 0;
}
