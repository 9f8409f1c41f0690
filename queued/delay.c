/*
 * delay.c - delay notifications (`delay-notify', IIS "Delay
 * notification", 12 hours by default): when a message has waited in the
 * queue that long with recipients still pending, its sender gets one
 * RFC 3464 report with "Action: delayed" for each of them, and delivery
 * goes on.  The outbound time applies while a pending recipient is
 * remote, the local time otherwise (as for expiry); 0 turns it off.
 *
 * NOTIFY (RFC 3461 4.1) decides per recipient: one given without DELAY
 * (NOTIFY=NEVER, NOTIFY=FAILURE, ...) keeps that recipient out of the
 * report, and a message whose pending recipients all said so gets none;
 * NOTIFY=DELAY, or no NOTIFY at all, gets one (as bounce.c treats
 * FAILURE: the MTA's choice when the client does not say is to tell).
 *
 * At most once per message: the envelope records "delay-notified 1"
 * after the report is queued, so a restart does not send it again.  The
 * report is made durable first: a crash in between may send it twice,
 * never not at all.  No report goes to the null sender (a DSN is never
 * answered by another), and none once every recipient is done.
 *
 * Security: the report holds the recipients' addresses and reply texts
 * from the envelope, single-line and free of control bytes (queue_env.c,
 * queue_sched.c set_line), and the original header section, as the
 * failure report does (bounce.c).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include "buf.h"
#include "dsn_param.h"
#include "log.h"
#include "queued.h"
#include "util.h"

/* Whether a pending recipient r is told about in a delay report. */
static int
wants_delay(const struct qrcpt *r)
{
	return r->state == R_PENDING &&
	    (r->notify == 0 || (r->notify & MR_NOTIFY_DELAY));
}

/* When m's sender is due a delay report; 0: never (or sent already). */
time_t
delay_at(const struct qmsg *m)
{
	const struct mr_delivery *d = &m->qs->srv->delivery;
	unsigned after = d->delay_notify_local;
	size_t i, pending = 0;

	if (m->delay_notified || m->sender[0] == '\0')
		return 0;
	for (i = 0; i < m->nrcpts; i++) {
		if (!wants_delay(&m->rcpts[i]))
			continue;
		pending++;
		if (!m->rcpts[i].local)
			after = d->delay_notify_outbound;
	}
	if (pending == 0 || after == 0)
		return 0;
	return m->created + (time_t)after;
}

static void
rfc5322_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

static void
compose_text(const struct qmsg *m, const char *nid, time_t until,
    struct mr_buf *b)
{
	const struct mr_server *srv = m->qs->srv;
	const char *dom = srv->masquerade_domain ? srv->masquerade_domain :
	    srv->fqdn;
	char date[64], retry[64];
	size_t i;

	rfc5322_date(time(NULL), date, sizeof(date));
	rfc5322_date(until, retry, sizeof(retry));
	mr_buf_printf(b, "From: Mail Delivery System <postmaster@%s>\r\n"
	    "To: <%s>\r\nSubject: Delivery Status Notification (Delay)\r\n"
	    "Date: %s\r\nMessage-ID: <%s@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s/%s\"\r\n\r\n", dom, m->sender, date, nid,
	    srv->fqdn, nid, srv->fqdn);
	mr_buf_printf(b, "--%s/%s\r\nContent-Type: text/plain; "
	    "charset=us-ascii\r\n\r\nThis is the mail system at %s.\r\n\r\n"
	    "Your message has not yet been delivered to the following "
	    "recipients.\r\nDelivery will be tried until %s; you need not "
	    "send it again.\r\n\r\n", nid, srv->fqdn, srv->fqdn, retry);
	for (i = 0; i < m->nrcpts; i++)
		if (wants_delay(&m->rcpts[i]))
			mr_buf_printf(b, "<%s>: %s\r\n", m->rcpts[i].addr,
			    m->rcpts[i].text ? m->rcpts[i].text :
			    "not yet tried");
}

/* RFC 3464 section 2.3: one block per pending recipient. */
static void
compose_status(const struct qmsg *m, const char *nid, time_t until,
    struct mr_buf *b)
{
	const struct mr_server *srv = m->qs->srv;
	char status[16], retry[64];
	size_t i;

	rfc5322_date(until, retry, sizeof(retry));
	mr_buf_printf(b, "\r\n--%s/%s\r\nContent-Type: "
	    "message/delivery-status\r\n\r\nReporting-MTA: dns; %s\r\n"
	    "X-Mailroot-Queue-ID: %s\r\n", nid, srv->fqdn, srv->fqdn, m->id);
	for (i = 0; i < m->nrcpts; i++) {
		if (!wants_delay(&m->rcpts[i]))
			continue;
		dsn_status_of(m->rcpts[i].text, status, sizeof(status),
		    "4.4.7");
		if (status[0] != '4')
			status[0] = '4';	/* delayed is transient */
		mr_buf_printf(b, "\r\nFinal-Recipient: rfc822; %s\r\n"
		    "Action: delayed\r\nStatus: %s\r\nWill-Retry-Until: %s\r\n",
		    m->rcpts[i].addr, status, retry);
		if (m->rcpts[i].text != NULL)
			mr_buf_printf(b, "Diagnostic-Code: smtp; %s\r\n",
			    m->rcpts[i].text);
	}
}

static int
send_report(const struct qmsg *m, time_t until)
{
	char path[4096], nid[MR_QID_LEN + 1];
	struct mr_buf b;
	int fd, rc;

	msg_path(m, "eml", path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		mr_err("%s: %s: %s", m->id, path, strerror(errno));
		return -1;
	}
	mr_queue_id(nid);
	mr_buf_init(&b);
	compose_text(m, nid, until, &b);
	compose_status(m, nid, until, &b);
	mr_buf_printf(&b, "\r\n--%s/%s\r\nContent-Type: text/rfc822-headers"
	    "\r\n\r\n", nid, m->qs->srv->fqdn);
	dsn_original_headers(fd, &b);
	mr_buf_printf(&b, "\r\n--%s/%s--\r\n", nid, m->qs->srv->fqdn);
	close(fd);
	rc = dsn_enqueue(m, nid, &b, 0);
	if (rc == 0)
		mr_info("%s: sender delay notification: %s", m->id, nid);
	mr_buf_free(&b);
	return rc;
}

/* Sends m's delay report if it is due; until is when m expires. */
void
delay_check(struct qmsg *m, time_t until)
{
	time_t at = delay_at(m);

	if (at == 0 || q_now() < at || at >= until)
		return;
	if (send_report(m, until) == -1)
		return;		/* tried again at the next check */
	m->delay_notified = 1;
	if (env_write(m) == -1)
		mr_err("%s: updating envelope: %s", m->id, strerror(errno));
}
