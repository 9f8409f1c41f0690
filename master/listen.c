/*
 * listen.c - binds every listener of every virtual server, and the
 * metrics listener ("metrics listen").
 *
 * Security: runs as root in the master; binds and listens only.  The
 * SMTP sockets are handed to smtpd, the metrics one to queued
 * (MR_FD_METRICS); they alone accept and read from them.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "master.h"
#include "util.h"

static int
bind_one(const struct mr_listen *l)
{
	int fd, one = 1;

	fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0);
	if (fd == -1) {
		mr_err("listen %s: socket: %s", l->text, strerror(errno));
		return -1;
	}
	/* Without V6ONLY a [::] listener takes the IPv4 port as well, and
	 * the 0.0.0.0 one beside it fails to bind. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (l->addr.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == -1)) {
		mr_err("listen %s: setsockopt: %s", l->text, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == -1) {
		mr_err("listen %s: bind: %s", l->text, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, 1024) == -1) {
		mr_err("listen %s: listen: %s", l->text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* An already-bound socket for the same address, taken over on reload. */
static int
take_old(const struct mr_listen *l, int *oldfds, size_t nold,
    const struct mr_config *oldcfg)
{
	size_t s, i, k = 0;

	if (oldcfg == NULL)
		return -1;
	for (s = 0; s < oldcfg->nservers; s++)
		for (i = 0; i < oldcfg->servers[s].nlistens; i++, k++) {
			const struct mr_listen *o = &oldcfg->servers[s].listens[i];

			if (k >= nold || oldfds[k] == -1)
				continue;
			if (o->addrlen == l->addrlen &&
			    memcmp(&o->addr, &l->addr, l->addrlen) == 0) {
				/* a duplicate: the old set stays whole
				 * until the new one is complete */
				return fcntl(oldfds[k], F_DUPFD_CLOEXEC, 0);
			}
		}
	return -1;
}

/* An earlier listener of the same configuration on the same address
 * (servers sharing an implicit TLS address): the same socket. */
static int
take_shared(const struct mr_config *cfg, const struct mr_listen *l,
    const int *fds, size_t k)
{
	size_t s, i, j = 0;

	for (s = 0; s < cfg->nservers; s++)
		for (i = 0; i < cfg->servers[s].nlistens; i++, j++) {
			const struct mr_listen *o = &cfg->servers[s].listens[i];

			if (j >= k)
				return -1;
			if (o->addrlen == l->addrlen &&
			    memcmp(&o->addr, &l->addr, l->addrlen) == 0)
				return fcntl(fds[j], F_DUPFD_CLOEXEC, 0);
		}
	return -1;
}

/*
 * Binds the listeners of m->cfg into m->lfds, reusing (duplicates of) sockets of the old
 * configuration for addresses both share.  Returns 0, or -1 (everything
 * bound here is closed again and m->lfds is left as it was).
 */
int
mr_listen_all(struct mr_master *m, int *oldfds, size_t nold,
    const struct mr_config *oldcfg)
{
	size_t s, i, n = 0, k = 0;
	int *fds;

	for (s = 0; s < m->cfg->nservers; s++)
		n += m->cfg->servers[s].nlistens;
	if (n > MR_LISTEN_MAX) {
		mr_err("%zu listen addresses; at most %d are supported", n,
		    MR_LISTEN_MAX);
		return -1;
	}
	fds = mr_xcalloc(n ? n : 1, sizeof(int));
	for (s = 0; s < m->cfg->nservers; s++)
		for (i = 0; i < m->cfg->servers[s].nlistens; i++, k++) {
			const struct mr_listen *l = &m->cfg->servers[s].listens[i];

			fds[k] = take_shared(m->cfg, l, fds, k);
			if (fds[k] == -1)
				fds[k] = take_old(l, oldfds, nold, oldcfg);
			if (fds[k] == -1)
				fds[k] = bind_one(l);
			if (fds[k] == -1) {
				mr_listen_close(fds, k);
				free(fds);
				return -1;
			}
		}
	m->lfds = fds;
	m->nlfds = n;
	return 0;
}

void
mr_listen_close(int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (fds[i] != -1) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* The metrics listener for queued, bound once at start; -1 (logged). */
int
mr_metrics_open(const struct mr_config *cf)
{
	struct mr_listen l;

	memset(&l, 0, sizeof(l));
	l.addr = cf->metrics_addr;
	l.addrlen = cf->metrics_addrlen;
	l.text = cf->metrics_listen;
	return bind_one(&l);
}
