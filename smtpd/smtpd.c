/*
 * smtpd.c - process set-up and the IPC dispatch of smtpd.
 *
 * Security: smtpd faces the network.  It parses its configuration snapshot
 * and then drops to its own user inside an empty chroot before it accepts
 * a connection; it never opens a queue file (queued hands it one writable
 * descriptor per message).  It reads the certificates and keys of its
 * pkis at start, as root, before the chroot (tls.c); the keys stay in its
 * memory.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <openssl/x509v3.h>

#include "buf.h"
#include "child.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "privdrop.h"
#include "sandbox.h"
#include "proto.h"
#include "smtpd.h"
#include "auth.h"
#include "tls.h"
#include "util.h"

struct smtpd *smtpd;

static void	queued_cb(struct mr_ipc *, struct mr_ipc_msg *, void *);

static void
accept_cb(struct evconnlistener *ev, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
	struct listener *l = arg;

	(void)ev;
	if (l->lcfg->proxy)
		proxy_accept(l, fd, sa, len);
	else
		session_accept(l, fd, sa, len);
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

/*
 * A generation: one configuration and the listeners made from it.  The
 * current generation holds a reference, and so does each session it
 * accepted: after a reload the open sessions finish under the settings
 * they started with, and the old configuration goes with the last one.
 */
struct gen {
	struct mr_config	*cfg;
	SSL_CTX			**tls;		/* one per pki of cfg */
	struct listener		*listeners;
	size_t			 nlisteners;
	unsigned		 refs;
};

/* No more connections through g's listeners. */
static void
gen_quiet(struct gen *g)
{
	size_t i;

	for (i = 0; i < g->nlisteners; i++) {
		struct listener *l = &g->listeners[i];

		if (l->ev != NULL)
			evconnlistener_free(l->ev);
		l->ev = NULL;
		if (l->fd != -1 && close(l->fd) == -1)
			mr_warn("listener %s: close: %s", l->lcfg->text,
			    strerror(errno));
		l->fd = -1;
	}
}

static void
gen_free(struct gen *g)
{
	gen_quiet(g);
	free(g->listeners);
	tls_free(g->tls, g->cfg->npkis);
	mr_config_free(g->cfg);
	free(g);
}

void
smtpd_hold(struct listener *l)
{
	l->gen->refs++;
}

void
smtpd_release(struct listener *l)
{
	struct gen *g = l->gen;

	if (g->refs == 0)
		mr_panic("smtpd_release: configuration not held");
	if (--g->refs == 0)
		gen_free(g);
}

/*
 * Accepts on fd for l.  Servers sharing an implicit TLS address share
 * its socket: the first one accepts, and the client's SNI name may hand
 * the session to another (smtpd_sni_listener).
 */
static int
listener_start(struct gen *g, struct listener *l, int fd)
{
	size_t i;

	if (l->tls != NULL) {
		SSL_CTX_set_client_hello_cb(l->tls, session_hello, NULL);
		SSL_CTX_set_tlsext_servername_callback(l->tls, session_sni);
	}
	for (i = 0; i < g->nlisteners; i++)
		if (strcmp(g->listeners[i].lcfg->text, l->lcfg->text) == 0)
			return 0;
	/* backlog 0: mailrootd listens already (1024) */
	if (mr_set_nonblock(fd) == -1 ||
	    (l->ev = evconnlistener_new(smtpd->base, accept_cb, l, 0, 0,
	    fd)) == NULL) {
		mr_err("listener %s: %s", l->lcfg->text, strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(l->ev, accept_error_cb);
	return 0;
}

struct listener *
smtpd_sni_listener(struct listener *l, const char *name)
{
	struct gen *g = l->gen;
	X509 *cert;
	size_t i;

	for (i = 0; i < g->nlisteners; i++) {
		struct listener *o = &g->listeners[i];

		if (o->tls == NULL || strcmp(o->lcfg->text, l->lcfg->text) != 0)
			continue;
		if (strcasecmp(o->srv->fqdn, name) == 0 ||
		    ((cert = SSL_CTX_get0_certificate(o->tls)) != NULL &&
		    X509_check_host(cert, name, 0, 0, NULL) == 1))
			return o;
	}
	return NULL;
}

/*
 * Listens on fds, one per listen of cfg in configuration order, with the
 * certificates tls.  Returns the new generation (owning cfg, tls and
 * fds), or NULL with cfg, tls and fds left to the caller.
 */
static struct gen *
gen_new(struct mr_config *cfg, SSL_CTX **tls, const int *fds, size_t nfds)
{
	struct gen *g = mr_xcalloc(1, sizeof(*g));
	size_t s, i, n = 0;

	for (s = 0; s < cfg->nservers; s++)
		n += cfg->servers[s].nlistens;
	if (n != nfds) {
		mr_err("%zu listeners configured, %zu received", n, nfds);
		goto fail;
	}
	g->listeners = mr_xcalloc(n ? n : 1, sizeof(struct listener));
	for (s = 0; s < cfg->nservers; s++)
		for (i = 0; i < cfg->servers[s].nlistens; i++) {
			struct listener *l = &g->listeners[g->nlisteners];

			l->gen = g;
			l->srv = &cfg->servers[s];
			l->lcfg = &l->srv->listens[i];
			l->tls = tls_ctx_of(tls, cfg, l->srv);
			l->fd = -1;
			if (listener_start(g, l, fds[g->nlisteners]) == -1)
				goto fail;
			g->nlisteners++;
		}
	for (i = 0; i < n; i++)
		g->listeners[i].fd = fds[i];
	g->cfg = cfg;
	g->tls = tls;
	g->refs = 1;
	return g;
fail:
	gen_quiet(g);		/* the descriptors are not its own yet */
	free(g->listeners);
	free(g);
	return NULL;
}

/* Listeners of the configuration smtpd started with (MR_FD_LISTEN...),
 * with the certificates read before the chroot. */
static void
start_listening(SSL_CTX **tls)
{
	size_t s, i, n = 0;
	int *fds;

	for (s = 0; s < smtpd->cfg->nservers; s++)
		n += smtpd->cfg->servers[s].nlistens;
	fds = mr_xcalloc(n ? n : 1, sizeof(int));
	for (i = 0; i < n; i++) {
		fds[i] = MR_FD_LISTEN + (int)i;
		mr_set_cloexec(fds[i], 1);
	}
	if ((smtpd->gen = gen_new(smtpd->cfg, tls, fds, n)) == NULL)
		mr_fatal("cannot listen");
	free(fds);
}

/*
 * MR_M_CONFIG: new sessions get cfg and listen on fds; the open ones
 * keep theirs.  The server list must be the one smtpd started with
 * (indexes go to queued): mailrootd restarts smtpd when it changes.
 */
static int
reload(struct mr_config *cfg, int *fds, size_t nfds)
{
	struct gen *g, *old = smtpd->gen;
	SSL_CTX **tls;

	if (smtpd->stopping) {
		mr_info("reload ignored: stopping");
		return -1;
	}
	if (cfg->nservers != smtpd->cfg->nservers) {
		mr_err("reload: the list of servers changed; smtpd keeps "
		    "the running configuration until it is restarted");
		return -1;
	}
	if ((tls = tls_load_pending(cfg)) == NULL ||
	    (g = gen_new(cfg, tls, fds, nfds)) == NULL) {
		tls_free(tls, cfg->npkis);
		mr_err("reload: the running configuration stays in force");
		return -1;
	}
	smtpd->gen = g;
	smtpd->cfg = cfg;
	gen_quiet(old);
	if (--old->refs == 0)
		gen_free(old);
	return 0;
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
	gen_quiet(smtpd->gen);
	event_base_once(smtpd->base, -1, EV_TIMEOUT, stop_timeout, NULL, &tv);
	smtpd_maybe_exit();
}

/* mailrootd is gone: nobody supervises us any more */
static void
orphaned(void)
{
	event_base_loopexit(smtpd->base, NULL);
}

/* MR_M_PEER: a new channel to queued. */
static int
set_queued(uint32_t kind, int fd)
{
	if (kind != MR_PROC_QUEUED)
		return -1;
	if (smtpd->queued != NULL)
		mr_ipc_free(smtpd->queued);
	session_queued_lost();
	rdns_queued_lost();
	smtpd->queued = mr_ipc_new(smtpd->base, fd, "queued", MR_MSG_MAX,
	    queued_cb, NULL);
	mr_info("connected to queued");
	session_report_all();
	return 0;
}

static const struct mr_child_ops child_ops = {
	.stop = begin_stop,
	.orphaned = orphaned,
	.peer = set_queued,
	.reload = reload,
	.pki = tls_pki_frame,
};

static int
handle_queued(struct mr_ipc_msg *msg)
{
	struct mr_m_rcpt_verdict v;
	struct mr_m_auth_reply ar;
	struct mr_m_reply r;
	const char *err;

	if (msg->type == MR_Q_RCPT_VERDICT) {
		if (mr_msg_rcpt_verdict(msg->data, msg->len, &v, &err) == -1)
			return -1;
		session_rcpt_verdict(v.req, v.verdict);
		return 0;
	}
	if (msg->type == MR_Q_AUTH_REPLY) {
		if (msg->fd >= 0 ||
		    mr_msg_auth_reply(msg->data, msg->len, &ar, &err) == -1)
			return -1;
		session_auth_done(ar.req, ar.result);
		return 0;
	}
	if (msg->type == MR_R_PTR_ANSWER)
		return msg->fd < 0 ? rdns_answer(msg->data, msg->len) : -1;
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
		session_commit_done(r.req, msg->type == MR_Q_COMMIT_OK ? 1 :
		    msg->type == MR_Q_COMMIT_REJECT ? -1 : 0, r.text);
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
	mr_ipc_peer_gone(c, msg, mr_child_master(), MR_PROC_QUEUED);
	smtpd->queued = NULL;
	session_queued_lost();
	rdns_queued_lost();
}

int
main(int argc, char *argv[])
{
	SSL_CTX **tls;
	size_t i;

	smtpd = mr_xcalloc(1, sizeof(*smtpd));
	smtpd->cfg = mr_child_start("smtpd", argc, argv);
	smtpd->conns = mr_xcalloc(smtpd->cfg->nservers, sizeof(unsigned));
	smtpd->clients = mr_xcalloc(smtpd->cfg->nservers,
	    sizeof(struct client_table *));
	for (i = 0; i < smtpd->cfg->nservers; i++)
		smtpd->clients[i] = client_table_new();
	smtpd->base = mr_child_loop();
	/* the key files may be root's alone: read before the chroot */
	if ((tls = tls_load_files(smtpd->cfg)) == NULL)
		mr_fatal("cannot load the certificates");
	mr_privdrop("smtpd", smtpd->cfg->smtpd_user,
	    geteuid() == 0 ? smtpd->cfg->chroot : NULL);
	/* smtpd opens no file at all: it writes only descriptors queued
	 * hands it */
	mr_sandbox_files("smtpd", NULL, NULL);
	mr_sandbox_syscalls("smtpd", MR_PROC_SMTPD);

	mr_child_serve(smtpd->base, &child_ops);
	if (mr_ipc_is_channel(MR_FD_PEER1))
		smtpd->queued = mr_ipc_new(smtpd->base, MR_FD_PEER1, "queued",
		    MR_MSG_MAX, queued_cb, NULL);
	else
		close(MR_FD_PEER1);
	start_listening(tls);
	event_base_dispatch(smtpd->base);
	mr_child_end();
	mr_info("smtpd: exiting");
	return 0;
}
