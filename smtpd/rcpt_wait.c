/*
 * rcpt_wait.c - smtpd's half of the recipient check at RCPT: which
 * recipients queued must vet (those of a local domain with a recipients
 * table, directly or through alias-of) and the question sent to it.
 * The session waits for MR_Q_RCPT_VERDICT without blocking the loop
 * (smtp_session.c, S_WAIT_RCPT); queued/rcpt_check.c answers.
 *
 * Security: smtpd has no files, so it cannot read the table itself; it
 * sends only a mailbox its own parser produced.
 */
#include "config.h"

#include "buf.h"
#include "ipc.h"
#include "proto.h"
#include "smtpd.h"

/* The local domain that owns domain's tables, if it has a recipients
 * table; else NULL (every user is accepted). */
static const struct mr_domain *
checked_domain(const struct mr_server *srv, const char *domain)
{
	const struct mr_domain *d = mr_config_domain(srv, domain);

	if (d != NULL && d->kind == MR_DOMAIN_ALIAS)
		d = mr_config_domain(srv, d->alias_of);
	if (d == NULL || d->kind != MR_DOMAIN_LOCAL || d->recipients == NULL)
		return NULL;
	return d;
}

int
rcpt_check_send(const struct mr_server *srv, uint64_t req,
    const char *addr, const char *domain)
{
	struct mr_buf b;

	if (checked_domain(srv, domain) == NULL)
		return 0;
	if (smtpd->queued == NULL)
		return -1;
	mr_buf_init(&b);
	mr_buf_put_u64(&b, req);
	mr_buf_put_u32(&b, (uint32_t)srv->index);
	mr_buf_put_str(&b, addr);
	mr_ipc_sendb(smtpd->queued, MR_Q_RCPT_CHECK, -1, &b);
	mr_buf_free(&b);
	return 1;
}
