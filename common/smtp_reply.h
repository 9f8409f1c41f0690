/*
 * smtp_reply.h - one SMTP reply (RFC 5321 4.2) read a line at a time
 * from a remote server: the code, the line count and a cleaned text.
 */
#ifndef MR_SMTP_REPLY_H
#define MR_SMTP_REPLY_H

#include <stddef.h>

#include "buf.h"

#define MR_REPLY_LINE_MAX	2048	/* RFC 5321 says 512; be lenient */
#define MR_REPLY_LINES_MAX	256	/* an endless reply ends here */
#define MR_REPLY_TEXT_MAX	1024	/* kept for logs and results */

struct mr_reply {
	int		 code;		/* of the lines so far, 0 before */
	unsigned	 nlines;
	struct mr_buf	*text;		/* the lines' text, joined by " " */
};

/*
 * Adds line l (n bytes, CRLF removed) to the reply: 1 when the reply is
 * complete, 0 when more lines follow, -1 when the line is malformed, its
 * code differs from the earlier lines', or the reply is too long.  After
 * 1 or -1 the caller resets code, nlines and text for the next reply.
 */
int	mr_reply_line(struct mr_reply *, const char *l, size_t n);

#endif
