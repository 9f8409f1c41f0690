/*
 * queue_sched.c - what happens to a committed message: local recipients
 * go to Drop, remote ones to deliverd; results update the envelope; the
 * IIS retry schedule (15, 30, 60, then every 240 minutes by default) and
 * expiry (2 days) decide the rest; failures become a DSN (bounce.c).
 *
 * Security: results from deliverd are checked against the job they answer
 * (job id, recipient count); a malformed result drops deliverd's channel.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

static void	attempt(struct qmsg *);
static void	arm_expiry(struct qmsg *);
static void	quarantine(struct qserver *, const char *id,
		    const char *reason);
static void	recovered(struct qmsg *);

/* a job deliverd did not try is offered again after this (seconds) */
#define AGAIN_DELAY	5

/* Badmail/ID.BDR: why a message is there */
#define BDR_ENVELOPE	"Unable to deliver this message because its " \
	"envelope file in the queue is malformed.\r\n"
#define BDR_SHORT	"Unable to deliver this message because its data " \
	"file in the queue is shorter than when it was accepted.\r\n"

static void
list_add(struct qmsg *m)
{
	m->prev = NULL;
	m->next = q->msgs;
	if (q->msgs != NULL)
		q->msgs->prev = m;
	q->msgs = m;
	q->nmsgs++;
	index_add(m);
	metrics_queue(m, 1);
}

static void
list_del(struct qmsg *m)
{
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		q->msgs = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	q->nmsgs--;
	index_del(m);
	metrics_queue(m, 0);
}

/*
 * Every message's next attempt and its expiry are nodes in two heaps
 * (qheap.c) under one libevent timer, set for the earliest of both.  When
 * it fires, at most SCHED_BATCH due nodes are handled before the loop
 * turns again (a timer of zero): a flush or a restart that makes a
 * million messages due at once does not keep new mail from being read.
 */
#define SCHED_BATCH	256

static struct {
	struct qheap	 timers;	/* qmsg.tnode: next attempt */
	struct qheap	 expiries;	/* qmsg.xnode: expiry, delay notice */
	struct event	*ev;
	time_t		 ev_at;		/* when ev fires; -1: not armed */
} sc = { .ev_at = -1 };

static void	sched_cb(evutil_socket_t, short, void *);
static void	expiry_due(struct qmsg *);

/* The earliest node of both heaps; *is_timer says which heap. */
static struct qheap_node *
earliest(int *is_timer)
{
	struct qheap_node *t = qheap_top(&sc.timers);
	struct qheap_node *x = qheap_top(&sc.expiries);

	*is_timer = t != NULL && (x == NULL || qheap_before(t, x));
	return *is_timer ? t : x;
}

/* Sets the one libevent timer for the earliest node (force: again even
 * if it is already set for that moment, as after a clock change). */
static void
rearm(int force)
{
	struct qheap_node *n;
	struct timeval tv = { 0, 0 };
	time_t now = q_now();
	int is_timer;

	if (sc.ev == NULL)
		sc.ev = evtimer_new(q->base, sched_cb, NULL);
	if ((n = earliest(&is_timer)) == NULL) {
		evtimer_del(sc.ev);
		sc.ev_at = -1;
		return;
	}
	if (!force && sc.ev_at != -1 && sc.ev_at <= n->at)
		return;		/* fires first; sched_cb sets it again */
	tv.tv_sec = n->at > now ? n->at - now : 0;
	sc.ev_at = n->at > now ? n->at : now;
	evtimer_add(sc.ev, &tv);
}

static void
sched_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct qheap_node *n;
	struct qmsg *m;
	time_t now = q_now();
	int is_timer, i;

	(void)fd;
	(void)ev;
	(void)arg;
	sc.ev_at = -1;
	for (i = 0; i < SCHED_BATCH; i++) {
		if ((n = earliest(&is_timer)) == NULL || n->at > now)
			break;
		if (is_timer) {
			m = (struct qmsg *)((char *)qheap_pop(&sc.timers) -
			    offsetof(struct qmsg, tnode));
			attempt(m);
		} else {
			m = (struct qmsg *)((char *)qheap_pop(&sc.expiries) -
			    offsetof(struct qmsg, xnode));
			expiry_due(m);
		}
	}
	rearm(1);
}

static void
set_timer(struct qmsg *m, time_t at)
{
	if (m->hold)		/* header checks: waits to be released */
		return;
	qheap_set(&sc.timers, &m->tnode, at);
	rearm(0);
}

static void
del_timer(struct qmsg *m)
{
	qheap_del(&sc.timers, &m->tnode);
}

void
sched_forget(struct qmsg *m)
{
	qheap_del(&sc.timers, &m->tnode);
	qheap_del(&sc.expiries, &m->xnode);
}

/* When m expires: its pending recipients decide which limit applies. */
static time_t
expire_at(const struct qmsg *m)
{
	const struct mr_delivery *d = &m->qs->srv->delivery;
	size_t i;

	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == R_PENDING && !m->rcpts[i].local)
			return m->created + (time_t)d->expire_outbound;
	return m->created + (time_t)d->expire_local;
}

static void	settle(struct qmsg *);
static void	settle_how(struct qmsg *, int lazy);

/* Expiry has its own timer: a message expires on time even when its
 * next attempt is hours away. */
static void
expiry_due(struct qmsg *m)
{
	/* a job in flight settles (and expires) m when its result comes;
	 * a held queue arms the timers again when it is released */
	if (msg_job(m) != 0 || msg_lmtp(m) != NULL || q->held || m->ctl_hold)
		return;
	/* an attempt due now comes first (a message just released is
	 * tried once before it expires; settle expires it after) */
	if (qheap_pending(&m->tnode) && m->tnode.at <= q_now() &&
	    q_now() >= expire_at(m)) {
		arm_expiry(m);
		return;
	}
	delay_check(m, expire_at(m));
	if (q_now() < expire_at(m)) {
		arm_expiry(m);
		return;
	}
	del_timer(m);
	settle(m);
}

/* The expiry timer also brings the delay notification (delay.c). */
static void
arm_expiry(struct qmsg *m)
{
	time_t at = expire_at(m), now = q_now(), notify = delay_at(m);

	if (m->hold)		/* a held message does not expire */
		return;
	if (notify != 0 && notify < at)
		at = notify;
	qheap_set(&sc.expiries, &m->xnode, at > now ? at : now);
	rearm(0);
}

static void
mark_local(struct qmsg *m)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++) {
		const char *at = strrchr(m->rcpts[i].addr, '@');

		m->rcpts[i].local = at != NULL &&
		    mr_domain_is_local(m->qs->srv, at + 1);
	}
}

/* Removes a message whose every recipient is done: envelope first, so
 * a crash in between leaves an orphan that recovery deletes. */
static void
finish(struct qmsg *m)
{
	char path[4096];
	int flight;

	/* a rewrite in the rewrite worker lands before the removal */
	if (m->envw != 0)
		commit_env_wait(m);
	flight = (m->envw & ENVW_FLIGHT) != 0;
	if (m->jnl == 0 || flight) {	/* else it never had its own */
		msg_path(m, "env", path, sizeof(path));
		commit_unlink(path);
	}
	msg_path(m, "eml", path, sizeof(path));
	commit_unlink(path);
	journal_release(m);	/* after the data: removed after it */
	list_del(m);
	msg_free(m);
}

/* After an attempt: done, bounced, or scheduled again. */
static void
settle(struct qmsg *m)
{
	settle_how(m, 0);
}

/* lazy: no recipient's state changed, so the new envelope (attempts,
 * next try, reply texts) may be written in the rewrite worker's next
 * batch rather than now: lost in a crash, the message is merely tried
 * again sooner. */
static void
settle_how(struct qmsg *m, int lazy)
{
	const struct mr_delivery *d = &m->qs->srv->delivery;
	time_t now = q_now();
	size_t i, pending = 0;

	metrics_queue(m, 1);	/* the attempt's states */
	for (i = 0; i < m->nrcpts; i++)
		pending += m->rcpts[i].state == R_PENDING;
	if (pending > 0 && now >= expire_at(m)) {
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].state == R_PENDING) {
				m->rcpts[i].state = R_FAILED;
				mr_info("%s: to=<%s> status=expired (%s)",
				    m->id, m->rcpts[i].addr,
				    m->rcpts[i].text ? m->rcpts[i].text :
				    "no attempt succeeded");
			}
		pending = 0;
	}
	if (pending == 0) {
		/* failures, and the success reports NOTIFY asked for */
		if (bounce_send(m) == -1) {
			/* keep it: try to bounce again later */
			set_timer(m, now + 300);
			return;
		}
		metrics_done(m);
		finish(m);
		return;
	}
	m->attempts++;
	metrics_add(m->qs, MC_RETRIES, 1);
	i = m->attempts - 1 < d->nretry ? m->attempts - 1 : d->nretry - 1;
	m->next_try = now + (time_t)d->retry[i];
	if (lazy)
		commit_env_later(m);
	else if (env_write(m) == -1)
		mr_err("%s: updating envelope: %s", m->id, strerror(errno));
	set_timer(m, m->next_try);
	arm_expiry(m);
}

/* How local recipient i is delivered (an unknown domain: Drop). */
enum mr_deliver
local_how(const struct qmsg *m, size_t i)
{
	const struct mr_domain *d = local_domain(m, i);

	return d != NULL ? d->deliver : MR_DELIVER_DROP;
}

/* A recipient for Drop, not yet delivered. */
int
drop_rcpt(const struct qmsg *m, size_t i)
{
	return m->rcpts[i].local && m->rcpts[i].state == R_PENDING &&
	    local_how(m, i) == MR_DELIVER_DROP;
}

static void
local_failed(struct qrcpt *r, const char *err, int perm)
{
	qstr_set(&r->text, err);
	if (perm) {
		r->state = R_FAILED;
		mr_info("%s", err);
	}
}

static void
deliver_maildirs(struct qmsg *m, int datafd)
{
	char err[512];
	size_t i;
	int rc;

	for (i = 0; i < m->nrcpts; i++) {
		if (!m->rcpts[i].local || m->rcpts[i].state != R_PENDING ||
		    local_how(m, i) != MR_DELIVER_MAILDIR)
			continue;
		rc = maildir_deliver(m, i, local_domain(m, i),
		    datafd, err, sizeof(err));
		if (rc == 0)
			m->rcpts[i].state = R_SENT;
		else {
			mr_err("%s: to=<%s> %s", m->id, m->rcpts[i].addr, err);
			local_failed(&m->rcpts[i], err, rc == 1);
		}
	}
}

/* Drop and Maildir recipients (LMTP ones were given to lmtp.c). */
static void
deliver_local(struct qmsg *m, int datafd)
{
	char err[512];
	size_t i;
	int any = 0;

	deliver_maildirs(m, datafd);
	for (i = 0; i < m->nrcpts; i++)
		any |= drop_rcpt(m, i);
	if (!any)
		return;
	if (drop_deliver(m, datafd, err, sizeof(err)) == -1) {
		mr_err("%s: %s", m->id, err);
		for (i = 0; i < m->nrcpts; i++)
			if (drop_rcpt(m, i))
				local_failed(&m->rcpts[i], err, 0);
		return;
	}
	for (i = 0; i < m->nrcpts; i++)
		if (drop_rcpt(m, i)) {
			m->rcpts[i].state = R_SENT;
			mr_info("%s: to=<%s> relay=local status=sent "
			    "(delivered to Drop)", m->id, m->rcpts[i].addr);
		}
}

/* A remote recipient to offer deliverd now (not held for ETRN). */
static int
remote_rcpt(const struct qmsg *m, size_t i)
{
	return !m->rcpts[i].local && m->rcpts[i].state == R_PENDING &&
	    !etrn_held(m, i);
}

/* Hands the remote recipients to deliverd; 1 if a job went out. */
static int
deliver_remote(struct qmsg *m, int datafd)
{
	struct qact *a;
	struct mr_buf b;
	uint64_t job;
	size_t i, n = 0;
	int sent;

	for (i = 0; i < m->nrcpts; i++)
		n += remote_rcpt(m, i);
	if (n == 0 || q->deliverd == NULL)
		return 0;
	a = act_get(m);
	free(a->job_idx);
	a->job_idx = mr_xcalloc(n, sizeof(size_t));
	a->job_n = 0;
	job = ++q->next_job;
	mr_buf_init(&b);
	mr_buf_put_u64(&b, job);
	mr_buf_put_u32(&b, (uint32_t)m->qs->srv->index);
	mr_buf_put_str(&b, m->id);
	mr_buf_put_str(&b, m->sender);
	mr_buf_put_u32(&b, (uint32_t)n);
	for (i = 0; i < m->nrcpts; i++)
		if (remote_rcpt(m, i)) {
			mr_buf_put_str(&b, m->rcpts[i].addr);
			a->job_idx[a->job_n++] = i;
		}
	mr_buf_put_u32(&b, m->body);
	mr_buf_put_str(&b, m->auth != NULL ? m->auth : "");
	/* ---- DSN (RFC 3461) ---- */
	mr_buf_put_u32(&b, m->ret);
	mr_buf_put_str(&b, m->envid ? m->envid : "");
	mr_buf_put_u32(&b, (uint32_t)a->job_n);
	for (i = 0; i < a->job_n; i++) {
		mr_buf_put_u32(&b, m->rcpts[a->job_idx[i]].notify);
		mr_buf_put_str(&b, m->rcpts[a->job_idx[i]].orcpt ?
		    m->rcpts[a->job_idx[i]].orcpt : "");
	}
	mr_buf_put_u32(&b, m->smtputf8);	/* RFC 6531 */
	sent = mr_ipc_sendb(q->deliverd, MR_D_JOB, datafd, &b) == 0;
	if (sent)
		job_start(m, job);
	else
		act_put(m);
	mr_buf_free(&b);
	return sent;
}

static int
remote_pending(const struct qmsg *m)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++)
		if (remote_rcpt(m, i))
			return 1;
	return 0;
}

static void	feed(void);

/* Room came (the trash thread or the rewrites caught up): the messages
 * waiting for it. */
void
sched_feed(void)
{
	feed();
}

/* Room for a delivery: deliverd's, and the trash thread's for the files
 * of messages it finishes (commit_trash_behind). */
static int
sched_room(void)
{
	return job_room() && !commit_trash_behind();
}

/* Tries the messages that wait for room at deliverd, oldest first;
 * the retries only while their envelopes' rewrites keep up (paced). */
static void
feed(void)
{
	struct qmsg *m;

	while (q->deliverd != NULL && !q->held && sched_room() &&
	    (m = wait_pop(!commit_env_behind())) != NULL)
		attempt(m);
}

/*
 * A retry waits in line, as for room at deliverd, while the deferrals'
 * envelope rewrites are behind (commit_env_behind): a pass over a big
 * queue goes at the pace the disk writes its results, instead of
 * holding every formatted envelope in memory for minutes, and the disk
 * and the CPU it leaves free serve new mail, which never waits for this.
 */
static int
paced(const struct qmsg *m)
{
	return m->attempts > 0 && commit_env_behind();
}

/*
 * The data as it was committed.  smtpd wrote it through a descriptor
 * queued handed out, and a compromised smtpd may keep a copy of that
 * descriptor: bytes added after the commit are cut off again, and data
 * shorter than committed (cut by smtpd, or its blocks never reached the
 * disk before a crash) goes to Badmail rather than out, or away.  0: fd
 * may be delivered; 1: m was quarantined and freed; -1: try later.
 */
static int
check_data(struct qmsg *m, int fd)
{
	char path[4096];
	struct stat st;
	int wfd, rc;

	if (fstat(fd, &st) == -1)
		return -1;
	if ((uint64_t)st.st_size == m->size)
		return 0;
	if ((uint64_t)st.st_size < m->size) {
		mr_warn("%s: data is %lld bytes, %llu were accepted; moved to "
		    "Badmail", m->id, (long long)st.st_size,
		    (unsigned long long)m->size);
		list_del(m);
		quarantine(m->qs, m->id, BDR_SHORT);
		msg_free(m);
		return 1;
	}
	mr_warn("%s: %lld bytes were added to the data after it was "
	    "accepted; cut off", m->id, (long long)st.st_size - (long long)m->size);
	msg_path(m, "eml", path, sizeof(path));
	if ((wfd = open(path, O_WRONLY | O_CLOEXEC)) == -1) {
		mr_err("%s: %s", path, strerror(errno));
		return -1;
	}
	rc = ftruncate(wfd, (off_t)m->size) == -1 || fsync(wfd) == -1 ? -1 : 0;
	if (rc == -1)
		mr_err("%s: truncate: %s", path, strerror(errno));
	close(wfd);
	return rc;
}

/* The message's data, checked (check_data); -1 if it cannot be tried
 * now, or m was quarantined (and freed). */
static int
open_data(struct qmsg *m)
{
	char path[4096];
	int fd;

	msg_path(m, "eml", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		mr_err("%s: cannot open %s: %s", m->id, path, strerror(errno));
		set_timer(m, q_now() + 300);
		return -1;
	}
	switch (check_data(m, fd)) {
	case 0:
		return fd;
	case 1:
		close(fd);
		return -1;	/* quarantined: m is gone */
	default:
		close(fd);
		set_timer(m, q_now() + 300);
		return -1;
	}
}

/* After LMTP: Drop, Maildir and deliverd, then settle. */
static void
attempt_rest(struct qmsg *m, int fd)
{
	size_t i;

	deliver_local(m, fd);
	metrics_queue(m, 1);
	if (deliver_remote(m, fd)) {
		close(fd);
		return;		/* settled when the result comes */
	}
	close(fd);
	if (q->deliverd == NULL)
		for (i = 0; i < m->nrcpts; i++)
			if (remote_rcpt(m, i)) {
				/* waits for deliverd, no attempt counted */
				m->next_try = q_now();
				return;
			}
	settle(m);
}

static void
attempt(struct qmsg *m)
{
	size_t i;
	int fd;

	if (msg_job(m) != 0 || msg_lmtp(m) != NULL || m->ctl_hold)
		return;
	/* deliverd has no room: wait in line, no attempt counted */
	wait_del(m);
	if (q->deliverd != NULL && (!sched_room() || paced(m)) &&
	    remote_pending(m)) {
		wait_push(m);
		return;
	}
	if ((fd = open_data(m)) == -1)
		return;
	for (i = 0; i < m->nrcpts; i++)
		m->rcpts[i].tried = 0;
	if (lmtp_start(m, fd)) {
		close(fd);
		return;		/* sched_lmtp_done goes on */
	}
	attempt_rest(m, fd);
}

/* An LMTP session for m ended: the next one, or the rest of the attempt. */
void
sched_lmtp_done(struct qmsg *m)
{
	int fd;

	metrics_queue(m, 1);	/* the session's results */
	if ((fd = open_data(m)) == -1)
		return;
	if (lmtp_start(m, fd)) {
		close(fd);
		return;
	}
	attempt_rest(m, fd);
}

void
sched_now(struct qmsg *m)
{
	if (msg_job(m) != 0 || msg_lmtp(m) != NULL)
		return;
	if (!q->held) {
		set_timer(m, 0);
		return;
	}
	/* recovery holds the queue: sched_release sets the timer of every
	 * message without one, for its next try, now */
	del_timer(m);
	m->next_try = q_now();
}

void
sched_add(struct qmsg *m)
{
	mark_local(m);
	list_add(m);
	/* from the loop: the 250 for smtpd goes out first */
	set_timer(m, 0);
	arm_expiry(m);
}

/* Sets field to a reply text as one printable line (it goes into the
 * envelope, logs and DSNs): control bytes become spaces. */
static void
set_line(const char **field, const char *text)
{
	char *t = mr_xstrdup(text), *p;

	for (p = t; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	qstr_set(field, t);
	free(t);
}

void
sched_result(const unsigned char *data, size_t len)
{
	struct mr_m_results res;
	struct qmsg *m;
	const char *err;
	size_t i, tried = 0, final = 0;

	if (mr_msg_result(data, len, &res, &err) == -1) {
		queued_drop_deliverd();
		return;
	}
	if ((m = job_find(res.job)) == NULL || res.n != m->act->job_n) {
		mr_msg_results_free(&res);
		queued_drop_deliverd();
		return;
	}
	for (i = 0; i < res.n; i++) {
		tried += res.r[i].status != MR_DS_AGAIN;
		final += res.r[i].status != MR_DS_AGAIN &&
		    res.r[i].status != MR_DS_TEMP;
	}
	if (tried == 0) {
		/* deliverd did not try (stopping, or full): no attempt is
		 * counted and the envelope stays as it is; offered again
		 * soon, or by the next deliverd */
		mr_msg_results_free(&res);
		job_end(m);
		m->next_try = q_now() + AGAIN_DELAY;
		set_timer(m, m->next_try);
		feed();
		return;
	}
	for (i = 0; i < res.n; i++) {
		struct qrcpt *r = &m->rcpts[m->act->job_idx[i]];

		if (res.r[i].status == MR_DS_AGAIN)
			continue;	/* pending, as before the job */
		set_line(&r->text, res.r[i].text);
		if (res.r[i].status == MR_DS_OK ||
		    res.r[i].status == MR_DS_RELAYED) {
			r->state = R_SENT;
			r->relayed = res.r[i].status == MR_DS_RELAYED;
		}
		else if (res.r[i].status == MR_DS_PERM)
			r->state = R_FAILED;
	}
	mr_msg_results_free(&res);
	job_end(m);
	/* only deferrals: the envelope may follow in the next batch (not
	 * where a local delivery of this attempt changed a state) */
	for (i = 0; i < m->nrcpts && final == 0; i++)
		final += m->rcpts[i].local;
	settle_how(m, final == 0);
	feed();
}

void
sched_deliverd_lost(void)
{
	struct qmsg *m;

	/* jobs in flight are offered again when deliverd is back */
	for (m = q->msgs; m != NULL; m = m->next)
		if (msg_job(m) != 0) {
			job_end(m);
			m->next_try = q_now();
		}
}

void
sched_deliverd_up(void)
{
	struct qmsg *m, *next;
	time_t now = q_now();

	if (q->held)
		return;		/* sched_release tries them */
	feed();
	for (m = q->msgs; m != NULL; m = next) {
		next = m->next;
		if (msg_job(m) == 0 && !m->waiting && m->next_try <= now)
			attempt(m);
	}
}

/* Empties Queue/tmp: nothing there was ever acknowledged. */
static void
clean_tmp(struct qserver *qs)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(qs->tmp)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", qs->tmp, de->d_name);
		if (unlink(path) == -1)
			mr_warn("unlink %s: %s", path, strerror(errno));
	}
	closedir(d);
}

/*
 * A message whose envelope cannot be read is kept, not lost: data and
 * envelope move to Badmail as ID.BAD and ID.BDP (the IIS names) with the
 * reason in ID.BDR, for an administrator to look at.
 */
static void
quarantine(struct qserver *qs, const char *id, const char *reason)
{
	char from[4096], to[4096];

	snprintf(from, sizeof(from), "%s/%s.eml", qs->queue, id);
	snprintf(to, sizeof(to), "%s/%s.BAD", qs->badmail, id);
	if (rename(from, to) == -1)
		mr_err("rename %s: %s", from, strerror(errno));
	snprintf(from, sizeof(from), "%s/%s.env", qs->queue, id);
	snprintf(to, sizeof(to), "%s/%s.BDP", qs->badmail, id);
	if (rename(from, to) == -1)
		mr_err("rename %s: %s", from, strerror(errno));
	snprintf(to, sizeof(to), "%s/%s.BDR", qs->badmail, id);
	if (mr_write_file_atomic(to, reason, strlen(reason), 0640) == -1)
		mr_err("%s: %s", to, strerror(errno));
	mr_fsync_dir(qs->badmail);
	mr_fsync_dir(qs->queue);
	metrics_add(qs, MC_BADMAIL, 1);
}


/* An envelope whose data is gone belongs to a message that was finished
 * (the data is removed after the envelope, but a stop may reorder). */
static void
drop_lone_env(struct qserver *qs, const char *name, size_t idlen)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%.*s.eml", qs->queue, (int)idlen,
	    name);
	if (access(path, F_OK) == 0 || errno != ENOENT)
		return;
	snprintf(path, sizeof(path), "%s/%s", qs->queue, name);
	if (unlink(path) == -1)
		mr_warn("unlink %s: %s", path, strerror(errno));
}

/*
 * A commit that a crash interrupted before its flush: the envelope was
 * cut short.  smtpd never answered 250 for it, so the client still has
 * the message.  (Data of another size than the envelope records is
 * left to check_data: it may have been acknowledged.)
 */
static void
drop_unacked(struct qserver *qs, const char *id, const char *why)
{
	char path[4096];

	mr_warn("%s: %s: removed, never acknowledged (a crash came before "
	    "its commit finished)", id, why);
	snprintf(path, sizeof(path), "%s/%s.env", qs->queue, id);
	if (unlink(path) == -1 && errno != ENOENT)
		mr_warn("unlink %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s.eml", qs->queue, id);
	if (unlink(path) == -1 && errno != ENOENT)
		mr_warn("unlink %s: %s", path, strerror(errno));
}

/* What became of one message at recovery. */
enum recovered {
	RC_QUEUED,	/* in the queue again */
	RC_GONE,	/* its envelope was there: dropped or quarantined */
	RC_NOENV	/* data without envelope: never acknowledged */
};

#define RECOVER_ENV_MAX	(4 << 20)

/* Opens Queue/ID.env through the queue's descriptor and asks the kernel
 * to read it ahead (recovery opens RECOVER_AHEAD envelopes before it
 * reads them, so that a cold disk has many reads to serve at once
 * instead of one at a time): the descriptor, or -1 (errno). */
static int
recover_open(int dfd, const char *id)
{
	char name[MR_ID_MAX + 8];
	int fd;

	snprintf(name, sizeof(name), "%s.env", id);
	/* without an access time: a million envelopes read once at start
	 * would otherwise dirty a million inodes (relatime updates the
	 * access time of a file not read since it was written) */
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (fd == -1 && errno == EPERM)		/* not the file's owner */
		fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd != -1)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
	return fd;
}

/* Reads the envelope open at fd and closes it: its text, or NULL
 * (errno) with *torn for a file cut short.  One read for the usual
 * envelope of less than 4 KiB. */
static char *
recover_text(int fd, size_t *lenp, int *torn)
{
	static const char end[] = "\nend\n";
	char *text;
	size_t len = 0;
	ssize_t n;
	int saved;

	*torn = 0;
	text = mr_xmalloc(4096);
	while ((n = pread(fd, text, 4095, 0)) == -1 && errno == EINTR)
		continue;
	if (n >= 0 && n < 4095) {
		text[n] = '\0';
		len = (size_t)n;
	} else {
		free(text);
		text = n == -1 ? NULL : mr_read_fd(fd, RECOVER_ENV_MAX, &len);
	}
	saved = errno;
	close(fd);
	errno = saved;
	if (text != NULL && (len < sizeof(end) - 1 || memcmp(text + len -
	    (sizeof(end) - 1), end, sizeof(end) - 1) != 0)) {
		*torn = 1;
		free(text);
		return NULL;
	}
	*lenp = len;
	return text;
}

/* The message whose envelope recover_open gave (fd, or -1 and errno). */
static enum recovered
recover_one(struct qserver *qs, int fd, const char *id)
{
	struct qmsg *m;
	char *text = NULL;
	size_t len = 0;
	int torn = 0;

	if (fd == -1 && errno == ENOENT)
		return RC_NOENV;
	if (fd != -1)
		text = recover_text(fd, &len, &torn);
	if (torn) {
		drop_unacked(qs, id, "envelope cut short");
		return RC_GONE;
	}
	m = msg_new(qs, id);
	if (text == NULL || env_parse(m, text, len) == -1) {
		if (text == NULL)	/* unreadable: kept, as malformed */
			mr_err("%s/%s.env: %s", qs->queue, id,
			    strerror(errno));
		else
			mr_err("%s/%s.env: malformed envelope", qs->queue, id);
		free(text);
		msg_free(m);
		quarantine(qs, id, BDR_ENVELOPE);
		mr_warn("%s: malformed envelope; moved to Badmail", id);
		return RC_GONE;
	}
	free(text);
	/* its size is checked when it is tried (check_data) */
	mark_local(m);
	list_add(m);
	recovered(m);
	return RC_QUEUED;
}

/* The name's queue id, if it is ID.ext (ext: "env" or "eml"). */
static int
queue_name(const char *name, const char *ext, char *id)
{
	size_t len = strlen(name);

	if (len < 5 || len - 4 > MR_ID_MAX || name[len - 4] != '.' ||
	    strcmp(name + len - 3, ext) != 0)
		return 0;
	memcpy(id, name, len - 4);
	id[len - 4] = '\0';
	return 1;
}

/* Envelopes whose data is gone, found in a second pass only when there
 * are more envelopes than messages that had one (rare: a stop between
 * the removal of a finished message's two files).  Messages committed
 * since the start have their ID.eml: drop_lone_env leaves them. */
static void
drop_lone_envs(struct qserver *qs)
{
	char id[MR_ID_MAX + 1];
	struct dirent *de;
	struct qmsg *m;
	DIR *d;

	if ((d = opendir(qs->queue)) == NULL) {
		mr_err("opendir %s: %s", qs->queue, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (!queue_name(de->d_name, "env", id))
			continue;
		if ((m = index_find(id)) != NULL && m->qs == qs)
			continue;
		drop_lone_env(qs, de->d_name, strlen(id));
	}
	closedir(d);
}

/*
 * Recovery at start.  Reading a million envelopes takes a random read
 * each on a cold cache (minutes), so only the directories are listed
 * before the loop starts (names and inode numbers: no file is opened);
 * the envelopes are then read from the loop, RECOVER_SLICE_MS at a
 * time, in inode order: the order of ext4's inode tables and, for files
 * written one after the other, of their blocks, so that a cold disk
 * reads on instead of seeking.  Each message is scheduled as it is read:
 * one that is due goes out while the rest is still being read, and new
 * mail is taken between slices.
 *
 * The due messages first, wherever they sit: a first pass (the due scan,
 * recover_scan) only stats each ID.env in inode order, whose mtime is
 * its next try (queue_env.c env_stamp), and reads at once the envelopes
 * due by that (mtime not after now; no ID.env, or one that cannot be
 * stat'ed, counts as due: read as before).  The second pass reads the
 * rest in inode order.  The mtime is a hint: every envelope is still
 * read and its "next-try" line decides; a wrong mtime only moves a
 * message from one pass to the other.
 *
 * The listing is complete before queued takes any message, so every
 * name in it belongs to an earlier run: a message committed since
 * (smtpd streams DATA into its ID.eml before it has an envelope) is
 * never taken for one whose envelope was lost, nor read twice.  While
 * the rest is read (q->recovering): deliverd's replays for a message not
 * read yet wait for it in a stash (they must apply before it is tried);
 * an ETRN is remembered and applied to each message read after it
 * (etrn.c); the control verbs that act on the whole queue answer that it
 * is being recovered (control_verbs.c); a Pickup claim is removed when
 * its message is read (claim_committed), and Pickup starts once the
 * queue is read (it takes the claims left again).  Nothing is written
 * for a message before it is read, so a crash in the middle leaves what
 * a crash before the start would: the next start reads it all again.
 */
#define RECOVER_SLICE_MS	10
#define RECOVER_AHEAD		64		/* envelopes opened ahead */
#define SCAN_BATCH		64		/* stats per step of the scan */
#define STASH_BUCKETS		1024		/* power of two */
#define STASH_MAX		65536		/* deliverd keeps 8192 */

struct rname {
	uint64_t	 ino;
	uint32_t	 off;		/* of the ID.eml name in rc.names */
	uint32_t	 server : 31;
	uint32_t	 early : 1;	/* read by the due scan */
};

/* a Pickup claim (pickup.c) listed in a Queue */
struct rclaim {
	uint32_t	 server;
	uint32_t	 gone;		/* removed: its message was read */
	char		 id[MR_ID_MAX + 1];
};

/* a replayed result for a message not read yet */
struct rstash {
	struct rstash	*next;
	char		*id, *rcpt, *text;
	uint32_t	 status;
};

static struct {
	struct rname	*v;
	size_t		 n, cap, next;
	size_t		 opened;	/* v[next..opened-1] are in ahead */
	struct ahead {
		int	 fd;
		int	 err;
	}		 ahead[RECOVER_AHEAD];	/* by index % RECOVER_AHEAD */
	size_t		 scanned;	/* the due scan: v[0..scanned-1] */
	size_t		 ndue;		/* found due by the scan */
	struct {
		size_t		 i;	/* in v */
		struct ahead	 a;
	}		 due[RECOVER_AHEAD];	/* opened, not read yet */
	size_t		 due_head, due_n;
	size_t		 nread;		/* names done, both passes */
	struct mr_buf	 names;
	int		*dfd;		/* per server: its Queue */
	size_t		*nenv, *had_env, *queued;	/* per server */
	struct event	*ev;
	uint64_t	 t0;		/* mr_now_ms() at the start */
	unsigned	 pace_ms;	/* tests: one message per pace_ms */
	struct rstash	*stash[STASH_BUCKETS];
	size_t		 nstash;
	struct rclaim	*claims;	/* sorted by id once listed */
	size_t		 nclaims, capclaims;
	unsigned char	*claims_dirty;	/* per server: a claim removed */
} rc;

static size_t
stash_hash(const char *id)
{
	return mr_hash_str(id) & (STASH_BUCKETS - 1);
}

static void
stash_add(const struct mr_m_status *st)
{
	struct rstash *e;
	size_t b = stash_hash(st->id);

	if (rc.nstash >= STASH_MAX) {
		mr_warn("%s: replay for a message not read yet dropped (%d "
		    "waiting): it may be delivered again", st->id, STASH_MAX);
		return;
	}
	e = mr_xcalloc(1, sizeof(*e));
	e->id = mr_xstrdup(st->id);
	e->rcpt = mr_xstrdup(st->rcpt);
	e->text = mr_xstrdup(st->text);
	e->status = st->status;
	e->next = rc.stash[b];
	rc.stash[b] = e;
	rc.nstash++;
}

static int	apply_replay(struct qmsg *, const char *rcpt, uint32_t st,
		    const char *text);

/* The stashed replays of m, applied and dropped; 1 if one changed it. */
static int
stash_apply(struct qmsg *m)
{
	struct rstash **pp, *e;
	int changed = 0;

	if (rc.nstash == 0)
		return 0;
	for (pp = &rc.stash[stash_hash(m->id)]; (e = *pp) != NULL;) {
		if (strcmp(e->id, m->id) != 0) {
			pp = &e->next;
			continue;
		}
		changed |= apply_replay(m, e->rcpt, e->status, e->text);
		*pp = e->next;
		free(e->id);
		free(e->rcpt);
		free(e->text);
		free(e);
		rc.nstash--;
	}
	return changed;
}

static void
stash_free(void)
{
	struct rstash *e;
	size_t b;

	for (b = 0; b < STASH_BUCKETS; b++)
		while ((e = rc.stash[b]) != NULL) {
			rc.stash[b] = e->next;
			free(e->id);
			free(e->rcpt);
			free(e->text);
			free(e);
		}
	rc.nstash = 0;
}

/* m was just read: what happened while it waited, then its timers (once
 * the queue is released; sched_release sets them until then). */
static void
recovered(struct qmsg *m)
{
	int replayed;

	if (!q->recovering)
		return;		/* the first slice, before the loop */
	replayed = stash_apply(m);
	if (replayed)
		metrics_queue(m, 1);
	etrn_recovered(m);
	if (q->held)
		return;
	if (replayed) {
		settle(m);
		return;
	}
	if (msg_job(m) == 0 && !qheap_pending(&m->tnode))
		set_timer(m, m->next_try);
	arm_expiry(m);
}

/*
 * Pickup's claims (Queue/ID.pkp, pickup.c): a claim whose message was
 * committed is removed here, when its envelope is read, before the
 * message can be tried; those left (never committed) are taken again
 * by Pickup once the queue is read.  Matching them only then against
 * the queue's index would take again a claim whose message went out
 * and left the queue while the rest was read: delivered twice.
 */
static void
claim_add(size_t si, const char *id)
{
	struct rclaim *c;

	if (rc.nclaims == rc.capclaims) {
		rc.capclaims = rc.capclaims ? rc.capclaims * 2 : 64;
		rc.claims = mr_xreallocarray(rc.claims, rc.capclaims,
		    sizeof(*rc.claims));
	}
	c = &rc.claims[rc.nclaims++];
	c->server = (uint32_t)si;
	c->gone = 0;
	snprintf(c->id, sizeof(c->id), "%s", id);
}

static int
by_claim(const void *a, const void *b)
{
	const struct rclaim *x = a, *y = b;
	int d = strcmp(x->id, y->id);

	return d != 0 ? d : (x->server > y->server) - (x->server < y->server);
}

/* Message id of server si was read: its claim, if any, removed. */
static void
claim_committed(size_t si, int dfd, const char *id)
{
	struct rclaim key, *c;
	char name[MR_ID_MAX + 8];

	if (rc.nclaims == 0)
		return;
	key.server = (uint32_t)si;
	key.gone = 0;
	snprintf(key.id, sizeof(key.id), "%s", id);
	c = bsearch(&key, rc.claims, rc.nclaims, sizeof(*c), by_claim);
	if (c == NULL || c->gone)
		return;
	snprintf(name, sizeof(name), "%s.pkp", id);
	if (unlinkat(dfd, name, 0) == -1) {
		mr_err("unlink %s/%s: %s", q->servers[si].queue, name,
		    strerror(errno));
		return;
	}
	c->gone = 1;
	rc.claims_dirty[si] = 1;
	mr_info("%s: pickup file was queued before a restart; its claim is "
	    "removed", id);
}

/* The claims removed in this slice made durable before the loop may
 * try their messages (a claim back after a crash, its message gone,
 * would be taken again). */
static void
claims_flush(void)
{
	size_t i;

	if (rc.claims_dirty == NULL)
		return;
	for (i = 0; i < q->nservers; i++) {
		if (!rc.claims_dirty[i])
			continue;
		rc.claims_dirty[i] = 0;
		if (rc.dfd[i] != -1 && fsync(rc.dfd[i]) == -1)
			mr_err("%s: %s", q->servers[i].queue, strerror(errno));
	}
}

static void
list_name(size_t si, const struct dirent *de)
{
	char id[MR_ID_MAX + 1];

	if (queue_name(de->d_name, "env", id)) {
		rc.nenv[si]++;
		return;
	}
	if (queue_name(de->d_name, "pkp", id)) {
		claim_add(si, id);
		return;
	}
	if (!queue_name(de->d_name, "eml", id))
		return;
	if (rc.n == rc.cap) {
		rc.cap = rc.cap ? rc.cap * 2 : 1024;
		rc.v = mr_xreallocarray(rc.v, rc.cap, sizeof(*rc.v));
	}
	if (rc.names.len > UINT32_MAX - MR_ID_MAX - 8)
		mr_fatal("queued: more queue names than recovery can list");
	rc.v[rc.n].ino = (uint64_t)de->d_ino;
	rc.v[rc.n].off = (uint32_t)rc.names.len;
	rc.v[rc.n].server = (uint32_t)si & 0x7fffffffU;
	rc.v[rc.n].early = 0;
	rc.n++;
	mr_buf_add(&rc.names, de->d_name, strlen(de->d_name) + 1);
}

/* Lists server si's Queue: its messages' names, its envelopes counted. */
static void
list_server(size_t si)
{
	struct qserver *qs = &q->servers[si];
	struct dirent *de;
	DIR *d;

	clean_tmp(qs);
	journal_recover(qs);	/* queue_journal.c: records to ID.env */
	rc.dfd[si] = -1;
	if ((d = opendir(qs->queue)) == NULL) {
		mr_err("opendir %s: %s", qs->queue, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL)
		list_name(si, de);
	rc.dfd[si] = fcntl(dirfd(d), F_DUPFD_CLOEXEC, 0);
	if (rc.dfd[si] == -1)
		mr_err("%s: %s", qs->queue, strerror(errno));
	closedir(d);
}

static int
by_inode(const void *a, const void *b)
{
	const struct rname *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Opens the envelope of v[i] into a (the read started), if it has one. */
static void
recover_open_name(size_t i, struct ahead *a)
{
	const struct rname *e = &rc.v[i];
	char id[MR_ID_MAX + 1];

	a->fd = -1;
	a->err = EBADF;
	if (rc.dfd[e->server] == -1 ||
	    !queue_name(rc.names.data + e->off, "eml", id))
		return;
	if ((a->fd = recover_open(rc.dfd[e->server], id)) == -1)
		a->err = errno;
}

/* The envelopes of the names up to RECOVER_AHEAD past the next one
 * opened, and their reads started; those the due scan read are passed
 * over. */
static void
recover_ahead(void)
{
	struct ahead *a;

	if (rc.opened < rc.next)
		rc.opened = rc.next;
	for (; rc.opened < rc.n && rc.opened < rc.next + RECOVER_AHEAD;
	    rc.opened++) {
		a = &rc.ahead[rc.opened % RECOVER_AHEAD];
		a->fd = -1;
		a->err = EBADF;
		if (!rc.v[rc.opened].early)
			recover_open_name(rc.opened, a);
	}
}

/* v[i], its envelope opened into a: its message read and scheduled. */
static void
recover_read(size_t i, struct ahead *a)
{
	const struct rname *e = &rc.v[i];
	struct qserver *qs = &q->servers[e->server];
	const char *name = rc.names.data + e->off;
	char id[MR_ID_MAX + 1];
	int dfd = rc.dfd[e->server];

	rc.nread++;
	if (dfd == -1 || !queue_name(name, "eml", id))
		return;
	errno = a->err;
	switch (recover_one(qs, a->fd, id)) {
	case RC_QUEUED:
		rc.queued[e->server]++;
		claim_committed(e->server, dfd, id);
		/* FALLTHROUGH */
	case RC_GONE:
		rc.had_env[e->server]++;
		break;
	case RC_NOENV:
		/* data without envelope: never acknowledged */
		if (unlinkat(dfd, name, 0) == -1)
			mr_warn("unlink %s/%s: %s", qs->queue, name,
			    strerror(errno));
		break;
	}
}

/* The next name of the second pass, unless the due scan read it. */
static void
recover_name(void)
{
	size_t i = rc.next;

	recover_ahead();
	rc.next++;
	if (!rc.v[i].early)
		recover_read(i, &rc.ahead[i % RECOVER_AHEAD]);
}

/* Whether v[i]'s message is due by its envelope's mtime (its next try,
 * queue_env.c): a hint only.  No envelope, or one that cannot be
 * stat'ed: due (read now, as it would be later). */
static int
recover_due(size_t i, time_t now)
{
	const struct rname *e = &rc.v[i];
	const char *name = rc.names.data + e->off;
	char env[MR_ID_MAX + 8];
	struct stat st;
	size_t len = strlen(name);

	if (rc.dfd[e->server] == -1 || len < 4 || len > MR_ID_MAX + 4)
		return 0;	/* recover_read passes it over */
	snprintf(env, sizeof(env), "%.*s.env", (int)(len - 4), name);
	if (fstatat(rc.dfd[e->server], env, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return 1;
	return st.st_mtime <= now;
}

/* The due scan's next SCAN_BATCH names stat'ed; the due ones opened
 * (their reads started) for recover_due_read, as many as it has room
 * for. */
static void
recover_scan(void)
{
	time_t now = q_now();
	size_t k, slot;

	for (k = 0; k < SCAN_BATCH && rc.scanned < rc.n &&
	    rc.due_n < RECOVER_AHEAD; k++, rc.scanned++) {
		if (!recover_due(rc.scanned, now))
			continue;
		slot = (rc.due_head + rc.due_n++) % RECOVER_AHEAD;
		rc.due[slot].i = rc.scanned;
		recover_open_name(rc.scanned, &rc.due[slot].a);
		rc.v[rc.scanned].early = 1;
		rc.ndue++;
	}
	if (rc.scanned == rc.n)
		mr_info("queue scanned: %zu of %zu message%s due by their "
		    "envelopes' mtime, in %.1f s", rc.ndue, rc.n,
		    rc.n == 1 ? "" : "s",
		    (double)(mr_now_ms() - rc.t0) / 1000);
}

/* The oldest due envelope the scan opened: read and scheduled. */
static void
recover_due_read(void)
{
	size_t slot = rc.due_head;

	rc.due_head = (rc.due_head + 1) % RECOVER_AHEAD;
	rc.due_n--;
	recover_read(rc.due[slot].i, &rc.due[slot].a);
}

/* One step of recovery: 1 if it read a name, 0 if it scanned, -1 when
 * there is nothing left to do.  The due envelopes opened come first,
 * then the scan, then the second pass. */
static int
recover_step(void)
{
	if (rc.due_n > 0) {
		recover_due_read();
		return 1;
	}
	if (rc.scanned < rc.n) {
		recover_scan();
		return 0;
	}
	if (rc.next < rc.n) {
		recover_name();
		return 1;
	}
	return -1;
}

static void
recover_end(void)
{
	size_t i, n = 0;

	for (i = 0; i < q->nservers; i++) {
		struct qserver *qs = &q->servers[i];

		if (rc.nenv[i] > rc.had_env[i])
			drop_lone_envs(qs);
		if (rc.dfd[i] != -1)
			close(rc.dfd[i]);
		n += rc.queued[i];
		if (rc.queued[i] > 0)
			mr_info("%s: recovered %zu queued message%s",
			    qs->queue, rc.queued[i],
			    rc.queued[i] == 1 ? "" : "s");
	}
	if (q->recovering)
		mr_info("queue recovered: %zu message%s read in %.1f s", n,
		    n == 1 ? "" : "s", (double)(mr_now_ms() - rc.t0) / 1000);
	q->recovering = 0;
	stash_free();
	free(rc.v);
	mr_buf_free(&rc.names);
	free(rc.dfd);
	free(rc.nenv);
	free(rc.had_env);
	free(rc.queued);
	free(rc.claims);
	free(rc.claims_dirty);
	if (rc.ev != NULL)
		event_free(rc.ev);
	memset(&rc, 0, sizeof(rc));
	pickup_init();
}

/* A slice of the listing; the next one in the next turn of the loop. */
static void
recover_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval tv = { 0, 0 };
	uint64_t t0 = mr_now_ms();
	int step = 0;

	(void)fd;
	(void)ev;
	(void)arg;
	/* paced (tests): one message read a slice, the scan unpaced */
	while ((step = recover_step()) != -1)
		if (rc.pace_ms > 0 ? step == 1 :
		    mr_now_ms() - t0 >= RECOVER_SLICE_MS)
			break;
	claims_flush();
	if (step == -1) {
		recover_end();
		return;
	}
	q->recovering = 1;
	if (rc.ev == NULL)
		rc.ev = evtimer_new(q->base, recover_cb, NULL);
	tv.tv_usec = (suseconds_t)rc.pace_ms * 1000;
	evtimer_add(rc.ev, &tv);
}

/* For the tests only: MAILROOT_TEST_RECOVER_PACE=MS reads one message
 * every MS milliseconds, so that a test can stop queued halfway. */
static void
recover_pace(void)
{
	const char *s = getenv("MAILROOT_TEST_RECOVER_PACE");
	char *end;
	unsigned long v;

	if (s == NULL || *s == '\0')
		return;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 10000)
		return;
	rc.pace_ms = (unsigned)v;
	mr_warn("test recovery pace in use (MAILROOT_TEST_RECOVER_PACE=%lu "
	    "ms a message): not for production", v);
}

/* "recovering N of M": 1 while the queue is still being read. */
int
sched_recovering(size_t *done, size_t *total)
{
	*done = rc.nread;
	*total = rc.n;
	return q->recovering;
}

static void
hold_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	if (q->held)
		mr_warn("no replay from deliverd; trying the queue anyway");
	sched_release();
}

/*
 * Recovered messages are held until deliverd has replayed the results
 * of the last minute (a previous queued may have died before reading
 * them; deliverd first lets that queued's deliveries finish, for up to
 * 10 seconds) or for at most HOLD_MAX seconds.  A small queue is read
 * whole before the loop starts (the first slice); a big one goes on
 * from the loop.
 */
#define HOLD_MAX	15

void
sched_recover(void)
{
	struct timeval tv = { HOLD_MAX, 0 };
	size_t i;

	q->held = 1;
	q->hold_timer = evtimer_new(q->base, hold_timeout, NULL);
	evtimer_add(q->hold_timer, &tv);
	rc.t0 = mr_now_ms();
	recover_pace();
	rc.dfd = mr_xcalloc(q->nservers, sizeof(int));
	rc.nenv = mr_xcalloc(q->nservers, sizeof(size_t));
	rc.had_env = mr_xcalloc(q->nservers, sizeof(size_t));
	rc.queued = mr_xcalloc(q->nservers, sizeof(size_t));
	rc.claims_dirty = mr_xcalloc(q->nservers, 1);
	mr_buf_init(&rc.names);
	for (i = 0; i < q->nservers; i++)
		list_server(i);
	if (rc.n > 1)
		qsort(rc.v, rc.n, sizeof(*rc.v), by_inode);
	if (rc.nclaims > 1)
		qsort(rc.claims, rc.nclaims, sizeof(*rc.claims), by_claim);
	if (rc.n > 0)
		mr_info("queue listed: %zu message%s to read", rc.n,
		    rc.n == 1 ? "" : "s");
	recover_cb(-1, 0, NULL);
}

void
sched_release(void)
{
	struct qmsg *m;

	if (!q->held)
		return;
	q->held = 0;
	evtimer_del(q->hold_timer);
	for (m = q->msgs; m != NULL; m = m->next) {
		if (msg_job(m) == 0 && !qheap_pending(&m->tnode))
			set_timer(m, m->next_try);
		arm_expiry(m);
	}
}

/* The test clock moved (queue_clock.c): every timer is set again for
 * the same moment of the new time. */
void
sched_clock_changed(void)
{
	struct qmsg *m;

	for (m = q->msgs; m != NULL; m = m->next)
		if (qheap_pending(&m->xnode))
			arm_expiry(m);
	rearm(1);
}

/* Applies one replayed result; 1 if it changed the message. */
static int
apply_replay(struct qmsg *m, const char *rcpt, uint32_t st, const char *text)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++) {
		struct qrcpt *r = &m->rcpts[i];

		if (r->local || r->state != R_PENDING ||
		    strcmp(r->addr, rcpt) != 0)
			continue;
		set_line(&r->text, text);
		r->state = st == MR_DS_PERM ? R_FAILED : R_SENT;
		r->relayed = st == MR_DS_RELAYED;
		mr_info("%s: to=<%s> status=%s (replayed by deliverd: %s)",
		    m->id, r->addr, st == MR_DS_PERM ? "bounced" : "sent",
		    r->text);
		return 1;
	}
	return 0;
}

void
sched_replay(const unsigned char *data, size_t len)
{
	struct mr_m_results res;
	struct qmsg *m;
	const char *err;
	size_t i;

	if (mr_msg_replay(data, len, &res, &err) == -1) {
		queued_drop_deliverd();
		return;
	}
	for (i = 0; i < res.n; i++) {
		const struct mr_m_status *st = &res.r[i];

		/* not read yet: applied when it is (before it is tried) */
		if ((m = index_find(st->id)) == NULL && q->recovering) {
			stash_add(st);
			continue;
		}
		/* a message being delivered now is left to its job */
		if (m == NULL || msg_job(m) != 0 ||
		    msg_lmtp(m) != NULL || !apply_replay(m, st->rcpt, st->status, st->text))
			continue;
		metrics_queue(m, 1);
		if (!q->held)
			settle(m);
	}
	mr_msg_results_free(&res);
}

/* ---- the control socket's verbs (control_verbs.c) ---- */

/* "retry ID", "flush": the next attempt now, its schedule unchanged.
 * Due at the present time rather than at 0, the time new mail is set
 * for (sched_add): a flush of a deep queue goes behind what arrives
 * while the heap hands its due messages out, SCHED_BATCH a turn. */
int
sched_retry(struct qmsg *m)
{
	if (msg_job(m) != 0 || m->ctl_hold || m->hold)
		return -1;
	set_timer(m, q_now());
	return 0;
}

/*
 * "hold"/"release", once the caller has set m's holds and written its
 * envelope: a held message is neither tried nor expired.  A released one
 * is tried at its next try time, or at once when a header check held it
 * (it was never tried) or its expiry has passed, and its expiry counts
 * again.
 */
void
sched_hold(struct qmsg *m, int on, int was_checked)
{
	if (on) {
		sched_forget(m);
		wait_del(m);
		return;
	}
	/* past its expiry: one attempt now, then settle expires it */
	set_timer(m, was_checked || q_now() >= expire_at(m) ? 0 :
	    m->next_try);
	arm_expiry(m);
}

/* "delete": gone without a DSN (the caller logged the recipients). */
void
sched_remove(struct qmsg *m)
{
	wait_del(m);
	finish(m);
}

/* "bounce": every pending recipient fails with reason, DSN to sender. */
void
sched_return(struct qmsg *m, const char *reason)
{
	size_t i;

	wait_del(m);
	del_timer(m);
	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == R_PENDING) {
			m->rcpts[i].state = R_FAILED;
			qstr_set(&m->rcpts[i].text, reason);
			mr_info("%s: to=<%s> status=returned (%s)", m->id,
			    m->rcpts[i].addr, reason);
		}
	m->ctl_hold = 0;
	settle(m);
}
