/*
 * submit.c - mailroot-sendmail's door into the queue: queued accepts on
 * the submit-socket mailrootd made (MR_FD_SUBMIT), reads one request
 * and message per connection (common/submit.h), and answers only once
 * the message is durable -- committed by the same group commit as
 * smtpd's and Pickup's (queue_commit.c) -- or refused.
 *
 * Who: the peer's uid and gid come from the kernel (SO_PEERCRED), never
 * from the request.  submit-users (default: anyone) says who may submit;
 * root and the queue user always may.  Without -f the envelope sender
 * is the caller's login name at the first server's host name (as
 * Postfix does for local mail); -f naming any other address is refused
 * (EX_NOPERM), unless the caller is root, the queue user or listed in
 * submit-sender-users: a local user cannot send as another unless
 * allowed.  The message goes to the first virtual server in the file.
 *
 * Security: a connection is hostile bytes.  The request is bounded
 * (SUBMIT_HDR_MAX) and parsed by submit_req_parse into a typed struct
 * before anything is done; the message is bounded by the server's size
 * limit before it is read, and parsed by pickup_parse (the envelope is
 * never read from the message).  At most SUBMIT_CONNS connections at
 * once, each dropped after SUBMIT_IDLE seconds without progress.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "hdr_check.h"
#include "log.h"
#include "pickup_parse.h"
#include "proto.h"
#include "queued.h"
#include "submit.h"
#include "util.h"

#define SUBMIT_CONNS	64	/* connections at once */
#define SUBMIT_IDLE	60	/* seconds without a byte */

enum sstate { S_HDR, S_DATA, S_COMMIT };

struct sconn {
	int			 fd;
	struct event		*ev;
	enum sstate		 state;
	uid_t			 uid;
	gid_t			 gid;
	char			 user[64];	/* "" = not in /etc/passwd */
	struct mr_buf		 in;
	size_t			 hdrlen;	/* request's bytes, length incl. */
	struct submit_req	 req;
};

static struct {
	int		 fd;
	struct event	*ev;
	size_t		 nconns;
} sb = { -1, NULL, 0 };

static void
conn_free(struct sconn *c)
{
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->fd != -1)
		close(c->fd);
	submit_req_free(&c->req);
	mr_buf_free(&c->in);
	free(c);
	sb.nconns--;
}

/* Answers and ends the connection. */
static void
reply(struct sconn *c, uint32_t status, const char *text)
{
	struct mr_buf b, out;

	mr_buf_init(&b);
	mr_buf_init(&out);
	submit_reply_encode(status, text, &b);
	mr_buf_put_u32(&out, (uint32_t)b.len);
	mr_buf_add(&out, b.data, b.len);
	/* a few bytes into an empty socket buffer: one write */
	if (send(c->fd, out.data, out.len, MSG_NOSIGNAL) !=
	    (ssize_t)out.len)
		mr_warn("submit: uid %u left before the answer",
		    (unsigned)c->uid);
	mr_buf_free(&b);
	mr_buf_free(&out);
	conn_free(c);
}

/* The queue user, root, or one of list. */
static int
trusted(const struct sconn *c, char *const *list, size_t n)
{
	return c->uid == 0 || c->uid == geteuid() ||
	    pw_listed(c->user, c->gid, list, n);
}

/* Who may submit, and as whom: 0, or -1 after answering. */
static int
authorize(struct sconn *c, const char *fqdn)
{
	const struct mr_config *cf = q->cfg;
	char own[MR_PATH_MAX + 1], msg[512];

	if (cf->submit_users != NULL &&
	    !trusted(c, cf->submit_users, cf->nsubmit_users)) {
		snprintf(msg, sizeof(msg), "user %s (uid %u) may not submit "
		    "mail (submit-users)", c->user[0] ? c->user : "?",
		    (unsigned)c->uid);
		mr_warn("submit: %s", msg);
		reply(c, EX_NOPERM, msg);
		return -1;
	}
	snprintf(own, sizeof(own), "%s@%s", c->user, fqdn);
	if (!(c->req.flags & SUBMIT_F_SENDER) ||
	    (c->user[0] != '\0' && strcasecmp(c->req.sender, own) == 0) ||
	    trusted(c, cf->sender_users, cf->nsender_users))
		return 0;
	snprintf(msg, sizeof(msg), "user %s (uid %u) may not set the "
	    "envelope sender <%s> (submit-sender-users)",
	    c->user[0] ? c->user : "?", (unsigned)c->uid, c->req.sender);
	mr_warn("submit: %s", msg);
	reply(c, EX_NOPERM, msg);
	return -1;
}

static int
qualify_sender(struct sconn *c, const char *fqdn)
{
	char a[MR_PATH_MAX + 1];

	if (snprintf(a, sizeof(a), "%s@%s", c->req.sender, fqdn) >=
	    (int)sizeof(a)) {
		reply(c, EX_DATAERR, "sender address too long");
		return -1;
	}
	memcpy(c->req.sender, a, sizeof(a));
	return 0;
}

static uint64_t
max_file(const struct qserver *qs)
{
	uint64_t max = qs->srv->limits.message_size;

	/* dot-stuffing and CRLF may grow it; pickup_parse checks the rest */
	return max + max / 4 + 65536;
}

/* The request is complete in c->in: parse and check it; -1 if c was
 * answered and freed. */
static int
got_request(struct sconn *c)
{
	struct qserver *qs = &q->servers[0];
	const char *err;

	if (q->nservers == 0) {
		reply(c, EX_UNAVAILABLE, "no virtual server is configured");
		return -1;
	}
	if (submit_req_parse(c->in.data + 4, c->hdrlen - 4, &c->req,
	    &err) == -1) {
		mr_warn("submit: uid %u sent a bad request: %s",
		    (unsigned)c->uid, err);
		reply(c, EX_USAGE, err);
		return -1;
	}
	/* "-f www-data": qualified like a recipient */
	if (c->req.sender[0] != '\0' && strchr(c->req.sender, '@') == NULL &&
	    qualify_sender(c, qs->srv->fqdn) == -1)
		return -1;
	if (authorize(c, qs->srv->fqdn) == -1)
		return -1;
	if (c->req.size > max_file(qs)) {
		reply(c, EX_DATAERR, "message larger than the message size "
		    "limit");
		return -1;
	}
	c->state = S_DATA;
	return 0;
}

/* The recipients, a bare local part qualified with the host name. */
static char **
qualified(const struct submit_req *r, const char *fqdn)
{
	char **v = mr_xcalloc(r->nrcpts + 1, sizeof(char *));
	struct mr_buf b;
	size_t i;

	mr_buf_init(&b);
	for (i = 0; i < r->nrcpts; i++) {
		mr_buf_reset(&b);
		mr_buf_printf(&b, "%s%s%s", r->rcpts[i],
		    strchr(r->rcpts[i], '@') ? "" : "@",
		    strchr(r->rcpts[i], '@') ? "" : fqdn);
		v[i] = mr_xstrdup(b.data);
	}
	mr_buf_free(&b);
	return v;
}

static struct qmsg *
make_msg(struct qserver *qs, const char *id, struct pickup_msg *pm)
{
	struct qmsg *m;
	size_t i;

	m = msg_new(qs, id);
	m->sender = qstr_get(pm->sender);
	m->client = qstr_get("");
	m->helo = qstr_get("");
	m->rcpts = mr_xcalloc(pm->nrcpts, sizeof(struct qrcpt));
	for (i = 0; i < pm->nrcpts; i++)
		m->rcpts[i].addr = mr_xstrdup(pm->rcpts[i]);
	m->nrcpts = (uint32_t)pm->nrcpts;
	m->size = pm->data.len;
	m->body = pm->eightbit ? MR_BODY_8BITMIME : MR_BODY_7BIT;
	m->created = q_now();
	return m;
}

static void
committed(const struct qmsg *m, int failed, void *arg)
{
	struct sconn *c = arg;
	char text[128];

	if (failed) {
		reply(c, EX_TEMPFAIL, "the queue could not store the message");
		return;
	}
	mr_info("%s: from=<%s> size=%llu nrcpt=%zu origin=sendmail uid=%u",
	    m->id, m->sender, (unsigned long long)m->size, (size_t)m->nrcpts,
	    (unsigned)c->uid);
	snprintf(text, sizeof(text), "queued as %s", m->id);
	reply(c, EX_OK, text);
}

/* The server's header checks: 0 to queue m (maybe held), or -1 once
 * answered and m freed. */
static int
checked(struct sconn *c, struct qmsg *m, const struct pickup_msg *pm)
{
	char text[MR_HC_TEXT_MAX + 64], msg[MR_HC_TEXT_MAX + 128];
	int a = hdr_filter(m, pm->data.data, pm->data.len, text,
	    sizeof(text));

	if (a == MR_HC_NONE || a == MR_HC_HOLD) {
		m->hold = a == MR_HC_HOLD;
		return 0;
	}
	if (a == MR_HC_DISCARD)
		mr_info("%s: discarded by a header check: from=<%s> "
		    "nrcpt=%zu origin=sendmail", m->id, m->sender,
		    (size_t)m->nrcpts);
	snprintf(msg, sizeof(msg), "message refused: %s", text);
	reply(c, a == MR_HC_DISCARD ? EX_OK : a == MR_HC_REJECT ?
	    EX_DATAERR : EX_TEMPFAIL, a == MR_HC_DISCARD ? "accepted" :
	    a == MR_HC_REJECT ? msg : "header checks unavailable");
	msg_free(m);
	return -1;
}

/* Writes the parsed message to Queue/ID.eml and commits it; the answer
 * comes from committed(). */
static void
queue_it(struct sconn *c, struct qserver *qs, const char *id,
    struct pickup_msg *pm)
{
	char path[4096], err[512];
	struct qmsg *m;
	int fd;

	m = make_msg(qs, id, pm);
	if (alias_expand(m, err, sizeof(err)) == -1) {
		mr_err("%s: aliases: %s", id, err);
		msg_free(m);
		reply(c, EX_TEMPFAIL, "an aliases table cannot be read");
		return;
	}
	if (checked(c, m, pm) == -1)
		return;
	snprintf(path, sizeof(path), "%s/%s.eml", qs->queue, id);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0640);
	if (fd == -1 || mr_write_all(fd, pm->data.data, pm->data.len) == -1) {
		mr_err("%s: %s: %s", id, path, strerror(errno));
		if (fd != -1)
			close(fd);
		unlink(path);
		msg_free(m);
		reply(c, EX_TEMPFAIL, "the queue could not store the message");
		return;
	}
	c->state = S_COMMIT;
	event_del(c->ev);
	commit_local_cb(m, fd, committed, c);
}

/* The whole message is in c->in after the request. */
static void
got_message(struct sconn *c)
{
	struct qserver *qs = &q->servers[0];
	char id[MR_QID_LEN + 1], own[MR_PATH_MAX + 1], from[512], origin[128];
	struct pickup_opts o;
	struct pickup_msg pm;
	char **rcpts;
	size_t i, n;

	mr_queue_id(id);
	snprintf(own, sizeof(own), "%s@%s", c->user[0] ? c->user : "nobody",
	    qs->srv->fqdn);
	snprintf(from, sizeof(from), c->req.fullname[0] ? "\"%s\" <%s>" :
	    "%s%s", c->req.fullname, own);
	snprintf(origin, sizeof(origin), "local user %s (uid %u)",
	    c->user[0] ? c->user : "?", (unsigned)c->uid);
	rcpts = qualified(&c->req, qs->srv->fqdn);
	memset(&o, 0, sizeof(o));
	o.max_size = qs->srv->limits.message_size;
	o.add_headers = 1;	/* Date, Message-ID, From, as for local mail */
	o.qid = id;
	o.fqdn = qs->srv->fqdn;
	o.now = time(NULL);
	o.origin = origin;
	o.no_envelope = 1;
	o.sender = c->req.flags & SUBMIT_F_SENDER ? c->req.sender : own;
	o.rcpts = rcpts;
	o.nrcpts = c->req.nrcpts;
	o.hdr_rcpts = (c->req.flags & SUBMIT_F_HEADERS) != 0;
	o.from_field = from;
	n = c->req.nrcpts;	/* c is freed once answered */
	if (pickup_parse(c->in.data + c->hdrlen, (size_t)c->req.size, &o,
	    &pm) == -1)
		reply(c, EX_DATAERR, pm.err);
	else
		queue_it(c, qs, id, &pm);
	pickup_msg_free(&pm);
	for (i = 0; i < n; i++)
		free(rcpts[i]);
	free(rcpts);
}

/* What c->in holds decides the next step; -1 if c was answered and
 * freed. */
static int
advance(struct sconn *c)
{
	const unsigned char *p = (const unsigned char *)c->in.data;
	uint32_t len;

	if (c->state == S_HDR && c->hdrlen == 0 && c->in.len >= 4) {
		len = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		if (len > SUBMIT_HDR_MAX) {
			reply(c, EX_USAGE, "request too long");
			return -1;
		}
		c->hdrlen = 4 + (size_t)len;
	}
	if (c->state == S_HDR && c->hdrlen > 0 && c->in.len >= c->hdrlen &&
	    got_request(c) == -1)
		return -1;
	if (c->state != S_DATA ||
	    c->in.len < c->hdrlen + (size_t)c->req.size)
		return 0;
	if (c->in.len > c->hdrlen + (size_t)c->req.size) {
		reply(c, EX_USAGE, "more bytes than the request announced");
		return -1;
	}
	got_message(c);
	return -1;
}

static void
read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct sconn *c = arg;
	char buf[65536];
	size_t want = sizeof(buf);
	ssize_t n;

	if (ev & EV_TIMEOUT) {
		mr_warn("submit: uid %u idle for %d s; dropped",
		    (unsigned)c->uid, SUBMIT_IDLE);
		conn_free(c);
		return;
	}
	if (c->state == S_DATA &&
	    c->hdrlen + (size_t)c->req.size - c->in.len < want)
		want = c->hdrlen + (size_t)c->req.size - c->in.len;
	n = read(fd, buf, want);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mr_info("submit: uid %u left before the end of its message",
		    (unsigned)c->uid);
		conn_free(c);
		return;
	}
	mr_buf_add(&c->in, buf, (size_t)n);
	(void)advance(c);
}

static void
accept_cb(evutil_socket_t lfd, short ev, void *arg)
{
	struct timeval idle = { SUBMIT_IDLE, 0 };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct sconn *c;
	int fd;

	(void)ev;
	(void)arg;
	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) ==
	    -1) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			mr_err("submit: accept: %s", strerror(errno));
		return;
	}
	if (sb.nconns >= SUBMIT_CONNS || getsockopt(fd, SOL_SOCKET,
	    SO_PEERCRED, &cred, &len) == -1 || q->stopping) {
		mr_warn("submit: connection refused (%s)", sb.nconns >=
		    SUBMIT_CONNS ? "too many at once" : q->stopping ?
		    "stopping" : strerror(errno));
		close(fd);
		return;
	}
	c = mr_xcalloc(1, sizeof(*c));
	sb.nconns++;
	c->fd = fd;
	c->uid = cred.uid;
	c->gid = cred.gid;
	if (pw_name_of(c->uid, c->user, sizeof(c->user)) == -1)
		c->user[0] = '\0';
	mr_buf_init(&c->in);
	c->ev = event_new(q->base, fd, EV_READ | EV_PERSIST, read_cb, c);
	event_add(c->ev, &idle);
}

/* The listener mailrootd made, if it made one. */
void
submit_init(void)
{
	int on = 0;
	socklen_t len = sizeof(on);

	if (getsockopt(MR_FD_SUBMIT, SOL_SOCKET, SO_ACCEPTCONN, &on,
	    &len) == -1 || !on) {
		close(MR_FD_SUBMIT);
		mr_info("submit: no submit-socket; mailroot-sendmail cannot "
		    "submit");
		return;
	}
	sb.fd = MR_FD_SUBMIT;
	sb.ev = event_new(q->base, sb.fd, EV_READ | EV_PERSIST, accept_cb,
	    NULL);
	event_add(sb.ev, NULL);
}

/* Stops accepting; a connection whose commit is under way is answered
 * by the commit (queued waits for it). */
void
submit_shutdown(void)
{
	if (sb.ev != NULL) {
		event_free(sb.ev);
		sb.ev = NULL;
	}
}
