/*
 * dstream.h - the SMTP DATA byte stream: dot-unstuffing, end-of-data
 * detection and header counting, independent of any socket.
 *
 * Only CRLF "." CRLF ends the data.  A bare LF or a bare CR is passed on
 * as CRLF but never starts a line that can end the data, so what is stored
 * has CRLF line ends only and no peer can make two hops disagree on where
 * a message ends (SMTP smuggling).  A NUL byte sets nul: the
 * caller refuses such a message (RFC 5321 forbids NUL without BINARYMIME,
 * and a next hop that drops it would read CRLF NUL "." CRLF as the end).
 * Used by smtpd for DATA and by queued for Pickup files, which IIS wrote
 * dot-stuffed.  In raw mode (BDAT chunks, RFC 3030) nothing ends the data
 * and no dot is removed; bare LF and bare CR are still stored as CRLF, as
 * for DATA, because the queue holds CRLF lines and every later hop must
 * read the same lines.
 *
 * lf_ends (set after init) is for a client whose every line ends in a
 * bare LF, as many printers and scanners send (IIS took their mail):
 * a bare LF then ends a line like CRLF does, so that LF "." LF, LF "."
 * CRLF and CRLF "." LF end the data too.  What is emitted is the same
 * (CRLF lines); only smtpd sets it, and only for a client it trusts
 * (smtp_session.c says which), never for Pickup or BDAT.
 */
#ifndef MR_DSTREAM_H
#define MR_DSTREAM_H

#include <stddef.h>
#include <time.h>

enum mr_dstate { MR_D_BOL, MR_D_MID, MR_D_CR, MR_D_DOT, MR_D_DOTCR };
/* reading the header section: at a line's start, in what may be a field
 * name or the white space after it (held back), or in the rest of a
 * field's line */
enum mr_hstate { MR_H_BOL = 0, MR_H_NAME, MR_H_WSP, MR_H_PASS };

typedef void (*mr_dstream_emit)(void *arg, const char *p, size_t n);
/*
 * Called once, where the header section ends, before anything after it is
 * emitted: at the empty line (body 0), or at a line that is no header
 * field (body 1: the caller may emit the empty line the message lacks).
 * What it emits goes at the end of the header section.
 */
typedef void (*mr_dstream_hdr_end)(void *arg, int body);

struct mr_dstream {
	enum mr_dstate	 st;
	int		 in_headers;	/* before the first empty line */
	unsigned	 received;	/* Received: header fields seen */
	int		 nul;		/* a NUL byte was seen */
	int		 raw;		/* BDAT: no dot-unstuffing, no end */
	int		 lf_ends;	/* a bare LF ends a line too */
	int		 has_date;	/* header fields seen */
	int		 has_msgid;
	enum mr_hstate	 hst;
	char		 hline[80];	/* field name being read, held */
	size_t		 hlen;
	mr_dstream_emit	 emit;
	mr_dstream_hdr_end hdr_end;	/* optional: set after init */
	void		*arg;
};

void	mr_dstream_init(struct mr_dstream *, mr_dstream_emit, void *arg);
/* Feeds n bytes; returns the bytes consumed.  *done becomes 1 when the
 * terminating CRLF.CRLF was consumed (the rest is the next command). */
size_t	mr_dstream_feed(struct mr_dstream *, const char *p, size_t n,
	    int *done);
/* Raw mode (set after init): the caller counts the bytes (BDAT). */
void	mr_dstream_set_raw(struct mr_dstream *);
/*
 * The end of raw data (BDAT LAST): a CR held back goes out as CRLF, and a
 * last line without its line end gets CRLF, so that what is stored ends
 * in CRLF like a message taken with DATA.
 */
void	mr_dstream_finish(struct mr_dstream *);
/*
 * The header fields RFC 5322 3.6 wants and d found missing: "Date:" (now,
 * local time) and "Message-ID: <qid@fqdn>", each ending in CRLF, as smtpd
 * and Pickup add them for add-missing-headers.  Writes at most len bytes
 * to out and returns the length ("" when nothing is missing or it would
 * not fit).
 */
size_t	mr_dstream_missing(const struct mr_dstream *, const char *qid,
	    const char *fqdn, time_t now, char *out, size_t len);
/* An RFC 5322 date-time for t in local time ("Mon, 30 Nov 2026 ..."). */
void	mr_rfc5322_date(time_t t, char *out, size_t len);

#endif
