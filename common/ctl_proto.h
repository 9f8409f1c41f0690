/*
 * ctl_proto.h - the control socket's request, as mailrootctl sends it and
 * queued parses it (common/ctl_proto.c).
 *
 * A request is a u32 length (network order, 1..MR_CTL_MAX) and that many
 * bytes: NUL-terminated tokens, the verb first, then options as
 * "name=value" or "name".  The answer is a status line, "ok\n" or
 * "error TEXT\n", then the output (columns, or JSON with "json"), and the
 * server closes the connection.
 */
#ifndef MR_CTL_PROTO_H
#define MR_CTL_PROTO_H

#include <stddef.h>

#define MR_CTL_MAX	4096	/* bytes in one request */
#define MR_CTL_TOKENS	16	/* tokens in one request */
#define MR_CTL_ARG_MAX	512	/* one option's value */

enum mr_ctl_verb {
	MR_CTL_QUEUE = 1, MR_CTL_SHOW, MR_CTL_FLUSH, MR_CTL_RETRY,
	MR_CTL_HOLD, MR_CTL_RELEASE, MR_CTL_DELETE, MR_CTL_BOUNCE,
	MR_CTL_STATS, MR_CTL_RELOAD, MR_CTL_STOP, MR_CTL_ETRN,
	MR_CTL_SESSIONS
};

/* queue --state: what a listed message must have */
enum mr_ctl_state {
	MR_CTL_ST_ANY = 0,
	MR_CTL_ST_PENDING,	/* a recipient still to deliver */
	MR_CTL_ST_DEFERRED,	/* pending after a failed attempt */
	MR_CTL_ST_HELD,		/* held by "hold" */
	MR_CTL_ST_FAILED	/* a recipient failed (bounce pending) */
};

struct mr_ctl_req {
	enum mr_ctl_verb	 verb;
	int			 json;
	int			 body;		/* show --body */
	enum mr_ctl_state	 state;
	char			 id[64 + 1];	/* show .. bounce */
	char			 server[MR_CTL_ARG_MAX + 1]; /* queue,
						 * sessions */
	char			 domain[MR_CTL_ARG_MAX + 1];
	char			 sender[MR_CTL_ARG_MAX + 1];
	char			 target[MR_CTL_ARG_MAX + 1]; /* flush, hold,
						 * release, etrn */
	char			 reason[MR_CTL_ARG_MAX + 1]; /* bounce */
};

/*
 * Parses a request's bytes (without the length) into *req: 0, or -1 with
 * *err set.  Checks that the verb is known, every option belongs to it,
 * every value is printable and bounded, and an id (or a domain,
 * "target") is given where one is needed and only there.
 */
int	mr_ctl_parse(const unsigned char *, size_t, struct mr_ctl_req *,
	    const char **err);
/* The verb's name ("queue", ...), NULL if unknown. */
const char *mr_ctl_verb_name(enum mr_ctl_verb);
/* A verb that changes nothing (queue, show, stats, sessions). */
int	mr_ctl_read_only(enum mr_ctl_verb);
const char *mr_ctl_state_name(enum mr_ctl_state);

#endif
