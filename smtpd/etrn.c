/*
 * etrn.c - the ETRN command (RFC 1985): a client asks that the mail held
 * for its domain (`hold-for-etrn yes') be delivered now.
 *
 * smtpd answers from its own configuration: 250 when the domain is a
 * remote domain held for ETRN and the client is on its `etrn-allow' list
 * (the request then goes to queued, which releases the domain's mail),
 * 459 when the domain is not held or the client not allowed, 458 when
 * queued cannot be asked (down) or a "#queue" name is given (mailroot
 * keeps no named queues), 501 on a syntax error.  "@domain" is taken as
 * the domain itself: subdomains are not released.
 *
 * Security: the argument comes from the network.  It is checked to be a
 * domain name (letters, digits, "-", "."; at most 255 bytes) before it
 * is looked up, logged or sent to queued; queued checks again that the
 * domain is held and releases nothing else (queued/etrn.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "smtpd.h"

static int
domain_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 255 || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
			return 0;
	return 1;
}

/* 1 if srv has a domain held for ETRN (EHLO then offers ETRN). */
int
etrn_offered(const struct mr_server *srv)
{
	size_t i;

	for (i = 0; i < srv->ndomains; i++)
		if (srv->domains[i].kind == MR_DOMAIN_REMOTE &&
		    srv->domains[i].hold_for_etrn)
			return 1;
	return 0;
}

/* The reply to "ETRN arg" from the client at peer (a full reply line). */
void
etrn_reply(const struct mr_server *srv, const struct sockaddr *peer,
    const char *arg, char *out, size_t len)
{
	const struct mr_domain *d;
	const char *dom = arg[0] == '@' ? arg + 1 : arg;
	struct mr_buf b;

	if (arg[0] == '#') {
		snprintf(out, len, "458 4.0.0 Unable to queue messages for "
		    "node: mailroot has no named queues");
		return;
	}
	if (!domain_ok(dom)) {
		snprintf(out, len, "501 5.5.4 Syntax: ETRN domain");
		return;
	}
	d = mr_config_domain(srv, dom);
	if (d == NULL || d->kind != MR_DOMAIN_REMOTE || !d->hold_for_etrn ||
	    !mr_access_check(&d->etrn_allow, peer, NULL)) {
		snprintf(out, len, "459 4.0.0 Node %s not allowed: %s", dom,
		    d == NULL || d->kind != MR_DOMAIN_REMOTE ||
		    !d->hold_for_etrn ? "no mail is held for it" :
		    "this client may not release it");
		return;
	}
	if (smtpd->queued == NULL) {
		snprintf(out, len, "458 4.0.0 Unable to queue messages for "
		    "node %s", dom);
		return;
	}
	mr_buf_init(&b);
	mr_buf_put_u32(&b, (uint32_t)srv->index);
	mr_buf_put_str(&b, d->name);
	mr_ipc_sendb(smtpd->queued, MR_Q_ETRN, -1, &b);
	mr_buf_free(&b);
	mr_info("ETRN %s: queuing started", d->name);
	snprintf(out, len, "250 2.0.0 Queuing for node %s started", dom);
}
