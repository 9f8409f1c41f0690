/*
 * proxy.c - a connection to a proxy-protocol listener before its session:
 * the PROXY header (version 1 or 2) a load balancer sends first.
 *
 * Reads the header with a deadline, then hands the descriptor to
 * session_accept with the client's address from the header, so that the
 * connection access rules, the connection limits, relay and every log
 * line see the real client and never the balancer.  The descriptor is
 * handed over positioned at the client's first byte: the header is read
 * by peeking and then consuming exactly its own bytes, so whatever
 * follows -- SMTP commands, or the TLS handshake of an implicit-TLS
 * listener -- is left in the socket for the session.
 *
 * Security: anyone who can connect to such a listener can claim any
 * address; the manual says to bind it where only the balancer reaches
 * it.  The header goes through mr_proxy_parse (common/proxy_hdr.c) and
 * nothing else; a missing, slow, malformed or truncated header closes
 * the connection with a log line naming the balancer's address, and no
 * SMTP byte is ever sent to it.  At most PENDING_MAX connections wait for
 * a header at once, each with a bounded buffer.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "log.h"
#include "proxy_hdr.h"
#include "smtpd.h"

/* The header must be complete within this many seconds (or the
 * server's idle-timeout if that is shorter). */
#define PROXY_TIMEOUT	5
#define PENDING_MAX	1024

struct pending {
	struct pending		*next;
	struct pending		*prev;
	struct listener		*l;
	int			 fd;
	struct event		*ev_read;
	struct event		*ev_timer;
	unsigned		 timeout;	/* seconds */
	struct sockaddr_storage	 peer;		/* the balancer */
	socklen_t		 peerlen;
	char			 ip[INET6_ADDRSTRLEN];
	size_t			 have;		/* header bytes consumed */
	unsigned char		 buf[MR_PROXY_MAX];
};

static struct pending	*pendings;
static size_t		 npendings;

static void
pending_free(struct pending *p, int close_fd)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		pendings = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	npendings--;
	if (p->ev_read != NULL)
		event_free(p->ev_read);
	if (p->ev_timer != NULL)
		event_free(p->ev_timer);
	if (close_fd && p->fd != -1 && close(p->fd) == -1)
		mr_warn("proxy [%s]: close: %s", p->ip, strerror(errno));
	smtpd_release(p->l);
	free(p);
}

/* Closes the connection with a log line saying why. */
static void
drop(struct pending *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
drop(struct pending *p, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	mr_info("proxy [%s] on %s: %s; connection closed", p->ip,
	    p->l->lcfg->text, why);
	pending_free(p, 1);
}

static void
proxy_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	(void)fd;
	(void)what;
	if (p->have == 0)
		drop(p, "no PROXY header within %u seconds", p->timeout);
	else
		drop(p, "PROXY header incomplete after %u seconds (%zu "
		    "bytes)", p->timeout, p->have);
}

/* The text of an IPv4 or IPv6 address, "unknown" for anything else. */
static void
addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a = NULL;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (a == NULL ||
	    inet_ntop(sa->sa_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "unknown");
}

/* The header is read: the session begins with the client it names. */
static void
proxy_done(struct pending *p, const struct mr_proxy_hdr *h)
{
	struct sockaddr_storage ss;	/* p is freed before it is used */
	socklen_t sslen = p->peerlen;
	char ip[INET6_ADDRSTRLEN];
	struct listener *l = p->l;
	int fd = p->fd;

	memcpy(&ss, &p->peer, sizeof(ss));
	if (!h->local) {
		memcpy(&ss, &h->src, sizeof(ss));
		sslen = h->srclen;
	}
	addr_text((struct sockaddr *)&ss, ip, sizeof(ip));
	mr_debug("proxy [%s] on %s: PROXY v%d%s: client [%s]", p->ip,
	    l->lcfg->text, h->version, h->local ? " (local)" : "", ip);
	smtpd_hold(l);		/* across pending_free */
	p->fd = -1;
	pending_free(p, 0);
	/* the descriptor is at the client's first byte: on an implicit-TLS
	 * listener session_accept starts the handshake from there */
	session_accept(l, fd, (struct sockaddr *)&ss, (int)sslen);
	smtpd_release(l);
}

/* Takes n bytes the peek saw off the socket, into the header buffer. */
static int
consume(struct pending *p, size_t n)
{
	ssize_t got;

	if (n == 0)
		return 0;
	if (n > sizeof(p->buf) - p->have)
		mr_panic("proxy: %zu header bytes do not fit", n);
	do
		got = recv(p->fd, p->buf + p->have, n, 0);
	while (got == -1 && errno == EINTR);
	if (got < 0 || (size_t)got != n) {
		drop(p, "read: %s", got < 0 ? strerror(errno) : "short read");
		return -1;
	}
	p->have += n;
	return 0;
}

static void
proxy_read(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct mr_proxy_hdr h;
	ssize_t n;

	(void)what;
	if (p->have >= sizeof(p->buf))
		mr_panic("proxy_read: header buffer full");
	n = recv(fd, p->buf + p->have, sizeof(p->buf) - p->have, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(p, "%s %s", n == 0 ? "closed" : strerror(errno),
		    p->have ? "in the PROXY header" : "before a PROXY header");
		return;
	}
	switch (mr_proxy_parse(p->buf, p->have + (size_t)n, &h)) {
	case MR_PROXY_MORE:
		(void)consume(p, (size_t)n);
		return;
	case MR_PROXY_BAD:
		drop(p, "malformed PROXY header: %s", h.error);
		return;
	case MR_PROXY_OK:
		if (consume(p, h.len - p->have) == 0)
			proxy_done(p, &h);
		return;
	}
}

static int
pending_events(struct pending *p)
{
	struct timeval tv = { 0, 0 };

	p->timeout = p->l->srv->limits.idle_timeout < PROXY_TIMEOUT ?
	    p->l->srv->limits.idle_timeout : PROXY_TIMEOUT;
	tv.tv_sec = p->timeout;
	p->ev_read = event_new(smtpd->base, p->fd, EV_READ | EV_PERSIST,
	    proxy_read, p);
	p->ev_timer = evtimer_new(smtpd->base, proxy_timeout, p);
	if (p->ev_read == NULL || p->ev_timer == NULL ||
	    event_add(p->ev_read, NULL) == -1 ||
	    event_add(p->ev_timer, &tv) == -1)
		return -1;
	return 0;
}

void
proxy_accept(struct listener *l, int fd, struct sockaddr *sa, int len)
{
	struct pending *p;

	if (smtpd->stopping || len < 0 || (size_t)len > sizeof(p->peer)) {
		close(fd);
		return;
	}
	if (npendings >= PENDING_MAX) {
		mr_warn("proxy on %s: %zu connections wait for a PROXY header "
		    "already; connection closed", l->lcfg->text, npendings);
		close(fd);
		return;
	}
	p = mr_xcalloc(1, sizeof(*p));
	p->l = l;
	p->fd = fd;
	memcpy(&p->peer, sa, (size_t)len);
	p->peerlen = (socklen_t)len;
	addr_text(sa, p->ip, sizeof(p->ip));
	smtpd_hold(l);
	if ((p->next = pendings) != NULL)
		pendings->prev = p;
	pendings = p;
	npendings++;
	if (pending_events(p) == -1)
		drop(p, "cannot wait for the PROXY header: %s",
		    strerror(errno));
}
