/*
 * client_limit.c - the clients of one virtual server, by address: how
 * many connections each has open and how many it made in the current
 * minute (limits client-connections and client-connection-rate; what
 * Postfix's anvil counts).
 *
 * Security: the key is the client address alone -- behind a
 * proxy-protocol listener the one the PROXY header carried.  Memory is
 * bounded: an entry with an open connection stays (there are never more
 * of those than sessions), and of the entries without one at most
 * IDLE_MAX are kept, the least recently active forgotten first, so a
 * client rotating through many addresses costs a fixed amount.  The hash
 * is keyed with a random seed so that no client can choose addresses
 * that land in one chain.
 */
#include "config.h"

#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "smtpd.h"
#include "util.h"

#define BUCKETS		4096
#define IDLE_MAX	8192
#define WINDOW_MS	(60 * 1000)	/* the rate is per minute */

struct client {
	struct client	*hnext;		/* hash chain */
	struct client	*inext;		/* idle list, most recent first */
	struct client	*iprev;
	int		 family;
	unsigned char	 addr[16];
	unsigned	 open;		/* connections now */
	unsigned	 rate;		/* connections in the window */
	uint64_t	 window;	/* its start, ms (monotonic) */
};

struct client_table {
	struct client	*bucket[BUCKETS];
	struct client	*idle_head;
	struct client	*idle_tail;
	size_t		 nidle;
	uint64_t	 seed;
};

struct client_table *
client_table_new(void)
{
	struct client_table *t = mr_xcalloc(1, sizeof(*t));

	/* called before the sandbox; the clock will do if this fails */
	if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed))
		t->seed = mr_now_ms() ^ (uint64_t)time(NULL) << 20;
	return t;
}

void
client_table_free(struct client_table *t)
{
	struct client *c, *next;
	size_t i;

	for (i = 0; i < BUCKETS; i++)
		for (c = t->bucket[i]; c != NULL; c = next) {
			next = c->hnext;
			free(c);
		}
	free(t);
}

/* The address of sa as a key: 0, or -1 for a family not counted. */
static int
key(const struct sockaddr *sa, int *family, unsigned char addr[16])
{
	memset(addr, 0, 16);
	*family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    16);
	else
		return -1;
	return 0;
}

/* FNV-1a from a secret starting point. */
static size_t
hash(const struct client_table *t, int family, const unsigned char *addr)
{
	uint64_t h = t->seed ^ 14695981039346656037ULL;
	size_t i;

	h = (h ^ (uint64_t)family) * 1099511628211ULL;
	for (i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 1099511628211ULL;
	return (size_t)(h ^ h >> 32) % BUCKETS;
}

static void
idle_unlink(struct client_table *t, struct client *c)
{
	if (c->iprev != NULL)
		c->iprev->inext = c->inext;
	else
		t->idle_head = c->inext;
	if (c->inext != NULL)
		c->inext->iprev = c->iprev;
	else
		t->idle_tail = c->iprev;
	c->inext = c->iprev = NULL;
	t->nidle--;
}

/* Forgets the least recently active idle client. */
static void
forget_oldest(struct client_table *t)
{
	struct client *c = t->idle_tail, **pp;

	if (c == NULL)
		mr_panic("client_limit: no idle client to forget");
	t->idle_tail = c->iprev;
	if (t->idle_tail != NULL)
		t->idle_tail->inext = NULL;
	else
		t->idle_head = NULL;
	t->nidle--;
	for (pp = &t->bucket[hash(t, c->family, c->addr)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			free(c);
			return;
		}
	mr_panic("client_limit: idle client not in its chain");
}

/* Idle clients over IDLE_MAX, and those whose minute has passed (from
 * the old end, a few per call). */
static void
trim(struct client_table *t, uint64_t now)
{
	int n;

	while (t->nidle > IDLE_MAX && t->idle_tail != NULL)
		forget_oldest(t);
	for (n = 0; n < 8 && t->idle_tail != NULL &&
	    now - t->idle_tail->window >= WINDOW_MS; n++)
		forget_oldest(t);
}

struct client *
client_connect(struct client_table *t, const struct sockaddr *sa,
    unsigned *open, unsigned *rate)
{
	unsigned char addr[16];
	uint64_t now = mr_now_ms();
	struct client *c;
	size_t h;
	int family;

	if (key(sa, &family, addr) == -1)
		return NULL;
	trim(t, now);
	h = hash(t, family, addr);
	for (c = t->bucket[h]; c != NULL; c = c->hnext)
		if (c->family == family && memcmp(c->addr, addr, 16) == 0)
			break;
	if (c == NULL) {
		c = mr_xcalloc(1, sizeof(*c));
		c->family = family;
		memcpy(c->addr, addr, 16);
		c->window = now;
		c->hnext = t->bucket[h];
		t->bucket[h] = c;
	} else if (c->open == 0)
		idle_unlink(t, c);
	if (now - c->window >= WINDOW_MS) {
		c->window = now;
		c->rate = 0;
	}
	if (c->rate < UINT_MAX)
		c->rate++;
	c->open++;
	*open = c->open;
	*rate = c->rate;
	return c;
}

void
client_done(struct client_table *t, struct client *c)
{
	if (c->open == 0)
		mr_panic("client_done: no connection open");
	if (--c->open > 0)
		return;
	c->iprev = NULL;
	if ((c->inext = t->idle_head) != NULL)
		t->idle_head->iprev = c;
	else
		t->idle_tail = c;
	t->idle_head = c;
	t->nidle++;
	trim(t, mr_now_ms());
}
