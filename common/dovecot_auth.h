/*
 * dovecot_auth.h - the client side of Dovecot's authentication protocol
 * (version 1.2, what Dovecot's auth-client socket speaks): the AUTH line
 * mailroot sends and the parse of every line the server sends back.
 * Pure: no I/O, no allocation; queued/auth_dovecot.c drives it, the unit
 * tests and fuzz_dovecot call it directly.
 */
#ifndef MR_DOVECOT_AUTH_H
#define MR_DOVECOT_AUTH_H

#include <stddef.h>

#include "sasl.h"

/* A server line, LF excluded; a longer one is malformed. */
#define MR_DVA_LINE_MAX		8192
/* "AUTH\t<id>\tPLAIN\tservice=smtp\tnologin\tsecured\tresp=<b64>\n" */
#define MR_DVA_REQ_MAX		(128 + 4 * ((MR_SASL_RESP_MAX + 2) / 3))

enum mr_dva_kind {
	MR_DVA_BAD = 0,		/* malformed: the server is not trusted */
	MR_DVA_VERSION,		/* VERSION major minor */
	MR_DVA_MECH,		/* MECH name [params] */
	MR_DVA_SPID,
	MR_DVA_CUID,
	MR_DVA_COOKIE,
	MR_DVA_DONE,		/* end of the handshake */
	MR_DVA_OK,		/* OK id [params] */
	MR_DVA_FAIL,		/* FAIL id [params] */
	MR_DVA_CONT,		/* CONT id base64 */
	MR_DVA_OTHER		/* a command this client ignores */
};

struct mr_dva_line {
	enum mr_dva_kind	 kind;
	unsigned long		 major, minor;	/* VERSION */
	unsigned long		 id;		/* OK, FAIL, CONT */
	int			 plain;		/* MECH PLAIN */
	int			 temp;		/* FAIL with "temp" */
};

/* What the handshake has seen so far. */
struct mr_dva_hs {
	int	 version;	/* VERSION 1.x seen */
	int	 plain;		/* MECH PLAIN offered */
};

enum mr_dva_step {
	MR_DVA_MORE,		/* read another line */
	MR_DVA_READY,		/* DONE: send AUTH */
	MR_DVA_REFUSED,		/* malformed, wrong version, no PLAIN */
	MR_DVA_GRANTED,		/* OK for our id */
	MR_DVA_DENIED,		/* FAIL (or CONT: PLAIN needs no more) */
	MR_DVA_TEMPFAIL		/* FAIL with "temp": a backend error */
};

/* One server line of len bytes (LF removed; NUL bytes make it bad). */
void	mr_dva_parse(const char *line, size_t len, struct mr_dva_line *out);
/* The handshake, one line at a time: MORE, READY or REFUSED. */
enum mr_dva_step mr_dva_handshake(struct mr_dva_hs *, const char *line,
	    size_t len);
/* The answer to AUTH id: MORE (an unrelated line), GRANTED, DENIED,
 * TEMPFAIL or REFUSED (malformed, or another id's answer). */
enum mr_dva_step mr_dva_answer(unsigned long id, const char *line,
	    size_t len);
/*
 * "AUTH\t<id>\tPLAIN\tservice=smtp\tnologin[\tsecured]\tresp=<base64>\n"
 * (sent after the handshake's DONE), with "secured" when the client used
 * TLS; out holds MR_DVA_REQ_MAX.  Returns the length, or -1 when user or
 * pass is empty or too long.
 */
int	mr_dva_request(char *out, size_t outsz, unsigned long id,
	    const char *user, const char *pass, int secured);

#endif
