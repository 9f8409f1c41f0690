/*
 * dovecot_auth.c - the lines of Dovecot's authentication client protocol
 * (1.2) that mailroot sends and reads: the handshake (VERSION, MECH,
 * SPID, CUID, COOKIE, DONE) and the answer to one AUTH (OK, FAIL, CONT).
 *
 * Security: the server is a peer, not a friend: the socket may be
 * someone else's, or a broken daemon.  Every line is bounded
 * (MR_DVA_LINE_MAX), split on tabs, and parsed into a mr_dva_line before
 * anything is decided; numbers are decimal and bounded; a line with a
 * NUL byte, a wrong version, an answer to another id or anything not in
 * the protocol where an answer is due makes the whole exchange a
 * temporary failure, never a success.  Only "OK\t<our id>" grants.  The
 * request carries the password in base64 (PLAIN's "\0user\0pass"); the
 * caller wipes it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dovecot_auth.h"

/* Field i (from 0) of a tab-separated line: its start and length. */
static int
field(const char *line, size_t len, size_t i, const char **f, size_t *flen)
{
	const char *p = line, *end = line + len, *t;

	for (;;) {
		t = memchr(p, '\t', (size_t)(end - p));
		if (i == 0) {
			*f = p;
			*flen = (t != NULL ? t : end) - p;
			return 0;
		}
		if (t == NULL)
			return -1;
		p = t + 1;
		i--;
	}
}

static int
is(const char *f, size_t flen, const char *word)
{
	return flen == strlen(word) && memcmp(f, word, flen) == 0;
}

/* Decimal, 1 to 9 digits, no leading zero: ids and versions are small,
 * and an id matches only as the very digits we sent. */
static int
number(const char *f, size_t flen, unsigned long *out)
{
	size_t i;

	if (flen == 0 || flen > 9 || (flen > 1 && f[0] == '0'))
		return -1;
	*out = 0;
	for (i = 0; i < flen; i++) {
		if (f[i] < '0' || f[i] > '9')
			return -1;
		*out = *out * 10 + (unsigned long)(f[i] - '0');
	}
	return 0;
}

/* Has any field after the id the flag word (FAIL's "temp")? */
static int
has_flag(const char *line, size_t len, const char *word)
{
	const char *f;
	size_t flen, i;

	for (i = 2; field(line, len, i, &f, &flen) == 0; i++)
		if (is(f, flen, word))
			return 1;
	return 0;
}

static void
parse_answer(const char *line, size_t len, struct mr_dva_line *out)
{
	const char *f;
	size_t flen;

	if (field(line, len, 1, &f, &flen) == -1 ||
	    number(f, flen, &out->id) == -1) {
		out->kind = MR_DVA_BAD;
		return;
	}
	if (out->kind == MR_DVA_FAIL)
		out->temp = has_flag(line, len, "temp");
}

void
mr_dva_parse(const char *line, size_t len, struct mr_dva_line *out)
{
	const char *f, *g;
	size_t flen, glen;

	memset(out, 0, sizeof(*out));
	if (len > MR_DVA_LINE_MAX || memchr(line, '\0', len) != NULL)
		return;
	(void)field(line, len, 0, &f, &flen);
	if (is(f, flen, "VERSION")) {
		if (field(line, len, 1, &f, &flen) == -1 ||
		    field(line, len, 2, &g, &glen) == -1 ||
		    number(f, flen, &out->major) == -1 ||
		    number(g, glen, &out->minor) == -1)
			return;
		out->kind = MR_DVA_VERSION;
	} else if (is(f, flen, "MECH")) {
		if (field(line, len, 1, &f, &flen) == -1 || flen == 0)
			return;
		out->plain = is(f, flen, "PLAIN");
		out->kind = MR_DVA_MECH;
	} else if (is(f, flen, "SPID"))
		out->kind = MR_DVA_SPID;
	else if (is(f, flen, "CUID"))
		out->kind = MR_DVA_CUID;
	else if (is(f, flen, "COOKIE"))
		out->kind = MR_DVA_COOKIE;
	else if (is(f, flen, "DONE"))
		out->kind = len == 4 ? MR_DVA_DONE : MR_DVA_BAD;
	else if (is(f, flen, "OK") || is(f, flen, "FAIL") ||
	    is(f, flen, "CONT")) {
		out->kind = f[0] == 'O' ? MR_DVA_OK :
		    f[0] == 'F' ? MR_DVA_FAIL : MR_DVA_CONT;
		parse_answer(line, len, out);
	} else if (flen > 0)
		out->kind = MR_DVA_OTHER;
}

enum mr_dva_step
mr_dva_handshake(struct mr_dva_hs *hs, const char *line, size_t len)
{
	struct mr_dva_line l;

	mr_dva_parse(line, len, &l);
	switch (l.kind) {
	case MR_DVA_VERSION:
		/* a new major version is incompatible; minors are not */
		if (l.major != 1 || hs->version)
			return MR_DVA_REFUSED;
		hs->version = 1;
		return MR_DVA_MORE;
	case MR_DVA_MECH:
		hs->plain |= l.plain;
		return MR_DVA_MORE;
	case MR_DVA_SPID:
	case MR_DVA_CUID:
	case MR_DVA_COOKIE:
	case MR_DVA_OTHER:
		return hs->version ? MR_DVA_MORE : MR_DVA_REFUSED;
	case MR_DVA_DONE:
		return hs->version && hs->plain ? MR_DVA_READY :
		    MR_DVA_REFUSED;
	default:
		return MR_DVA_REFUSED;
	}
}

enum mr_dva_step
mr_dva_answer(unsigned long id, const char *line, size_t len)
{
	struct mr_dva_line l;

	mr_dva_parse(line, len, &l);
	switch (l.kind) {
	case MR_DVA_OK:
	case MR_DVA_FAIL:
	case MR_DVA_CONT:
		if (l.id != id)
			return MR_DVA_REFUSED;
		if (l.kind == MR_DVA_OK)
			return MR_DVA_GRANTED;
		/* CONT: PLAIN sent everything; more is a refusal */
		return l.temp ? MR_DVA_TEMPFAIL : MR_DVA_DENIED;
	case MR_DVA_OTHER:
		return MR_DVA_MORE;
	default:
		return MR_DVA_REFUSED;
	}
}

int
mr_dva_request(char *out, size_t outsz, unsigned long id, const char *user,
    const char *pass, int secured)
{
	unsigned char resp[MR_SASL_RESP_MAX];
	char b64[4 * ((MR_SASL_RESP_MAX + 2) / 3) + 1];
	size_t ulen = strlen(user), plen = strlen(pass);
	int n;

	if (ulen == 0 || plen == 0 || ulen > MR_SASL_USER_MAX ||
	    plen > MR_SASL_PASS_MAX)
		return -1;
	/* PLAIN (RFC 4616): no authzid, NUL, authcid, NUL, passwd */
	resp[0] = '\0';
	memcpy(resp + 1, user, ulen);
	resp[1 + ulen] = '\0';
	memcpy(resp + 2 + ulen, pass, plen);
	mr_b64_encode(resp, ulen + plen + 2, b64);
	explicit_bzero(resp, sizeof(resp));
	n = snprintf(out, outsz,
	    "AUTH\t%lu\tPLAIN\tservice=smtp\tnologin%s\tresp=%s\n", id,
	    secured ? "\tsecured" : "", b64);
	explicit_bzero(b64, sizeof(b64));
	if (n < 0 || (size_t)n >= outsz) {
		explicit_bzero(out, outsz);
		return -1;
	}
	return n;
}
