/*
 * child.c - the common start of smtpd, queued and deliverd.
 *
 * Security: the configuration comes from mailrootd's sealed snapshot,
 * the very bytes mailrootd checked, not from the file (which may have
 * changed since).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "child.h"
#include "conf.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#define SNAPSHOT_MAX	(4 << 20)

static void
usage(const char *proc)
{
	fprintf(stderr, "usage: %s -f name [-d] (started by mailrootd)\n",
	    proc);
	exit(2);
}

struct mr_config *
mr_child_start(const char *proc, int argc, char *argv[])
{
	struct mr_config *cfg;
	const char *name = NULL;
	char *text;
	size_t len;
	int ch, fg = 0;

	while ((ch = getopt(argc, argv, "df:")) != -1) {
		switch (ch) {
		case 'd':
			fg = 1;
			break;
		case 'f':
			name = optarg;
			break;
		default:
			usage(proc);
		}
	}
	if (name == NULL || optind != argc)
		usage(proc);
	mr_log_init(proc, fg);
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR ||
	    signal(SIGHUP, SIG_IGN) == SIG_ERR)
		mr_fatal("%s: signal: %s", proc, strerror(errno));
	text = mr_read_fd(MR_FD_CONFIG, SNAPSHOT_MAX, &len);
	if (text == NULL)
		mr_fatal("%s: reading the configuration snapshot: %s", proc,
		    strerror(errno));
	close(MR_FD_CONFIG);
	/* mailrootd has reported the warnings already: each child repeating
	 * them would only say the same thing three times more */
	cfg = mr_config_parse(name, text, len, NULL);
	if (cfg == NULL) {
		mr_config_free(mr_config_parse(name, text, len, stderr));
		mr_fatal("%s: the configuration snapshot does not parse", proc);
	}
	free(text);
	return cfg;
}

struct event_base *
mr_child_loop(void)
{
	struct event_config *ec;
	struct event_base *base;

	if ((ec = event_config_new()) == NULL)
		mr_fatal("event_config_new failed");
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (base == NULL)
		mr_fatal("cannot create the event loop");
	return base;
}
