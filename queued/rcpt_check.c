/*
 * rcpt_check.c - is a recipient of a local domain known?  smtpd, which
 * has no files, asks at RCPT (MR_Q_RCPT_CHECK) and waits for the verdict
 * (MR_Q_RCPT_VERDICT) before it answers the client.
 *
 * A local domain with a "recipients" table knows the users that table
 * names (key "user@domain", then "user"; the value is not used) and the
 * ones its aliases table names (looked up the same way, as alias.c
 * does): anyone else is unknown, and smtpd answers 550 5.1.1.  An
 * alias-of domain is checked as the domain it aliases.  A domain without
 * a recipients table accepts everyone, as IIS did.  A table that cannot
 * be read is a temporary failure (451 4.3.0), never an open door.
 *
 * Security: the request comes from smtpd and is decoded by
 * mr_msg_rcpt_check (a mailbox, bounded); a malformed one drops the
 * channel like any bad frame.  Tables are trusted like the
 * configuration and only read.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "queued.h"
#include "table.h"

/* "user@domain" then "user" in the table named name. */
static enum mr_table_res
known_in(const char *name, const char *addr, const char *domain)
{
	struct mr_tbl *t = alias_table(name);
	enum mr_table_res r;
	char err[256], *val = NULL, *user;

	if (t == NULL)
		return MR_TABLE_TEMPFAIL;
	r = mr_tbl_lookup(t, addr, &val, err, sizeof(err));
	if (r == MR_TABLE_NOTFOUND) {
		user = mr_xstrndup(addr, (size_t)(domain - 1 - addr));
		r = mr_tbl_lookup(t, user, &val, err, sizeof(err));
		free(user);
	}
	if (r == MR_TABLE_TEMPFAIL)
		mr_err("table \"%s\": %s", name, err);
	free(val);
	return r;
}

static enum mr_rverdict
verdict(const struct mr_server *srv, const char *rcpt)
{
	const struct mr_domain *d;
	const char *at = strrchr(rcpt, '@');
	char addr[MR_ADDR_MAX + 256 + 2];
	enum mr_table_res r;

	if (at == NULL || (d = mr_config_domain(srv, at + 1)) == NULL)
		return MR_RV_OK;
	if (d->kind == MR_DOMAIN_ALIAS &&
	    (d = mr_config_domain(srv, d->alias_of)) == NULL)
		return MR_RV_OK;
	if (d->kind != MR_DOMAIN_LOCAL || d->recipients == NULL)
		return MR_RV_OK;
	/* the address in the domain whose tables these are */
	snprintf(addr, sizeof(addr), "%.*s@%s", (int)(at - rcpt), rcpt,
	    d->name);
	at = strrchr(addr, '@');
	r = known_in(d->recipients, addr, at + 1);
	if (r == MR_TABLE_NOTFOUND && d->aliases != NULL)
		r = known_in(d->aliases, addr, at + 1);
	return r == MR_TABLE_FOUND ? MR_RV_OK : r == MR_TABLE_NOTFOUND ?
	    MR_RV_UNKNOWN : MR_RV_TEMPFAIL;
}

void
rcpt_check(struct mr_ipc *c, const unsigned char *data, size_t len)
{
	struct mr_m_rcpt_check req;
	struct mr_buf b;
	const char *err;
	uint32_t v;

	if (mr_msg_rcpt_check(data, len, &req, &err) == -1 ||
	    req.server >= q->nservers) {
		mr_warn("smtpd sent a malformed RCPT_CHECK; dropping the "
		    "channel");
		queued_drop_smtpd();
		return;
	}
	v = verdict(q->servers[req.server].srv, req.rcpt);
	if (v == MR_RV_UNKNOWN)
		mr_info("%s: not in the recipient table: rejected at RCPT",
		    req.rcpt);
	mr_buf_init(&b);
	mr_buf_put_u64(&b, req.req);
	mr_buf_put_u32(&b, v);
	mr_ipc_sendb(c, MR_Q_RCPT_VERDICT, -1, &b);
	mr_buf_free(&b);
}
