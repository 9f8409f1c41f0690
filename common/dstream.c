/*
 * dstream.c - DATA stream state machine (see dstream.h).
 *
 * Security: input is untrusted bytes of any value; the machine keeps a
 * constant amount of state and emits only bytes it was given, plus CR
 * before a bare LF and LF after a bare CR: what it emits has CRLF line
 * ends only, in lf_ends mode too (only where the data ends differs).  A NUL byte is noted (the caller refuses the message).  At
 * most the start of one line (sizeof hline bytes) is held back while the
 * header section is read.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dstream.h"

void
mr_dstream_init(struct mr_dstream *d, mr_dstream_emit emit, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->st = MR_D_BOL;
	d->in_headers = 1;
	d->emit = emit;
	d->arg = arg;
}

/* RFC 5322 2.2: a field name is printable US-ASCII but the colon. */
static int
ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* A header field named in hline (before any white space) begins: note
 * what counts. */
static void
field_seen(struct mr_dstream *d)
{
	size_t n = 0;

	while (n < d->hlen && d->hline[n] != ' ' && d->hline[n] != '\t')
		n++;
	if (n == 8 && strncasecmp(d->hline, "received", 8) == 0)
		d->received++;	/* hop count, RFC 5321 6.3 */
	else if (n == 4 && strncasecmp(d->hline, "date", 4) == 0)
		d->has_date = 1;
	else if (n == 10 && strncasecmp(d->hline, "message-id", 10) == 0)
		d->has_msgid = 1;
}

/* The header section is over; body says a body line follows at once. */
static void
headers_over(struct mr_dstream *d, int body)
{
	d->in_headers = 0;
	if (d->hdr_end != NULL)
		d->hdr_end(d->arg, body);
}

/* Holds c in hline if there is room: 1, else 0. */
static int
hold(struct mr_dstream *d, unsigned char c)
{
	if (d->hlen >= sizeof(d->hline))
		return 0;
	d->hline[d->hlen++] = (char)c;
	return 1;
}

/*
 * The line held in hline is decided at byte c: a header field (field is
 * 1; c is its colon, or a name too long to hold is taken for one), or the
 * first line of the body.  The held bytes go out after hdr_end.
 */
static void
decide(struct mr_dstream *d, unsigned char c, int field)
{
	if (field) {
		if (c == ':')
			field_seen(d);
		d->hst = MR_H_PASS;
	} else
		headers_over(d, 1);
	if (d->hlen > 0)
		d->emit(d->arg, d->hline, d->hlen);
}

/*
 * Reads one byte of the header section; returns 1 when it is to be
 * emitted now, 0 when it is held in hline (the start of a line that may
 * still be a field name, with the white space RFC 5322 4.5 lets follow
 * it before the colon).
 */
static int
header_byte(struct mr_dstream *d, unsigned char c)
{
	int wsp = c == ' ' || c == '\t';

	switch (d->hst) {
	case MR_H_PASS:
		if (c == '\n')
			d->hst = MR_H_BOL;
		return 1;
	case MR_H_BOL:
		if (wsp) {			/* folded continuation */
			d->hst = MR_H_PASS;
			return 1;
		}
		if (c == '\r') {		/* the empty line: CR LF */
			headers_over(d, 0);
			return 1;
		}
		d->hlen = 0;
		d->hst = MR_H_NAME;
		/* FALLTHROUGH */
	case MR_H_NAME:
		if (wsp && d->hlen > 0)
			d->hst = MR_H_WSP;
		else if (!ftext(c))
			break;
		if (hold(d, c))
			return 0;
		decide(d, c, 1);	/* too long to hold */
		return 1;
	case MR_H_WSP:
		if (!wsp)
			break;
		if (hold(d, c))
			return 0;
		decide(d, c, 1);	/* too long to hold */
		return 1;
	}
	decide(d, c, c == ':' && d->hlen > 0);
	return 1;
}

/*
 * Emits bytes of the message, reading the header section on the way:
 * Received, Date and Message-ID fields, and where the section ends (an
 * empty line, or a line that is no header field).
 */
static void
out(struct mr_dstream *d, const char *p, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n && d->in_headers; i++) {
		if (d->hst == MR_H_BOL && i > start) {
			d->emit(d->arg, p + start, i - start);
			start = i;
		}
		if (!header_byte(d, (unsigned char)p[i]))
			start = i + 1;
	}
	if (start < n)
		d->emit(d->arg, p + start, n - start);
}

size_t
mr_dstream_feed(struct mr_dstream *d, const char *p, size_t n, int *done)
{
	size_t i, run = 0;

	*done = 0;
	for (i = 0; i < n; i++) {
		char c = p[i];

		switch (d->st) {
		case MR_D_MID:
			if (c != '\r' && c != '\n' && c != '\0') {
				run++;
				continue;
			}
			break;
		case MR_D_BOL:
			if (c == '.' && !d->raw) {
				d->st = MR_D_DOT;
				continue;
			}
			break;
		case MR_D_CR:
			if (c == '\n') {
				out(d, "\r\n", 2);
				d->st = MR_D_BOL;
				continue;
			}
			/* bare CR: stored as CRLF, and like a bare LF it
			 * cannot begin the end of the data */
			out(d, "\r\n", 2);
			d->st = MR_D_MID;
			break;
		case MR_D_DOT:
			if (c == '\r') {
				d->st = MR_D_DOTCR;
				continue;
			}
			if (c == '\n' && d->lf_ends) {
				*done = 1;
				return i + 1;
			}
			break;			/* the stuffed dot is dropped */
		case MR_D_DOTCR:
			if (c == '\n') {
				*done = 1;
				return i + 1;
			}
			/* ".\rX": the dot dropped, the CR made CRLF */
			out(d, "\r\n", 2);
			d->st = MR_D_MID;
			break;
		}
		/* c ends a run of ordinary bytes, or begins one */
		if (run) {
			out(d, p + i - run, run);
			run = 0;
		}
		if (c == '\0')
			d->nul = 1;
		if (c == '\r')
			d->st = MR_D_CR;
		else if (c == '\n') {
			/* bare LF: stored as CRLF, but the next line cannot
			 * end the data, unless the client's lines all end so */
			out(d, "\r\n", 2);
			d->st = d->lf_ends ? MR_D_BOL : MR_D_MID;
		} else {
			d->st = MR_D_MID;
			run = 1;
		}
	}
	if (run)
		out(d, p + n - run, run);
	return n;
}

void
mr_dstream_set_raw(struct mr_dstream *d)
{
	d->raw = 1;
	d->lf_ends = 0;
}

void
mr_dstream_finish(struct mr_dstream *d)
{
	if (d->st == MR_D_CR || d->st == MR_D_MID)
		out(d, "\r\n", 2);
	d->st = MR_D_BOL;
}

void
mr_rfc5322_date(time_t t, char *out, size_t len)
{
	struct tm tm;

	if (len == 0)
		return;
	out[0] = '\0';
	if (localtime_r(&t, &tm) != NULL)
		strftime(out, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

size_t
mr_dstream_missing(const struct mr_dstream *d, const char *qid,
    const char *fqdn, time_t now, char *out, size_t len)
{
	char date[64];
	int n = 0, m = 0;

	if (len == 0)
		return 0;
	out[0] = '\0';
	if (!d->has_date) {
		mr_rfc5322_date(now, date, sizeof(date));
		n = snprintf(out, len, "Date: %s\r\n", date);
		if (n < 0 || (size_t)n >= len)
			goto toolong;
	}
	if (!d->has_msgid) {
		m = snprintf(out + n, len - (size_t)n, "Message-ID: <%s@%s>\r\n",
		    qid, fqdn);
		if (m < 0 || (size_t)m >= len - (size_t)n)
			goto toolong;
	}
	return (size_t)n + (size_t)m;
toolong:
	out[0] = '\0';
	return 0;
}
