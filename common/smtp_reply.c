/*
 * smtp_reply.c - the parser of SMTP replies from remote servers
 * (RFC 5321 4.2): "ddd-text" lines, then "ddd text" or "ddd", all with
 * the same code.  deliverd reads every reply through it.
 *
 * Security: every byte is hostile.  A line is read within its length
 * (no NUL is needed or trusted), the code is three digits from 200 to
 * 599, a reply has at most MR_REPLY_LINES_MAX lines of at most
 * MR_REPLY_LINE_MAX bytes, and the text kept is at most
 * MR_REPLY_TEXT_MAX printable ASCII bytes (any other byte becomes '?'),
 * so it is fit for a log line or a delivery status notification.
 */
#include "config.h"

#include <stddef.h>

#include "buf.h"
#include "smtp_reply.h"

/* Appends printable text to the reply, bounded. */
static void
reply_text(struct mr_buf *b, const char *t, size_t n)
{
	size_t i;

	if (b->len > 0 && b->len < MR_REPLY_TEXT_MAX)
		mr_buf_add(b, " ", 1);
	for (i = 0; i < n && b->len < MR_REPLY_TEXT_MAX; i++) {
		char c = t[i];

		if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
			c = '?';
		mr_buf_add(b, &c, 1);
	}
}

int
mr_reply_line(struct mr_reply *r, const char *l, size_t n)
{
	int code;

	if (n < 3 || n > MR_REPLY_LINE_MAX || l[0] < '2' || l[0] > '5' ||
	    l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' ||
	    (n > 3 && l[3] != ' ' && l[3] != '-'))
		return -1;
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (r->nlines > 0 && code != r->code)
		return -1;
	if (++r->nlines > MR_REPLY_LINES_MAX)
		return -1;
	r->code = code;
	if (n > 4)
		reply_text(r->text, l + 4, n - 4);
	return n == 3 || l[3] == ' ';
}
