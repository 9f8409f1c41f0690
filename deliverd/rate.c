/*
 * rate.c - per-destination rate limits (`rate N per D' in the outbound
 * block or a remote domain): at most N messages to one destination in any
 * D seconds, counted as each transaction is about to start (a kept or a
 * new connection; deliverd.c, dlv_rate_ok).  The window slides: the start
 * times of the last N messages are kept (a ring), and the next may start
 * only when the oldest of them is D seconds old.  A message over the limit is not
 * tried (MR_DS_AGAIN): it waits in queued's queue, with no attempt
 * counted, and is offered again a few seconds later.
 *
 * Security: no outside input; the keys are destination keys deliverd.c
 * built, N is bounded by the configuration (MR_RATE_MAX), and a limit
 * whose window has passed is freed, so memory stays bounded by the
 * destinations with a recent message.
 */
#include "config.h"

#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "util.h"
#include "deliverd.h"

struct rate {
	char			*key;
	unsigned		 max;		/* N */
	uint64_t		 window;	/* D, in milliseconds */
	uint64_t		*t;		/* ring of max start times */
	size_t			 head;		/* oldest */
	size_t			 count;
};

static struct rate	**rates;	/* in no order */
static size_t		  nrates;

/* Milliseconds of CLOCK_MONOTONIC: a clock set back changes nothing. */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		mr_panic("rate: clock_gettime failed");
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Frees rates[i]; the last one takes its place. */
static void
rate_free(size_t i)
{
	struct rate *r = rates[i];

	rates[i] = rates[--nrates];
	free(r->key);
	free(r->t);
	free(r);
}

/* Frees the limits whose newest start is older than their window. */
static void
rate_gc(uint64_t now)
{
	const struct rate *r;
	size_t i = 0;

	while (i < nrates) {
		r = rates[i];
		if (r->count == 0 ||
		    r->t[(r->head + r->count - 1) % r->max] + r->window <= now)
			rate_free(i);
		else
			i++;
	}
}

static struct rate *
rate_get(const char *key, unsigned max, unsigned window)
{
	struct rate *r;
	size_t i;

	for (i = 0; i < nrates; i++)
		if (strcmp(rates[i]->key, key) == 0)
			break;
	/* a reload changed the limit: start afresh */
	if (i < nrates && (rates[i]->max != max ||
	    rates[i]->window != window * 1000ULL))
		rate_free(i);
	else if (i < nrates)
		return rates[i];
	r = mr_xcalloc(1, sizeof(*r));
	r->key = mr_xstrdup(key);
	r->max = max;
	r->window = window * 1000ULL;
	r->t = mr_xcalloc(max, sizeof(*r->t));
	rates = mr_xreallocarray(rates, nrates + 1,
	    sizeof(*rates));	/* NOLINT(bugprone-sizeof-expression) */
	rates[nrates++] = r;
	return r;
}

/*
 * One more message to the destination key, whose limit is max per
 * window seconds (max 0: none): 0 and counted, or -1 when it must wait.
 */
int
rate_take(const char *key, unsigned max, unsigned window)
{
	uint64_t now = now_ms();
	struct rate *r;

	if (max == 0)
		return 0;
	if (max > MR_RATE_MAX || window == 0)
		mr_panic("rate: %u per %u s out of range", max, window);
	rate_gc(now);
	r = rate_get(key, max, window);
	if (r->count == r->max) {
		if (r->t[r->head] + r->window > now)
			return -1;
		r->head = (r->head + 1) % r->max;	/* the oldest leaves */
		r->count--;
	}
	r->t[(r->head + r->count) % r->max] = now;
	r->count++;
	return 0;
}

/* The message last counted for key was not sent after all. */
void
rate_untake(const char *key)
{
	size_t i;

	for (i = 0; i < nrates; i++)
		if (strcmp(rates[i]->key, key) == 0) {
			if (rates[i]->count > 0)
				rates[i]->count--;
			return;
		}
}

void
rate_fini(void)
{
	while (nrates > 0)
		rate_free(nrates - 1);
	free(rates);
	rates = NULL;
}
