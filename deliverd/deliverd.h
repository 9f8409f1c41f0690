/*
 * deliverd.h - the outbound delivery process: jobs, destinations,
 * SMTP sessions and the resolver, as the three deliverd files share them.
 *
 * Security: deliverd runs unprivileged.  Jobs from queued are checked
 * (deliverd.c) before anything here sees them; replies from remote servers
 * are untrusted text that is parsed, bounded and cleaned (smtp_client.c)
 * before it reaches a log line or a result.
 */
#ifndef MR_DELIVERD_H
#define MR_DELIVERD_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "dane.h"

struct event_base;
struct mr_ipc;
struct smtp_sess;

/* One recipient of a job and, once known, its result. */
struct rcpt {
	char		*addr;
	char		*domain;	/* lower-cased copy */
	int		 status;	/* 0 = pending, else enum mr_dstatus */
	char		*text;
	unsigned	 notify;	/* DSN NOTIFY bits, 0: not given */
	char		*orcpt;		/* DSN ORCPT, "" = none */
};

/* A message queued asked us to deliver (MR_D_JOB). */
struct job {
	TAILQ_ENTRY(job)	 entry;
	uint64_t		 id;
	const struct mr_server	*srv;
	size_t			 srvidx;
	char			*qid;
	char			*sender;
	struct rcpt		*rcpts;
	size_t			 nrcpt;
	int			 fd;		/* message data, read-only */
	char			*head;		/* masquerade-from: sent
						 * in place of the file's
						 * first head_skip bytes;
						 * or NULL */
	size_t			 head_len, head_skip;
	uint32_t		 body;		/* enum mr_body: MAIL BODY= */
	int			 smtputf8;	/* MAIL SMTPUTF8 (RFC 6531) */
	int			 needs_utf8;	/* smtputf8 and a non-ASCII
						 * address in the envelope */
	char			*auth;		/* MAIL AUTH=, NULL = none */
	uint32_t		 ret;		/* DSN RET (enum mr_dsn_ret) */
	char			*envid;		/* DSN ENVID, "" = none */
	off_t			 size;
	struct delivery		**dlv;		/* one per destination */
	size_t			 ndlv;
	size_t			 pending;	/* deliveries not finished */
	int			 orphan;	/* its queued is gone: finish,
						 * keep the results for replay */
};

enum dest_kind {
	DEST_MX,	/* MX of name, implicit MX on NODATA */
	DEST_HOST,	/* A/AAAA of name (smart host, route) */
	DEST_LITERAL	/* name is an IP address, no DNS */
};

/*
 * A next hop: the MX hosts of a domain, or a smart host / route.
 * Recipients of a job that share one are sent in one transaction, and
 * the connection limits count per destination.
 */
struct dest {
	TAILQ_ENTRY(dest)	 entry;
	char			*key;
	const struct mr_server	*srv;
	size_t			 srvidx;
	enum dest_kind		 kind;
	char			*name;		/* domain, host or IP */
	unsigned		 port;
	int			 esmtp;
	enum mr_tls_out		 tls;
	struct mr_tls_trust	 trust;		/* a copy: outlives reloads */
	enum mr_out_auth	 auth;
	char			*auth_user;
	char			*auth_password_file;
	unsigned		 rate;		/* messages per rate_window */
	unsigned		 rate_window;	/* seconds */
	int			 dane;		/* DANE may apply (dane.c) */
	unsigned		 nconn;		/* sessions open */
	TAILQ_HEAD(, delivery)	 queue;		/* waiting for a session */
	/* down (deliverd.c, "next hop down"): deliveries are deferred at
	 * once, without a connection, until down_until on dest_clock() */
	uint64_t		 down_until;	/* 0: not marked down */
	char			*down_why;	/* the failure that marked it */
	uint64_t		 nsent;		/* deliveries that got through */
};

/* One SMTP transaction: a job's recipients that share a destination. */
struct delivery {
	TAILQ_ENTRY(delivery)	 entry;
	struct job		*job;
	struct dest		*dest;
	size_t			*idx;		/* into job->rcpts */
	size_t			 n;
	struct smtp_sess	*sess;		/* NULL while waiting */
	int			 queued;	/* on dest->queue */
	int			 done;
	unsigned		 hop;		/* try: 0 first (dest_route) */
	/* recipients over recipients-per-message: the next transaction,
	 * queued when this one is done, on the same connection */
	struct delivery		*next_part;
	int			 cont;		/* a next part itself */
};

/* auth_client.c */
#define AUTH_MECH_PLAIN	0x1
#define AUTH_MECH_LOGIN	0x2
#define AUTH_MECH_XOAUTH2	0x4
#define AUTH_OFFERED	0x100	/* EHLO said AUTH: MAIL AUTH= may be sent */
struct mr_buf;
unsigned	 auth_ehlo_mechs(const char *list);
int		 auth_secret_read(const char *path, char *buf, size_t size);
void		 auth_b64(struct mr_buf *, const void *, size_t);
int		 auth_response(const struct dest *, int step, struct mr_buf *,
		    const char **why);

/* tls_client.c: outbound TLS as the destination's policy wants it */
struct mr_buf;
struct ssl_st;
int		 tls_client_init(void);
void		 tls_client_fini(void);
/* A client SSL for a's host (SNI, the name to verify), offering a
 * session to resume (tls_sess.c); NULL with why. */
struct mx_addr;
struct ssl_st	*tls_client_ssl(const struct dest *,
		    const struct mx_addr *a, struct mr_buf *why);
/* After the handshake: does the peer pass the policy?  0, or -1 with
 * why (tls fingerprint: no pinned digest matches). */
int		 tls_client_check(struct ssl_st *, const struct dest *,
		    struct mr_buf *why);
/* The verifying context of a CA file (NULL: the system's store), for
 * other clients of deliverd (the MTA-STS policy fetch); NULL with why. */
struct ssl_ctx_st *tls_client_verify_ctx(const char *ca_file,
		    struct mr_buf *why);
/* Why a handshake failed, in words, into buf. */
void		 tls_client_error(struct ssl_st *, const struct dest *,
		    unsigned long e, char *buf, size_t size);

/* tls_sess.c: the outbound session cache */
/* Makes ctx file the sessions of the SSLs tls_sess_offer tagged. */
int		 tls_sess_init(struct ssl_ctx_st *);
/* Tags ssl with its cache key, offering a session filed under it. */
int		 tls_sess_offer(struct ssl_st *, const struct dest *,
		    const struct mx_addr *);
/* The policy accepted ssl's peer: its sessions may be filed. */
void		 tls_sess_checked(struct ssl_st *);
/* Forgets the sessions made with a context (NULL: all). */
void		 tls_sess_flush(struct ssl_ctx_st *);

/* deliverd.c: what the SMTP client calls back. */
void		 deliverd_done(struct delivery *, const char *relay);
struct delivery	*deliverd_next(struct dest *, unsigned sent);
/* may a session that sent `sent' messages wait idle for the next one? */
int		 deliverd_may_keep(const struct dest *, unsigned sent);
/* puts a delivery back at the head of its destination's queue */
void		 deliverd_requeue(struct delivery *);
/* status != 0: every delivery still waiting for dest ends so too */
void		 deliverd_sess_end(struct dest *, int status,
		    const char *why);
/* A session failed at every address of dest; since it started, nsent
 * was sent_at_start: marks dest down if nothing got through meanwhile. */
void		 deliverd_dest_failed(struct dest *, uint64_t sent_at_start,
		    const char *why);
void		 deliverd_set(struct delivery *, size_t i, int status,
		    const char *text);
struct event_base *deliverd_base(void);
/* the channel to queued, NULL while queued is down */
struct mr_ipc	*deliverd_queued(void);

/* ptr_resolve.c: reverse lookups of smtpd's clients (MR_R_PTR) */
int		 ptr_init(struct event_base *, const char *resolver);
void		 ptr_fini(void);
int		 ptr_request(const unsigned char *, size_t);

const struct mr_config *deliverd_config(void);

/* self.c: is this address and port one of our own listeners? */
int		 self_listens(const struct sockaddr_storage *);

/* rate.c: per-destination rate limits */
int		 rate_take(const char *key, unsigned max, unsigned window);
void		 rate_untake(const char *key);	/* the last take, unsent */
void		 rate_fini(void);

/* smtp_client.c */
int		 smtp_init(void);
void		 smtp_fini(void);
struct smtp_sess *smtp_start(struct dest *, struct delivery *);
void		 smtp_abort(struct smtp_sess *);
int		 smtp_reuse(struct dest *, struct delivery *);
int		 smtp_evict_idle(size_t srvidx);

/* mx_resolve.c: where a destination's mail goes, as connectable
 * addresses in the order to try them. */
struct mx_addr {
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			*host;		/* MX or host name, or IP */
	int			 dnssec;	/* DANE_SECURE: the MX and these
						 * address records validated */
	struct dane_tlsa	*tlsa;		/* its secure TLSA records, or
						 * NULL (dane.c) */
};

struct mx_result {
	int		 status;	/* 0, MR_DS_TEMP or MR_DS_PERM */
	char		*error;		/* when status != 0 */
	struct mx_addr	*addrs;
	size_t		 naddrs;
};

struct mx_query;
typedef void	(*mx_cb)(struct mx_result *, void *arg);

struct ub_ctx;
int		 mx_init(struct event_base *, const char *resolver,
		    const char *trust_anchor);
/* resolv.conf and hosts into a context; either may be missing */
int		 mx_system_resolver(struct ub_ctx *);
void		 mx_fini(void);
struct ub_ctx;
struct ub_ctx	*mx_ub(void);
/* Never calls back before returning.  The callback owns the result
 * (mx_result_free) and the query is gone once it has run. */
struct mx_query	*mx_resolve(enum dest_kind, const char *name,
		    unsigned port, int dane, mx_cb, void *arg);
void		 mx_cancel(struct mx_query *);
void		 mx_result_free(struct mx_result *);
/* "1.2.3.4", "IPv6:::1" or "::1" to an address; -1 if not an IP. */
int		 mx_parse_ip(const char *, unsigned port,
		    struct sockaddr_storage *, socklen_t *);

/*
 * dane.c: DANE for direct MX delivery (RFC 7672).  The SMTP client asks
 * dane_tls_policy() which policy an address gets; MR_TLS_OUT_DANE means
 * the session is dane_client_ssl()'s and its peer is judged by
 * dane_client_check().  dane_applies() says whether DANE decides for an
 * address (RFC 8461 2: DANE takes precedence over MTA-STS there).
 */
struct ub_ctx;
struct dane_req;
typedef void	(*dane_cb)(struct mx_result *, void *arg);
int		 dane_init(struct ub_ctx *, const char *trust_anchor);
void		 dane_fini(void);
int		 dane_validating(void);
/* TLSA lookups for the secure hosts of res; NULL when nothing is to
 * be waited for (res is then complete), else cb gets res later. */
struct dane_req	*dane_lookup(struct ub_ctx *, struct mx_result *res,
		    unsigned port, dane_cb, void *arg);
void		 dane_cancel(struct dane_req *);	/* frees res too */
enum mr_tls_out	 dane_tls_policy(const struct dest *, const struct mx_addr *);
int		 dane_applies(const struct mx_addr *);
struct ssl_st	*dane_client_ssl(const struct mx_addr *, struct mr_buf *why);
int		 dane_client_check(struct ssl_st *, const struct mx_addr *,
		    struct mr_buf *why);
void		 dane_client_error(struct ssl_st *, const struct mx_addr *,
		    unsigned long e, char *buf, size_t size);

struct mr_ipc;

/* replay.c */
void	replay_record(const char *qid, const char *rcpt, int status,
	    const char *text, size_t textmax);
void	replay_send(struct mr_ipc *);
void	replay_free(void);

/* sess_report.c: outbound sessions and counters, told to queued */
struct osess_report {
	uint32_t	 op;		/* enum mr_sess_op */
	uint64_t	 id;
	size_t		 srvidx;
	const char	*host;
	const char	*addr;		/* "" before a connection */
	unsigned	 port;
	uint32_t	 state;		/* enum mr_osess_state */
	const char	*command;	/* "" = none */
	uint32_t	 sent;		/* messages accepted on it */
	time_t		 start;
};
void	report_session(const struct osess_report *);
void	report_count(size_t srvidx, uint32_t counter, uint64_t amount);
void	report_later(void);	/* a pass at most 200 ms from now */
void	report_flush(void);	/* the counters' sums, now */
void	report_fini(void);
/* smtp_client.c: every open session again, to a new queued */
void	smtp_report_all(void);
/* smtp_client.c: sessions whose state changed since they were reported */
void	smtp_report_due(void);

/* dest_down.c: next hops marked down */
uint64_t	 dest_clock(void);		/* seconds */
const char	*dest_clock_file(void);
int		 dest_is_down(struct dest *);	/* lifts an expired mark */
void		 dest_mark_down(struct dest *, const char *why);
void		 dest_lift(struct dest *, const char *how);
void		 dest_down_text(const struct dest *, struct mr_buf *);
int		 dest_flush_match(const struct dest *, uint32_t si,
		    const char *domain);

/* masquerade.c: masquerade-domain on the envelope sender, and on the
 * From fields with masquerade-from */
void		 masquerade(struct job *);

#endif
