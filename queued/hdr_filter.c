/*
 * hdr_filter.c - a server's header-checks table applied to a message
 * before it is committed (smtpd's at COMMIT, mailroot-sendmail's and
 * Pickup's before their commit): the evaluator is common/hdr_check.c,
 * this file reads the header section and looks the fields up in the
 * table queued holds (alias_table: opened once, reopened on change).
 *
 * What the actions do: REJECT refuses the message (smtpd answers 550
 * 5.7.1 at the end of DATA, mailroot-sendmail exits EX_DATAERR, a Pickup
 * file goes to Badmail); DISCARD accepts it and drops it, with a log
 * line; HOLD queues it with "hold" in its envelope, and the scheduler
 * offers it to no delivery until it is released; a table that cannot be
 * read refuses the message for now (451), never lets it through
 * unchecked.
 *
 * Security: reads at most MR_HC_SCAN_MAX bytes of the queue file queued
 * itself opened; the content is hostile and only the evaluator parses
 * it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "hdr_check.h"
#include "log.h"
#include "queued.h"
#include "table.h"
#include "util.h"

struct hf {
	struct mr_tbl	*t;
	char		 err[256];
};

static enum mr_table_res
hf_lookup(void *arg, const char *key, char **val)
{
	struct hf *h = arg;

	return mr_tbl_lookup(h->t, key, val, h->err, sizeof(h->err));
}

static void
report(const struct qmsg *m, const char *table, const struct hf *h,
    const struct mr_hc_result *r)
{
	if (r->bad > 0)
		mr_warn("%s: header-checks \"%s\": %u result%s with an "
		    "unknown action ignored (REJECT, DISCARD, HOLD, OK)",
		    m->id, table, r->bad, r->bad == 1 ? "" : "s");
	if (r->action == MR_HC_TEMPFAIL)
		mr_err("%s: header-checks \"%s\": %s; message refused for now",
		    m->id, table, h->err);
	else if (r->action != MR_HC_NONE)
		mr_info("%s: header check: %s: from=<%s> header=\"%s\"%s%s",
		    m->id, mr_hc_name(r->action), m->sender, r->field,
		    r->text[0] ? " text=" : "", r->text);
}

int
hdr_filter(const struct qmsg *m, const char *data, size_t len,
    char *text, size_t textlen)
{
	const char *name = m->qs->srv->header_checks;
	struct mr_hc_result r;
	struct hf h;

	snprintf(text, textlen, "Message content rejected");
	if (name == NULL)
		return MR_HC_NONE;
	memset(&h, 0, sizeof(h));
	if ((h.t = alias_table(name)) == NULL) {
		mr_err("%s: header-checks \"%s\": no such table", m->id, name);
		return MR_HC_TEMPFAIL;
	}
	mr_hc_eval(data, len, hf_lookup, &h, &r);
	report(m, name, &h, &r);
	if (r.action == MR_HC_REJECT && r.text[0] != '\0')
		snprintf(text, textlen, "%s", r.text);
	return r.action;
}

int
hdr_filter_fd(const struct qmsg *m, int fd, char *text, size_t textlen)
{
	char *buf;
	int a;
	ssize_t n;
	size_t got = 0;

	if (m->qs->srv->header_checks == NULL)
		return MR_HC_NONE;
	buf = mr_xmalloc(MR_HC_SCAN_MAX);
	while (got < MR_HC_SCAN_MAX && (n = pread(fd, buf + got,
	    MR_HC_SCAN_MAX - got, (off_t)got)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			mr_err("%s: reading the message for header checks: "
			    "%s", m->id, strerror(errno));
			free(buf);
			return MR_HC_TEMPFAIL;
		}
		got += (size_t)n;
	}
	a = hdr_filter(m, buf, got, text, textlen);
	free(buf);
	return a;
}
