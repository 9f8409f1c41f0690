/*
 * submit.h - the local submission protocol between mailroot-sendmail and
 * queued (queued/submit.c), over the Unix socket named by the global
 * "submit-socket" setting.
 *
 * The injector sends one request and the message; queued answers once,
 * after the message is durable (or refused):
 *
 *   request: u32 length, then that many bytes (at most SUBMIT_HDR_MAX):
 *            u32 version (SUBMIT_VERSION), u32 flags (SUBMIT_F_*),
 *            str sender (-f), str full name (-F), u32 n, n x str rcpt,
 *            u64 size of the message that follows
 *   message: size bytes, LF or CRLF line ends, dot-stuffed by the
 *            injector (a line's leading "." doubled); at most
 *            SUBMIT_DATA_MAX, and the server's own limit applies
 *   reply:   u32 length, then u32 status (sysexits.h: 0 = queued),
 *            str text
 *
 * Integers and strings are encoded as on mailroot's IPC (buf.h).
 */
#ifndef MR_SUBMIT_H
#define MR_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define SUBMIT_VERSION	1
#define SUBMIT_HDR_MAX	(1024 * 1024)	/* the request, addresses included */
#define SUBMIT_DATA_MAX	((uint64_t)1 << 30)
#define SUBMIT_RCPT_MAX	10000
#define SUBMIT_NAME_MAX	256		/* -F full name */
#define SUBMIT_REPLY_MAX 4096

#define SUBMIT_F_SENDER	0x1		/* -f given (sender may be "") */
#define SUBMIT_F_HEADERS 0x2		/* -t: recipients from To/Cc/Bcc */
#define SUBMIT_F_ALL	0x3

struct submit_req {
	uint32_t	 flags;
	char		 sender[MR_PATH_MAX + 1];	/* "" = null sender */
	char		 fullname[SUBMIT_NAME_MAX + 1];	/* printable ASCII */
	char		**rcpts;
	size_t		 nrcpts;
	uint64_t	 size;
};

/* Parses a request's payload (after its length); 0, or -1 with *err.
 * Every address is a mailbox (mr_mailbox_parse); either recipients or
 * SUBMIT_F_HEADERS.  submit_req_free() after either result. */
int	submit_req_parse(const void *, size_t, struct submit_req *,
	    const char **err);
void	submit_req_free(struct submit_req *);
/* Encodes a request's payload (the u32 length not included). */
struct mr_buf;
void	submit_req_encode(const struct submit_req *, struct mr_buf *);

/* A reply's payload: 0, or -1 with *err. */
int	submit_reply_parse(const void *, size_t, uint32_t *status,
	    char *text, size_t textlen, const char **err);
void	submit_reply_encode(uint32_t status, const char *text,
	    struct mr_buf *);

#endif
