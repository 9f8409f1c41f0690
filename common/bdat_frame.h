/*
 * bdat_frame.h - CHUNKING (RFC 3030) framing, independent of any socket:
 * the BDAT command's arguments, and how many of the bytes that follow
 * belong to the chunk.
 *
 * A chunk's bytes are counted, never interpreted: a "." line or a bare
 * LF inside it ends nothing.  The caller passes them through a raw
 * mr_dstream (dstream.h), which stores line ends as CRLF as for DATA.
 */
#ifndef MR_BDAT_FRAME_H
#define MR_BDAT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define MR_BDAT_DIGITS	19	/* a chunk-size fits in uint64_t */

struct mr_bdat {
	uint64_t	 size;		/* chunk-size */
	int		 last;		/* end-marker LAST */
};

/*
 * Parses BDAT's argument, "chunk-size [SP LAST]" (RFC 3030 section 2:
 * chunk-size is 1*DIGIT, LAST case-insensitive).  0, or -1 when it is
 * malformed: then nobody can tell where the chunk ends.
 */
int	mr_bdat_parse(const char *arg, struct mr_bdat *);

/* The chunk being read: bytes still to come. */
struct mr_chunk {
	uint64_t	 left;
};

void	mr_chunk_init(struct mr_chunk *, const struct mr_bdat *);
/* Of n bytes available, how many belong to the chunk (left is lowered). */
size_t	mr_chunk_take(struct mr_chunk *, size_t n);
/* 1 when every byte of the chunk has been taken. */
int	mr_chunk_done(const struct mr_chunk *);

#endif
