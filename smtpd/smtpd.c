/*
 * smtpd.c - process set-up and the IPC dispatch of smtpd.
 *
 * Security: smtpd faces the network.  It parses its configuration snapshot
 * and then drops to its own user inside an empty chroot before it accepts
 * a connection; it never opens a queue file (queued hands it one writable
 * descriptor per message) and never sees credentials.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "buf.h"
#include "child.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "privdrop.h"
#include "sandbox.h"
#include "proto.h"
#include "smtpd.h"
#include "util.h"

struct smtpd *smtpd;

static void	queued_cb(struct mr_ipc *, struct mr_ipc_msg *, void *);

static void
accept_cb(struct evconnlistener *ev, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
	(void)ev;
	session_accept(arg, fd, sa, len);
}

static void
accept_error_cb(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)ev;
	/* EMFILE and friends: log and keep listening */
	mr_warn("accept on %s: %s", l->lcfg->text,
	    evutil_socket_error_to_string(err));
}

static void
setup_listeners(void)
{
	size_t s, i, n = 0;
	int fd = MR_FD_LISTEN;

	for (s = 0; s < smtpd->cfg->nservers; s++)
		n += smtpd->cfg->servers[s].nlistens;
	smtpd->listeners = mr_xcalloc(n, sizeof(struct listener));
	smtpd->nlisteners = n;
	n = 0;
	for (s = 0; s < smtpd->cfg->nservers; s++)
		for (i = 0; i < smtpd->cfg->servers[s].nlistens; i++, n++) {
			struct listener *l = &smtpd->listeners[n];

			l->srv = &smtpd->cfg->servers[s];
			l->lcfg = &l->srv->listens[i];
			mr_set_nonblock(fd);
			mr_set_cloexec(fd, 1);
			l->ev = evconnlistener_new(smtpd->base, accept_cb, l,
			    LEV_OPT_CLOSE_ON_FREE, -1, fd++);
			if (l->ev == NULL)
				mr_fatal("listener %s: %s", l->lcfg->text,
				    strerror(errno));
			evconnlistener_set_error_cb(l->ev, accept_error_cb);
		}
}

static void
stop_listening(void)
{
	size_t i;

	for (i = 0; i < smtpd->nlisteners; i++)
		if (smtpd->listeners[i].ev != NULL) {
			evconnlistener_free(smtpd->listeners[i].ev);
			smtpd->listeners[i].ev = NULL;
		}
}

/* Graceful stop: no new sessions; exit when the last one ends or after
 * 10 seconds. */
static void
stop_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	event_base_loopexit(smtpd->base, NULL);
}

void
smtpd_maybe_exit(void)
{
	if (smtpd->stopping && session_count() == 0)
		event_base_loopexit(smtpd->base, NULL);
}

static void
begin_stop(void)
{
	struct timeval tv = { 10, 0 };

	if (smtpd->stopping)
		return;
	smtpd->stopping = 1;
	mr_ipc_stopping();
	stop_listening();
	event_base_once(smtpd->base, -1, EV_TIMEOUT, stop_timeout, NULL, &tv);
	smtpd_maybe_exit();
}

static void
on_sigterm(evutil_socket_t sig, short ev, void *arg)
{
	(void)sig;
	(void)ev;
	(void)arg;
	begin_stop();
}

static void
master_cb(struct mr_ipc *c, struct mr_ipc_msg *msg, void *arg)
{
	uint32_t kind;

	(void)arg;
	if (msg == NULL) {
		/* the master is gone: nobody supervises us any more */
		mr_ipc_free(c);
		smtpd->master = NULL;
		event_base_loopexit(smtpd->base, NULL);
		return;
	}
	switch (msg->type) {
	case MR_M_SHUTDOWN:
		begin_stop();
		break;
	case MR_M_PEER:
		kind = mr_ipc_peer_kind(msg);
		if (kind != MR_PROC_QUEUED) {
			mr_warn("master: bad PEER message");
			break;
		}
		if (smtpd->queued != NULL)
			mr_ipc_free(smtpd->queued);
		session_queued_lost();
		smtpd->queued = mr_ipc_new(smtpd->base, msg->fd, "queued",
		    MR_MSG_MAX, queued_cb, NULL);
		msg->fd = -1;
		mr_info("connected to queued");
		break;
	default:
		mr_warn("master: unexpected message type %u", msg->type);
	}
	if (msg->fd >= 0)
		close(msg->fd);
}

static int
handle_queued(struct mr_ipc_msg *msg)
{
	struct mr_m_reply r;
	const char *err;

	if (mr_msg_reply(msg->type, msg->data, msg->len, &r, &err) == -1)
		return -1;
	switch (msg->type) {
	case MR_Q_NEW_OK:
		if (msg->fd < 0)
			return -1;
		session_new_ok(r.req, r.text, msg->fd);
		msg->fd = -1;
		return 0;
	case MR_Q_NEW_FAIL:
		session_new_fail(r.req, r.text);
		return 0;
	default:
		session_commit_done(r.req, msg->type == MR_Q_COMMIT_OK, r.text);
		return 0;
	}
}

static void
queued_cb(struct mr_ipc *c, struct mr_ipc_msg *msg, void *arg)
{
	(void)arg;
	if (msg != NULL && handle_queued(msg) == 0) {
		if (msg->fd >= 0)
			close(msg->fd);
		return;
	}
	mr_ipc_peer_gone(c, msg, smtpd->master, MR_PROC_QUEUED);
	smtpd->queued = NULL;
	session_queued_lost();
}

int
main(int argc, char *argv[])
{
	struct event *sigterm;

	smtpd = mr_xcalloc(1, sizeof(*smtpd));
	smtpd->cfg = mr_child_start("smtpd", argc, argv);
	smtpd->conns = mr_xcalloc(smtpd->cfg->nservers, sizeof(unsigned));
	smtpd->base = mr_child_loop();
	mr_privdrop("smtpd", smtpd->cfg->smtpd_user,
	    geteuid() == 0 ? smtpd->cfg->chroot : NULL);
	/* smtpd opens no file at all: it writes only descriptors queued
	 * hands it */
	mr_sandbox_files("smtpd", NULL, NULL);
	mr_sandbox_syscalls("smtpd");

	smtpd->master = mr_ipc_new(smtpd->base, MR_FD_MASTER, "mailrootd",
	    MR_MSG_MAX, master_cb, NULL);
	if (mr_ipc_is_channel(MR_FD_PEER1))
		smtpd->queued = mr_ipc_new(smtpd->base, MR_FD_PEER1, "queued",
		    MR_MSG_MAX, queued_cb, NULL);
	else
		close(MR_FD_PEER1);
	setup_listeners();
	sigterm = evsignal_new(smtpd->base, SIGTERM, on_sigterm, NULL);
	event_add(sigterm, NULL);
	event_base_dispatch(smtpd->base);
	mr_info("smtpd: exiting");
	return 0;
}
