/*
 * control.c - queued's end of the control socket (mailrootctl(8)).
 *
 * mailrootd binds the socket as root (master/control_sock.c: mode 0660,
 * group control-group) and hands queued the listening descriptor at
 * MR_FD_CONTROL; queued accepts, reads one request, answers and closes.
 *
 * Security: the socket's mode lets only root and control-group connect;
 * each connection is checked again here with SO_PEERCRED against root,
 * queued's own user and the group (its members resolved at start, before
 * the sandbox).  Every verb, read-only or not, needs that right: "show
 * --body" reveals mail.  A request is at most MR_CTL_MAX bytes, read
 * within CTL_TIMEOUT seconds, and parsed whole by mr_ctl_parse before
 * anything is done; a malformed one gets "error" and the connection
 * closes.  At most CTL_CONNS connections at once.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "buf.h"
#include "control.h"
#include "ctl_proto.h"
#include "log.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

#define ANSWER_WRITE	(1024 * 1024)	/* bytes per write of an answer */

#define CTL_TIMEOUT	30	/* seconds to send a request */
#define CTL_CONNS	16
#define CTL_UIDS_MAX	256	/* members of control-group remembered */

static struct {
	struct event	*ev;
	unsigned	 conns;
	int		 have_group;
	gid_t		 gid;
	uid_t		 uids[CTL_UIDS_MAX];
	size_t		 nuids;
} ctl;

struct conn {
	struct bufferevent	*bev;
	uid_t			 uid;
	int			 answered;
};

void
control_init(void)
{
	const char *name = q->cfg->control_group;
	struct group *gr;
	struct passwd *pw;
	size_t i;

	if (name == NULL)
		return;
	/* at start, before queued's threads: getgrnam is safe here */
	// cppcheck-suppress getgrnamCalled
	if ((gr = getgrnam(name)) == NULL) {
		mr_warn("control-group \"%s\" does not exist: only root may "
		    "use the control socket", name);
		return;
	}
	ctl.have_group = 1;
	ctl.gid = gr->gr_gid;
	for (i = 0; gr->gr_mem[i] != NULL && ctl.nuids < CTL_UIDS_MAX; i++)
		// cppcheck-suppress getpwnamCalled
		if ((pw = getpwnam(gr->gr_mem[i])) != NULL)
			ctl.uids[ctl.nuids++] = pw->pw_uid;
}

static int
allowed(const struct ucred *cr)
{
	size_t i;

	if (cr->uid == 0 || cr->uid == getuid())
		return 1;
	if (!ctl.have_group)
		return 0;
	if (cr->gid == ctl.gid)
		return 1;
	for (i = 0; i < ctl.nuids; i++)
		if (ctl.uids[i] == cr->uid)
			return 1;
	return 0;
}

static void
conn_free(struct conn *c)
{
	bufferevent_free(c->bev);
	free(c);
	ctl.conns--;
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->answered &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(c);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_free(arg);
}

/* The evbuffer is done with an answer's memory (arg: the same, not
 * const). */
static void
answer_sent(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	free(arg);
}

/* Sends the answer; the connection closes once it is written.  With
 * take, out's memory goes to the output as it is, not copied (a queue
 * listing can be tens of megabytes), and out is left empty. */
static void
answer(struct conn *c, const char *err, const struct mr_buf *out,
    struct mr_buf *take)
{
	struct evbuffer *o = bufferevent_get_output(c->bev);

	if (err != NULL)
		evbuffer_add_printf(o, "error %s\n", err);
	else {
		evbuffer_add(o, "ok\n", 3);
		if (out != NULL && out->len > 0)
			evbuffer_add(o, out->data, out->len);
		if (take != NULL && take->len > 0 &&
		    evbuffer_add_reference(o, take->data, take->len,
		    answer_sent, take->data) == 0)
			mr_buf_init(take);	/* the evbuffer frees it */
		else if (take != NULL && take->len > 0)
			evbuffer_add(o, take->data, take->len);
	}
	c->answered = 1;
	/* a long answer in large writes, not libevent's 16 KiB ones */
	(void)bufferevent_set_max_single_write(c->bev, ANSWER_WRITE);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_setcb(c->bev, NULL, write_cb, event_cb, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

void
control_answer(struct conn *c, const char *err, const struct mr_buf *out)
{
	answer(c, err, out, NULL);
}

void
control_answer_take(struct conn *c, struct mr_buf *out)
{
	answer(c, NULL, NULL, out);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	unsigned char hdr[4], *body;
	struct mr_ctl_req req;
	const char *err;
	uint32_t len;

	if (c->answered || evbuffer_copyout(in, hdr, 4) < 4)
		return;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	if (len == 0 || len > MR_CTL_MAX) {
		mr_warn("control: uid %ld sent a request of %lu bytes",
		    (long)c->uid, (unsigned long)len);
		control_answer(c, "request too long", NULL);
		return;
	}
	if (evbuffer_get_length(in) < 4 + (size_t)len)
		return;
	body = evbuffer_pullup(in, 4 + (ssize_t)len) + 4;
	if (mr_ctl_parse(body, len, &req, &err) == -1) {
		mr_warn("control: uid %ld: %s", (long)c->uid, err);
		control_answer(c, err, NULL);
		return;
	}
	control_do(c, c->uid, &req);
}

static void
accept_one(int fd)
{
	struct timeval tv = { CTL_TIMEOUT, 0 };
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	struct conn *c;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == -1 ||
	    crlen != sizeof(cr)) {
		mr_err("control: SO_PEERCRED: %s", strerror(errno));
		close(fd);
		return;
	}
	if (!allowed(&cr) || ctl.conns >= CTL_CONNS) {
		mr_warn("control: uid %ld (pid %ld) refused: %s",
		    (long)cr.uid, (long)cr.pid, ctl.conns >= CTL_CONNS ?
		    "too many connections" : "not root nor in control-group");
		(void)write(fd, "error permission denied\n", 24);
		close(fd);
		return;
	}
	c = mr_xcalloc(1, sizeof(*c));
	c->uid = cr.uid;
	c->bev = bufferevent_socket_new(q->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	ctl.conns++;
	bufferevent_setwatermark(c->bev, EV_READ, 0, 4 + MR_CTL_MAX);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_enable(c->bev, EV_READ);
}

static void
listen_cb(evutil_socket_t lfd, short ev, void *arg)
{
	int fd;

	(void)ev;
	(void)arg;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			mr_err("control: accept: %s", strerror(errno));
		return;
	}
	accept_one(fd);
}

void
control_start(void)
{
	int on = 0;
	socklen_t len = sizeof(on);

	if (getsockopt(MR_FD_CONTROL, SOL_SOCKET, SO_ACCEPTCONN, &on,
	    &len) == -1 || !on)
		return;		/* no control-socket configured */
	if (mr_set_nonblock(MR_FD_CONTROL) == -1 ||
	    mr_set_cloexec(MR_FD_CONTROL, 1) == -1)
		mr_fatal("control socket: %s", strerror(errno));
	ctl.ev = event_new(q->base, MR_FD_CONTROL, EV_READ | EV_PERSIST,
	    listen_cb, NULL);
	if (ctl.ev == NULL || event_add(ctl.ev, NULL) == -1)
		mr_fatal("control socket: cannot watch it");
	mr_info("control socket ready");
}
