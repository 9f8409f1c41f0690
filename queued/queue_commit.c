/*
 * queue_commit.c - new messages: a file for smtpd to write into, then the
 * durable commit that must finish before smtpd may answer 250.
 *
 * Commit order (a crash at any point loses nothing acknowledged and
 * delivers nothing twice): fsync the data; write and fsync the envelope
 * in Queue/tmp; rename the data, then the envelope, into Queue; fsync
 * Queue.  Recovery treats Queue/ID.eml without Queue/ID.env as never
 * acknowledged and removes it, and empties Queue/tmp.
 *
 * Security: the commit request comes from smtpd, which faces the network:
 * its ids must match a file handed out on the same channel, and every
 * address is parsed again before it reaches the envelope.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
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
tmp_path(const struct pending *p, const char *ext, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.%s", p->qs->tmp, p->id, ext);
}

static void
pending_discard(struct pending *p)
{
	char path[4096];

	tmp_path(p, "eml", path, sizeof(path));
	if (unlink(path) == -1 && errno != ENOENT)
		mr_warn("unlink %s: %s", path, strerror(errno));
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
		mr_warn("smtpd: malformed NEW request");
		return;
	}
	if (q->stopping) {
		reply_str(c, MR_Q_NEW_FAIL, req, "queue is stopping", -1);
		return;
	}
	p = mr_xcalloc(1, sizeof(*p));
	p->qs = &q->servers[idx];
	mr_queue_id(p->id);
	tmp_path(p, "eml", path, sizeof(path));
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
	if (!mr_rd_done(&rd))
		goto bad;
	return m;
bad:
	msg_free(m);
	return NULL;
}

/* Makes a received message durable; 0 or -1 (errno-style text in err). */
static int
make_durable(struct pending *p, struct qmsg *m, char *err, size_t errlen)
{
	char from[4096], to[4096];

	if (fsync(p->fd) == -1) {
		snprintf(err, errlen, "fsync: %s", strerror(errno));
		return -1;
	}
	tmp_path(p, "eml", from, sizeof(from));
	msg_path(m, "eml", to, sizeof(to));
	if (rename(from, to) == -1) {
		snprintf(err, errlen, "rename into Queue: %s", strerror(errno));
		return -1;
	}
	if (env_write(m) == -1) {
		snprintf(err, errlen, "envelope: %s", strerror(errno));
		unlink(to);
		return -1;
	}
	return 0;
}

void
commit_commit(struct mr_ipc *c, const unsigned char *data, size_t len)
{
	struct pending *p;
	struct qmsg *m;
	const char *id;
	char err[512];
	uint64_t req;
	struct stat st;

	m = parse_commit(data, len, &req, &id);
	if (m == NULL || (p = pending_take(id)) == NULL) {
		mr_warn("smtpd: malformed or unknown COMMIT");
		if (m != NULL)
			reply_str(c, MR_Q_COMMIT_FAIL, req, "unknown id", -1);
		msg_free(m);
		return;
	}
	m->qs = p->qs;
	snprintf(m->id, sizeof(m->id), "%s", p->id);
	m->created = time(NULL);
	/* the size smtpd claims is only a hint; the file says how big */
	if (fstat(p->fd, &st) == 0)
		m->size = (uint64_t)st.st_size;
	if (make_durable(p, m, err, sizeof(err)) == -1) {
		mr_err("%s: commit failed: %s", p->id, err);
		reply_str(c, MR_Q_COMMIT_FAIL, req, err, -1);
		pending_discard(p);
		msg_free(m);
		return;
	}
	close(p->fd);
	free(p);
	reply_str(c, MR_Q_COMMIT_OK, req, m->id, -1);
	mr_info("%s: from=<%s> size=%llu nrcpt=%zu client=[%s]", m->id,
	    m->sender, (unsigned long long)m->size, m->nrcpts, m->client);
	sched_add(m);
}
