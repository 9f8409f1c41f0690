/*
 * smtp_client.c - the outbound SMTP session: connect to a destination's
 * addresses in turn, EHLO (HELO on `esmtp no' or after a 5xx to EHLO,
 * never the IIS "ESMTP off" trap), STARTTLS, then one or more
 * transactions (MAIL, RCPT, DATA with dot-stuffing; MAIL, the RCPTs
 * and DATA in one write where the server offers PIPELINING, RFC 2920),
 * then QUIT.  A
 * connection with nothing left to send is kept IDLE_KEEP seconds for the
 * next message to the same destination (up to messages-per-connection);
 * if the server closed it meanwhile, that message goes back to wait for
 * a fresh connection at no cost.
 *
 * Security: the remote server is untrusted.  Replies are parsed line by
 * line with bounded length and line count, their text is cleaned of
 * control bytes before it is logged or reported, and bytes a server
 * sends after its 220 to STARTTLS, ahead of the TLS handshake, are
 * discarded unread (STARTTLS response injection); the TLS policy's
 * checks are tls_client.c's.  A misbehaving server costs its own session
 * only.  The envelope strings come from deliverd.c, checked to hold no
 * CR, LF or other control byte, so they cannot inject SMTP commands.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "dsn_param.h"
#include "log.h"
#include "proto.h"
#include "sasl.h"
#include "smtp_reply.h"
#include "xoauth2.h"
#include "deliverd.h"
#include "mta_sts.h"

#define BODY_CHUNK	(64 * 1024)
#define BODY_HIGH	(256 * 1024)	/* output kept queued while sending */
#define IDLE_KEEP	5		/* seconds an unused connection waits */
#define ZEROCOPY_MIN	(64 * 1024)	/* bodies this big go out by sendfile */
#define ZEROCOPY_RUN	(16 * 1024)	/* in runs at least this long */
#define LINE_OCTETS_MAX	998		/* RFC 5321 4.5.3.1.6, CRLF apart */

enum smtp_state {
	S_RESOLVE,
	S_CONNECT,
	S_GREETING,
	S_EHLO,
	S_HELO,
	S_STARTTLS,
	S_TLS,		/* handshake in progress */
	S_AUTH,		/* AUTH, auth_step says where */
	S_RSET,
	S_MAIL,
	S_RCPT,
	S_DATA,
	S_BODY,		/* sending the message */
	S_DOT,		/* waiting for the end-of-data reply */
	S_IDLE,		/* kept for the next message */
	S_QUIT
};

static const char *const state_what[] = {
	[S_RESOLVE] = "resolving",
	[S_CONNECT] = "connecting",
	[S_GREETING] = "receiving the initial server greeting",
	[S_EHLO] = "sending EHLO",
	[S_HELO] = "sending HELO",
	[S_STARTTLS] = "sending STARTTLS",
	[S_TLS] = "performing the TLS handshake",
	[S_AUTH] = "authenticating",
	[S_RSET] = "sending RSET",
	[S_MAIL] = "sending MAIL FROM",
	[S_RCPT] = "sending RCPT TO",
	[S_DATA] = "sending DATA",
	[S_BODY] = "sending the message body",
	[S_DOT] = "waiting for the end of data reply",
	[S_IDLE] = "waiting for the next message",
	[S_QUIT] = "sending QUIT"
};

struct smtp_sess {
	TAILQ_ENTRY(smtp_sess)	 entry;
	struct dest		*dest;
	struct delivery		*dlv;
	struct mta_sts_query	*stsq;		/* MTA-STS lookup in flight */
	struct mta_sts		*sts;		/* the domain's policy, NULL:
						 * none (mta_sts.c) */
	enum mta_sts_host	 sts_host;	/* what it asks of this host */
	struct mx_query		*mxq;
	struct mx_result	*addrs;
	size_t			 ai;		/* address being tried */
	int			 notls;		/* retry of ai in plain text */
	enum mr_tls_out		 tls;		/* the policy for ai (DANE's
						 * or the destination's) */
	struct bufferevent	*bev;
	enum smtp_state		 state;
	int			 tls_on;
	int			 ehlo_failed;	/* 5xx to EHLO: HELO now */
	int			 ext_starttls;
	int			 ext_size;
	int			 ext_pipelining;
	int			 ext_8bitmime;
	int			 ext_smtputf8;	/* RFC 6531 */
	unsigned		 ext_auth;	/* AUTH_OFFERED | AUTH_MECH_* */
	int			 auth_step;
	char			 auth_status[MR_XOAUTH2_STATUS_MAX + 1];
	int			 authed;
	int			 ext_dsn;
	int			 pipelined;	/* this transaction's commands
						 * went out together */
	int			 mail_failed;	/* pipelined: MAIL refused */
	uint64_t		 size_max;
	char			 relay[320];	/* "host[ip]:port" */
	struct mr_buf		 reply;		/* text of the reply so far */
	int			 code;		/* of the reply so far */
	unsigned		 nlines;
	size_t			 ri;		/* next RCPT */
	unsigned char		*accepted;
	size_t			 naccepted;
	off_t			 off;		/* body read offset */
	struct evbuffer_file_segment *seg;	/* the message, for sendfile */
	int			 bol, cr;	/* dot-stuffing state */
	size_t			 col;		/* octets on the line so far */
	int			 need_rset;
	int			 reused;	/* taken from idle, no reply yet */
	int			 evicted;	/* idle, told to QUIT for room */
	unsigned		 sent;		/* transactions on this connection */
	char			*lasterr;	/* why the last address failed */
	uint64_t		 dest_sent;	/* dest->nsent at the start */
	struct event		*defer;		/* runs the next step */
	struct event		*deadline;	/* the awaited reply is late */
	void			(*deferred)(struct smtp_sess *);
	int			 inside;	/* callbacks running */
	int			 zombie;	/* ended; free when outermost */
	int			 end_status;
	char			*end_why;
	/* ---- as mailrootctl sessions lists it (sess_report.c) ---- */
	uint64_t		 rep_id;
	time_t			 rep_start;
	int			 rep_state;	/* last reported, -1 none */
	int			 rep_due;	/* a state waits for the pass */
	unsigned		 rep_sent;	/* messages accepted */
};

static TAILQ_HEAD(, smtp_sess) sessions = TAILQ_HEAD_INITIALIZER(sessions);
static int	 finishing;
static uint64_t	 last_id;	/* sessions numbered for mailrootctl */

static void	sess_try_addr(struct smtp_sess *);
static void	sess_host_fail(struct smtp_sess *, const char *);
static void	sess_auth(struct smtp_sess *);
static void	sess_ehlo(struct smtp_sess *);
static void	sess_cmd(struct smtp_sess *, enum smtp_state, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void	sess_readcb(struct bufferevent *, void *);
static void	sess_writecb(struct bufferevent *, void *);
static void	sess_eventcb(struct bufferevent *, short, void *);

/* ---- set-up ---- */

int
smtp_init(void)
{
	return tls_client_init();
}

static void	sess_destroy(struct smtp_sess *);
static void	sess_report(struct smtp_sess *, uint32_t op);

void
smtp_fini(void)
{
	struct smtp_sess *s;

	finishing = 1;
	while ((s = TAILQ_FIRST(&sessions)) != NULL)
		sess_destroy(s);
	tls_client_fini();
}

/* ---- session life ---- */

static void	sess_seg_free(struct smtp_sess *);

static void
sess_close(struct smtp_sess *s)
{
	sess_seg_free(s);
	if (s->deadline != NULL)
		evtimer_del(s->deadline);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	s->bev = NULL;
	s->tls_on = 0;
}

static void
sess_destroy(struct smtp_sess *s)
{
	struct dest *dest = s->dest;
	int status = s->end_status;
	char *why = s->end_why;

	TAILQ_REMOVE(&sessions, s, entry);
	report_flush();		/* its counters before its end */
	sess_report(s, MR_SESS_GONE);
	if (s->dlv != NULL)
		s->dlv->sess = NULL;
	mta_sts_cancel(s->stsq);
	free(s->sts);
	mx_cancel(s->mxq);
	mx_result_free(s->addrs);
	sess_close(s);
	if (s->defer != NULL)
		event_free(s->defer);
	if (s->deadline != NULL)
		event_free(s->deadline);
	mr_buf_free(&s->reply);
	free(s->accepted);
	free(s->lasterr);
	free(s);
	if (!finishing)
		deliverd_sess_end(dest, status, why);
	free(why);
}

/* Ends the session: now, or when the outermost callback returns. */
static void
sess_end(struct smtp_sess *s, int status, const char *why)
{
	if (s->zombie)
		return;
	s->zombie = 1;
	s->end_status = status;
	s->end_why = why ? mr_xstrdup(why) : NULL;
	sess_close(s);
	if (s->inside == 0)
		sess_destroy(s);
}

static void
sess_enter(struct smtp_sess *s)
{
	s->inside++;
}

/* States whose output is complete when a callback leaves: the session
 * then waits for a reply, and nothing needs the write callback. */
static int
sess_pushable(const struct smtp_sess *s)
{
	switch (s->state) {
	case S_EHLO:
	case S_HELO:
	case S_RSET:
	case S_MAIL:
	case S_RCPT:
	case S_DATA:
	case S_DOT:
	case S_QUIT:
		return !s->tls_on && s->bev != NULL &&
		    bufferevent_get_underlying(s->bev) == NULL;
	default:
		return 0;
	}
}

/*
 * Writes what a callback queued before it returns, as smtpd writes its
 * replies.  Left to the bufferevent, every batch of commands or small
 * message would add the write event for EPOLLOUT, wait a pass of the
 * loop, write, and remove it: two epoll_ctl calls and a wake-up each.
 * Once the output is empty the write event the bufferevent added in
 * this pass is removed before the loop applies it (libevent's epoll
 * change list then makes no call).  What cannot go at once (a full
 * socket, an error, or an evbuffer_write that refuses, as where a newer
 * libevent keeps a bufferevent's output frozen) stays for the
 * bufferevent, which writes it or reports the error as before.  TLS,
 * the connect and a message's body in progress keep the usual path:
 * they need the write callback.
 */
static void
sess_push(struct smtp_sess *s)
{
	struct evbuffer *out;
	evutil_socket_t fd;

	if (!sess_pushable(s))
		return;
	out = bufferevent_get_output(s->bev);
	if (evbuffer_get_length(out) == 0 ||
	    (fd = bufferevent_getfd(s->bev)) < 0)
		return;
	if (evbuffer_write(out, fd) > 0 && evbuffer_get_length(out) == 0)
		event_del(&s->bev->ev_write);
}

static void
sess_leave(struct smtp_sess *s)
{
	if (s->inside == 1 && !s->zombie)
		sess_push(s);
	if (--s->inside == 0 && s->zombie)
		sess_destroy(s);
	else if (s->inside == 0 && s->rep_state != (int)s->state) {
		s->rep_due = 1;		/* as the callback left it, */
		report_later();		/* at the next pass */
	}
}

static void
sess_defer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct smtp_sess *s = arg;
	void (*fn)(struct smtp_sess *) = s->deferred;

	(void)fd;
	(void)ev;
	s->deferred = NULL;
	sess_enter(s);
	if (fn != NULL && !s->zombie)
		fn(s);
	sess_leave(s);
}

/* Runs fn from the event loop: a step never recurses into the next. */
static void
sess_defer(struct smtp_sess *s, void (*fn)(struct smtp_sess *))
{
	s->deferred = fn;
	event_active(s->defer, 0, 0);
}

void
smtp_abort(struct smtp_sess *s)
{
	if (s->dlv != NULL)
		s->dlv->sess = NULL;
	s->dlv = NULL;
	sess_end(s, 0, NULL);
}

/*
 * How long the current step may take: RFC 5321 4.5.3.2's times by
 * default (5 minutes for the greeting and each command, 2 for the 354,
 * 3 for each block of the message, 10 for the end-of-data reply), none
 * longer than the outbound timeout (IIS RemoteTimeout).
 */
static unsigned
sess_timeout(const struct smtp_sess *s)
{
	const struct mr_outbound *o = &s->dest->srv->delivery.outbound;
	unsigned t;

	switch (s->state) {
	case S_RESOLVE:
	case S_CONNECT:
		t = o->connect_timeout;
		break;
	case S_GREETING:
		t = o->greeting_timeout;
		break;
	case S_DATA:
		t = o->data_timeout;
		break;
	case S_BODY:
		t = o->block_timeout;
		break;
	case S_DOT:
		t = o->dot_timeout;
		break;
	default:
		t = o->command_timeout;
		break;
	}
	if (o->timeout != 0 && (t == 0 || t > o->timeout))
		t = o->timeout;
	return t != 0 ? t : 600;
}

/*
 * Writing (connect, the message) times out without progress; a reply
 * must be complete by a deadline, so that a server trickling an endless
 * reply a byte at a time is cut off as surely as a mute one.
 */
static void
sess_timeouts(struct smtp_sess *s, int reading)
{
	struct timeval tv = { .tv_sec = sess_timeout(s) };

	bufferevent_set_timeouts(s->bev, NULL, &tv);
	if (reading)
		evtimer_add(s->deadline, &tv);
	else
		evtimer_del(s->deadline);
}

static void	sess_event_fail(struct smtp_sess *, short);

static void
sess_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct smtp_sess *s = arg;

	(void)fd;
	(void)ev;
	sess_enter(s);
	if (!s->zombie && s->bev != NULL)
		sess_event_fail(s, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
	sess_leave(s);
}

/* ---- the idle cache ---- */

/* Nothing to send now: keep the connection for the next message.  The
 * server may say something meanwhile (421) or close: the session ends. */
static void
sess_idle(struct smtp_sess *s)
{
	struct timeval tv = { .tv_sec = IDLE_KEEP };

	s->state = S_IDLE;
	bufferevent_set_timeouts(s->bev, &tv, NULL);
}

static struct smtp_sess *
idle_find(const struct dest *dest, size_t srvidx)
{
	struct smtp_sess *s;

	TAILQ_FOREACH(s, &sessions, entry)
		if (s->state == S_IDLE && s->dlv == NULL && !s->zombie &&
		    (dest != NULL ? s->dest == dest :
		    s->dest->srvidx == srvidx))
			return s;
	return NULL;
}

static void	sess_transaction(struct smtp_sess *);

/* Sends d on an idle connection to dest, if there is one: 0, else -1.
 * The transaction starts from the loop, never inside the caller. */
int
smtp_reuse(struct dest *dest, struct delivery *d)
{
	struct smtp_sess *s = idle_find(dest, 0);

	if (s == NULL)
		return -1;
	s->dlv = d;
	d->sess = s;
	s->reused = 1;
	sess_defer(s, sess_transaction);
	return 0;
}

/* Frees a connection slot of server srvidx held by an idle session (it
 * ends after QUIT, and its end kicks the waiting deliveries): 0, or -1
 * when none is idle.  One at a time: a kick while a goodbye is under way
 * does not end another kept connection. */
int
smtp_evict_idle(size_t srvidx)
{
	struct smtp_sess *s;

	TAILQ_FOREACH(s, &sessions, entry)
		if (s->evicted && !s->zombie && s->dest->srvidx == srvidx)
			return 0;
	if ((s = idle_find(NULL, srvidx)) == NULL)
		return -1;
	s->evicted = 1;
	sess_cmd(s, S_QUIT, "QUIT");
	return 0;
}

/*
 * A reused connection failed before its first reply (the server had
 * closed it while it was idle): the delivery waits for a fresh
 * connection, as if this one had never been tried.  1 if so.
 */
static int
sess_retry_fresh(struct smtp_sess *s)
{
	struct delivery *d = s->dlv;

	if (!s->reused || d == NULL)
		return 0;
	s->reused = 0;
	s->dlv = NULL;
	d->sess = NULL;
	free(s->accepted);
	s->accepted = NULL;
	deliverd_requeue(d);
	sess_end(s, 0, NULL);
	return 1;
}

/* ---- results ---- */

static struct job *
sess_job(struct smtp_sess *s)
{
	return s->dlv->job;
}

/* For log lines: the queue id of the message being sent, or "-". */
static const char *
sess_qid(const struct smtp_sess *s)
{
	return s->dlv != NULL ? s->dlv->job->qid : "-";
}

/* Sets the result of recipient i of the current delivery. */
static void
sess_set(struct smtp_sess *s, size_t i, int status, const char *text)
{
	deliverd_set(s->dlv, i, status, text);
}

static int
code_status(int code)
{
	if (code >= 200 && code < 300)
		return MR_DS_OK;
	if (code >= 500 && code < 600)
		return MR_DS_PERM;
	return MR_DS_TEMP;
}

/* "host[ip]:port said: 550 5.1.1 text" into b. */
static void
sess_said(struct smtp_sess *s, struct mr_buf *b)
{
	mr_buf_init(b);
	mr_buf_printf(b, "%s said: %d %s", s->relay, s->code,
	    s->reply.data ? s->reply.data : "");
}

/* Gives every recipient not yet decided status and text. */
static void
sess_set_rest(struct smtp_sess *s, int status, const char *text,
    int accepted_only)
{
	size_t i;

	for (i = 0; i < s->dlv->n; i++)
		if (!accepted_only || s->accepted[i])
			sess_set(s, i, status, text);
}

/* Taken by a next hop without DSN: the recipients that asked for a
 * success report get MR_DS_RELAYED, and queued reports "relayed". */
static void
sess_relayed(struct smtp_sess *s, const char *text)
{
	size_t i;

	for (i = 0; i < s->dlv->n; i++)
		if (s->accepted[i] && (sess_job(s)->rcpts[s->dlv->idx[i]].notify
		    & MR_NOTIFY_SUCCESS))
			sess_set(s, i, MR_DS_RELAYED, text);
}

/* The current delivery has all its results: hand it back. */
static void
sess_dlv_done(struct smtp_sess *s)
{
	struct delivery *d = s->dlv;

	s->dlv = NULL;
	d->sess = NULL;
	free(s->accepted);
	s->accepted = NULL;
	deliverd_done(d, s->relay[0] ? s->relay : "none");
}

/* ---- output ---- */

/* Queues one command line; its arguments were checked by deliverd.c. */
static void
sess_vput(struct smtp_sess *s, const char *fmt, va_list ap)
{
	char line[8192];	/* AUTH XOAUTH2 with a 4 KB token */
	int n;

	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		mr_panic("smtp: command line too long");
	line[n] = '\r';
	line[n + 1] = '\n';
	if (bufferevent_write(s->bev, line, (size_t)n + 2) == -1)
		mr_panic("smtp: bufferevent_write failed");
	explicit_bzero(line, sizeof(line));	/* may hold AUTH secrets */
}

static void
sess_put(struct smtp_sess *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sess_put(struct smtp_sess *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sess_vput(s, fmt, ap);
	va_end(ap);
}

/* Sends one command and waits for its reply in state next. */
static void
sess_cmd(struct smtp_sess *s, enum smtp_state next, const char *fmt, ...)
{
	va_list ap;

	s->state = next;
	s->code = 0;
	s->nlines = 0;
	mr_buf_reset(&s->reply);
	sess_timeouts(s, 1);
	va_start(ap, fmt);
	sess_vput(s, fmt, ap);
	va_end(ap);
}

/* ---- connecting ---- */

/* a's numeric address into ip; returns its port. */
static unsigned
sess_addr_ip(const struct mx_addr *a, char *ip, size_t size)
{
	const void *p;
	unsigned port;

	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)&a->ss;

		p = &sin6->sin6_addr;
		port = ntohs(sin6->sin6_port);
	} else {
		const struct sockaddr_in *sin = (const void *)&a->ss;

		p = &sin->sin_addr;
		port = ntohs(sin->sin_port);
	}
	if (inet_ntop(a->ss.ss_family, p, ip, (socklen_t)size) == NULL)
		snprintf(ip, size, "?");
	return port;
}

static void
sess_set_relay(struct smtp_sess *s, const struct mx_addr *a)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port = sess_addr_ip(a, ip, sizeof(ip));

	snprintf(s->relay, sizeof(s->relay), "%s[%s]:%u", a->host, ip, port);
}

/* Every address failed at the connection level. */
static void
sess_all_failed(struct smtp_sess *s)
{
	const char *why = s->lasterr ? s->lasterr :
	    "no address could be reached";

	deliverd_dest_failed(s->dest, s->dest_sent, why);

	if (s->dlv != NULL) {
		sess_set_rest(s, MR_DS_TEMP, why, 0);
		sess_dlv_done(s);
	}
	sess_end(s, MR_DS_TEMP, why);
}

static void
sess_connect_failed(struct smtp_sess *s, int err)
{
	struct mr_buf b;

	mr_buf_init(&b);
	mr_buf_printf(&b, "connect to %s: %s", s->relay, strerror(err));
	sess_host_fail(s, b.data);
	mr_buf_free(&b);
}

static void
sess_try_addr(struct smtp_sess *s)
{
	const struct mx_addr *a;

	sess_close(s);
	if (s->dlv == NULL) {		/* nothing left to send */
		sess_end(s, 0, NULL);
		return;
	}
	if (s->ai >= s->addrs->naddrs) {
		sess_all_failed(s);
		return;
	}
	a = &s->addrs->addrs[s->ai];
	sess_set_relay(s, a);
	s->tls = dane_tls_policy(s->dest, a);
	/* RFC 8461 2: DANE, where it applies, takes precedence */
	s->sts_host = s->tls == MR_TLS_OUT_DANE ? MTA_STS_HOST_OFF :
	    mta_sts_host(s->sts, s->dest, a->host);
	s->state = S_CONNECT;
	s->rep_state = -1;	/* a new address: reported as we leave */
	s->ehlo_failed = 0;
	s->authed = 0;
	s->need_rset = 0;
	s->sent = 0;
	s->bev = bufferevent_socket_new(deliverd_base(), -1,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL)
		mr_panic("smtp: bufferevent_socket_new failed");
	bufferevent_setcb(s->bev, sess_readcb, sess_writecb, sess_eventcb, s);
	sess_timeouts(s, 0);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&a->ss,
	    (int)a->sslen) == -1) {
		int err = errno ? errno : ECONNREFUSED;

		sess_close(s);
		sess_connect_failed(s, err);
		return;
	}
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/*
 * A failure of this host (connect, greeting, timeout, lost connection,
 * TLS): try the next address, unless the message may already have been
 * accepted (the end-of-data reply was pending) or nothing is left to do.
 */
static void
sess_host_fail(struct smtp_sess *s, const char *why)
{
	enum smtp_state st = s->state;

	if (sess_retry_fresh(s))
		return;
	sess_close(s);
	if (s->dlv == NULL) {
		sess_end(s, 0, NULL);
		return;
	}
	if (st == S_DOT) {
		mr_warn("%s: %s", sess_job(s)->qid, why);
		sess_set_rest(s, MR_DS_TEMP, why, 1);
		sess_dlv_done(s);
		sess_end(s, 0, NULL);
		return;
	}
	mr_info("%s: %s", sess_job(s)->qid, why);
	free(s->lasterr);
	s->lasterr = mr_xstrdup(why);
	/* a failed opportunistic handshake retries the address in plain */
	if (!s->notls || st != S_TLS) {
		s->ai++;
		s->notls = 0;
	}
	sess_defer(s, sess_try_addr);
}

/* enforce: only the MX hosts the policy lists; none left defers. */
static int
sess_sts_filter(struct smtp_sess *s, struct mx_result *r)
{
	struct mr_buf why;
	mr_buf_init(&why);
	if (mta_sts_filter(s->sts, s->dest, r, sess_qid(s), &why) == 0) {
		mr_buf_free(&why);
		return 0;
	}
	if (s->dlv != NULL) {
		sess_set_rest(s, MR_DS_TEMP, why.data, 0);
		sess_dlv_done(s);
	}
	sess_end(s, MR_DS_TEMP, why.data);
	mr_buf_free(&why);
	mx_result_free(r);
	return -1;
}

static void
sess_resolved(struct mx_result *r, void *arg)
{
	struct smtp_sess *s = arg;

	s->mxq = NULL;
	sess_enter(s);
	if (s->dest->kind != DEST_LITERAL) {
		report_count(s->dest->srvidx, MR_DC_DNS, 1);
		report_count(s->dest->srvidx, MR_DC_DNS_FAIL, r->status != 0);
	}
	if (r->status != 0) {
		if (s->dlv != NULL) {
			sess_set_rest(s, r->status, r->error, 0);
			sess_dlv_done(s);
		}
		sess_end(s, r->status, r->error);
		mx_result_free(r);
	} else if (sess_sts_filter(s, r) == 0) {
		s->addrs = r;
		s->ai = 0;
		sess_try_addr(s);
	}
	sess_leave(s);
}

static void
sess_sts_known(const struct mta_sts *sts, void *arg)
{
	struct smtp_sess *s = arg;

	s->stsq = NULL;
	if (sts != NULL) {
		s->sts = mr_xmalloc(sizeof(*s->sts));
		memcpy(s->sts, sts, sizeof(*s->sts));
	}
	s->mxq = mx_resolve(s->dest->kind, s->dest->name, s->dest->port,
	    s->dest->dane, sess_resolved, s);
}

struct smtp_sess *
smtp_start(struct dest *dest, struct delivery *d)
{
	struct smtp_sess *s = mr_xcalloc(1, sizeof(*s));

	s->dest = dest;
	s->dest_sent = dest->nsent;
	s->dlv = d;
	d->sess = s;
	mr_buf_init(&s->reply);
	s->state = S_RESOLVE;
	s->defer = event_new(deliverd_base(), -1, 0, sess_defer_cb, s);
	s->deadline = evtimer_new(deliverd_base(), sess_deadline_cb, s);
	if (s->defer == NULL || s->deadline == NULL)
		mr_panic("smtp: event_new failed");
	TAILQ_INSERT_TAIL(&sessions, s, entry);
	s->rep_id = ++last_id;
	s->rep_start = time(NULL);
	sess_report(s, MR_SESS_BEGIN);
	/* direct MX delivery asks for the domain's MTA-STS policy first */
	if ((s->stsq = mta_sts_lookup(dest, sess_sts_known, s)) == NULL)
		s->mxq = mx_resolve(dest->kind, dest->name, dest->port,
		    dest->dane, sess_resolved, s);
	return s;
}

/* ---- TLS ---- */

/* The TLS policy for this host: DANE's where it applies, else the
 * destination's, raised to verify by an MTA-STS policy in enforce mode. */
static enum mr_tls_out
sess_tls(const struct smtp_sess *s)
{
	if (s->tls != MR_TLS_OUT_DANE &&
	    s->sts_host == MTA_STS_HOST_ENFORCE &&
	    s->tls < MR_TLS_OUT_VERIFY)
		return MR_TLS_OUT_VERIFY;
	return s->tls;
}

/* "TLS with RELAY failed: WHY", the MTA-STS policy named first when it
 * governs this host. */
static void
sess_tls_why(const struct smtp_sess *s, struct mr_buf *b, const char *why)
{
	if (s->sts_host != MTA_STS_HOST_OFF)
		mta_sts_says(s->sts, b);
	if (why != NULL)
		mr_buf_printf(b, "TLS with %s failed: %s", s->relay, why);
}

static const struct mx_addr *
sess_addr(const struct smtp_sess *s)
{
	return &s->addrs->addrs[s->ai];
}

/* A trust or set-up failure of TLS: the host fails (and says why). */
static void
sess_tls_refused(struct smtp_sess *s, const char *why)
{
	struct mr_buf b;

	mr_buf_init(&b);
	sess_tls_why(s, &b, why);
	sess_host_fail(s, b.data);
	mr_buf_free(&b);
}

/*
 * Whatever the server sent after its 220 came before TLS and may have
 * been put there by someone on the path (STARTTLS response injection):
 * it is thrown away unread, never taken as a reply to what is sent over
 * TLS (RFC 3207 4.2: nothing from before the handshake is trusted).
 */
static void
sess_discard_early(struct smtp_sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t n = evbuffer_get_length(in);

	if (n == 0)
		return;
	if (s->dlv != NULL)
		mr_warn("%s: %s sent %zu bytes after 220 to STARTTLS, before "
		    "the TLS handshake: discarded", sess_job(s)->qid,
		    s->relay, n);
	(void)evbuffer_drain(in, n);
}

static void
sess_starttls(struct smtp_sess *s)
{
	struct bufferevent *tls;
	struct mr_buf why;
	SSL *ssl;

	sess_discard_early(s);
	mr_buf_init(&why);
	if (s->tls == MR_TLS_OUT_DANE)
		ssl = dane_client_ssl(sess_addr(s), &why);
	else if (s->sts_host != MTA_STS_HOST_OFF)
		ssl = mta_sts_ssl(s->dest, sess_addr(s)->host, s->sts_host,
		    &why);
	else
		ssl = tls_client_ssl(s->dest, sess_addr(s), &why);
	if (ssl == NULL) {
		sess_tls_refused(s, why.data);
		mr_buf_free(&why);
		return;
	}
	mr_buf_free(&why);
	tls = bufferevent_openssl_filter_new(deliverd_base(), s->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		sess_host_fail(s, "TLS: cannot set up a session");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	s->bev = tls;
	bufferevent_setcb(s->bev, sess_readcb, sess_writecb, sess_eventcb, s);
	s->state = S_TLS;
	sess_timeouts(s, 1);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void
sess_tls_failed(struct smtp_sess *s)
{
	unsigned long e = bufferevent_get_openssl_error(s->bev);
	char err[256];
	struct mr_buf b;

	if (s->tls == MR_TLS_OUT_DANE)
		dane_client_error(bufferevent_openssl_get_ssl(s->bev),
		    sess_addr(s), e, err, sizeof(err));
	else
		tls_client_error(bufferevent_openssl_get_ssl(s->bev), s->dest,
		    e, err, sizeof(err));
	mr_buf_init(&b);
	if (s->sts_host != MTA_STS_HOST_OFF &&
	    mta_sts_check(bufferevent_openssl_get_ssl(s->bev), &b) == -1) {
		snprintf(err, sizeof(err), "%s", b.data);
		mr_buf_reset(&b);
	}
	sess_tls_why(s, &b, err);
	if (s->sts_host == MTA_STS_HOST_TESTING)
		mr_warn("%s: %s; would not deliver under enforce (testing)",
		    sess_qid(s), b.data);
	/* opportunistic: the same address again, in plain text */
	if (sess_tls(s) == MR_TLS_OUT_OPPORTUNISTIC)
		s->notls = 1;
	sess_host_fail(s, b.data);
	mr_buf_free(&b);
}

/* MTA-STS's verdict on the handshake: enforce refuses a certificate
 * that does not verify; testing says so and goes on. */
static int
sess_sts_check(struct smtp_sess *s, struct mr_buf *why)
{
	struct mr_buf b;

	if (s->sts_host == MTA_STS_HOST_OFF)
		return 0;
	mr_buf_init(&b);
	if (mta_sts_check(bufferevent_openssl_get_ssl(s->bev), &b) == 0) {
		mr_buf_free(&b);
		return 0;
	}
	if (s->sts_host == MTA_STS_HOST_ENFORCE) {
		mr_buf_adds(why, b.data);
		mr_buf_free(&b);
		return -1;
	}
	mr_buf_reset(why);
	mta_sts_says(s->sts, why);
	mr_warn("%s: %sTLS with %s: %s; would not deliver under enforce "
	    "(testing)", sess_qid(s), why->data, s->relay, b.data);
	mr_buf_reset(why);
	mr_buf_free(&b);
	return 0;
}

/* The handshake is done: the policy has its last word, then EHLO anew
 * (RFC 3207 4.2: forget what the server said before). */
static void
sess_tls_up(struct smtp_sess *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	struct mr_buf why;
	int rc;

	mr_buf_init(&why);
	rc = s->tls == MR_TLS_OUT_DANE ?
	    dane_client_check(ssl, sess_addr(s), &why) :
	    tls_client_check(ssl, s->dest, &why);
	if (rc == -1 || sess_sts_check(s, &why) == -1) {
		sess_tls_refused(s, why.data);
		mr_buf_free(&why);
		return;
	}
	mr_buf_free(&why);
	s->tls_on = 1;
	sess_ehlo(s);
}

/* ---- the dialogue ---- */

static void
sess_ehlo(struct smtp_sess *s)
{
	s->ext_starttls = s->ext_size = s->ext_pipelining = 0;
	s->ext_8bitmime = s->ext_dsn = 0;
	s->ext_auth = 0;
	s->ext_smtputf8 = 0;
	s->size_max = 0;
	if (s->dest->esmtp && !s->ehlo_failed)
		sess_cmd(s, S_EHLO, "EHLO %s", s->dest->srv->fqdn);
	else
		sess_cmd(s, S_HELO, "HELO %s", s->dest->srv->fqdn);
}

/* Notes an EHLO keyword line (RFC 5321 4.1.1.1). */
static void
sess_ehlo_line(struct smtp_sess *s, const char *kw)
{
	if (strcasecmp(kw, "STARTTLS") == 0)
		s->ext_starttls = 1;
	else if (strcasecmp(kw, "PIPELINING") == 0)
		s->ext_pipelining = 1;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		s->ext_8bitmime = 1;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		s->ext_smtputf8 = 1;
	else if (strncasecmp(kw, "AUTH", 4) == 0 &&
	    (kw[4] == '\0' || kw[4] == ' ' || kw[4] == '='))
		s->ext_auth |= AUTH_OFFERED |
		    (kw[4] != '\0' ? auth_ehlo_mechs(kw + 5) : 0);
	else if (strcasecmp(kw, "DSN") == 0)
		s->ext_dsn = 1;
	else if (strncasecmp(kw, "SIZE", 4) == 0 &&
	    (kw[4] == '\0' || kw[4] == ' ')) {
		s->ext_size = 1;
		s->size_max = kw[4] ? strtoull(kw + 5, NULL, 10) : 0;
	}
}

static void
sess_after_ehlo(struct smtp_sess *s)
{
	enum mr_tls_out tls = sess_tls(s);
	struct mr_buf b;

	if (!s->tls_on && tls != MR_TLS_OUT_NONE && !s->notls &&
	    s->ext_starttls) {
		sess_cmd(s, S_STARTTLS, "STARTTLS");
		return;
	}
	/* required, verify, fingerprint: never on in plain text */
	if (!s->tls_on && tls >= MR_TLS_OUT_REQUIRED) {
		mr_buf_init(&b);
		if (sess_addr(s)->tlsa != NULL)
			mr_buf_printf(&b, "4.7.5 DANE: %s has TLSA records "
			    "(%s) but did not offer STARTTLS", s->relay,
			    sess_addr(s)->tlsa->base);
		else {
			sess_tls_why(s, &b, NULL);
			mr_buf_printf(&b, "TLS required but not offered by %s",
			    s->relay);
		}
		sess_host_fail(s, b.data);
		mr_buf_free(&b);
		return;
	}
	if (!s->tls_on && s->sts_host == MTA_STS_HOST_TESTING) {
		mr_buf_init(&b);
		mta_sts_says(s->sts, &b);
		mr_warn("%s: %s%s without TLS; would not deliver under "
		    "enforce (testing)", sess_qid(s), b.data, s->relay);
		mr_buf_free(&b);
	}
	if (s->dest->auth != MR_AUTH_OUT_NONE && !s->authed) {
		sess_auth(s);
		return;
	}
	sess_transaction(s);
}

/* ---- AUTH to a smart host or route (auth_client.c) ---- */

static const char *
auth_name(enum mr_out_auth a)
{
	if (a == MR_AUTH_OUT_XOAUTH2)
		return "XOAUTH2";
	return a == MR_AUTH_OUT_LOGIN ? "LOGIN" : "PLAIN";
}

static unsigned
auth_mech(enum mr_out_auth a)
{
	if (a == MR_AUTH_OUT_XOAUTH2)
		return AUTH_MECH_XOAUTH2;
	return a == MR_AUTH_OUT_LOGIN ? AUTH_MECH_LOGIN : AUTH_MECH_PLAIN;
}

/* Sends the AUTH command or the next answer; fails the host if the
 * mechanism is not offered or the password or token file is unusable. */
static void
sess_auth_send(struct smtp_sess *s)
{
	const struct dest *ds = s->dest;
	unsigned want = auth_mech(ds->auth);
	const char *why = NULL;
	struct mr_buf b;

	mr_buf_init(&b);
	if (s->auth_step == 0 && !(s->ext_auth & want))
		mr_buf_printf(&b, "4.7.0 AUTH %s not offered by %s%s",
		    auth_name(ds->auth), s->relay, s->tls_on ? "" :
		    " (without TLS)");
	else if (!s->tls_on && ds->tls != MR_TLS_OUT_NONE)
		mr_buf_printf(&b, "4.7.0 AUTH to %s needs TLS, which it did "
		    "not offer (set tls none to send the password in plain "
		    "text)", s->relay);
	else if (auth_response(ds, s->auth_step, &b, &why) == -1) {
		mr_buf_reset(&b);
		mr_buf_printf(&b, "4.7.0 cannot use %s %s: %s",
		    ds->auth == MR_AUTH_OUT_XOAUTH2 ? "token-file" :
		    "password-file", ds->auth_password_file, why);
	} else {
		/* XOAUTH2's answer to its error challenge is empty */
		sess_cmd(s, S_AUTH, "%s", b.data != NULL ? b.data : "");
		if (b.data != NULL)
			explicit_bzero(b.data, b.cap);
		mr_buf_free(&b);
		return;
	}
	mr_warn("%s: %s", sess_job(s)->qid, b.data);
	sess_host_fail(s, b.data);
	mr_buf_free(&b);
}

static void
sess_auth(struct smtp_sess *s)
{
	s->auth_step = 0;
	s->auth_status[0] = '\0';
	sess_auth_send(s);
}

/*
 * XOAUTH2: 235 done; a 334 carries the error (RFC 7628 3.2.2), answered
 * with an empty line, after which the server sends its 535.  A refused
 * token is a temporary failure: the refresher may not have run yet.
 */
static void
sess_reply_xoauth2(struct smtp_sess *s)
{
	const char *text = s->reply.data ? s->reply.data : "";
	const struct dest *ds = s->dest;
	struct mr_buf b;
	char status[MR_XOAUTH2_STATUS_MAX + 1];
	enum mr_xoauth2_reply r;

	switch ((r = mr_xoauth2_reply(s->code, text, status))) {
	case MR_XOAUTH2_OK:
		s->authed = 1;
		sess_transaction(s);
		return;
	case MR_XOAUTH2_CHALLENGE:
		if (s->auth_step == 0) {
			memcpy(s->auth_status, status, sizeof(status));
			s->auth_step = 1;
			sess_auth_send(s);
			return;
		}
		break;
	case MR_XOAUTH2_REFUSED:
	case MR_XOAUTH2_FAILED:
		break;
	}
	mr_buf_init(&b);
	mr_buf_printf(&b, "4.7.0 %s %s the XOAUTH2 access token of %s "
	    "from token-file %s%s%s%s: %d %s", s->relay,
	    r == MR_XOAUTH2_FAILED ? "did not take" : "refused",
	    ds->auth_user ? ds->auth_user : "", ds->auth_password_file,
	    s->auth_status[0] != '\0' ? " (status " : "", s->auth_status,
	    s->auth_status[0] != '\0' ? ")" : "", s->code, text);
	mr_warn("%s: %s", sess_job(s)->qid, b.data);
	sess_host_fail(s, b.data);
	mr_buf_free(&b);
}

/* 235 done; 334 the next LOGIN step; 535 and the rest: temporary, so
 * the mail waits in the queue while the administrator fixes it. */
static void
sess_reply_auth(struct smtp_sess *s)
{
	struct mr_buf b;

	if (s->dest->auth == MR_AUTH_OUT_XOAUTH2) {
		sess_reply_xoauth2(s);
		return;
	}
	if (s->code == 235) {
		s->authed = 1;
		sess_transaction(s);
		return;
	}
	if (s->code == 334 && s->dest->auth == MR_AUTH_OUT_LOGIN &&
	    s->auth_step < 2) {
		s->auth_step++;
		sess_auth_send(s);
		return;
	}
	mr_buf_init(&b);
	mr_buf_printf(&b, "4.7.0 %s refused the credentials of %s (AUTH %s): "
	    "%d %s", s->relay, s->dest->auth_user ? s->dest->auth_user : "",
	    auth_name(s->dest->auth), s->code,
	    s->reply.data ? s->reply.data : "");
	mr_warn("%s: %s", sess_job(s)->qid, b.data);
	sess_host_fail(s, b.data);
	mr_buf_free(&b);
}

static void
sess_too_big(struct smtp_sess *s)
{
	struct mr_buf b;

	mr_buf_init(&b);
	mr_buf_printf(&b, "5.3.4 message size %lld exceeds size limit %llu "
	    "of server %s", (long long)sess_job(s)->size,
	    (unsigned long long)s->size_max, s->relay);
	sess_set_rest(s, MR_DS_PERM, b.data, 0);
	mr_buf_free(&b);
}

/*
 * 8-bit content for a server without 8BITMIME: RFC 6152 section 3 lets us
 * convert it to 7 bits or return it; mailroot returns it (a DSN), since a
 * conversion must rewrite MIME structure correctly or damage the message.
 * smtpd labels a message 8BITMIME only when it holds 8-bit bytes.
 */
static void
sess_no_8bitmime(struct smtp_sess *s)
{
	struct mr_buf b;

	mr_buf_init(&b);
	mr_buf_printf(&b, "5.6.3 the message has 8-bit content (BODY=8BITMIME) "
	    "and server %s does not support 8BITMIME", s->relay);
	sess_set_rest(s, MR_DS_PERM, b.data, 0);
	mr_buf_free(&b);
}

/*
 * A non-ASCII address for a server without SMTPUTF8: RFC 6531 3.2 leaves
 * no way to downgrade it (mailroot does not rewrite addresses), so the
 * recipients of this delivery fail permanently and the sender gets a DSN.
 */
static void
sess_no_smtputf8(struct smtp_sess *s)
{
	struct mr_buf b;

	mr_buf_init(&b);
	mr_buf_printf(&b, "5.6.7 the envelope has non-ASCII addresses "
	    "(SMTPUTF8) and server %s does not support SMTPUTF8", s->relay);
	sess_set_rest(s, MR_DS_PERM, b.data, 0);
	mr_buf_free(&b);
}

/* " AUTH=" and the xtext (RFC 3461 4) of name. */
static void
auth_param(struct mr_buf *b, const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	mr_buf_adds(b, " AUTH=");
	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p < '!' || *p > '~' || *p == '+' || *p == '=')
			mr_buf_printf(b, "+%c%c", hex[*p >> 4], hex[*p & 15]);
		else
			mr_buf_add(b, (const char *)p, 1);
	}
}

/* " SIZE=n SMTPUTF8 BODY=x AUTH=x RET=x ENVID=x" as far as the server takes them. */
static void
sess_mail_params(struct smtp_sess *s, struct mr_buf *b)
{
	static const char *const ret[] = { "", " RET=FULL", " RET=HDRS" };
	const struct job *j = sess_job(s);

	if (s->ext_size)
		mr_buf_printf(b, " SIZE=%lld", (long long)j->size);
	if (s->ext_smtputf8 && j->smtputf8)
		mr_buf_adds(b, " SMTPUTF8");
	if (s->ext_8bitmime && j->body == MR_BODY_8BITMIME)
		mr_buf_adds(b, " BODY=8BITMIME");
	else if (s->ext_8bitmime && j->body == MR_BODY_7BIT)
		mr_buf_adds(b, " BODY=7BIT");
	/* RFC 4954 5: the client's AUTH identity, to a server that knows
	 * AUTH; nothing at all to one that does not */
	if (s->ext_auth && j->auth != NULL)
		auth_param(b, j->auth);
	if (!s->ext_dsn)
		return;
	if (j->ret <= MR_RET_HDRS)
		mr_buf_adds(b, ret[j->ret]);
	if (j->envid[0] != '\0')
		mr_buf_printf(b, " ENVID=%s", j->envid);
}

/* "RCPT TO:<a> NOTIFY=x ORCPT=x" (RFC 3461) for recipient i of the
 * delivery, the parameters only to a server that offers DSN. */
static void
sess_rcpt_line(struct smtp_sess *s, size_t i, struct mr_buf *b)
{
	static const char *const words[] = { "SUCCESS", "FAILURE", "DELAY" };
	const struct rcpt *r = &sess_job(s)->rcpts[s->dlv->idx[i]];
	size_t w;
	int first = 1;

	mr_buf_printf(b, "RCPT TO:<%s>", r->addr);
	if (!s->ext_dsn)
		return;
	if (r->notify & MR_NOTIFY_NEVER)
		mr_buf_adds(b, " NOTIFY=NEVER");
	else if (r->notify != 0)
		for (w = 0; w < 3; w++)
			if (r->notify & (1u << w)) {
				mr_buf_adds(b, first ? " NOTIFY=" : ",");
				mr_buf_adds(b, words[w]);
				first = 0;
			}
	if (r->orcpt[0] != '\0')
		mr_buf_printf(b, " ORCPT=%s", r->orcpt);
}

static void	sess_next_dlv(struct smtp_sess *);

/* NOLINTBEGIN(misc-no-recursion): sess_transaction and sess_next_dlv call
 * each other at most messages-per-connection deep */
static void
sess_transaction(struct smtp_sess *s)
{
	struct job *j = sess_job(s);
	struct mr_buf params;

	free(s->accepted);
	s->accepted = mr_xcalloc(s->dlv->n ? s->dlv->n : 1, 1);
	s->naccepted = 0;
	s->ri = 0;
	if (s->need_rset) {
		sess_cmd(s, S_RSET, "RSET");
		return;
	}
	if (s->ext_size && s->size_max > 0 &&
	    (uint64_t)j->size > s->size_max) {
		sess_too_big(s);
		sess_next_dlv(s);
		return;
	}
	if (j->body == MR_BODY_8BITMIME && !s->ext_8bitmime) {
		sess_no_8bitmime(s);
		sess_next_dlv(s);
		return;
	}
	if (j->needs_utf8 && !s->ext_smtputf8) {
		sess_no_smtputf8(s);
		sess_next_dlv(s);
		return;
	}
	s->pipelined = s->ext_pipelining;
	s->mail_failed = 0;
	mr_buf_init(&params);
	mr_buf_add(&params, "", 0);
	sess_mail_params(s, &params);
	sess_cmd(s, S_MAIL, "MAIL FROM:<%s>%s", j->sender, params.data);
	mr_buf_free(&params);
	if (s->pipelined) {
		size_t i;

		/* RFC 2920: the RCPTs and DATA follow at once; the replies
		 * come back in order */
		for (i = 0; i < s->dlv->n; i++) {
			struct mr_buf b;

			mr_buf_init(&b);
			sess_rcpt_line(s, i, &b);
			sess_put(s, "%s", b.data);
			mr_buf_free(&b);
		}
		sess_put(s, "DATA");
	}
}

static void
sess_rcpt(struct smtp_sess *s)
{
	struct mr_buf b;

	mr_buf_init(&b);
	sess_rcpt_line(s, s->ri, &b);
	sess_cmd(s, S_RCPT, "%s", b.data);
	mr_buf_free(&b);
}

/* The transaction is over: report it, then reuse or quit. */
static void
sess_next_dlv(struct smtp_sess *s)
{
	struct dest *dest = s->dest;
	struct delivery *d;

	sess_dlv_done(s);
	s->sent++;
	if ((d = deliverd_next(dest, s->sent)) != NULL) {
		s->dlv = d;
		d->sess = s;
		sess_transaction(s);
		return;
	}
	if (deliverd_may_keep(dest, s->sent)) {
		sess_idle(s);
		return;
	}
	sess_cmd(s, S_QUIT, "QUIT");
}
/* NOLINTEND(misc-no-recursion) */

/* Fills the output with the next part of the message, dot-stuffed. */
static void	sess_body_fill(struct smtp_sess *);

/* masquerade-from's header (deliverd/masquerade.c), in place of the
 * file's first head_skip bytes: from memory, never the file segment. */
static void	stuff(struct smtp_sess *, struct evbuffer *, const char *,
		    off_t, size_t);

static void
sess_body_head(struct smtp_sess *s)
{
	struct job *j = sess_job(s);
	struct evbuffer_file_segment *seg = s->seg;

	s->seg = NULL;
	stuff(s, bufferevent_get_output(s->bev), j->head, 0, j->head_len);
	s->seg = seg;
	s->off = (off_t)j->head_skip;
}

static void
sess_on_data(struct smtp_sess *s)
{
	struct job *j = sess_job(s);
	int fd;

	s->off = 0;
	s->bol = 1;
	s->cr = 0;
	s->col = 0;
	s->state = S_BODY;
	/* A big message in plain text goes from the page cache to the
	 * socket (sendfile) in the runs between the bytes stuffing adds;
	 * TLS, and small messages (where one write beats a sendfile and a
	 * write), go through our buffer. */
	if (!s->tls_on && j->size >= ZEROCOPY_MIN &&
	    (fd = fcntl(j->fd, F_DUPFD_CLOEXEC, 0)) != -1 &&
	    (s->seg = evbuffer_file_segment_new(fd, 0, -1,
	    EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_LOCKING)) == NULL)
		close(fd);
	sess_timeouts(s, 0);
	if (j->head != NULL)
		sess_body_head(s);
	sess_body_fill(s);
}

/* n bytes of the message that go out unchanged, at file offset off. */
static void
sess_run(struct smtp_sess *s, struct evbuffer *out, const char *p, off_t off,
    size_t n)
{
	if (n == 0)
		return;
	/* a short run costs less copied than in a sendfile of its own */
	if (s->seg == NULL || n < ZEROCOPY_RUN ||
	    evbuffer_add_file_segment(out, s->seg, off, (ev_off_t)n) == -1)
		evbuffer_add(out, p, n);
}

/* The unchanged bytes before p[i] go out, then ins (may be empty). */
static void
body_splice(struct smtp_sess *s, struct evbuffer *out, const char *p,
    off_t off, size_t *start, size_t i, const char *ins)
{
	sess_run(s, out, p + *start, off + (off_t)*start, i - *start);
	if (*ins != '\0')
		evbuffer_add(out, ins, strlen(ins));
	*start = i;
}

/*
 * Sends n bytes of message read from file offset off as RFC 5321 wants
 * them on the wire, whatever the file holds (a queue file written before
 * smtpd made every line end CRLF, a Pickup file): a "." at the start of a
 * line gets another (4.5.2); a bare LF or a bare CR becomes CRLF, so that
 * no line end a lenient server might honour goes unstuffed (SMTP
 * smuggling); a NUL, which a next hop might drop to reveal a CRLF "."
 * CRLF, is not sent (2.3.8); a line longer than 998 octets is folded with
 * CRLF SPACE (4.5.3.1.6), as Postfix's smtp_line_length_limit does: a
 * header stays one folded field, a body line gains one space.
 */
static void
stuff(struct smtp_sess *s, struct evbuffer *out, const char *p, off_t off,
    size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (s->cr) {
			s->cr = 0;
			s->bol = 1;
			s->col = 0;
			if (p[i] == '\n')
				continue;
			body_splice(s, out, p, off, &start, i, "\n");
		}
		switch (p[i]) {
		case '\r':
			s->cr = 1;	/* decided by the next byte */
			continue;
		case '\n':
			body_splice(s, out, p, off, &start, i, "\r");
			s->bol = 1;
			s->col = 0;
			continue;
		case '\0':
			body_splice(s, out, p, off, &start, i, "");
			start = i + 1;
			continue;
		case '.':
			if (s->bol)
				body_splice(s, out, p, off, &start, i, ".");
			break;
		default:
			break;
		}
		if (s->col >= LINE_OCTETS_MAX) {
			body_splice(s, out, p, off, &start, i, "\r\n ");
			s->col = 1;
		}
		s->bol = 0;
		s->col++;
	}
	sess_run(s, out, p + start, off + (off_t)start, n - start);
}

/* The segment lives on in out until sent (evbuffer references). */
static void
sess_seg_free(struct smtp_sess *s)
{
	if (s->seg != NULL)
		evbuffer_file_segment_free(s->seg);
	s->seg = NULL;
}

static void
sess_body_end(struct smtp_sess *s, struct evbuffer *out)
{
	sess_seg_free(s);
	if (s->cr)
		evbuffer_add(out, "\n", 1);
	else if (!s->bol)
		evbuffer_add(out, "\r\n", 2);
	s->cr = 0;
	evbuffer_add(out, ".\r\n", 3);
	s->state = S_DOT;
	s->code = 0;
	s->nlines = 0;
	mr_buf_reset(&s->reply);
	sess_timeouts(s, 1);
}

static void
sess_body_fill(struct smtp_sess *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char buf[BODY_CHUNK];
	ssize_t n;

	while (s->state == S_BODY && evbuffer_get_length(out) < BODY_HIGH) {
		n = pread(sess_job(s)->fd, buf, sizeof(buf), s->off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			struct mr_buf b;

			mr_buf_init(&b);
			mr_buf_printf(&b, "4.3.0 cannot read message: %s",
			    strerror(errno));
			mr_err("%s: %s", sess_job(s)->qid, b.data);
			/* closing mid-DATA: the server discards the message */
			sess_set_rest(s, MR_DS_TEMP, b.data, 1);
			mr_buf_free(&b);
			sess_dlv_done(s);
			sess_end(s, 0, NULL);
			return;
		}
		if (n == 0) {
			sess_body_end(s, out);
			return;
		}
		stuff(s, out, buf, s->off, (size_t)n);
		s->off += n;
	}
}

/* ---- replies ---- */

static void
sess_reply_greeting(struct smtp_sess *s)
{
	struct mr_buf b;

	if (s->code / 100 == 2) {
		sess_ehlo(s);
		return;
	}
	mr_buf_init(&b);
	mr_buf_printf(&b, "host %s refused to talk to me: %d %s", s->relay,
	    s->code, s->reply.data ? s->reply.data : "");
	sess_host_fail(s, b.data);
	mr_buf_free(&b);
}

static void
sess_reply_hello(struct smtp_sess *s)
{
	struct mr_buf b;

	if (s->code / 100 == 2) {
		sess_after_ehlo(s);
		return;
	}
	if (s->state == S_EHLO && s->code / 100 == 5) {
		s->ehlo_failed = 1;	/* RFC 5321 3.2: fall back to HELO */
		sess_ehlo(s);
		return;
	}
	sess_said(s, &b);
	sess_host_fail(s, b.data);
	mr_buf_free(&b);
}

static void
sess_reply_starttls(struct smtp_sess *s)
{
	struct mr_buf b;

	if (s->code == 220) {
		sess_starttls(s);
		return;
	}
	if (sess_tls(s) == MR_TLS_OUT_OPPORTUNISTIC) {
		s->notls = 1;
		sess_after_ehlo(s);
		return;
	}
	sess_said(s, &b);
	sess_host_fail(s, b.data);
	mr_buf_free(&b);
}

static void
sess_reply_mail(struct smtp_sess *s)
{
	struct mr_buf b;

	s->reused = 0;		/* the connection works */
	if (s->code / 100 == 2) {
		if (s->pipelined)
			s->state = S_RCPT;	/* already sent */
		else
			sess_rcpt(s);
		return;
	}
	sess_said(s, &b);
	sess_set_rest(s, code_status(s->code), b.data, 0);
	mr_buf_free(&b);
	s->need_rset = 1;
	if (s->pipelined) {
		/* the RCPT and DATA replies still come; they change nothing */
		s->mail_failed = 1;
		s->state = S_RCPT;
		return;
	}
	sess_next_dlv(s);
}

static void
sess_reply_rcpt(struct smtp_sess *s)
{
	struct mr_buf b;

	if (s->mail_failed)
		;		/* the reply to MAIL decided */
	else if (s->code / 100 == 2) {
		s->accepted[s->ri] = 1;
		s->naccepted++;
	} else {
		sess_said(s, &b);
		sess_set(s, s->ri, code_status(s->code), b.data);
		mr_buf_free(&b);
	}
	if (++s->ri < s->dlv->n) {
		if (!s->pipelined)
			sess_rcpt(s);
		return;
	}
	if (s->pipelined) {
		s->state = S_DATA;	/* DATA went out with them */
		return;
	}
	if (s->naccepted > 0) {
		sess_cmd(s, S_DATA, "DATA");
		return;
	}
	s->need_rset = 1;
	sess_next_dlv(s);
}

/* The next hop accepted the message: counted for the metrics and the
 * session list (the bytes of the message as it was stored). */
static void
sess_count_sent(struct smtp_sess *s)
{
	const struct job *j = sess_job(s);
	off_t n = j->size - (off_t)j->head_skip + (off_t)j->head_len;

	s->rep_sent++;
	report_count(s->dest->srvidx, MR_DC_BYTES_SENT,
	    n > 0 ? (uint64_t)n : 0);
}

static void
sess_reply_data(struct smtp_sess *s)
{
	struct mr_buf b;
	int st;

	if (s->state == S_DATA && s->code == 354 && s->naccepted == 0) {
		/* pipelined, no recipient accepted, yet the server wants the
		 * message (RFC 2920 3.1): an empty one ends the transaction */
		s->bol = 1;
		s->cr = 0;
		s->col = 0;
		sess_body_end(s, bufferevent_get_output(s->bev));
		s->need_rset = 1;
		return;
	}
	if (s->state == S_DATA && s->code == 354) {
		sess_on_data(s);
		return;
	}
	if (s->naccepted == 0) {
		/* pipelined DATA refused after every RCPT was: expected */
		s->need_rset = 1;
		sess_next_dlv(s);
		return;
	}
	sess_said(s, &b);
	st = code_status(s->code);
	if (s->state == S_DATA && st == MR_DS_OK)
		st = MR_DS_TEMP;	/* 2xx to DATA is no 354 */
	sess_set_rest(s, st, b.data, 1);
	if (s->state == S_DOT && st == MR_DS_OK)
		sess_count_sent(s);
	if (st == MR_DS_OK && !s->ext_dsn)
		sess_relayed(s, b.data);
	mr_buf_free(&b);
	if (s->state == S_DATA)
		s->need_rset = 1;
	sess_next_dlv(s);
}

/* One complete reply: act on it according to the state. */
static void
sess_reply(struct smtp_sess *s)
{
	switch (s->state) {
	case S_GREETING:
		sess_reply_greeting(s);
		break;
	case S_EHLO:
	case S_HELO:
		sess_reply_hello(s);
		break;
	case S_STARTTLS:
		sess_reply_starttls(s);
		break;
	case S_AUTH:
		sess_reply_auth(s);
		break;
	case S_RSET:
		if (s->code / 100 != 2) {
			struct mr_buf b;

			sess_said(s, &b);
			sess_host_fail(s, b.data);
			mr_buf_free(&b);
			break;
		}
		s->need_rset = 0;
		sess_transaction(s);
		break;
	case S_MAIL:
		sess_reply_mail(s);
		break;
	case S_RCPT:
		sess_reply_rcpt(s);
		break;
	case S_DATA:
	case S_DOT:
		sess_reply_data(s);
		break;
	case S_QUIT:
		sess_end(s, 0, NULL);
		break;
	default:
		sess_host_fail(s, "protocol error: unexpected reply");
		break;
	}
}

/*
 * Parses one reply line "ddd[ -]text" (common/smtp_reply.c): 1 when the
 * reply is complete, 0 when more lines follow, -1 on a malformed line.
 * l is NUL-terminated (evbuffer_readln).
 */
static int
sess_line(struct smtp_sess *s, const char *l, size_t n)
{
	struct mr_reply r = { s->code, s->nlines, &s->reply };
	int rc = mr_reply_line(&r, l, n);

	s->code = r.code;
	s->nlines = r.nlines;
	if (rc != -1 && n > 4 && s->state == S_EHLO && s->nlines > 1 &&
	    s->code == 250)
		sess_ehlo_line(s, l + 4);
	return rc;
}

static void
sess_readcb(struct bufferevent *bev, void *arg)
{
	struct smtp_sess *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *l;
	int rc;

	sess_enter(s);
	/* an idle server speaks only to say goodbye (421): end quietly */
	if (!s->zombie && s->bev == bev && s->state == S_IDLE &&
	    s->dlv == NULL) {
		sess_end(s, 0, NULL);
		sess_leave(s);
		return;
	}
	/* early replies during the body wait until the dot is sent */
	while (!s->zombie && s->bev == bev && s->state != S_BODY &&
	    s->deferred == NULL) {
		if ((l = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) == NULL) {
			if (evbuffer_get_length(in) > MR_REPLY_LINE_MAX)
				sess_host_fail(s, "protocol error: reply "
				    "line too long");
			break;
		}
		rc = sess_line(s, l, n);
		free(l);
		if (rc == -1) {
			sess_host_fail(s, "protocol error: malformed reply");
			break;
		}
		if (rc == 1) {
			evtimer_del(s->deadline);
			sess_reply(s);
			mr_buf_reset(&s->reply);
			s->nlines = 0;
			/* pipelined: the next reply was asked for already */
			if (!s->zombie && s->bev == bev && (s->state == S_RCPT ||
			    s->state == S_DATA) &&
			    !evtimer_pending(s->deadline, NULL))
				sess_timeouts(s, 1);
			/* after 220 to STARTTLS the next bytes belong to TLS */
			if (s->state == S_TLS)
				break;
		}
	}
	sess_leave(s);
}

static void
sess_writecb(struct bufferevent *bev, void *arg)
{
	struct smtp_sess *s = arg;

	sess_enter(s);
	if (!s->zombie && s->bev == bev && s->state == S_BODY)
		sess_body_fill(s);
	sess_leave(s);
}

static void
sess_event_fail(struct smtp_sess *s, short what)
{
	struct mr_buf b;
	int err = EVUTIL_SOCKET_ERROR();

	if (s->state == S_IDLE) {
		if (sess_retry_fresh(s))
			return;
		if (what & BEV_EVENT_TIMEOUT) {
			/* kept long enough: say goodbye */
			sess_cmd(s, S_QUIT, "QUIT");
			bufferevent_enable(s->bev, EV_READ);
		} else
			sess_end(s, 0, NULL);
		return;
	}
	mr_buf_init(&b);
	if (s->state == S_CONNECT && (what & BEV_EVENT_ERROR)) {
		mr_buf_free(&b);
		sess_connect_failed(s, err ? err : ECONNREFUSED);
		return;
	}
	if (s->state == S_TLS && !(what & BEV_EVENT_TIMEOUT)) {
		mr_buf_free(&b);
		sess_tls_failed(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		mr_buf_printf(&b, "conversation with %s timed out while %s",
		    s->relay, state_what[s->state]);
	else
		mr_buf_printf(&b, "lost connection with %s while %s",
		    s->relay, state_what[s->state]);
	if (s->state == S_QUIT)
		sess_end(s, 0, NULL);
	else
		sess_host_fail(s, b.data);
	mr_buf_free(&b);
}

static void
sess_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_sess *s = arg;

	sess_enter(s);
	if (s->zombie || s->bev != bev)
		goto out;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == S_CONNECT) {
			int one = 1;

			/* commands go out whole; Nagle would only hold back
			 * the end of a message behind a delayed ACK */
			(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP,
			    TCP_NODELAY, &one, sizeof(one));
			s->state = S_GREETING;
			sess_timeouts(s, 1);
			report_count(s->dest->srvidx, MR_DC_CONNECTIONS, 1);
		} else if (s->state == S_TLS)
			sess_tls_up(s);
		goto out;
	}
	sess_event_fail(s, what);
out:
	/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc): sess_enter held s */
	sess_leave(s);
}

/* ---- mailrootctl sessions (sess_report.c) ---- */

static const uint32_t report_state[] = {
	[S_RESOLVE] = MR_OS_RESOLVING, [S_CONNECT] = MR_OS_CONNECTING,
	[S_GREETING] = MR_OS_GREETING, [S_EHLO] = MR_OS_HELLO,
	[S_HELO] = MR_OS_HELLO, [S_STARTTLS] = MR_OS_HELLO,
	[S_TLS] = MR_OS_HELLO, [S_AUTH] = MR_OS_HELLO, [S_RSET] = MR_OS_MAIL,
	[S_MAIL] = MR_OS_MAIL, [S_RCPT] = MR_OS_MAIL, [S_DATA] = MR_OS_DATA,
	[S_BODY] = MR_OS_DATA, [S_DOT] = MR_OS_DATA, [S_IDLE] = MR_OS_IDLE,
	[S_QUIT] = MR_OS_CLOSING
};

/* The verb of the command a state waits on ("" before any). */
static const char *const report_verb[] = {
	[S_RESOLVE] = "", [S_CONNECT] = "", [S_GREETING] = "",
	[S_EHLO] = "EHLO", [S_HELO] = "HELO", [S_STARTTLS] = "STARTTLS",
	[S_TLS] = "STARTTLS", [S_AUTH] = "AUTH", [S_RSET] = "RSET",
	[S_MAIL] = "MAIL", [S_RCPT] = "RCPT", [S_DATA] = "DATA",
	[S_BODY] = "DATA", [S_DOT] = "DATA", [S_IDLE] = "", [S_QUIT] = "QUIT"
};

static void
sess_report(struct smtp_sess *s, uint32_t op)
{
	struct osess_report r = {
		.op = op, .id = s->rep_id, .srvidx = s->dest->srvidx,
		.host = s->dest->name, .addr = "", .port = s->dest->port,
		.state = MR_OS_HELLO, .command = "", .sent = s->rep_sent,
		.start = s->rep_start
	};
	char ip[INET6_ADDRSTRLEN];

	/* a state added later without its entries is listed as "hello" */
	if ((size_t)s->state < sizeof(report_verb) / sizeof(report_verb[0]) &&
	    report_verb[s->state] != NULL) {
		r.state = report_state[s->state];
		r.command = report_verb[s->state];
	}

	if (s->state != S_RESOLVE && s->addrs != NULL &&
	    s->ai < s->addrs->naddrs) {
		const struct mx_addr *a = &s->addrs->addrs[s->ai];

		r.host = a->host;
		r.port = sess_addr_ip(a, ip, sizeof(ip));
		r.addr = ip;
	}
	s->rep_state = (int)s->state;
	s->rep_due = 0;
	report_session(&r);
}

/* The pass: each session as it is now, if it changed since its report. */
void
smtp_report_due(void)
{
	struct smtp_sess *s;

	TAILQ_FOREACH(s, &sessions, entry)
		if (s->rep_due && !s->zombie)
			sess_report(s, MR_SESS_NOW);
}

/* A new queued: every session still open, as it is now. */
void
smtp_report_all(void)
{
	struct smtp_sess *s;

	TAILQ_FOREACH(s, &sessions, entry)
		if (!s->zombie)
			sess_report(s, MR_SESS_NOW);
}
