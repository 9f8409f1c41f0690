/*
 * bdat.h - smtpd's side of CHUNKING (RFC 3030): the state of BDAT in one
 * transaction and the reading of a chunk off the session's input.
 */
#ifndef MR_SMTPD_BDAT_H
#define MR_SMTPD_BDAT_H

#include <event2/buffer.h>

#include "bdat_frame.h"
#include "dstream.h"

struct bdat_state {
	struct mr_bdat	 cmd;		/* the BDAT being served */
	struct mr_chunk	 chunk;		/* its bytes still to read */
	int		 seen;		/* BDAT began this message */
	int		 pending;	/* waiting for queued's file */
	int		 discard;	/* the chunk is read and dropped */
	int		 reset;		/* ... and the transaction ends */
	char		 refusal[128];	/* ... and this is the reply */
};

/* The chunk of a refused BDAT is read and thrown away, then why is sent
 * (RFC 3030 section 3: its bytes are not commands). */
void	bdat_discard(struct bdat_state *, const char *why, int reset);
/* Reads what of the chunk is in in: through ds, or dropped when
 * discarding.  1 when the chunk has been read whole. */
int	bdat_read(struct bdat_state *, struct evbuffer *in,
	    struct mr_dstream *ds);

#endif
