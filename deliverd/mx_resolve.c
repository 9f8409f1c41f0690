/*
 * mx_resolve.c - where a destination's mail goes: asynchronous MX, A and
 * AAAA lookups with libunbound, turned into an ordered address list.
 *
 * Owns the resolver context.  It is created before privileges are dropped
 * (it reads /etc/resolv.conf and /etc/hosts, either of which may be
 * missing) and driven from the libevent loop through ub_fd().  Security: DNS answers are untrusted input; names
 * in MX records are decoded with bounds checks and must look like host
 * names before they are used; host and address counts are capped.  A DNS
 * failure is a temporary failure; only NXDOMAIN and a null MX (RFC 7505)
 * of a recipient domain are permanent.  With DANE (dane.c), the DNSSEC
 * verdicts of the MX and address answers are kept with each address, a
 * bogus one is a temporary failure, and the TLSA lookups of the secure
 * hosts complete the query.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <unbound.h>

#include "buf.h"
#include "log.h"
#include "proto.h"
#include "deliverd.h"

#define MX_RESOLV_CONF	"/etc/resolv.conf"
#define MX_HOSTS_FILE	"/etc/hosts"
#define MX_HOSTS_MAX	16	/* MX hosts tried per domain */
#define MX_ADDRS_MAX	8	/* addresses per host and family */
#define RR_A		1
#define RR_MX		15
#define RR_AAAA		28
#define RCODE_NXDOMAIN	3

struct mx_host;

struct mx_sub {			/* one A or AAAA lookup */
	struct mx_query	*q;
	struct mx_host	*h;
	int		 rrtype;
	int		 id;
	int		 active;
};

struct mx_host {
	char		*name;
	unsigned	 pref;
	uint32_t	 rnd;		/* shuffles equal preferences */
	struct mx_sub	 sub[2];	/* A, AAAA */
	int		 sec[2];	/* their enum dane_sec */
	struct mx_addr	 addr[2][MX_ADDRS_MAX];
	size_t		 naddr[2];
};

struct mx_query {
	enum dest_kind	 kind;
	char		*name;
	unsigned	 port;
	mx_cb		 cb;
	void		*arg;
	int		 mxid;
	int		 mxactive;
	int		 implicit;	/* no MX: the domain is its own host */
	int		 dane;		/* DANE may apply: keep the verdicts */
	int		 mxsec;		/* enum dane_sec of the MX answer */
	struct dane_req	*dr;		/* TLSA lookups under way */
	struct mx_host	*hosts;
	size_t		 nhosts;
	unsigned	 pending;
	struct mx_result *early;	/* decided without DNS (literal, MX) */
	struct event	*ev;
	char		*temperr;	/* last temporary lookup failure */
};

static struct ub_ctx	*ub;
static struct event	*ub_ev;
static struct event_base *mx_base;

static void	mx_on_mx(void *, int, struct ub_result *);
static void	mx_on_addr(void *, int, struct ub_result *);

static void
mx_readable(evutil_socket_t fd, short ev, void *arg)
{
	int rc;

	(void)fd;
	(void)ev;
	(void)arg;
	if ((rc = ub_process(ub)) != 0)
		mr_warn("resolver: %s", ub_strerror(rc));
}

static int
mx_setopt(const char *opt, const char *val)
{
	int rc;

	if ((rc = ub_ctx_set_option(ub, opt, val)) != 0) {
		mr_err("resolver: %s %s: %s", opt, val, ub_strerror(rc));
		return -1;
	}
	return 0;
}

/*
 * The "system" resolver of a libunbound context: the nameservers of
 * /etc/resolv.conf and the names of /etc/hosts.  Either file may be
 * missing (a container, a minimal root): without resolv.conf the local
 * nameserver is asked, as resolv.conf(5) says; without hosts, DNS alone
 * answers.  That is said once per process.  Shared with ptr_resolve.c.
 */
int
mx_system_resolver(struct ub_ctx *ctx)
{
	static int said_conf, said_hosts;
	int rc;

	errno = 0;
	if ((rc = ub_ctx_resolvconf(ctx, MX_RESOLV_CONF)) == UB_READFILE &&
	    errno == ENOENT) {
		if (!said_conf++)
			mr_warn("resolver: no %s: asking a nameserver on "
			    "127.0.0.1", MX_RESOLV_CONF);
		rc = ub_ctx_set_fwd(ctx, "127.0.0.1");
	}
	if (rc != 0)
		return rc;
	errno = 0;
	if ((rc = ub_ctx_hosts(ctx, MX_HOSTS_FILE)) == UB_READFILE &&
	    errno == ENOENT) {
		if (!said_hosts++)
			mr_warn("resolver: no %s: host names come from DNS "
			    "alone", MX_HOSTS_FILE);
		rc = 0;
	}
	return rc;
}

/*
 * "system": the nameservers of /etc/resolv.conf and /etc/hosts.
 * "IP@PORT": that forwarder alone, no DNSSEC requirement.  Either may be
 * on loopback (a local cache, or a test's DNS server).
 */
int
mx_init(struct event_base *base, const char *resolver,
    const char *trust_anchor)
{
	int rc;

	mx_base = base;
	if ((ub = ub_ctx_create()) == NULL) {
		mr_err("resolver: cannot create a libunbound context");
		return -1;
	}
	/* a worker thread: a forked one would hold our IPC descriptors */
	if ((rc = ub_ctx_async(ub, 1)) != 0)
		goto fail;
	if (mx_setopt("do-not-query-localhost:", "no") == -1)
		return -1;
	/*
	 * libunbound answers test. (RFC 6761) and home.arpa. (RFC 8375)
	 * itself with NXDOMAIN.  Both are meant to be served by the local
	 * DNS, which is the resolver the administrator named: ask it.
	 */
	if (mx_setopt("local-zone:", "test. transparent") == -1 ||
	    mx_setopt("local-zone:", "home.arpa. transparent") == -1)
		return -1;
	if (resolver == NULL || strcmp(resolver, "system") == 0) {
		if ((rc = mx_system_resolver(ub)) != 0)
			goto fail;
	} else if ((rc = ub_ctx_set_fwd(ub, resolver)) != 0)
		goto fail;
	if (dane_init(ub, trust_anchor) == -1)
		return -1;
	ub_ev = event_new(base, ub_fd(ub), EV_READ | EV_PERSIST,
	    mx_readable, NULL);
	if (ub_ev == NULL || event_add(ub_ev, NULL) == -1) {
		mr_err("resolver: cannot watch the libunbound descriptor");
		return -1;
	}
	return 0;
fail:
	mr_err("resolver \"%s\": %s", resolver ? resolver : "system",
	    ub_strerror(rc));
	return -1;
}

/* The resolver context, for the other lookups of deliverd (MTA-STS's
 * TXT): their answers arrive through the same descriptor. */
struct ub_ctx *
mx_ub(void)
{
	return ub;
}

void
mx_fini(void)
{
	if (ub_ev != NULL)
		event_free(ub_ev);
	ub_ev = NULL;
	if (ub != NULL)
		ub_ctx_delete(ub);
	ub = NULL;
	dane_fini();
}

int
mx_parse_ip(const char *s, unsigned port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (strncasecmp(s, "IPv6:", 5) == 0)
		s += 5;
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

void
mx_result_free(struct mx_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->naddrs; i++) {
		free(r->addrs[i].host);
		dane_tlsa_unref(r->addrs[i].tlsa);
	}
	free(r->addrs);
	free(r->error);
	free(r);
}

static struct mx_result *
mx_fail(int status, struct mr_buf *b)
{
	struct mx_result *r = mr_xcalloc(1, sizeof(*r));

	r->status = status;
	r->error = mr_xstrdup(b->data ? b->data : "DNS lookup failed");
	mr_buf_free(b);
	return r;
}

static struct mx_result *
mx_failf(int status, const char *what, const char *name, const char *why)
{
	struct mr_buf b;

	mr_buf_init(&b);
	mr_buf_printf(&b, "%s %s%s%s", what, name, why ? ": " : "",
	    why ? why : "");
	return mx_fail(status, &b);
}

static void
mx_query_free(struct mx_query *q)
{
	size_t i, f, k;

	for (i = 0; i < q->nhosts; i++) {
		for (f = 0; f < 2; f++)
			for (k = 0; k < q->hosts[i].naddr[f]; k++)
				free(q->hosts[i].addr[f][k].host);
		free(q->hosts[i].name);
	}
	free(q->hosts);
	if (q->ev != NULL)
		event_free(q->ev);
	mx_result_free(q->early);
	free(q->temperr);
	free(q->name);
	free(q);
}

/*
 * RFC 5321 5.1: when one of the hosts is ourselves, it and every host
 * not preferred over it are dropped (hosts are in preference order).
 * Returns how many hosts are kept; *looped is set if any was dropped.
 */
static size_t
mx_cut_self(const struct mx_query *q, int *looped)
{
	size_t i, f, k;
	unsigned pref;

	for (i = 0; i < q->nhosts; i++)
		for (f = 0; f < 2; f++)
			for (k = 0; k < q->hosts[i].naddr[f]; k++)
				if (self_listens(&q->hosts[i].addr[f][k].ss))
					goto cut;
	return q->nhosts;
cut:
	*looped = 1;
	pref = q->hosts[i].pref;
	for (i = 0; i < q->nhosts && q->hosts[i].pref < pref; i++)
		continue;
	return i;
}

static struct mx_result *
mx_loop(const char *name)
{
	return mx_failf(MR_DS_PERM, "5.4.6 mail for", name, "loops back to "
	    "myself (the next hop is one of mailroot's own listeners)");
}

/* Moves every address found, host by host, IPv4 first. */
static struct mx_result *
mx_collect(struct mx_query *q)
{
	struct mx_result *r = mr_xcalloc(1, sizeof(*r));
	size_t i, f, k, n = 0, nhosts;
	int looped = 0;

	nhosts = mx_cut_self(q, &looped);
	for (i = 0; i < nhosts; i++)
		n += q->hosts[i].naddr[0] + q->hosts[i].naddr[1];
	if (n == 0) {
		free(r);
		if (looped)
			return mx_loop(q->name);
		if (q->temperr != NULL)
			return mx_failf(MR_DS_TEMP, "DNS lookup of",
			    q->name, q->temperr);
		if (q->kind == DEST_MX && q->implicit)
			return mx_failf(MR_DS_PERM, "5.1.2 domain", q->name,
			    "no MX or address records");
		return mx_failf(MR_DS_TEMP, q->kind == DEST_MX ?
		    "no address for the MX hosts of" : "no address for host",
		    q->name, NULL);
	}
	r->addrs = mr_xcalloc(n, sizeof(*r->addrs));
	for (i = 0; i < nhosts; i++)
		for (f = 0; f < 2; f++) {
			for (k = 0; k < q->hosts[i].naddr[f]; k++)
				r->addrs[r->naddrs++] = q->hosts[i].addr[f][k];
			q->hosts[i].naddr[f] = 0;
		}
	return r;
}

/* Hands the result over; the query is freed before the callback runs. */
static void
mx_finish(struct mx_query *q, struct mx_result *r)
{
	mx_cb cb = q->cb;
	void *arg = q->arg;

	mx_query_free(q);
	cb(r, arg);
}

static void
mx_dane_done(struct mx_result *r, void *arg)
{
	struct mx_query *q = arg;

	q->dr = NULL;
	mx_finish(q, r);
}

/* Every address is known: the TLSA lookups of DANE, if any, then done. */
static void
mx_complete(struct mx_query *q)
{
	struct mx_result *r = mx_collect(q);

	if (r->status == 0 && q->dane &&
	    (q->dr = dane_lookup(ub, r, q->port, mx_dane_done, q)) != NULL)
		return;
	mx_finish(q, r);
}

static void
mx_early_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct mx_query *q = arg;
	struct mx_result *r = q->early;

	(void)fd;
	(void)ev;
	q->early = NULL;
	if (r == NULL)
		r = mx_collect(q);
	mx_finish(q, r);
}

/* Completes from the loop, never inside the caller's own call. */
static void
mx_defer(struct mx_query *q, struct mx_result *r)
{
	q->early = r;
	q->ev = event_new(mx_base, -1, 0, mx_early_cb, q);
	if (q->ev == NULL)
		mr_panic("resolver: event_new failed");
	event_active(q->ev, 0, 0);
}

static void
mx_note_temp(struct mx_query *q, const char *name, const char *why)
{
	struct mr_buf b;

	mr_buf_init(&b);
	mr_buf_printf(&b, "%s: %s", name, why);
	free(q->temperr);
	q->temperr = b.data;
}

static void
mx_start_sub(struct mx_query *q, struct mx_host *h, int fam)
{
	struct mx_sub *s = &h->sub[fam];
	int rc;

	s->q = q;
	s->h = h;
	s->rrtype = fam == 0 ? RR_A : RR_AAAA;
	rc = ub_resolve_async(ub, h->name, s->rrtype, 1, s, mx_on_addr,
	    &s->id);
	if (rc != 0) {
		mx_note_temp(q, h->name, ub_strerror(rc));
		return;
	}
	s->active = 1;
	q->pending++;
}

/* Looks up every host; completes at once when nothing could start. */
static void
mx_start_hosts(struct mx_query *q)
{
	size_t i;

	for (i = 0; i < q->nhosts; i++) {
		mx_start_sub(q, &q->hosts[i], 0);
		mx_start_sub(q, &q->hosts[i], 1);
	}
	if (q->pending == 0)
		mx_defer(q, NULL);
}

static void
mx_add_host(struct mx_query *q, const char *name, unsigned pref)
{
	struct mx_host *h;

	if (q->nhosts == MX_HOSTS_MAX)
		return;
	h = &q->hosts[q->nhosts++];
	memset(h, 0, sizeof(*h));
	h->name = mr_xstrdup(name);
	h->pref = pref;
	h->rnd = arc4random();
}

struct mx_query *
mx_resolve(enum dest_kind kind, const char *name, unsigned port, int dane,
    mx_cb cb, void *arg)
{
	struct mx_query *q = mr_xcalloc(1, sizeof(*q));
	struct mx_result *r;
	int rc;

	q->kind = kind;
	q->dane = dane && kind == DEST_MX && dane_validating();
	q->name = mr_xstrdup(name);
	q->port = port;
	q->cb = cb;
	q->arg = arg;
	q->hosts = mr_xcalloc(MX_HOSTS_MAX, sizeof(*q->hosts));
	switch (kind) {
	case DEST_LITERAL:
		r = mr_xcalloc(1, sizeof(*r));
		r->addrs = mr_xcalloc(1, sizeof(*r->addrs));
		if (mx_parse_ip(name, port, &r->addrs[0].ss,
		    &r->addrs[0].sslen) == -1) {
			free(r->addrs);
			free(r);
			r = mx_failf(MR_DS_PERM, "5.1.2 bad address literal",
			    name, NULL);
		} else if (self_listens(&r->addrs[0].ss)) {
			free(r->addrs);
			free(r);
			r = mx_loop(name);
		} else {
			r->addrs[0].host = mr_xstrdup(name);
			r->naddrs = 1;
		}
		mx_defer(q, r);
		break;
	case DEST_HOST:
		mx_add_host(q, name, 0);
		mx_start_hosts(q);
		break;
	case DEST_MX:
		rc = ub_resolve_async(ub, name, RR_MX, 1, q, mx_on_mx,
		    &q->mxid);
		if (rc != 0)
			mx_defer(q, mx_failf(MR_DS_TEMP, "DNS lookup of MX for",
			    name, ub_strerror(rc)));
		else
			q->mxactive = 1;
		break;
	}
	return q;
}

void
mx_cancel(struct mx_query *q)
{
	size_t i, f;

	if (q == NULL)
		return;
	dane_cancel(q->dr);
	if (q->mxactive)
		(void)ub_cancel(ub, q->mxid);
	for (i = 0; i < q->nhosts; i++)
		for (f = 0; f < 2; f++)
			if (q->hosts[i].sub[f].active)
				(void)ub_cancel(ub, q->hosts[i].sub[f].id);
	mx_query_free(q);
}

/*
 * Decodes an uncompressed wire-format name (libunbound hands MX targets
 * over decompressed) into out as "a.b.c", "" for the root.  Only host
 * name characters are accepted.  -1 on anything else.
 */
static int
mx_wire_name(const unsigned char *p, size_t len, char *out, size_t outsz)
{
	size_t i = 0, o = 0, k;
	unsigned l;

	for (;;) {
		if (i >= len)
			return -1;
		l = p[i++];
		if (l == 0)
			break;
		if (l > 63 || i + l > len || o + l + 2 > outsz)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (k = 0; k < l; k++) {
			unsigned char c = p[i + k];

			if (!isalnum(c) && c != '-' && c != '_')
				return -1;
			out[o++] = (char)tolower(c);
		}
		i += l;
	}
	out[o] = '\0';
	return o > 253 ? -1 : 0;
}

static int
mx_host_cmp(const void *a, const void *b)
{
	const struct mx_host *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	if (x->rnd != y->rnd)
		return x->rnd < y->rnd ? -1 : 1;
	return 0;
}

/* Fills the host list from an MX answer; returns a final result for
 * a null MX, NULL to go on. */
static struct mx_result *
mx_parse_answer(struct mx_query *q, struct ub_result *res)
{
	char name[256];
	size_t i;
	unsigned pref;
	int nulls = 0, n = 0;

	for (i = 0; res->data[i] != NULL; i++) {
		const unsigned char *d = (const unsigned char *)res->data[i];

		n++;
		if (res->len[i] < 3) {
			nulls = -1000;	/* malformed: not a null MX */
			continue;
		}
		pref = (unsigned)d[0] << 8 | d[1];
		if (mx_wire_name(d + 2, (size_t)res->len[i] - 2, name,
		    sizeof(name)) == -1) {
			mr_warn("resolver: MX for %s: bad target ignored",
			    q->name);
			continue;
		}
		if (name[0] == '\0') {
			nulls++;
			continue;
		}
		mx_add_host(q, name, pref);
	}
	if (nulls == 1 && n == 1)
		return mx_failf(MR_DS_PERM, "5.1.10 domain", q->name,
		    "accepts no mail (null MX, RFC 7505)");
	qsort(q->hosts, q->nhosts, sizeof(*q->hosts), mx_host_cmp);
	return NULL;
}

static void
mx_on_mx(void *arg, int err, struct ub_result *res)
{
	struct mx_query *q = arg;
	struct mx_result *r = NULL;

	q->mxactive = 0;
	if (err != 0)
		r = mx_failf(MR_DS_TEMP, "DNS lookup of MX for", q->name,
		    ub_strerror(err));
	else if (q->dane && res->bogus)	/* RFC 7672 2.1.1 */
		r = mx_failf(MR_DS_TEMP, "4.7.5 DNS lookup of MX for", q->name,
		    "DNSSEC validation failed (bogus answer)");
	else if (res->rcode == RCODE_NXDOMAIN)
		r = mx_failf(MR_DS_PERM, "5.1.2 domain", q->name,
		    "not found (NXDOMAIN)");
	else if (res->rcode != 0)
		r = mx_failf(MR_DS_TEMP, "DNS lookup of MX for", q->name,
		    "server failure");
	else if (!res->havedata) {
		/* RFC 5321 5.1: no MX, the domain is its own mail host */
		q->implicit = 1;
		mx_add_host(q, q->name, 0);
	} else
		r = mx_parse_answer(q, res);
	if (res != NULL && res->secure)
		q->mxsec = DANE_SECURE;
	ub_resolve_free(res);
	if (r != NULL) {
		mx_finish(q, r);
		return;
	}
	if (q->nhosts == 0) {
		mx_finish(q, mx_failf(MR_DS_TEMP, "no usable MX host for",
		    q->name, NULL));
		return;
	}
	q->pending = 0;
	mx_start_hosts(q);
}

static void
mx_take_addrs(struct mx_query *q, struct mx_host *h, int fam,
    struct ub_result *res)
{
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	struct mx_addr *a;
	size_t i;

	for (i = 0; res->data[i] != NULL && h->naddr[fam] < MX_ADDRS_MAX;
	    i++) {
		a = &h->addr[fam][h->naddr[fam]];
		memset(a, 0, sizeof(*a));
		if (fam == 0 && res->len[i] == 4) {
			sin = (struct sockaddr_in *)&a->ss;
			sin->sin_family = AF_INET;
			sin->sin_port = htons(q->port);
			memcpy(&sin->sin_addr, res->data[i], 4);
			a->sslen = sizeof(*sin);
		} else if (fam == 1 && res->len[i] == 16) {
			sin6 = (struct sockaddr_in6 *)&a->ss;
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(q->port);
			memcpy(&sin6->sin6_addr, res->data[i], 16);
			a->sslen = sizeof(*sin6);
		} else
			continue;
		a->host = mr_xstrdup(h->name);
		a->dnssec = q->dane && q->mxsec == DANE_SECURE &&
		    h->sec[fam] == DANE_SECURE ? DANE_SECURE : DANE_INSECURE;
		h->naddr[fam]++;
	}
}

static void
mx_on_addr(void *arg, int err, struct ub_result *res)
{
	struct mx_sub *s = arg;
	struct mx_query *q = s->q;
	int fam = s->rrtype == RR_A ? 0 : 1;

	s->active = 0;
	q->pending--;
	if (err != 0)
		mx_note_temp(q, s->h->name, ub_strerror(err));
	else if (q->dane && res->bogus)
		mx_note_temp(q, s->h->name, "4.7.5 DNSSEC validation failed "
		    "(bogus answer)");
	else if (res->rcode != 0 && res->rcode != RCODE_NXDOMAIN)
		mx_note_temp(q, s->h->name, "server failure");
	else if (res->havedata) {
		s->h->sec[fam] = res->secure ? DANE_SECURE : DANE_INSECURE;
		mx_take_addrs(q, s->h, fam, res);
	}
	if (res != NULL)
		ub_resolve_free(res);
	if (q->pending == 0)
		mx_complete(q);
}
