/*
 * pickup_parse.h - a Pickup file into an envelope and the message to
 * queue: a pure function of the file's bytes and the options, for
 * queued/pickup.c and the fuzz target.
 */
#ifndef MR_PICKUP_PARSE_H
#define MR_PICKUP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "buf.h"

#define PICKUP_RCPTS_MAX	10000	/* recipients of one file */

struct pickup_opts {
	uint64_t	 max_size;	/* the server's message-size limit */
	int		 add_headers;	/* Date and Message-ID when missing */
	const char	*qid;		/* the queue id it will have */
	const char	*fqdn;		/* for Received and Message-ID */
	time_t		 now;
	/* mailroot-sendmail (queued/submit.c) sets these; Pickup not */
	const char	*origin;	/* Received "from"; NULL: pickup */
	int		 no_envelope;	/* read no x-sender/x-receiver line */
	const char	*sender;	/* no_envelope: the envelope sender */
	char *const	*rcpts;		/* no_envelope: the recipients ... */
	size_t		 nrcpts;
	int		 hdr_rcpts;	/* ... plus To/Cc/Bcc's (-t) */
	const char	*from_field;	/* add_headers: "From: ..." value
					 * added when there is none */
};

struct pickup_msg {
	char		 sender[MR_PATH_MAX + 1];	/* "" = null sender */
	char		**rcpts;
	size_t		 nrcpts;
	struct mr_buf	 data;		/* the message as it is queued */
	int		 eightbit;	/* data holds a byte above 127 */
	int		 cut;		/* bytes after a "." line ignored */
	const char	*err;		/* why the file was refused */
	char		 errbuf[128];
};

/* 0 and m filled, or -1 with m->err (m->data then holds nothing of use);
 * either way pickup_msg_free(m) after. */
int	pickup_parse(const char *file, size_t len, const struct pickup_opts *,
	    struct pickup_msg *m);
void	pickup_msg_free(struct pickup_msg *);

#endif
