/*
 * dstream.c - DATA stream state machine (see dstream.h).
 *
 * Security: input is untrusted bytes of any value; the machine keeps a
 * constant amount of state and emits only bytes it was given, plus CR
 * before a bare LF and LF after a bare CR: what it emits has CRLF line
 * ends only.  A NUL byte is noted (the caller refuses the message).
 */
#include "config.h"

#include <string.h>
#include <strings.h>

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

/* Counts Received: fields (hop count, RFC 5321 6.3) in what is emitted. */
static void
out(struct mr_dstream *d, const char *p, size_t n)
{
	size_t i;

	if (d->in_headers) {
		for (i = 0; i < n; i++) {
			if (p[i] == '\n') {
				if (d->hlen <= 1)	/* "\r\n" alone */
					d->in_headers = 0;
				else if (d->hlen >= 9 && strncasecmp(d->hline,
				    "received:", 9) == 0)
					d->received++;
				d->hlen = 0;
				if (!d->in_headers)
					break;
			} else if (d->hlen < sizeof(d->hline))
				d->hline[d->hlen++] = p[i];
		}
	}
	d->emit(d->arg, p, n);
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
			if (c == '.') {
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
			 * end the data */
			out(d, "\r\n", 2);
			d->st = MR_D_MID;
		} else {
			d->st = MR_D_MID;
			run = 1;
		}
	}
	if (run)
		out(d, p + n - run, run);
	return n;
}
