/*
 * test_ipc.c - unit tests for the payload buffers (buf.c) and the framed
 * IPC channel (ipc.c).
 *
 * The decoder is tested as a pure function on hand-made frames; the
 * socket paths on real SOCK_SEQPACKET pairs, with raw send()/sendmsg()
 * standing in for a misbehaving peer; the channel on a libevent loop.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "buf.h"
#include "ipc.h"

#define MAXTYPE	10

/* ---- helpers ---- */

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* A frame as the wire carries it: header then payload. */
static void
frame(struct mr_buf *b, uint32_t type, uint32_t hdrlen, const void *p,
    size_t n)
{
	mr_buf_init(b);
	mr_buf_put_u32(b, type);
	mr_buf_put_u32(b, hdrlen);
	mr_buf_add(b, p, n);
}

/* sendmsg with any number of fds, as a hostile peer would. */
static ssize_t
raw_send(int sock, const void *p, size_t n, const int *fds, size_t nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *c;

	memset(&msg, 0, sizeof(msg));
	memset(cbuf, 0, sizeof(cbuf));
	iov.iov_base = (void *)p;
	iov.iov_len = n;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		msg.msg_control = cbuf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

static int
pair(int sv[2])
{
	assert_int_equal(mr_ipc_pair(sv), 0);
	return 0;
}

static void
close_pair(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

/* ---- buf.c ---- */

static void
t_buf_grow(void **state)
{
	struct mr_buf b;
	size_t i;

	(void)state;
	mr_buf_init(&b);
	for (i = 0; i < 1000; i++)
		mr_buf_adds(&b, "abc");
	assert_int_equal(b.len, 3000);
	assert_int_equal(strlen(b.data), 3000);
	mr_buf_printf(&b, "%d-%s", 42, "x");
	assert_int_equal(b.len, 3004);
	assert_string_equal(b.data + 3000, "42-x");
	mr_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	mr_buf_free(&b);
	assert_null(b.data);
	mr_buf_printf(&b, "%s", "");
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	mr_buf_free(&b);
}

static void
t_buf_roundtrip(void **state)
{
	struct mr_buf b;
	struct mr_rd r;
	size_t n;

	(void)state;
	mr_buf_init(&b);
	mr_buf_put_u32(&b, 0);
	mr_buf_put_u32(&b, 0xdeadbeef);
	mr_buf_put_u64(&b, UINT64_C(0x0123456789abcdef));
	mr_buf_put_str(&b, "hello");
	mr_buf_put_str(&b, NULL);
	mr_buf_put_strn(&b, "abcdef", 3);
	mr_buf_put_u64(&b, UINT64_MAX);
	/* little-endian on the wire */
	assert_memory_equal(b.data + 4, "\xef\xbe\xad\xde", 4);

	mr_rd_init(&r, b.data, b.len);
	assert_int_equal(mr_rd_u32(&r), 0);
	assert_int_equal(mr_rd_u32(&r), 0xdeadbeef);
	assert_true(mr_rd_u64(&r) == UINT64_C(0x0123456789abcdef));
	assert_string_equal(mr_rd_str(&r, 64, &n), "hello");
	assert_int_equal(n, 5);
	assert_string_equal(mr_rd_str(&r, 64, &n), "");
	assert_int_equal(n, 0);
	assert_string_equal(mr_rd_str(&r, 64, NULL), "abc");
	assert_false(mr_rd_done(&r));
	assert_true(mr_rd_u64(&r) == UINT64_MAX);
	assert_true(mr_rd_done(&r));
	assert_int_equal(r.err, 0);
	mr_buf_free(&b);
}

static void
t_rd_short_ints(void **state)
{
	const unsigned char p[7] = { 1, 0, 0, 0, 2, 0, 0 };
	struct mr_rd r;

	(void)state;
	mr_rd_init(&r, p, 3);
	assert_int_equal(mr_rd_u32(&r), 0);
	assert_int_equal(r.err, 1);

	mr_rd_init(&r, p, sizeof(p));
	assert_true(mr_rd_u64(&r) == 0);
	assert_int_equal(r.err, 1);
	assert_false(mr_rd_done(&r));

	mr_rd_init(&r, p, 0);
	assert_true(mr_rd_done(&r));
	assert_int_equal(mr_rd_u32(&r), 0);
	assert_false(mr_rd_done(&r));
}

/* Runs mr_rd_str on raw bytes and expects a rejection. */
static void
rd_str_rejects(const void *p, size_t n, size_t maxlen)
{
	struct mr_rd r;
	size_t len = 12345;

	mr_rd_init(&r, p, n);
	assert_null(mr_rd_str(&r, maxlen, &len));
	assert_int_equal(r.err, 1);
	assert_int_equal(len, 12345);
	assert_false(mr_rd_done(&r));
}

static void
t_rd_str_beyond_end(void **state)
{
	(void)state;
	rd_str_rejects("\x05\0\0\0abc", 7, 64);	/* 5 claimed, 3 left */
	rd_str_rejects("\x03\0\0\0abc", 7, 64);	/* no room for NUL */
	rd_str_rejects("\xff\xff\xff\xff" "abc", 7, SIZE_MAX);
	rd_str_rejects("\x01\0", 2, 64);		/* short length */
}

static void
t_rd_str_no_nul(void **state)
{
	(void)state;
	rd_str_rejects("\x03\0\0\0abcd", 8, 64);
	rd_str_rejects("\x00\0\0\0x", 5, 64);
}

static void
t_rd_str_embedded_nul(void **state)
{
	(void)state;
	rd_str_rejects("\x03\0\0\0a\0c\0", 8, 64);
	rd_str_rejects("\x03\0\0\0\0bc\0", 8, 64);
}

static void
t_rd_str_maxlen(void **state)
{
	struct mr_rd r;
	size_t n;

	(void)state;
	rd_str_rejects("\x04\0\0\0abcd\0", 9, 3);
	mr_rd_init(&r, "\x04\0\0\0abcd\0", 9);
	assert_string_equal(mr_rd_str(&r, 4, &n), "abcd");
	assert_int_equal(n, 4);
	assert_true(mr_rd_done(&r));
}

static void
t_rd_sticky_error(void **state)
{
	struct mr_buf b;
	struct mr_rd r;

	(void)state;
	mr_buf_init(&b);
	mr_buf_put_u32(&b, 99);			/* bogus string length */
	mr_buf_put_u32(&b, 7);
	mr_buf_put_u64(&b, 8);
	mr_buf_put_str(&b, "fine");
	mr_rd_init(&r, b.data, b.len);
	assert_null(mr_rd_str(&r, 1000, NULL));
	/* every later read fails, though the bytes would decode */
	assert_int_equal(mr_rd_u32(&r), 0);
	assert_true(mr_rd_u64(&r) == 0);
	assert_null(mr_rd_str(&r, 1000, NULL));
	assert_int_equal(r.err, 1);
	assert_false(mr_rd_done(&r));
	mr_buf_free(&b);
}

/* ---- mr_ipc_decode ---- */

static int
decode(const struct mr_buf *b, int trunc, int nfds, struct mr_ipc_msg *m,
    const char **err)
{
	*err = NULL;
	return mr_ipc_decode((const unsigned char *)b->data, b->len, trunc,
	    nfds, MAXTYPE, m, err);
}

static void
t_decode_good(void **state)
{
	struct mr_ipc_msg m;
	struct mr_buf b, p;
	struct mr_rd r;
	const char *err;

	(void)state;
	mr_buf_init(&p);
	mr_buf_put_str(&p, "user@example.com");
	mr_buf_put_u64(&p, 42);
	frame(&b, 3, (uint32_t)p.len, p.data, p.len);
	assert_int_equal(decode(&b, 0, 1, &m, &err), 0);
	assert_int_equal(m.type, 3);
	assert_int_equal(m.len, p.len);
	assert_int_equal(m.fd, -1);	/* the caller attaches it */
	mr_rd_init(&r, m.data, m.len);
	assert_string_equal(mr_rd_str(&r, 256, NULL), "user@example.com");
	assert_true(mr_rd_u64(&r) == 42);
	assert_true(mr_rd_done(&r));
	mr_buf_free(&b);

	frame(&b, MAXTYPE, 0, NULL, 0);		/* empty, highest type */
	assert_int_equal(decode(&b, 0, 0, &m, &err), 0);
	assert_int_equal(m.len, 0);
	mr_buf_free(&b);
	mr_buf_free(&p);
}

static void
t_decode_truncated(void **state)
{
	struct mr_ipc_msg m;
	struct mr_buf b;
	const char *err;

	(void)state;
	frame(&b, 1, 3, "abc", 3);
	assert_int_equal(decode(&b, 1, 0, &m, &err), -1);
	assert_non_null(err);
	mr_buf_free(&b);
}

static void
t_decode_short_header(void **state)
{
	const unsigned char hdr[MR_IPC_HDR] = { 1, 0, 0, 0, 0, 0, 0, 0 };
	struct mr_ipc_msg m;
	const char *err;
	size_t n;

	(void)state;
	for (n = 0; n < MR_IPC_HDR; n++) {
		err = NULL;
		assert_int_equal(mr_ipc_decode(hdr, n, 0, 0, MAXTYPE, &m,
		    &err), -1);
		assert_non_null(err);
	}
	assert_int_equal(mr_ipc_decode(hdr, MR_IPC_HDR, 0, 0, MAXTYPE, &m,
	    &err), 0);
}

static void
t_decode_len_mismatch(void **state)
{
	struct mr_ipc_msg m;
	struct mr_buf b;
	const char *err;

	(void)state;
	frame(&b, 1, 4, "abc", 3);		/* header claims more */
	assert_int_equal(decode(&b, 0, 0, &m, &err), -1);
	assert_non_null(err);
	mr_buf_free(&b);
	frame(&b, 1, 2, "abc", 3);		/* header claims less */
	assert_int_equal(decode(&b, 0, 0, &m, &err), -1);
	mr_buf_free(&b);
	frame(&b, 1, UINT32_MAX, "abc", 3);
	assert_int_equal(decode(&b, 0, 0, &m, &err), -1);
	mr_buf_free(&b);
}

static void
t_decode_bad_type(void **state)
{
	struct mr_ipc_msg m;
	struct mr_buf b;
	const char *err;

	(void)state;
	frame(&b, 0, 0, NULL, 0);
	assert_int_equal(decode(&b, 0, 0, &m, &err), -1);
	mr_buf_free(&b);
	frame(&b, MAXTYPE + 1, 0, NULL, 0);
	assert_int_equal(decode(&b, 0, 0, &m, &err), -1);
	mr_buf_free(&b);
	frame(&b, UINT32_MAX, 0, NULL, 0);
	assert_int_equal(decode(&b, 0, 0, &m, &err), -1);
	mr_buf_free(&b);
}

static void
t_decode_too_large(void **state)
{
	unsigned char *p = calloc(1, MR_IPC_MAX + 1);
	struct mr_ipc_msg m;
	struct mr_buf b;
	const char *err;

	(void)state;
	assert_non_null(p);
	frame(&b, 1, MR_IPC_MAX + 1, p, MR_IPC_MAX + 1);
	assert_int_equal(decode(&b, 0, 0, &m, &err), -1);
	mr_buf_free(&b);
	frame(&b, 1, MR_IPC_MAX, p, MR_IPC_MAX);
	assert_int_equal(decode(&b, 0, 0, &m, &err), 0);
	mr_buf_free(&b);
	free(p);
}

static void
t_decode_fds(void **state)
{
	struct mr_ipc_msg m;
	struct mr_buf b;
	const char *err;

	(void)state;
	frame(&b, 1, 0, NULL, 0);
	assert_int_equal(decode(&b, 0, 1, &m, &err), 0);
	assert_int_equal(decode(&b, 0, 2, &m, &err), -1);
	assert_non_null(err);
	assert_int_equal(decode(&b, 0, 4, &m, &err), -1);
	mr_buf_free(&b);
}

/* ---- blocking send/receive ---- */

static void
t_pair(void **state)
{
	int sv[2], type, fl;
	socklen_t sl = sizeof(type);

	(void)state;
	pair(sv);
	assert_int_equal(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &sl),
	    0);
	assert_int_equal(type, SOCK_SEQPACKET);
	fl = fcntl(sv[0], F_GETFD);
	assert_true(fl != -1 && (fl & FD_CLOEXEC));
	fl = fcntl(sv[1], F_GETFD);
	assert_true(fl != -1 && (fl & FD_CLOEXEC));
	close_pair(sv);
}

static void
t_send_recv_fd(void **state)
{
	unsigned char *data = malloc(MR_IPC_MAX);
	struct mr_ipc_msg m;
	int sv[2], pp[2], fl;
	char c;

	(void)state;
	assert_non_null(data);
	pair(sv);
	assert_int_equal(pipe(pp), 0);
	assert_int_equal(mr_ipc_send_fd(sv[0], 4, pp[0], "hello", 5), 0);
	close(pp[0]);			/* the receiver's copy must do */
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, data, 1000), 1);
	assert_int_equal(m.type, 4);
	assert_int_equal(m.len, 5);
	assert_memory_equal(m.data, "hello", 5);
	assert_ptr_equal(m.data, data);
	assert_true(m.fd >= 0);
	fl = fcntl(m.fd, F_GETFD);
	assert_true(fl != -1 && (fl & FD_CLOEXEC));
	assert_int_equal(write(pp[1], "x", 1), 1);
	assert_int_equal(read(m.fd, &c, 1), 1);
	assert_int_equal(c, 'x');
	close(m.fd);
	close(pp[1]);

	assert_int_equal(mr_ipc_send_fd(sv[0], 1, -1, NULL, 0), 0);
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, data, 1000), 1);
	assert_int_equal(m.type, 1);
	assert_int_equal(m.len, 0);
	assert_int_equal(m.fd, -1);
	close_pair(sv);
	free(data);
}

/* The largest legal frame fits the channel's socket buffers. */
static void
t_send_recv_max(void **state)
{
	unsigned char *out = malloc(MR_IPC_MAX), *in = malloc(MR_IPC_MAX);
	struct mr_ipc_msg m;
	size_t i;
	int sv[2];

	(void)state;
	assert_non_null(out);
	assert_non_null(in);
	for (i = 0; i < MR_IPC_MAX; i++)
		out[i] = (unsigned char)(i * 7);
	pair(sv);
	assert_int_equal(mr_ipc_send_fd(sv[0], 2, -1, out, MR_IPC_MAX), 0);
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, in, 1000), 1);
	assert_int_equal(m.len, MR_IPC_MAX);
	assert_memory_equal(in, out, MR_IPC_MAX);
	close_pair(sv);
	free(out);
	free(in);
}

static void
t_recv_oversized(void **state)
{
	size_t big = MR_IPC_HDR + MR_IPC_MAX + 64;
	unsigned char *data = malloc(MR_IPC_MAX);
	unsigned char *p = calloc(1, big);
	struct mr_ipc_msg m;
	struct mr_buf b;
	int sv[2], sz = (int)(2 * big);

	(void)state;
	assert_non_null(data);
	assert_non_null(p);
	pair(sv);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	/* header honest about a payload one byte over the limit */
	frame(&b, 1, MR_IPC_MAX + 1, p, MR_IPC_MAX + 1);
	assert_int_equal(send(sv[0], b.data, b.len, 0), (ssize_t)b.len);
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, data, 1000), -1);
	mr_buf_free(&b);
	/* a datagram longer than the receive buffer: truncated */
	frame(&b, 1, MR_IPC_MAX, p, big - MR_IPC_HDR);
	assert_int_equal(send(sv[0], b.data, b.len, 0), (ssize_t)b.len);
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, data, 1000), -1);
	mr_buf_free(&b);
	close_pair(sv);
	free(p);
	free(data);
}

static void
t_recv_runt(void **state)
{
	unsigned char *data = malloc(MR_IPC_MAX);
	struct mr_ipc_msg m;
	int sv[2];

	(void)state;
	assert_non_null(data);
	pair(sv);
	assert_int_equal(send(sv[0], "\x01\0\0", 3, 0), 3);
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, data, 1000), -1);
	close_pair(sv);
	free(data);
}

/* A frame that is refused closes the descriptors it carried. */
static void
t_recv_bad_closes_fds(void **state)
{
	unsigned char *data = malloc(MR_IPC_MAX);
	struct mr_ipc_msg m;
	struct mr_buf b;
	int sv[2], pp[2], fds[3], before;

	(void)state;
	assert_non_null(data);
	pair(sv);
	assert_int_equal(pipe(pp), 0);
	fds[0] = fds[1] = fds[2] = pp[0];
	before = count_fds();
	frame(&b, 1, 0, NULL, 0);
	assert_true(raw_send(sv[0], b.data, b.len, fds, 3) > 0);
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, data, 1000), -1);
	assert_int_equal(count_fds(), before);
	mr_buf_free(&b);

	frame(&b, MAXTYPE + 1, 0, NULL, 0);
	assert_true(raw_send(sv[0], b.data, b.len, fds, 1) > 0);
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, data, 1000), -1);
	assert_int_equal(count_fds(), before);
	mr_buf_free(&b);

	/* an empty datagram reads as end of channel; its fd is closed */
	assert_int_equal(raw_send(sv[0], "", 0, fds, 1), 0);
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, data, 1000), 0);
	assert_int_equal(count_fds(), before);
	close(pp[0]);
	close(pp[1]);
	close_pair(sv);
	free(data);
}

static void
t_recv_closed_and_timeout(void **state)
{
	unsigned char *data = malloc(MR_IPC_MAX);
	struct mr_ipc_msg m;
	int sv[2];

	(void)state;
	assert_non_null(data);
	pair(sv);
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, data, 50), -1);
	close(sv[0]);
	assert_int_equal(mr_ipc_recv_fd(sv[1], MAXTYPE, &m, data, 1000), 0);
	close(sv[1]);
	free(data);
}

/* ---- the channel on a libevent loop ---- */

#define NFRAMES	6

struct side {
	struct mr_ipc	*c;
	int		 got, closed, echo, keep;
	uint32_t	 types[NFRAMES + 4];
	int		 fdok;
};

static void
side_cb(struct mr_ipc *c, struct mr_ipc_msg *msg, void *arg)
{
	struct side *s = arg;
	char ch;

	if (msg == NULL) {
		s->closed = 1;
		if (!s->keep) {
			mr_ipc_free(c);
			s->c = NULL;
		}
		return;
	}
	if (s->got < NFRAMES + 4)
		s->types[s->got] = msg->type;
	s->got++;
	if (msg->fd >= 0) {
		s->fdok = read(msg->fd, &ch, 1) == 1 && ch == 'z';
		close(msg->fd);
	}
	if (s->echo) {
		assert_int_equal(mr_ipc_send(c, msg->type, -1, msg->data,
		    msg->len), 0);
		return;
	}
	if (s->got == NFRAMES) {
		/* the last answer: hang up, the peer must hear of it */
		mr_ipc_free(c);
		s->c = NULL;
	}
}

static void
tick(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
}

/* Runs the loop until *done, or fails after five seconds. */
static void
run_loop(struct event_base *base, const int *done)
{
	struct timeval tv = { 0, 20000 };
	struct event *t;
	int i;

	t = event_new(base, -1, EV_PERSIST, tick, NULL);
	assert_non_null(t);
	event_add(t, &tv);
	for (i = 0; i < 250 && !*done; i++)
		assert_true(event_base_loop(base, EVLOOP_ONCE) != -1);
	event_free(t);
	assert_true(*done);
}

static void
t_loop_exchange(void **state)
{
	struct event_base *base = event_base_new();
	struct side a, b;
	char payload[32];
	int sv[2], pp[2], i, n;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	b.echo = 1;
	pair(sv);
	a.c = mr_ipc_new(base, sv[0], "a", MAXTYPE, side_cb, &a);
	b.c = mr_ipc_new(base, sv[1], "b", MAXTYPE, side_cb, &b);
	assert_string_equal(mr_ipc_peer(a.c), "a");
	assert_int_equal(pipe(pp), 0);
	assert_int_equal(write(pp[1], "z", 1), 1);
	for (i = 1; i <= NFRAMES; i++) {
		n = snprintf(payload, sizeof(payload), "frame %d", i);
		assert_int_equal(mr_ipc_send(a.c, (uint32_t)i,
		    i == 3 ? pp[0] : -1, payload, (size_t)n), 0);
	}
	close(pp[0]);
	close(pp[1]);
	run_loop(base, &b.closed);
	assert_int_equal(a.got, NFRAMES);
	assert_int_equal(b.got, NFRAMES);
	for (i = 0; i < NFRAMES; i++) {
		assert_int_equal(a.types[i], (uint32_t)i + 1);
		assert_int_equal(b.types[i], (uint32_t)i + 1);
	}
	assert_true(b.fdok);
	assert_null(a.c);
	assert_int_equal(a.closed, 0);	/* it hung up itself */
	assert_int_equal(b.closed, 1);	/* and b saw msg == NULL */
	assert_null(b.c);
	event_base_free(base);
}

/* A peer that sends a bad frame is dropped: the owner gets NULL. */
static void
t_loop_bad_frame(void **state)
{
	struct event_base *base = event_base_new();
	struct mr_buf f;
	struct side a;
	int sv[2];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.echo = 1;
	pair(sv);
	a.c = mr_ipc_new(base, sv[0], "bad-peer", MAXTYPE, side_cb, &a);
	frame(&f, 1, 1, "x", 1);
	assert_int_equal(send(sv[1], f.data, f.len, 0), (ssize_t)f.len);
	mr_buf_free(&f);
	frame(&f, 0, 0, NULL, 0);		/* type 0 */
	assert_int_equal(send(sv[1], f.data, f.len, 0), (ssize_t)f.len);
	mr_buf_free(&f);
	run_loop(base, &a.closed);
	assert_int_equal(a.got, 1);
	assert_int_equal(a.closed, 1);
	assert_null(a.c);
	close(sv[1]);
	event_base_free(base);
}

/* A full-size frame passes through the loop, both ways. */
static void
t_loop_max_frame(void **state)
{
	struct event_base *base = event_base_new();
	unsigned char *p = malloc(MR_IPC_MAX);
	struct side a, b;
	int sv[2], i;

	(void)state;
	assert_non_null(p);
	memset(p, 'm', MR_IPC_MAX);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	b.echo = 1;
	pair(sv);
	a.c = mr_ipc_new(base, sv[0], "a", MAXTYPE, side_cb, &a);
	b.c = mr_ipc_new(base, sv[1], "b", MAXTYPE, side_cb, &b);
	for (i = 1; i <= NFRAMES; i++)
		assert_int_equal(mr_ipc_send(a.c, 5, -1, p, MR_IPC_MAX), 0);
	run_loop(base, &b.closed);
	assert_int_equal(a.got, NFRAMES);
	assert_int_equal(b.closed, 1);
	event_base_free(base);
	free(p);
}

/* After the owner hears of the death, sending fails cleanly. */
static void
t_loop_send_after_close(void **state)
{
	struct event_base *base = event_base_new();
	struct side a;
	int sv[2];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.keep = 1;
	pair(sv);
	a.c = mr_ipc_new(base, sv[0], "a", MAXTYPE, side_cb, &a);
	close(sv[1]);
	run_loop(base, &a.closed);
	assert_int_equal(a.closed, 1);
	assert_non_null(a.c);
	assert_int_equal(mr_ipc_send(a.c, 1, -1, "x", 1), -1);
	mr_ipc_free(a.c);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_buf_grow),
		cmocka_unit_test(t_buf_roundtrip),
		cmocka_unit_test(t_rd_short_ints),
		cmocka_unit_test(t_rd_str_beyond_end),
		cmocka_unit_test(t_rd_str_no_nul),
		cmocka_unit_test(t_rd_str_embedded_nul),
		cmocka_unit_test(t_rd_str_maxlen),
		cmocka_unit_test(t_rd_sticky_error),
		cmocka_unit_test(t_decode_good),
		cmocka_unit_test(t_decode_truncated),
		cmocka_unit_test(t_decode_short_header),
		cmocka_unit_test(t_decode_len_mismatch),
		cmocka_unit_test(t_decode_bad_type),
		cmocka_unit_test(t_decode_too_large),
		cmocka_unit_test(t_decode_fds),
		cmocka_unit_test(t_pair),
		cmocka_unit_test(t_send_recv_fd),
		cmocka_unit_test(t_send_recv_max),
		cmocka_unit_test(t_recv_oversized),
		cmocka_unit_test(t_recv_runt),
		cmocka_unit_test(t_recv_bad_closes_fds),
		cmocka_unit_test(t_recv_closed_and_timeout),
		cmocka_unit_test(t_loop_exchange),
		cmocka_unit_test(t_loop_bad_frame),
		cmocka_unit_test(t_loop_max_frame),
		cmocka_unit_test(t_loop_send_after_close),
	};

	return cmocka_run_group_tests_name("ipc", tests, NULL, NULL);
}
