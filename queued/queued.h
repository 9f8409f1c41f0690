/*
 * queued.h - the queue manager: owns every mailroot.
 */
#ifndef MR_QUEUED_H
#define MR_QUEUED_H

#include <sys/types.h>

#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "qheap.h"

struct event;
struct event_base;
struct lmtp_sess;
struct mr_buf;
struct mr_ipc;
struct mr_tbl;

enum rcpt_state { R_PENDING = 0, R_SENT, R_FAILED };

/* one recipient of a queued message (packed: one per queued message) */
struct qrcpt {
	char		*addr;
	const char	*text;		/* last result, for logs and NDRs
					 * (qstr.c: shared) */
	char		*orcpt;		/* DSN: "type;xtext" or NULL */
	uint8_t		 state;		/* enum rcpt_state */
	uint8_t		 notify;	/* DSN: MR_NOTIFY_* bits; 0: not given */
	uint8_t		 local;		/* delivered to Drop */
	uint8_t		 relayed;	/* sent to a next hop without DSN */
	uint8_t		 tried;		/* by LMTP in this attempt */
	uint8_t		 etrn;		/* released by ETRN (etrn.c) */
	uint8_t		 addr_in;	/* addr is in the rcpts allocation
					 * (queue_env.c msg_pack) */
};

struct qserver {
	const struct mr_server	*srv;
	char			*queue;		/* <mailroot>/Queue */
	char			*tmp;		/* <mailroot>/Queue/tmp */
	char			*drop;
	char			*badmail;
	char			*pickup;
};

/*
 * What only a message that is due or being delivered needs: made when it
 * waits for room at deliverd, goes to deliverd or to an LMTP server, and
 * freed when none of these holds any more (queue_index.c act_get,
 * act_put), so that the million messages that wait for their next try
 * do not carry it.
 */
struct qact {
	uint64_t	 job;		/* non-zero while at deliverd */
	struct qmsg	*job_next;	/* queue_index.c: hash chains */
	struct qmsg	*wnext, *wprev;	/* waiting for room at deliverd */
	size_t		*job_idx;	/* recipients in the job */
	size_t		 job_n;
	struct lmtp_sess *lmtp;		/* non-NULL while at an LMTP server */
};

/*
 * A queued message.  A million of them can wait in memory at once, so the
 * fields are ordered by size (no padding) and the flags are bytes.
 */
struct qmsg {
	struct qmsg	*next, *prev;
	struct qserver	*qs;
	const char	*sender;	/* "" = null sender; these three */
	const char	*client;	/* are shared (qstr.c) */
	const char	*helo;
	struct qrcpt	*rcpts;
	time_t		 created;
	uint64_t	 accepted_ms;	/* mr_now_ms() at commit; 0 if it
					 * was queued before queued started */
	time_t		 next_try;
	uint64_t	 size;
	char		*auth;		/* AUTH user at smtpd, NULL = none */
	char		*envid;		/* xtext, or NULL */
	struct qmsg	*id_next;	/* queue_index.c: hash chains */
	struct qact	*act;		/* while due or being delivered */
	struct qheap_node tnode;	/* next attempt (queue_sched.c) */
	struct qheap_node xnode;	/* expiry or delay notice */
	uint32_t	 nrcpts;
	unsigned	 attempts;
	uint32_t	 jnl;		/* queue_journal.c: the journal
					 * holding its envelope, 0 = its
					 * own ID.env */
	uint8_t		 body;		/* enum mr_body (proto.h) */
	uint8_t		 smtputf8;	/* 0/1: MAIL SMTPUTF8 (RFC 6531) */
	uint8_t		 ret;		/* enum mr_dsn_ret (dsn_param.h) */
	uint8_t		 hold;		/* a header check holds it: not
					 * delivered until released */
	uint8_t		 ctl_hold;	/* "mailrootctl hold": not tried
					 * and not expired until released;
					 * in the envelope */
	uint8_t		 waiting;	/* 1: new mail, 2: a retry
					 * (queue_index.c) */
	uint8_t		 delay_notified;	/* delay.c: report sent */
	uint8_t		 envw;		/* queue_commit.c: ENVW_* */
	uint8_t		 qbits;		/* metrics.c: counted as pending
					 * local (1), remote (2) */
	char		 id[];		/* allocated at its length */
};

struct queued {
	struct event_base	*base;
	struct mr_config	*cfg;
	struct qserver		*servers;
	size_t			 nservers;
	struct mr_ipc		*smtpd;
	struct mr_ipc		*deliverd;
	struct qmsg		*msgs;		/* every message in the queue */
	size_t			 nmsgs;
	uint64_t		 next_job;
	int			 held;		/* recovered messages wait for
						 * deliverd's replays */
	int			 recovering;	/* the queue is still being
						 * read (queue_sched.c) */
	struct event		*hold_timer;
	int			 stopping;
	int			 await_deliverd; /* stopping: its last results */
};

extern struct queued *q;

/* m's job at deliverd, 0 if none */
static inline uint64_t
msg_job(const struct qmsg *m)
{
	return m->act != NULL ? m->act->job : 0;
}

/* m's LMTP session, NULL if none */
static inline struct lmtp_sess *
msg_lmtp(const struct qmsg *m)
{
	return m->act != NULL ? m->act->lmtp : NULL;
}

/* queued.c */
void	queued_stop_step(void);	/* stopping: exits the loop once safe */
void	queued_drop_smtpd(void);
void	queued_drop_deliverd(void);
/* Tells deliverd of a flush (MR_D_FLUSH): server index or MR_FLUSH_ALL,
 * domain or "" for every next hop; it lifts the marks of hops down. */
void	queued_flush_deliverd(uint32_t si, const char *domain);

/* ptr_relay.c: reverse DNS lookups, smtpd -> deliverd and back; -1 when
 * the frame does not decode (drop the sender) */
int	ptr_relay_request(const unsigned char *, size_t);
int	ptr_relay_answer(const unsigned char *, size_t);

/* queue_commit.c: receiving new messages from smtpd */
void	commit_new(struct mr_ipc *, const unsigned char *, size_t);
void	commit_commit(const unsigned char *, size_t);
void	commit_abort(const unsigned char *, size_t);
void	commit_drop_all(void);	/* smtpd went away */
void	commit_init(void);
void	commit_new_channel(void);
int	commit_idle(void);
void	commit_unlink(const char *path);
int	commit_trash_behind(void);
/* queue_commit.c: envelope rewrites batched in the rewrite worker */
#define ENVW_QUEUED	1	/* waiting for the next batch */
#define ENVW_FLIGHT	2	/* in the rewrite worker's batch */
void	commit_env_later(struct qmsg *);
void	commit_env_wait(struct qmsg *);
int	commit_env_behind(void);	/* too many rewrites wait */
void	commit_env_forget(struct qmsg *);
void	commit_shutdown(void);
/* a message queued wrote itself (Pickup) into Queue/ID.eml through fd:
 * committed like smtpd's, then claim is removed before it is scheduled */
void	commit_local(struct qmsg *, int fd, const char *claim);
/* the same without a claim: done(m, failed, arg) once it is durable or
 * failed (before it is scheduled) */
void	commit_local_cb(struct qmsg *, int fd,
	    void (*done)(const struct qmsg *, int failed, void *), void *arg);

/* pickup.c: the Pickup folders */
void	pickup_init(void);	/* once the queue is recovered */
void	pickup_done(const struct qmsg *, int failed);

/* queue_env.c: the envelope file beside each message */
int	 env_write(struct qmsg *);	/* durable, atomic */
void	 env_format(const struct qmsg *, struct mr_buf *);
/* writes the envelope to path (fsynced when sync) */
int	 env_write_file(const char *path, const struct qmsg *, int sync);
/* writes the envelope to path, unflushed: the descriptor, or -1 */
int	 env_create(const char *path, const struct qmsg *);
int	 env_stamp(int fd, time_t next_try);	/* mtime = next try */
struct qmsg *env_read(struct qserver *, const char *id, int *torn);
int	 env_parse(struct qmsg *, char *text, size_t len);
struct qmsg *msg_new(struct qserver *, const char *id);	/* zeroed */
void	 msg_free(struct qmsg *);
void	 rcpts_free(struct qrcpt *, size_t n);	/* and the array */
void	 msg_path(const struct qmsg *, const char *ext, char *, size_t);

/* queue_journal.c: the envelopes of new messages, per Queue */
void	 journal_init(void);
uint32_t journal_append(size_t server, const struct mr_buf *);	/* worker */
int	 journal_check(size_t server);			/* worker */
void	 journal_hold(struct qmsg *, size_t server, uint32_t seq);
void	 journal_release(struct qmsg *);
void	 journal_recover(struct qserver *);
void	 journal_shutdown(void);	/* after commit_shutdown */

/* qstr.c: shared strings (sender, client, HELO, reply texts); NULL is
 * taken and given back as NULL */
const char *qstr_get(const char *);		/* a reference */
void	qstr_put(const char *);			/* drops one */
void	qstr_set(const char **field, const char *);	/* replaces */

/* queue_clock.c: the time the queue runs by (a test may shift it) */
time_t	q_now(void);
void	clock_init(void);

/* queue_index.c: messages by id and by job; the active set */
void	index_add(struct qmsg *);
void	index_del(struct qmsg *);
struct qmsg *index_find(const char *id);
struct qact *act_get(struct qmsg *);	/* made if m has none */
void	act_put(struct qmsg *);		/* freed if nothing uses it */
void	job_start(struct qmsg *, uint64_t job);
void	job_end(struct qmsg *);
struct qmsg *job_find(uint64_t job);
int	job_room(void);
void	wait_push(struct qmsg *);
void	wait_del(struct qmsg *);
struct qmsg *wait_pop(int retries);

/* queue_sched.c: delivery scheduling and results */
void	sched_recover(void);	/* lists the queue, reads it in slices */
int	sched_recovering(size_t *done, size_t *total);
void	sched_add(struct qmsg *);	/* a committed message */
void	sched_result(const unsigned char *, size_t);
void	sched_replay(const unsigned char *, size_t);
void	sched_release(void);	/* recovered messages may now be tried */
void	sched_deliverd_up(void);
void	sched_deliverd_lost(void);
void	sched_clock_changed(void);	/* re-arms every timer */
void	sched_now(struct qmsg *);	/* tries m from the loop, now */
void	sched_feed(void);	/* room came (queue_commit.c): tries what waits */
void	sched_forget(struct qmsg *);	/* m is freed: off the timers */

/* etrn.c: hold-for-etrn */
int	etrn_held(const struct qmsg *, size_t rcpt);
void	etrn_request(const unsigned char *, size_t);	/* MR_Q_ETRN */
/* releases domain's mail on a server: messages, -1 if not held there */
long	etrn_release(size_t server, const char *domain);
/* m was read by recovery: the releases made before are applied to it */
void	etrn_recovered(struct qmsg *);

/* queue_sched.c: what the control socket does to one message */
int	sched_retry(struct qmsg *);	/* try now; -1 if at deliverd */
void	sched_hold(struct qmsg *, int on, int was_checked);
void	sched_remove(struct qmsg *);	/* deletes it from the queue */
void	sched_return(struct qmsg *, const char *reason); /* bounce it */

/* sessions.c: the SMTP sessions in progress (MR_Q_SESSION) */
int	sessions_update(const unsigned char *, size_t);	/* -1: malformed */
void	sessions_clear(void);		/* smtpd went away */
size_t	sessions_count(size_t server);	/* in progress, for metrics */

/* outbound.c: deliverd's outbound sessions (MR_D_SESSION) and counters
 * (MR_D_COUNT); -1: malformed */
struct mr_buf;
int	outbound_session(const unsigned char *, size_t);
int	outbound_count(const unsigned char *, size_t);
void	outbound_clear(void);			/* deliverd went away */
size_t	outbound_connections(size_t server);	/* open, for metrics */
/* the outbound part of mailrootctl sessions, into b (JSON or columns) */
void	outbound_verb(struct mr_buf *b, const char *server, int json);

/* control.c: the control socket (mailrootctl) */
void	control_init(void);	/* before the sandbox: group members */
void	control_start(void);	/* serves MR_FD_CONTROL if it is one */

/* metrics.c: Prometheus counters ("metrics listen", MR_FD_METRICS) */
enum mc_counter {
	MC_RECEIVED, MC_DELIVERED, MC_SENT, MC_FAILED, MC_NDRS, MC_BADMAIL,
	MC_BYTES, MC_RETRIES, MC_CONNECTIONS,
	/* deliverd's (MR_D_COUNT, outbound.c) */
	MC_OUT_CONNECTIONS, MC_BYTES_SENT, MC_DNS_LOOKUPS, MC_DNS_FAILURES,
	MC_N
};
void	metrics_add(const struct qserver *, enum mc_counter, uint64_t);
/* a committed message's size, in the size histogram */
void	metrics_size(const struct qserver *, uint64_t bytes);
void	metrics_done(const struct qmsg *);	/* it leaves the queue */
void	metrics_queue(struct qmsg *, int in);	/* queue counts */
void	metrics_start(void);	/* serves MR_FD_METRICS if it is one */
void	metrics_shutdown(void);
/* MR_M_RESTARTS from mailrootd: each child's restarts */
void	metrics_restarts(const unsigned char *, size_t);

/* w3clog.c: the transaction logs (W3C Extended) */
void	w3clog_init(void);		/* before the sandbox */
const char *w3clog_dir(size_t server);	/* for the sandbox, or NULL */
int	w3clog_add(const unsigned char *, size_t);	/* MR_Q_LOG */
void	w3clog_shutdown(void);

/* bounce.c: DSNs and Badmail; 0 when the failure is reported */
int	bounce_send(const struct qmsg *);
void	dsn_status_of(const char *text, char *out, size_t, const char *def);
void	dsn_original_headers(int datafd, struct mr_buf *);
int	dsn_enqueue(const struct qmsg *, const char *nid, const struct mr_buf *,
	    int copy);

/* delay.c: `delay-notify' */
time_t	delay_at(const struct qmsg *);		/* 0: none due */
void	delay_check(struct qmsg *, time_t expires);

/* alias.c: recipients rewritten through their domain's aliases table
 * (before the envelope is written); -1 if a table failed (temporary). */
int	alias_expand(struct qmsg *, char *err, size_t errlen);
void	alias_shutdown(void);	/* closes the tables */
/* the configuration's table name, opened (shared with alias.c), or NULL */
struct mr_tbl *alias_table(const char *name);

/* hdr_filter.c: the server's header-checks on a message; the action
 * (enum mr_hc_action, hdr_check.h) and, for a REJECT, the reason */
int	hdr_filter(const struct qmsg *, const char *data, size_t len,
	    char *text, size_t textlen);
int	hdr_filter_fd(const struct qmsg *, int fd, char *text,
	    size_t textlen);

/* dkim_sign.c: DKIM signatures, made when a message is committed */
struct dkim_set;
void	dkim_load(const struct mr_config *);	/* start (sandboxed), reload */
void	dkim_shutdown(void);
struct dkim_set *dkim_ref(const struct qserver *);	/* NULL: no keys */
void	dkim_unref(struct dkim_set *);
/* in the commit worker: 1 signed, 0 unsigned, -1 failed (note: why) */
int	dkim_sign(const struct dkim_set *, const char *path, const char *tmp,
	    int *fd, uint64_t *size, char *note, size_t notelen);

/* rcpt_check.c: MR_Q_RCPT_CHECK from smtpd */
void	rcpt_check(struct mr_ipc *, const unsigned char *, size_t);

/* submit.c: mailroot-sendmail's socket (MR_FD_SUBMIT) */
void	submit_init(void);
void	submit_shutdown(void);

/* passwd.c: local users and groups, from the files */
int	pw_name_of(uid_t, char *name, size_t len);
/* 1 if user (primary group gid) is in list: names and "@group"s */
int	pw_listed(const char *user, gid_t gid, char *const *list, size_t n);

/* auth_verify.c: AUTH credentials checked on a worker thread */
void	auth_init(void);
void	auth_request(const unsigned char *, size_t);	/* MR_Q_AUTH */
void	auth_new_channel(void);
void	auth_shutdown(void);
/* auth_dovecot.c: one check against Dovecot's auth socket (worker
 * thread; blocks up to 10 s); an enum mr_auth_res, why in err */
uint32_t auth_dovecot_check(const char *path, const char *user,
	    const char *pass, int secured, char *err, size_t errsz);

/* queue_sched.c: where a local recipient goes */
enum mr_deliver local_how(const struct qmsg *, size_t rcpt);
int	drop_rcpt(const struct qmsg *, size_t rcpt);	/* pending, Drop */

/* drop.c: local delivery */
int	drop_deliver(struct qmsg *, int datafd, char *err, size_t errlen);

/* maildir.c: `deliver maildir' (0 sent, 1 failed, -1 try again) */
int	maildir_deliver(struct qmsg *, size_t rcpt, const struct mr_domain *,
	    int datafd, char *err, size_t errlen);
int	maildir_expand(const char *tmpl, const char *addr, const char *dom,
	    struct mr_buf *);
char	*maildir_root(const char *tmpl);	/* for Landlock */

/* lmtp.c: `deliver lmtp'; 1 while a session runs, then
 * sched_lmtp_done(m) is called from the loop */
int	lmtp_start(struct qmsg *, int datafd);
const struct mr_domain *local_domain(const struct qmsg *, size_t rcpt);
void	sched_lmtp_done(struct qmsg *);

#endif
