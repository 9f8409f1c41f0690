/*
 * masq_hdr.h - the From fields of a header section with the domain of
 * every address replaced (`masquerade-from', common/masq_hdr.c).
 */
#ifndef MR_MASQ_HDR_H
#define MR_MASQ_HDR_H

#include <stddef.h>

#include "buf.h"

#define MR_MASQ_HEAD_MAX	(64 * 1024)	/* bytes of header read */

/*
 * hdr: the first len bytes of a message (eof: they are all of it).
 * When a From field among them has an address to rewrite, out receives
 * the bytes that replace hdr[0 .. *skip) -- the same fields, the From
 * fields with each address's domain replaced by domain -- and 1 is
 * returned; otherwise 0 (out undefined).  Only whole fields are
 * rewritten: one that goes on past len is left alone.
 */
int	mr_masq_from(const char *hdr, size_t len, int eof,
	    const char *domain, struct mr_buf *out, size_t *skip);

#endif
