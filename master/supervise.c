/*
 * supervise.c - starts, wires, restarts and stops the three children.
 *
 * Each child gets a channel to the master, a snapshot of the configuration
 * text (a sealed memfd: every process parses the very bytes the master
 * checked) and channels to its peers.  When a child is restarted, the
 * master makes fresh peer channels and hands the surviving peer its end
 * with MR_M_PEER.  The master reads nothing from the network.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "master.h"
#include "util.h"

struct child {
	const char	*name;
	enum mr_proc	 proc;
	pid_t		 pid;
	struct mr_ipc	*chan;
	int		 restart_now;	/* reload: no backoff */
	int		 stop_asked;	/* MR_M_SHUTDOWN sent */
	int		 stopping_told;	/* queued: MR_M_STOPPING sent */
	unsigned	 deaths;	/* recent deaths, for backoff */
	uint32_t	 starts;	/* for the metrics: restarts are
					 * the starts after the first */
	uint64_t	 last_death;
	uint64_t	 last_bad_restart; /* ms: last kill on a PEER_BAD */
	struct event	*timer;		/* pending restart */
};

/* master, config, two peers, then smtpd's listeners */
#define MAX_CHILD_FDS	(8 + MR_LISTEN_MAX)

static struct mr_master *master;
static struct child children[MR_PROC_COUNT] = {
	[MR_PROC_SMTPD] = { .name = "smtpd", .proc = MR_PROC_SMTPD },
	[MR_PROC_QUEUED] = { .name = "queued", .proc = MR_PROC_QUEUED },
	[MR_PROC_DELIVERD] = { .name = "deliverd", .proc = MR_PROC_DELIVERD },
};
static char *exe_dir;
/* a reload that changed the list of servers restarts every child */
static int full_restart;

static void	spawn(enum mr_proc);
static void	schedule_restart(struct child *);

/* Children are found beside mailrootd in a build tree, else in libexec. */
static char *
child_path(const char *name)
{
	char path[PATH_MAX];

	if (exe_dir != NULL) {
		snprintf(path, sizeof(path), "%s/../%s/%s", exe_dir, name,
		    name);
		if (access(path, X_OK) == 0)
			return mr_xstrdup(path);
	}
	snprintf(path, sizeof(path), "%s/%s", MR_LIBEXECDIR, name);
	return mr_xstrdup(path);
}

static int
config_snapshot(void)
{
	int fd;

	fd = memfd_create("mailroot.conf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1)
		mr_fatal("memfd_create: %s", strerror(errno));
	if (mr_write_all(fd, master->cfgtext, master->cfglen) == -1)
		mr_fatal("writing the configuration snapshot: %s",
		    strerror(errno));
	/* Sealed, the snapshot a child reads cannot change under it. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) == -1)
		mr_fatal("sealing the configuration snapshot: %s",
		    strerror(errno));
	return fd;
}

static int
running(enum mr_proc p)
{
	return children[p].pid > 0 && children[p].chan != NULL;
}

/* The peers each child talks to, in fd order after MR_FD_CONFIG. */
static size_t
peers_of(enum mr_proc p, enum mr_proc out[2])
{
	switch (p) {
	case MR_PROC_SMTPD:
	case MR_PROC_DELIVERD:
		out[0] = MR_PROC_QUEUED;
		return 1;
	case MR_PROC_QUEUED:
		out[0] = MR_PROC_SMTPD;
		out[1] = MR_PROC_DELIVERD;
		return 2;
	default:
		mr_panic("peers_of: bad process %d", (int)p);
	}
}

/*
 * A report is believed only from a child that holds a channel to the
 * accused (smtpd and deliverd talk to queued, queued to both; smtpd never
 * talks to deliverd), and acted on at most once per this interval per
 * accused child: a compromised child could otherwise have the master
 * kill its peers at will.  Every report is logged.
 */
#define PEER_BAD_INTERVAL_MS	10000

static int
holds_channel_to(enum mr_proc reporter, uint32_t kind)
{
	enum mr_proc peers[2];
	size_t i, n;

	n = peers_of(reporter, peers);
	for (i = 0; i < n; i++)
		if ((uint32_t)peers[i] == kind)
			return 1;
	return 0;
}

/*
 * A child dropped a peer that sent it garbage: the offender is stopped
 * and, like any child that dies, restarted with fresh channels.
 */
static void
peer_bad(struct child *reporter, struct mr_ipc_msg *msg)
{
	struct child *t;
	const char *err;
	uint32_t kind;
	uint64_t now = mr_now_ms();

	if (mr_msg_peer_bad(msg->data, msg->len, (uint32_t)reporter->proc,
	    &kind, &err) == -1) {
		mr_warn("%s sent a %s", reporter->name, err);
		return;
	}
	t = &children[kind];
	if (!holds_channel_to(reporter->proc, kind)) {
		mr_warn("%s reports that %s misbehaved, but has no channel "
		    "to it: ignored", reporter->name, t->name);
		return;
	}
	if (t->pid <= 0)
		return;
	if (t->last_bad_restart != 0 &&
	    now - t->last_bad_restart < PEER_BAD_INTERVAL_MS) {
		mr_warn("%s reports that %s misbehaved; %s was restarted on "
		    "such a report less than %d s ago: not again yet",
		    reporter->name, t->name, t->name,
		    PEER_BAD_INTERVAL_MS / 1000);
		return;
	}
	t->last_bad_restart = now;
	mr_warn("%s reports that %s misbehaved; restarting %s",
	    reporter->name, t->name, t->name);
	t->stop_asked = 1;
	kill(t->pid, SIGKILL);
}

/*
 * mailrootctl reload/stop, passed on by queued, which serves the control
 * socket and checked the asker.  Only queued may ask, and only for what
 * the administrator could do with kill(1): the request becomes the
 * signal, handled as if it came from outside.  Logged either way.
 */
static void
control_request(struct child *ch, struct mr_ipc_msg *msg)
{
	uint32_t action, uid;
	const char *err;

	if (ch->proc != MR_PROC_QUEUED) {
		mr_warn("%s sent a control request: ignored", ch->name);
		return;
	}
	if (mr_msg_ctl(msg->data, msg->len, &action, &uid, &err) == -1) {
		mr_warn("%s sent a %s", ch->name, err);
		return;
	}
	mr_info("control socket: uid %lu asks to %s", (unsigned long)uid,
	    action == MR_CTL_ACT_RELOAD ? "reload" : "stop");
	if (kill(getpid(), action == MR_CTL_ACT_RELOAD ? SIGHUP : SIGTERM)
	    == -1)
		mr_err("kill: %s", strerror(errno));
}

static void
master_chan_cb(struct mr_ipc *c, struct mr_ipc_msg *msg, void *arg)
{
	struct child *ch = arg;

	if (msg == NULL) {
		/* the child is gone or misbehaved: end it; SIGCHLD restarts */
		mr_ipc_free(c);
		ch->chan = NULL;
		/* a child asked to stop may close first; any other child
		 * that drops its channel is ended (SIGCHLD restarts it) */
		if (ch->pid > 0 && !ch->stop_asked)
			kill(ch->pid, SIGTERM);
		return;
	}
	if (msg->fd >= 0)
		close(msg->fd);
	if (msg->type == MR_M_PEER_BAD) {
		peer_bad(ch, msg);
		return;
	}
	if (msg->type == MR_M_CTL) {
		control_request(ch, msg);
		return;
	}
	mr_warn("%s sent unexpected message type %u to the master",
	    ch->name, msg->type);
}

/* Places fds[i] at descriptor 3 + i in the child and closes the rest. */
static void
child_fds(int *fds, size_t n)
{
	size_t i;
	int hi;

	for (i = 0; i < n; i++) {
		hi = fcntl(fds[i], F_DUPFD, 3 + (int)n);
		if (hi == -1)
			_exit(127);
		fds[i] = hi;
	}
	for (i = 0; i < n; i++)
		if (dup2(fds[i], 3 + (int)i) == -1)
			_exit(127);
	close_range(3 + (unsigned)n, ~0U, 0);
}

static void
exec_child(enum mr_proc p, int *fds, size_t n)
{
	char *path = child_path(children[p].name);
	char *argv[6];
	int i = 0;
	sigset_t none;

	child_fds(fds, n);
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) == -1)
		_exit(127);
	argv[i++] = (char *)children[p].name;
	argv[i++] = "-f";
	argv[i++] = master->cfgpath;
	if (master->foreground)
		argv[i++] = "-d";
	argv[i] = NULL;
	execv(path, argv);
	fprintf(stderr, "mailrootd: exec %s: %s\n", path, strerror(errno));
	_exit(127);
}

/*
 * MR_M_RESTARTS: each child's restarts (for whatever reason: a crash, a
 * misbehaving peer, a reload that needs one), to queued, whose metrics
 * show them; after every start, so that a new queued learns them too.
 */
static void
send_restarts(void)
{
	struct child *qd = &children[MR_PROC_QUEUED];
	struct mr_buf b;
	size_t k;

	if (qd->chan == NULL)
		return;
	mr_buf_init(&b);
	mr_buf_put_u32(&b, MR_PROC_COUNT);
	mr_buf_put_u32(&b, 0);		/* mailrootd itself */
	for (k = MR_PROC_SMTPD; k < MR_PROC_COUNT; k++)
		mr_buf_put_u32(&b, children[k].starts > 0 ?
		    children[k].starts - 1 : 0);
	(void)mr_ipc_sendb(qd->chan, MR_M_RESTARTS, -1, &b);
	mr_buf_free(&b);
}

static void
spawn(enum mr_proc p)
{
	struct child *ch = &children[p];
	enum mr_proc peers[2];
	int mpair[2], ppair[2][2], cfgfd, fds[MAX_CHILD_FDS];
	size_t npeers, i, n = 0;
	pid_t pid;

	if (master->stopping)
		return;
	if (mr_ipc_pair(mpair) == -1)
		mr_fatal("socketpair: %s", strerror(errno));
	cfgfd = config_snapshot();
	npeers = peers_of(p, peers);
	for (i = 0; i < npeers; i++) {
		if (!running(peers[i])) {
			/* not a channel: the child waits for MR_M_PEER */
			ppair[i][0] = -1;
			ppair[i][1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (ppair[i][1] == -1)
				mr_fatal("/dev/null: %s", strerror(errno));
		} else if (mr_ipc_pair(ppair[i]) == -1)
			mr_fatal("socketpair: %s", strerror(errno));
	}
	fds[n++] = mpair[1];
	fds[n++] = cfgfd;
	for (i = 0; i < npeers; i++)
		fds[n++] = ppair[i][1];
	if (p == MR_PROC_SMTPD)
		for (i = 0; i < master->nlfds; i++)
			fds[n++] = master->lfds[i];
	if (p == MR_PROC_QUEUED)	/* MR_FD_SUBMIT */
		fds[n++] = master->submit_fd != -1 ? master->submit_fd :
		    ppair[1][1];
	if (p == MR_PROC_QUEUED && (master->ctlfd != -1 ||
	    master->metricsfd != -1))	/* MR_FD_CONTROL; not listening:
					 * a placeholder queued ignores */
		fds[n++] = master->ctlfd != -1 ? master->ctlfd : cfgfd;
	if (p == MR_PROC_QUEUED && master->metricsfd != -1)
		fds[n++] = master->metricsfd;	/* MR_FD_METRICS */

	pid = fork();
	if (pid == -1) {
		mr_err("fork %s: %s", ch->name, strerror(errno));
	} else if (pid == 0)
		exec_child(p, fds, n);

	close(mpair[1]);
	close(cfgfd);
	for (i = 0; i < npeers; i++) {
		close(ppair[i][1]);
		/* hand the surviving peer its end; a peer that is down gets
		 * a fresh channel when it starts */
		if (ppair[i][0] == -1)
			continue;
		if (pid > 0 && running(peers[i])) {
			struct mr_buf b;

			mr_buf_init(&b);
			mr_buf_put_u32(&b, p);
			mr_ipc_sendb(children[peers[i]].chan, MR_M_PEER,
			    ppair[i][0], &b);
			mr_buf_free(&b);
		}
		close(ppair[i][0]);
	}
	if (pid <= 0) {
		close(mpair[0]);
		if (pid == -1)
			schedule_restart(ch);	/* fork failed: try again */
		return;
	}
	ch->pid = pid;
	ch->stop_asked = 0;
	ch->stopping_told = 0;
	ch->chan = mr_ipc_new(master->base, mpair[0], ch->name, MR_MSG_MAX,
	    master_chan_cb, ch);
	mr_info("started %s (pid %ld)", ch->name, (long)pid);
	ch->starts++;
	send_restarts();
}

static void
restart_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct child *ch = arg;

	(void)fd;
	(void)ev;
	if (full_restart)
		return;		/* full_restart_step starts every child */
	spawn(ch->proc);
}

/* Backoff: 100 ms doubling per death within a minute, at most 30 s. */
static void
schedule_restart(struct child *ch)
{
	struct timeval tv;
	uint64_t now = mr_now_ms(), delay;

	if (ch->restart_now) {
		ch->restart_now = 0;
		delay = 0;
	} else {
		if (now - ch->last_death > 60000)
			ch->deaths = 0;
		ch->deaths++;
		ch->last_death = now;
		delay = 100ULL << (ch->deaths > 9 ? 9 : ch->deaths - 1);
		if (delay > 30000)
			delay = 30000;
		mr_warn("restarting %s in %llu ms", ch->name,
		    (unsigned long long)delay);
	}
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	if (ch->timer == NULL)
		ch->timer = evtimer_new(master->base, restart_cb, ch);
	evtimer_add(ch->timer, &tv);
}

void
mr_supervise_init(struct mr_master *m)
{
	char path[PATH_MAX];
	ssize_t n;

	master = m;
	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n > 0) {
		char *slash;

		path[n] = '\0';
		if ((slash = strrchr(path, '/')) != NULL) {
			*slash = '\0';
			exe_dir = mr_xstrdup(path);
		}
	}
}

void
mr_supervise_start(struct mr_master *m)
{
	(void)m;
	spawn(MR_PROC_QUEUED);
	spawn(MR_PROC_DELIVERD);
	spawn(MR_PROC_SMTPD);
}

static void
tell_child_stop(struct child *ch)
{
	if (ch->pid <= 0)
		return;
	ch->stop_asked = 1;
	/* a child with a channel finishes its work first; one without is
	 * told by signal; the stop timer kills what lingers */
	if (ch->chan == NULL ||
	    mr_ipc_send(ch->chan, MR_M_SHUTDOWN, -1, NULL, 0) == -1)
		kill(ch->pid, SIGTERM);
}

/*
 * Reload.  A child whose process-wide settings did not change is handed
 * the new snapshot (smtpd its listeners first) and swaps its
 * configuration while it runs: nothing is refused, nothing cut off.
 * What a running child cannot take restarts it:
 *  - the list of servers (names, mailroots, order: IPC frames name a
 *    server by its index, queued's Landlock rules cover its mailroots):
 *    all three, smtpd first (it finishes its sessions, new clients wait
 *    in the listen queue), then queued and deliverd, then all start;
 *  - a child's user, smtpd's chroot, deliverd's resolver, DNSSEC
 *    trust anchor and MTA-STS cache (a Landlock rule): that child.
 */
static int
same_servers(const struct mr_config *a, const struct mr_config *b)
{
	size_t i;

	if (a->nservers != b->nservers)
		return 0;
	for (i = 0; i < a->nservers; i++)
		if (strcmp(a->servers[i].name, b->servers[i].name) != 0 ||
		    strcmp(a->servers[i].mailroot, b->servers[i].mailroot) != 0)
			return 0;
	return 1;
}

static int
needs_restart(enum mr_proc p, const struct mr_config *o,
    const struct mr_config *n)
{
	switch (p) {
	case MR_PROC_SMTPD:
		return strcmp(o->smtpd_user, n->smtpd_user) != 0 ||
		    strcmp(o->chroot, n->chroot) != 0;
	case MR_PROC_QUEUED:
		return strcmp(o->user, n->user) != 0;
	case MR_PROC_DELIVERD:
		return strcmp(o->deliver_user, n->deliver_user) != 0 ||
		    strcmp(o->resolver, n->resolver) != 0 ||
		    strcmp(o->trust_anchor, n->trust_anchor) != 0 ||
		    strcmp(o->mta_sts_cache, n->mta_sts_cache) != 0;
	default:
		mr_panic("needs_restart: bad process %d", (int)p);
	}
}

/* MR_M_PKI for each pki: smtpd cannot read the files in its chroot.
 * One that cannot be read is not sent, and smtpd keeps its running
 * configuration. */
static void
send_pkis(struct child *ch)
{
	struct mr_buf b;
	uint32_t i, certlen;
	int fd;

	mr_buf_init(&b);
	for (i = 0; i < master->cfg->npkis; i++) {
		if ((fd = mr_pki_memfd(&master->cfg->pkis[i], &certlen)) == -1)
			break;
		mr_buf_reset(&b);
		mr_buf_put_u32(&b, i);
		mr_buf_put_u32(&b, certlen);
		(void)mr_ipc_sendb(ch->chan, MR_M_PKI, fd, &b);
		close(fd);
	}
	mr_buf_free(&b);
}

/* MR_M_LISTEN for each listener and MR_M_PKI for each pki (smtpd), then
 * MR_M_CONFIG. */
static void
send_config(struct child *ch)
{
	struct mr_buf b;
	uint32_t i, n = 0;
	int fd = config_snapshot();

	mr_buf_init(&b);
	if (ch->proc == MR_PROC_SMTPD)
		n = (uint32_t)master->nlfds;
	for (i = 0; i < n; i++) {
		mr_buf_reset(&b);
		mr_buf_put_u32(&b, i);
		if (mr_ipc_sendb(ch->chan, MR_M_LISTEN, master->lfds[i],
		    &b) == -1)
			break;
	}
	if (ch->proc == MR_PROC_SMTPD)
		send_pkis(ch);
	mr_buf_reset(&b);
	mr_buf_put_u32(&b, n);
	/* a channel that died meanwhile: the child restarts with it */
	(void)mr_ipc_sendb(ch->chan, MR_M_CONFIG, fd, &b);
	mr_buf_free(&b);
	close(fd);
}

static void
restart_child(struct child *ch)
{
	mr_info("reload: restarting %s", ch->name);
	ch->restart_now = 1;
	tell_child_stop(ch);
}

/*
 * Stopping every child (a full restart, or mailrootd's own stop): smtpd
 * and deliverd first, queued once both have gone.  queued is the one
 * that records what happened: smtpd commits through it until its last
 * session ends, and deliverd reports the deliveries it finishes to it.
 * Were queued to go first, a message deliverd delivered meanwhile would
 * be recovered as undelivered and sent again.  Returns 1 once every
 * child is down.
 */
static int
stop_step(void)
{
	struct child *q = &children[MR_PROC_QUEUED];
	int p, others = 0;

	/* queued sees smtpd and deliverd go: it is told why first, so
	 * that it does not log their going as a loss */
	if (q->pid > 0 && q->chan != NULL && !q->stopping_told) {
		q->stopping_told = 1;
		(void)mr_ipc_send(q->chan, MR_M_STOPPING, -1, NULL, 0);
	}
	for (p = MR_PROC_SMTPD; p < MR_PROC_COUNT; p++) {
		if (p == MR_PROC_QUEUED || children[p].pid <= 0)
			continue;
		others = 1;
		if (!children[p].stop_asked)
			tell_child_stop(&children[p]);
	}
	if (others)
		return 0;
	if (q->pid > 0 && !q->stop_asked)
		tell_child_stop(q);
	return q->pid <= 0;
}

/* A full restart: when every child is down, start them again. */
static void
full_restart_step(void)
{
	int p;

	if (!full_restart || !stop_step())
		return;
	full_restart = 0;
	for (p = MR_PROC_SMTPD; p < MR_PROC_COUNT; p++) {
		children[p].restart_now = 0;
		if (children[p].timer != NULL)
			evtimer_del(children[p].timer);
	}
	mr_supervise_start(master);
}

void
mr_supervise_reload(struct mr_master *m, const struct mr_config *old)
{
	struct child *ch;
	int p;

	if (full_restart) {
		mr_info("reload: the children restarting take it");
		return;
	}
	if (!same_servers(old, m->cfg)) {
		mr_info("reload: the list of servers changed; restarting "
		    "smtpd and deliverd, then queued");
		full_restart = 1;
		for (p = MR_PROC_SMTPD; p < MR_PROC_COUNT; p++)
			children[p].restart_now = 1;	/* logged as info */
		full_restart_step();
		return;
	}
	for (p = MR_PROC_SMTPD; p < MR_PROC_COUNT; p++) {
		ch = &children[p];
		if (needs_restart(ch->proc, old, m->cfg))
			restart_child(ch);
		else if (running(ch->proc))
			send_config(ch);
		/* a child down now starts with the new snapshot */
	}
}

void
mr_supervise_reap(struct mr_master *m)
{
	int status, p;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (p = MR_PROC_SMTPD; p < MR_PROC_COUNT; p++)
			if (children[p].pid == pid)
				break;
		if (p == MR_PROC_COUNT)
			continue;
		children[p].pid = 0;
		if (children[p].chan != NULL) {
			mr_ipc_free(children[p].chan);
			children[p].chan = NULL;
		}
		if (WIFSIGNALED(status))
			mr_log(m->stopping ? LOG_INFO : LOG_WARNING,
			    "%s (pid %ld) killed by signal %d",
			    children[p].name, (long)pid, WTERMSIG(status));
		else
			mr_log(m->stopping || children[p].restart_now ?
			    LOG_INFO : LOG_WARNING,
			    "%s (pid %ld) exited with status %d",
			    children[p].name, (long)pid, WEXITSTATUS(status));
		if (m->stopping)
			continue;
		if (full_restart)
			full_restart_step();
		else
			schedule_restart(&children[p]);
	}
	if (m->stopping && stop_step())
		event_base_loopexit(m->base, NULL);
}

/* Seconds a stop takes at most: deliverd's 10 for the deliveries under
 * way and 10 to hand their results to queued, then queued's own. */
#define STOP_WAIT	25

static void
stop_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	int p;

	(void)fd;
	(void)ev;
	(void)arg;
	for (p = MR_PROC_SMTPD; p < MR_PROC_COUNT; p++)
		if (children[p].pid > 0) {
			mr_warn("%s did not stop in time; killing it",
			    children[p].name);
			kill(children[p].pid, SIGKILL);
		}
}

void
mr_supervise_stop(struct mr_master *m)
{
	struct timeval tv = { STOP_WAIT, 0 };
	int p;

	m->stopping = 1;
	for (p = MR_PROC_SMTPD; p < MR_PROC_COUNT; p++)
		if (children[p].timer != NULL)
			evtimer_del(children[p].timer);
	if (stop_step()) {
		event_base_loopexit(m->base, NULL);
		return;
	}
	event_base_once(m->base, -1, EV_TIMEOUT, stop_timeout_cb, NULL, &tv);
}
