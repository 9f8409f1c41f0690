/*
 * pickup.c - each virtual server's Pickup folder (IIS-MODEL.md 5): a file
 * dropped there is queued under that server's name and removed.
 *
 * When a file is taken: at once when inotify says it was closed after
 * writing (IN_CLOSE_WRITE) or renamed in (IN_MOVED_TO); and by a scan at
 * start, every PICKUP_RESCAN seconds and after an inotify overflow, for
 * the events nobody saw.  A scan takes only a file untouched for
 * PICKUP_QUIET seconds, since it cannot tell a file still being written.
 * Names beginning with "." are never taken: a writer may build ".x" and
 * rename it to "x".
 *
 * Order, so that a crash loses and doubles nothing:
 *  1. claim: Pickup/NAME is renamed to Queue/ID.pkp (one atomic step;
 *     from here no scan sees it, and its writer, who cannot write in
 *     Queue, can no longer replace it);
 *  2. the claim is parsed (pickup_parse.c) and the message written to
 *     Queue/ID.eml, then committed by the same group commit as smtpd's
 *     (queue_commit.c): Queue/ID.env, one syncfs (which also makes the
 *     claim's rename durable), the files' own flushes;
 *  3. in that same batch, after the flush, the claim is unlinked and
 *     Queue is flushed again; only then is the message scheduled.
 * Recovery: a claim whose ID has a complete envelope was committed (a
 * crash came between 2 and 3): the queue's recovery removes the claim
 * when it reads that envelope, before the message can be tried
 * (queue_sched.c claim_committed), and the message is not queued again.
 * A claim left once the queue is read (recover_claims) was never
 * committed (the queue's recovery has removed its partial files): it is
 * parsed and committed again under the same ID.  A file still in Pickup
 * was never claimed.  So every file is queued once.
 *
 * What cannot be sent (unparsable, no recipient, too big, unreadable, not
 * a regular file, more than one hard link) goes to Badmail as ID.BAD with
 * the reason in ID.BDR, never silently dropped.  The server's header
 * checks apply as to SMTP (hdr_filter.c): REJECT sends the file to
 * Badmail with the rule's text, DISCARD removes it with a log line, HOLD
 * queues it held; a table that cannot be read leaves the claim, as an
 * aliases table does.
 *
 * Security: whoever may write Pickup may send as anyone (README).  The
 * folder is the queue user's; nothing in it is followed or read unless
 * it is a regular file with one link: a claim is checked with lstat
 * semantics (fstatat AT_SYMLINK_NOFOLLOW) and opened O_NOFOLLOW |
 * O_NONBLOCK, and a symbolic link, FIFO, socket, device or directory is
 * moved to Badmail unread.  The content is parsed by pickup_parse.c.
 */
#include "config.h"

#include <sys/inotify.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "hdr_check.h"
#include "log.h"
#include "pickup_parse.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

#define PICKUP_QUIET	30	/* seconds a scanned file must be untouched */
#define PICKUP_RESCAN	15	/* seconds between scans */
#define PICKUP_BATCH	32	/* files taken per pass of the loop */
#define PICKUP_INFLIGHT	256	/* files being committed at once */

/* A name to take. */
struct item {
	struct item	*next;
	size_t		 srv;
	char		 name[];
};

static struct {
	int		 ifd;		/* inotify */
	int		*wd;		/* per server */
	int		*dirfd;		/* per server: Pickup */
	struct event	*ev_inotify, *ev_scan, *ev_work;
	struct item	*head, **tail;
	size_t		 nitems;
	size_t		 inflight;
	int		 rescan;	/* a scan is due once the list drains */
} pk;

static void	work_kick(void);

static void
enqueue(size_t srv, const char *name)
{
	size_t n = strlen(name) + 1;
	struct item *it;

	if (name[0] == '.' || n > NAME_MAX + 1)
		return;
	it = mr_xmalloc(sizeof(*it) + n);
	it->next = NULL;
	it->srv = srv;
	memcpy(it->name, name, n);
	*pk.tail = it;
	pk.tail = &it->next;
	pk.nitems++;
}

/* ---- Badmail ---- */

static void
write_reason(const struct qserver *qs, const char *id, const char *name,
    const char *reason)
{
	char path[4096];
	struct mr_buf b;

	mr_buf_init(&b);
	mr_buf_printf(&b, "Unable to deliver this message because the pickup "
	    "file%s%s could not be sent: %s.\r\n", name ? " " : "",
	    name ? name : "", reason);
	snprintf(path, sizeof(path), "%s/%s.BDR", qs->badmail, id);
	if (mr_write_file_atomic(path, b.data, b.len, 0640) == -1)
		mr_err("%s: %s", path, strerror(errno));
	mr_buf_free(&b);
}

/* Moves the claim to Badmail/ID.BAD with the reason in ID.BDR. */
static void
to_badmail(struct qserver *qs, const char *id, const char *name,
    const char *reason)
{
	char claim[4096], path[4096];

	snprintf(claim, sizeof(claim), "%s/%s.pkp", qs->queue, id);
	if (!qs->srv->badmail) {
		mr_warn("%s: pickup file%s%s removed (badmail off): %s", id,
		    name ? " " : "", name ? name : "", reason);
		if (unlink(claim) == -1)
			mr_err("unlink %s: %s", claim, strerror(errno));
		mr_fsync_dir(qs->queue);
		return;
	}
	write_reason(qs, id, name, reason);
	snprintf(path, sizeof(path), "%s/%s.BAD", qs->badmail, id);
	if (rename(claim, path) == -1) {
		mr_err("rename %s: %s", claim, strerror(errno));
		return;
	}
	if (mr_fsync_dir(qs->badmail) == -1 || mr_fsync_dir(qs->queue) == -1)
		mr_err("%s: flushing Badmail: %s", id, strerror(errno));
	metrics_add(qs, MC_BADMAIL, 1);
	mr_warn("%s: pickup file%s%s moved to Badmail: %s", id,
	    name ? " " : "", name ? name : "", reason);
}

/* Removes the claim of a file a header check discarded. */
static void
discard(struct qserver *qs, const struct qmsg *m, const char *name)
{
	char claim[4096];

	snprintf(claim, sizeof(claim), "%s/%s.pkp", qs->queue, m->id);
	if (unlink(claim) == -1)
		mr_err("unlink %s: %s", claim, strerror(errno));
	else if (mr_fsync_dir(qs->queue) == -1)
		mr_err("%s: %s", qs->queue, strerror(errno));
	mr_info("%s: pickup file%s%s discarded by a header check: "
	    "from=<%s> nrcpt=%zu", m->id, name ? " " : "", name ? name : "",
	    m->sender, (size_t)m->nrcpts);
}

/* The server's header checks on a parsed file: 0 to queue m (held if a
 * rule says so), 1 once the file went to Badmail or was discarded, -1
 * if the table cannot be read (the claim stays); m is freed unless 0. */
static int
checked(struct qserver *qs, struct qmsg *m, const char *name,
    const struct pickup_msg *pm)
{
	char text[MR_HC_TEXT_MAX + 64], why[MR_HC_TEXT_MAX + 128];
	int a = hdr_filter(m, pm->data.data, pm->data.len, text,
	    sizeof(text));

	if (a == MR_HC_NONE || a == MR_HC_HOLD) {
		m->hold = a == MR_HC_HOLD;
		return 0;
	}
	if (a == MR_HC_REJECT) {
		snprintf(why, sizeof(why), "refused by a header check: %s",
		    text);
		to_badmail(qs, m->id, name, why);
	} else if (a == MR_HC_DISCARD)
		discard(qs, m, name);
	msg_free(m);
	return a == MR_HC_TEMPFAIL ? -1 : 1;
}

/* ---- taking one file ---- */

/* The claim's bytes, if it is a regular file with one link; else NULL
 * with *why set (nothing was read). */
static char *
read_claim(struct qserver *qs, const char *claim, size_t *len,
    const char **why)
{
	uint64_t max = qs->srv->limits.message_size;
	struct stat st;
	char *data;
	int fd;

	*why = NULL;
	if (fstatat(AT_FDCWD, claim, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return NULL;
	if (S_ISLNK(st.st_mode))
		*why = "a symbolic link; not followed";
	else if (!S_ISREG(st.st_mode))
		*why = "not a regular file (a FIFO, socket, device or "
		    "directory); not read";
	else if (st.st_nlink != 1)
		*why = "it has other hard links; not read";
	else if ((uint64_t)st.st_size > max + max / 4 + 65536)
		*why = "larger than the message size limit";
	if (*why != NULL)
		return NULL;
	fd = open(claim, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC);
	if (fd == -1) {
		*why = errno == EACCES ? "queued may not read it (see "
		    "the README on Pickup's permissions)" : "it cannot be "
		    "opened";
		return NULL;
	}
	data = mr_read_fd(fd, (size_t)(max + max / 4 + 65536), len);
	if (data == NULL)
		*why = errno == EFBIG ? "larger than the message size limit" :
		    "it cannot be read";
	close(fd);
	return data;
}

/* The queue's form of a parsed file. */
static struct qmsg *
make_msg(struct qserver *qs, const char *id, struct pickup_msg *pm)
{
	struct qmsg *m;
	size_t i;

	m = msg_new(qs, id);
	m->sender = qstr_get(pm->sender);
	m->client = qstr_get("");
	m->helo = qstr_get("");
	m->rcpts = mr_xcalloc(pm->nrcpts, sizeof(struct qrcpt));
	for (i = 0; i < pm->nrcpts; i++)
		m->rcpts[i].addr = mr_xstrdup(pm->rcpts[i]);
	m->nrcpts = (uint32_t)pm->nrcpts;
	m->size = pm->data.len;
	m->body = pm->eightbit ? MR_BODY_8BITMIME : MR_BODY_7BIT;
	m->created = q_now();
	return m;
}

/* Writes the message to Queue/ID.eml and hands it to the group commit
 * (or to Badmail, or discards it, as the header checks say); -1 (nothing
 * left behind but the claim) on a write or table error. */
static int
queue_msg(struct qserver *qs, const char *id, const char *name,
    struct pickup_msg *pm)
{
	char path[4096], claim[4096], err[512];
	struct qmsg *m;
	int fd, rc;

	/* aliases as for a message from smtpd (a table that cannot be read
	 * leaves the claim, as a write error does) */
	m = make_msg(qs, id, pm);
	if (alias_expand(m, err, sizeof(err)) == -1) {
		mr_err("%s: aliases: %s", id, err);
		msg_free(m);
		return -1;
	}
	if ((rc = checked(qs, m, name, pm)) != 0)
		return rc == 1 ? 0 : -1;
	snprintf(path, sizeof(path), "%s/%s.eml", qs->queue, id);
	snprintf(claim, sizeof(claim), "%s/%s.pkp", qs->queue, id);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0640);
	if (fd == -1 || mr_write_all(fd, pm->data.data, pm->data.len) == -1) {
		mr_err("%s: %s: %s", id, path, strerror(errno));
		if (fd != -1)
			close(fd);
		unlink(path);
		msg_free(m);
		return -1;
	}
	pk.inflight++;
	commit_local(m, fd, claim);
	return 0;
}

/* Parses Queue/ID.pkp and queues it, or moves it to Badmail.  name is
 * the file's name in Pickup, for the logs (NULL in recovery). */
static void
take_claim(struct qserver *qs, const char *id, const char *name)
{
	struct pickup_opts o;
	struct pickup_msg pm;
	char claim[4096];
	const char *why;
	char *data;
	size_t len;

	snprintf(claim, sizeof(claim), "%s/%s.pkp", qs->queue, id);
	if ((data = read_claim(qs, claim, &len, &why)) == NULL) {
		if (why != NULL)
			to_badmail(qs, id, name, why);
		else
			mr_err("%s: %s: %s", id, claim, strerror(errno));
		return;
	}
	memset(&o, 0, sizeof(o));
	o.max_size = qs->srv->limits.message_size;
	o.add_headers = qs->srv->add_missing_headers != MR_ADDHDR_NONE;
	o.qid = id;
	o.fqdn = qs->srv->fqdn;
	o.now = time(NULL);
	if (pickup_parse(data, len, &o, &pm) == -1)
		to_badmail(qs, id, name, pm.err);
	else {
		if (pm.cut)
			mr_warn("%s: pickup file%s%s: what follows a line "
			    "holding only \".\" was ignored", id,
			    name ? " " : "", name ? name : "");
		mr_info("%s: pickup file%s%s taken", id, name ? " " : "",
		    name ? name : "");
		if (queue_msg(qs, id, name, &pm) == -1)
			mr_err("%s: the claim stays in Queue until queued "
			    "restarts", id);
	}
	pickup_msg_free(&pm);
	free(data);
}

/* Claims Pickup/NAME for server srv and takes it. */
static void
take(size_t srv, const char *name)
{
	struct qserver *qs = &q->servers[srv];
	char id[MR_QID_LEN + 1], claim[4096];

	mr_queue_id(id);
	snprintf(claim, sizeof(claim), "%s/%s.pkp", qs->queue, id);
	if (renameat(pk.dirfd[srv], name, AT_FDCWD, claim) == -1) {
		if (errno != ENOENT)	/* ENOENT: taken already */
			mr_err("%s: cannot claim pickup file %s: %s",
			    qs->srv->name, name, strerror(errno));
		return;
	}
	take_claim(qs, id, name);
}

/* ---- the list of names, the watch and the scans ---- */

static void
work_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct item *it;
	int n;

	(void)fd;
	(void)ev;
	(void)arg;
	for (n = 0; n < PICKUP_BATCH && pk.inflight < PICKUP_INFLIGHT &&
	    !q->stopping && (it = pk.head) != NULL; n++) {
		if ((pk.head = it->next) == NULL)
			pk.tail = &pk.head;
		pk.nitems--;
		take(it->srv, it->name);
		free(it);
	}
	/* the loop serves SMTP between batches */
	work_kick();
}

static void
work_kick(void)
{
	struct timeval zero = { 0, 0 };

	if (pk.head != NULL && pk.inflight < PICKUP_INFLIGHT &&
	    !q->stopping && !evtimer_pending(pk.ev_work, NULL))
		evtimer_add(pk.ev_work, &zero);
}

static void
scan_dir(size_t srv)
{
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	/* through the descriptor opened O_NOFOLLOW at start */
	fd = openat(pk.dirfd[srv], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		mr_err("%s: %s", q->servers[srv].pickup, strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || fstatat(pk.dirfd[srv], de->d_name,
		    &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		/* maybe still being written: its close will say */
		if (S_ISREG(st.st_mode) && st.st_mtime > now - PICKUP_QUIET &&
		    st.st_mtime <= now + 1)
			continue;
		enqueue(srv, de->d_name);
	}
	closedir(d);
}

static void
scan_all(void)
{
	size_t i;

	pk.rescan = 0;
	for (i = 0; i < q->nservers; i++)
		if (pk.dirfd[i] != -1)
			scan_dir(i);
	work_kick();
}

static void
scan_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval tv = { PICKUP_RESCAN, 0 };

	(void)fd;
	(void)ev;
	(void)arg;
	/* names still listed would be listed twice */
	if (pk.head == NULL && pk.inflight == 0)
		scan_all();
	else
		pk.rescan = 1;
	evtimer_add(pk.ev_scan, &tv);
}

static void
inotify_event(const struct inotify_event *e)
{
	size_t i;

	if (e->mask & IN_Q_OVERFLOW) {
		mr_warn("Pickup: too many events at once; scanning");
		pk.rescan = 1;
		return;
	}
	for (i = 0; i < q->nservers; i++)
		if (pk.wd[i] == e->wd)
			break;
	if (i == q->nservers)
		return;
	if (e->mask & IN_IGNORED) {
		mr_err("%s: the Pickup folder went away; it is no longer "
		    "watched", q->servers[i].srv->name);
		pk.wd[i] = -1;
		return;
	}
	if ((e->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) && e->len > 0 &&
	    memchr(e->name, '\0', e->len) != NULL)
		enqueue(i, e->name);
}

static void
inotify_cb(evutil_socket_t fd, short ev, void *arg)
{
	char buf[65536]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *e;
	ssize_t n;
	size_t off;

	(void)ev;
	(void)arg;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (off = 0; off + sizeof(*e) <= (size_t)n;
		    off += sizeof(*e) + e->len) {
			e = (const struct inotify_event *)(buf + off);
			if (off + sizeof(*e) + e->len > (size_t)n)
				break;
			inotify_event(e);
		}
	if (n == -1 && errno != EAGAIN && errno != EINTR)
		mr_err("Pickup: inotify: %s", strerror(errno));
	if (pk.rescan && pk.head == NULL && pk.inflight == 0)
		scan_all();
	work_kick();
}

/* ---- the commit's answer, recovery, start ---- */

/* The group commit is done with a message pickup handed it; a failed
 * one's claim stays in Queue and is taken again at the next start. */
void
pickup_done(const struct qmsg *m, int failed)
{
	if (pk.inflight > 0)
		pk.inflight--;
	if (failed)
		mr_err("%s: pickup file not queued; its claim %s/%s.pkp is "
		    "taken again when queued restarts", m->id, m->qs->queue,
		    m->id);
	else
		mr_info("%s: from=<%s> size=%llu nrcpt=%zu origin=pickup",
		    m->id, m->sender, (unsigned long long)m->size,
		    (size_t)m->nrcpts);
	if (pk.rescan && pk.head == NULL && pk.inflight == 0)
		scan_all();
	work_kick();
}

/* After the queue's recovery: the claims a crash left in Queue. */
static void
recover_claims(struct qserver *qs)
{
	char id[MR_QID_LEN + 1], path[4096];
	struct dirent *de;
	size_t len;
	DIR *d;

	if ((d = opendir(qs->queue)) == NULL) {
		mr_err("opendir %s: %s", qs->queue, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len != MR_QID_LEN + 4 ||
		    strcmp(de->d_name + len - 4, ".pkp") != 0)
			continue;
		memcpy(id, de->d_name, len - 4);
		id[len - 4] = '\0';
		if (index_find(id) == NULL) {
			mr_info("%s: pickup file claimed before a restart; "
			    "taking it again", id);
			take_claim(qs, id, NULL);
			continue;
		}
		/* committed; the crash came before the claim was removed */
		snprintf(path, sizeof(path), "%s/%s", qs->queue, de->d_name);
		if (unlink(path) == -1)
			mr_err("unlink %s: %s", path, strerror(errno));
		else
			mr_info("%s: pickup file was queued before a restart; "
			    "its claim is removed", id);
	}
	closedir(d);
	if (mr_fsync_dir(qs->queue) == -1)
		mr_err("%s: %s", qs->queue, strerror(errno));
}

static void
watch(size_t i)
{
	const char *path = q->servers[i].pickup;

	pk.wd[i] = -1;
	pk.dirfd[i] = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (pk.dirfd[i] == -1) {
		mr_err("%s: %s; Pickup is not served", path, strerror(errno));
		return;
	}
	if (pk.ifd != -1 && (pk.wd[i] = inotify_add_watch(pk.ifd, path,
	    IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW)) == -1)
		mr_err("%s: inotify: %s; scanned every %d seconds only", path,
		    strerror(errno), PICKUP_RESCAN);
}

/* Called once the queue is recovered and the commit threads run. */
void
pickup_init(void)
{
	size_t i;

	pk.tail = &pk.head;
	pk.wd = mr_xcalloc(q->nservers, sizeof(int));
	pk.dirfd = mr_xcalloc(q->nservers, sizeof(int));
	if ((pk.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		mr_err("Pickup: inotify: %s; folders are scanned every %d "
		    "seconds only", strerror(errno), PICKUP_RESCAN);
	for (i = 0; i < q->nservers; i++) {
		watch(i);
		recover_claims(&q->servers[i]);
	}
	if (pk.ifd != -1) {
		pk.ev_inotify = event_new(q->base, pk.ifd, EV_READ |
		    EV_PERSIST, inotify_cb, NULL);
		event_add(pk.ev_inotify, NULL);
	}
	pk.ev_work = evtimer_new(q->base, work_cb, NULL);
	pk.ev_scan = evtimer_new(q->base, scan_cb, NULL);
	/* from here every file closed or renamed in is seen */
	mr_info("Pickup: watching %zu folder%s", q->nservers,
	    q->nservers == 1 ? "" : "s");
	scan_cb(-1, 0, NULL);
}
