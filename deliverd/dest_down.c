/*
 * dest_down.c - next hops that are down.  When a session has failed at
 * every address of its destination (refused or timed out connection,
 * no greeting or a 4xx/5xx one, a failed TLS handshake) and no other
 * session got a message through to that destination while it ran, the
 * destination is marked down for the server's first retry interval.
 * While the mark holds, deliverd makes no connection to it: each of its
 * deliveries is deferred at once with "delivery temporarily suspended"
 * and the error that marked it, and queued retries the message on its
 * schedule.  A message that gets through (a session started before the
 * mark), a flush (MR_D_FLUSH from queued: mailrootctl flush, ETRN,
 * mailroot-sendmail -q), a reload or the end of the interval lifts it.
 * The mark is a time and one text in struct dest, which dest_gc keeps
 * while the mark holds: nothing per waiting message.
 *
 * The clock is CLOCK_MONOTONIC in seconds.  For the tests only, the
 * environment variable MAILROOT_TEST_CLOCK may name a file holding a
 * number of seconds to add, the file queued reads for its own clock
 * (queued/queue_clock.c), so that a test moves both clocks together.
 *
 * Security: the test clock comes from the environment root started
 * mailrootd with; no peer or client can turn it on.  Its file is read
 * with the bounded mr_read_file and parsed as one decimal number.  The
 * texts kept are the session's own, already cleaned (smtp_client.c).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "conf.h"
#include "ipc_msg.h"
#include "log.h"
#include "util.h"
#include "deliverd.h"

#define DOWN_DEFAULT	900	/* seconds, without a retry setting */
#define OFFSET_MAX	(10LL * 365 * 86400)

static long long	 clock_offset;

/* The test clock's offset, or the one read last if the file says none. */
static long long
test_offset(void)
{
	const char *path = getenv("MAILROOT_TEST_CLOCK");
	long long v;
	char *text, *end;
	size_t len;

	if (path == NULL || path[0] == '\0')
		return 0;
	if ((text = mr_read_file(path, 64, &len)) == NULL)
		return clock_offset;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno == 0 && end != text && (*end == '\0' || *end == '\n') &&
	    v >= 0 && v <= OFFSET_MAX)
		clock_offset = v;
	free(text);
	return clock_offset;
}

uint64_t
dest_clock(void)
{
	return mr_now_ms() / 1000 + (uint64_t)test_offset();
}

/* The test clock's file, for the sandbox to let it be read; or NULL. */
const char *
dest_clock_file(void)
{
	const char *path = getenv("MAILROOT_TEST_CLOCK");

	return path != NULL && path[0] == '/' ? path : NULL;
}

void
dest_lift(struct dest *ds, const char *how)
{
	if (ds->down_until == 0)
		return;
	mr_info("next hop %s: no longer suspended (%s)", ds->name, how);
	ds->down_until = 0;
	free(ds->down_why);
	ds->down_why = NULL;
}

int
dest_is_down(struct dest *ds)
{
	if (ds->down_until == 0)
		return 0;
	if (dest_clock() < ds->down_until)
		return 1;
	dest_lift(ds, "its suspension is over");
	return 0;
}

void
dest_mark_down(struct dest *ds, const char *why)
{
	const struct mr_delivery *dl = &ds->srv->delivery;
	unsigned secs = dl->nretry > 0 && dl->retry[0] > 0 ? dl->retry[0] :
	    DOWN_DEFAULT;

	if (ds->down_until == 0)
		mr_warn("next hop %s is down: delivery to it suspended for "
		    "%u s (%s)", ds->name, secs, why);
	free(ds->down_why);
	ds->down_why = mr_xstrdup(why);
	ds->down_until = dest_clock() + secs;
}

/* The temporary failure of a delivery while ds is down. */
void
dest_down_text(const struct dest *ds, struct mr_buf *b)
{
	mr_buf_printf(b, "4.4.1 delivery to %s temporarily suspended: %s",
	    ds->name, ds->down_why ? ds->down_why : "next hop down");
}

/*
 * Does a flush of server si (MR_FLUSH_ALL: any) and domain ("": every
 * one) lift ds?  A domain names its MX destination; a smart host, a
 * route or an address literal may carry any domain's mail, so a flush
 * of a domain lifts those too.
 */
int
dest_flush_match(const struct dest *ds, uint32_t si, const char *domain)
{
	if (si != MR_FLUSH_ALL && ds->srvidx != si)
		return 0;
	return domain[0] == '\0' || ds->kind != DEST_MX ||
	    strcasecmp(ds->name, domain) == 0;
}
