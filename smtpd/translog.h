/*
 * translog.h - the SMTP command being answered, noted for the server's
 * transaction log (smtpd/translog.c; written by queued/w3clog.c).
 */
#ifndef MR_TRANSLOG_H
#define MR_TRANSLOG_H

#include <stddef.h>
#include <stdint.h>

#define TL_METHOD_MAX	16
#define TL_ARGS_MAX	512

struct translog {
	uint64_t	 start_ms;	/* monotonic */
	uint64_t	 cs_bytes;	/* the command line, and the
					 * message as received (DATA) */
	uint64_t	 sc_bytes;	/* the replies to it */
	int		 active;	/* a command awaits its final reply */
	char		 method[TL_METHOD_MAX + 1];
	char		 args[TL_ARGS_MAX + 1];
};

/* What the session knows, for the record. */
struct translog_ctx {
	uint32_t	 server;	/* index */
	const char	*client_ip;
	const char	*server_ip;
	uint32_t	 server_port;
	const char	*helo;
	const char	*user;		/* "" before AUTH */
};

/* A command line (without CRLF) arrived. */
void	translog_begin(struct translog *, const char *line, size_t len);
/* A reply line (with CRLF) went out; 1 when it ends the command. */
int	translog_reply(struct translog *, const char *line, size_t len);
/* Sends the finished command's record to queued (dropped, and counted,
 * when queued is down). */
void	translog_send(struct translog *, const struct translog_ctx *,
	    const char *reply);

/* A session in progress (enum mr_sess_op, enum mr_sess_state), for
 * mailrootctl sessions: sent to queued, which keeps the table. */
struct translog_sess {
	uint32_t	 op;
	uint64_t	 id;
	uint32_t	 state;
	const char	*command;	/* the last command's verb, or "" */
	uint64_t	 start;		/* Unix seconds */
};
void	translog_session(const struct translog_sess *,
	    const struct translog_ctx *);

#endif
