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
				 * u32 body (enum mr_body) */
	MR_Q_ABORT,		/* str id */
	/* queued -> smtpd */
	MR_Q_NEW_OK,		/* u64 req, str id; fd = writable data file */
	MR_Q_NEW_FAIL,		/* u64 req, str reason */
	MR_Q_COMMIT_OK,		/* u64 req, str id */
	MR_Q_COMMIT_FAIL,	/* u64 req, str reason */

	/* queued -> deliverd */
	MR_D_JOB,		/* u64 job, u32 server index, str id,
				 * str sender, u32 n, n x str rcpt, u32 body
				 * (enum mr_body); fd = data file opened
				 * read-only */
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

	/* smtpd -> queued: ETRN (RFC 1985) from an allowed client */
	MR_Q_ETRN,		/* u32 server index, str domain: release the
				 * mail held for it (queued/etrn.c) */

	MR_MSG_MAX = MR_Q_ETRN
};

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
	MR_DS_PERM = 5		/* bounce (5xx) */
};

/* The file descriptor numbers a child finds at exec. */
#define MR_FD_MASTER	3	/* channel to mailrootd */
#define MR_FD_CONFIG	4	/* read-only snapshot of the configuration */
#define MR_FD_PEER1	5	/* smtpd: queued; queued: smtpd; deliverd: queued */
#define MR_FD_PEER2	6	/* queued: deliverd */
#define MR_FD_LISTEN	6	/* smtpd: first listener, in configuration
				 * order (server by server, listen by listen) */

#endif
