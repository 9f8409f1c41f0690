/*
 * ipc.c - SOCK_SEQPACKET framing with fd passing on a libevent loop.
 *
 * Security: frames from another mailroot process are untrusted input.
 * mr_ipc_decode checks the header against the datagram; anything odd
 * (short, long, truncated, unknown type, extra fds) drops the peer.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"

struct frame {
	struct frame	*next;
	int		 fd;
	size_t		 len;
	unsigned char	 data[];
};

struct mr_ipc {
	int		 fd;
	char		*peer;
	uint32_t	 max_type;
	mr_ipc_cb	 cb;
	void		*arg;
	struct event	*rev, *wev;
	struct frame	*head, **tail;
	int		 dead;
	int		 bad;		/* died of a malformed frame */
	int		 reset;		/* ECONNRESET seen: read on to the end */
	int		*freed;		/* set when freed inside a callback */
	unsigned char	*rbuf;
};

static void	ipc_read(evutil_socket_t, short, void *);
static void	ipc_write(evutil_socket_t, short, void *);

/*
 * A Unix datagram longer than the sender's SO_SNDBUF fails with EMSGSIZE,
 * and Linux's default (about 208 KB) is smaller than the largest frame:
 * raise it on both ends so that every legal frame can be sent.
 */
int
mr_ipc_is_channel(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_SEQPACKET;
}

int
mr_ipc_pair(int sv[2])
{
	int sz = 2 * (MR_IPC_HDR + MR_IPC_MAX);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) == -1 ||
	    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) == -1) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	return 0;
}

int
mr_ipc_decode(const unsigned char *buf, size_t n, int truncated, int nfds,
    uint32_t max_type, struct mr_ipc_msg *out, const char **err)
{
	struct mr_rd rd;

	out->fd = -1;
	if (truncated) {
		*err = "frame truncated (oversized or too many fds)";
		return -1;
	}
	if (n < MR_IPC_HDR) {
		*err = "frame shorter than its header";
		return -1;
	}
	mr_rd_init(&rd, buf, MR_IPC_HDR);
	out->type = mr_rd_u32(&rd);
	out->len = mr_rd_u32(&rd);
	if (out->type == 0 || out->type > max_type) {
		*err = "unknown frame type";
		return -1;
	}
	if (out->len > MR_IPC_MAX) {
		*err = "frame payload too large";
		return -1;
	}
	if ((size_t)out->len != n - MR_IPC_HDR) {
		*err = "frame length does not match its header";
		return -1;
	}
	if (nfds > 1) {
		*err = "frame carries more than one descriptor";
		return -1;
	}
	out->data = buf + MR_IPC_HDR;
	return 0;
}

/* One recvmsg: returns bytes, 0 on EOF, -1 on error (errno); fd out. */
static ssize_t
ipc_recvmsg(int sock, unsigned char *buf, size_t cap, int *fdp, int *nfds,
    int *truncated)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *c;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = cap;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	*fdp = -1;
	*nfds = 0;
	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	*truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		size_t i, k;
		int fds[4];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (k > 4)
			k = 4;
		memcpy(fds, CMSG_DATA(c), k * sizeof(int));
		for (i = 0; i < k; i++) {
			if (*fdp == -1)
				*fdp = fds[i];
			else
				close(fds[i]);
			(*nfds)++;
		}
	}
	if (n == 0 && *fdp != -1) {
		/* an empty datagram reads as end of channel: drop its fd */
		close(*fdp);
		*fdp = -1;
	}
	return n;
}

static int
ipc_sendmsg(int sock, int fd, const void *data, size_t len)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr msg;
	struct iovec iov;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)data;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

static struct frame *
frame_new(uint32_t type, int fd, const void *data, size_t len)
{
	struct frame *f;
	struct mr_buf hdr;

	if (len > MR_IPC_MAX)
		mr_panic("ipc: frame of %zu bytes exceeds the maximum", len);
	f = mr_xmalloc(sizeof(*f) + MR_IPC_HDR + len);
	f->next = NULL;
	f->fd = fd;
	f->len = MR_IPC_HDR + len;
	mr_buf_init(&hdr);
	mr_buf_put_u32(&hdr, type);
	mr_buf_put_u32(&hdr, (uint32_t)len);
	memcpy(f->data, hdr.data, MR_IPC_HDR);
	mr_buf_free(&hdr);
	if (len)
		memcpy(f->data + MR_IPC_HDR, data, len);
	return f;
}

int
mr_ipc_send_fd(int sock, uint32_t type, int fd, const void *data, size_t len)
{
	struct frame *f = frame_new(type, fd, data, len);
	int rc;

	do
		rc = ipc_sendmsg(sock, fd, f->data, f->len);
	while (rc == -1 && errno == EINTR);
	free(f);
	return rc;
}

int
mr_ipc_recv_fd(int sock, uint32_t max_type, struct mr_ipc_msg *out,
    unsigned char *data, int timeout_ms)
{
	unsigned char *buf = mr_xmalloc(MR_IPC_HDR + MR_IPC_MAX + 1);
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	const char *err;
	int fd, nfds, trunc = 0, rc;
	ssize_t n;

	for (;;) {
		rc = poll(&pfd, 1, timeout_ms);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc <= 0) {
			free(buf);
			return -1;
		}
		n = ipc_recvmsg(sock, buf, MR_IPC_HDR + MR_IPC_MAX + 1, &fd,
		    &nfds, &trunc);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		break;
	}
	if (n <= 0) {
		free(buf);
		return n == 0 ? 0 : -1;
	}
	if (mr_ipc_decode(buf, (size_t)n, trunc, nfds, max_type, out,
	    &err) == -1) {
		mr_warn("ipc: %s", err);
		if (fd >= 0)
			close(fd);
		free(buf);
		return -1;
	}
	memcpy(data, out->data, out->len);
	out->data = data;
	out->fd = fd;
	free(buf);
	return 1;
}

struct mr_ipc *
mr_ipc_new(struct event_base *base, int fd, const char *peer,
    uint32_t max_type, mr_ipc_cb cb, void *arg)
{
	struct mr_ipc *c = mr_xcalloc(1, sizeof(*c));
	int fl;

	fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		mr_warn("ipc %s: cannot set non-blocking: %s", peer,
		    strerror(errno));
	c->fd = fd;
	c->peer = mr_xstrdup(peer);
	c->max_type = max_type;
	c->cb = cb;
	c->arg = arg;
	c->tail = &c->head;
	c->rbuf = mr_xmalloc(MR_IPC_HDR + MR_IPC_MAX + 1);
	c->rev = event_new(base, fd, EV_READ | EV_PERSIST, ipc_read, c);
	c->wev = event_new(base, fd, EV_WRITE, ipc_write, c);
	if (c->rev == NULL || c->wev == NULL)
		mr_panic("ipc: event_new failed");
	event_add(c->rev, NULL);
	return c;
}

int
mr_ipc_was_bad(const struct mr_ipc *c)
{
	return c->bad;
}

const char *
mr_ipc_peer(const struct mr_ipc *c)
{
	return c->peer;
}

void
mr_ipc_free(struct mr_ipc *c)
{
	struct frame *f, *next;

	if (c == NULL)
		return;
	if (c->freed)
		*c->freed = 1;
	event_free(c->rev);
	event_free(c->wev);
	for (f = c->head; f != NULL; f = next) {
		next = f->next;
		if (f->fd >= 0)
			close(f->fd);
		free(f);
	}
	close(c->fd);
	free(c->rbuf);
	free(c->peer);
	free(c);
}

/* Reports the channel's death to its owner once. */
static void
ipc_fail(struct mr_ipc *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	event_del(c->rev);
	event_del(c->wev);
	c->cb(c, NULL, c->arg);
}

static void
ipc_read(evutil_socket_t fd, short ev, void *arg)
{
	struct mr_ipc *c = arg;
	struct mr_ipc_msg msg;
	const char *err;
	int rfd, nfds, trunc, freed = 0, i;
	ssize_t n;

	(void)ev;
	/* bounded: at most 64 frames per wake-up keeps the loop fair */
	for (i = 0; i < 64 && !c->dead; i++) {
		trunc = 0;
		n = ipc_recvmsg(fd, c->rbuf, MR_IPC_HDR + MR_IPC_MAX + 1,
		    &rfd, &nfds, &trunc);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		/* a peer that exits with frames unread resets the channel:
		 * the error is reported once, before the frames it sent
		 * (deliverd's last results), which are read on to the end */
		if (n == -1 && errno == ECONNRESET && !c->reset) {
			c->reset = 1;
			continue;
		}
		if (n == -1) {
			if (errno != ECONNRESET)
				mr_warn("ipc %s: receive: %s", c->peer,
				    strerror(errno));
			ipc_fail(c);
			return;
		}
		if (n == 0) {
			ipc_fail(c);
			return;
		}
		if (mr_ipc_decode(c->rbuf, (size_t)n, trunc, nfds,
		    c->max_type, &msg, &err) == -1) {
			mr_warn("ipc %s: dropping peer: %s", c->peer, err);
			if (rfd >= 0)
				close(rfd);
			c->bad = 1;
			ipc_fail(c);
			return;
		}
		msg.fd = rfd;
		c->freed = &freed;
		c->cb(c, &msg, c->arg);
		if (freed)
			return;
		c->freed = NULL;
	}
}

/* Sends the frames waiting, in order: 0 once none is left, -1 (errno)
 * at the first that cannot go. */
static int
ipc_send_waiting(struct mr_ipc *c)
{
	struct frame *f;

	while ((f = c->head) != NULL) {
		if (ipc_sendmsg(c->fd, f->fd, f->data, f->len) == -1)
			return -1;
		c->head = f->next;
		if (c->head == NULL)
			c->tail = &c->head;
		if (f->fd >= 0)
			close(f->fd);
		free(f);
	}
	return 0;
}

static int
ipc_full(int err)
{
	return err == EAGAIN || err == ENOBUFS || err == EINTR;
}

static void
ipc_flush(struct mr_ipc *c)
{
	if (ipc_send_waiting(c) == 0)
		return;
	if (ipc_full(errno)) {
		event_add(c->wev, NULL);
		return;
	}
	mr_warn("ipc %s: send: %s", c->peer, strerror(errno));
	ipc_fail(c);
}

static uint64_t
ipc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes the frames waiting, waiting up to timeout_ms for room: 0 once
 * none is left, -1 if the channel failed or the time ran out (the owner
 * is not called back: the process is about to exit, and its loop no
 * longer runs). */
int
mr_ipc_drain(struct mr_ipc *c, int timeout_ms)
{
	uint64_t end = ipc_now_ms() + (uint64_t)timeout_ms, now;
	struct pollfd p;

	for (;;) {
		if (c->dead)
			return -1;
		if (ipc_send_waiting(c) == 0)
			return 0;
		if (!ipc_full(errno) || (now = ipc_now_ms()) >= end)
			return -1;
		p.fd = c->fd;
		p.events = POLLOUT;
		p.revents = 0;
		if (poll(&p, 1, (int)(end - now)) == -1 && errno != EINTR)
			return -1;
	}
}

static void
ipc_write(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	ipc_flush(arg);
}

int
mr_ipc_send(struct mr_ipc *c, uint32_t type, int fd, const void *data,
    size_t len)
{
	struct frame *f;
	int dupfd = -1;

	if (c->dead)
		return -1;
	if (fd >= 0 && (dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		mr_warn("ipc %s: dup: %s", c->peer, strerror(errno));
		return -1;
	}
	f = frame_new(type, dupfd, data, len);
	*c->tail = f;
	c->tail = &f->next;
	/*
	 * Written from the loop: a failure is then reported to the owner
	 * from a callback, never from inside its own send call.  The write
	 * callback is made active, not added for EPOLLOUT: it runs in this
	 * pass of the loop after the callbacks already due (so the frames
	 * they queue go together), and the epoll set is changed only when
	 * the socket is full (ipc_flush adds the event then).  Adding it
	 * each time cost two epoll_ctl calls per pass that sent anything.
	 */
	if (!event_pending(c->wev, EV_WRITE, NULL))
		event_active(c->wev, EV_WRITE, 0);
	return 0;
}

static int ipc_stopping;

void
mr_ipc_stopping(void)
{
	ipc_stopping = 1;
}

int
mr_ipc_is_stopping(void)
{
	return ipc_stopping;
}

void
mr_ipc_peer_gone(struct mr_ipc *c, struct mr_ipc_msg *msg,
    struct mr_ipc *master, uint32_t kind)
{
	if (msg != NULL) {
		mr_warn("%s sent an unexpected message (type %u); dropping "
		    "the channel", c->peer, msg->type);
		if (msg->fd >= 0) {
			close(msg->fd);
			msg->fd = -1;
		}
		mr_ipc_report_bad(master, kind);
	} else {
		/* a clean close is information: mailrootd, which sees the
		 * peer end, logs how it ended (and a crash as a warning);
		 * the order in which the stop and the close arrive on two
		 * channels is not fixed, so the stop is only noted */
		if (c->bad)
			mr_warn("lost the channel to %s", c->peer);
		else
			mr_info("%s closed its channel%s", c->peer,
			    ipc_stopping ? ": stopping" : "");
		if (c->bad)
			mr_ipc_report_bad(master, kind);
	}
	mr_ipc_free(c);
}

uint32_t
mr_ipc_peer_kind(const struct mr_ipc_msg *msg)
{
	const char *err;
	uint32_t kind;

	if (msg->fd < 0 || mr_msg_peer(msg->data, msg->len, &kind, &err) == -1)
		return 0;
	return kind;
}

void
mr_ipc_report_bad(struct mr_ipc *m, uint32_t kind)
{
	struct mr_buf b;

	if (m == NULL)
		return;
	mr_buf_init(&b);
	mr_buf_put_u32(&b, kind);
	mr_ipc_sendb(m, MR_M_PEER_BAD, -1, &b);
	mr_buf_free(&b);
}

int
mr_ipc_sendb(struct mr_ipc *c, uint32_t type, int fd,
    const struct mr_buf *payload)
{
	return mr_ipc_send(c, type, fd, payload->data, payload->len);
}
