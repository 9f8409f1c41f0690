/*
 * child.c - what smtpd, queued and deliverd share: the start (arguments,
 * the configuration snapshot), the channel to mailrootd, SIGTERM, and
 * reloads: MR_M_LISTEN and MR_M_PKI frames (smtpd's new listeners and
 * certificates) then MR_M_CONFIG with a new snapshot, parsed here and
 * handed to the child to swap in.
 *
 * Security: the configuration comes from mailrootd's sealed snapshot,
 * the very bytes mailrootd checked, not from the file (which may have
 * changed since).  Frames from mailrootd are checked like any IPC input:
 * a malformed one is logged and ignored, its descriptor closed; a
 * snapshot that does not parse leaves the running configuration alone.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "child.h"
#include "conf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#define SNAPSHOT_MAX	(4 << 20)

static const char		*cfgname;	/* -f name, for messages */
static const struct mr_child_ops *ops;
static struct mr_ipc		*master;
static struct event		*sigterm;
static int			*lfds;		/* MR_M_LISTEN so far */
static size_t			 nlfds;

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
	cfgname = name;
	mr_config_keep_host_fqdn();
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

static void
drop_listeners(void)
{
	size_t i;

	for (i = 0; i < nlfds; i++)
		(void)close(lfds[i]);
	free(lfds);
	lfds = NULL;
	nlfds = 0;
}

/* MR_M_LISTEN: u32 position; fd = the listener.  Kept for MR_M_CONFIG. */
static void
on_listen(struct mr_ipc_msg *msg)
{
	const char *err;
	uint32_t pos;

	if (mr_msg_listen(msg->data, msg->len, &pos, &err) == -1 ||
	    msg->fd < 0 || pos != nlfds) {
		mr_warn("mailrootd: malformed LISTEN message ignored");
		drop_listeners();
		return;
	}
	lfds = mr_xreallocarray(lfds, nlfds + 1, sizeof(*lfds));
	lfds[nlfds++] = msg->fd;
	msg->fd = -1;
}

/* MR_M_CONFIG: u32 listeners sent before it; fd = the new snapshot. */
static void
on_config(struct mr_ipc_msg *msg)
{
	struct mr_config *cfg = NULL;
	const char *err;
	uint32_t n;
	size_t len;
	char *text = NULL;

	if (mr_msg_config(msg->data, msg->len, &n, &err) == -1 ||
	    msg->fd < 0 || n != nlfds) {
		mr_warn("mailrootd: malformed CONFIG message ignored");
		goto fail;
	}
	if ((text = mr_read_fd(msg->fd, SNAPSHOT_MAX, &len)) == NULL) {
		mr_err("reload: reading the configuration snapshot: %s; "
		    "the running configuration stays in force",
		    strerror(errno));
		goto fail;
	}
	/* mailrootd has logged the file's warnings already */
	if ((cfg = mr_config_parse(cfgname, text, len, NULL)) == NULL) {
		mr_err("reload: the configuration snapshot does not parse; "
		    "the running configuration stays in force");
		goto fail;
	}
	if (ops->reload(cfg, lfds, nlfds) == -1)
		goto fail;
	free(lfds);		/* the descriptors are the child's now */
	lfds = NULL;
	nlfds = 0;
	free(text);
	mr_info("configuration reloaded");
	return;
fail:
	mr_config_free(cfg);
	free(text);
	drop_listeners();
}

/* MR_M_PKI: u32 pki number, u32 chain length; fd = chain and key. */
static void
on_pki(struct mr_ipc_msg *msg)
{
	const char *err;
	uint32_t idx, certlen;

	if (mr_msg_pki(msg->data, msg->len, &idx, &certlen, &err) == -1 ||
	    msg->fd < 0 || ops->pki == NULL) {
		mr_warn("mailrootd: malformed PKI message ignored");
		return;
	}
	(void)ops->pki(idx, certlen, msg->fd);
}

static void
on_peer(struct mr_ipc_msg *msg)
{
	uint32_t kind = mr_ipc_peer_kind(msg);

	if (kind == 0 || ops->peer(kind, msg->fd) == -1) {
		mr_warn("mailrootd: bad PEER message ignored");
		return;
	}
	msg->fd = -1;
}

static void
master_cb(struct mr_ipc *c, struct mr_ipc_msg *msg, void *arg)
{
	(void)arg;
	if (msg == NULL) {
		mr_ipc_free(c);
		master = NULL;
		drop_listeners();
		ops->orphaned();
		return;
	}
	switch (msg->type) {
	case MR_M_SHUTDOWN:
		ops->stop();
		break;
	case MR_M_PEER:
		on_peer(msg);
		break;
	case MR_M_LISTEN:
		on_listen(msg);
		break;
	case MR_M_CONFIG:
		on_config(msg);
		break;
	case MR_M_PKI:
		on_pki(msg);
		break;
	case MR_M_RESTARTS:
		if (ops->restarts != NULL)
			ops->restarts(msg->data, msg->len);
		break;
	case MR_M_STOPPING:
		/* the peers that close next do so on purpose */
		mr_ipc_stopping();
		break;
	default:
		mr_warn("mailrootd: unexpected message type %u ignored",
		    msg->type);
	}
	if (msg->fd >= 0)
		close(msg->fd);
}

static void
on_sigterm(evutil_socket_t sig, short ev, void *arg)
{
	(void)sig;
	(void)ev;
	(void)arg;
	ops->stop();
}

void
mr_child_serve(struct event_base *base, const struct mr_child_ops *o)
{
	ops = o;
	master = mr_ipc_new(base, MR_FD_MASTER, "mailrootd", MR_MSG_MAX,
	    master_cb, NULL);
	sigterm = evsignal_new(base, SIGTERM, on_sigterm, NULL);
	if (sigterm == NULL || event_add(sigterm, NULL) == -1)
		mr_fatal("cannot watch SIGTERM");
}

struct mr_ipc *
mr_child_master(void)
{
	return master;
}

/*
 * The work is done and the process is on its way out.  Freeing the
 * SIGTERM event would put back the default action, and closing the
 * channel makes mailrootd end a child that did not ask to stop with
 * SIGTERM: so SIGTERM is ignored first, and the last words are said.
 */
void
mr_child_end(void)
{
	if (sigterm != NULL)
		event_free(sigterm);
	sigterm = NULL;
	(void)signal(SIGTERM, SIG_IGN);
	if (master != NULL)
		mr_ipc_free(master);
	master = NULL;
	drop_listeners();
}
