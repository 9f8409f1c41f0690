/*
 * queue_index.c - finding messages fast, and the active set.
 *
 * Two hash tables over the messages in memory: by queue id (replays from
 * deliverd name messages by id) and by job (every result names its job).
 * The active set is the jobs at deliverd: at most MR_JOBS_MAX, the most
 * deliverd takes at once.  A message that is due while the set is full
 * waits, in arrival order, for a result to make room (Postfix's active
 * queue): it is tried as soon as deliverd can take it, and no attempt is
 * counted against it meanwhile.  Messages never tried and retries wait
 * in two lines; new mail goes first, with a share kept for retries.
 *
 * Security: keys are queue ids queued made and job numbers it counts;
 * replays carry ids from deliverd, which are only looked up (a chain is
 * as long as the queue is deep at worst, and the hash is not under a
 * peer's control: ids are chosen by queued).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

#define ID_BUCKETS	65536		/* power of two */
#define JOB_BUCKETS	4096		/* power of two */

static struct {
	struct qmsg	*ids[ID_BUCKETS];
	struct qmsg	*jobs[JOB_BUCKETS];
	size_t		 active;	/* jobs at deliverd */
	struct wline {
		struct qmsg	*head, *tail;
	}		 lines[2];	/* waiting for room: new mail, retries */
	unsigned	 turn;		/* pops while both lines wait */
} ix;

static size_t
id_hash(const char *id)
{
	return mr_hash_str(id) & (ID_BUCKETS - 1);
}

void
index_add(struct qmsg *m)
{
	size_t b = id_hash(m->id);

	m->id_next = ix.ids[b];
	ix.ids[b] = m;
}

/* Takes m out of every table and the waiting line. */
void
index_del(struct qmsg *m)
{
	struct qmsg **pp;

	for (pp = &ix.ids[id_hash(m->id)]; *pp != NULL; pp = &(*pp)->id_next)
		if (*pp == m) {
			*pp = m->id_next;
			break;
		}
	if (msg_job(m) != 0)
		job_end(m);
	wait_del(m);
}

struct qmsg *
index_find(const char *id)
{
	struct qmsg *m;

	for (m = ix.ids[id_hash(id)]; m != NULL; m = m->id_next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

/* m's delivery state, made at its first use. */
struct qact *
act_get(struct qmsg *m)
{
	if (m->act == NULL)
		m->act = mr_xcalloc(1, sizeof(*m->act));
	return m->act;
}

/* Frees m's delivery state once it is neither waiting, nor at deliverd,
 * nor at an LMTP server; the recipients of a job that is over go. */
void
act_put(struct qmsg *m)
{
	struct qact *a = m->act;

	if (a == NULL)
		return;
	if (a->job == 0) {
		free(a->job_idx);
		a->job_idx = NULL;
		a->job_n = 0;
	}
	if (a->job == 0 && !m->waiting && a->lmtp == NULL) {
		free(a);
		m->act = NULL;
	}
}

/* m goes to deliverd as job number job. */
void
job_start(struct qmsg *m, uint64_t job)
{
	size_t b = job & (JOB_BUCKETS - 1);
	struct qact *a = act_get(m);

	a->job = job;
	a->job_next = ix.jobs[b];
	ix.jobs[b] = m;
	ix.active++;
}

void
job_end(struct qmsg *m)
{
	struct qact *a = m->act;
	struct qmsg **pp;

	if (a == NULL)
		return;
	for (pp = &ix.jobs[a->job & (JOB_BUCKETS - 1)]; *pp != NULL;
	    pp = &(*pp)->act->job_next)
		if (*pp == m) {
			*pp = a->job_next;
			ix.active--;
			break;
		}
	a->job = 0;
	a->job_next = NULL;
	act_put(m);
}

struct qmsg *
job_find(uint64_t job)
{
	struct qmsg *m;

	for (m = ix.jobs[job & (JOB_BUCKETS - 1)]; m != NULL;
	    m = m->act->job_next)
		if (m->act->job == job)
			return m;
	return NULL;
}

/* 1 when deliverd can take another job. */
int
job_room(void)
{
	return ix.active < MR_JOBS_MAX;
}

/* The line m waits in: never tried, or a retry. */
static struct wline *
line_of(const struct qmsg *m)
{
	return &ix.lines[m->waiting == 1 ? 0 : 1];
}

void
wait_push(struct qmsg *m)
{
	struct wline *l;
	struct qact *a;

	if (m->waiting)
		return;
	a = act_get(m);
	m->waiting = m->attempts == 0 ? 1 : 2;
	l = line_of(m);
	a->wnext = NULL;
	a->wprev = l->tail;
	if (l->tail != NULL)
		l->tail->act->wnext = m;
	else
		l->head = m;
	l->tail = m;
}

void
wait_del(struct qmsg *m)
{
	struct wline *l;
	struct qact *a = m->act;

	if (!m->waiting)
		return;
	l = line_of(m);
	if (a->wprev != NULL)
		a->wprev->act->wnext = a->wnext;
	else
		l->head = a->wnext;
	if (a->wnext != NULL)
		a->wnext->act->wprev = a->wprev;
	else
		l->tail = a->wprev;
	m->waiting = 0;
	a->wnext = a->wprev = NULL;
	act_put(m);
}

/*
 * The next message for deliverd, taken out of its line: new mail first,
 * so that a retry pass over a big queue (a flush, a restart) does not
 * hold up what arrives meanwhile; but one in every RETRY_SHARE comes
 * from the retries while both lines wait, so retries never starve.
 * None from the retries when retries is 0 (their envelopes' rewrites
 * are behind: queue_sched.c feed).
 */
#define RETRY_SHARE	4

struct qmsg *
wait_pop(int retries)
{
	struct qmsg *m = ix.lines[0].head;

	if (retries && (m == NULL || (ix.lines[1].head != NULL &&
	    ++ix.turn % RETRY_SHARE == 0)))
		m = ix.lines[1].head;
	if (m != NULL)
		wait_del(m);
	return m;
}
