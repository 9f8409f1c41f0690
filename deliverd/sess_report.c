/*
 * sess_report.c - what deliverd tells queued about its outbound work:
 * each session's start, its state as it goes and its end (MR_D_SESSION,
 * for mailrootctl sessions), and the counters of the metrics
 * (MR_D_COUNT: connections, bytes of messages sent, DNS lookups).
 * smtp_client.c says when; this file encodes, and coalesces: a session's
 * start and end go at once, its state as it goes by one timer pass for
 * all sessions at most REPORT_DELAY_MS later, and the counters as sums
 * per server and counter at that pass, before a session's end and at
 * shutdown (report_flush), so none is lost while queued is up.
 *
 * Security: the host name comes from the configuration or a DNS answer
 * (mx_resolve.c checked it looks like a host name), the address from
 * inet_ntop; both are cut to the sizes queued's decoder accepts and any
 * control byte becomes '?', so queued never drops deliverd for a frame
 * built here.  A frame is queued in memory: a session never waits for it;
 * while queued is down nothing is sent, and smtp_report_all() tells a new
 * queued of every session still open.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "deliverd.h"

#define REPORT_DELAY_MS	200
#define NCOUNTERS	(MR_DC_MAX + 1)

static struct event	*tick;		/* the pass REPORT_DELAY_MS later */
static uint64_t		*sums;		/* nservers x NCOUNTERS, unsent */
static size_t		 nsums;
static int		 sums_due;	/* a sum is not zero */

/* s cut to max bytes, control bytes as '?', into out[max + 1]. */
static const char *
clean(char *out, size_t max, const char *s)
{
	size_t i;

	for (i = 0; i < max && s[i] != '\0'; i++) {
		out[i] = s[i];
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			out[i] = '?';
	}
	out[i] = '\0';
	return out;
}

void
report_session(const struct osess_report *r)
{
	struct mr_ipc *c = deliverd_queued();
	struct mr_buf b;
	char host[255 + 1], addr[64 + 1], cmd[MR_SESS_CMD_MAX + 1];

	if (c == NULL)
		return;		/* a new queued hears of it at reconnect */
	mr_buf_init(&b);
	mr_buf_put_u32(&b, r->op);
	mr_buf_put_u64(&b, r->id);
	mr_buf_put_u32(&b, (uint32_t)r->srvidx);
	mr_buf_put_str(&b, clean(host, sizeof(host) - 1, r->host));
	mr_buf_put_str(&b, clean(addr, sizeof(addr) - 1, r->addr));
	mr_buf_put_u32(&b, r->port <= 65535 ? r->port : 0);
	mr_buf_put_u32(&b, r->state);
	mr_buf_put_str(&b, clean(cmd, sizeof(cmd) - 1, r->command));
	mr_buf_put_u32(&b, r->sent);
	mr_buf_put_u64(&b, (uint64_t)r->start);
	(void)mr_ipc_sendb(c, MR_D_SESSION, -1, &b);
	mr_buf_free(&b);
}

static void
tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	smtp_report_due();
	report_flush();
}

/* The next pass runs at most REPORT_DELAY_MS from now. */
void
report_later(void)
{
	struct timeval tv = { 0, REPORT_DELAY_MS * 1000 };

	if (tick == NULL &&
	    (tick = evtimer_new(deliverd_base(), tick_cb, NULL)) == NULL)
		mr_panic("deliverd: evtimer_new failed");
	if (!evtimer_pending(tick, NULL) && evtimer_add(tick, &tv) == -1)
		mr_panic("deliverd: evtimer_add failed");
}

static void
send_count(struct mr_ipc *c, size_t srvidx, uint32_t counter,
    uint64_t amount)
{
	struct mr_buf b;

	mr_buf_init(&b);
	mr_buf_put_u32(&b, (uint32_t)srvidx);
	mr_buf_put_u32(&b, counter);
	mr_buf_put_u64(&b, amount);
	(void)mr_ipc_sendb(c, MR_D_COUNT, -1, &b);
	mr_buf_free(&b);
}

/* Adds to the sum sent at the next pass or flush. */
void
report_count(size_t srvidx, uint32_t counter, uint64_t amount)
{
	size_t i;

	if (amount == 0 || counter >= NCOUNTERS)
		return;
	if (sums == NULL) {
		nsums = deliverd_config()->nservers * NCOUNTERS;
		sums = mr_xcalloc(nsums, sizeof(*sums));
	}
	i = srvidx * NCOUNTERS + counter;
	if (srvidx >= nsums / NCOUNTERS || i >= nsums)
		return;
	sums[i] += amount;
	sums_due = 1;
	report_later();
}

/* Every sum not sent yet goes now, one frame each; while queued is down
 * they are lost with queued's counters anyway. */
void
report_flush(void)
{
	struct mr_ipc *c = deliverd_queued();
	size_t i;

	if (!sums_due)
		return;
	sums_due = 0;
	for (i = 0; i < nsums; i++) {
		if (sums[i] == 0)
			continue;
		if (c != NULL)
			send_count(c, i / NCOUNTERS, (uint32_t)(i % NCOUNTERS),
			    sums[i]);
		sums[i] = 0;
	}
}

void
report_fini(void)
{
	if (tick != NULL)
		event_free(tick);
	tick = NULL;
	free(sums);
	sums = NULL;
	nsums = 0;
	sums_due = 0;
}
