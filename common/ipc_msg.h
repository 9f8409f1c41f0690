/*
 * ipc_msg.h - every IPC payload a mailroot process receives, decoded into
 * a typed structure by one pure function per message (proto.h lists the
 * fields).  The daemons and the fuzz targets (tests/fuzz/fuzz_msg.c) call
 * the same decoders.
 *
 * A decoder takes the payload bytes and returns 0 with *out filled, or -1
 * with *err set to a short reason and nothing left to free.  Strings
 * point into the payload (valid while it is); arrays are allocated and
 * released by the message's *_free function.  A decoder checks structure
 * only (lengths, counts, syntax, control bytes, status values); whether
 * a request id or job is known is the receiver's business.
 */
#ifndef MR_IPC_MSG_H
#define MR_IPC_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* MR_Q_NEW (smtpd -> queued) */
struct mr_m_new {
	uint64_t	 req;
	uint32_t	 server;	/* not checked against the servers */
};

/*
 * The DSN block (RFC 3461) at the end of MR_Q_COMMIT and MR_D_JOB: RET,
 * ENVID ("" = none), and per recipient NOTIFY (0 = not given) and ORCPT
 * ("" = none), each as dsn_param.c validates it.
 */
struct mr_m_dsn {
	uint32_t	 ret;		/* enum mr_dsn_ret */
	const char	*envid;
	uint32_t	*notify;	/* nrcpts entries */
	const char	**orcpt;	/* nrcpts entries */
};

/* MR_Q_COMMIT (smtpd -> queued) */
struct mr_m_commit {
	uint64_t	 req;
	const char	*id;		/* non-empty */
	const char	*sender;	/* "" = null sender, else a mailbox */
	char		**rcpts;	/* 1..MR_RCPT_MAX mailboxes as
					 * mr_mailbox_parse writes them */
	size_t		 nrcpts;
	uint64_t	 size;		/* smtpd's claim: a hint */
	const char	*client;	/* no control byte */
	const char	*helo;		/* no control byte */
	uint32_t	 body;		/* enum mr_body */
	const char	*auth;		/* "" or the AUTH user: no control
					 * byte, <= MR_SASL_USER_MAX */
	/* ---- DSN (RFC 3461) ---- */
	struct mr_m_dsn	 dsn;
	uint32_t	 smtputf8;	/* 0/1: MAIL SMTPUTF8 (RFC 6531); the
					 * addresses may hold UTF-8 only
					 * when 1 */
};

/* MR_Q_ABORT (smtpd -> queued) */
struct mr_m_abort {
	const char	*id;
};

/* MR_Q_NEW_OK, _NEW_FAIL, _COMMIT_OK, _COMMIT_FAIL (queued -> smtpd) */
struct mr_m_reply {
	uint64_t	 req;
	const char	*text;		/* id (the _OKs) or reason; no
					 * control byte, ids non-empty */
};

/* MR_Q_RCPT_CHECK (smtpd -> queued) */
struct mr_m_rcpt_check {
	uint64_t	 req;
	uint32_t	 server;	/* not checked against the servers */
	const char	*rcpt;		/* a mailbox (mr_mailbox_parse) */
};

/* MR_Q_RCPT_VERDICT (queued -> smtpd) */
struct mr_m_rcpt_verdict {
	uint64_t	 req;
	uint32_t	 verdict;	/* enum mr_rverdict */
};

/* MR_D_JOB (queued -> deliverd) */
struct mr_m_job {
	uint64_t	 job;
	uint32_t	 server;	/* not checked against the servers */
	const char	*id;		/* non-empty */
	const char	*sender;
	const char	**rcpts;	/* 1..MR_RCPT_MAX, non-empty */
	size_t		 nrcpts;
	uint32_t	 body;		/* enum mr_body */
	const char	*auth;		/* as in mr_m_commit */
	/* ---- DSN (RFC 3461) ---- */
	struct mr_m_dsn	 dsn;
	uint32_t	 smtputf8;	/* 0/1 as in mr_m_commit */
};

/* One recipient's result: MR_D_RESULT (id and rcpt NULL) or MR_D_REPLAY. */
struct mr_m_status {
	const char	*id;
	const char	*rcpt;
	uint32_t	 status;	/* enum mr_dstatus */
	const char	*text;
};

/* MR_D_RESULT, MR_D_REPLAY (deliverd -> queued) */
struct mr_m_results {
	uint64_t		 job;	/* 0 for a replay */
	struct mr_m_status	*r;
	size_t			 n;
};

/* MR_Q_AUTH (smtpd -> queued) */
struct mr_m_auth {
	uint64_t	 req;
	uint32_t	 server;	/* not checked against the servers */
	const char	*user;		/* 1..MR_SASL_USER_MAX, no control
					 * byte */
	const char	*pass;		/* 1..MR_SASL_PASS_MAX */
};

/* MR_Q_AUTH_REPLY (queued -> smtpd) */
struct mr_m_auth_reply {
	uint64_t	 req;
	uint32_t	 result;	/* enum mr_auth_res */
};

/* MR_Q_ETRN (smtpd -> queued) */
struct mr_m_etrn {
	uint32_t	 server;
	const char	*domain;	/* non-empty, clean, <= 255 bytes */
};

int	mr_msg_etrn(const unsigned char *, size_t, struct mr_m_etrn *,
	    const char **err);

/* MR_D_FLUSH (queued -> deliverd) */
#define MR_FLUSH_ALL	0xffffffffU	/* every server */
struct mr_m_flush {
	uint32_t	 server;	/* index, or MR_FLUSH_ALL */
	const char	*domain;	/* "" = every destination; clean,
					 * <= 255 bytes */
};

int	mr_msg_flush(const unsigned char *, size_t, struct mr_m_flush *,
	    const char **err);
int	mr_msg_new(const unsigned char *, size_t, struct mr_m_new *,
	    const char **err);
int	mr_msg_commit(const unsigned char *, size_t, struct mr_m_commit *,
	    const char **err);
void	mr_msg_commit_free(struct mr_m_commit *);
int	mr_msg_abort(const unsigned char *, size_t, struct mr_m_abort *,
	    const char **err);
int	mr_msg_rcpt_check(const unsigned char *, size_t,
	    struct mr_m_rcpt_check *, const char **err);
int	mr_msg_rcpt_verdict(const unsigned char *, size_t,
	    struct mr_m_rcpt_verdict *, const char **err);
/* type: one of the four replies, or MR_Q_COMMIT_REJECT (a reason) */
int	mr_msg_reply(uint32_t type, const unsigned char *, size_t,
	    struct mr_m_reply *, const char **err);
int	mr_msg_job(const unsigned char *, size_t, struct mr_m_job *,
	    const char **err);
void	mr_msg_job_free(struct mr_m_job *);
int	mr_msg_result(const unsigned char *, size_t, struct mr_m_results *,
	    const char **err);
int	mr_msg_replay(const unsigned char *, size_t, struct mr_m_results *,
	    const char **err);
void	mr_msg_results_free(struct mr_m_results *);
/* MR_M_PEER (master -> child): the peer kind, a child process */
int	mr_msg_peer(const unsigned char *, size_t, uint32_t *kind,
	    const char **err);
/* MR_M_PEER_BAD (child -> master): the kind of a child other than the
 * reporter */
int	mr_msg_peer_bad(const unsigned char *, size_t, uint32_t reporter,
	    uint32_t *kind, const char **err);
/* MR_M_LISTEN (master -> smtpd): the listener's position, < MR_LISTEN_MAX */
int	mr_msg_listen(const unsigned char *, size_t, uint32_t *pos,
	    const char **err);
/* MR_M_CONFIG (master -> child): the listeners sent before it */
int	mr_msg_config(const unsigned char *, size_t, uint32_t *nlisteners,
	    const char **err);
/* MR_M_PKI (master -> smtpd): the pki's number and its chain's length
 * (checked against the configuration and the memfd by the receiver) */
int	mr_msg_pki(const unsigned char *, size_t, uint32_t *idx,
	    uint32_t *chainlen, const char **err);
int	mr_msg_auth(const unsigned char *, size_t, struct mr_m_auth *,
	    const char **err);
int	mr_msg_auth_reply(const unsigned char *, size_t,
	    struct mr_m_auth_reply *, const char **err);
/* 1 if s holds no control byte (CR, LF, NUL, DEL ...) */
int	mr_msg_clean(const char *s);

/* MR_R_PTR: the client address, a numeric IPv4 or IPv6 address */
struct mr_m_ptr {
	uint64_t	 req;
	const char	*addr;
};
int	mr_msg_ptr(const unsigned char *, size_t, struct mr_m_ptr *,
	    const char **err);

/* MR_R_PTR_ANSWER: name is a host name (letters, digits, "-", "_", ".",
 * 1..MR_PTR_NAME_MAX bytes, no trailing dot) for OK and UNCONFIRMED,
 * "" otherwise; status is an enum mr_ptr_status; ttl <= MR_PTR_TTL_MAX */
#define MR_PTR_NAME_MAX	253
struct mr_m_ptr_answer {
	uint64_t	 req;
	uint32_t	 status;
	uint32_t	 ttl;
	const char	*name;
};
int	mr_msg_ptr_answer(const unsigned char *, size_t,
	    struct mr_m_ptr_answer *, const char **err);
/* 1 if s is a host name as MR_R_PTR_ANSWER carries it */
int	mr_msg_hostname(const char *s);

/* MR_M_CTL (queued -> master): an action of enum mr_ctl_action, and the
 * uid that asked (for the log) */
int	mr_msg_ctl(const unsigned char *, size_t, uint32_t *action,
	    uint32_t *uid, const char **err);
/* MR_Q_LOG (smtpd -> queued): one answered command for the transaction
 * log; strings without control bytes, method non-empty */
struct mr_m_log {
	uint32_t	 server;	/* not checked against the servers */
	const char	*client_ip;	/* <= 64 */
	const char	*server_ip;	/* <= 64 */
	uint32_t	 server_port;	/* <= 65535 */
	const char	*helo;		/* <= 255 */
	const char	*user;		/* <= MR_ADDR_MAX */
	const char	*method;	/* 1..16 */
	const char	*args;		/* <= 512 */
	uint32_t	 status;	/* <= 999 */
	uint64_t	 sc_bytes;
	uint64_t	 cs_bytes;
	uint32_t	 time_taken;	/* ms */
};
int	mr_msg_log(const unsigned char *, size_t, struct mr_m_log *,
	    const char **err);

/* MR_Q_SESSION (smtpd -> queued): a session in progress, or its end;
 * strings without control bytes, op and state known */
#define MR_SESS_CMD_MAX	16
struct mr_m_session {
	uint32_t	 op;		/* enum mr_sess_op */
	uint64_t	 id;		/* smtpd's session number */
	uint32_t	 server;	/* not checked against the servers */
	const char	*client_ip;	/* <= 64 */
	const char	*server_ip;	/* <= 64 */
	uint32_t	 server_port;	/* <= 65535 */
	uint32_t	 state;		/* enum mr_sess_state */
	const char	*helo;		/* <= 255 */
	const char	*user;		/* <= MR_ADDR_MAX */
	const char	*command;	/* <= MR_SESS_CMD_MAX */
	uint64_t	 start;		/* Unix seconds */
};
int	mr_msg_session(const unsigned char *, size_t, struct mr_m_session *,
	    const char **err);

/* MR_D_SESSION (deliverd -> queued): an outbound session in progress, or
 * its end; strings without control bytes, op and state known */
struct mr_m_osession {
	uint32_t	 op;		/* enum mr_sess_op */
	uint64_t	 id;		/* deliverd's session number */
	uint32_t	 server;	/* not checked against the servers */
	const char	*host;		/* <= 255 */
	const char	*addr;		/* <= 64 */
	uint32_t	 port;		/* <= 65535 */
	uint32_t	 state;		/* enum mr_osess_state */
	const char	*command;	/* <= MR_SESS_CMD_MAX */
	uint32_t	 sent;		/* messages accepted on it */
	uint64_t	 start;		/* Unix seconds */
};
int	mr_msg_osession(const unsigned char *, size_t,
	    struct mr_m_osession *, const char **err);

/* MR_D_COUNT (deliverd -> queued): add amount to a counter of a server */
struct mr_m_dcount {
	uint32_t	 server;	/* not checked against the servers */
	uint32_t	 counter;	/* enum mr_dcounter */
	uint64_t	 amount;
};
int	mr_msg_dcount(const unsigned char *, size_t, struct mr_m_dcount *,
	    const char **err);

/* MR_M_RESTARTS (master -> queued): restarts[k] for each enum mr_proc k
 * (restarts[MR_PROC_MASTER] is 0) */
int	mr_msg_restarts(const unsigned char *, size_t,
	    uint32_t restarts[MR_PROC_COUNT], const char **err);

#endif
