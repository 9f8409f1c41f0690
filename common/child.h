/*
 * child.h - what every child of mailrootd does first: read its arguments
 * and the configuration snapshot mailrootd handed it.
 */
#ifndef MR_CHILD_H
#define MR_CHILD_H

struct mr_config;

/* Parses "-f name [-d]" (exits 2 on anything else), sets up logging
 * under proc's name, ignores SIGPIPE and SIGHUP (reloads come through
 * mailrootd), and returns the configuration parsed from the snapshot at
 * MR_FD_CONFIG, which it closes.  Exits 1 if the snapshot does not parse. */
struct mr_config	*mr_child_start(const char *proc, int argc,
			    char *argv[]);

struct event_base;

/* The event loop of a child: epoll with its change list, so that a
 * callback's enable/disable pairs cost one epoll_ctl, not several. */
struct event_base	*mr_child_loop(void);

#endif
