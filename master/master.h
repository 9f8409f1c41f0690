/*
 * master.h - mailrootd, the privileged parent.
 */
#ifndef MR_MASTER_H
#define MR_MASTER_H

#include <sys/types.h>

#include "conf.h"
#include "proto.h"

struct event_base;


struct mr_master {
	struct event_base	*base;
	struct mr_config	*cfg;
	char			*cfgpath;
	char			*cfgtext;	/* the text cfg was parsed from */
	size_t			 cfglen;
	int			 foreground;
	int			*lfds;		/* listeners, config order */
	int			 submit_fd;	/* submit-socket; -1: none */
	size_t			 nlfds;
	int			 stopping;
	int			 ctlfd;		/* control socket or -1 */
	int			 metricsfd;	/* metrics listener or -1 */
};

/* dirs.c: as root, never by a path a child can change; 0 or -1 (logged).
 * at_start: an existing folder with the wrong owner is corrected too. */
int	mr_prepare_dirs(const struct mr_config *, int at_start);
/* Opens the directory holding abspath's last component (made, root's,
 * 0755, if missing) as dirs.c opens a mailroot's parent; -1 (logged). */
int	mr_open_parent(const char *abspath, char *buf, size_t size,
	    const char **last);

/* submit_sock.c: the listening socket of mailroot-sendmail, handed to
 * queued; -1 (logged) if it cannot be made. */
int	mr_submit_open(const struct mr_config *);

/* listen.c */
int	mr_listen_all(struct mr_master *, int *oldfds, size_t nold,
	    const struct mr_config *oldcfg);
void	mr_listen_close(int *fds, size_t n);
/* the metrics listener for queued; -1 (logged) */
int	mr_metrics_open(const struct mr_config *);

/* control_sock.c: the listening control socket for queued, or -1
 * (logged when configured and it cannot be made) */
int	mr_control_open(const struct mr_config *);
void	mr_control_close(const struct mr_config *, int fd);

/* notify.c: sd_notify(3)'s protocol without libsystemd.  init reads and
 * removes $NOTIFY_SOCKET (before any child starts); mr_notify sends one
 * state ("READY=1") to it, or nothing without one. */
void	mr_notify_init(void);
void	mr_notify(const char *state);

/* supervise.c */
/* pki.c: a sealed memfd with p's chain then its key; -1 (logged). */
int	mr_pki_memfd(const struct mr_pki *p, uint32_t *certlen);
/* Every pki's files can be read: 0, or -1 (each one logged). */
int	mr_pki_check(const struct mr_config *);

void	mr_supervise_init(struct mr_master *);
void	mr_supervise_start(struct mr_master *);
/* After m->cfg and m->lfds were replaced; old is the previous cfg. */
void	mr_supervise_reload(struct mr_master *, const struct mr_config *old);
void	mr_supervise_stop(struct mr_master *);
void	mr_supervise_reap(struct mr_master *);

#endif
