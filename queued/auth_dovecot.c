/*
 * auth_dovecot.c - checks a user name and password against Dovecot's
 * authentication client socket (`auth { dovecot PATH }'), the protocol
 * Postfix speaks with smtpd_sasl_type = dovecot.  Dovecot in turn asks
 * PAM, LDAP, Active Directory or its own passwd-file.
 *
 * Runs on auth_verify.c's worker thread and blocks it: one connection
 * per check, every wait bounded by poll (DVA_TIMEOUT_MS in all), so a
 * hung Dovecot delays AUTH answers but never queued's event loop.  The
 * lines are parsed by common/dovecot_auth.c.
 *
 * Security: the socket's owner is trusted only to say OK or FAIL for our
 * id; a missing socket, a timeout, a line over MR_DVA_LINE_MAX or
 * anything malformed is a temporary failure (454), never a success.  The
 * request, which holds the password in base64, is wiped once sent.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dovecot_auth.h"
#include "proto.h"
#include "queued.h"

#define DVA_TIMEOUT_MS	10000

struct dva_conn {
	int		 fd;
	struct timespec	 deadline;
	char		 buf[MR_DVA_LINE_MAX + 2];
	size_t		 have;		/* bytes in buf */
	size_t		 used;		/* the last line returned */
};

static int
ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long ms;

	if (clock_gettime(CLOCK_MONOTONIC, &now) == -1)
		return 0;
	ms = (deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

/* Waits for ev on the socket until the deadline: 0, or -1 (why in err). */
static int
dva_wait(struct dva_conn *c, short ev, char *err, size_t errsz)
{
	struct pollfd pfd = { .fd = c->fd, .events = ev };
	int n;

	do
		n = poll(&pfd, 1, ms_left(&c->deadline));
	while (n == -1 && errno == EINTR);
	if (n == 1)
		return 0;
	snprintf(err, errsz, "%s", n == 0 ? "timed out" : strerror(errno));
	return -1;
}

static int
dva_connect(struct dva_conn *c, const char *path, char *err, size_t errsz)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errsz, "socket path too long");
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd == -1 || (connect(c->fd, (struct sockaddr *)&sun,
	    sizeof(sun)) == -1 && errno != EINPROGRESS)) {
		snprintf(err, errsz, "connect: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
dva_send(struct dva_conn *c, const char *p, size_t len, char *err,
    size_t errsz)
{
	ssize_t n;

	while (len > 0) {
		if (dva_wait(c, POLLOUT, err, errsz) == -1)
			return -1;
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			snprintf(err, errsz, "send: %s", strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The next line (LF removed, NUL-terminated in place) or NULL. */
static char *
dva_line(struct dva_conn *c, size_t *len, char *err, size_t errsz)
{
	char *lf;
	ssize_t n;

	memmove(c->buf, c->buf + c->used, c->have - c->used);
	c->have -= c->used;
	c->used = 0;
	while ((lf = memchr(c->buf, '\n', c->have)) == NULL) {
		if (c->have > MR_DVA_LINE_MAX) {
			snprintf(err, errsz, "line too long");
			return NULL;
		}
		if (dva_wait(c, POLLIN, err, errsz) == -1)
			return NULL;
		n = recv(c->fd, c->buf + c->have,
		    sizeof(c->buf) - 1 - c->have, 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			snprintf(err, errsz, "%s", n == 0 ?
			    "connection closed" : strerror(errno));
			return NULL;
		}
		c->have += (size_t)n;
	}
	*lf = '\0';
	*len = (size_t)(lf - c->buf);
	c->used = *len + 1;
	return c->buf;
}

/* Reads until step says anything but MORE (at most a bounded count). */
static enum mr_dva_step
dva_exchange(struct dva_conn *c, struct mr_dva_hs *hs, unsigned long id,
    char *err, size_t errsz)
{
	enum mr_dva_step st = MR_DVA_MORE;
	const char *line;
	size_t len, i;

	for (i = 0; i < 256 && st == MR_DVA_MORE; i++) {
		if ((line = dva_line(c, &len, err, errsz)) == NULL)
			return MR_DVA_REFUSED;
		st = hs != NULL ? mr_dva_handshake(hs, line, len) :
		    mr_dva_answer(id, line, len);
		if (st == MR_DVA_REFUSED)
			snprintf(err, errsz, "unexpected line \"%.60s\"",
			    line);
	}
	if (st == MR_DVA_MORE)
		snprintf(err, errsz, "too many lines");
	return st == MR_DVA_MORE ? MR_DVA_REFUSED : st;
}

uint32_t
auth_dovecot_check(const char *path, const char *user, const char *pass,
    int secured, char *err, size_t errsz)
{
	static struct dva_conn c;	/* the worker thread's only */
	struct mr_dva_hs hs = { 0 };
	char req[MR_DVA_REQ_MAX], hello[64];
	enum mr_dva_step st = MR_DVA_REFUSED;
	int n;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	if (clock_gettime(CLOCK_MONOTONIC, &c.deadline) == -1)
		return MR_AUTH_TEMP;
	c.deadline.tv_sec += DVA_TIMEOUT_MS / 1000;
	n = snprintf(hello, sizeof(hello), "VERSION\t1\t2\nCPID\t%ld\n",
	    (long)getpid());
	if (dva_connect(&c, path, err, errsz) == -1 ||
	    dva_send(&c, hello, (size_t)n, err, errsz) == -1 ||
	    (st = dva_exchange(&c, &hs, 0, err, errsz)) != MR_DVA_READY)
		goto done;
	n = mr_dva_request(req, sizeof(req), 1, user, pass, secured);
	st = MR_DVA_REFUSED;
	if (n < 0 || dva_send(&c, req, (size_t)n, err, errsz) == -1)
		goto done;
	st = dva_exchange(&c, NULL, 1, err, errsz);
	if (st == MR_DVA_TEMPFAIL)
		snprintf(err, errsz, "temporary failure");
done:
	explicit_bzero(req, sizeof(req));
	if (c.fd != -1)
		(void)close(c.fd);
	explicit_bzero(&c, sizeof(c));
	return st == MR_DVA_GRANTED ? MR_AUTH_OK :
	    st == MR_DVA_DENIED ? MR_AUTH_FAIL : MR_AUTH_TEMP;
}
