/*
 * queue_env.c - the envelope file beside each queued message.
 *
 * Queue/ID.env holds sender, recipients with their state, attempts and the
 * next try, one field per line ("body 7BIT" or "body 8BITMIME" only where
 * the client gave MAIL BODY=, "auth NAME" only where it authenticated,
 * "hold 1" for a message a header check holds, "smtputf8 1" for a
 * transaction with MAIL SMTPUTF8 (RFC 6531; absent = 0), "control-hold yes" only
 * while mailrootctl holds it, "delay-notified 1" once the sender was told
 * of a delay, delay.c).  DSN (RFC 3461), only
 * what the client gave: "ret FULL|HDRS" and "envid X" before the sender;
 * after a recipient's rcpt line its "notify N" (MR_NOTIFY_* bits), "orcpt
 * X" and "relayed" (a next hop without DSN took it).  Files of the
 * previous versions, without these lines, read as messages without them.
 * Every value is xtext-encoded (RFC 3461 section 4: bytes outside
 * "!".."~", "+" and "=" become "+XX"), so no value can start a new line or
 * field; the file stores data, never a command.
 * The last line is "end": a file without it was cut short.  A new
 * message's first envelope is a record in the Queue's journal
 * (queue_journal.c; a held message's is written in place at commit,
 * queue_commit.c); ID.env is written when its state changes: to
 * Queue/tmp, flushed and renamed over the old file.  A deferral's
 * rewrite, which a crash may lose at no cost (the message is tried again
 * sooner), goes the same way in a batch of the rewrite worker
 * (commit_env_later), one flush for many; env_write waits for such a
 * rewrite in flight, so that the newer state lands last.
 * Every ID.env queued writes has the message's next try as its mtime
 * (env_stamp): recovery finds the messages due at start by a stat of
 * each envelope, without reading them (queue_sched.c).  A hint only: the
 * "next-try" line decides; a wrong mtime (a file written by an older
 * queued, by hand, or a journal record made an ID.env) changes the order
 * envelopes are read in at start, nothing else.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "dsn_param.h"
#include "log.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

#define ENV_MAGIC	"mailroot-envelope 1"
#define ENV_MAX		(4 << 20)

void
msg_path(const struct qmsg *m, const char *ext, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.%s", m->qs->queue, m->id, ext);
}

/* A zeroed message of qs with its id, allocated at the id's length: a
 * million of them can wait in memory. */
struct qmsg *
msg_new(struct qserver *qs, const char *id)
{
	size_t len = strlen(id);
	struct qmsg *m;

	m = mr_xcalloc(1, offsetof(struct qmsg, id) + len + 1);
	m->qs = qs;
	memcpy(m->id, id, len + 1);
	return m;
}

/* Frees n recipients and their array. */
void
rcpts_free(struct qrcpt *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!v[i].addr_in)
			free(v[i].addr);
		qstr_put(v[i].text);
		free(v[i].orcpt);
	}
	free(v);
}

/*
 * Moves the recipients' addresses into the allocation of their array:
 * one allocation instead of one more per recipient, for the messages read
 * from their envelopes (a million at start, most with one recipient).
 * The addresses of a parsed envelope are not replaced afterwards (only a
 * new message's, by its aliases).
 */
static void
rcpts_pack(struct qmsg *m)
{
	size_t i, len, sz = m->nrcpts * sizeof(struct qrcpt);
	struct qrcpt *v;
	char *p;

	for (i = 0; i < m->nrcpts; i++)
		sz += strlen(m->rcpts[i].addr) + 1;
	v = mr_xmalloc(sz);
	memcpy(v, m->rcpts, m->nrcpts * sizeof(struct qrcpt));
	p = (char *)(v + m->nrcpts);
	for (i = 0; i < m->nrcpts; i++) {
		len = strlen(v[i].addr) + 1;
		memcpy(p, v[i].addr, len);
		if (!v[i].addr_in)
			free(v[i].addr);
		v[i].addr = p;
		v[i].addr_in = 1;
		p += len;
	}
	free(m->rcpts);
	m->rcpts = v;
}

void
msg_free(struct qmsg *m)
{
	if (m == NULL)
		return;
	sched_forget(m);
	if (m->envw != 0)
		commit_env_forget(m);
	rcpts_free(m->rcpts, m->nrcpts);
	free(m->envid);
	qstr_put(m->sender);
	qstr_put(m->client);
	qstr_put(m->helo);
	free(m->auth);
	if (m->act != NULL) {	/* index_del has ended its job */
		free(m->act->job_idx);
		free(m->act);
	}
	free(m);
}

static void
put_xtext(struct mr_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < '!' || *p > '~' || *p == '+' || *p == '=') {
			char e[3] = { '+', hex[*p >> 4], hex[*p & 15] };

			mr_buf_add(b, e, 3);
		} else
			mr_buf_add(b, p, 1);
	}
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes xtext; NULL on a bad escape or an encoded NUL.  The result is
 * allocated at the size of the text (never shorter than what it decodes
 * to): a million queued messages keep these strings in memory. */
static char *
get_xtext(const char *s)
{
	char *out = mr_xmalloc(strlen(s) + 1), *o = out;
	int hi, lo;

	for (; *s != '\0'; s++) {
		if (*s != '+') {
			/* xtext is printable ASCII; anything else is damage */
			if (*s < '!' || *s > '~')
				goto fail;
			*o++ = *s;
			continue;
		}
		/* values are single-line text: no control bytes at all
		 * (addresses go back on the wire in RCPT TO) */
		if ((hi = hexval(s[1])) < 0 || (lo = hexval(s[2])) < 0 ||
		    (hi << 4 | lo) < 0x20 || (hi << 4 | lo) == 0x7f)
			goto fail;
		*o++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*o = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

/* Decodes xtext into a shared string (qstr.c); NULL as get_xtext. */
static const char *
get_xtext_shared(const char *s)
{
	char *t = get_xtext(s);
	const char *r = qstr_get(t);

	free(t);
	return r;
}

static int	parse_num(const char *, long long *);

static const char state_char[] = { 'P', 'S', 'F' };
static const char *const body_name[] = { "", "7BIT", "8BITMIME" };
static const char *const ret_name[] = { "", "FULL", "HDRS" };

/* A recipient's DSN lines, after its rcpt line (only what was given). */
static void
rcpt_dsn_format(const struct qrcpt *r, struct mr_buf *b)
{
	if (r->notify != 0)
		mr_buf_printf(b, "notify %u\n", r->notify);
	if (r->orcpt != NULL) {
		mr_buf_adds(b, "orcpt ");
		put_xtext(b, r->orcpt);
		mr_buf_adds(b, "\n");
	}
	if (r->relayed)
		mr_buf_adds(b, "relayed\n");
}

/* "ret", "envid", and the DSN lines of the last recipient: 0 taken, -1
 * malformed, 1 not a DSN line. */
static int
env_dsn_line(struct qmsg *m, const char *key, const char *val)
{
	struct qrcpt *r = m->nrcpts > 0 ? &m->rcpts[m->nrcpts - 1] : NULL;
	long long v;

	if (strcmp(key, "ret") == 0) {
		m->ret = strcmp(val, "FULL") == 0 ? MR_RET_FULL :
		    strcmp(val, "HDRS") == 0 ? MR_RET_HDRS : MR_RET_NONE;
		return m->ret == MR_RET_NONE ? -1 : 0;
	}
	if (strcmp(key, "envid") == 0 && m->envid == NULL) {
		m->envid = get_xtext(val);
		return m->envid != NULL && mr_dsn_envid_valid(m->envid,
		    strlen(m->envid)) ? 0 : -1;
	}
	if (r == NULL)
		return 1;
	if (strcmp(key, "notify") == 0 && r->notify == 0) {
		if (parse_num(val, &v) == -1 || v <= 0 || v >= 16 ||
		    !mr_dsn_notify_valid((unsigned)v))
			return -1;
		r->notify = (uint8_t)v;
		return 0;
	}
	if (strcmp(key, "orcpt") == 0 && r->orcpt == NULL) {
		r->orcpt = get_xtext(val);
		return r->orcpt != NULL && mr_dsn_orcpt_valid(r->orcpt,
		    strlen(r->orcpt)) ? 0 : -1;
	}
	return 1;
}

void
env_format(const struct qmsg *m, struct mr_buf *b)
{
	size_t i;

	mr_buf_printf(b, ENV_MAGIC "\nid %s\ncreated %lld\nnext-try %lld\n"
	    "attempts %u\nsize %llu\n", m->id, (long long)m->created,
	    (long long)m->next_try, m->attempts, (unsigned long long)m->size);
	if (m->ctl_hold)
		mr_buf_adds(b, "control-hold yes\n");
	mr_buf_adds(b, "client ");
	put_xtext(b, m->client);
	mr_buf_adds(b, "\nhelo ");
	put_xtext(b, m->helo);
	if (m->body > MR_BODY_NONE && m->body <= MR_BODY_8BITMIME)
		mr_buf_printf(b, "\nbody %s", body_name[m->body]);
	if (m->hold)
		mr_buf_adds(b, "\nhold 1");
	if (m->smtputf8)
		mr_buf_adds(b, "\nsmtputf8 1");
	if (m->auth != NULL) {
		mr_buf_adds(b, "\nauth ");
		put_xtext(b, m->auth);
	}
	if (m->ret == MR_RET_FULL || m->ret == MR_RET_HDRS)
		mr_buf_printf(b, "\nret %s", ret_name[m->ret]);
	if (m->envid != NULL) {
		mr_buf_adds(b, "\nenvid ");
		put_xtext(b, m->envid);
	}
	if (m->delay_notified)
		mr_buf_adds(b, "\ndelay-notified 1");
	mr_buf_adds(b, "\nsender ");
	put_xtext(b, m->sender);
	mr_buf_adds(b, "\n");
	for (i = 0; i < m->nrcpts; i++) {
		mr_buf_printf(b, "rcpt %c ", state_char[m->rcpts[i].state]);
		put_xtext(b, m->rcpts[i].addr);
		if (m->rcpts[i].text != NULL) {
			mr_buf_adds(b, " ");
			put_xtext(b, m->rcpts[i].text);
		}
		mr_buf_adds(b, "\n");
		rcpt_dsn_format(&m->rcpts[i], b);
	}
	mr_buf_adds(b, "end\n");
}

/* The envelope open at fd gets next_try as its mtime (the access time is
 * left alone); thread-safe: the commit worker calls it too. */
int
env_stamp(int fd, time_t next_try)
{
	struct timespec ts[2];

	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = next_try;
	ts[1].tv_nsec = 0;
	return futimens(fd, ts);
}

int
env_create(const char *path, const struct qmsg *m)
{
	struct mr_buf b;
	int fd, saved;

	mr_buf_init(&b);
	env_format(m, &b);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd != -1 && mr_write_all(fd, b.data, b.len) == -1) {
		saved = errno;
		close(fd);
		unlink(path);
		errno = saved;
		fd = -1;
	}
	/* after the write, which sets the mtime; a hint (recovery's order):
	 * the envelope stands without it */
	if (fd != -1 && env_stamp(fd, m->next_try) == -1)
		mr_warn("%s: mtime: %s", path, strerror(errno));
	mr_buf_free(&b);
	return fd;
}

int
env_write_file(const char *path, const struct qmsg *m, int sync)
{
	int fd, rc, saved;

	if ((fd = env_create(path, m)) == -1)
		return -1;
	rc = sync ? fsync(fd) : 0;
	saved = errno;
	if (close(fd) == -1 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	if (rc == -1) {
		unlink(path);
		errno = saved;
	}
	return rc;
}

int
env_write(struct qmsg *m)
{
	char tmp[4096], path[4096];
	int saved;

	/* this state is newer than a batched rewrite (queue_commit.c) */
	if (m->envw != 0)
		commit_env_wait(m);
	snprintf(tmp, sizeof(tmp), "%s/%s.env", m->qs->tmp, m->id);
	msg_path(m, "env", path, sizeof(path));
	if (env_write_file(tmp, m, 1) == -1)
		return -1;
	if (rename(tmp, path) == -1) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (mr_fsync_dir(m->qs->queue) == -1)
		return -1;
	journal_release(m);	/* its own envelope is durable */
	return 0;
}

static int
parse_num(const char *s, long long *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	return (errno || end == s || *end != '\0' || *v < 0) ? -1 : 0;
}

/* One "key value" line into m; -1 if it does not belong. */
static int
env_line(struct qmsg *m, char *line)
{
	char *val = strchr(line, ' ');
	long long v;
	int rc;

	if (val == NULL) {
		if (strcmp(line, "relayed") == 0 && m->nrcpts > 0) {
			m->rcpts[m->nrcpts - 1].relayed = 1;
			return 0;
		}
		return strcmp(line, "end") == 0 ? 1 : -1;
	}
	*val++ = '\0';
	if (strcmp(line, "id") == 0)
		return strcmp(val, m->id) == 0 ? 0 : -1;
	if (strcmp(line, "created") == 0 || strcmp(line, "next-try") == 0 ||
	    strcmp(line, "attempts") == 0 || strcmp(line, "size") == 0) {
		if (parse_num(val, &v) == -1)
			return -1;
		if (line[0] == 'c')
			m->created = (time_t)v;
		else if (line[0] == 'n')
			m->next_try = (time_t)v;
		else if (line[0] == 'a')
			m->attempts = v > 1000000 ? 1000000 : (unsigned)v;
		else
			m->size = (uint64_t)v;
		return 0;
	}
	if (strcmp(line, "control-hold") == 0)
		return strcmp(val, "yes") == 0 ? (m->ctl_hold = 1, 0) : -1;
	if (strcmp(line, "client") == 0 && m->client == NULL)
		return (m->client = get_xtext_shared(val)) ? 0 : -1;
	if (strcmp(line, "helo") == 0 && m->helo == NULL)
		return (m->helo = get_xtext_shared(val)) ? 0 : -1;
	if (strcmp(line, "auth") == 0 && m->auth == NULL)
		return (m->auth = get_xtext(val)) ? 0 : -1;
	if (strcmp(line, "body") == 0) {
		if (strcmp(val, body_name[MR_BODY_7BIT]) == 0)
			m->body = MR_BODY_7BIT;
		else if (strcmp(val, body_name[MR_BODY_8BITMIME]) == 0)
			m->body = MR_BODY_8BITMIME;
		else
			return -1;
		return 0;
	}
	if (strcmp(line, "smtputf8") == 0 && strcmp(val, "1") == 0) {
		m->smtputf8 = 1;	/* RFC 6531; absent in old files: 0 */
		return 0;
	}
	if (strcmp(line, "hold") == 0 && strcmp(val, "1") == 0) {
		m->hold = 1;	/* header checks (hdr_filter.c) */
		return 0;
	}
	if ((rc = env_dsn_line(m, line, val)) != 1)
		return rc;
	if (strcmp(line, "delay-notified") == 0) {
		if (strcmp(val, "1") != 0)
			return -1;
		m->delay_notified = 1;
		return 0;
	}
	if (strcmp(line, "sender") == 0 && m->sender == NULL)
		return (m->sender = get_xtext_shared(val)) ? 0 : -1;
	if (strcmp(line, "rcpt") == 0) {
		struct qrcpt *r;
		char *text;
		const char *st = strchr("PSF", val[0]);

		if (st == NULL || val[0] == '\0' || val[1] != ' ' ||
		    m->nrcpts >= 100000)
			return -1;
		m->rcpts = mr_xreallocarray(m->rcpts, m->nrcpts + 1,
		    sizeof(*m->rcpts));
		r = &m->rcpts[m->nrcpts++];
		memset(r, 0, sizeof(*r));
		r->state = (uint8_t)(st - "PSF");
		if ((text = strchr(val + 2, ' ')) != NULL) {
			*text++ = '\0';
			if ((r->text = get_xtext_shared(text)) == NULL)
				return -1;
		}
		return (r->addr = get_xtext(val + 2)) ? 0 : -1;
	}
	return -1;
}

/*
 * Parses envelope text (len bytes) for message id into m, which the
 * caller allocated with id and qs set.  0, or -1 when malformed.
 */
int
env_parse(struct qmsg *m, char *text, size_t len)
{
	char *line, *nl;
	int rc = -1;

	if (strlen(text) != len || strncmp(text, ENV_MAGIC "\n",
	    sizeof(ENV_MAGIC)) != 0)
		return -1;
	for (line = text + sizeof(ENV_MAGIC); *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			return -1;
		*nl = '\0';
		if ((rc = env_line(m, line)) != 0)
			break;
	}
	if (rc != 1 || m->sender == NULL || m->nrcpts == 0)
		return -1;
	if (m->client == NULL)
		m->client = qstr_get("");
	if (m->helo == NULL)
		m->helo = qstr_get("");
	rcpts_pack(m);
	return 0;
}

/*
 * Reads Queue/ID.env.  NULL when it cannot be read or is malformed; then
 * *torn says whether it was merely cut short (empty, or without its last
 * line "end"): an envelope written for a commit that a crash interrupted
 * before the flush, so the message was never acknowledged.
 */
struct qmsg *
env_read(struct qserver *qs, const char *id, int *torn)
{
	static const char end[] = "\nend\n";
	struct qmsg *m;
	char path[4096], *text;
	size_t len;

	*torn = 0;
	m = msg_new(qs, id);
	msg_path(m, "env", path, sizeof(path));
	if ((text = mr_read_file(path, ENV_MAX, &len)) == NULL) {
		mr_err("%s: %s", path, strerror(errno));
		msg_free(m);
		return NULL;
	}
	if (len < sizeof(end) - 1 ||
	    memcmp(text + len - (sizeof(end) - 1), end, sizeof(end) - 1) != 0) {
		*torn = 1;
		free(text);
		msg_free(m);
		return NULL;
	}
	if (env_parse(m, text, len) == -1) {
		mr_err("%s: malformed envelope", path);
		free(text);
		msg_free(m);
		return NULL;
	}
	free(text);
	return m;
}
