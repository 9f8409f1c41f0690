/*
 * bounce.c - delivery status notifications (RFC 3464) for recipients that
 * failed, and Badmail for what cannot be bounced.
 *
 * A failed message yields one DSN to its envelope sender (and a copy to
 * ndr-copy-to, IIS "Send copy of Non-Delivery Report to"), queued like
 * any other message with the null sender.  The client's DSN parameters
 * (RFC 3461) decide: NOTIFY=NEVER, or a NOTIFY without FAILURE, means no
 * report of that recipient's failure; NOTIFY=SUCCESS a "delivered"
 * report for Drop and a "relayed" one for a next hop without DSN (one
 * with DSN reports itself); RET=FULL returns the whole message with a
 * failure; ENVID and ORCPT go into the report's fields.  A message whose sender is
 * already null (a bounce that failed) goes to Badmail as ID.BAD with the
 * reason in ID.BDR, as IIS did; it is never bounced again (no loops).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "dsn_param.h"
#include "log.h"
#include "queued.h"
#include "util.h"

#define HEADERS_MAX	(64 * 1024)

/* "5.1.1" found in a reply text, or the default. */
void
dsn_status_of(const char *text, char *out, size_t len, const char *def)
{
	const char *p;

	for (p = text ? text : ""; *p != '\0'; p++) {
		if ((p[0] == '4' || p[0] == '5') && p[1] == '.' &&
		    isdigit((unsigned char)p[2]) && (p == text ||
		    p[-1] == ' ')) {
			size_t n = strspn(p, "0123456789.");

			if (n >= 5 && n < len) {
				memcpy(out, p, n);
				out[n] = '\0';
				return;
			}
		}
	}
	snprintf(out, len, "%s", def);
}

/* The original header section, at most HEADERS_MAX bytes. */
void
dsn_original_headers(int fd, struct mr_buf *out)
{
	char buf[HEADERS_MAX];
	ssize_t n;
	char *end;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	end = strstr(buf, "\r\n\r\n");
	mr_buf_add(out, buf, end ? (size_t)(end - buf) + 2 : (size_t)n);
}

/* Whether r gets a report (RFC 3461 4.1): a failure unless NOTIFY
 * left FAILURE out; a success where NOTIFY=SUCCESS asked for it and
 * nobody after us will report it (Drop, or a next hop without DSN). */
static int
report_wanted(const struct qrcpt *r)
{
	if (r->state == R_FAILED)
		return r->notify == 0 || (r->notify & MR_NOTIFY_FAILURE);
	if (r->state == R_SENT)
		return (r->notify & MR_NOTIFY_SUCCESS) &&
		    (r->local || r->relayed);
	return 0;
}

static const char *
action_of(const struct qrcpt *r)
{
	if (r->state == R_FAILED)
		return "failed";
	return r->local ? "delivered" : "relayed";
}

/* The whole message (RET=FULL), bounded by what the queue holds. */
static void
original_message(int fd, struct mr_buf *out)
{
	char buf[65536];
	off_t off = 0;
	ssize_t n;

	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		mr_buf_add(out, buf, (size_t)n);
		off += n;
	}
}

/* The human-readable part: one line per recipient reported. */
static void
compose_text(const struct qmsg *m, int failures, struct mr_buf *b)
{
	const char *fqdn = m->qs->srv->fqdn;
	size_t i;

	mr_buf_printf(b, "This is the mail system at %s.\r\n\r\n", fqdn);
	mr_buf_adds(b, failures ? "Your message could not be delivered to "
	    "the following recipients:\r\n\r\n" : "Your message was "
	    "delivered or passed on as follows:\r\n\r\n");
	for (i = 0; i < m->nrcpts; i++) {
		const struct qrcpt *r = &m->rcpts[i];

		if (!report_wanted(r))
			continue;
		if (r->state == R_FAILED)
			mr_buf_printf(b, "<%s>: %s\r\n", r->addr, r->text ?
			    r->text : "delivery time expired");
		else
			mr_buf_printf(b, "<%s>: %s\r\n", r->addr, r->local ?
			    "delivered to the mailbox" : "relayed to a mail "
			    "system that does not send delivery reports");
	}
}

/* The message/delivery-status part (RFC 3464). */
static void
compose_status(const struct qmsg *m, struct mr_buf *b)
{
	char status[16];
	size_t i;

	mr_buf_printf(b, "Reporting-MTA: dns; %s\r\n", m->qs->srv->fqdn);
	if (m->envid != NULL)
		mr_buf_printf(b, "Original-Envelope-Id: %s\r\n", m->envid);
	mr_buf_printf(b, "X-Mailroot-Queue-ID: %s\r\n", m->id);
	for (i = 0; i < m->nrcpts; i++) {
		const struct qrcpt *r = &m->rcpts[i];

		if (!report_wanted(r))
			continue;
		if (r->state == R_FAILED)
			dsn_status_of(r->text, status, sizeof(status), "4.4.7");
		else
			snprintf(status, sizeof(status), "2.0.0");
		mr_buf_adds(b, "\r\n");
		if (r->orcpt != NULL)
			mr_buf_printf(b, "Original-Recipient: %s\r\n",
			    r->orcpt);
		mr_buf_printf(b, "Final-Recipient: rfc822; %s\r\n"
		    "Action: %s\r\nStatus: %s\r\n", r->addr, action_of(r),
		    status);
		if (r->state == R_FAILED && r->text != NULL)
			mr_buf_printf(b, "Diagnostic-Code: smtp; %s\r\n",
			    r->text);
	}
}

static void
compose(const struct qmsg *m, const char *nid, int datafd, int failures,
    struct mr_buf *b)
{
	const struct mr_server *srv = m->qs->srv;
	const char *dom = srv->masquerade_domain ? srv->masquerade_domain :
	    srv->fqdn;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	/* RFC 3461 4.3: the whole message only where RET=FULL asked and
	 * something failed; a success report carries the headers */
	int full = failures && m->ret == MR_RET_FULL;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	mr_buf_printf(b, "From: Mail Delivery System <postmaster@%s>\r\n"
	    "To: <%s>\r\nSubject: Delivery Status Notification (%s)\r\n"
	    "Date: %s\r\nMessage-ID: <%s@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s/%s\"\r\n\r\n", dom, m->sender,
	    failures ? "Failure" : "Success", date, nid, srv->fqdn, nid,
	    srv->fqdn);
	mr_buf_printf(b, "--%s/%s\r\nContent-Type: text/plain; "
	    "charset=us-ascii\r\n\r\n", nid, srv->fqdn);
	compose_text(m, failures, b);
	mr_buf_printf(b, "\r\n--%s/%s\r\nContent-Type: "
	    "message/delivery-status\r\n\r\n", nid, srv->fqdn);
	compose_status(m, b);
	mr_buf_printf(b, "\r\n--%s/%s\r\nContent-Type: %s\r\n\r\n", nid,
	    srv->fqdn, full ? "message/rfc822" : "text/rfc822-headers");
	if (full)
		original_message(datafd, b);
	else
		dsn_original_headers(datafd, b);
	mr_buf_printf(b, "\r\n--%s/%s--\r\n", nid, srv->fqdn);
}

/* Writes a report as a new durable message in m's queue from the null
 * sender to m's sender (and ndr-copy-to when copy) and schedules it. */
int
dsn_enqueue(const struct qmsg *m, const char *nid, const struct mr_buf *data,
    int copy)
{
	struct qmsg *n;
	char tmp[4096], path[4096];
	int fd, nr;

	n = msg_new(m->qs, nid);
	n->sender = qstr_get("");
	n->client = qstr_get("");
	n->helo = qstr_get("");
	nr = m->qs->srv->ndr_copy_to && copy ? 2 : 1;
	n->rcpts = mr_xcalloc((size_t)nr, sizeof(struct qrcpt));
	n->rcpts[0].addr = mr_xstrdup(m->sender);
	if (nr == 2)
		n->rcpts[1].addr = mr_xstrdup(m->qs->srv->ndr_copy_to);
	n->nrcpts = (uint32_t)nr;
	n->created = q_now();
	n->size = data->len;
	snprintf(tmp, sizeof(tmp), "%s/%s.eml", n->qs->tmp, n->id);
	msg_path(n, "eml", path, sizeof(path));
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd == -1 || mr_write_all(fd, data->data, data->len) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1 || rename(tmp, path) == -1 ||
	    env_write(n) == -1) {
		mr_err("%s: cannot queue a DSN: %s", m->id, strerror(errno));
		unlink(tmp);
		unlink(path);
		msg_free(n);
		return -1;
	}
	sched_add(n);
	return 0;
}

static int
to_badmail(const struct qmsg *m, int datafd)
{
	char path[4096], reason[1024];
	struct mr_buf b;
	size_t i;
	int fd, rc = -1;
	char buf[65536];
	off_t off = 0;
	ssize_t n;

	if (!m->qs->srv->badmail) {
		mr_warn("%s: undeliverable DSN discarded (badmail off)", m->id);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%s.BAD", m->qs->badmail, m->id);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1)
		goto out;
	while ((n = pread(datafd, buf, sizeof(buf), off)) > 0) {
		if (mr_write_all(fd, buf, (size_t)n) == -1)
			break;
		off += n;
	}
	if (n != 0 || fsync(fd) == -1 || close(fd) == -1)
		goto out;
	mr_buf_init(&b);
	mr_buf_adds(&b, "Unable to deliver this message because the "
	    "following error was encountered: This message is a delivery "
	    "status notification that cannot be delivered.\r\n");
	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == R_FAILED)
			mr_buf_printf(&b, "<%s>: %s\r\n", m->rcpts[i].addr,
			    m->rcpts[i].text ? m->rcpts[i].text : "expired");
	snprintf(reason, sizeof(reason), "%s/%s.BDR", m->qs->badmail, m->id);
	if (mr_write_file_atomic(reason, b.data, b.len, 0640) == 0 &&
	    mr_fsync_dir(m->qs->badmail) == 0) {
		metrics_add(m->qs, MC_BADMAIL, 1);
		rc = 0;
	}
	mr_buf_free(&b);
	mr_warn("%s: undeliverable DSN moved to Badmail", m->id);
	return rc;
out:
	mr_err("%s: Badmail: %s", m->id, strerror(errno));
	return -1;
}

int
bounce_send(const struct qmsg *m)
{
	char path[4096], nid[MR_QID_LEN + 1];
	struct mr_buf b;
	size_t i, failed = 0, reports = 0, failures = 0;
	int fd, rc;

	for (i = 0; i < m->nrcpts; i++) {
		failed += m->rcpts[i].state == R_FAILED;
		reports += report_wanted(&m->rcpts[i]);
		failures += report_wanted(&m->rcpts[i]) &&
		    m->rcpts[i].state == R_FAILED;
	}
	if (failed == 0 && reports == 0)
		return 0;
	if (m->sender[0] != '\0' && reports == 0) {
		mr_info("%s: no delivery status notification: NOTIFY asked "
		    "for none (NOTIFY=NEVER or without FAILURE)", m->id);
		return 0;
	}
	if (m->sender[0] == '\0' && failed == 0)
		return 0;	/* a report is never reported on */
	msg_path(m, "eml", path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		mr_err("%s: %s: %s", m->id, path, strerror(errno));
		return -1;
	}
	if (m->sender[0] == '\0') {
		rc = to_badmail(m, fd);
		close(fd);
		return rc;
	}
	mr_queue_id(nid);
	mr_buf_init(&b);
	compose(m, nid, fd, failures > 0, &b);
	close(fd);
	rc = dsn_enqueue(m, nid, &b, failures > 0);
	if (rc == 0)
		mr_info("%s: sender %s notification: %s", m->id, failures ?
		    "non-delivery" : "delivery status", nid);
	if (rc == 0 && failures > 0)
		metrics_add(m->qs, MC_NDRS, 1);
	mr_buf_free(&b);
	return rc;
}
