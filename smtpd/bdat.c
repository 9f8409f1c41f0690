/*
 * bdat.c - reading BDAT chunks (RFC 3030) off an SMTP session's input.
 *
 * Security: a chunk is exactly as long as the client said, and is read
 * whole whatever the reply will be -- refused, over the size limit or
 * after the transaction failed -- so that none of its bytes is ever
 * taken for a command (smuggling).  The bytes kept go through a raw
 * mr_dstream: nothing in them ends the message, no dot is removed, bare
 * LF and bare CR are stored as CRLF and a NUL is noted, as for DATA.
 * Memory: nothing is buffered here; libevent's input buffer is bounded
 * by the session's read watermark.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "bdat.h"

void
bdat_discard(struct bdat_state *b, const char *why, int reset)
{
	b->discard = 1;
	b->reset = reset;
	snprintf(b->refusal, sizeof(b->refusal), "%s", why);
}

int
bdat_read(struct bdat_state *b, struct evbuffer *in, struct mr_dstream *ds)
{
	struct evbuffer_iovec vec[8];
	size_t take;
	int i, nv;

	while (!mr_chunk_done(&b->chunk) && evbuffer_get_length(in) > 0) {
		if (b->discard) {
			take = mr_chunk_take(&b->chunk,
			    evbuffer_get_length(in));
			if (evbuffer_drain(in, take) == -1)
				return 0;
			continue;
		}
		nv = evbuffer_peek(in, -1, NULL, vec, 8);
		if (nv > 8)
			nv = 8;
		for (i = 0; i < nv && !mr_chunk_done(&b->chunk); i++) {
			int done;

			take = mr_chunk_take(&b->chunk, vec[i].iov_len);
			(void)mr_dstream_feed(ds, vec[i].iov_base, take,
			    &done);
			if (evbuffer_drain(in, take) == -1)
				return 0;
		}
	}
	return mr_chunk_done(&b->chunk);
}
