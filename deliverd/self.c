/*
 * self.c - is a next hop mailroot itself?  An address and port one of
 * our own listeners (of any virtual server) accepts on.
 *
 * Mail sent there would come straight back and circle until the hop
 * count stops it; RFC 5321 5.1 asks an MTA that finds itself among a
 * domain's MX hosts to drop that host and every less preferred one.  A
 * wildcard listener (0.0.0.0, ::) is taken to accept on the loopback
 * addresses; deliverd cannot list the host's other interfaces from its
 * sandbox, so a wildcard listener reached through a public address is
 * not recognised here (the hop count still ends such a loop).
 *
 * Security: compares addresses from DNS answers (already decoded by
 * mx_resolve.c) with the configuration; reads nothing else.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <string.h>

#include "conf.h"
#include "deliverd.h"

static int
is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *sin = (const void *)ss;
	const struct sockaddr_in6 *sin6 = (const void *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
}

/* One listener against one address: same family, port and address. */
static int
listen_matches(const struct mr_listen *l, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *a4 = (const void *)ss;
	const struct sockaddr_in *l4 = (const void *)&l->addr;
	const struct sockaddr_in6 *a6 = (const void *)ss;
	const struct sockaddr_in6 *l6 = (const void *)&l->addr;

	if (l->addr.ss_family != ss->ss_family)
		return 0;
	if (ss->ss_family == AF_INET) {
		if (l4->sin_port != a4->sin_port)
			return 0;
		if (l4->sin_addr.s_addr == htonl(INADDR_ANY))
			return is_loopback(ss);
		return l4->sin_addr.s_addr == a4->sin_addr.s_addr;
	}
	if (ss->ss_family != AF_INET6 || l6->sin6_port != a6->sin6_port)
		return 0;
	if (IN6_IS_ADDR_UNSPECIFIED(&l6->sin6_addr))
		return is_loopback(ss);
	return memcmp(&l6->sin6_addr, &a6->sin6_addr,
	    sizeof(a6->sin6_addr)) == 0;
}

int
self_listens(const struct sockaddr_storage *ss)
{
	const struct mr_config *cf = deliverd_config();
	size_t i, k;

	if (cf == NULL)
		return 0;
	for (i = 0; i < cf->nservers; i++)
		for (k = 0; k < cf->servers[i].nlistens; k++)
			if (listen_matches(&cf->servers[i].listens[k], ss))
				return 1;
	return 0;
}
