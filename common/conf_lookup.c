/*
 * conf_lookup.c - questions the daemons ask of a parsed configuration:
 * which domain is this, is it local, may this peer connect or relay.
 *
 * Security: these decide relay, so they are written to fail closed: an
 * address family we do not know matches no rule, a missing reverse name
 * matches no domain rule, and the default decides what nothing matched.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <string.h>
#include <strings.h>

#include "conf.h"

const struct mr_domain *
mr_config_domain(const struct mr_server *s, const char *domain)
{
	size_t i;

	if (s == NULL || domain == NULL)
		return NULL;
	for (i = 0; i < s->ndomains; i++)
		if (strcasecmp(s->domains[i].name, domain) == 0)
			return &s->domains[i];
	return NULL;
}

int
mr_domain_is_local(const struct mr_server *s, const char *domain)
{
	const struct mr_domain *d = mr_config_domain(s, domain);

	return d != NULL && (d->kind == MR_DOMAIN_LOCAL ||
	    d->kind == MR_DOMAIN_ALIAS);
}

/*
 * The peer's address as (family, 16 bytes).  An IPv4-mapped IPv6 address
 * (a dual-stack listener's view of an IPv4 peer) is the IPv4 address, so
 * that "allow 127.0.0.1" means the same on [::]:25 as on 0.0.0.0:25.
 */
static int
peer_addr(const struct sockaddr *sa, unsigned char addr[16])
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	memset(addr, 0, 16);
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)sa;
		memcpy(addr, &sin->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	sin6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memcpy(addr, sin6->sin6_addr.s6_addr + 12, 4);
		return AF_INET;
	}
	memcpy(addr, &sin6->sin6_addr, 16);
	return AF_INET6;
}

static int
net_match(const struct mr_rule *r, int family, const unsigned char *addr)
{
	int full = r->prefix / 8, rest = r->prefix % 8;
	unsigned char m;

	if (family != r->family)
		return 0;
	if (memcmp(addr, r->addr, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	m = (unsigned char)(0xff << (8 - rest));
	return (addr[full] & m) == r->addr[full];
}

/*
 * ".corp.example.com" matches any name below it; "host.example.com"
 * matches that name alone.  A trailing root dot in the PTR is ignored.
 */
static int
domain_match(const struct mr_rule *r, const char *ptr)
{
	size_t plen, slen = strlen(r->domain);

	if (ptr == NULL)
		return 0;
	plen = strlen(ptr);
	if (plen > 0 && ptr[plen - 1] == '.')
		plen--;
	if (r->domain[0] != '.')
		return plen == slen && strncasecmp(ptr, r->domain, slen) == 0;
	return plen > slen &&
	    strncasecmp(ptr + plen - slen, r->domain, slen) == 0;
}

int
mr_access_check(const struct mr_access *acc, const struct sockaddr *sa,
    const char *ptr)
{
	const struct mr_rule *r;
	unsigned char addr[16];
	int family;
	size_t i;

	family = peer_addr(sa, addr);
	for (i = 0; i < acc->nrules; i++) {
		r = &acc->rules[i];
		if (r->kind == MR_RULE_NET ? net_match(r, family, addr) :
		    domain_match(r, ptr))
			return r->allow ? 1 : 0;
	}
	return acc->default_allow ? 1 : 0;
}
