/*
 * smtp_session.c - one SMTP session: the command state machine, the relay
 * decision and the DATA stream written straight into the queue file.
 *
 * Security: every byte here comes from an untrusted client.  Command lines
 * are bounded; addresses go through mr_path_parse; relay is decided by the
 * recipient's domain alone and is closed unless the client is listed or
 * authenticated.  Only CRLF "." CRLF ends DATA: a bare LF or bare CR never
 * does (SMTP smuggling), but for a listed client that sends nothing but
 * bare LF line ends (lf_client); both are stored as CRLF, and a message
 * holding a NUL is refused, so that no later hop can read a different end
 * of message either.  Every refusal is logged with the reply it gave.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "auth.h"
#include "bdat.h"
#include "buf.h"
#include "dstream.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "smtp_cmd.h"
#include "smtpd.h"
#include "translog.h"
#include "util.h"

#define ERRORS_MAX	25	/* bad commands before we hang up */
#define FLUSH_AT	(64 * 1024)
#define HASH_SIZE	4096
#define TLS_HANDSHAKE_MAX	30	/* seconds, at most the idle timeout */

enum state {
	S_CMD,		/* reading commands (0: a new session) */
	S_WAIT_NEW,	/* DATA came before queued's file: waiting */
	S_DATA,		/* reading the message */
	S_CHUNK,	/* reading a BDAT chunk (bdat.c) */
	S_WAIT_COMMIT,	/* end of data sent to queued */
	S_WAIT_RCPT,	/* RCPT asked queued (rcpt_wait.c) */
	S_CLOSING,	/* flushing the last reply */
	S_TLS,		/* TLS handshake */
	S_WAIT_AUTH	/* AUTH: queued's verdict or a delayed 535 */
};

struct session {
	struct session		*hnext;
	uint64_t		 id;
	struct listener		*l;
	const struct mr_server	*srv;
	struct client		*client;	/* counted per address */
	struct bufferevent	*bev;
	struct sockaddr_storage	 peer;
	char			 ip[INET6_ADDRSTRLEN];
	char			 lip[INET6_ADDRSTRLEN];	/* ours, for the
							 * transaction log */
	unsigned		 lport;
	char			 helo[256];
	int			 esmtp;
	int			 tls;		/* TLS established */
	struct listener		*sni;		/* SNI chose its server */
	char			 tls_info[128];	/* for Received */
	struct rdns_wait	*rdns_wait;	/* reverse lookup asked */
	struct rdns_result	 rdns;		/* its answer, once known */
	int			 rdns_known;
	int			 greet_waiting;	/* for the answer */
	int			 errors;
	int			 crlf_seen;	/* a command line ended in
						 * CRLF (lf_client) */
	enum state		 state;
	uint64_t		 session_bytes;
	time_t			 started;	/* for mailrootctl sessions */
	char			 last_cmd[TL_METHOD_MAX + 1];
	int			 report_due;	/* a report waits for the pass */
	int			 reported;	/* queued has had its BEGIN */
	struct auth_state	 auth;		/* auth.c */

	/* the transaction */
	int			 in_mail;
	char			 sender[MR_PATH_MAX + 1];
	enum mr_body		 body;		/* MAIL BODY= */
	int			 smtputf8;	/* MAIL SMTPUTF8 (RFC 6531) */
	int			 eightbit;	/* an 8-bit byte was seen */
	int			 add_headers;	/* add Date:, Message-ID: */
	char			**rcpts;
	size_t			 nrcpts;
	char			 rcpt_wait[MR_PATH_MAX + 1];	/* asked */
	struct mr_dsn_rcpt	 rcpt_wait_dsn;	/* its NOTIFY and ORCPT */
	char			 qid[MR_ID_MAX + 1];
	int			 datafd;
	int			 new_pending;	/* our NEW not answered yet */
	int			 new_failed;	/* queued refused it */
	unsigned		 news_out;	/* NEWs in flight, stale ones
						 * included (RSET) */
	int			 batching;	/* inside process_input */
	struct mr_buf		 replies;	/* not yet handed to the socket */

	/* DATA */
	struct mr_dstream	 ds;
	struct mr_buf		 out;
	uint64_t		 size;
	int			 too_big;
	int			 write_error;

	/* BDAT (RFC 3030) */
	struct bdat_state	 bdat;

	/* DSN (RFC 3461): MAIL's, and each recipient's beside rcpts */
	struct mr_dsn_mail	 dsn;
	struct mr_dsn_rcpt	*rdsn;
	struct translog		 tl;		/* the command being answered */
};

static struct session	*table[HASH_SIZE];
static size_t		 nsessions;

static void	session_read(struct bufferevent *, void *);
static void	session_event(struct bufferevent *, short, void *);
static void	process_input(struct session *);
static void	emit(void *, const char *, size_t);
static void	headers_end(void *, int);
static void	resume(struct session *);
static void	cmd_bdat(struct session *, const struct mr_smtp_cmd *);
static void	bdat_start(struct session *);

size_t
session_count(void)
{
	return nsessions;
}

static struct session *
lookup(uint64_t id)
{
	struct session *s;

	for (s = table[id % HASH_SIZE]; s != NULL; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

/*
 * Replies collect while a batch of input is processed (pipelined
 * commands get one write) and then go straight to the socket when
 * nothing is queued before them: no write event, no extra trip round
 * the loop.  What the socket does not take waits in the bufferevent.
 * Plain TCP only: a TLS session writes through its bufferevent.
 */
static void
flush_replies(struct session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	ssize_t n = 0;

	if (s->replies.len == 0)
		return;
	if (evbuffer_get_length(out) == 0 &&
	    bufferevent_get_underlying(s->bev) == NULL) {
		n = send(bufferevent_getfd(s->bev), s->replies.data,
		    s->replies.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			n = 0;	/* EAGAIN, or an error the bufferevent sees */
	}
	if ((size_t)n < s->replies.len)
		bufferevent_write(s->bev, s->replies.data + n,
		    s->replies.len - (size_t)n);
	mr_buf_free(&s->replies);	/* idle sessions keep no buffer */
}

static void
reply(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
translog_ctx_of(const struct session *s, struct translog_ctx *x)
{
	x->server = (uint32_t)s->srv->index;
	x->client_ip = s->ip;
	x->server_ip = s->lip;
	x->server_port = s->lport;
	x->helo = s->helo;
	x->user = s->auth.user;
}

/* The server's transaction log: a record per answered command. */
static void
tlog(struct session *s, const char *line, size_t n)
{
	struct translog_ctx x;

	if (!translog_reply(&s->tl, line, n))
		return;
	if (s->srv->log.directory == NULL ||
	    s->srv->log.format == MR_LOG_NONE) {
		s->tl.active = 0;
		return;
	}
	translog_ctx_of(s, &x);
	translog_send(&s->tl, &x, line);
}

static enum mr_sess_state
sess_state(const struct session *s)
{
	switch (s->state) {
	case S_TLS:
		return MR_SS_TLS;
	case S_CLOSING:
		return MR_SS_CLOSING;
	case S_WAIT_NEW:
	case S_DATA:
	case S_CHUNK:
	case S_WAIT_COMMIT:
		return MR_SS_DATA;
	default:
		if (s->in_mail)
			return MR_SS_MAIL;
		return s->helo[0] != '\0' ? MR_SS_GREETED : MR_SS_CONNECTED;
	}
}

/* Tells queued where s is now (mailrootctl sessions), or that it ended. */
static void
report(const struct session *s, enum mr_sess_op op)
{
	struct translog_sess ss;
	struct translog_ctx x;

	translog_ctx_of(s, &x);
	ss.op = op;
	ss.id = s->id;
	ss.state = sess_state(s);
	ss.command = s->last_cmd;
	ss.start = s->started > 0 ? (uint64_t)s->started : 0;
	translog_session(&ss, &x);
}

/*
 * Where a session is after each command reaches queued at most
 * REPORT_DELAY_MS later, for all sessions in one pass, its start
 * included: a session that ends before the pass sends one frame
 * (MR_SESS_ONCE, which queued counts as a connection), not a start, an
 * end and one per command.  mailrootctl sessions shows the state, and a
 * new session, that late.
 */
#define REPORT_DELAY_MS	200

static struct event	*report_ev;

static void
report_due_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct session *s;
	size_t i;

	(void)fd;
	(void)ev;
	(void)arg;
	for (i = 0; i < HASH_SIZE; i++)
		for (s = table[i]; s != NULL; s = s->hnext)
			if (s->report_due) {
				s->report_due = 0;
				report(s,
				    s->reported ? MR_SESS_NOW : MR_SESS_BEGIN);
				s->reported = 1;
			}
}

static void
report_later(struct session *s)
{
	struct timeval tv = { 0, REPORT_DELAY_MS * 1000 };

	s->report_due = 1;
	if (report_ev == NULL &&
	    (report_ev = evtimer_new(smtpd->base, report_due_cb, NULL)) == NULL)
		mr_panic("smtpd: evtimer_new failed");
	if (!evtimer_pending(report_ev, NULL))
		evtimer_add(report_ev, &tv);
}

/* A new queued (it restarted, or smtpd reconnected) hears of every
 * session in progress. */
void
session_report_all(void)
{
	struct session *s;
	size_t i;

	for (i = 0; i < HASH_SIZE; i++)
		for (s = table[i]; s != NULL; s = s->hnext) {
			report(s, s->reported ? MR_SESS_NOW : MR_SESS_BEGIN);
			s->reported = 1;
		}
}

static void
reply(struct session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	mr_buf_add(&s->replies, line, (size_t)n);
	tlog(s, line, (size_t)n);
	if (!s->batching)
		flush_replies(s);
}

/*
 * Refuses something: the reply goes to the client and the same words,
 * with the session, the client and the sender, to the log (one line), so
 * that an administrator can tell why an application's mail failed.
 */
static void
refuse(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
refuse(struct session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (s->in_mail)
		mr_info("session %llu [%s]: refused: %s (from=<%s>)",
		    (unsigned long long)s->id, s->ip, line, s->sender);
	else
		mr_info("session %llu [%s]: refused: %s",
		    (unsigned long long)s->id, s->ip, line);
	reply(s, "%s", line);
}

static void
reset_transaction(struct session *s)
{
	size_t i;

	if (s->datafd != -1) {
		close(s->datafd);
		s->datafd = -1;
	}
	if (s->qid[0] != '\0' && smtpd->queued != NULL) {
		struct mr_buf b;

		mr_buf_init(&b);
		mr_buf_put_str(&b, s->qid);
		mr_ipc_sendb(smtpd->queued, MR_Q_ABORT, -1, &b);
		mr_buf_free(&b);
	}
	s->qid[0] = '\0';
	for (i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	free(s->rdsn);
	s->rdsn = NULL;
	memset(&s->dsn, 0, sizeof(s->dsn));
	s->nrcpts = 0;
	s->in_mail = 0;
	s->new_pending = 0;	/* a late answer is handed back */
	s->new_failed = 0;
	s->sender[0] = '\0';
	s->body = MR_BODY_NONE;
	s->smtputf8 = 0;
	s->eightbit = 0;
	mr_buf_reset(&s->out);
	s->size = 0;
	s->too_big = s->write_error = 0;
	memset(&s->bdat, 0, sizeof(s->bdat));
}

static void
session_free(struct session *s)
{
	struct session **pp;

	report(s, s->reported ? MR_SESS_GONE : MR_SESS_ONCE);
	reset_transaction(s);
	auth_reset(&s->auth);
	rdns_cancel(s->rdns_wait);
	for (pp = &table[s->id % HASH_SIZE]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	nsessions--;
	smtpd->conns[s->srv->index]--;
	if (s->client != NULL)
		client_done(smtpd->clients[s->srv->index], s->client);
	bufferevent_free(s->bev);
	mr_buf_free(&s->out);
	mr_buf_free(&s->replies);
	smtpd_release(s->l);
	free(s);
	smtpd_maybe_exit();
}

static void
close_after_reply(struct session *s)
{
	s->state = S_CLOSING;
	flush_replies(s);
	bufferevent_disable(s->bev, EV_READ);
	/* freed from the loop by session_write, never under a caller
	 * that still holds s */
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		bufferevent_trigger(s->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/* A TLS session's last reply, encrypted, is in the socket's own
 * bufferevent: the session ends when that has gone too (or failed). */
static void
tls_closing_write(struct bufferevent *u, void *arg)
{
	(void)u;
	session_free(arg);
}

static void
tls_closing_event(struct bufferevent *u, short what, void *arg)
{
	(void)u;
	(void)what;
	session_free(arg);
}

static void
session_write(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct timeval tv = { 10, 0 };
	struct bufferevent *u;

	(void)bev;
	if (s->state != S_CLOSING)
		return;
	u = bufferevent_get_underlying(s->bev);
	if (u != NULL && evbuffer_get_length(bufferevent_get_output(u)) > 0) {
		bufferevent_setcb(u, NULL, tls_closing_write,
		    tls_closing_event, s);
		bufferevent_set_timeouts(u, NULL, &tv);
		bufferevent_enable(u, EV_WRITE);
		return;
	}
	session_free(s);
}

/* The client went away: say what it left unfinished. */
static void
lost(struct session *s)
{
	if (s->state == S_DATA || s->state == S_WAIT_NEW ||
	    s->state == S_CHUNK)
		mr_info("session %llu [%s]: lost connection in DATA after "
		    "%llu bytes: message discarded (from=<%s>)",
		    (unsigned long long)s->id, s->ip,
		    (unsigned long long)s->size, s->sender);
	else if (s->in_mail && s->state != S_WAIT_COMMIT)
		mr_info("session %llu [%s]: lost connection before DATA: no "
		    "message (from=<%s>)", (unsigned long long)s->id, s->ip,
		    s->sender);
}

/* ---- TLS ---- */

static void	greet(struct session *);
static int	rdns_wait_for(struct session *);

static int
tls_offered(const struct session *s)
{
	return s->l->tls != NULL && s->srv->tls != MR_TLS_IN_NONE;
}

/*
 * Puts TLS over the session's socket: the handshake runs, then
 * tls_event sees it end.  A handshake is bounded by the idle timeout
 * and TLS_HANDSHAKE_MAX, whichever is shorter.
 */
static int
start_tls(struct session *s)
{
	struct bufferevent *tls;
	struct timeval tv;
	SSL *ssl;

	if (s->l->tls == NULL || (ssl = SSL_new(s->l->tls)) == NULL)
		goto fail;
	tls = bufferevent_openssl_filter_new(smtpd->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		goto fail;
	}
	SSL_set_app_data(ssl, s);
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	bufferevent_set_timeouts(s->bev, NULL, NULL);
	s->bev = tls;
	s->state = S_TLS;
	bufferevent_setcb(s->bev, session_read, session_write, session_event,
	    s);
	tv.tv_sec = s->srv->limits.idle_timeout < TLS_HANDSHAKE_MAX ?
	    s->srv->limits.idle_timeout : TLS_HANDSHAKE_MAX;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_setwatermark(s->bev, EV_READ, 0, 1024 * 1024);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	return 0;
fail:
	mr_err("session %llu [%s]: cannot set up TLS",
	    (unsigned long long)s->id, s->ip);
	ERR_clear_error();
	return -1;
}

/* RFC 3207 4.2: after the handshake the client starts afresh. */
static void
tls_established(struct session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	struct timeval tv;
	int alg = 0, bits;

	bits = SSL_CIPHER_get_bits(c, &alg);
	snprintf(s->tls_info, sizeof(s->tls_info), "%s with cipher %s "
	    "(%d/%d bits)", SSL_get_version(ssl), SSL_CIPHER_get_name(c),
	    bits, alg);
	mr_info("session %llu [%s]: TLS established: %s%s",
	    (unsigned long long)s->id, s->ip, s->tls_info,
	    SSL_session_reused(ssl) ? " (session resumed)" : "");
	s->tls = 1;
	if (s->sni != NULL) {		/* same generation: same hold */
		smtpd->conns[s->srv->index]--;
		s->l = s->sni;
		s->srv = s->l->srv;
		smtpd->conns[s->srv->index]++;
		mr_info("session %llu [%s]: server \"%s\" chosen by SNI",
		    (unsigned long long)s->id, s->ip, s->srv->name);
	}
	tv.tv_sec = s->srv->limits.idle_timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	reset_transaction(s);
	auth_reset(&s->auth);	/* RFC 3207 4.2: forget what was said */
	s->helo[0] = '\0';
	s->esmtp = 0;
	s->state = S_CMD;
	if (s->l->lcfg->tls)		/* implicit TLS: greet now */
		greet(s);
	process_input(s);
}

int
session_sni(SSL *ssl, int *alert, void *arg)
{
	struct session *s = SSL_get_app_data(ssl);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	struct listener *l;

	(void)alert;
	(void)arg;
	/* after a STARTTLS the server has greeted already */
	if (s == NULL || name == NULL || !s->l->lcfg->tls ||
	    (l = smtpd_sni_listener(s->l, name)) == NULL || l == s->l)
		return SSL_TLSEXT_ERR_OK;
	if (SSL_set_SSL_CTX(ssl, l->tls) != NULL)
		s->sni = l;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * The host name of the ClientHello's server_name extension (RFC 6066 3:
 * a list length, then a type, a length and the name), into name; -1 if
 * there is none or it is malformed (the handshake then judges it).
 */
static int
hello_sni(SSL *ssl, char *name, size_t size)
{
	const unsigned char *p;
	size_t len, n;

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p,
	    &len) != 1 || len < 5 || ((size_t)p[0] << 8 | p[1]) != len - 2 ||
	    p[2] != TLSEXT_NAMETYPE_host_name)
		return -1;
	n = (size_t)p[3] << 8 | p[4];
	if (n == 0 || n > len - 5 || n >= size || memchr(p + 5, '\0', n))
		return -1;
	memcpy(name, p + 5, n);
	name[n] = '\0';
	return 0;
}

/*
 * The ClientHello callback: SNI chooses the server before anything else
 * of the hello is looked at, so that a session ticket is judged by the
 * context of the server chosen (its session id context: a ticket given
 * under one certificate does not resume under another).
 */
int
session_hello(SSL *ssl, int *alert, void *arg)
{
	struct session *s = SSL_get_app_data(ssl);
	struct listener *l;
	char name[256];

	(void)alert;
	(void)arg;
	if (s == NULL || !s->l->lcfg->tls ||
	    hello_sni(ssl, name, sizeof(name)) == -1 ||
	    (l = smtpd_sni_listener(s->l, name)) == NULL || l == s->l)
		return SSL_CLIENT_HELLO_SUCCESS;
	if (SSL_set_SSL_CTX(ssl, l->tls) != NULL)
		s->sni = l;
	return SSL_CLIENT_HELLO_SUCCESS;
}

static void
tls_event(struct session *s, short what)
{
	unsigned long e;
	char err[256] = "connection closed";

	if (what & BEV_EVENT_CONNECTED) {
		tls_established(s);
		return;
	}
	if ((e = bufferevent_get_openssl_error(s->bev)) != 0)
		ERR_error_string_n(e, err, sizeof(err));
	else if (what & BEV_EVENT_ERROR && errno != 0)
		snprintf(err, sizeof(err), "%s", strerror(errno));
	ERR_clear_error();
	if (what & BEV_EVENT_TIMEOUT)
		mr_info("session %llu [%s]: TLS handshake timed out",
		    (unsigned long long)s->id, s->ip);
	else
		mr_info("session %llu [%s]: TLS handshake failed: %s",
		    (unsigned long long)s->id, s->ip, err);
	session_free(s);
}

static void
cmd_starttls(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t n;

	if (s->tls) {
		refuse(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (!tls_offered(s)) {
		refuse(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	/* no command may ride into the TLS session (CVE-2011-0411) */
	if ((n = evbuffer_get_length(in)) > 0) {
		mr_info("session %llu [%s]: %zu bytes sent after STARTTLS "
		    "before the handshake discarded",
		    (unsigned long long)s->id, s->ip, n);
		evbuffer_drain(in, n);
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	flush_replies(s);
	if (start_tls(s) == -1)
		close_after_reply(s);
}

static void
session_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	(void)bev;
	if (s->state == S_TLS) {
		tls_event(s, what);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT && s->state != S_CLOSING) {
		mr_info("session %llu [%s]: idle timeout",
		    (unsigned long long)s->id, s->ip);
		reply(s, "421 4.4.2 %s Idle timeout, closing connection",
		    s->srv->fqdn);
		bufferevent_set_timeouts(s->bev, NULL, NULL);
		close_after_reply(s);
		return;
	}
	lost(s);
	session_free(s);
}

static int
peer_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else {
		snprintf(buf, len, "unknown");
		return -1;
	}
	return inet_ntop(sa->sa_family, a, buf, (socklen_t)len) ? 0 : -1;
}

/* s-ip and s-port of the transaction log: the address connected to. */
static void
local_addr(struct session *s, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	snprintf(s->lip, sizeof(s->lip), "-");
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    peer_ip((struct sockaddr *)&ss, s->lip, sizeof(s->lip)) == -1)
		return;
	s->lport = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/*
 * The per-client limits (beyond IIS, as Postfix's anvil): every
 * connection is counted, refused or not.  1 if this one is over a limit
 * (refused, and the caller closes it).
 */
static int
client_over(struct session *s)
{
	const struct mr_limits *lim = &s->srv->limits;
	unsigned open, rate;

	if (lim->client_connections == 0 && lim->client_connection_rate == 0)
		return 0;
	s->client = client_connect(smtpd->clients[s->srv->index],
	    (struct sockaddr *)&s->peer, &open, &rate);
	if (s->client == NULL)
		return 0;
	if (lim->client_connections && open > lim->client_connections) {
		refuse(s, "421 4.7.0 %s Too many connections from your "
		    "address, try again later", s->srv->fqdn);
		return 1;
	}
	if (lim->client_connection_rate &&
	    rate > lim->client_connection_rate) {
		refuse(s, "421 4.7.0 %s Too many connections per minute from "
		    "your address, try again later", s->srv->fqdn);
		return 1;
	}
	return 0;
}

void
session_accept(struct listener *l, int fd, struct sockaddr *sa, int len)
{
	const struct mr_server *srv = l->srv;
	struct session *s;
	struct timeval tv;
	int one = 1;

	if (smtpd->stopping) {
		close(fd);
		return;
	}
	/* A reply goes out whole in one send, so Nagle's algorithm only
	 * delays it: after "250 250" to a pipelined MAIL and RCPT the client
	 * waits for the 354 without sending, its ACK is delayed, and the 354
	 * would wait for that ACK (about 40 ms per message). */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s = mr_xcalloc(1, sizeof(*s));
	s->id = ++smtpd->next_id;
	s->l = l;
	s->srv = srv;
	s->datafd = -1;
	if ((size_t)len <= sizeof(s->peer))
		memcpy(&s->peer, sa, (size_t)len);
	peer_ip(sa, s->ip, sizeof(s->ip));
	local_addr(s, fd);
	s->bev = bufferevent_socket_new(smtpd->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		free(s);
		return;
	}
	s->hnext = table[s->id % HASH_SIZE];
	table[s->id % HASH_SIZE] = s;
	nsessions++;
	smtpd_hold(l);
	smtpd->conns[srv->index]++;
	bufferevent_setcb(s->bev, session_read, session_write, session_event,
	    s);
	tv.tv_sec = srv->limits.idle_timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_setwatermark(s->bev, EV_READ, 0, 1024 * 1024);

	mr_debug("session %llu: connect from [%s] to %s",
	    (unsigned long long)s->id, s->ip, l->lcfg->text);
	s->started = time(NULL);
	report_later(s);	/* its start goes with the next pass */
	(void)rdns_wait_for(s);	/* under way while TLS starts */
	if (!l->lcfg->tls)
		greet(s);
	else if (start_tls(s) == -1)	/* implicit TLS: greet after it */
		close_after_reply(s);
}

/* ---- the client's name (rdns.c) ---- */

static void
rdns_known(struct session *s)
{
	s->rdns_known = 1;
	s->rdns_wait = NULL;
	if (s->rdns.status == MR_PTR_OK)
		mr_info("session %llu [%s]: client name %s (confirmed)",
		    (unsigned long long)s->id, s->ip, s->rdns.name);
	else if (s->rdns.status == MR_PTR_FAIL)
		mr_info("session %llu [%s]: reverse DNS lookup failed: no "
		    "domain rule matches this client",
		    (unsigned long long)s->id, s->ip);
	else
		mr_info("session %llu [%s]: no confirmed client name%s%s",
		    (unsigned long long)s->id, s->ip,
		    s->rdns.name[0] != '\0' ? ": PTR says " : "",
		    s->rdns.name);
}

static void
rdns_done(void *arg, const struct rdns_result *r)
{
	struct session *s = arg;

	s->rdns = *r;
	rdns_known(s);
	if (s->greet_waiting) {
		s->greet_waiting = 0;
		greet(s);
	}
}

/* Asks for the client's name if the server's rules or Received field
 * want it and it is not known: 1 while the answer is awaited. */
static int
rdns_wait_for(struct session *s)
{
	if (s->rdns_known || !rdns_needed(s->srv))
		return 0;
	if (s->rdns_wait != NULL)
		return 1;
	if (rdns_lookup((struct sockaddr *)&s->peer, rdns_done, s, &s->rdns,
	    &s->rdns_wait) == 0)
		return 1;
	rdns_known(s);
	return 0;
}

/* The access rules and limits, then the greeting (once the client's
 * name is known, if the rules or the Received field want it). */
static void
greet(struct session *s)
{
	const struct mr_server *srv = s->srv;

	if (rdns_wait_for(s)) {
		s->greet_waiting = 1;	/* rdns_done greets */
		return;
	}
	if (!mr_access_check(&srv->connection, (struct sockaddr *)&s->peer,
	    rdns_name(&s->rdns))) {
		mr_info("session %llu [%s]: connection denied by rule",
		    (unsigned long long)s->id, s->ip);
		reply(s, "554 5.7.1 %s Access denied", srv->fqdn);
		close_after_reply(s);
		return;
	}
	if (client_over(s)) {
		close_after_reply(s);
		return;
	}
	if (srv->limits.connections &&
	    smtpd->conns[srv->index] > srv->limits.connections) {
		refuse(s, "421 4.7.0 %s Too many connections, try again later",
		    srv->fqdn);
		close_after_reply(s);
		return;
	}
	reply(s, "220 %s ESMTP mailroot", srv->fqdn);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* ---- commands ---- */

/*
 * The HELO name goes into our Received field, the envelope and the logs:
 * anything but the characters of a host name or an address literal
 * (letters, digits, "-._:[]") becomes "?", so that no client can end the
 * field's from clause early (";", "(", ")") or put 8-bit bytes in it.
 */
static void
helo_sanitise(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < len && src[i] != '\0'; i++)
		dst[i] = isalnum((unsigned char)src[i]) ||
		    strchr("-._:[]", src[i]) != NULL ? src[i] : '?';
	dst[i] = '\0';
}

static void
cmd_helo(struct session *s, const struct mr_smtp_cmd *c)
{
	const struct mr_limits *lim = &s->srv->limits;
	const struct mr_extensions *ext = &s->srv->extensions;

	reset_transaction(s);
	helo_sanitise(s->helo, sizeof(s->helo), c->arg);
	s->esmtp = c->verb == MR_V_EHLO;
	if (!s->esmtp) {
		reply(s, "250 %s Hello [%s]", s->srv->fqdn, s->ip);
		return;
	}
	reply(s, "250-%s Hello [%s]", s->srv->fqdn, s->ip);
	if (ext->size)
		reply(s, "250-SIZE %llu",
		    (unsigned long long)lim->message_size);
	if (ext->pipelining)
		reply(s, "250-PIPELINING");
	if (ext->eightbitmime)
		reply(s, "250-8BITMIME");
	if (ext->chunking)
		reply(s, "250-CHUNKING");
	if (ext->smtputf8)
		reply(s, "250-SMTPUTF8");
	if (ext->dsn)
		reply(s, "250-DSN");
	if (etrn_offered(s->srv))
		reply(s, "250-ETRN");
	if (tls_offered(s) && !s->tls)
		reply(s, "250-STARTTLS");
	if (auth_ehlo(s->srv, s->tls) != NULL)
		reply(s, "250-%s", auth_ehlo(s->srv, s->tls));
	reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
cmd_mail(struct session *s, const struct mr_smtp_cmd *c)
{
	struct mr_buf b;

	if (s->helo[0] == '\0') {
		refuse(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->in_mail) {
		refuse(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	/* a parameter of an extension EHLO did not offer (RFC 5321 4.1.1.11) */
	if ((c->has_size && !s->srv->extensions.size) ||
	    (c->has_dsn && !s->srv->extensions.dsn) ||
	    (c->body != MR_BODY_NONE && !s->srv->extensions.eightbitmime) ||
	    (c->smtputf8 && !s->srv->extensions.smtputf8)) {
		refuse(s, "555 5.5.4 Unsupported MAIL parameter");
		return;
	}
	/* IIS "Require secure channel" */
	if (s->srv->tls == MR_TLS_IN_REQUIRED && !s->tls) {
		refuse(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (c->has_size && c->size > s->srv->limits.message_size) {
		refuse(s, "552 5.3.4 Message size exceeds fixed limit of %llu "
		    "bytes", (unsigned long long)s->srv->limits.message_size);
		return;
	}
	if (smtpd->queued == NULL) {
		refuse(s, "451 4.3.0 Queue temporarily unavailable, try again "
		    "later");
		return;
	}
	snprintf(s->sender, sizeof(s->sender), "%s", c->path.addr);
	s->body = c->body;
	s->smtputf8 = c->smtputf8;
	s->dsn = c->dsn_mail;
	s->in_mail = 1;
	/* the queue file arrives while the RCPTs are read; only DATA
	 * waits for it (and answers 451 if queued refused) */
	mr_buf_init(&b);
	mr_buf_put_u64(&b, s->id);
	mr_buf_put_u32(&b, (uint32_t)s->srv->index);
	mr_ipc_sendb(smtpd->queued, MR_Q_NEW, -1, &b);
	mr_buf_free(&b);
	s->new_pending = 1;
	s->news_out++;
	reply(s, "250 2.1.0 Ok");
}

/* Local (or alias) domains take mail from anyone; anything else is relay. */
static int
relay_allowed(struct session *s, const char *domain)
{
	const struct mr_domain *d;

	if (mr_access_check(&s->srv->relay, (struct sockaddr *)&s->peer,
	    rdns_name(&s->rdns)))
		return 1;
	if (s->auth.user[0] != '\0' && s->srv->relay_authenticated)
		return 1;
	d = mr_config_domain(s->srv, domain);
	return d != NULL && d->kind == MR_DOMAIN_REMOTE && d->relay;
}

/* The server's first local domain (the IIS "default domain"): where a
 * bare <Postmaster> is delivered, never to another host. */
static const char *
default_domain(const struct mr_server *srv)
{
	size_t i;

	for (i = 0; i < srv->ndomains; i++)
		if (srv->domains[i].kind == MR_DOMAIN_LOCAL)
			return srv->domains[i].name;
	return srv->fqdn;
}

/* A recipient accepted: its address and DSN parameters, in step. */
static void
add_rcpt(struct session *s, const char *addr, const struct mr_dsn_rcpt *d)
{
	s->rcpts = mr_xreallocarray(s->rcpts, s->nrcpts + 1, sizeof(char *));
	s->rdsn = mr_xreallocarray(s->rdsn, s->nrcpts + 1, sizeof(*s->rdsn));
	s->rdsn[s->nrcpts] = *d;
	s->rcpts[s->nrcpts++] = mr_xstrdup(addr);
}

static void
cmd_rcpt(struct session *s, const struct mr_smtp_cmd *c)
{
	char addr[MR_PATH_MAX + 1];

	if (!s->in_mail) {
		refuse(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (c->has_dsn && !s->srv->extensions.dsn) {
		refuse(s, "555 5.5.4 Unsupported RCPT parameter");
		return;
	}
	if (s->nrcpts >= s->srv->limits.recipients_per_message) {
		refuse(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (c->path.utf8 && !s->smtputf8) {	/* RFC 6531 3.7.4.1 */
		refuse(s, "553 5.6.7 Non-ASCII addresses not permitted for "
		    "that recipient (no SMTPUTF8)");
		return;
	}
	if (c->path.postmaster)	/* RFC 5321 4.5.1: always accepted */
		snprintf(addr, sizeof(addr), "postmaster@%s",
		    default_domain(s->srv));
	else if (!mr_domain_is_local(s->srv, c->path.domain) &&
	    !relay_allowed(s, c->path.domain)) {
		mr_info("session %llu [%s]: relay denied: from=<%s> to=<%s>",
		    (unsigned long long)s->id, s->ip, s->sender,
		    c->path.addr);
		reply(s, "550 5.7.1 <%s>: Relay access denied", c->path.addr);
		return;
	} else
		snprintf(addr, sizeof(addr), "%s", c->path.addr);
	/* a local domain with a recipient table: queued says (below) */
	switch (c->path.postmaster ? 0 : rcpt_check_send(s->srv, s->id, addr,
	    c->path.domain)) {
	case 1:
		snprintf(s->rcpt_wait, sizeof(s->rcpt_wait), "%s", addr);
		s->rcpt_wait_dsn = c->dsn_rcpt;
		s->state = S_WAIT_RCPT;
		return;
	case -1:
		reply(s, "451 4.3.0 <%s>: Recipient check temporarily "
		    "unavailable", addr);
		return;
	default:
		break;
	}
	add_rcpt(s, addr, &c->dsn_rcpt);
	reply(s, "250 2.1.5 Ok");
}

void
session_rcpt_verdict(uint64_t req, uint32_t verdict)
{
	struct session *s = lookup(req);
	const char *a;

	if (s == NULL || s->state != S_WAIT_RCPT)
		return;
	s->state = S_CMD;
	a = s->rcpt_wait;
	if (verdict == MR_RV_OK) {
		add_rcpt(s, a, &s->rcpt_wait_dsn);
		reply(s, "250 2.1.5 Ok");
	} else if (verdict == MR_RV_UNKNOWN) {
		mr_info("session %llu [%s]: unknown recipient <%s>",
		    (unsigned long long)s->id, s->ip, a);
		reply(s, "550 5.1.1 <%s>: Recipient address rejected: User "
		    "unknown in local recipient table", a);
	} else
		reply(s, "451 4.3.0 <%s>: Recipient table temporarily "
		    "unavailable", a);
	resume(s);
}

static void
flush_data(struct session *s)
{
	if (s->out.len == 0)
		return;
	if (!s->write_error && !s->too_big &&
	    mr_write_all(s->datafd, s->out.data, s->out.len) == -1) {
		mr_err("session %llu: writing queue file %s: %s",
		    (unsigned long long)s->id, s->qid, strerror(errno));
		s->write_error = 1;
	}
	mr_buf_reset(&s->out);
}

/* add-missing-headers: local means the clients in `relay allow', as
 * Postfix completes the headers of its local clients only. */
static int
add_headers_wanted(struct session *s)
{
	switch (s->srv->add_missing_headers) {
	case MR_ADDHDR_ALL:
		return 1;
	case MR_ADDHDR_NONE:
		return 0;
	case MR_ADDHDR_LOCAL:
	default:
		return mr_access_check(&s->srv->relay,
		    (struct sockaddr *)&s->peer, rdns_name(&s->rdns));
	}
}

/*
 * A client whose every command line ended in a bare LF, as printers,
 * scanners and old scripts send (IIS took their mail), ends its data
 * with LF "." LF as well; from a client on the relay list only, the LAN
 * hosts IIS administrators list there.  This opens no door to SMTP
 * smuggling: that needs a hop that passes on bare LFs from someone
 * else's message, and a hop that relays (an MTA, a gateway, a library)
 * ends its own commands in CRLF, after which only CRLF "." CRLF ends
 * its data.  Either way the message is stored with CRLF lines.
 */
static int
lf_client(const struct session *s)
{
	return !s->crlf_seen && mr_access_check(&s->srv->relay,
	    (struct sockaddr *)&s->peer, rdns_name(&s->rdns));
}

/* The Received field, and the stream the message goes through. */
static void
message_begin(struct session *s)
{
	char date[64];

	mr_rfc5322_date(time(NULL), date, sizeof(date));
	mr_buf_reset(&s->out);
	if (s->srv->reverse_dns_lookup && s->rdns_known)
		rdns_received_from(&s->out, &s->rdns, s->helo, s->ip);
	else
		mr_buf_printf(&s->out, "Received: from %s ([%s])\r\n",
		    s->helo, s->ip);
	if (s->tls)
		mr_buf_printf(&s->out, "\t(using %s)\r\n", s->tls_info);
	if (s->auth.user[0] != '\0' && s->srv->auth.received_auth) {
		char name[MR_SASL_USER_MAX + 1];

		auth_received_name(s->auth.user, name, sizeof(name));
		mr_buf_printf(&s->out, "\t(Authenticated sender: %s)\r\n",
		    name);
	}
	/* RFC 3848: ESMTPS, ESMTPA, ESMTPSA */
	mr_buf_printf(&s->out, "\tby %s (mailroot) with %s%s%s id %s",
	    s->srv->fqdn, s->esmtp ? "ESMTP" : "SMTP", s->tls ? "S" : "",
	    s->auth.user[0] != '\0' ? "A" : "", s->qid);
	if (s->nrcpts == 1)
		mr_buf_printf(&s->out, "\r\n\tfor <%s>", s->rcpts[0]);
	mr_buf_printf(&s->out, "; %s\r\n", date);
	s->size = s->out.len;
	mr_dstream_init(&s->ds, emit, s);
	s->ds.hdr_end = headers_end;
	s->ds.lf_ends = lf_client(s);
	s->add_headers = add_headers_wanted(s);
}

static void
cmd_data(struct session *s)
{
	if (s->bdat.seen) {	/* RFC 3030 section 3 */
		refuse(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	if (!s->in_mail) {
		refuse(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->nrcpts == 0) {
		refuse(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	if (s->new_pending) {
		s->state = S_WAIT_NEW;	/* session_new_ok comes back here */
		return;
	}
	if (s->new_failed || s->datafd == -1) {
		reset_transaction(s);
		refuse(s, "451 4.3.0 Error: queue temporarily unavailable, "
		    "try again later");
		return;
	}
	message_begin(s);
	s->state = S_DATA;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* ---- AUTH (auth.c) ---- */

static struct auth_ctx *
session_auth_ctx(struct session *s, struct auth_ctx *c)
{
	c->s = s;
	c->id = s->id;
	c->ip = s->ip;
	c->srv = s->srv;
	c->tls = s->tls;
	c->helo = s->esmtp;
	c->in_mail = s->in_mail;
	return c;
}

void
session_auth_reply(struct session *s, int refusal, const char *line)
{
	if (refusal)
		refuse(s, "%s", line);
	else
		reply(s, "%s", line);
}

void
session_auth_wait(struct session *s)
{
	s->state = S_WAIT_AUTH;
}

void
session_auth_resume(struct session *s)
{
	s->state = S_CMD;
	process_input(s);
}

void
session_auth_close(struct session *s)
{
	close_after_reply(s);
}

void
session_auth_done(uint64_t req, uint32_t result)
{
	struct session *s = lookup(req);
	struct auth_ctx ac;

	if (s == NULL || !s->auth.waiting)
		return;
	auth_result(session_auth_ctx(s, &ac), &s->auth, result);
}

static void
cmd_etrn(struct session *s, const struct mr_smtp_cmd *c)
{
	char line[600];

	if (s->helo[0] == '\0' || s->in_mail) {
		refuse(s, "503 5.5.1 Error: %s", s->in_mail ?
		    "ETRN is not allowed in a mail transaction" :
		    "send HELO/EHLO first");
		return;
	}
	etrn_reply(s->srv, (struct sockaddr *)&s->peer, c->arg, line,
	    sizeof(line));
	reply(s, "%s", line);
}

static void
dispatch(struct session *s, const char *line, size_t len)
{
	struct mr_smtp_cmd c;
	struct auth_ctx ac;

	if (s->auth.exchange) {	/* a response, not a command */
		auth_line(session_auth_ctx(s, &ac), &s->auth, line, len);
		return;
	}
	translog_begin(&s->tl, line, len);
	if (mr_smtp_parse(line, len, s->esmtp, &c) != 0) {
		refuse(s, "%d %s %s", c.code, c.status, c.text);
		s->errors++;
		/* where a chunk we cannot measure ends, nobody knows: what
		 * follows cannot be read as commands */
		if (c.verb == MR_V_BDAT && s->esmtp &&
		    s->srv->extensions.chunking)
			close_after_reply(s);
	} else {
		switch (c.verb) {
		case MR_V_EHLO:
		case MR_V_HELO:
			cmd_helo(s, &c);
			break;
		case MR_V_MAIL:
			cmd_mail(s, &c);
			break;
		case MR_V_RCPT:
			cmd_rcpt(s, &c);
			break;
		case MR_V_DATA:
			cmd_data(s);
			break;
		case MR_V_RSET:
			reset_transaction(s);
			reply(s, "250 2.0.0 Ok");
			break;
		case MR_V_NOOP:
			reply(s, "250 2.0.0 Ok");
			break;
		case MR_V_QUIT:
			reply(s, "221 2.0.0 %s Bye", s->srv->fqdn);
			close_after_reply(s);
			break;
		case MR_V_VRFY:
			reply(s, "252 2.5.2 Send some mail, I'll try my best");
			break;
		case MR_V_HELP:
			reply(s, "214 2.0.0 See RFC 5321");
			break;
		case MR_V_STARTTLS:
			cmd_starttls(s);
			break;
		case MR_V_AUTH:
			auth_cmd(session_auth_ctx(s, &ac), &s->auth, c.arg);
			break;
		case MR_V_BDAT:
			cmd_bdat(s, &c);
			break;
		case MR_V_ETRN:
			cmd_etrn(s, &c);
			break;
		default:
			refuse(s, "502 5.5.1 Error: command not implemented");
			break;
		}
	}
	if (s->errors >= ERRORS_MAX && s->state != S_CLOSING) {
		refuse(s, "421 4.7.0 %s Too many errors", s->srv->fqdn);
		close_after_reply(s);
	}
	memcpy(s->last_cmd, s->tl.method, sizeof(s->last_cmd));
	report_later(s);
}

/* ---- DATA ---- */

static int
has_8bit(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return 1;
	return 0;
}

/*
 * The label the message goes on with: BODY=8BITMIME only when it holds
 * 8-bit bytes, so that a 7-bit message some client declared 8BITMIME
 * still reaches a next hop without 8BITMIME (deliverd returns 8-bit
 * mail to the sender there, RFC 6152 section 3).
 */
static enum mr_body
body_label(const struct session *s)
{
	if (s->body == MR_BODY_8BITMIME && !s->eightbit)
		return MR_BODY_7BIT;
	return s->body;
}

/*
 * RFC 5322 3.6 requires Date: and wants Message-ID:; applications often
 * leave them out.  Added at the end of the header section for the
 * clients add-missing-headers names.
 */
static void
add_missing_headers(struct session *s)
{
	char lines[128 + MR_ID_MAX + 256];
	size_t n;

	if (!s->add_headers)
		return;
	n = mr_dstream_missing(&s->ds, s->qid, s->srv->fqdn, time(NULL),
	    lines, sizeof(lines));
	if (n > 0)
		emit(s, lines, n);
}

/* The header section ends; a message without one gets its empty line,
 * so that its first body line is not read as a header field. */
static void
headers_end(void *arg, int body)
{
	struct session *s = arg;

	add_missing_headers(s);
	if (body)
		emit(s, "\r\n", 2);
}

/* Bytes of the message as they will be stored. */
static void
emit(void *arg, const char *p, size_t n)
{
	struct session *s = arg;

	s->size += n;
	if (s->size > s->srv->limits.message_size)
		s->too_big = 1;
	if (s->too_big || s->write_error)
		return;
	if (s->body == MR_BODY_8BITMIME && !s->eightbit)
		s->eightbit = has_8bit(p, n);
	mr_buf_add(&s->out, p, n);
	if (s->out.len >= FLUSH_AT)
		flush_data(s);
}

static void
end_of_data(struct session *s)
{
	const struct mr_server *srv = s->srv;
	struct mr_buf b;
	size_t i;

	if (s->ds.in_headers) {		/* headers only, no body */
		s->ds.in_headers = 0;
		add_missing_headers(s);
	}
	flush_data(s);
	close(s->datafd);
	s->datafd = -1;
	s->session_bytes += s->size;
	if (s->too_big) {
		refuse(s, "552 5.3.4 Message size exceeds fixed limit of %llu "
		    "bytes", (unsigned long long)srv->limits.message_size);
		goto reject;
	}
	/* RFC 5321 2.3.8 allows no NUL without BINARYMIME, and a next hop
	 * that drops it would read CRLF NUL "." CRLF as the end of data */
	if (s->ds.nul) {
		refuse(s, "554 5.6.0 Message contains NUL characters");
		goto reject;
	}
	if (s->session_bytes > srv->limits.session_size) {
		refuse(s, "552 5.3.4 Session size limit of %llu bytes "
		    "exceeded", (unsigned long long)srv->limits.session_size);
		goto reject;
	}
	/* the hops are the client's Received fields plus our own (IIS
	 * "Maximum hop count"; RFC 5321 6.3) */
	if (s->ds.received + 1 > srv->hop_count) {
		refuse(s, "554 5.4.6 Too many hops (%u Received headers; the "
		    "limit is %u): mail loop?", s->ds.received + 1,
		    srv->hop_count);
		goto reject;
	}
	if (s->write_error || smtpd->queued == NULL) {
		refuse(s, "451 4.3.0 Error: could not store the message, "
		    "try again later");
		goto reject;
	}
	mr_buf_init(&b);
	mr_buf_put_u64(&b, s->id);
	mr_buf_put_str(&b, s->qid);
	mr_buf_put_str(&b, s->sender);
	mr_buf_put_u32(&b, (uint32_t)s->nrcpts);
	for (i = 0; i < s->nrcpts; i++)
		mr_buf_put_str(&b, s->rcpts[i]);
	mr_buf_put_u64(&b, s->size);
	mr_buf_put_str(&b, s->ip);
	mr_buf_put_str(&b, s->helo);
	mr_buf_put_u32(&b, (uint32_t)body_label(s));
	mr_buf_put_str(&b, s->auth.user);
	/* ---- DSN (RFC 3461) ---- */
	mr_buf_put_u32(&b, (uint32_t)s->dsn.ret);
	mr_buf_put_str(&b, s->dsn.envid);
	mr_buf_put_u32(&b, (uint32_t)s->nrcpts);
	for (i = 0; i < s->nrcpts; i++) {
		mr_buf_put_u32(&b, s->rdsn[i].notify);
		mr_buf_put_str(&b, s->rdsn[i].orcpt);
	}
	mr_buf_put_u32(&b, (uint32_t)s->smtputf8);	/* RFC 6531 */
	mr_ipc_sendb(smtpd->queued, MR_Q_COMMIT, -1, &b);
	mr_buf_free(&b);
	s->state = S_WAIT_COMMIT;
	return;
reject:
	reset_transaction(s);
	s->state = S_CMD;
}

/* ---- BDAT (RFC 3030; the chunk is read by bdat.c) ---- */

/*
 * BDAT: the chunk is taken into the message, or read and dropped when
 * the command is refused.  Without CHUNKING offered it is an unknown
 * command (502), as for any client that sends what EHLO did not offer.
 */
static void
cmd_bdat(struct session *s, const struct mr_smtp_cmd *c)
{
	if (!s->esmtp || !s->srv->extensions.chunking) {
		refuse(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	s->bdat.cmd = c->bdat;
	mr_chunk_init(&s->bdat.chunk, &c->bdat);
	s->bdat.discard = 0;
	s->state = S_CHUNK;
	if (!s->in_mail)
		bdat_discard(&s->bdat, "503 5.5.1 Error: need MAIL command",
		    0);
	else if (s->nrcpts == 0)
		bdat_discard(&s->bdat, "554 5.5.1 Error: no valid recipients",
		    0);
	else if (s->new_pending) {
		s->bdat.pending = 1;	/* session_new_ok comes back */
		s->state = S_WAIT_NEW;
	} else
		bdat_start(s);
}

/* The first chunk of a message begins it, as DATA's 354 does. */
static void
bdat_start(struct session *s)
{
	s->bdat.pending = 0;
	s->state = S_CHUNK;
	if (s->new_failed || s->datafd == -1) {
		bdat_discard(&s->bdat, "451 4.3.0 Error: queue temporarily "
		    "unavailable, try again later", 1);
		return;
	}
	if (!s->bdat.seen) {
		message_begin(s);
		mr_dstream_set_raw(&s->ds);
		s->bdat.seen = 1;
	}
}

/* A chunk has been read whole: its reply, and at LAST the commit. */
static void
chunk_end(struct session *s)
{
	s->state = S_CMD;
	if (s->bdat.discard) {
		refuse(s, "%s", s->bdat.refusal);
		if (s->bdat.reset)
			reset_transaction(s);
		s->bdat.discard = 0;
		return;
	}
	if (s->too_big) {	/* the rest of the message is not wanted */
		s->session_bytes += s->size;
		refuse(s, "552 5.3.4 Message size exceeds fixed limit of %llu "
		    "bytes", (unsigned long long)s->srv->limits.message_size);
		reset_transaction(s);
		return;
	}
	if (!s->bdat.cmd.last) {
		reply(s, "250 2.0.0 %llu octets received",
		    (unsigned long long)s->bdat.cmd.size);
		return;
	}
	mr_dstream_finish(&s->ds);
	end_of_data(s);
}

static void
process_chunk(struct session *s)
{
	if (bdat_read(&s->bdat, bufferevent_get_input(s->bev), &s->ds))
		chunk_end(s);
}

/* ---- input ---- */

static void
process_data(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec vec[8];
	size_t used;
	int i, nv, done = 0;

	while (!done && evbuffer_get_length(in) > 0) {
		nv = evbuffer_peek(in, -1, NULL, vec, 8);
		if (nv > 8)
			nv = 8;
		for (i = 0; i < nv && !done; i++) {
			used = mr_dstream_feed(&s->ds, vec[i].iov_base,
			    vec[i].iov_len, &done);
			evbuffer_drain(in, used);
			s->tl.cs_bytes += used;	/* DATA, as received */
		}
	}
	if (done)
		end_of_data(s);
}

static void
process_lines(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr eol;
	char *line;
	size_t n, eol_len;

	for (;;) {
		if (s->state == S_DATA) {
			process_data(s);
			if (s->state == S_DATA)
				return;
			continue;
		}
		if (s->state == S_CHUNK) {
			process_chunk(s);
			if (s->state == S_CHUNK)
				return;
			continue;
		}
		if (s->state != S_CMD)
			return;
		eol = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF);
		if (eol.pos != -1 && eol_len == 2)
			s->crlf_seen = 1;
		line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			/* + 1: the CR of a line at the limit may be here
			 * before its LF */
			if (evbuffer_get_length(in) > MR_SMTP_LINE_MAX + 1) {
				refuse(s, "500 5.5.2 Line too long");
				close_after_reply(s);
			}
			return;
		}
		dispatch(s, line, n);
		free(line);
		if (s->state == S_CLOSING)
			return;
	}
}

/* Everything that has arrived, answered with one write. */
static void
process_input(struct session *s)
{
	s->batching++;
	process_lines(s);
	s->batching--;
	if (!s->batching)
		flush_replies(s);
}

static void
session_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	process_input(arg);
}

/* Resumes a session that waited for queued. */
static void
resume(struct session *s)
{
	if (s->state == S_WAIT_NEW || s->state == S_WAIT_COMMIT)
		s->state = S_CMD;
	process_input(s);
}

/* ---- replies from queued ---- */

/* Gives an unwanted queue file back to queued. */
static void
give_back(const char *id, int fd)
{
	struct mr_buf b;

	close(fd);
	if (smtpd->queued == NULL)
		return;
	mr_buf_init(&b);
	mr_buf_put_str(&b, id);
	mr_ipc_sendb(smtpd->queued, MR_Q_ABORT, -1, &b);
	mr_buf_free(&b);
}

/*
 * Answers to NEW come in the order the NEWs went out; one that a RSET
 * made stale is followed by the current one, so only the last answer
 * still out belongs to the transaction.
 */
static struct session *
answer_for(uint64_t req)
{
	struct session *s = lookup(req);

	if (s == NULL || s->news_out == 0)
		return NULL;
	if (--s->news_out > 0 || !s->new_pending)
		return NULL;
	s->new_pending = 0;
	return s;
}

void
session_new_ok(uint64_t req, const char *id, int fd)
{
	struct session *s = answer_for(req);

	if (s == NULL) {
		give_back(id, fd);
		return;
	}
	snprintf(s->qid, sizeof(s->qid), "%s", id);
	s->datafd = fd;
	if (s->state == S_WAIT_NEW) {
		s->state = S_CMD;
		if (s->bdat.pending)
			bdat_start(s);
		else
			cmd_data(s);
		resume(s);
	}
}

void
session_new_fail(uint64_t req, const char *reason)
{
	struct session *s = answer_for(req);

	if (s == NULL)
		return;
	mr_warn("session %llu: queued cannot take a message: %s",
	    (unsigned long long)s->id, reason);
	s->new_failed = 1;
	if (s->state == S_WAIT_NEW) {
		s->state = S_CMD;
		if (s->bdat.pending)
			bdat_start(s);	/* reads the chunk, answers 451 */
		else
			cmd_data(s);	/* answers 451 */
		resume(s);
	}
}

void
session_commit_done(uint64_t req, int ok, const char *text)
{
	struct session *s = lookup(req);

	if (s == NULL || s->state != S_WAIT_COMMIT)
		return;
	if (ok > 0) {
		mr_info("session %llu [%s]: queued as %s: from=<%s> "
		    "nrcpt=%zu size=%llu", (unsigned long long)s->id, s->ip,
		    s->qid, s->sender, s->nrcpts,
		    (unsigned long long)s->size);
		reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
		s->qid[0] = '\0';	/* committed: not ours to abort */
	} else if (ok < 0) {
		mr_info("session %llu [%s]: %s refused: %s",
		    (unsigned long long)s->id, s->ip, s->qid, text);
		refuse(s, "550 5.7.1 %s", text);
	} else {
		mr_warn("session %llu: commit of %s failed: %s",
		    (unsigned long long)s->id, s->qid, text);
		refuse(s, "451 4.3.0 Error: could not store the message, "
		    "try again later");
	}
	reset_transaction(s);
	resume(s);
}

void
session_queued_lost(void)
{
	struct session *s;
	size_t h;

	for (h = 0; h < HASH_SIZE; h++)
		for (s = table[h]; s != NULL; s = s->hnext) {
			if (s->auth.waiting)
				session_auth_done(s->id, MR_AUTH_TEMP);
			/* NEWs in flight will never be answered */
			s->news_out = 0;
			if (s->new_pending) {
				s->new_pending = 0;
				s->new_failed = 1;
			}
			if (s->state == S_WAIT_RCPT) {
				reply(s, "451 4.3.0 <%s>: Recipient check "
				    "temporarily unavailable", s->rcpt_wait);
				s->state = S_CMD;
				bufferevent_trigger(s->bev, EV_READ, 0);
				continue;
			}
			if (s->state != S_WAIT_NEW &&
			    s->state != S_WAIT_COMMIT) {
				/* a file in progress can no longer be
				 * committed by anyone */
				if (s->qid[0] != '\0')
					s->write_error = 1;
				continue;
			}
			s->qid[0] = '\0';
			if (s->state == S_WAIT_NEW && s->bdat.pending) {
				bdat_start(s);	/* the chunk is read, 451 */
				bufferevent_trigger(s->bev, EV_READ, 0);
				continue;
			}
			reset_transaction(s);
			refuse(s, "451 4.3.0 Error: queue temporarily "
			    "unavailable, try again later");
			s->state = S_CMD;
			/* resumed on the next read event */
			bufferevent_trigger(s->bev, EV_READ, 0);
		}
}
