/*
 * queue_journal.c - the envelopes of new messages, appended to a journal
 * per Queue directory instead of a file per message.
 *
 * A committed message is Queue/ID.eml (its data, a plain RFC 5322 file)
 * and a record in the current journal, Queue/journal/PID-SEQ.jnl (a
 * directory of its own, so that recovery reads no more than the
 * journals, however large the Queue): the same text
 * an ID.env holds (queue_env.c), from "mailroot-envelope 1" to "end".
 * The commit worker appends a batch's records with one write; the batch's
 * one syncfs makes them durable with the data (queue_commit.c).  A
 * message gets its own ID.env only when its state must change (a retry,
 * a hold, a delay report): env_write makes it durable (a retry's, the
 * commit worker's next batch: commit_env_later), then the message lets
 * go of its journal.  A message finished at its first attempt never
 * has one: one file created and removed per message, not two.  A journal
 * is removed once it is no longer written to and none of its messages is
 * left that has no ID.env.
 *
 * Recovery (journal_recover, before the Queue is read): every complete
 * record whose ID.eml exists and has no ID.env becomes that ID.env, byte
 * for byte (so a malformed one is quarantined as before); after one flush
 * the journals are removed.  A record cut short belongs to a commit that
 * a crash interrupted before its flush: never acknowledged, skipped.  A
 * record without its ID.eml belongs to a finished message.
 *
 * Threads: the worker owns the open journals (jw); the loop owns the
 * reference counts (jl) and removes a journal through the trash thread,
 * after the data files removed before it.
 *
 * Security: journals are written by queued only; at recovery ids are
 * checked to be plain file names before they reach a path, and the
 * records are parsed like any envelope.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "log.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

#define JNL_ROTATE	(1 << 20)	/* a new journal past this size */
#define JNL_READ_MAX	(256 << 20)
#define JNL_MAGIC	"mailroot-envelope 1\n"
#define JNL_IDLE_MS	1000	/* an unneeded journal kept for the next */

static void	journal_idle_cb(evutil_socket_t, short, void *);

/* worker thread: the journal being written, per server */
struct jw {
	int		 fd;
	uint32_t	 seq;
	size_t		 size;
};

/* loop: a journal some message may still need */
struct jl {
	struct jl	*next;
	size_t		 server;
	uint32_t	 seq;
	size_t		 refs;
};

static struct jw *jw;
static struct jl *jl;
static uint32_t *jnewest;	/* loop: the newest seq seen, per server */
static uint32_t jnext = 1;	/* worker: the next seq */
static struct event *jidle;	/* loop: closes journals left unneeded */

void
journal_init(void)
{
	char path[4096];
	size_t i;

	jw = mr_xcalloc(q->nservers, sizeof(*jw));
	jnewest = mr_xcalloc(q->nservers, sizeof(*jnewest));
	for (i = 0; i < q->nservers; i++) {
		jw[i].fd = -1;
		snprintf(path, sizeof(path), "%s/journal", q->servers[i].queue);
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			mr_err("mkdir %s: %s", path, strerror(errno));
	}
	jidle = evtimer_new(q->base, journal_idle_cb, NULL);
}

static void
journal_path(size_t server, uint32_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%s/journal/%ld-%u.jnl", q->servers[server].queue,
	    (long)getpid(), seq);
}

/* worker: the journal to append to, opened or rotated as needed */
static int
journal_open(size_t server)
{
	struct jw *w = &jw[server];
	char path[4096];
	int tries;

	if (w->fd != -1 && w->size < JNL_ROTATE)
		return 0;
	if (w->fd != -1)
		close(w->fd);
	w->fd = -1;
	for (tries = 0; tries < 100; tries++) {
		w->seq = jnext++;
		journal_path(server, w->seq, path, sizeof(path));
		w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND |
		    O_CLOEXEC, 0640);
		if (w->fd != -1 || errno != EEXIST)
			break;
	}
	w->size = 0;
	return w->fd == -1 ? -1 : 0;
}

/*
 * Worker: appends recs (whole records) to server's journal.  The journal's
 * seq, or 0 with errno set; after a failed write the journal is closed so
 * that the next batch starts a new one after no torn record.
 */
uint32_t
journal_append(size_t server, const struct mr_buf *recs)
{
	struct jw *w = &jw[server];
	char path[4096];
	int saved;

	if (journal_open(server) == -1)
		return 0;
	if (mr_write_all(w->fd, recs->data, recs->len) == -1) {
		saved = errno;
		close(w->fd);
		w->fd = -1;
		if (w->size == 0) {	/* nothing of it was acknowledged */
			journal_path(server, w->seq, path, sizeof(path));
			(void)unlink(path);
		}
		errno = saved;
		return 0;
	}
	w->size += recs->len;
	return w->seq;
}

/* Worker, after the flush: the write errors of server's journal; -1 and
 * the journal closed if there were any. */
int
journal_check(size_t server)
{
	struct jw *w = &jw[server];
	int saved;

	if (w->fd == -1 || fsync(w->fd) == 0)
		return 0;
	saved = errno;
	close(w->fd);
	w->fd = -1;
	errno = saved;
	return -1;
}

/*
 * Loop: removes every journal no one needs that is no longer written.
 * The one being written is closed and removed too once it has been
 * unneeded for JNL_IDLE_MS while the worker is idle (it touches jw only
 * while it holds a batch), so that an idle Queue holds no journal.
 */
static void
journal_sweep(int idle)
{
	struct timeval tv = { 0, JNL_IDLE_MS * 1000 };
	struct jl **pp, *j;
	char path[4096];
	int wait = 0;

	for (pp = &jl; (j = *pp) != NULL;) {
		if (j->refs > 0 || (j->seq >= jnewest[j->server] &&
		    (!idle || !commit_idle() || jw[j->server].seq != j->seq))) {
			wait |= j->refs == 0;
			pp = &j->next;
			continue;
		}
		if (j->seq >= jnewest[j->server] && jw[j->server].fd != -1) {
			close(jw[j->server].fd);
			jw[j->server].fd = -1;
		}
		journal_path(j->server, j->seq, path, sizeof(path));
		commit_unlink(path);
		*pp = j->next;
		free(j);
	}
	if (wait && !evtimer_pending(jidle, NULL))
		evtimer_add(jidle, &tv);
}

static void
journal_idle_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	journal_sweep(1);
}

static struct jl *
journal_find(size_t server, uint32_t seq)
{
	struct jl *j;

	for (j = jl; j != NULL; j = j->next)
		if (j->server == server && j->seq == seq)
			return j;
	j = mr_xcalloc(1, sizeof(*j));
	j->server = server;
	j->seq = seq;
	j->next = jl;
	jl = j;
	return j;
}

/* Loop: a batch wrote into seq (0: wrote nothing); m (or NULL when its
 * commit failed) now depends on it. */
void
journal_hold(struct qmsg *m, size_t server, uint32_t seq)
{
	struct jl *j;

	if (seq == 0)
		return;
	j = journal_find(server, seq);
	if (m != NULL) {
		j->refs++;
		m->jnl = seq;
	}
	if (seq > jnewest[server]) {
		jnewest[server] = seq;
		journal_sweep(0);
	}
}

/* Loop: m has its own durable ID.env or is finished. */
void
journal_release(struct qmsg *m)
{
	struct jl *j;
	size_t server = (size_t)(m->qs - q->servers);

	if (m->jnl == 0)
		return;
	for (j = jl; j != NULL; j = j->next)
		if (j->server == server && j->seq == m->jnl) {
			if (j->refs > 0 && --j->refs == 0)
				journal_sweep(0);
			break;
		}
	m->jnl = 0;
}

/*
 * At exit, after the commit worker and the trash thread have ended (so the
 * data files of finished messages are gone first): closes the journals
 * being written and removes those no queued message needs, so that a
 * queue stopped right after its last delivery holds no journal.
 */
void
journal_shutdown(void)
{
	struct jl *j, *next;
	char path[4096];
	size_t i;

	for (i = 0; jw != NULL && i < q->nservers; i++)
		if (jw[i].fd != -1) {
			close(jw[i].fd);
			jw[i].fd = -1;
		}
	for (j = jl; j != NULL; j = next) {
		next = j->next;
		if (j->refs == 0) {
			journal_path(j->server, j->seq, path, sizeof(path));
			if (unlink(path) == -1 && errno != ENOENT)
				mr_warn("unlink %s: %s", path,
				    strerror(errno));
		}
		free(j);
	}
	jl = NULL;
	if (jidle != NULL) {
		event_free(jidle);
		jidle = NULL;
	}
}

/* A queue id fit to be a file name: letters, digits, '-', '_' and '.'
 * (not first), at most MR_ID_MAX. */
static int
journal_id_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > MR_ID_MAX || s[0] == '.')
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

/* Writes path unflushed: the flush after every journal covers it. */
static int
write_env(const char *path, const char *rec, size_t len)
{
	int fd, saved;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	if (mr_write_all(fd, rec, len) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

/* Makes rec (one complete record) Queue/ID.env if ID.eml has none. */
static void
recover_record(struct qserver *qs, const char *rec, size_t len)
{
	char id[MR_ID_MAX + 1], path[4096], tmp[4096];
	const char *s = rec + sizeof(JNL_MAGIC) - 1, *nl;

	if (strncmp(s, "id ", 3) != 0 ||
	    (nl = memchr(s + 3, '\n', len - (size_t)(s - rec) - 3)) == NULL ||
	    !journal_id_ok(s + 3, (size_t)(nl - s - 3))) {
		mr_warn("%s: a journal record without a usable id; skipped",
		    qs->queue);
		return;
	}
	memcpy(id, s + 3, (size_t)(nl - s - 3));
	id[nl - s - 3] = '\0';
	snprintf(path, sizeof(path), "%s/%s.eml", qs->queue, id);
	if (access(path, F_OK) == -1)
		return;		/* finished, or never acknowledged */
	snprintf(path, sizeof(path), "%s/%s.env", qs->queue, id);
	if (access(path, F_OK) == 0)
		return;		/* its own envelope is newer */
	snprintf(tmp, sizeof(tmp), "%s/%s.env", qs->tmp, id);
	if (write_env(tmp, rec, len) == -1 || rename(tmp, path) == -1)
		mr_err("%s: %s", path, strerror(errno));
}

/* Every complete record of one journal; 0, or -1 if it cannot be read. */
static int
recover_journal(struct qserver *qs, const char *path)
{
	static const char end[] = "\nend\n";
	char *text, *p, *e;
	size_t len;

	if ((text = mr_read_file(path, JNL_READ_MAX, &len)) == NULL) {
		mr_err("%s: %s", path, strerror(errno));
		return -1;
	}
	for (p = text; (size_t)(p - text) < len; p = e) {
		if (strncmp(p, JNL_MAGIC, sizeof(JNL_MAGIC) - 1) != 0 ||
		    (e = strstr(p, end)) == NULL)
			break;	/* cut short: never acknowledged */
		e += sizeof(end) - 1;
		recover_record(qs, p, (size_t)(e - p));
	}
	free(text);
	return 0;
}

static int
is_journal(const char *name)
{
	size_t len = strlen(name);

	return len > 4 && name[0] != '.' && strcmp(name + len - 4, ".jnl") == 0;
}

/* Removes the journals in dir once what they hold is in ID.env files. */
static void
remove_journals(const char *dir)
{
	char path[4096 + 256];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!is_journal(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == -1)
			mr_warn("unlink %s: %s", path, strerror(errno));
	}
	closedir(d);
	if (mr_fsync_dir(dir) == -1)
		mr_err("%s: %s", dir, strerror(errno));
}

/*
 * Recovery, before the Queue is read (queue_sched.c): the journals' live
 * records become ID.env files; the journals are removed only after those
 * are durable.
 */
void
journal_recover(struct qserver *qs)
{
	char dir[4096], path[4096 + 256];
	struct dirent *de;
	DIR *d;
	int n = 0, failed = 0;

	snprintf(dir, sizeof(dir), "%s/journal", qs->queue);
	if ((d = opendir(dir)) == NULL)
		return;		/* none yet */
	while ((de = readdir(d)) != NULL) {
		if (!is_journal(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (recover_journal(qs, path) == -1)
			failed = 1;
		n++;
	}
	closedir(d);
	if (n == 0)
		return;
	if (failed || mr_syncfs_dir(qs->queue) == -1) {
		mr_err("%s: journals kept: %s", qs->queue,
		    failed ? "one could not be read" : strerror(errno));
		return;
	}
	remove_journals(dir);
}
