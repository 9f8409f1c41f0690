/*
 * etrn.c - hold-for-etrn (RFC 1985): mail for a remote domain with
 * `hold-for-etrn yes' stays in the queue, not offered to deliverd, until
 * smtpd forwards an ETRN for that domain (MR_Q_ETRN, from an allowed
 * client); then every recipient in that domain of the server's queued
 * messages is released and tried at once, and from then on like any
 * other (retried on the schedule if the next hop is still away).  Mail
 * that arrives later waits for the next ETRN.  The release lives in
 * memory: after a restart of queued the mail is held again.  An ETRN
 * while the queue is still being read at start (queue_sched.c) is
 * remembered and applied to each message read after it, as if the
 * message had been read first.
 * "mailrootctl etrn DOMAIN" (control_verbs.c) releases the same way.
 *
 * Security: the frame is decoded by mr_msg_etrn (length, clean text);
 * a bad server index drops smtpd.  queued checks in its own
 * configuration that the domain is held; a request for any other domain
 * is logged and does nothing (smtpd decides who may ask).
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "buf.h"
#include "conf.h"
#include "ipc_msg.h"
#include "log.h"
#include "queued.h"

static const struct mr_domain *
held_domain(const struct mr_server *srv, const char *domain)
{
	const struct mr_domain *d = mr_config_domain(srv, domain);

	return d != NULL && d->kind == MR_DOMAIN_REMOTE && d->hold_for_etrn ?
	    d : NULL;
}

/* 1 if recipient i of m waits for an ETRN. */
int
etrn_held(const struct qmsg *m, size_t i)
{
	const char *at = strrchr(m->rcpts[i].addr, '@');

	return !m->rcpts[i].etrn && !m->rcpts[i].local && at != NULL &&
	    held_domain(m->qs->srv, at + 1) != NULL;
}

/* Releases m's recipients in domain; 1 if there were any. */
static int
release(struct qmsg *m, const char *domain)
{
	size_t i;
	int any = 0;

	for (i = 0; i < m->nrcpts; i++) {
		const char *at = strrchr(m->rcpts[i].addr, '@');

		if (m->rcpts[i].state != R_PENDING || m->rcpts[i].local ||
		    at == NULL || strcasecmp(at + 1, domain) != 0)
			continue;
		m->rcpts[i].etrn = 1;
		any = 1;
	}
	return any;
}

/* the ETRNs made while the queue is being read (the first ones only:
 * beyond that, messages not read yet wait for the next ETRN) */
#define EARLY_MAX	64

static struct early {
	size_t	 server;
	char	*domain;
} early[EARLY_MAX];
static size_t nearly;

static void
remember(size_t si, const char *domain)
{
	size_t i;

	for (i = 0; i < nearly; i++)
		if (early[i].server == si &&
		    strcasecmp(early[i].domain, domain) == 0)
			return;
	if (nearly == EARLY_MAX) {
		mr_warn("ETRN %s during recovery: too many; messages not "
		    "read yet wait for the next ETRN", domain);
		return;
	}
	early[nearly].server = si;
	early[nearly].domain = mr_xstrdup(domain);
	nearly++;
}

void
etrn_recovered(struct qmsg *m)
{
	size_t i;
	int any = 0;

	for (i = 0; i < nearly; i++)
		if (m->qs == &q->servers[early[i].server])
			any |= release(m, early[i].domain);
	if (any)
		sched_now(m);
}

/* Releases domain's mail on server si: the number of messages, or -1
 * if the domain is not held for ETRN there. */
long
etrn_release(size_t si, const char *domain)
{
	struct qmsg *m;
	long n = 0;

	if (held_domain(q->servers[si].srv, domain) == NULL)
		return -1;
	/* first, so that deliverd has lifted a mark when the jobs come */
	queued_flush_deliverd((uint32_t)si, domain);
	for (m = q->msgs; m != NULL; m = m->next)
		if (m->qs == &q->servers[si] && release(m, domain)) {
			sched_now(m);
			n++;
		}
	if (q->recovering)
		remember(si, domain);
	return n;
}

/* MR_Q_ETRN from smtpd. */
void
etrn_request(const unsigned char *data, size_t len)
{
	struct mr_m_etrn req;
	const char *err;
	long n;

	if (mr_msg_etrn(data, len, &req, &err) == -1 ||
	    req.server >= q->nservers) {
		queued_drop_smtpd();
		return;
	}
	if ((n = etrn_release(req.server, req.domain)) == -1) {
		mr_warn("ETRN for %s, which is not held for ETRN: ignored",
		    req.domain);
		return;
	}
	mr_info("ETRN %s: %ld message%s released", req.domain, n,
	    n == 1 ? "" : "s");
}
