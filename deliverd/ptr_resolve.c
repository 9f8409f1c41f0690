/*
 * ptr_resolve.c - the reverse DNS lookups smtpd asks for (through queued,
 * MR_R_PTR): the PTR names of a client address, each confirmed by its A
 * or AAAA records, answered with MR_R_PTR_ANSWER.
 *
 * deliverd does them because it is the process that may use the network
 * and has a resolver: smtpd may open no socket and no file, queued only
 * AF_UNIX sockets.  The lookups use a libunbound context of their own,
 * made like mx_resolve.c's before privileges are dropped (it reads
 * /etc/resolv.conf, or forwards to the configured `resolver'), driven
 * from the libevent loop, so a slow DNS server holds up no delivery.
 *
 * Security: DNS answers are untrusted input.  A PTR name is decoded with
 * bounds checks and must look like a host name; at most NAMES_MAX names
 * are checked, at most INFLIGHT_MAX lookups run at once (beyond that the
 * answer is "failed" at once), and one that has not finished in
 * TIMEOUT seconds is cancelled and answered "failed".  A name counts as
 * confirmed only when one of its own addresses is the client's: the
 * owner of an address controls its PTR record, not the A records of the
 * names it points at.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <unbound.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "util.h"
#include "deliverd.h"

#define NAMES_MAX	4	/* PTR names checked per address */
#define INFLIGHT_MAX	512
#define TIMEOUT		5	/* seconds */
#define NEG_TTL_MAX	3600	/* "no name" is remembered at most this */
#define RR_A		1
#define RR_PTR		12
#define RR_AAAA		28
#define RCODE_NXDOMAIN	3

struct ptr_query;

struct ptr_fwd {		/* one PTR name's A or AAAA lookup */
	struct ptr_query	*q;
	char			 name[MR_PTR_NAME_MAX + 1];
	int			 id;
	int			 active;
	int			 confirmed;
	int			 failed;
	uint32_t		 ttl;
};

struct ptr_query {
	TAILQ_ENTRY(ptr_query)	 entry;
	uint64_t		 req;
	char			 ip[INET6_ADDRSTRLEN];
	int			 family;
	unsigned char		 addr[16];
	int			 id;		/* the PTR lookup */
	int			 active;
	uint32_t		 ttl;
	struct ptr_fwd		 fwd[NAMES_MAX];
	size_t			 nfwd;
	unsigned		 pending;
	struct event		*timer;
};

static TAILQ_HEAD(, ptr_query) queries = TAILQ_HEAD_INITIALIZER(queries);
static size_t		 nqueries;
static struct ub_ctx	*ub;
static struct event	*ub_ev;

static void
ptr_readable(evutil_socket_t fd, short ev, void *arg)
{
	int rc;

	(void)fd;
	(void)ev;
	(void)arg;
	if ((rc = ub_process(ub)) != 0)
		mr_warn("reverse resolver: %s", ub_strerror(rc));
}

/*
 * Clients are often on the LAN (the IIS use: printers, web servers) or
 * on loopback: their reverse names are asked of the resolver too, not
 * answered "no such name" by libunbound's built-in empty zones for
 * private and loopback ranges (RFC 6303).  /etc/hosts still names
 * 127.0.0.1 with "system".
 */
static int
ptr_zones(void)
{
	static const char *const zones[] = { "localhost. transparent",
	    "127.in-addr.arpa. transparent",
	    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.ip6.arpa. transparent", NULL };
	size_t i;
	int rc;

	if ((rc = ub_ctx_set_option(ub, "unblock-lan-zones:", "yes")) != 0 ||
	    (rc = ub_ctx_set_option(ub, "insecure-lan-zones:", "yes")) != 0)
		return rc;
	for (i = 0; zones[i] != NULL; i++)
		if ((rc = ub_ctx_set_option(ub, "local-zone:", zones[i])) != 0)
			return rc;
	return 0;
}

/* As mx_init: "system" (resolv.conf, hosts) or "IP@PORT" (that
 * forwarder alone). */
int
ptr_init(struct event_base *base, const char *resolver)
{
	int rc;

	if ((ub = ub_ctx_create()) == NULL) {
		mr_err("reverse resolver: cannot create a libunbound context");
		return -1;
	}
	if ((rc = ub_ctx_async(ub, 1)) != 0 ||
	    (rc = ub_ctx_set_option(ub, "do-not-query-localhost:", "no")) != 0)
		goto fail;
	if ((rc = ptr_zones()) != 0)
		goto fail;
	if (resolver == NULL || strcmp(resolver, "system") == 0) {
		if ((rc = mx_system_resolver(ub)) != 0)
			goto fail;
	} else if ((rc = ub_ctx_set_fwd(ub, resolver)) != 0)
		goto fail;
	ub_ev = event_new(base, ub_fd(ub), EV_READ | EV_PERSIST,
	    ptr_readable, NULL);
	if (ub_ev == NULL || event_add(ub_ev, NULL) == -1) {
		mr_err("reverse resolver: cannot watch its descriptor");
		return -1;
	}
	return 0;
fail:
	mr_err("reverse resolver \"%s\": %s", resolver ? resolver : "system",
	    ub_strerror(rc));
	return -1;
}

static void
query_free(struct ptr_query *q)
{
	size_t i;

	if (q->active)
		(void)ub_cancel(ub, q->id);
	for (i = 0; i < q->nfwd; i++)
		if (q->fwd[i].active)
			(void)ub_cancel(ub, q->fwd[i].id);
	if (q->timer != NULL)
		event_free(q->timer);
	TAILQ_REMOVE(&queries, q, entry);
	nqueries--;
	free(q);
}

void
ptr_fini(void)
{
	struct ptr_query *q;

	while ((q = TAILQ_FIRST(&queries)) != NULL)
		query_free(q);
	if (ub_ev != NULL)
		event_free(ub_ev);
	ub_ev = NULL;
	if (ub != NULL)
		ub_ctx_delete(ub);
	ub = NULL;
}

static void
send_answer(uint64_t req, int status, uint32_t ttl, const char *name)
{
	struct mr_ipc *c = deliverd_queued();
	struct mr_buf b;

	if (c == NULL)
		return;		/* smtpd times the lookup out */
	mr_buf_init(&b);
	mr_buf_put_u64(&b, req);
	mr_buf_put_u32(&b, (uint32_t)status);
	mr_buf_put_u32(&b, ttl > MR_PTR_TTL_MAX ? MR_PTR_TTL_MAX : ttl);
	mr_buf_put_str(&b, name);
	mr_ipc_sendb(c, MR_R_PTR_ANSWER, -1, &b);
	mr_buf_free(&b);
}

static void
finish(struct ptr_query *q, int status, const char *name)
{
	if (status == MR_PTR_FAIL)
		mr_info("reverse lookup of [%s] failed", q->ip);
	send_answer(q->req, status, status == MR_PTR_FAIL ? 0 : q->ttl, name);
	query_free(q);
}

static void
timed_out(evutil_socket_t fd, short ev, void *arg)
{
	struct ptr_query *q = arg;

	(void)fd;
	(void)ev;
	mr_info("reverse lookup of [%s]: no answer in %d seconds", q->ip,
	    TIMEOUT);
	finish(q, MR_PTR_FAIL, "");
}

/* "4.0.0.127.in-addr.arpa." or the 32 nibbles of IPv6 in "ip6.arpa." */
static void
reverse_name(const struct ptr_query *q, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *a = q->addr;
	size_t o = 0;
	int i;

	if (q->family == AF_INET) {
		(void)snprintf(out, len, "%u.%u.%u.%u.in-addr.arpa.", a[3],
		    a[2], a[1], a[0]);
		return;
	}
	for (i = 15; i >= 0 && o + 4 < len; i--) {
		out[o++] = hex[a[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = '.';
	}
	(void)snprintf(out + o, len - o, "ip6.arpa.");
}

/* An uncompressed wire-format name into "a.b.c"; -1 unless it is a host
 * name (mr_msg_hostname, so that the answer frame decodes). */
static int
wire_name(const unsigned char *p, size_t len, char *out, size_t outsz)
{
	size_t i = 0, o = 0, k;
	unsigned l;

	for (;;) {
		if (i >= len)
			return -1;
		if ((l = p[i++]) == 0)
			break;
		if (l > 63 || i + l > len || o + l + 2 > outsz)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (k = 0; k < l; k++)
			out[o++] = (char)tolower(p[i + k]);
		i += l;
	}
	out[o] = '\0';
	return mr_msg_hostname(out) ? 0 : -1;
}

static void	on_fwd(void *, int, struct ub_result *);

/* The verdict once every forward lookup is in: the first confirmed name
 * in the PTR's order; else "failed" if a lookup failed (the name might
 * have confirmed); else "unconfirmed" with the first name. */
static void
conclude(struct ptr_query *q)
{
	size_t i;
	int failed = 0;

	for (i = 0; i < q->nfwd; i++) {
		if (q->fwd[i].confirmed) {
			if (q->fwd[i].ttl < q->ttl)
				q->ttl = q->fwd[i].ttl;
			finish(q, MR_PTR_OK, q->fwd[i].name);
			return;
		}
		failed |= q->fwd[i].failed;
	}
	if (failed)
		finish(q, MR_PTR_FAIL, "");
	else if (q->nfwd == 0) {
		if (q->ttl > NEG_TTL_MAX)
			q->ttl = NEG_TTL_MAX;
		finish(q, MR_PTR_NONE, "");
	}
	else
		finish(q, MR_PTR_UNCONFIRMED, q->fwd[0].name);
}

static void
start_fwd(struct ptr_query *q)
{
	struct ptr_fwd *f;
	size_t i;

	for (i = 0; i < q->nfwd; i++) {
		f = &q->fwd[i];
		f->q = q;
		if (ub_resolve_async(ub, f->name, q->family == AF_INET ?
		    RR_A : RR_AAAA, 1, f, on_fwd, &f->id) != 0) {
			f->failed = 1;
			continue;
		}
		f->active = 1;
		q->pending++;
	}
	if (q->pending == 0)
		conclude(q);
}

/* The PTR names, distinct, at most NAMES_MAX; bad ones skipped. */
static void
take_names(struct ptr_query *q, const struct ub_result *res)
{
	char name[MR_PTR_NAME_MAX + 2];
	size_t i, k;

	for (i = 0; res->data[i] != NULL && q->nfwd < NAMES_MAX; i++) {
		if (res->len[i] <= 0 ||
		    wire_name((const unsigned char *)res->data[i],
		    (size_t)res->len[i], name, sizeof(name)) == -1 ||
		    strlen(name) > MR_PTR_NAME_MAX) {
			mr_info("reverse lookup of [%s]: a bad PTR name "
			    "ignored", q->ip);
			continue;
		}
		for (k = 0; k < q->nfwd; k++)
			if (strcmp(q->fwd[k].name, name) == 0)
				break;
		if (k == q->nfwd)
			(void)snprintf(q->fwd[q->nfwd++].name,
			    sizeof(q->fwd[0].name), "%s", name);
	}
}

static void
on_ptr(void *arg, int err, struct ub_result *res)
{
	struct ptr_query *q = arg;

	q->active = 0;
	if (err != 0 || res == NULL) {
		mr_info("reverse lookup of [%s]: %s", q->ip, ub_strerror(err));
		finish(q, MR_PTR_FAIL, "");
	} else if (res->rcode != 0 && res->rcode != RCODE_NXDOMAIN) {
		mr_info("reverse lookup of [%s]: DNS error (rcode %d)", q->ip,
		    res->rcode);
		finish(q, MR_PTR_FAIL, "");
	} else {
		q->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
		if (res->havedata)
			take_names(q, res);
		start_fwd(q);
	}
	if (res != NULL)
		ub_resolve_free(res);
}

static void
on_fwd(void *arg, int err, struct ub_result *res)
{
	struct ptr_fwd *f = arg;
	struct ptr_query *q = f->q;
	size_t alen = q->family == AF_INET ? 4 : 16;
	size_t i;

	f->active = 0;
	q->pending--;
	if (err != 0 || res == NULL ||
	    (res->rcode != 0 && res->rcode != RCODE_NXDOMAIN))
		f->failed = 1;
	else if (res->havedata) {
		f->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
		for (i = 0; res->data[i] != NULL; i++)
			if ((size_t)res->len[i] == alen &&
			    memcmp(res->data[i], q->addr, alen) == 0)
				f->confirmed = 1;
	}
	if (res != NULL)
		ub_resolve_free(res);
	if (q->pending == 0)
		conclude(q);
}

static int
start(struct ptr_query *q)
{
	struct timeval tv = { TIMEOUT, 0 };
	char rname[80];

	reverse_name(q, rname, sizeof(rname));
	q->timer = evtimer_new(deliverd_base(), timed_out, q);
	if (q->timer == NULL || evtimer_add(q->timer, &tv) == -1)
		return -1;
	if (ub_resolve_async(ub, rname, RR_PTR, 1, q, on_ptr, &q->id) != 0)
		return -1;
	q->active = 1;
	return 0;
}

/* MR_R_PTR from queued: -1 if it does not decode (drop queued). */
int
ptr_request(const unsigned char *p, size_t len)
{
	struct mr_m_ptr m;
	struct ptr_query *q;
	const char *err;

	if (mr_msg_ptr(p, len, &m, &err) == -1) {
		mr_warn("queued: %s", err);
		return -1;
	}
	if (ub == NULL || nqueries >= INFLIGHT_MAX) {
		mr_warn("reverse lookup of [%s]: too many lookups at once",
		    m.addr);
		send_answer(m.req, MR_PTR_FAIL, 0, "");
		return 0;
	}
	q = mr_xcalloc(1, sizeof(*q));
	q->req = m.req;
	(void)snprintf(q->ip, sizeof(q->ip), "%s", m.addr);
	q->family = inet_pton(AF_INET, m.addr, q->addr) == 1 ? AF_INET :
	    AF_INET6;
	if (q->family == AF_INET6)
		(void)inet_pton(AF_INET6, m.addr, q->addr);
	TAILQ_INSERT_TAIL(&queries, q, entry);
	nqueries++;
	if (start(q) == -1)
		finish(q, MR_PTR_FAIL, "");
	return 0;
}
