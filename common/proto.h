/*
 * proto.h - the messages mailroot processes exchange over IPC.
 *
 * Payloads use the mr_buf_put_* / mr_rd_* encoding (buf.h): u32, u64 and
 * strings (u32 length, bytes, NUL).  Every decoder checks mr_rd_done().
 * Field lists below are in order.
 */
#ifndef MR_PROTO_H
#define MR_PROTO_H

/* Limits applied by every decoder. */
#define MR_ADDR_MAX	512	/* RFC 5321 path, generous */
#define MR_TEXT_MAX	4096	/* reply texts, host names, reasons */
#define MR_RCPT_MAX	10000	/* recipients in one frame */
#define MR_ID_MAX	64	/* queue ids */
#define MR_LISTEN_MAX	1000	/* listeners over all virtual servers: each
				 * becomes a descriptor of smtpd */
#define MR_JOBS_MAX	1000	/* jobs at deliverd at once: queued sends
				 * no more, deliverd defers the excess */

enum mr_msgtype {
	/* master -> any child */
	MR_M_PEER = 1,		/* u32 peer kind (enum mr_proc); fd = channel */
	MR_M_SHUTDOWN,		/* (empty): finish and exit */

	/* smtpd -> queued */
	MR_Q_NEW,		/* u64 req, u32 server index */
	MR_Q_COMMIT,		/* u64 req, str id, str sender, u32 n, n x str
				 * rcpt, u64 size, str client-ip, str helo,
				 * u32 body (enum mr_body), str auth (the
				 * AUTH user name, "" = none), then the DSN
				 * block (RFC 3461): u32 ret (enum
				 * mr_dsn_ret), str envid, u32 n, n x (u32
				 * notify, str orcpt), then u32 smtputf8
				 * (0/1: MAIL SMTPUTF8, RFC 6531) */
	MR_Q_ABORT,		/* str id */
	/* queued -> smtpd */
	MR_Q_NEW_OK,		/* u64 req, str id; fd = writable data file */
	MR_Q_NEW_FAIL,		/* u64 req, str reason */
	MR_Q_COMMIT_OK,		/* u64 req, str id */
	MR_Q_COMMIT_FAIL,	/* u64 req, str reason */

	/* queued -> deliverd */
	MR_D_JOB,		/* u64 job, u32 server index, str id,
				 * str sender, u32 n, n x str rcpt, u32 body
				 * (enum mr_body), str auth (as in COMMIT),
				 * then the DSN block and u32 smtputf8 as
				 * in COMMIT; fd = data
				 * file opened read-only */
	/* deliverd -> queued */
	MR_D_RESULT,		/* u64 job, u32 n, n x (u32 status, str text)
				 * in the job's recipient order; status is
				 * enum mr_dstatus */
	MR_D_REPLAY,		/* u32 n, n x (str id, str rcpt, u32 status,
				 * str text): final results of the last
				 * minute, sent to a new queued channel; a
				 * queued that died before it read them
				 * applies them instead of delivering twice */
	MR_D_REPLAY_END,	/* (empty): no more replays on this channel */

	/* any child -> master */
	MR_M_PEER_BAD,		/* u32 peer kind: that peer sent a malformed
				 * frame and was dropped; restart it */

	/* master -> any child: reload (common/child.c) */
	MR_M_LISTEN,		/* u32 position; fd = a listener of the new
				 * configuration (smtpd), in config order */
	MR_M_CONFIG,		/* u32 listeners sent before it; fd = the new
				 * sealed snapshot: parse it and swap */
	MR_M_PKI,		/* u32 pki number, u32 chain length; fd = a
				 * sealed memfd: the pki's certificate chain
				 * then its key (smtpd, before MR_M_CONFIG) */

	/* smtpd -> queued: is this recipient of a local domain known?
	 * (recipient tables, aliases; queued/rcpt_check.c) */
	MR_Q_RCPT_CHECK,	/* u64 req (session), u32 server index,
				 * str rcpt (a mailbox) */
	/* queued -> smtpd */
	MR_Q_RCPT_VERDICT,	/* u64 req, u32 verdict (enum mr_rverdict) */
	MR_Q_COMMIT_REJECT,	/* u64 req, str reason: a header check
				 * refused the message (5xx, not 4xx) */

	/* smtpd -> queued: AUTH (verified by queued, never by smtpd) */
	MR_Q_AUTH,		/* u64 req, u32 server index, str user,
				 * str password */
	/* queued -> smtpd */
	MR_Q_AUTH_REPLY,	/* u64 req, u32 result (enum mr_auth_res) */

	/* reverse DNS of a client (smtpd/rdns.c, deliverd/ptr_resolve.c):
	 * smtpd -> queued -> deliverd, and the answer back the same way;
	 * queued passes both on unchanged after decoding them */
	MR_R_PTR,		/* u64 req, str client address (numeric) */
	MR_R_PTR_ANSWER,	/* u64 req, u32 status (enum mr_ptr_status),
				 * u32 ttl (seconds), str name: the confirmed
				 * name (OK), the first PTR name (UNCONFIRMED),
				 * else "" */

	/* queued -> master: the control socket asks (mailrootctl) */
	MR_M_CTL,		/* u32 action (enum mr_ctl_action), u32 uid
				 * of the asker (for the log only) */

	/* smtpd -> queued: the transaction log */
	MR_Q_LOG,		/* u32 server index, str client-ip, str
				 * server-ip, u32 server-port, str helo, str
				 * user, str method, str args, u32 status,
				 * u64 bytes sent, u64 bytes received, u32
				 * time taken (ms): one answered SMTP command;
				 * strings without control bytes or spaces
				 * (args: '+' for each) */

	/* smtpd -> queued: ETRN (RFC 1985) from an allowed client */
	MR_Q_ETRN,		/* u32 server index, str domain: release the
				 * mail held for it (queued/etrn.c) */

	/* smtpd -> queued: the sessions in progress (mailrootctl sessions) */
	MR_Q_SESSION,		/* u32 op (enum mr_sess_op), u64 session,
				 * u32 server index, str client-ip, str
				 * server-ip, u32 server-port, u32 state
				 * (enum mr_sess_state), str helo, str user,
				 * str command, u64 start (Unix seconds);
				 * strings without control bytes */

	/* deliverd -> queued: its outbound sessions (mailrootctl sessions),
	 * as smtpd reports its inbound ones (queued/outbound.c) */
	MR_D_SESSION,		/* u32 op (enum mr_sess_op), u64 session,
				 * u32 server index, str host (the next hop
				 * being resolved, or the host connected
				 * to), str address (numeric, "" before a
				 * connection), u32 port, u32 state (enum
				 * mr_osess_state), str command (the last
				 * verb sent, "" = none), u32 messages the
				 * next hop accepted on it, u64 start (Unix
				 * seconds); strings without control bytes */
	/* deliverd -> queued: counters for the metrics */
	MR_D_COUNT,		/* u32 server index, u32 counter (enum
				 * mr_dcounter), u64 amount to add */
	/* master -> queued: how often each child was restarted (metrics) */
	MR_M_RESTARTS,		/* u32 n (= MR_PROC_COUNT), n x u32 restarts
				 * in enum mr_proc order (master's is 0) */
	/* master -> queued: every child is being stopped, smtpd and
	 * deliverd first, so their channels close on purpose */
	MR_M_STOPPING,		/* (empty) */
	/* queued -> deliverd: the administrator flushed (mailrootctl flush,
	 * ETRN, mailroot-sendmail -q): next hops marked down are tried again
	 * (deliverd/dest_down.c) */
	MR_D_FLUSH,		/* u32 server index (MR_FLUSH_ALL: every
				 * server), str domain ("" = every
				 * destination); no control bytes */

	MR_MSG_MAX = MR_D_FLUSH
};

/* What an outbound session is doing (MR_D_SESSION). */
enum mr_osess_state {
	MR_OS_RESOLVING = 0,	/* looking up the next hop */
	MR_OS_CONNECTING = 1,
	MR_OS_GREETING = 2,	/* waiting for the 220 */
	MR_OS_HELLO = 3,	/* EHLO/HELO, STARTTLS, TLS, AUTH */
	MR_OS_MAIL = 4,		/* RSET, MAIL, RCPT */
	MR_OS_DATA = 5,		/* DATA, the message, its end */
	MR_OS_IDLE = 6,		/* kept for the next message */
	MR_OS_CLOSING = 7,	/* QUIT */
	MR_OS_MAX = MR_OS_CLOSING
};

/* MR_D_COUNT: what deliverd counts for the metrics, per server. */
enum mr_dcounter {
	MR_DC_CONNECTIONS = 0,	/* outbound connections established */
	MR_DC_BYTES_SENT = 1,	/* bytes of messages a next hop accepted */
	MR_DC_DNS = 2,		/* next hops looked up in the DNS */
	MR_DC_DNS_FAIL = 3,	/* of those, lookups that gave no address */
	MR_DC_MAX = MR_DC_DNS_FAIL
};

/* MR_Q_SESSION: a session began (a new connection), is as the frame
 * says (after a command, or reported again to a new queued), or ended
 * (only the session number counts); or it began and ended before it was
 * reported (MR_SESS_ONCE: counted as a connection, never listed; smtpd
 * only).  All of it is sent each time. */
enum mr_sess_op {
	MR_SESS_GONE = 0,
	MR_SESS_NOW = 1,
	MR_SESS_BEGIN = 2,
	MR_SESS_ONCE = 3
};

/* What a session is doing, as mailrootctl sessions shows it. */
enum mr_sess_state {
	MR_SS_CONNECTED = 0,	/* before HELO/EHLO */
	MR_SS_TLS = 1,		/* TLS handshake */
	MR_SS_GREETED = 2,	/* HELO/EHLO said, no transaction */
	MR_SS_MAIL = 3,		/* MAIL accepted: recipients, DATA */
	MR_SS_DATA = 4,		/* the message is coming or committing */
	MR_SS_CLOSING = 5,
	MR_SS_MAX = MR_SS_CLOSING
};

/* MR_M_CTL: all mailrootd will do at a child's request */
enum mr_ctl_action {
	MR_CTL_ACT_RELOAD = 1,	/* as on SIGHUP */
	MR_CTL_ACT_STOP = 2	/* as on SIGTERM */
};

enum mr_rverdict {
	MR_RV_OK = 0,		/* known, or the domain has no table */
	MR_RV_UNKNOWN = 1,	/* 550 5.1.1 */
	MR_RV_TEMPFAIL = 2	/* a table failed: 451 4.3.0 */
};

/* The answer to MR_Q_AUTH. */
enum mr_auth_res {
	MR_AUTH_OK = 0,		/* 235 */
	MR_AUTH_FAIL = 1,	/* 535: wrong password or no such user */
	MR_AUTH_TEMP = 2	/* 454: the table cannot be read */
};

/* What the reverse lookup of a client found (MR_R_PTR_ANSWER). */
enum mr_ptr_status {
	MR_PTR_OK = 0,		/* a PTR name resolves back to the address */
	MR_PTR_UNCONFIRMED = 1,	/* PTR names, none resolves back to it */
	MR_PTR_NONE = 2,	/* no PTR record (NXDOMAIN, no data) */
	MR_PTR_FAIL = 3		/* no answer: timeout, SERVFAIL, overload */
};
#define MR_PTR_TTL_MAX	86400	/* a longer TTL is cut to this */

enum mr_proc {
	MR_PROC_MASTER = 0,
	MR_PROC_SMTPD,
	MR_PROC_QUEUED,
	MR_PROC_DELIVERD,
	MR_PROC_COUNT
};

/* MAIL BODY= (RFC 6152) as smtpd labelled the message: 8BITMIME only when
 * it holds 8-bit bytes.  Decoders refuse a value above MR_BODY_8BITMIME. */
enum mr_body {
	MR_BODY_NONE = 0,	/* no BODY parameter */
	MR_BODY_7BIT = 1,
	MR_BODY_8BITMIME = 2
};

enum mr_dstatus {
	MR_DS_OK = 2,		/* delivered (2xx) */
	MR_DS_AGAIN = 3,	/* not tried (deliverd stopping or full):
				 * offered again soon, no attempt counted;
				 * MR_D_RESULT only */
	MR_DS_TEMP = 4,		/* retry later (4xx, network failure) */
	MR_DS_PERM = 5,		/* bounce (5xx) */
	/* ---- DSN (RFC 3461) ---- */
	MR_DS_RELAYED = 6	/* delivered (2xx) to a next hop without DSN
				 * for a recipient with NOTIFY=SUCCESS:
				 * queued sends the "relayed" report */
};

/* The file descriptor numbers a child finds at exec. */
#define MR_FD_MASTER	3	/* channel to mailrootd */
#define MR_FD_CONFIG	4	/* read-only snapshot of the configuration */
#define MR_FD_PEER1	5	/* smtpd: queued; queued: smtpd; deliverd: queued */
#define MR_FD_PEER2	6	/* queued: deliverd */
#define MR_FD_CONTROL	8	/* queued: the control socket, listening
				 * (when control-socket is set) */
#define MR_FD_LISTEN	6	/* smtpd: first listener, in configuration
				 * order (server by server, listen by listen) */
#define MR_FD_SUBMIT	7	/* queued: the submit-socket listener (or
				 * /dev/null when there is none) */
#define MR_FD_METRICS	9	/* queued: the metrics listener, TCP
				 * (when "metrics listen" is set) */

#endif
