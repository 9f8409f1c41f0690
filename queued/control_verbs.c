/*
 * control_verbs.c - what each mailrootctl verb does to the queue, and its
 * answer in aligned columns or JSON (field names in mailrootctl(8)).
 *
 * Security: acts only on a request mr_ctl_parse accepted from a checked
 * peer (control.c).  Every change is logged with the peer's uid.  A
 * message at deliverd is neither deleted nor bounced (its result is on
 * the way); reload and stop are passed to mailrootd as a bare action,
 * which is all it will act on.  Message text shown to the administrator
 * is read from the queue file as it is; JSON strings escape every byte
 * a parser could mistake.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "child.h"
#include "control.h"
#include "ctl_proto.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

#define SHOW_HEADERS_MAX	(64 * 1024)
#define SHOW_BODY_MAX		(64 * 1024 * 1024)

static const char *const rcpt_state[] = { "pending", "sent", "failed" };

/* Held by mailrootctl ("control-hold yes") or by a header check
 * ("hold 1"): either keeps it from every delivery. */
static int
held(const struct qmsg *m)
{
	return m->ctl_hold || m->hold;
}

static const char *
msg_state(const struct qmsg *m)
{
	if (held(m))
		return "held";
	if (msg_job(m) != 0)
		return "active";
	return m->attempts > 0 ? "deferred" : "queued";
}

static void
iso_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t <= 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The bytes a JSON string may hold as they are, counted from s. */
static size_t
json_plain(const char *s)
{
	size_t n = 0;
	unsigned char c;

	while ((c = (unsigned char)s[n]) != '\0' && c >= 0x20 && c != 0x7f &&
	    c != '"' && c != '\\')
		n++;
	return n;
}

/* s as a JSON string: the runs of plain bytes copied whole (a queue of
 * 100 000 messages holds millions of them), the rest escaped. */
static void
json_str(struct mr_buf *b, const char *s)
{
	size_t n;

	mr_buf_add(b, "\"", 1);
	while (s != NULL && *s != '\0') {
		n = json_plain(s);
		mr_buf_add(b, s, n);
		s += n;
		if (*s == '"' || *s == '\\')
			mr_buf_printf(b, "\\%c", *s++);
		else if (*s != '\0')
			mr_buf_printf(b, "\\u%04x", (unsigned char)*s++);
	}
	mr_buf_add(b, "\"", 1);
}

static int
has_domain(const struct qmsg *m, const char *domain)
{
	size_t i;
	const char *at;

	for (i = 0; i < m->nrcpts; i++)
		if ((at = strrchr(m->rcpts[i].addr, '@')) != NULL &&
		    strcasecmp(at + 1, domain) == 0)
			return 1;
	return 0;
}

static int
has_rcpt_state(const struct qmsg *m, enum rcpt_state st)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == st)
			return 1;
	return 0;
}

static int
matches(const struct qmsg *m, const struct mr_ctl_req *r)
{
	if (r->server[0] != '\0' && strcmp(m->qs->srv->name, r->server) != 0)
		return 0;
	if (r->domain[0] != '\0' && !has_domain(m, r->domain))
		return 0;
	if (r->sender[0] != '\0' && strcasecmp(m->sender, r->sender) != 0)
		return 0;
	switch (r->state) {
	case MR_CTL_ST_PENDING:
		return !held(m) && has_rcpt_state(m, R_PENDING);
	case MR_CTL_ST_DEFERRED:
		return !held(m) && m->attempts > 0 &&
		    has_rcpt_state(m, R_PENDING);
	case MR_CTL_ST_HELD:
		return held(m);
	case MR_CTL_ST_FAILED:
		return has_rcpt_state(m, R_FAILED);
	default:
		return 1;
	}
}

/* Which holds keep m, for the columns: "held:ctl", "held:hdr" or
 * "held:both" (the JSON has "hold" for it). */
static const char *
state_column(const struct qmsg *m)
{
	if (m->ctl_hold && m->hold)
		return "held:both";
	if (m->hold)
		return "held:hdr";
	return m->ctl_hold ? "held:ctl" : msg_state(m);
}

static void
hold_json(struct mr_buf *b, const struct qmsg *m)
{
	mr_buf_adds(b, ",\"hold\":[");
	if (m->hold)
		mr_buf_adds(b, "\"header-check\"");
	if (m->hold && m->ctl_hold)
		mr_buf_adds(b, ",");
	if (m->ctl_hold)
		mr_buf_adds(b, "\"control\"");
	mr_buf_adds(b, "]");
}

static void
msg_json(struct mr_buf *b, const struct qmsg *m)
{
	char created[32], next[32];
	size_t i;

	iso_time(m->created, created, sizeof(created));
	iso_time(m->next_try, next, sizeof(next));
	mr_buf_adds(b, "{\"id\":");
	json_str(b, m->id);
	mr_buf_adds(b, ",\"server\":");
	json_str(b, m->qs->srv->name);
	mr_buf_printf(b, ",\"state\":\"%s\",\"created\":\"%s\",\"age\":%lld,"
	    "\"size\":%llu,\"attempts\":%u,\"next_try\":\"%s\",\"sender\":",
	    msg_state(m), created, (long long)(q_now() - m->created),
	    (unsigned long long)m->size, m->attempts, next);
	json_str(b, m->sender);
	hold_json(b, m);
	mr_buf_adds(b, ",\"recipients\":[");
	for (i = 0; i < m->nrcpts; i++) {
		mr_buf_adds(b, i ? ",{\"address\":" : "{\"address\":");
		json_str(b, m->rcpts[i].addr);
		mr_buf_printf(b, ",\"state\":\"%s\",\"last_error\":",
		    rcpt_state[m->rcpts[i].state]);
		if (m->rcpts[i].text != NULL &&
		    m->rcpts[i].state != R_SENT)
			json_str(b, m->rcpts[i].text);
		else
			mr_buf_adds(b, "null");
		mr_buf_adds(b, "}");
	}
	mr_buf_adds(b, "]}");
}

static void
age_str(time_t secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = 0;
	if (secs < 3600)
		snprintf(buf, len, "%lldm", (long long)secs / 60);
	else if (secs < 86400)
		snprintf(buf, len, "%lldh%02lldm", (long long)secs / 3600,
		    (long long)(secs % 3600) / 60);
	else
		snprintf(buf, len, "%lldd%02lldh", (long long)secs / 86400,
		    (long long)(secs % 86400) / 3600);
}

/* One message in columns: the message, then a line per recipient. */
static void
msg_line(struct mr_buf *b, const struct qmsg *m, int wsrv)
{
	char age[32], next[32];
	size_t i;

	age_str(q_now() - m->created, age, sizeof(age));
	iso_time(m->next_try, next, sizeof(next));
	mr_buf_printf(b, "%-24s  %-*s  %-7s  %10llu  %-9s  %-20s  <%s>\n",
	    m->id, wsrv, m->qs->srv->name, age, (unsigned long long)m->size,
	    state_column(m), next, m->sender);
	for (i = 0; i < m->nrcpts; i++)
		mr_buf_printf(b, "    %-7s  <%s>%s%s\n",
		    rcpt_state[m->rcpts[i].state], m->rcpts[i].addr,
		    m->rcpts[i].text && m->rcpts[i].state != R_SENT ?
		    "  " : "", m->rcpts[i].text && m->rcpts[i].state !=
		    R_SENT ? m->rcpts[i].text : "");
}

static void
verb_queue(struct conn *c, const struct mr_ctl_req *r)
{
	struct mr_buf b;
	const struct qmsg *m;
	size_t n = 0;
	int wsrv = 6;

	mr_buf_init(&b);
	for (m = q->msgs; m != NULL; m = m->next)
		if ((int)strlen(m->qs->srv->name) > wsrv)
			wsrv = (int)strlen(m->qs->srv->name);
	if (r->json)
		mr_buf_adds(&b, "{\"messages\":[");
	else
		mr_buf_printf(&b, "%-24s  %-*s  %-7s  %10s  %-9s  %-20s  %s\n",
		    "ID", wsrv, "SERVER", "AGE", "SIZE", "STATE", "NEXT-TRY",
		    "SENDER");
	for (m = q->msgs; m != NULL; m = m->next) {
		if (!matches(m, r))
			continue;
		if (r->json) {
			if (n > 0)
				mr_buf_adds(&b, ",");
			msg_json(&b, m);
		} else
			msg_line(&b, m, wsrv);
		n++;
	}
	if (r->json)
		mr_buf_printf(&b, "],\"count\":%zu}\n", n);
	else
		mr_buf_printf(&b, "%zu message%s\n", n, n == 1 ? "" : "s");
	control_answer_take(c, &b);
	mr_buf_free(&b);
}

/* The header section (or all of it with body) of m's data file. */
static char *
read_text(const struct qmsg *m, int body, size_t *lenp)
{
	char path[4096], *text, *end;

	msg_path(m, "eml", path, sizeof(path));
	text = mr_read_file(path, SHOW_BODY_MAX,
	    lenp);
	if (text == NULL || body)
		return text;
	if ((end = strstr(text, "\r\n\r\n")) != NULL)
		end[2] = '\0';
	else if ((end = strstr(text, "\n\n")) != NULL)
		end[1] = '\0';
	if (strlen(text) > SHOW_HEADERS_MAX)
		text[SHOW_HEADERS_MAX] = '\0';
	*lenp = strlen(text);
	return text;
}

static void
verb_show(struct conn *c, const struct mr_ctl_req *r, struct qmsg *m)
{
	struct mr_buf b;
	char *text;
	size_t len;

	if ((text = read_text(m, r->body, &len)) == NULL) {
		control_answer(c, strerror(errno), NULL);
		return;
	}
	mr_buf_init(&b);
	if (r->json) {
		mr_buf_adds(&b, "{\"message\":");
		msg_json(&b, m);
		mr_buf_adds(&b, ",\"client\":");
		json_str(&b, m->client);
		mr_buf_adds(&b, ",\"helo\":");
		json_str(&b, m->helo);
		mr_buf_adds(&b, r->body ? ",\"data\":" : ",\"headers\":");
		json_str(&b, text);
		mr_buf_adds(&b, "}\n");
	} else {
		mr_buf_printf(&b, "client: %s\nhelo: %s\n", m->client,
		    m->helo);
		msg_line(&b, m, 6);
		mr_buf_adds(&b, "\n");
		mr_buf_add(&b, text, len);
	}
	free(text);
	control_answer(c, NULL, &b);
	mr_buf_free(&b);
}

static int
flush_match(const struct qmsg *m, const char *target)
{
	return target[0] == '\0' || strcmp(m->qs->srv->name, target) == 0 ||
	    has_domain(m, target);
}

/* deliverd lifts the marks of next hops down (MR_D_FLUSH) before the
 * flushed messages reach it: all, a server's, or a domain's. */
static void
flush_tell(const char *target)
{
	size_t i;

	for (i = 0; target[0] != '\0' && i < q->nservers; i++)
		if (strcmp(q->servers[i].srv->name, target) == 0) {
			queued_flush_deliverd((uint32_t)i, "");
			return;
		}
	queued_flush_deliverd(MR_FLUSH_ALL, target);
}

/* "retry ID": the message's domains are tried, even a next hop down;
 * beyond RETRY_TELL_MAX pending recipients, every hop of its server. */
#define RETRY_TELL_MAX	8
static void
retry_tell(const struct qmsg *m)
{
	uint32_t si = (uint32_t)(m->qs - q->servers);
	const char *at;
	size_t i, n = 0;

	for (i = 0; i < m->nrcpts; i++)
		n += m->rcpts[i].state == R_PENDING;
	if (n > RETRY_TELL_MAX) {
		queued_flush_deliverd(si, "");
		return;
	}
	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == R_PENDING &&
		    (at = strrchr(m->rcpts[i].addr, '@')) != NULL)
			queued_flush_deliverd(si, at + 1);
}

static void
verb_flush(struct conn *c, const struct mr_ctl_req *r, uid_t uid)
{
	struct mr_buf b;
	struct qmsg *m;
	size_t n = 0;

	flush_tell(r->target);
	for (m = q->msgs; m != NULL; m = m->next)
		if (flush_match(m, r->target) && has_rcpt_state(m, R_PENDING)
		    && sched_retry(m) == 0)
			n++;
	mr_info("control: uid %ld: flush %s: %zu message(s) tried now",
	    (long)uid, r->target[0] ? r->target : "(all)", n);
	mr_buf_init(&b);
	if (r->json)
		mr_buf_printf(&b, "{\"flushed\":%zu}\n", n);
	else
		mr_buf_printf(&b, "%zu message%s to be tried now\n", n,
		    n == 1 ? "" : "s");
	control_answer(c, NULL, &b);
	mr_buf_free(&b);
}

/* A one-line confirmation in either form. */
static void
done(struct conn *c, const struct mr_ctl_req *r, const char *what)
{
	struct mr_buf b;

	mr_buf_init(&b);
	if (r->json) {
		mr_buf_adds(&b, "{\"id\":");
		json_str(&b, r->id);
		mr_buf_printf(&b, ",\"result\":\"%s\"}\n", what);
	} else
		mr_buf_printf(&b, "%s: %s\n", r->id, what);
	control_answer(c, NULL, &b);
	mr_buf_free(&b);
}

static void
log_rcpts(const struct qmsg *m, uid_t uid, const char *what)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == R_PENDING)
			mr_info("%s: to=<%s> status=%s by uid %ld "
			    "(mailrootctl)", m->id, m->rcpts[i].addr, what,
			    (long)uid);
}

/* "hold" adds mailrootctl's hold; "release" ends it and a header
 * check's: the envelope is written first, then the schedule follows. */
static void
verb_hold(struct conn *c, const struct mr_ctl_req *r, struct qmsg *m,
    uid_t uid)
{
	int on = r->verb == MR_CTL_HOLD, ctl = m->ctl_hold, hdr = m->hold;

	if (on ? ctl : !held(m)) {
		done(c, r, on ? "already held" : "not held");
		return;
	}
	m->ctl_hold = on;
	if (!on)
		m->hold = 0;
	if (env_write(m) == -1) {
		mr_err("%s: updating envelope: %s", m->id, strerror(errno));
		m->ctl_hold = ctl;
		m->hold = hdr;
		control_answer(c, "cannot write the envelope", NULL);
		return;
	}
	sched_hold(m, on, hdr);
	mr_info("%s: %s by uid %ld (mailrootctl)%s", m->id,
	    on ? "held" : "released", (long)uid, !on && hdr ?
	    ": held by a header check" : "");
	done(c, r, on ? "held" : "released");
}

/*
 * While a big queue is still being read at start (queue_sched.c), a verb
 * over the whole queue would see and change only the part read so far,
 * and a message not read yet is not found: the answer says so instead
 * (bounded: the queue is read at some thousands of messages a second).
 */
static int
recovering(struct conn *c)
{
	char why[160];
	size_t done, total;

	if (!sched_recovering(&done, &total))
		return 0;
	snprintf(why, sizeof(why), "the queue is being recovered (%zu of "
	    "%zu messages read); try again in a moment", done, total);
	control_answer(c, why, NULL);
	return 1;
}

static void
verb_one(struct conn *c, const struct mr_ctl_req *r, uid_t uid)
{
	struct qmsg *m = index_find(r->id);

	if (m == NULL && recovering(c))
		return;
	if (m == NULL) {
		control_answer(c, "no such message in the queue", NULL);
		return;
	}
	if (r->verb == MR_CTL_SHOW) {
		verb_show(c, r, m);
		return;
	}
	if (r->verb == MR_CTL_HOLD || r->verb == MR_CTL_RELEASE) {
		verb_hold(c, r, m, uid);
		return;
	}
	if (msg_job(m) != 0) {
		control_answer(c, "the message is being delivered now; "
		    "try again in a moment", NULL);
		return;
	}
	if (r->verb == MR_CTL_RETRY) {
		if (m->ctl_hold || m->hold) {
			control_answer(c, "the message is held", NULL);
			return;
		}
		retry_tell(m);
		(void)sched_retry(m);
		mr_info("%s: retry by uid %ld (mailrootctl)", m->id,
		    (long)uid);
		done(c, r, "to be tried now");
	} else if (r->verb == MR_CTL_DELETE) {
		log_rcpts(m, uid, "deleted");
		mr_info("%s: deleted by uid %ld (mailrootctl)", m->id,
		    (long)uid);
		sched_remove(m);
		done(c, r, "deleted");
	} else {
		char reason[MR_CTL_ARG_MAX + 64];

		snprintf(reason, sizeof(reason), "5.0.0 returned to the "
		    "sender by the mail administrator: %s", r->reason[0] ?
		    r->reason : "no reason given");
		log_rcpts(m, uid, "returned");
		sched_return(m, reason);
		done(c, r, "returned to the sender");
	}
}

/* "N messages WHAT" for a domain, in either form. */
static void
done_domain(struct conn *c, const struct mr_ctl_req *r, const char *what,
    size_t n)
{
	struct mr_buf b;

	mr_buf_init(&b);
	if (r->json) {
		mr_buf_adds(&b, "{\"domain\":");
		json_str(&b, r->target);
		mr_buf_printf(&b, ",\"%s\":%zu}\n", what, n);
	} else
		mr_buf_printf(&b, "%s: %zu message%s %s\n", r->target, n,
		    n == 1 ? "" : "s", what);
	control_answer(c, NULL, &b);
	mr_buf_free(&b);
}

/* "hold DOMAIN" / "release DOMAIN": mailrootctl's hold on every queued
 * message with a recipient there (mail arriving later is not held); a
 * header check's hold is released only by id, one message at a time. */
static void
verb_hold_domain(struct conn *c, const struct mr_ctl_req *r, uid_t uid)
{
	int on = r->verb == MR_CTL_HOLD;
	struct qmsg *m;
	size_t n = 0;

	for (m = q->msgs; m != NULL; m = m->next) {
		if (m->ctl_hold == on || !has_domain(m, r->target))
			continue;
		m->ctl_hold = on;
		if (env_write(m) == -1) {
			mr_err("%s: updating envelope: %s", m->id,
			    strerror(errno));
			m->ctl_hold = !on;
			continue;
		}
		sched_hold(m, on, 0);
		mr_info("%s: %s by uid %ld (mailrootctl, domain %s)", m->id,
		    on ? "held" : "released", (long)uid, r->target);
		n++;
	}
	done_domain(c, r, on ? "held" : "released", n);
}

/* "etrn DOMAIN": as an ETRN from an allowed client (etrn.c), on every
 * server that holds the domain for it. */
static void
verb_etrn(struct conn *c, const struct mr_ctl_req *r, uid_t uid)
{
	size_t i, n = 0;
	int any = 0;
	long k;

	for (i = 0; i < q->nservers; i++)
		if ((k = etrn_release(i, r->target)) >= 0) {
			any = 1;
			n += (size_t)k;
		}
	if (!any) {
		control_answer(c, "the domain is not held for ETRN "
		    "(hold-for-etrn)", NULL);
		return;
	}
	mr_info("control: uid %ld: etrn %s: %zu message%s released",
	    (long)uid, r->target, n, n == 1 ? "" : "s");
	done_domain(c, r, "released", n);
}

struct tally {
	size_t	msgs, rcpts, deferred, held, active;
};

static void
tally_json(struct mr_buf *b, const char *name, const struct tally *t)
{
	mr_buf_adds(b, "{\"server\":");
	json_str(b, name);
	mr_buf_printf(b, ",\"messages\":%zu,\"recipients_pending\":%zu,"
	    "\"deferred\":%zu,\"held\":%zu,\"active\":%zu}", t->msgs, t->rcpts,
	    t->deferred, t->held, t->active);
}

static void
tally_line(struct mr_buf *b, const char *name, const struct tally *t)
{
	mr_buf_printf(b, "%-20s  %8zu  %10zu  %8zu  %6zu  %6zu\n", name,
	    t->msgs, t->rcpts, t->deferred, t->held, t->active);
}

static void
count(struct tally *t, const struct qmsg *m)
{
	size_t i;

	t->msgs++;
	for (i = 0; i < m->nrcpts; i++)
		t->rcpts += m->rcpts[i].state == R_PENDING;
	t->held += held(m);
	t->active += msg_job(m) != 0;
	t->deferred += !held(m) && msg_job(m) == 0 && m->attempts > 0;
}

static void
verb_stats(struct conn *c, const struct mr_ctl_req *r)
{
	struct tally *t, all = { 0 };
	const struct qmsg *m;
	struct mr_buf b;
	size_t i;

	t = mr_xcalloc(q->nservers, sizeof(*t));
	for (m = q->msgs; m != NULL; m = m->next) {
		count(&t[m->qs - q->servers], m);
		count(&all, m);
	}
	mr_buf_init(&b);
	if (r->json)
		mr_buf_adds(&b, "{\"servers\":[");
	else
		mr_buf_printf(&b, "%-20s  %8s  %10s  %8s  %6s  %6s\n",
		    "SERVER", "MESSAGES", "RECIPIENTS", "DEFERRED", "HELD",
		    "ACTIVE");
	for (i = 0; i < q->nservers; i++) {
		if (r->json && i > 0)
			mr_buf_adds(&b, ",");
		if (r->json)
			tally_json(&b, q->servers[i].srv->name, &t[i]);
		else
			tally_line(&b, q->servers[i].srv->name, &t[i]);
	}
	if (r->json) {
		mr_buf_adds(&b, "],\"total\":");
		tally_json(&b, "_Total", &all);
		mr_buf_adds(&b, "}\n");
	} else
		tally_line(&b, "_Total", &all);
	free(t);
	control_answer(c, NULL, &b);
	mr_buf_free(&b);
}

/* reload/stop: mailrootd acts on the bare action (supervise.c). */
static void
verb_master(struct conn *c, const struct mr_ctl_req *r, uid_t uid)
{
	struct mr_buf b;
	int rc;

	mr_buf_init(&b);
	mr_buf_put_u32(&b, r->verb == MR_CTL_RELOAD ? MR_CTL_ACT_RELOAD :
	    MR_CTL_ACT_STOP);
	mr_buf_put_u32(&b, (uint32_t)uid);
	rc = mr_ipc_sendb(mr_child_master(), MR_M_CTL, -1, &b);
	mr_buf_free(&b);
	mr_info("control: uid %ld asks mailrootd to %s", (long)uid,
	    mr_ctl_verb_name(r->verb));
	if (rc == -1) {
		control_answer(c, "cannot reach mailrootd", NULL);
		return;
	}
	mr_buf_init(&b);
	if (r->json)
		mr_buf_printf(&b, "{\"requested\":\"%s\"}\n",
		    mr_ctl_verb_name(r->verb));
	else
		mr_buf_printf(&b, "%s requested\n", mr_ctl_verb_name(r->verb));
	control_answer(c, NULL, &b);
	mr_buf_free(&b);
}

void
control_json_str(struct mr_buf *b, const char *s)
{
	json_str(b, s);
}

void
control_iso_time(time_t t, char *buf, size_t len)
{
	iso_time(t, buf, len);
}

void
control_do(struct conn *c, uid_t uid, const struct mr_ctl_req *r)
{
	switch (r->verb) {
	case MR_CTL_QUEUE:
	case MR_CTL_FLUSH:
	case MR_CTL_STATS:
	case MR_CTL_ETRN:
		if (recovering(c))
			return;
		break;
	case MR_CTL_HOLD:
	case MR_CTL_RELEASE:
		if (r->target[0] != '\0' && recovering(c))
			return;
		break;
	default:
		break;
	}
	switch (r->verb) {
	case MR_CTL_SESSIONS:
		sessions_verb(c, r);
		break;
	case MR_CTL_QUEUE:
		verb_queue(c, r);
		break;
	case MR_CTL_FLUSH:
		verb_flush(c, r, uid);
		break;
	case MR_CTL_STATS:
		verb_stats(c, r);
		break;
	case MR_CTL_RELOAD:
	case MR_CTL_STOP:
		verb_master(c, r, uid);
		break;
	case MR_CTL_ETRN:
		verb_etrn(c, r, uid);
		break;
	case MR_CTL_HOLD:
	case MR_CTL_RELEASE:
		if (r->target[0] != '\0') {
			verb_hold_domain(c, r, uid);
			break;
		}
		verb_one(c, r, uid);
		break;
	default:
		verb_one(c, r, uid);
		break;
	}
}
