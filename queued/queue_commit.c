/*
 * queue_commit.c - new messages: a file for smtpd to write into, then the
 * durable commit that must finish before smtpd may answer 250.
 *
 * Commit order (a crash at any point loses nothing acknowledged and
 * delivers nothing twice beyond what SMTP itself allows): smtpd writes
 * the data straight into Queue/ID.eml; queued writes Queue/ID.env, whose
 * last line is "end" and which records the data's size; one syncfs makes
 * data, envelope and both directory entries durable; only then 250.
 * Recovery treats Queue/ID.eml without a complete Queue/ID.env, or whose
 * size differs from the one the envelope records, as never acknowledged
 * (a crash came before the syncfs finished) and removes both files.
 * Nothing is renamed and no directory is flushed on its own: one flush
 * per batch, where write-fsync-rename-fsync costs two.
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

#include "addr.h"
#include "buf.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
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
	struct pending *p;
	struct mr_rd rd;
	char path[4096];
	uint64_t req;
	uint32_t idx;

	mr_rd_init(&rd, data, len);
	req = mr_rd_u64(&rd);
	idx = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd) || idx >= q->nservers) {
		mr_warn("smtpd sent a malformed NEW request; dropping the "
		    "channel");
		queued_drop_smtpd();
		return;
	}
	if (q->stopping) {
		reply_str(c, MR_Q_NEW_FAIL, req, "queue is stopping", -1);
		return;
	}
	p = mr_xcalloc(1, sizeof(*p));
	p->qs = &q->servers[idx];
	mr_queue_id(p->id);
	pending_path(p, "eml", path, sizeof(path));
	p->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (p->fd == -1) {
		mr_err("create %s: %s", path, strerror(errno));
		reply_str(c, MR_Q_NEW_FAIL, req, strerror(errno), -1);
		free(p);
		return;
	}
	p->next = pendings;
	pendings = p;
	reply_str(c, MR_Q_NEW_OK, req, p->id, p->fd);
}

void
commit_abort(const unsigned char *data, size_t len)
{
	struct pending *p;
	struct mr_rd rd;
	const char *id;

	mr_rd_init(&rd, data, len);
	id = mr_rd_str(&rd, MR_ID_MAX, NULL);
	if (!mr_rd_done(&rd))
		return;
	if ((p = pending_take(id)) != NULL)
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

/* Parses the COMMIT request into a message; NULL if malformed. */
static struct qmsg *
parse_commit(const unsigned char *data, size_t len, uint64_t *req,
    const char **id)
{
	struct qmsg *m;
	struct mr_path path;
	struct mr_rd rd;
	const char *s, *err;
	size_t i, n;

	mr_rd_init(&rd, data, len);
	*req = mr_rd_u64(&rd);
	*id = mr_rd_str(&rd, MR_ID_MAX, NULL);
	s = mr_rd_str(&rd, MR_ADDR_MAX, &n);
	if (rd.err || (n > 0 && mr_mailbox_parse(s, n, &path, &err) == -1))
		return NULL;
	m = mr_xcalloc(1, sizeof(*m));
	m->sender = mr_xstrdup(s);
	m->nrcpts = mr_rd_u32(&rd);
	if (rd.err || m->nrcpts == 0 || m->nrcpts > MR_RCPT_MAX)
		goto bad;
	m->rcpts = mr_xcalloc(m->nrcpts, sizeof(struct qrcpt));
	for (i = 0; i < m->nrcpts; i++) {
		s = mr_rd_str(&rd, MR_ADDR_MAX, &n);
		if (s == NULL || mr_mailbox_parse(s, n, &path, &err) == -1)
			goto bad;
		m->rcpts[i].addr = mr_xstrdup(path.addr);
	}
	m->size = mr_rd_u64(&rd);
	s = mr_rd_str(&rd, MR_TEXT_MAX, NULL);
	m->client = mr_xstrdup(s ? s : "");
	s = mr_rd_str(&rd, MR_TEXT_MAX, NULL);
	m->helo = mr_xstrdup(s ? s : "");
	m->body = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd) || m->body > MR_BODY_8BITMIME)
		goto bad;
	return m;
bad:
	msg_free(m);
	return NULL;
}

/*
 * Group commit.  Commits that arrive while the disk is busy wait in the
 * next batch; one worker thread makes a whole batch durable with one
 * syncfs per file system, however many messages it holds, and the loop
 * answers each session only when its batch is done.  The loop keeps
 * serving smtpd and deliverd meanwhile.  Finished messages are removed
 * by a second thread, so that no commit ever waits behind an unlink
 * (which can wait for a discard on the device).
 */
struct commit {
	struct commit	*next;
	struct pending	*p;
	struct qmsg	*m;
	uint64_t	 req;
	unsigned	 gen;		/* smtpd channel generation */
	int		 failed;
	char		 err[160];
};

/* A queue file whose message is done. */
struct trash {
	struct trash	*next;
	char		 path[];
};

static struct {
	pthread_t	 thread, trash_thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;		/* work for the commit worker */
	pthread_cond_t	 trash_cond;	/* work for the trash thread */
	struct commit	*collecting, **ctail;	/* loop only */
	struct commit	*work;		/* handed to the worker */
	struct trash	*trash, **ttail;	/* files to remove, in order */
	struct commit	*done;		/* handed back */
	int		 busy;		/* loop only: a batch is out */
	int		 quit;		/* the threads end when idle */
	int		 efd;		/* eventfd: a batch is done */
	struct event	*ev_done, *ev_kick, *ev_trash;
	int		 trash_armed;	/* loop only: ev_trash pending */
	unsigned	 gen;
} gc;

/* Finished files wait this long so that the trash thread wakes once for
 * many of them, not twice per message. */
#define TRASH_DELAY_MS	50

static void
empty_trash(struct trash *t)
{
	struct trash *next;

	for (; t != NULL; t = next) {
		next = t->next;
		if (unlink(t->path) == -1 && errno != ENOENT)
			mr_err("unlink %s: %s", t->path, strerror(errno));
		free(t);
	}
}

static void
commit_fail(struct commit *c, const char *what)
{
	c->failed = 1;
	snprintf(c->err, sizeof(c->err), "%s: %s", what, strerror(errno));
}

/* Distinct Queue directories of a batch (a handful of servers at most). */
static size_t
batch_queues(struct commit *b, struct qserver **qs, size_t max)
{
	struct commit *c;
	size_t n = 0, i;

	for (c = b; c != NULL; c = c->next) {
		for (i = 0; i < n; i++)
			if (qs[i] == c->p->qs)
				break;
		if (i == n && n < max)
			qs[n++] = c->p->qs;
	}
	return n;
}

/* Flushes the file system that holds qs's Queue: data, envelopes and
 * directory entries alike. */
static int
sync_queue(const struct qserver *qs)
{
	int fd, rc, saved;

	fd = open(qs->queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
#ifdef HAVE_SYNCFS
	rc = syncfs(fd);
#else
	sync();
	rc = 0;
#endif
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* The worker's half: everything that touches the disk. */
static void
commit_batch(struct commit *b)
{
	struct qserver *qs[64];
	struct commit *c;
	char path[4096];
	size_t n, i;

	/* 1. the envelopes beside their data (each one complete only
	 * with its last line, "end") */
	for (c = b; c != NULL; c = c->next) {
		pending_path(c->p, "env", path, sizeof(path));
		if (env_write_file(path, c->m, 0) == -1)
			commit_fail(c, "envelope");
	}
	/* 2. one flush for data, envelopes and names of the whole batch */
	n = batch_queues(b, qs, 64);
	for (i = 0; i < n; i++)
		if (sync_queue(qs[i]) == -1)
			for (c = b; c != NULL; c = c->next)
				if (c->p->qs == qs[i] && !c->failed)
					commit_fail(c, "syncfs");
	for (c = b; c != NULL; c = c->next) {
		close(c->p->fd);
		c->p->fd = -1;
	}
}

static void *
commit_worker(void *arg)
{
	struct commit *b;
	uint64_t one = 1;

	(void)arg;
	pthread_mutex_lock(&gc.lock);
	for (;;) {
		while (gc.work == NULL && !gc.quit)
			pthread_cond_wait(&gc.cond, &gc.lock);
		if (gc.work == NULL)
			break;		/* told to quit, and nothing left */
		b = gc.work;
		gc.work = NULL;
		pthread_mutex_unlock(&gc.lock);
		commit_batch(b);
		pthread_mutex_lock(&gc.lock);
		gc.done = b;
		pthread_mutex_unlock(&gc.lock);
		if (write(gc.efd, &one, sizeof(one)) != sizeof(one))
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
kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	start_batch();
}

static void
finish_commit(struct commit *c)
{
	struct mr_ipc *chan = gc.gen == c->gen ? q->smtpd : NULL;

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
	mr_info("%s: from=<%s> size=%llu nrcpt=%zu client=[%s]", c->m->id,
	    c->m->sender, (unsigned long long)c->m->size, c->m->nrcpts,
	    c->m->client);
	/* durable even if smtpd vanished meanwhile: it is delivered */
	sched_add(c->m);
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
	if (q->stopping && commit_idle())
		event_base_loopexit(q->base, NULL);
}

/* No commit in flight or waiting: stopping loses no answer. */
int
commit_idle(void)
{
	return !gc.busy && gc.collecting == NULL;
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

void
commit_init(void)
{
	gc.ctail = &gc.collecting;
	gc.ttail = &gc.trash;
	if ((gc.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
		mr_fatal("queued: eventfd: %s", strerror(errno));
	pthread_mutex_init(&gc.lock, NULL);
	pthread_cond_init(&gc.cond, NULL);
	pthread_cond_init(&gc.trash_cond, NULL);
	gc.ev_done = event_new(q->base, gc.efd, EV_READ | EV_PERSIST, done_cb,
	    NULL);
	gc.ev_kick = evtimer_new(q->base, kick_cb, NULL);
	gc.ev_trash = evtimer_new(q->base, trash_cb, NULL);
	event_add(gc.ev_done, NULL);
	if (pthread_create(&gc.thread, NULL, commit_worker, NULL) != 0 ||
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
	pthread_cond_signal(&gc.trash_cond);
	pthread_mutex_unlock(&gc.lock);
	pthread_join(gc.thread, NULL);
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

void
commit_commit(const unsigned char *data, size_t len)
{
	struct commit *cm;
	struct pending *p;
	struct qmsg *m;
	const char *id;
	uint64_t req;
	struct stat st;
	struct timeval zero = { 0, 0 };

	m = parse_commit(data, len, &req, &id);
	if (m == NULL || (p = pending_take(id)) == NULL) {
		mr_warn("smtpd sent a malformed COMMIT or one for an id it "
		    "was not given; dropping the channel");
		msg_free(m);
		queued_drop_smtpd();
		return;
	}
	m->qs = p->qs;
	snprintf(m->id, sizeof(m->id), "%s", p->id);
	if (commit_aliases(m, p, req) == -1)
		return;
	m->created = time(NULL);
	/* the size smtpd claims is only a hint; the file says how big */
	if (fstat(p->fd, &st) == 0)
		m->size = (uint64_t)st.st_size;
	cm = mr_xcalloc(1, sizeof(*cm));
	cm->p = p;
	cm->m = m;
	cm->req = req;
	cm->gen = gc.gen;
	*gc.ctail = cm;
	gc.ctail = &cm->next;
	/* after this loop pass: every commit read meanwhile joins */
	if (!gc.busy)
		evtimer_add(gc.ev_kick, &zero);
}
