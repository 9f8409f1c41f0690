/*
 * queue_commit.c - new messages: a file for smtpd to write into, then the
 * durable commit that must finish before smtpd may answer 250.
 *
 * Commit order (a crash at any point loses nothing acknowledged and
 * delivers nothing twice beyond what SMTP itself allows): smtpd writes
 * the data straight into Queue/ID.eml; where the server has DKIM keys,
 * the worker replaces it by a signed copy (dkim_sign.c: written in
 * Queue/tmp, renamed over it); queued appends the envelope, whose
 * last line is "end" and which records the data's size, to the Queue's
 * journal (queue_journal.c; one write per batch; a held message gets
 * Queue/ID.env instead); one syncfs makes data, envelopes and directory
 * entries durable; then each file is flushed again through the
 * descriptor that wrote it, which is what reports its write errors
 * (below); only then 250.
 * Recovery treats Queue/ID.eml without a complete envelope (record or
 * ID.env) as never acknowledged (a crash came before the syncfs
 * finished) and removes it.  Data of another size than the envelope
 * records is checked when the message is tried (queue_sched.c): smtpd,
 * which wrote it, might have kept its descriptor, so the size is
 * checked at every attempt.
 * Nothing is renamed and no directory is flushed on its own: one flush
 * per batch, where write-fsync-rename-fsync costs two.
 *
 * Write errors: Linux reports a writeback error to syncfs only through a
 * descriptor opened before the error (and before 5.8 not at all), so a
 * flush through a directory opened per batch can miss an error that
 * background writeback met earlier, or that an earlier syncfs consumed.
 * The descriptors that wrote were opened before their file had any data
 * (the data's at NEW, the envelope's in the batch), so fdatasync/fsync
 * on them reports every error their pages met, whoever saw it first;
 * after the syncfs they have nothing left to write.  One fsync after
 * the syncfs (the journal's) also flushes the device's write cache,
 * which the syncfs of a file system without a journal may leave holding
 * the last metadata it wrote; the data files are then only asked for
 * their errors (mr_write_errors), without a flush each.
 *
 * Security: the commit request comes from smtpd, which faces the network:
 * its ids must match a file handed out on the same channel, and every
 * address is parsed again before it reaches the envelope.
 */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "hdr_check.h"
#include "queued.h"
#include "util.h"

/* A file handed to smtpd and not yet committed or aborted. */
struct pending {
	struct pending	*next;
	struct qserver	*qs;
	char		 id[MR_QID_LEN + 1];
	int		 fd;
};

static struct pending *pendings;

static void
reply_str(struct mr_ipc *c, uint32_t type, uint64_t req, const char *s,
    int fd)
{
	struct mr_buf b;

	mr_buf_init(&b);
	mr_buf_put_u64(&b, req);
	mr_buf_put_str(&b, s);
	mr_ipc_sendb(c, type, fd, &b);
	mr_buf_free(&b);
}

static void
pending_path(const struct pending *p, const char *ext, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.%s", p->qs->queue, p->id, ext);
}

static void
pending_discard(struct pending *p)
{
	char path[4096];

	pending_path(p, "env", path, sizeof(path));
	if (unlink(path) == -1 && errno != ENOENT)
		mr_warn("unlink %s: %s", path, strerror(errno));
	pending_path(p, "eml", path, sizeof(path));
	if (unlink(path) == -1 && errno != ENOENT)
		mr_warn("unlink %s: %s", path, strerror(errno));
	if (p->fd != -1)
		close(p->fd);
	free(p);
}

static struct pending *
pending_take(const char *id)
{
	struct pending **pp, *p;

	for (pp = &pendings; (p = *pp) != NULL; pp = &p->next)
		if (strcmp(p->id, id) == 0) {
			*pp = p->next;
			return p;
		}
	return NULL;
}

void
commit_new(struct mr_ipc *c, const unsigned char *data, size_t len)
{
	struct mr_m_new req;
	struct pending *p;
	const char *err;
	char path[4096];

	if (mr_msg_new(data, len, &req, &err) == -1 ||
	    req.server >= q->nservers) {
		mr_warn("smtpd sent a malformed NEW request; dropping the "
		    "channel");
		queued_drop_smtpd();
		return;
	}
	if (q->stopping) {
		reply_str(c, MR_Q_NEW_FAIL, req.req, "queue is stopping", -1);
		return;
	}
	p = mr_xcalloc(1, sizeof(*p));
	p->qs = &q->servers[req.server];
	mr_queue_id(p->id);
	pending_path(p, "eml", path, sizeof(path));
	p->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (p->fd == -1) {
		mr_err("create %s: %s", path, strerror(errno));
		reply_str(c, MR_Q_NEW_FAIL, req.req, strerror(errno), -1);
		free(p);
		return;
	}
	p->next = pendings;
	pendings = p;
	reply_str(c, MR_Q_NEW_OK, req.req, p->id, p->fd);
}

void
commit_abort(const unsigned char *data, size_t len)
{
	struct mr_m_abort ab;
	struct pending *p;
	const char *err;

	if (mr_msg_abort(data, len, &ab, &err) == -1)
		return;
	if ((p = pending_take(ab.id)) != NULL)
		pending_discard(p);
}

void
commit_drop_all(void)
{
	struct pending *p;

	while ((p = pendings) != NULL) {
		pendings = p->next;
		pending_discard(p);
	}
}

/* The message a decoded COMMIT describes; takes over its recipients. */
static struct qmsg *
commit_msg(struct mr_m_commit *c, const struct pending *p)
{
	struct qmsg *m;
	size_t i;

	m = msg_new(p->qs, p->id);
	m->sender = qstr_get(c->sender);
	m->rcpts = mr_xcalloc(c->nrcpts, sizeof(struct qrcpt));
	for (i = 0; i < c->nrcpts; i++) {
		m->rcpts[i].addr = c->rcpts[i];
		c->rcpts[i] = NULL;
		m->rcpts[i].notify = c->dsn.notify[i];
		if (c->dsn.orcpt[i][0] != '\0')
			m->rcpts[i].orcpt = mr_xstrdup(c->dsn.orcpt[i]);
	}
	m->ret = c->dsn.ret;
	if (c->dsn.envid[0] != '\0')
		m->envid = mr_xstrdup(c->dsn.envid);
	m->nrcpts = (uint32_t)c->nrcpts;
	m->size = c->size;
	m->client = qstr_get(c->client);
	m->helo = qstr_get(c->helo);
	m->body = c->body;
	m->smtputf8 = c->smtputf8;
	m->auth = c->auth[0] != '\0' ? mr_xstrdup(c->auth) : NULL;
	mr_msg_commit_free(c);
	return m;
}

/*
 * Group commit.  Commits that arrive while the disk is busy wait in the
 * next batch; one worker thread makes a whole batch durable with one
 * syncfs per file system, however many messages it holds, and the loop
 * answers each session only when its batch is done.  The loop keeps
 * serving smtpd and deliverd meanwhile.  Finished messages are removed
 * by a second thread, so that no commit ever waits behind an unlink
 * (which can wait for a discard on the device), and deferrals' envelopes
 * are rewritten by a third (struct envw below).
 */
struct commit {
	struct commit	*next;
	struct pending	*p;
	struct qmsg	*m;
	uint64_t	 req;
	unsigned	 gen;		/* smtpd channel generation */
	int		 envfd;		/* worker only: a held message's
					 * envelope */
	uint32_t	 jseq;		/* worker: the journal of its
					 * envelope (queue_journal.c) */
	char		*claim;		/* Pickup: removed once durable */
	void		(*done)(const struct qmsg *, int, void *);
	void		*done_arg;	/* mailroot-sendmail's connection */
	int		 failed;
	char		 err[160];
	struct dkim_set	*dkim;		/* the server's keys, or NULL */
	int		 dkim_rc;	/* worker: dkim_sign's answer */
	char		 dkim_note[160];
};

/*
 * A deferral's envelope rewrite (queue_env.c says why it may be late):
 * the loop formats the text; the rewrite worker, a thread of its own,
 * writes it to Queue/tmp/ID.envw before its batch's one syncfs, then
 * renames it over Queue/ID.env and flushes each Queue directory once.
 * A crash before that leaves the older envelope, never a torn one; the
 * message lets go of its journal record only once the new name is
 * durable.  The rewrites have their own thread so that a new message's
 * commit never waits behind them: a retry pass defers thousands of
 * messages a second, and a batch of rewrites takes from a few to a few
 * hundred milliseconds on a busy disk.
 */
struct envw {
	struct envw	*next;
	struct qmsg	*m;		/* loop only; NULL once it is freed */
	struct qserver	*qs;
	char		 id[MR_ID_MAX + 1];
	struct mr_buf	 text;
	time_t		 next_try;	/* the text's: the file's mtime */
	int		 fd;		/* worker */
	int		 failed;	/* worker */
	char		 err[160];	/* worker */
};

/* A queue file whose message is done. */
struct trash {
	struct trash	*next;
	char		 path[];
};

static struct {
	pthread_t	 thread, trash_thread, env_thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;		/* work for the commit worker */
	pthread_cond_t	 trash_cond;	/* work for the trash thread */
	pthread_cond_t	 env_cond;	/* work for the rewrite worker */
	struct commit	*collecting, **ctail;	/* loop only */
	struct commit	*work;		/* handed to the worker */
	struct trash	*trash, **ttail;	/* files to remove, in order */
	struct commit	*done;		/* handed back */
	struct envw	*envq, **etail;	/* loop only: the next rewrites */
	size_t		 nenvq;		/* loop only: how many */
	struct envw	*env_work;	/* handed to the rewrite worker */
	struct envw	*env_flight;	/* loop: the same, until done */
	int		 env_finished;	/* the rewrites out are done */
	pthread_cond_t	 done_cond;	/* env_finished was set */
	int		 busy;		/* loop only: a batch is out */
	int		 env_busy;	/* loop only: rewrites are out */
	int		 quit;		/* the threads end when idle */
	int		 efd;		/* eventfd: a batch is done */
	int		 env_efd;	/* eventfd: the rewrites are done */
	const char	*env_gate;	/* tests only (env_gate_init) */
	struct event	*ev_done, *ev_env_done, *ev_kick, *ev_trash;
	struct event	*ev_trash_low;
	int		 trash_armed;	/* loop only: ev_trash pending */
	size_t		 ntrash;	/* files handed, not removed yet */
	int		 trash_behind;	/* the loop waits for ntrash to fall */
	int		 trash_efd;	/* eventfd: it fell */
	unsigned	 gen;
} gc;

/* Finished files wait this long so that the trash thread wakes once for
 * many of them, not twice per message. */
#define TRASH_DELAY_MS	50

/*
 * Files waiting for the trash thread, at most, before deliverd is handed
 * more (commit_trash_behind); it is handed more again below half.  An
 * unlink can take a tenth of a millisecond (a discard on the device),
 * and a backlog drained at thousands of messages a second outran it by
 * tens of thousands of files: held in memory, finished but not removed,
 * and a stop had to wait for them all (or lose them to mailrootd's stop
 * timer, and the next start delivered them again).
 */
#define TRASH_BEHIND	8192
#define TRASH_STEP	64	/* files removed per count update */

/* Rewrites per batch, at most: the loop waits for one batch where a
 * message changes again while its rewrite is out (commit_env_wait). */
#define ENV_BATCH	64

/* Rewrites waiting, at most, before retries wait for them
 * (commit_env_behind): 16 batches, some 600 KB of envelopes. */
#define ENV_BEHIND	(16 * ENV_BATCH)

/* Trash thread: n more files removed; the loop told when the count falls
 * below half the mark it waits on. */
static void
trash_removed(size_t n)
{
	uint64_t one = 1;
	int wake = 0;

	pthread_mutex_lock(&gc.lock);
	gc.ntrash -= n;
	if (gc.trash_behind && gc.ntrash < TRASH_BEHIND / 2) {
		gc.trash_behind = 0;
		wake = 1;
	}
	pthread_mutex_unlock(&gc.lock);
	if (wake && write(gc.trash_efd, &one, sizeof(one)) != sizeof(one))
		mr_panic("commit: eventfd write: %s", strerror(errno));
}

static void
empty_trash(struct trash *t)
{
	struct trash *next;
	size_t n = 0;

	for (; t != NULL; t = next) {
		next = t->next;
		if (unlink(t->path) == -1 && errno != ENOENT)
			mr_err("unlink %s: %s", t->path, strerror(errno));
		free(t);
		if (++n == TRASH_STEP) {
			trash_removed(n);
			n = 0;
		}
	}
	if (n > 0)
		trash_removed(n);
}

static void
commit_fail(struct commit *c, const char *what)
{
	c->failed = 1;
	snprintf(c->err, sizeof(c->err), "%s: %s", what, strerror(errno));
}


static void
env_fail(struct envw *e, const char *what)
{
	e->failed = 1;
	snprintf(e->err, sizeof(e->err), "%s: %s", what, strerror(errno));
}

/* One flush for every Queue directory of the batch, however many. */
static void
sync_queues(struct commit *b, struct envw *ev)
{
	unsigned char *want = mr_xcalloc(q->nservers, 1);
	struct commit *c;
	struct envw *e;
	size_t i;

	for (c = b; c != NULL; c = c->next)
		want[c->p->qs - q->servers] = 1;
	for (e = ev; e != NULL; e = e->next)
		want[e->qs - q->servers] |= !e->failed;
	for (i = 0; i < q->nservers; i++) {
		if (!want[i] || mr_syncfs_dir(q->servers[i].queue) == 0)
			continue;
		for (c = b; c != NULL; c = c->next)
			if (c->p->qs == &q->servers[i] && !c->failed)
				commit_fail(c, "syncfs");
		for (e = ev; e != NULL; e = e->next)
			if (e->qs == &q->servers[i] && !e->failed)
				env_fail(e, "syncfs");
	}
	free(want);
}

static void
envw_tmp(const struct envw *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.envw", e->qs->tmp, e->id);
}

/* Worker, before the flush: each rewrite's text in its temporary file. */
static void
env_prepare(struct envw *ev)
{
	struct envw *e;
	char tmp[4096];

	for (e = ev; e != NULL; e = e->next) {
		envw_tmp(e, tmp, sizeof(tmp));
		e->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0640);
		if (e->fd == -1)
			env_fail(e, "create");
		else if (mr_write_all(e->fd, e->text.data, e->text.len) == -1)
			env_fail(e, "write");
		else	/* a hint (recovery's order): no failure */
			(void)env_stamp(e->fd, e->next_try);
	}
}

/*
 * Worker, after the flush: each file's own errors, then the new names,
 * made durable with one flush per Queue directory.  Only the first file
 * is fsynced: that flushes the device's write cache once, for every
 * file the syncfs wrote, before any rename; the others are only asked
 * for their errors (mr_write_errors).  An fsync each flushed that cache
 * once per rewrite, 64 times a batch: a batch took 150-450 ms on a busy
 * disk, and new mail committed meanwhile waited for it.
 */
static void
env_install(struct envw *ev)
{
	unsigned char *want = mr_xcalloc(q->nservers, 1);
	char tmp[4096], path[4096];
	struct envw *e;
	size_t i;
	int flushed = 0;

	for (e = ev; e != NULL; e = e->next) {
		if (e->fd != -1 && !e->failed) {
			if ((flushed ? mr_write_errors(e->fd) :
			    fsync(e->fd)) == -1)
				env_fail(e, "fsync");
			else
				flushed = 1;
		}
		if (e->fd != -1 && close(e->fd) == -1 && !e->failed)
			env_fail(e, "close");
		e->fd = -1;
		envw_tmp(e, tmp, sizeof(tmp));
		snprintf(path, sizeof(path), "%s/%s.env", e->qs->queue, e->id);
		if (!e->failed && rename(tmp, path) == -1)
			env_fail(e, "rename");
		if (e->failed)
			(void)unlink(tmp);
		else
			want[e->qs - q->servers] = 1;
	}
	for (i = 0; i < q->nservers; i++)
		if (want[i] && mr_fsync_dir(q->servers[i].queue) == -1)
			for (e = ev; e != NULL; e = e->next)
				if (e->qs == &q->servers[i] && !e->failed)
					env_fail(e, "directory");
	free(want);
}

/* The errors of c's own files, through the descriptors that wrote them;
 * both are closed.  Where c's envelope is in its Queue's journal, the
 * journal's fsync (journal_errors) came after the syncfs and flushed the
 * device's cache for the whole file system, so the data file is only
 * asked for its errors: an fdatasync would flush that cache once more
 * per message (a few ms each on a busy disk, one after the other). */
static void
check_files(struct commit *c)
{
	if (!c->failed && (c->jseq != 0 ? mr_write_errors(c->p->fd) :
	    fdatasync(c->p->fd)) == -1)
		commit_fail(c, "data");
	if (close(c->p->fd) == -1 && !c->failed)
		commit_fail(c, "data");
	c->p->fd = -1;
	if (c->envfd == -1)
		return;
	if (!c->failed && fsync(c->envfd) == -1)
		commit_fail(c, "envelope");
	if (close(c->envfd) == -1 && !c->failed)
		commit_fail(c, "envelope");
	c->envfd = -1;
}

/* Unlinks the claims of the committed Pickup files and flushes their
 * Queue before anything is delivered (pickup.c says why). */
static void
remove_claims(struct commit *b)
{
	struct commit *c, *o;

	for (c = b; c != NULL; c = c->next)
		if (c->claim != NULL && !c->failed && unlink(c->claim) == -1)
			mr_err("unlink %s: %s", c->claim, strerror(errno));
	for (c = b; c != NULL; c = c->next) {
		if (c->claim == NULL || c->failed)
			continue;
		for (o = b; o != c && !(o->claim != NULL && !o->failed &&
		    o->p->qs == c->p->qs); o = o->next)
			;
		if (o == c && mr_fsync_dir(c->p->qs->queue) == -1)
			mr_err("%s: %s", c->p->qs->queue, strerror(errno));
	}
}

/* The DKIM signature (dkim_sign.c): the data file is replaced by its
 * signed copy, whose descriptor the flushes below go through. */
static void
sign_data(struct commit *c)
{
	char path[4096], tmp[4096];

	pending_path(c->p, "eml", path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s/%s.dkim", c->p->qs->tmp, c->p->id);
	c->dkim_rc = dkim_sign(c->dkim, path, tmp, &c->p->fd, &c->m->size,
	    c->dkim_note, sizeof(c->dkim_note));
	if (c->dkim_rc == -1) {
		c->failed = 1;
		snprintf(c->err, sizeof(c->err), "%s", c->dkim_note);
	}
}

static size_t
server_of(const struct commit *c)
{
	return (size_t)(c->p->qs - q->servers);
}

/* The envelopes of server's messages in b, appended to its journal with
 * one write (a held message, which waits, gets its own ID.env). */
static void
journal_server(struct commit *b, size_t server)
{
	struct mr_buf buf;
	struct commit *c;
	uint32_t seq;

	mr_buf_init(&buf);
	for (c = b; c != NULL; c = c->next)
		if (!c->failed && server_of(c) == server && !c->m->hold)
			env_format(c->m, &buf);
	if (buf.len > 0) {
		seq = journal_append(server, &buf);
		for (c = b; c != NULL; c = c->next)
			if (!c->failed && server_of(c) == server &&
			    !c->m->hold) {
				if (seq == 0)
					commit_fail(c, "journal");
				c->jseq = seq;
			}
	}
	mr_buf_free(&buf);
}

/* After the flush: the journals' own write errors. */
static void
journal_errors(struct commit *b)
{
	struct commit *c;
	size_t i;

	for (i = 0; i < q->nservers; i++) {
		for (c = b; c != NULL && (c->jseq == 0 || server_of(c) != i);
		    c = c->next)
			;
		if (c == NULL || journal_check(i) == 0)
			continue;
		for (; c != NULL; c = c->next)
			if (c->jseq != 0 && server_of(c) == i && !c->failed)
				commit_fail(c, "journal");
	}
}

/* The worker's half: everything that touches the disk. */
static void
commit_batch(struct commit *b, struct envw *ev)
{
	struct commit *c;
	char path[4096];
	size_t i;

	/* 0. signed once, before the envelope records the data's size */
	for (c = b; c != NULL; c = c->next)
		if (c->dkim != NULL)
			sign_data(c);
	/* 1. the envelopes: journal records; a held message's beside its
	 * data (complete only with its last line, "end") */
	for (c = b; c != NULL; c = c->next) {
		c->envfd = -1;
		if (c->failed || !c->m->hold)
			continue;
		pending_path(c->p, "env", path, sizeof(path));
		if ((c->envfd = env_create(path, c->m)) == -1)
			commit_fail(c, "envelope");
	}
	for (i = 0; i < q->nservers; i++)
		journal_server(b, i);
	env_prepare(ev);	/* the deferrals' rewrites */
	/* 2. one flush for data, envelopes and names of the whole batch */
	sync_queues(b, ev);
	/* 3. each file's own errors */
	journal_errors(b);
	for (c = b; c != NULL; c = c->next)
		check_files(c);
	/* 4. Pickup's claims, now that their messages are durable */
	remove_claims(b);
	/* 5. the rewrites take their names */
	env_install(ev);
}

/* Rewrite worker, tests only: the batch waits while the file env_gate
 * names exists, or until queued stops (lock held, let go meanwhile). */
static void
env_gate_wait(void)
{
	struct timespec tick = { 0, 10 * 1000000 };
	struct stat st;

	while (gc.env_gate != NULL && !gc.quit &&
	    stat(gc.env_gate, &st) == 0) {
		pthread_mutex_unlock(&gc.lock);
		nanosleep(&tick, NULL);
		pthread_mutex_lock(&gc.lock);
	}
}

/* The commit's worker (arg NULL) and the rewrites' (arg non-NULL): each
 * takes its whole line of work, writes it with commit_batch and wakes
 * the loop through its eventfd. */
static void *
batch_worker(void *arg)
{
	int env = arg != NULL;
	pthread_cond_t *cond = env ? &gc.env_cond : &gc.cond;
	struct commit *b;
	struct envw *ev;
	uint64_t one = 1;

	pthread_mutex_lock(&gc.lock);
	for (;;) {
		while ((env ? gc.env_work == NULL : gc.work == NULL) &&
		    !gc.quit)
			pthread_cond_wait(cond, &gc.lock);
		if (env ? gc.env_work == NULL : gc.work == NULL)
			break;		/* told to quit, and nothing left */
		b = NULL;
		ev = NULL;
		if (env) {
			env_gate_wait();
			ev = gc.env_work;
			gc.env_work = NULL;
		} else {
			b = gc.work;
			gc.work = NULL;
		}
		pthread_mutex_unlock(&gc.lock);
		commit_batch(b, ev);
		pthread_mutex_lock(&gc.lock);
		if (env) {
			gc.env_finished = 1;
			pthread_cond_broadcast(&gc.done_cond);
		} else
			gc.done = b;
		pthread_mutex_unlock(&gc.lock);
		if (write(env ? gc.env_efd : gc.efd, &one, sizeof(one)) !=
		    sizeof(one))
			mr_panic("commit: eventfd write: %s", strerror(errno));
		pthread_mutex_lock(&gc.lock);
	}
	pthread_mutex_unlock(&gc.lock);
	return NULL;
}

static void *
trash_worker(void *arg)
{
	struct trash *t;

	(void)arg;
	pthread_mutex_lock(&gc.lock);
	for (;;) {
		while (gc.trash == NULL && !gc.quit)
			pthread_cond_wait(&gc.trash_cond, &gc.lock);
		if (gc.trash == NULL)
			break;		/* told to quit, and nothing left */
		t = gc.trash;
		gc.trash = NULL;
		gc.ttail = &gc.trash;
		pthread_mutex_unlock(&gc.lock);
		empty_trash(t);
		pthread_mutex_lock(&gc.lock);
	}
	pthread_mutex_unlock(&gc.lock);
	return NULL;
}

/* Takes at most ENV_BATCH rewrites off the line for the next batch. */
static struct envw *
env_take(void)
{
	struct envw *first = gc.envq, *e = NULL;
	size_t n;

	for (n = 0; n < ENV_BATCH && gc.envq != NULL; n++) {
		e = gc.envq;
		e->m->envw = (e->m->envw & ~ENVW_QUEUED) | ENVW_FLIGHT;
		gc.envq = e->next;
		gc.nenvq--;
	}
	if (e != NULL)
		e->next = NULL;
	if (gc.envq == NULL)
		gc.etail = &gc.envq;
	return first == gc.envq ? NULL : first;
}

static void
start_batch(void)
{
	if (gc.busy || gc.collecting == NULL)
		return;
	gc.busy = 1;
	pthread_mutex_lock(&gc.lock);
	gc.work = gc.collecting;
	pthread_cond_signal(&gc.cond);
	pthread_mutex_unlock(&gc.lock);
	gc.collecting = NULL;
	gc.ctail = &gc.collecting;
}

static void
start_rewrites(void)
{
	if (gc.env_busy || gc.envq == NULL)
		return;
	gc.env_busy = 1;
	gc.env_flight = env_take();
	pthread_mutex_lock(&gc.lock);
	gc.env_work = gc.env_flight;
	gc.env_finished = 0;
	pthread_cond_signal(&gc.env_cond);
	pthread_mutex_unlock(&gc.lock);
}

static void
kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	start_batch();
	start_rewrites();
}

static void
finish_commit(struct commit *c)
{
	int local = c->claim != NULL || c->done != NULL;	/* not smtpd's */
	struct mr_ipc *chan = gc.gen == c->gen && !local ? q->smtpd : NULL;

	journal_hold(c->failed ? NULL : c->m, server_of(c), c->jseq);
	if (c->done != NULL)
		c->done(c->m, c->failed, c->done_arg);
	else if (local)
		pickup_done(c->m, c->failed);
	free(c->claim);
	c->claim = NULL;
	dkim_unref(c->dkim);
	c->dkim = NULL;
	if (c->dkim_rc == 1 && !c->failed)
		mr_info("%s: %s", c->m->id, c->dkim_note);
	if (c->failed) {
		mr_err("%s: commit failed: %s", c->p->id, c->err);
		if (chan != NULL)
			reply_str(chan, MR_Q_COMMIT_FAIL, c->req, c->err, -1);
		pending_discard(c->p);
		msg_free(c->m);
		return;
	}
	free(c->p);
	if (chan != NULL)
		reply_str(chan, MR_Q_COMMIT_OK, c->req, c->m->id, -1);
	if (!local)
		mr_info("%s: from=<%s> size=%llu nrcpt=%zu client=[%s]",
		    c->m->id, c->m->sender, (unsigned long long)c->m->size,
		    (size_t)c->m->nrcpts, c->m->client);
	metrics_add(c->m->qs, MC_RECEIVED, 1);
	metrics_add(c->m->qs, MC_BYTES, c->m->size);
	metrics_size(c->m->qs, c->m->size);
	c->m->accepted_ms = mr_now_ms();
	/* durable even if smtpd vanished meanwhile: it is delivered */
	sched_add(c->m);
}

/* Loop: the batch's rewrites are done; the messages let go of their
 * journal records where the new envelope is durable. */
static void
env_done(struct envw *ev)
{
	struct envw *e, *next;

	for (e = ev; e != NULL; e = next) {
		next = e->next;
		if (e->failed)
			mr_err("%s: updating envelope: %s", e->id, e->err);
		if (e->m != NULL) {
			e->m->envw &= (uint8_t)~ENVW_FLIGHT;
			if (!e->failed)
				journal_release(e->m);
		}
		mr_buf_free(&e->text);
		free(e);
	}
}

static void
done_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct commit *b, *next;
	uint64_t v;

	(void)ev;
	(void)arg;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return;
	pthread_mutex_lock(&gc.lock);
	b = gc.done;
	gc.done = NULL;
	pthread_mutex_unlock(&gc.lock);
	for (; b != NULL; b = next) {
		next = b->next;
		finish_commit(b);
		free(b);
	}
	gc.busy = 0;
	start_batch();
	queued_stop_step();
}

static void
env_done_cb(evutil_socket_t fd, short ev, void *arg)
{
	uint64_t v;

	(void)ev;
	(void)arg;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return;
	env_done(gc.env_flight);
	gc.env_flight = NULL;
	gc.env_busy = 0;
	start_rewrites();
	if (!commit_env_behind())
		sched_feed();	/* the retries that waited for this */
	queued_stop_step();
}

/* No commit or rewrite in flight or waiting: stopping loses no answer. */
int
commit_idle(void)
{
	return !gc.busy && !gc.env_busy && gc.collecting == NULL &&
	    gc.envq == NULL;
}

/* 1 while so many finished files wait for the trash thread that
 * deliverd should not be handed more (sched_room); sched_feed is called
 * once they fall below half. */
int
commit_trash_behind(void)
{
	int behind;

	pthread_mutex_lock(&gc.lock);
	behind = gc.ntrash >= TRASH_BEHIND;
	if (behind)
		gc.trash_behind = 1;
	pthread_mutex_unlock(&gc.lock);
	return behind;
}

static void
trash_low_cb(evutil_socket_t fd, short ev, void *arg)
{
	uint64_t v;

	(void)ev;
	(void)arg;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return;
	sched_feed();
}

static void
trash_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	gc.trash_armed = 0;
	pthread_mutex_lock(&gc.lock);
	pthread_cond_signal(&gc.trash_cond);
	pthread_mutex_unlock(&gc.lock);
}

/* For the tests only: MAILROOT_TEST_ENVW_GATE=PATH holds every batch of
 * rewrites while PATH exists, as a very slow disk would, so that a test
 * can see new mail go past a retry pass's rewrites. */
static void
env_gate_init(void)
{
	const char *s = getenv("MAILROOT_TEST_ENVW_GATE");

	if (s == NULL || *s != '/')
		return;
	gc.env_gate = s;
	mr_warn("test rewrite gate in use (MAILROOT_TEST_ENVW_GATE=%s): not "
	    "for production", s);
}

void
commit_init(void)
{
	gc.ctail = &gc.collecting;
	gc.ttail = &gc.trash;
	gc.etail = &gc.envq;
	journal_init();
	if ((gc.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1 ||
	    (gc.env_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1 ||
	    (gc.trash_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
		mr_fatal("queued: eventfd: %s", strerror(errno));
	env_gate_init();
	pthread_mutex_init(&gc.lock, NULL);
	pthread_cond_init(&gc.cond, NULL);
	pthread_cond_init(&gc.trash_cond, NULL);
	pthread_cond_init(&gc.done_cond, NULL);
	pthread_cond_init(&gc.env_cond, NULL);
	gc.ev_done = event_new(q->base, gc.efd, EV_READ | EV_PERSIST, done_cb,
	    NULL);
	gc.ev_env_done = event_new(q->base, gc.env_efd, EV_READ | EV_PERSIST,
	    env_done_cb, NULL);
	gc.ev_kick = evtimer_new(q->base, kick_cb, NULL);
	gc.ev_trash = evtimer_new(q->base, trash_cb, NULL);
	gc.ev_trash_low = event_new(q->base, gc.trash_efd, EV_READ |
	    EV_PERSIST, trash_low_cb, NULL);
	event_add(gc.ev_done, NULL);
	event_add(gc.ev_env_done, NULL);
	event_add(gc.ev_trash_low, NULL);
	if (pthread_create(&gc.thread, NULL, batch_worker, NULL) != 0 ||
	    pthread_create(&gc.env_thread, NULL, batch_worker, &gc) != 0 ||
	    pthread_create(&gc.trash_thread, NULL, trash_worker, NULL) != 0)
		mr_fatal("queued: cannot start the commit threads");
}

/* Removes path later, in the trash thread, after everything queued
 * before it. */
void
commit_unlink(const char *path)
{
	struct timeval tv = { 0, TRASH_DELAY_MS * 1000 };
	struct trash *t;
	size_t n = strlen(path) + 1;

	t = mr_xmalloc(sizeof(*t) + n);
	t->next = NULL;
	memcpy(t->path, path, n);
	pthread_mutex_lock(&gc.lock);
	*gc.ttail = t;
	gc.ttail = &t->next;
	gc.ntrash++;
	pthread_mutex_unlock(&gc.lock);
	if (!gc.trash_armed) {
		gc.trash_armed = 1;
		evtimer_add(gc.ev_trash, &tv);
	}
}

/* At exit: the threads finish what they hold (the trash included) and
 * end. */
void
commit_shutdown(void)
{
	pthread_mutex_lock(&gc.lock);
	gc.quit = 1;
	pthread_cond_signal(&gc.cond);
	pthread_cond_signal(&gc.env_cond);
	pthread_cond_signal(&gc.trash_cond);
	pthread_mutex_unlock(&gc.lock);
	pthread_join(gc.thread, NULL);
	pthread_join(gc.env_thread, NULL);
	pthread_join(gc.trash_thread, NULL);
}

/* smtpd's channel was replaced: answers for the old one go nowhere. */
void
commit_new_channel(void)
{
	gc.gen++;
}

/* Aliases expanded before the envelope is written; a table that cannot
 * be read refuses the message for now (smtpd answers 451). */
static int
commit_aliases(struct qmsg *m, struct pending *p, uint64_t req)
{
	char err[512];

	if (alias_expand(m, err, sizeof(err)) == 0)
		return 0;
	mr_err("%s: aliases: %s; message refused for now", m->id, err);
	if (q->smtpd != NULL)
		reply_str(q->smtpd, MR_Q_COMMIT_FAIL, req, err, -1);
	pending_discard(p);
	msg_free(m);
	return -1;
}

/* The server's header checks; -1 when the message is not to be
 * committed (answered: refused, refused for now, or discarded). */
static int
commit_checks(struct qmsg *m, struct pending *p, uint64_t req)
{
	char text[MR_HC_TEXT_MAX + 64];
	int a = hdr_filter_fd(m, p->fd, text, sizeof(text));

	if (a == MR_HC_NONE || a == MR_HC_HOLD) {
		m->hold = a == MR_HC_HOLD;
		return 0;
	}
	if (q->smtpd != NULL)
		reply_str(q->smtpd, a == MR_HC_REJECT ? MR_Q_COMMIT_REJECT :
		    a == MR_HC_DISCARD ? MR_Q_COMMIT_OK : MR_Q_COMMIT_FAIL,
		    req, a == MR_HC_DISCARD ? m->id : a == MR_HC_REJECT ?
		    text : "header checks unavailable", -1);
	if (a == MR_HC_DISCARD)
		mr_info("%s: discarded by a header check: from=<%s> "
		    "nrcpt=%zu", m->id, m->sender, (size_t)m->nrcpts);
	pending_discard(p);
	msg_free(m);
	return -1;
}

void
commit_commit(const unsigned char *data, size_t len)
{
	struct mr_m_commit req;
	struct commit *cm;
	struct pending *p;
	struct qmsg *m;
	const char *err;
	struct stat st;
	struct timeval zero = { 0, 0 };

	if (mr_msg_commit(data, len, &req, &err) == -1) {
		mr_warn("smtpd: %s; dropping the channel", err);
		queued_drop_smtpd();
		return;
	}
	if ((p = pending_take(req.id)) == NULL) {
		mr_warn("smtpd sent a COMMIT for an id it was not given; "
		    "dropping the channel");
		mr_msg_commit_free(&req);
		queued_drop_smtpd();
		return;
	}
	m = commit_msg(&req, p);
	if (commit_aliases(m, p, req.req) == -1 ||
	    commit_checks(m, p, req.req) == -1)
		return;
	m->created = q_now();
	/* the size smtpd claims is only a hint; the file says how big */
	if (fstat(p->fd, &st) == 0)
		m->size = (uint64_t)st.st_size;
	cm = mr_xcalloc(1, sizeof(*cm));
	cm->p = p;
	cm->m = m;
	cm->req = req.req;
	cm->gen = gc.gen;
	cm->dkim = dkim_ref(p->qs);
	*gc.ctail = cm;
	gc.ctail = &cm->next;
	/* after this loop pass: every commit read meanwhile joins */
	if (!gc.busy)
		evtimer_add(gc.ev_kick, &zero);
}

static struct commit *
local_commit(struct qmsg *m, int fd, const char *claim)
{
	struct timeval zero = { 0, 0 };
	struct commit *cm;
	struct pending *p;

	p = mr_xcalloc(1, sizeof(*p));
	p->qs = m->qs;
	snprintf(p->id, sizeof(p->id), "%.*s", MR_QID_LEN, m->id);
	p->fd = fd;
	cm = mr_xcalloc(1, sizeof(*cm));
	cm->p = p;
	cm->m = m;
	cm->claim = claim != NULL ? mr_xstrdup(claim) : NULL;
	cm->dkim = dkim_ref(p->qs);
	*gc.ctail = cm;
	gc.ctail = &cm->next;
	if (!gc.busy)
		evtimer_add(gc.ev_kick, &zero);
	return cm;
}

void
commit_local(struct qmsg *m, int fd, const char *claim)
{
	(void)local_commit(m, fd, claim);
}

void
commit_local_cb(struct qmsg *m, int fd,
    void (*done)(const struct qmsg *, int, void *), void *arg)
{
	struct commit *cm = local_commit(m, fd, NULL);

	cm->done = done;
	cm->done_arg = arg;
}

/* Loop: m's envelope rewritten in the next batch, without waiting for
 * it (a deferral: a crash may lose it at no cost, queue_env.c).  A
 * rewrite still waiting takes the newer text. */
void
commit_env_later(struct qmsg *m)
{
	struct timeval zero = { 0, 0 };
	struct envw *e = NULL;

	if (m->envw & ENVW_QUEUED)
		for (e = gc.envq; e != NULL && e->m != m; e = e->next)
			;
	if (e == NULL) {
		e = mr_xcalloc(1, sizeof(*e));
		e->m = m;
		e->qs = m->qs;
		e->fd = -1;
		snprintf(e->id, sizeof(e->id), "%s", m->id);
		mr_buf_init(&e->text);
		*gc.etail = e;
		gc.etail = &e->next;
		gc.nenvq++;
		m->envw |= ENVW_QUEUED;
	}
	mr_buf_reset(&e->text);
	env_format(m, &e->text);
	e->next_try = m->next_try;
	if (!gc.env_busy)
		evtimer_add(gc.ev_kick, &zero);
}

/* Drops m's rewrite that waits for the next batch. */
static void
env_unqueue(struct qmsg *m)
{
	struct envw **pe, *e;

	for (pe = &gc.envq; (e = *pe) != NULL; pe = &e->next)
		if (e->m == m) {
			*pe = e->next;
			if (gc.etail == &e->next)
				gc.etail = pe;
			mr_buf_free(&e->text);
			free(e);
			gc.nenvq--;
			break;
		}
	m->envw &= (uint8_t)~ENVW_QUEUED;
}

/* 1 while so many rewrites wait that retries should wait for them. */
int
commit_env_behind(void)
{
	return gc.nenvq >= ENV_BEHIND;
}

/*
 * Loop, before m's envelope is written or removed otherwise: a rewrite
 * still waiting is dropped (the caller's state is newer), and one in the
 * worker's batch is waited for, so that it cannot land after the
 * caller's.  Rare (a message changed again within one batch), and
 * bounded by one batch.
 */
void
commit_env_wait(struct qmsg *m)
{
	if (m->envw & ENVW_QUEUED)
		env_unqueue(m);
	if (!(m->envw & ENVW_FLIGHT))
		return;
	pthread_mutex_lock(&gc.lock);
	while (!gc.env_finished)
		pthread_cond_wait(&gc.done_cond, &gc.lock);
	pthread_mutex_unlock(&gc.lock);
}

/* Loop: m is freed; its rewrites forget it. */
void
commit_env_forget(struct qmsg *m)
{
	struct envw *e;

	if (m->envw & ENVW_QUEUED)
		env_unqueue(m);
	for (e = gc.env_flight; e != NULL; e = e->next)
		if (e->m == m)
			e->m = NULL;
	m->envw = 0;
}
