/*
 * rdns.c - the name of a client, as the reverse DNS gives it and the
 * forward DNS confirms it, for `connection|relay allow|deny domain' and
 * `reverse-dns-lookup' (IIS-MODEL.md section 4).
 *
 * smtpd may not create a socket or open a file (its seccomp and Landlock
 * rules), so it asks: an MR_R_PTR frame goes to queued over the channel
 * smtpd already has, queued passes it on to deliverd, whose libunbound
 * context (made before it dropped privileges, using the configured
 * `resolver') looks the PTR up and each name's A or AAAA, and the
 * MR_R_PTR_ANSWER comes back the same way.  This file owns the cache of
 * those answers and the sessions waiting for one.
 *
 * Bounds: at most CACHE_MAX addresses are remembered (the least recently
 * used goes first), an answer is kept for its TTL (at most
 * MR_PTR_TTL_MAX; a failure for FAIL_TTL), at most INFLIGHT_MAX lookups
 * are asked at once (beyond that a lookup fails at once), and a lookup
 * not answered in WAIT_MAX seconds fails: no session waits longer, and
 * nothing waits on anything but the event loop.
 *
 * Security: an answer is untrusted input from another process; it is
 * decoded whole by mr_msg_ptr_answer (status, bounded TTL, host-name
 * syntax) before it is used, and one that does not decode drops queued.
 * An answer to a request we did not make (a late one, or one for a
 * previous channel) is ignored.  A name is only used when the forward
 * lookup confirmed it: a client controls its PTR record but not the A
 * records of the names it claims.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "smtpd.h"
#include "util.h"

#define CACHE_MAX	4096	/* addresses remembered */
#define INFLIGHT_MAX	256	/* lookups asked at once */
#define WAIT_MAX	7	/* seconds; deliverd gives up after 5 */
#define FAIL_TTL	30	/* seconds a failed lookup is remembered */
#define HASH_SIZE	1024

struct entry {
	TAILQ_ENTRY(entry)	 lru;		/* least recently used first */
	struct entry		*hnext;
	char			 ip[INET6_ADDRSTRLEN];
	uint64_t		 req;		/* != 0 while asked */
	struct event		*timer;		/* while asked */
	time_t			 expires;
	struct rdns_result	 res;
	TAILQ_HEAD(, rdns_wait)	 waiters;
};

struct rdns_wait {
	TAILQ_ENTRY(rdns_wait)	 entry;
	struct entry		*e;
	rdns_cb			 cb;
	void			*arg;
};

static TAILQ_HEAD(, entry) lru = TAILQ_HEAD_INITIALIZER(lru);
static struct entry	*hash[HASH_SIZE];
static size_t		 nentries, ninflight;
static uint64_t		 next_req;

static time_t
now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		mr_panic("rdns: clock_gettime failed");
	return ts.tv_sec;
}

static unsigned
hash_ip(const char *ip)
{
	unsigned h = 2166136261u;

	for (; *ip != '\0'; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % HASH_SIZE;
}

/* The address as text, an IPv4-mapped IPv6 address as IPv4. */
static int
addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in6 *sin6;
	const void *a;
	int af = sa->sa_family;

	if (af == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (af == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)sa;
		a = &sin6->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			af = AF_INET;
			a = sin6->sin6_addr.s6_addr + 12;
		}
	} else
		return -1;
	return inet_ntop(af, a, buf, (socklen_t)len) != NULL ? 0 : -1;
}

int
rdns_needed(const struct mr_server *srv)
{
	size_t i;

	if (srv->reverse_dns_lookup)
		return 1;
	for (i = 0; i < srv->connection.nrules; i++)
		if (srv->connection.rules[i].kind == MR_RULE_DOMAIN)
			return 1;
	for (i = 0; i < srv->relay.nrules; i++)
		if (srv->relay.rules[i].kind == MR_RULE_DOMAIN)
			return 1;
	return 0;
}

const char *
rdns_name(const struct rdns_result *r)
{
	return r != NULL && r->status == MR_PTR_OK ? r->name : NULL;
}

static struct entry *
find(const char *ip)
{
	struct entry *e;

	for (e = hash[hash_ip(ip)]; e != NULL; e = e->hnext)
		if (strcmp(e->ip, ip) == 0)
			return e;
	return NULL;
}

static void
entry_free(struct entry *e)
{
	struct entry **pp;

	for (pp = &hash[hash_ip(e->ip)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	TAILQ_REMOVE(&lru, e, lru);
	if (e->timer != NULL)
		event_free(e->timer);
	nentries--;
	free(e);
}

/* A new entry, the least recently used one that is not asked making
 * room; NULL when every one is asked (cannot happen: INFLIGHT_MAX is
 * far below CACHE_MAX). */
static struct entry *
entry_new(const char *ip)
{
	struct entry *e, *old;
	unsigned h = hash_ip(ip);

	if (nentries >= CACHE_MAX) {
		TAILQ_FOREACH(old, &lru, lru)
			if (old->req == 0)
				break;
		if (old == NULL)
			return NULL;
		entry_free(old);
	}
	e = mr_xcalloc(1, sizeof(*e));
	(void)snprintf(e->ip, sizeof(e->ip), "%s", ip);
	TAILQ_INIT(&e->waiters);
	e->hnext = hash[h];
	hash[h] = e;
	TAILQ_INSERT_TAIL(&lru, e, lru);
	nentries++;
	return e;
}

static const char *
status_word(int status)
{
	switch (status) {
	case MR_PTR_OK:
		return "confirmed";
	case MR_PTR_UNCONFIRMED:
		return "not confirmed by the forward lookup";
	case MR_PTR_NONE:
		return "no PTR record";
	default:
		return "lookup failed";
	}
}

/* The answer (or the failure) reaches every session waiting for it. */
static void
settle(struct entry *e, int status, unsigned ttl, const char *name)
{
	struct rdns_wait *w;

	e->req = 0;
	ninflight--;
	if (e->timer != NULL) {
		event_free(e->timer);
		e->timer = NULL;
	}
	e->res.status = status;
	(void)snprintf(e->res.name, sizeof(e->res.name), "%s", name);
	e->expires = now() + (time_t)ttl;
	mr_debug("rdns [%s]: %s%s%s (ttl %u)", e->ip, status_word(status),
	    name[0] != '\0' ? ": " : "", name, ttl);
	while ((w = TAILQ_FIRST(&e->waiters)) != NULL) {
		TAILQ_REMOVE(&e->waiters, w, entry);
		w->cb(w->arg, &e->res);
		free(w);
	}
}

static void
timed_out(evutil_socket_t fd, short ev, void *arg)
{
	struct entry *e = arg;

	(void)fd;
	(void)ev;
	mr_info("rdns [%s]: no answer in %d seconds", e->ip, WAIT_MAX);
	settle(e, MR_PTR_FAIL, FAIL_TTL, "");
}

/* Asks queued (and through it deliverd); 0, or -1 when it cannot. */
static int
ask(struct entry *e)
{
	struct timeval tv = { WAIT_MAX, 0 };
	struct mr_buf b;

	if (smtpd->queued == NULL || ninflight >= INFLIGHT_MAX)
		return -1;
	e->timer = evtimer_new(smtpd->base, timed_out, e);
	if (e->timer == NULL || evtimer_add(e->timer, &tv) == -1)
		return -1;
	e->req = ++next_req;
	ninflight++;
	mr_buf_init(&b);
	mr_buf_put_u64(&b, e->req);
	mr_buf_put_str(&b, e->ip);
	mr_ipc_sendb(smtpd->queued, MR_R_PTR, -1, &b);
	mr_buf_free(&b);
	return 0;
}

/*
 * The client's name: 1 with *now filled when it is known already (or
 * cannot be asked for: then MR_PTR_FAIL), else 0 with *wp set, and cb
 * runs once the answer is in (never from inside this call).
 */
int
rdns_lookup(const struct sockaddr *sa, rdns_cb cb, void *arg,
    struct rdns_result *res, struct rdns_wait **wp)
{
	char ip[INET6_ADDRSTRLEN];
	struct entry *e;
	struct rdns_wait *w;

	memset(res, 0, sizeof(*res));
	res->status = MR_PTR_FAIL;
	if (addr_text(sa, ip, sizeof(ip)) == -1)
		return 1;
	if ((e = find(ip)) != NULL && (e->req != 0 || now() < e->expires)) {
		TAILQ_REMOVE(&lru, e, lru);
		TAILQ_INSERT_TAIL(&lru, e, lru);
		if (e->req == 0) {
			*res = e->res;
			return 1;
		}
	} else {
		if (e == NULL && (e = entry_new(ip)) == NULL)
			return 1;
		if (ask(e) == -1) {
			mr_warn("rdns [%s]: cannot ask (%s)", ip,
			    smtpd->queued == NULL ? "queued is down" :
			    "too many lookups in flight");
			entry_free(e);
			return 1;
		}
	}
	w = mr_xcalloc(1, sizeof(*w));
	w->e = e;
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&e->waiters, w, entry);
	*wp = w;
	return 0;
}

void
rdns_cancel(struct rdns_wait *w)
{
	if (w == NULL)
		return;
	TAILQ_REMOVE(&w->e->waiters, w, entry);
	free(w);
}

/* MR_R_PTR_ANSWER from queued: -1 if it does not decode (drop queued). */
int
rdns_answer(const unsigned char *p, size_t len)
{
	struct mr_m_ptr_answer a;
	struct entry *e;
	const char *err;

	if (mr_msg_ptr_answer(p, len, &a, &err) == -1) {
		mr_warn("queued: %s", err);
		return -1;
	}
	TAILQ_FOREACH(e, &lru, lru)
		if (e->req != 0 && e->req == a.req)
			break;
	if (e == NULL)
		return 0;	/* late: it timed out already */
	settle(e, (int)a.status, a.status == MR_PTR_FAIL ? FAIL_TTL : a.ttl,
	    a.name);
	return 0;
}

/* queued went away: the lookups asked through it will not be answered. */
void
rdns_queued_lost(void)
{
	struct entry *e, *next;

	for (e = TAILQ_FIRST(&lru); e != NULL; e = next) {
		next = TAILQ_NEXT(e, lru);
		if (e->req != 0) {
			settle(e, MR_PTR_FAIL, 0, "");
			entry_free(e);
		}
	}
}

/*
 * The "from" clause of our Received field with reverse-dns-lookup, as
 * IIS wrote it: "from HELO ([IP])" when the client's confirmed name is
 * the one it gave in HELO; "([IP] unverified)" when it is not (with the
 * confirmed name before the address, if there is one); "([IP] RDNS
 * failed)" when the address has no name or the lookup failed.
 */
void
rdns_received_from(struct mr_buf *b, const struct rdns_result *r,
    const char *helo, const char *ip)
{
	const char *name = rdns_name(r);
	size_t n;

	if (helo[0] == '\0' && name != NULL)
		helo = name;
	if ((n = strlen(helo)) > 0 && helo[n - 1] == '.')
		n--;
	if (name != NULL && strlen(name) == n &&
	    strncasecmp(helo, name, n) == 0)
		mr_buf_printf(b, "Received: from %s ([%s])\r\n", helo, ip);
	else if (name != NULL)
		mr_buf_printf(b, "Received: from %s (%s [%s] unverified)\r\n",
		    helo, name, ip);
	else if (r->status == MR_PTR_UNCONFIRMED)
		mr_buf_printf(b, "Received: from %s ([%s] unverified)\r\n",
		    helo, ip);
	else
		mr_buf_printf(b, "Received: from %s ([%s] RDNS failed)\r\n",
		    helo, ip);
}
