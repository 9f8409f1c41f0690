/*
 * fuzz_smtp_reply.c - libFuzzer target for the parser of SMTP replies
 * from remote servers (common/smtp_reply.c), as deliverd reads them.
 *
 * The input is what a server sends, cut into lines at LF (a CR before it
 * removed, as evbuffer_readln does).  Beyond "no crash", each answer must
 * keep the promise of smtp_reply.h: a complete reply has a code from 200
 * to 599 and between 1 and MR_REPLY_LINES_MAX lines, all with that code;
 * the text kept is at most MR_REPLY_TEXT_MAX printable ASCII bytes; and
 * a line longer than MR_REPLY_LINE_MAX is refused.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "smtp_reply.h"

static void
check_text(const struct mr_buf *b)
{
	size_t i;

	CHECK(b->len <= MR_REPLY_TEXT_MAX);
	for (i = 0; i < b->len; i++)
		CHECK(b->data[i] >= 0x20 && b->data[i] < 0x7f);
}

static void
check_line(struct mr_reply *r, const char *l, size_t n)
{
	int before = r->code;
	unsigned lines = r->nlines;
	int rc = mr_reply_line(r, l, n);

	check_text(r->text);
	if (n > MR_REPLY_LINE_MAX || n < 3)
		CHECK(rc == -1);
	if (rc == -1) {
		r->code = 0;
		r->nlines = 0;
		mr_buf_reset(r->text);
		return;
	}
	CHECK(r->code >= 200 && r->code <= 599);
	CHECK(r->nlines == lines + 1 && r->nlines <= MR_REPLY_LINES_MAX);
	CHECK(lines == 0 || r->code == before);
	CHECK(r->code == (l[0] - '0') * 100 + (l[1] - '0') * 10 +
	    (l[2] - '0'));
	CHECK(rc == (n == 3 || l[3] == ' '));
	if (rc == 1) {
		r->code = 0;
		r->nlines = 0;
		mr_buf_reset(r->text);
	}
}

/* A copy of exactly the line's bytes: ASan sees any read beyond. */
static void
check_copy(struct mr_reply *r, const char *p, size_t n)
{
	char *l = malloc(n ? n : 1);

	CHECK(l != NULL);
	memcpy(l, p, n);
	check_line(r, l, n > 0 && l[n - 1] == '\r' ? n - 1 : n);
	free(l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	struct mr_buf text;
	struct mr_reply r = { 0, 0, &text };
	size_t n;

	mr_buf_init(&text);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl != NULL ? nl : end) - p);
		check_copy(&r, p, n);
		p += n + (nl != NULL);
	}
	mr_buf_free(&text);
	return 0;
}
