/*
 * fuzz_bdat.c - libFuzzer target for BDAT framing (bdat_frame.c) and the
 * raw DATA stream chunks go through (dstream.c, raw mode).
 *
 * The input is what a client sends after RCPT: command lines, and after
 * each "BDAT n [LAST]" line n bytes of chunk, framed as smtpd frames them
 * (a line that is no BDAT is skipped; a malformed BDAT ends the session,
 * as smtpd closes it).  Beyond "no crash": a parsed size has at most
 * MR_BDAT_DIGITS digits and prints back as the digits given; a chunk takes
 * exactly min(n, what is left) bytes; the stored message holds the
 * chunks' bytes in order with only the line ends changed (bare LF and
 * bare CR become CRLF, nothing is removed: no dot, no "." line), has CRLF
 * line ends only, ends in CRLF once finished (after LAST; here also where
 * the input ends), and is the same however the chunk was cut into reads.
 */
#include "config.h"

#include <inttypes.h>

#include "fuzz.h"
#include "bdat_frame.h"
#include "dstream.h"

struct sink {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

static void
emit(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	CHECK(n > 0 && n <= s->cap - s->len);
	memcpy(s->data + s->len, p, n);
	s->len += n;
}

/* a equals b once CR and LF are taken out of both */
static int
same_but_line_ends(const char *a, size_t na, const char *b, size_t nb)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < na && (a[i] == '\r' || a[i] == '\n'))
			i++;
		while (j < nb && (b[j] == '\r' || b[j] == '\n'))
			j++;
		if (i == na || j == nb)
			return i == na && j == nb;
		if (a[i++] != b[j++])
			return 0;
	}
}

static void
check_crlf(const struct sink *s)
{
	size_t i;

	for (i = 0; i < s->len; i++) {
		if (s->data[i] == '\n')
			CHECK(i > 0 && s->data[i - 1] == '\r');
		if (s->data[i] == '\r')
			CHECK(i + 1 < s->len && s->data[i + 1] == '\n');
	}
}

/* One "BDAT" argument: parsed, and checked against its digits. */
static int
parse_arg(const char *arg, struct mr_bdat *b)
{
	char back[32];
	size_t nd = strspn(arg, "0123456789"), z = 0;

	if (mr_bdat_parse(arg, b) == -1)
		return -1;
	CHECK(nd > 0 && nd <= MR_BDAT_DIGITS);
	while (z + 1 < nd && arg[z] == '0')
		z++;
	snprintf(back, sizeof(back), "%" PRIu64, b->size);
	CHECK(strlen(back) == nd - z && memcmp(back, arg + z, nd - z) == 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *eol;
	struct mr_dstream d1, d2;
	struct sink s1, s2, in;
	struct mr_chunk c;
	struct mr_bdat b;
	char line[64];
	size_t pos = 0, take, cut;
	int done, last = 0;

	s1.cap = s2.cap = 2 * size + 3;
	in.cap = size + 1;
	s1.len = s2.len = in.len = 0;
	s1.data = malloc(s1.cap);
	s2.data = malloc(s2.cap);
	in.data = malloc(in.cap);
	CHECK(s1.data != NULL && s2.data != NULL && in.data != NULL);
	mr_dstream_init(&d1, emit, &s1);
	mr_dstream_set_raw(&d1);
	mr_dstream_init(&d2, emit, &s2);
	mr_dstream_set_raw(&d2);
	while (!last && pos < size &&
	    (eol = memmem(p + pos, size - pos, "\r\n", 2)) != NULL) {
		size_t n = (size_t)(eol - (p + pos));

		if (n < 5 || n >= sizeof(line) ||
		    strncasecmp(p + pos, "BDAT ", 5) != 0) {
			pos += n + 2;		/* another command */
			continue;
		}
		memcpy(line, p + pos + 5, n - 5);
		line[n - 5] = '\0';
		if (memchr(line, '\0', n - 5) != NULL ||
		    parse_arg(line, &b) == -1)
			break;			/* smtpd closes */
		pos += n + 2;
		mr_chunk_init(&c, &b);
		take = mr_chunk_take(&c, size - pos);
		CHECK(take == (b.size < size - pos ? b.size : size - pos));
		CHECK(mr_chunk_done(&c) == (take == b.size));
		cut = take / 2;
		CHECK(mr_dstream_feed(&d1, p + pos, cut, &done) == cut);
		CHECK(!done);
		CHECK(mr_dstream_feed(&d1, p + pos + cut, take - cut,
		    &done) == take - cut);
		CHECK(!done);
		CHECK(mr_dstream_feed(&d2, p + pos, take, &done) == take);
		CHECK(!done);
		if (take > 0)
			emit(&in, p + pos, take);
		pos += take;
		last = b.last && mr_chunk_done(&c);
	}
	/* LAST, or where the input ends: a field name may be held back */
	(void)last;
	mr_dstream_finish(&d1);
	mr_dstream_finish(&d2);
	CHECK(s1.len == 0 || (s1.len >= 2 &&
	    memcmp(s1.data + s1.len - 2, "\r\n", 2) == 0));
	check_crlf(&s2);
	CHECK(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0);
	CHECK(s2.len <= 2 * in.len + 2);
	CHECK(same_but_line_ends(in.data, in.len, s2.data, s2.len));
	free(in.data);
	free(s1.data);
	free(s2.data);
	return 0;
}
