/*
 * queue_clock.c - the time queued schedules by: the retry schedule,
 * expiry and the created stamp of every message read q_now().
 *
 * For the tests only, the environment variable MAILROOT_TEST_CLOCK may
 * name a file holding a number of seconds to add to the system time;
 * queued rereads it every CLOCK_POLL_MS and, when it changed, re-arms
 * every timer of the queue (queue_sched.c) against the new time, so a
 * test can live through days of retries in seconds.
 *
 * Security: only the environment mailrootd was started with reaches
 * queued, and only root starts mailrootd; no peer, client or file in a
 * mailroot can turn the test clock on.  When it is on, queued says so
 * in the log at start.  The file is read with the bounded mr_read_file
 * and parsed as one signed decimal number; anything else is ignored.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "queued.h"
#include "util.h"

#define CLOCK_POLL_MS	100
#define OFFSET_MAX	(10LL * 365 * 86400)	/* ten years */

static struct {
	const char	*path;		/* NULL: the system time */
	long long	 offset;
	struct event	*poll;
} clk;

time_t
q_now(void)
{
	return time(NULL) + (time_t)clk.offset;
}

/* The offset the file says, or the current one if it says nothing. */
static long long
read_offset(void)
{
	long long v;
	char *text, *end;
	size_t len;

	if ((text = mr_read_file(clk.path, 64, &len)) == NULL)
		return clk.offset;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || end == text || (*end != '\0' && *end != '\n') ||
	    v > OFFSET_MAX || v < -OFFSET_MAX)
		v = clk.offset;
	free(text);
	return v;
}

static void
poll_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval tv = { 0, CLOCK_POLL_MS * 1000 };
	long long v;

	(void)fd;
	(void)ev;
	(void)arg;
	if ((v = read_offset()) != clk.offset) {
		mr_info("test clock: %+lld s", v);
		clk.offset = v;
		sched_clock_changed();
	}
	evtimer_add(clk.poll, &tv);
}

/* Before the queue is recovered: the test clock, if the environment
 * asks for it. */
void
clock_init(void)
{
	struct timeval tv = { 0, CLOCK_POLL_MS * 1000 };

	if ((clk.path = getenv("MAILROOT_TEST_CLOCK")) == NULL ||
	    *clk.path == '\0') {
		clk.path = NULL;
		return;
	}
	clk.offset = read_offset();
	mr_warn("test clock in use (MAILROOT_TEST_CLOCK=%s, %+lld s): not "
	    "for production", clk.path, clk.offset);
	if ((clk.poll = evtimer_new(q->base, poll_cb, NULL)) == NULL ||
	    evtimer_add(clk.poll, &tv) == -1)
		mr_fatal("queued: cannot start the test clock");
}
