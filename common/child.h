/*
 * child.h - what every child of mailrootd does first: read its arguments
 * and the configuration snapshot mailrootd handed it; then the channel to
 * mailrootd, SIGTERM and reloads, the same in smtpd, queued and deliverd.
 */
#ifndef MR_CHILD_H
#define MR_CHILD_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mr_config;
struct mr_ipc;

/* Parses "-f name [-d]" (exits 2 on anything else), sets up logging
 * under proc's name, ignores SIGPIPE and SIGHUP (reloads come through
 * mailrootd), and returns the configuration parsed from the snapshot at
 * MR_FD_CONFIG, which it closes.  Exits 1 if the snapshot does not parse. */
struct mr_config	*mr_child_start(const char *proc, int argc,
			    char *argv[]);

/* The event loop of a child: epoll with its change list, so that a
 * callback's enable/disable pairs cost one epoll_ctl, not several. */
struct event_base	*mr_child_loop(void);

/* What differs between the children; every callback but pki and
 * restarts is required. */
struct mr_child_ops {
	/* MR_M_SHUTDOWN or SIGTERM: finish the work in hand, then exit */
	void	(*stop)(void);
	/* the channel to mailrootd closed: nobody supervises us any more */
	void	(*orphaned)(void);
	/* MR_M_PEER: a channel to a peer of that kind.  Returns 0 when it
	 * took fd, -1 when the kind is not one of its peers. */
	int	(*peer)(uint32_t kind, int fd);
	/* MR_M_CONFIG: the new configuration, parsed, and the listeners
	 * that came before it (smtpd; none for the others).  Returns 0
	 * when it took cfg and fds, -1 when it keeps the running
	 * configuration (it logs why; cfg is freed, fds are closed). */
	int	(*reload)(struct mr_config *cfg, int *fds, size_t nfds);
	/* MR_M_PKI: certificate and key number idx of the coming
	 * configuration (smtpd; NULL in the others).  Returns 0 when it
	 * read fd (which stays the caller's), -1 when it refused it. */
	int	(*pki)(uint32_t idx, uint32_t certlen, int fd);
	/* MR_M_RESTARTS: the payload, decoded by the callee (queued's
	 * metrics; NULL in the others: ignored) */
	void	(*restarts)(const unsigned char *, size_t);
};

/* Opens the channel to mailrootd (MR_FD_MASTER) and the SIGTERM event in
 * base; messages from mailrootd go to ops from then on. */
void			 mr_child_serve(struct event_base *,
			    const struct mr_child_ops *);
/* The channel to mailrootd, or NULL once it has closed. */
struct mr_ipc		*mr_child_master(void);
/* Frees what mr_child_serve made (at exit). */
void			 mr_child_end(void);

#endif
