/*
 * lmtp.c - local delivery to a mail store over LMTP (RFC 2033), for the
 * local domains with `deliver lmtp SOCKET'.
 *
 * One session per message and destination, on queued's event loop and
 * never blocking it: connect (a UNIX socket path, or an IP address and
 * port: queued resolves no names), LHLO, MAIL, one RCPT per recipient,
 * DATA with dot-stuffing and CRLF line ends, then one reply per accepted
 * recipient after the final "." (RFC 2033 section 4.2), then QUIT.  A
 * 2xx delivers the recipient, a 5xx fails it (a DSN follows), anything
 * else -- a 4xx, a timeout, a lost connection -- leaves it pending for
 * the retry schedule.  When the session ends the scheduler goes on with
 * the message (sched_lmtp_done).
 *
 * Why queued and not deliverd: the mail store is part of this host's
 * local delivery, which queued owns (Drop, Maildir), the session needs
 * no DNS, TLS or connection pool, and its per-recipient results update
 * the envelope directly.  The cost is that queued may open IPv4 and IPv6
 * sockets (common/sandbox_seccomp.c), for LMTP over TCP.
 *
 * Security: the LMTP server is trusted no further than a remote SMTP
 * server: replies are read line by line with a bounded length and line
 * count, their text cleaned of control bytes before it reaches logs,
 * the envelope or a DSN.  A misbehaving server costs its own session.
 * Addresses were parsed by mr_mailbox_parse and hold no CR or LF.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "buf.h"
#include "log.h"
#include "queued.h"
#include "smtp_reply.h"
#include "util.h"

#define LMTP_PORT	24
#define REPLY_TEXT_MAX	(MR_REPLY_TEXT_MAX + 8)	/* "ddd " and the text */
#define BODY_CHUNK	(64 * 1024)
#define BODY_HIGH	(256 * 1024)

enum lmtp_state {
	L_GREETING, L_LHLO, L_MAIL, L_RCPT, L_DATA, L_BODY,
	L_DOT, L_QUIT
};

struct lmtp_sess {
	struct qmsg		*m;
	struct bufferevent	*bev;
	enum lmtp_state		 state;
	char			*dest;		/* as configured */
	int			 datafd;
	off_t			 off;
	int			 bol, cr;	/* dot-stuffing state */
	size_t			*idx;		/* recipients of m */
	unsigned char		*done;		/* idx[j] has its result */
	size_t			 n, ri;		/* count, next RCPT */
	size_t			*acc;		/* accepted j, in RCPT order */
	size_t			 nacc, di;	/* count, next DATA reply */
	int			 code;		/* reply being read */
	unsigned		 nlines;
	struct mr_buf		 reply;		/* its text so far */
	char			 text[REPLY_TEXT_MAX];	/* the whole reply */
};

static void	sess_read(struct bufferevent *, void *);
static void	sess_write(struct bufferevent *, void *);
static void	sess_event(struct bufferevent *, short, void *);

/* The domain whose settings decide where recipient i goes: its own, or
 * the target of an alias-of domain.  NULL for a remote recipient. */
const struct mr_domain *
local_domain(const struct qmsg *m, size_t i)
{
	const char *at = strrchr(m->rcpts[i].addr, '@');
	const struct mr_domain *d;

	if (at == NULL || (d = mr_config_domain(m->qs->srv, at + 1)) == NULL)
		return NULL;
	if (d->kind == MR_DOMAIN_ALIAS)
		d = mr_config_domain(m->qs->srv, d->alias_of);
	return d != NULL && d->kind == MR_DOMAIN_LOCAL ? d : NULL;
}

static const char *
lmtp_dest(const struct qmsg *m, size_t i)
{
	const struct mr_domain *d;

	if (!m->rcpts[i].local || m->rcpts[i].state != R_PENDING ||
	    m->rcpts[i].tried || (d = local_domain(m, i)) == NULL ||
	    d->deliver != MR_DELIVER_LMTP)
		return NULL;
	return d->deliver_arg;
}

/* The result for recipient idx[j]: the reply code decides its state. */
static void
set_result(struct lmtp_sess *s, size_t j, int code, const char *text)
{
	struct qrcpt *rc = &s->m->rcpts[s->idx[j]];

	s->done[j] = 1;
	qstr_set(&rc->text, text);
	if (code >= 200 && code < 300)
		rc->state = R_SENT;
	else if (code >= 500 && code < 600)
		rc->state = R_FAILED;
	mr_info("%s: to=<%s> relay=lmtp:%s status=%s (%s)", s->m->id,
	    rc->addr, s->dest, rc->state == R_SENT ? "sent" :
	    rc->state == R_FAILED ? "bounced" : "deferred", text);
}

static void
sess_free(struct lmtp_sess *s)
{
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->datafd != -1)
		close(s->datafd);
	free(s->dest);
	free(s->idx);
	free(s->done);
	free(s->acc);
	mr_buf_free(&s->reply);
	free(s);
}

/*
 * Ends the session: recipients without a result are left pending with
 * why (a temporary failure), and the scheduler takes the message back.
 */
static void
sess_end(struct lmtp_sess *s, const char *why)
{
	struct qmsg *m = s->m;
	char text[REPLY_TEXT_MAX + 64];
	size_t i;

	if (why != NULL) {
		snprintf(text, sizeof(text), "451 4.4.0 LMTP %s: %s", s->dest,
		    why);
		for (i = 0; i < s->n; i++)
			if (!s->done[i])
				set_result(s, i, 451, text);
	}
	m->act->lmtp = NULL;
	act_put(m);
	sess_free(s);
	sched_lmtp_done(m);
}

/* Sends the command pre + arg + post. */
static void
sess_put(struct lmtp_sess *s, enum lmtp_state next, const char *pre,
    const char *arg, const char *post)
{
	evbuffer_add_printf(bufferevent_get_output(s->bev), "%s%s%s\r\n", pre,
	    arg != NULL ? arg : "", post != NULL ? post : "");
	s->state = next;
}

static int
sess_connect(struct lmtp_sess *s)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char *host = NULL;
	unsigned port;
	int rc = -1;

	memset(&ss, 0, sizeof(ss));
	if (s->dest[0] == '/') {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ss;

		if (strlen(s->dest) >= sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, s->dest, strlen(s->dest) + 1);
		len = sizeof(*sun);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		const char *h;

		if (mr_split_hostport(s->dest, LMTP_PORT, &host, &port) == -1)
			return -1;
		h = host[0] == '[' ? host + 1 : host;
		if (host[0] == '[')
			host[strlen(host) - 1] = '\0';
		if (strncasecmp(h, "IPv6:", 5) == 0)
			h += 5;
		if (inet_pton(AF_INET, h, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)port);
			len = sizeof(*sin);
		} else if (inet_pton(AF_INET6, h, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)port);
			len = sizeof(*sin6);
		} else {
			errno = EINVAL;	/* conf_parse.c allows only IPs */
			goto out;
		}
	}
	s->bev = bufferevent_socket_new(q->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL)
		goto out;
	bufferevent_setcb(s->bev, sess_read, NULL, sess_event, s);
	rc = bufferevent_socket_connect(s->bev, (struct sockaddr *)&ss,
	    (int)len);
out:
	free(host);
	return rc;
}

/*
 * One reply line, read by common/smtp_reply.c: 1 when a whole reply is in
 * s->code and s->text ("ddd text", as a recipient's result keeps it), 0
 * when more lines follow, -1 when the line is not a reply.
 */
static int
reply_line(struct lmtp_sess *s, const char *l, size_t n)
{
	struct mr_reply r = { s->code, s->nlines, &s->reply };
	int rc = mr_reply_line(&r, l, n);

	s->code = r.code;
	s->nlines = r.nlines;
	if (rc == 0)
		return 0;
	if (rc == 1)
		snprintf(s->text, sizeof(s->text), "%d%s%s", s->code,
		    s->reply.len > 0 ? " " : "",
		    s->reply.len > 0 ? s->reply.data : "");
	else
		s->text[0] = '\0';
	mr_buf_reset(&s->reply);
	s->nlines = 0;
	return rc;
}

/*
 * Adds n bytes of the message to out, dot-stuffed (RFC 5321 4.5.2), a
 * bare CR or LF sent as CRLF.  tmp holds at least 3 * n bytes.
 */
static void
stuff(struct lmtp_sess *s, struct evbuffer *out, const char *p, size_t n,
    char *tmp)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char c = p[i];
		int wascr = s->cr;

		if (wascr && c != '\n') {
			tmp[o++] = '\n';
			s->bol = 1;
		}
		s->cr = c == '\r';
		if (c == '\r') {
			tmp[o++] = c;
			continue;
		}
		if (c == '\n') {
			if (!wascr)
				tmp[o++] = '\r';
			tmp[o++] = '\n';
			s->bol = 1;
			continue;
		}
		if (s->bol && c == '.')
			tmp[o++] = '.';
		tmp[o++] = c;
		s->bol = 0;
	}
	evbuffer_add(out, tmp, o);
}

/* Sends more of the body while the output is short; then the ".".
 * -1 when the session ended (s is gone). */
static int
body_fill(struct lmtp_sess *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char *in = mr_xmalloc(BODY_CHUNK), *tmp = mr_xmalloc(3 * BODY_CHUNK);
	ssize_t n = 0;

	while (s->state == L_BODY && evbuffer_get_length(out) < BODY_HIGH) {
		n = pread(s->datafd, in, BODY_CHUNK, s->off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		s->off += n;
		stuff(s, out, in, (size_t)n, tmp);
	}
	free(in);
	free(tmp);
	if (n == -1) {
		sess_end(s, "reading the queued message failed");
		return -1;
	}
	if (n == 0 && s->state == L_BODY) {
		if (s->cr)
			evbuffer_add(out, "\n", 1);
		else if (!s->bol)
			evbuffer_add(out, "\r\n", 2);
		evbuffer_add(out, ".\r\n", 3);
		s->state = L_DOT;
		bufferevent_setcb(s->bev, sess_read, NULL, sess_event, s);
	}
	return 0;
}

static void
sess_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)body_fill(arg);
}

static void
next_rcpt(struct lmtp_sess *s)
{
	if (s->ri < s->n) {
		sess_put(s, L_RCPT, "RCPT TO:<",
		    s->m->rcpts[s->idx[s->ri]].addr, ">");
		return;
	}
	if (s->nacc == 0) {
		sess_put(s, L_QUIT, "QUIT", NULL, NULL);
		return;
	}
	sess_put(s, L_DATA, "DATA", NULL, NULL);
}

/* A reply to MAIL or DATA that refuses: every recipient still without a
 * result gets it. */
static void
refuse_all(struct lmtp_sess *s)
{
	size_t j;

	for (j = 0; j < s->n; j++)
		if (!s->done[j])
			set_result(s, j, s->code, s->text);
	sess_put(s, L_QUIT, "QUIT", NULL, NULL);
}

/* The whole reply in s->code and s->text moves the session on; -1 ends
 * it with an error. */
static int
on_reply(struct lmtp_sess *s)
{
	int ok = s->code >= 200 && s->code < 300;

	switch (s->state) {
	case L_GREETING:
		if (!ok)
			return -1;
		sess_put(s, L_LHLO, "LHLO ", q->cfg->hostname, NULL);
		return 0;
	case L_LHLO:
		if (!ok)
			return -1;
		sess_put(s, L_MAIL, "MAIL FROM:<", s->m->sender, ">");
		return 0;
	case L_MAIL:
		if (!ok) {
			refuse_all(s);
			return 0;
		}
		next_rcpt(s);
		return 0;
	case L_RCPT:
		if (ok)
			s->acc[s->nacc++] = s->ri;
		else
			set_result(s, s->ri, s->code, s->text);
		s->ri++;
		next_rcpt(s);
		return 0;
	case L_DATA:
		if (s->code != 354) {
			refuse_all(s);
			return 0;
		}
		s->state = L_BODY;
		bufferevent_setcb(s->bev, sess_read, sess_write, sess_event, s);
		return body_fill(s) == -1 ? 1 : 0;
	case L_DOT:
		/* RFC 2033 4.2: one reply per accepted recipient */
		set_result(s, s->acc[s->di++], s->code, s->text);
		if (s->di == s->nacc)
			sess_put(s, L_QUIT, "QUIT", NULL, NULL);
		return 0;
	case L_QUIT:
		sess_end(s, NULL);
		return 1;
	default:
		return -1;	/* a reply nobody asked for */
	}
}

static void
sess_read(struct bufferevent *bev, void *arg)
{
	struct lmtp_sess *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char why[REPLY_TEXT_MAX + 64];
	size_t n;
	char *l;
	int r;

	while ((l = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		r = reply_line(s, l, n);
		free(l);
		if (r == 0)
			continue;
		if (r == 1 && (r = on_reply(s)) == 1)
			return;		/* ended: s is gone */
		if (r == -1) {
			snprintf(why, sizeof(why), "unexpected reply: %s",
			    s->text[0] ? s->text : "(not a reply)");
			sess_end(s, why);
			return;
		}
	}
	if (evbuffer_get_length(in) > MR_REPLY_LINE_MAX)
		sess_end(s, "reply line too long");
}

static void
sess_event(struct bufferevent *bev, short what, void *arg)
{
	struct lmtp_sess *s = arg;
	char why[256];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;		/* the greeting comes next */
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "timed out");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed");
	else
		snprintf(why, sizeof(why), "%s", strerror(errno ? errno :
		    ECONNRESET));
	if (s->state == L_QUIT && (what & BEV_EVENT_EOF)) {
		sess_end(s, NULL);
		return;
	}
	sess_end(s, why);
}

/* Session for the untried LMTP recipients that go where dest says. */
static struct lmtp_sess *
sess_new(struct qmsg *m, const char *dest)
{
	struct lmtp_sess *s = mr_xcalloc(1, sizeof(*s));
	const char *d;
	size_t i;

	s->m = m;
	s->dest = mr_xstrdup(dest);
	s->bol = 1;
	s->datafd = -1;
	s->state = L_GREETING;
	s->idx = mr_xcalloc(m->nrcpts, sizeof(size_t));
	s->acc = mr_xcalloc(m->nrcpts, sizeof(size_t));
	s->done = mr_xcalloc(m->nrcpts, 1);
	for (i = 0; i < m->nrcpts; i++)
		if ((d = lmtp_dest(m, i)) != NULL && strcmp(d, s->dest) == 0)
			s->idx[s->n++] = i;
	for (i = 0; i < s->n; i++)
		m->rcpts[s->idx[i]].tried = 1;
	return s;
}

/*
 * Starts a session for the pending LMTP recipients of m not yet tried in
 * this attempt that share the first one's destination.  1 when one runs
 * (sched_lmtp_done follows), 0 when there are none left.  A session that
 * cannot start leaves its recipients pending and tries the next.
 */
int
lmtp_start(struct qmsg *m, int datafd)
{
	struct timeval tv;
	struct lmtp_sess *s = NULL;
	const char *dest;
	char why[REPLY_TEXT_MAX];
	size_t i, j;

	for (i = 0; i < m->nrcpts; i++) {
		if ((dest = lmtp_dest(m, i)) == NULL)
			continue;
		s = sess_new(m, dest);
		if ((s->datafd = fcntl(datafd, F_DUPFD_CLOEXEC, 0)) != -1 &&
		    sess_connect(s) == 0)
			break;
		snprintf(why, sizeof(why), "451 4.4.1 LMTP %s: cannot connect: "
		    "%s", s->dest, strerror(errno));
		for (j = 0; j < s->n; j++)
			set_result(s, j, 451, why);
		sess_free(s);
		s = NULL;
	}
	if (s == NULL)
		return 0;
	act_get(m)->lmtp = s;
	tv.tv_sec = m->qs->srv->delivery.outbound.timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	return 1;
}
