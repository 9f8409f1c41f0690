/*
 * ctl_client.h - the client end of the control socket (ctl_proto.h),
 * shared by mailrootctl(8) and mailroot-sendmail's -bp and -q
 * (common/ctl_client.c).
 */
#ifndef MR_CTL_CLIENT_H
#define MR_CTL_CLIENT_H

#include <stddef.h>

#include "buf.h"

/* Adds the token "name" or "name=val" (val non-NULL) to a request. */
void	mr_ctl_token(struct mr_buf *, const char *name, const char *val);

enum mr_ctl_outcome {
	MR_CTL_ANSWER_OK,	/* "ok": out holds the output */
	MR_CTL_ANSWER_ERROR,	/* "error TEXT": out holds TEXT */
	MR_CTL_DENIED,		/* the socket's mode or queued's check
				 * refused the caller: out says */
	MR_CTL_UNREACHABLE,	/* no connection: out says why */
	MR_CTL_BROKEN		/* no or a malformed answer: out says */
};

/*
 * Sends the request req (tokens, without the length) to the control
 * socket at path and reads the whole answer (at most MR_CTL_ANSWER_MAX
 * bytes).  out (initialised by the caller) receives the output or a
 * one-line reason, NUL-terminated; the outcome says which.
 */
enum mr_ctl_outcome mr_ctl_call(const char *path, const struct mr_buf *req,
	    struct mr_buf *out);

#define MR_CTL_ANSWER_MAX	(256 * 1024 * 1024)

#endif
