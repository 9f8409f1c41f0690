/*
 * queued.c - process set-up and IPC dispatch of queued, the queue manager.
 *
 * Security: queued runs as the queue user and is the only process that
 * opens files in a mailroot.  Everything smtpd and deliverd send it is
 * checked (types, lengths, counts, address syntax) before it is used or
 * written to disk.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "addr.h"
#include "buf.h"
#include "child.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "privdrop.h"
#include "sandbox.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

struct queued *q;

static void	smtpd_cb(struct mr_ipc *, struct mr_ipc_msg *, void *);
static void	deliverd_cb(struct mr_ipc *, struct mr_ipc_msg *, void *);

static void
set_peer(uint32_t kind, int fd)
{
	if (kind == MR_PROC_SMTPD) {
		if (q->smtpd != NULL)
			mr_ipc_free(q->smtpd);
		commit_drop_all();
		sessions_clear();	/* the new smtpd reports its own */
		commit_new_channel();
		auth_new_channel();
		q->smtpd = mr_ipc_new(q->base, fd, "smtpd", MR_MSG_MAX,
		    smtpd_cb, NULL);
		mr_info("connected to smtpd");
	} else {
		if (q->deliverd != NULL) {
			mr_ipc_free(q->deliverd);
			q->deliverd = NULL;
			sched_deliverd_lost();
		}
		outbound_clear();	/* the new deliverd reports its own */
		q->deliverd = mr_ipc_new(q->base, fd, "deliverd", MR_MSG_MAX,
		    deliverd_cb, NULL);
		mr_info("connected to deliverd");
		sched_deliverd_up();
	}
}

/* Seconds a stop waits for deliverd's channel to end (mailrootd's own
 * stop timer ends it sooner). */
#define DELIVERD_END_WAIT	30

/* Exits the loop once stopping loses nothing: the commits in flight
 * answered and, in a stop of every child, deliverd's last results read
 * (it exits before queued is told to stop, and the frames it sent
 * before are read to its channel's end). */
void
queued_stop_step(void)
{
	if (q->stopping && commit_idle() &&
	    (!q->await_deliverd || q->deliverd == NULL))
		event_base_loopexit(q->base, NULL);
}

static void
deliverd_end_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	mr_warn("stopping: deliverd's channel did not end; not waiting");
	q->await_deliverd = 0;
	queued_stop_step();
}

static void
begin_stop(void)
{
	struct timeval tv = { DELIVERD_END_WAIT, 0 };

	if (q->stopping)
		return;
	q->stopping = 1;
	/* mailrootd said every child stops (MR_M_STOPPING): deliverd goes
	 * first; when queued alone restarts, deliverd lives on and replays
	 * its results to the next queued */
	if (mr_ipc_is_stopping() && q->deliverd != NULL) {
		q->await_deliverd = 1;
		if (event_base_once(q->base, -1, EV_TIMEOUT,
		    deliverd_end_timeout, NULL, &tv) == -1)
			q->await_deliverd = 0;
	}
	mr_ipc_stopping();
	/* nothing acknowledged lives only in memory: stopping is safe once
	 * the commits in flight have been answered */
	queued_stop_step();
}

/* mailrootd is gone: stop as on SIGTERM, nothing acknowledged is lost */
static void
orphaned(void)
{
	begin_stop();
}

/* MR_M_PEER: a new channel to smtpd or deliverd. */
static int
on_peer(uint32_t kind, int fd)
{
	if (kind != MR_PROC_SMTPD && kind != MR_PROC_DELIVERD)
		return -1;
	set_peer(kind, fd);
	return 0;
}

/*
 * MR_M_CONFIG: the servers take their new settings in place; messages
 * already queued follow them from their next attempt.  The mailroots
 * must be the ones queued started with (its Landlock rules cover only
 * those, and smtpd and deliverd name servers by index): mailrootd
 * restarts queued when they change.
 */
static int
reload(struct mr_config *cfg, int *fds, size_t nfds)
{
	size_t i;

	(void)fds;
	if (nfds != 0 || cfg->nservers != q->nservers) {
		mr_err("reload: the list of servers changed; queued keeps "
		    "the running configuration until it is restarted");
		return -1;
	}
	for (i = 0; i < q->nservers; i++)
		if (strcmp(cfg->servers[i].mailroot,
		    q->cfg->servers[i].mailroot) != 0) {
			mr_err("reload: the mailroot of server \"%s\" "
			    "changed; queued keeps the running configuration "
			    "until it is restarted", cfg->servers[i].name);
			return -1;
		}
	for (i = 0; i < q->nservers; i++)
		q->servers[i].srv = &cfg->servers[i];
	mr_config_free(q->cfg);
	q->cfg = cfg;
	dkim_load(cfg);
	return 0;
}

static const struct mr_child_ops child_ops = {
	.stop = begin_stop,
	.orphaned = orphaned,
	.peer = on_peer,
	.reload = reload,
	.restarts = metrics_restarts,
};

static void
smtpd_cb(struct mr_ipc *c, struct mr_ipc_msg *msg, void *arg)
{
	(void)arg;
	if (msg == NULL || msg->fd >= 0)	/* smtpd never sends one */
		goto gone;
	switch (msg->type) {
	case MR_Q_NEW:
		commit_new(c, msg->data, msg->len);
		return;
	case MR_Q_COMMIT:
		commit_commit(msg->data, msg->len);
		return;
	case MR_Q_ABORT:
		commit_abort(msg->data, msg->len);
		return;
	case MR_Q_RCPT_CHECK:
		rcpt_check(c, msg->data, msg->len);
		return;
	case MR_Q_AUTH:
		auth_request(msg->data, msg->len);
		return;
	case MR_R_PTR:
		if (ptr_relay_request(msg->data, msg->len) == 0)
			return;
		break;
	case MR_Q_LOG:
		if (w3clog_add(msg->data, msg->len) == 0)
			return;
		break;
	case MR_Q_ETRN:
		etrn_request(msg->data, msg->len);
		return;
	case MR_Q_SESSION:
		if (sessions_update(msg->data, msg->len) == 0)
			return;
		break;
	default:
		break;
	}
gone:
	mr_ipc_peer_gone(c, msg, mr_child_master(), MR_PROC_SMTPD);
	q->smtpd = NULL;
	commit_drop_all();
	sessions_clear();
}

static void
deliverd_cb(struct mr_ipc *c, struct mr_ipc_msg *msg, void *arg)
{
	(void)arg;
	if (msg != NULL && msg->fd < 0) {
		switch (msg->type) {
		case MR_D_RESULT:
			sched_result(msg->data, msg->len);
			return;
		case MR_D_REPLAY:
			sched_replay(msg->data, msg->len);
			return;
		case MR_D_REPLAY_END:
			sched_release();
			return;
		case MR_R_PTR_ANSWER:
			if (ptr_relay_answer(msg->data, msg->len) == 0)
				return;
			break;
		case MR_D_SESSION:
			if (outbound_session(msg->data, msg->len) == 0)
				return;
			break;
		case MR_D_COUNT:
			if (outbound_count(msg->data, msg->len) == 0)
				return;
			break;
		default:
			break;
		}
	}
	mr_ipc_peer_gone(c, msg, mr_child_master(), MR_PROC_DELIVERD);
	q->deliverd = NULL;
	outbound_clear();
	sched_deliverd_lost();
	queued_stop_step();
}

/* A malformed request from smtpd: the peer is dropped and reported. */
void
queued_drop_smtpd(void)
{
	if (q->smtpd == NULL)
		return;
	mr_ipc_free(q->smtpd);
	q->smtpd = NULL;
	commit_drop_all();
	sessions_clear();
	mr_ipc_report_bad(mr_child_master(), MR_PROC_SMTPD);
}

void
queued_flush_deliverd(uint32_t si, const char *domain)
{
	struct mr_buf b;

	if (q->deliverd == NULL)
		return;		/* a new deliverd has no marks */
	if (strlen(domain) > MR_DOMAIN_MAX || !mr_msg_clean(domain))
		domain = "";	/* not a domain: every next hop */
	mr_buf_init(&b);
	mr_buf_put_u32(&b, si);
	mr_buf_put_str(&b, domain);
	if (mr_ipc_sendb(q->deliverd, MR_D_FLUSH, -1, &b) == -1)
		mr_warn("flush not told to deliverd: the channel failed");
	mr_buf_free(&b);
}

/* Called by sched_result on a malformed result: the peer is dropped. */
void
queued_drop_deliverd(void)
{
	if (q->deliverd == NULL)
		return;
	mr_warn("deliverd sent a malformed result; dropping the channel");
	mr_ipc_report_bad(mr_child_master(), MR_PROC_DELIVERD);
	mr_ipc_free(q->deliverd);
	q->deliverd = NULL;
	outbound_clear();
	sched_deliverd_lost();
}

static void
setup_servers(void)
{
	struct mr_buf b;
	size_t i;

	q->nservers = q->cfg->nservers;
	q->servers = mr_xcalloc(q->nservers, sizeof(struct qserver));
	mr_buf_init(&b);
	for (i = 0; i < q->nservers; i++) {
		struct qserver *qs = &q->servers[i];
		const char *mr = q->cfg->servers[i].mailroot;

		qs->srv = &q->cfg->servers[i];
#define MKPATH(field, sub) do {						\
		mr_buf_reset(&b);					\
		mr_buf_printf(&b, "%s/%s", mr, sub);			\
		qs->field = mr_xstrdup(b.data);				\
	} while (0)
		MKPATH(queue, "Queue");
		MKPATH(tmp, "Queue/tmp");
		MKPATH(drop, "Drop");
		MKPATH(badmail, "Badmail");
		MKPATH(pickup, "Pickup");
#undef MKPATH
	}
	mr_buf_free(&b);
}

/*
 * queued may touch its mailroots and Maildir trees, read the directories
 * that hold its tables and its DKIM keys and the files /etc/passwd and
 * /etc/group, and nothing else.  The directory, not the file: a table is
 * replaced by renaming a new file over it (mailroot-makemap), and a rule
 * on the old file would not cover the new one.  A table added by a reload
 * in another directory cannot be read until queued restarts: its
 * lookups fail temporarily, and mail waits.
 */
/* The mailroots, the Maildir trees (maildir_root) and the transaction log
 * directories; NULL-terminated. */
static char **
rw_dirs(void)
{
	char **rw;
	size_t i, j, n = q->nservers;

	for (i = 0; i < q->nservers; i++)
		n += q->cfg->servers[i].ndomains + 1;
	rw = mr_xcalloc(n + 1, sizeof(char *));
	for (n = 0, i = 0; i < q->nservers; i++) {
		const struct mr_server *srv = &q->cfg->servers[i];

		rw[n++] = mr_xstrdup(srv->mailroot);
		for (j = 0; j < srv->ndomains; j++)
			if (srv->domains[j].kind == MR_DOMAIN_LOCAL &&
			    srv->domains[j].deliver == MR_DELIVER_MAILDIR)
				rw[n++] = maildir_root(
				    srv->domains[j].deliver_arg);
		if (w3clog_dir(i) != NULL)	/* transaction logs */
			rw[n++] = mr_xstrdup(w3clog_dir(i));
	}
	return rw;
}

/* The directory of an absolute file path (a file in / gives "/"). */
static char *
dir_of(const char *path)
{
	char *d = mr_xstrdup(path);

	*strrchr(d, '/') = '\0';
	if (d[0] == '\0')
		d[0] = '/';
	return d;
}

/* The tables' directories and the DKIM keys' (dkim_sign.c: the keys are
 * read after the sandbox, and again on reload); then two more slots. */
static char **
ro_dirs(size_t *np)
{
	char **ro;
	size_t i, j, n = q->cfg->ntables + 3;

	for (i = 0; i < q->nservers; i++)
		n += q->cfg->servers[i].ndkims;
	ro = mr_xcalloc(n, sizeof(char *));
	for (n = 0, i = 0; i < q->cfg->ntables; i++)
		ro[n++] = dir_of(q->cfg->tables[i].path);
	for (i = 0; i < q->nservers; i++)
		for (j = 0; j < q->cfg->servers[i].ndkims; j++)
			ro[n++] = dir_of(q->cfg->servers[i].dkims[j].key);
	*np = n;
	return ro;
}

static void
sandbox(void)
{
	char **rw, **ro;
	size_t i;

	rw = rw_dirs();
	ro = ro_dirs(&i);
	/* who a mailroot-sendmail peer is (passwd.c): these two files */
	ro[i++] = mr_xstrdup("/etc/passwd");
	ro[i++] = mr_xstrdup("/etc/group");
	mr_sandbox_files("queued", (const char *const *)ro,
	    (const char *const *)rw);
	for (i = 0; ro[i] != NULL; i++)
		free(ro[i]);
	free(ro);
	for (i = 0; rw[i] != NULL; i++)
		free(rw[i]);
	free(rw);
	mr_sandbox_syscalls("queued", MR_PROC_QUEUED);
}

int
main(int argc, char *argv[])
{
	q = mr_xcalloc(1, sizeof(*q));
	q->cfg = mr_child_start("queued", argc, argv);
	q->base = mr_child_loop();
	mr_privdrop("queued", q->cfg->user, NULL);
	umask(027);
	setup_servers();
	control_init();
	w3clog_init();
	/* OpenSSL reads its configuration and seeds its generator now,
	 * while it may open files */
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1 ||
	    RAND_status() != 1)
		mr_fatal("queued: OpenSSL cannot be initialised");
	sandbox();
	dkim_load(q->cfg);
	commit_init();
	auth_init();
	clock_init();

	mr_child_serve(q->base, &child_ops);
	if (mr_ipc_is_channel(MR_FD_PEER1))
		q->smtpd = mr_ipc_new(q->base, MR_FD_PEER1, "smtpd",
		    MR_MSG_MAX, smtpd_cb, NULL);
	else
		close(MR_FD_PEER1);
	if (mr_ipc_is_channel(MR_FD_PEER2))
		q->deliverd = mr_ipc_new(q->base, MR_FD_PEER2, "deliverd",
		    MR_MSG_MAX, deliverd_cb, NULL);
	else
		close(MR_FD_PEER2);
	sched_recover();	/* starts Pickup once the queue is read */
	submit_init();
	control_start();
	metrics_start();
	event_base_dispatch(q->base);
	metrics_shutdown();
	submit_shutdown();
	auth_shutdown();
	commit_shutdown();
	journal_shutdown();
	dkim_shutdown();
	w3clog_shutdown();
	sessions_clear();
	outbound_clear();
	alias_shutdown();
	mr_child_end();
	mr_info("queued: exiting");
	return 0;
}
