/*
 * auth_verify.c - checks the user names and passwords smtpd receives in
 * AUTH against a server's `auth { users TABLE }' (crypt(3) hashes from
 * libxcrypt: yescrypt, bcrypt, SHA-512-crypt), or hands them to Dovecot
 * for `auth { dovecot PATH }' (auth_dovecot.c, on the same worker
 * thread), and answers smtpd.
 *
 * Why here: smtpd is chrooted into an empty directory and never sees the
 * credential store; queued can read the tables (Landlock lets it read
 * their directories).  Why on a thread: a hash costs milliseconds of CPU
 * by design, which the event loop must not spend while it answers NEWs,
 * commits and deliverd.  One worker thread checks the requests in order;
 * the loop hands them over under a mutex and is woken by an eventfd when
 * one is done, as the group commit does (queue_commit.c).  The worker
 * opens its own copy of the table, so no handle is shared between
 * threads, and it logs nothing (the loop does).
 *
 * Security: the request comes from smtpd, which may be compromised, and
 * is decoded and bounded by mr_msg_auth first.  A user that is not in the
 * table is hashed against a dummy setting all the same, so that the time
 * taken does not tell which names exist; the computed hash is compared in
 * constant time.  Passwords are wiped from the request, the frame and
 * crypt's work area as soon as they are used.  At most AUTH_PENDING_MAX
 * requests wait; beyond that smtpd gets a temporary failure at once.
 */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "queued.h"
#include "sasl.h"
#include "table.h"

#define AUTH_PENDING_MAX	1000

struct areq {
	struct areq	*next;
	uint64_t	 req;
	unsigned	 gen;		/* smtpd channel generation */
	char		*tname, *ttype, *tpath;	/* the users table */
	char		*dovecot;	/* or Dovecot's auth socket */
	int		 secured;	/* AUTH came over TLS */
	char		 user[MR_SASL_USER_MAX + 1];
	char		 pass[MR_SASL_PASS_MAX + 1];
	uint32_t	 result;	/* enum mr_auth_res */
	char		 err[160];	/* worker: why TEMP */
};

static struct {
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct areq	*work, **wtail;	/* for the worker, in order */
	struct areq	*done;		/* handed back */
	size_t		 pending;	/* loop only */
	int		 quit;
	int		 started;
	int		 efd;
	struct event	*ev_done;
	unsigned	 gen;
	char		 dummy[CRYPT_GENSALT_OUTPUT_SIZE];
} av;

static void
areq_free(struct areq *r)
{
	free(r->tname);
	free(r->ttype);
	free(r->tpath);
	free(r->dovecot);
	explicit_bzero(r, sizeof(*r));
	free(r);
}

/* Equal strings in time that depends on their lengths only. */
static int
ct_equal(const char *a, const char *b)
{
	size_t n = strlen(a), i;
	unsigned char d = 0;

	if (n != strlen(b))
		return 0;
	for (i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* The worker's own handle on the request's table. */
static struct mr_tbl *
worker_table(struct mr_tbl **t, const struct areq *r)
{
	if (*t != NULL && strcmp(mr_tbl_name(*t), r->tname) == 0 &&
	    mr_tbl_is(*t, r->ttype, r->tpath))
		return *t;
	if (*t != NULL)
		mr_tbl_free(*t);
	*t = mr_tbl_new(r->tname, r->ttype, r->tpath);
	return *t;
}

/* The check itself, on the worker thread. */
static void
verify(struct areq *r, struct mr_tbl **t, struct crypt_data *cd)
{
	enum mr_table_res tr = MR_TABLE_TEMPFAIL;
	char *val = NULL;
	const char *out;
	size_t n;

	r->result = MR_AUTH_FAIL;
	if (worker_table(t, r) == NULL)
		snprintf(r->err, sizeof(r->err), "unknown table type");
	else
		tr = mr_tbl_lookup(*t, r->user, &val, r->err, sizeof(r->err));
	if (tr == MR_TABLE_TEMPFAIL) {
		r->result = MR_AUTH_TEMP;
		goto done;
	}
	/* the hash is the value's first word ("HASH [comment]") */
	if (val != NULL)
		val[strcspn(val, " \t")] = '\0';
	out = crypt_r(r->pass, tr == MR_TABLE_FOUND ? val : av.dummy, cd);
	n = out != NULL ? strlen(out) : 0;
	if (tr == MR_TABLE_FOUND && val != NULL && n > 0 && out[0] != '*' &&
	    ct_equal(out, val))
		r->result = MR_AUTH_OK;
done:
	explicit_bzero(r->pass, sizeof(r->pass));
	explicit_bzero(cd, sizeof(*cd));
	if (val != NULL) {
		explicit_bzero(val, strlen(val));
		free(val);
	}
}

static void *
worker(void *arg)
{
	struct crypt_data *cd;
	struct mr_tbl *t = NULL;
	struct areq *r;
	uint64_t one = 1;

	(void)arg;
	cd = mr_xcalloc(1, sizeof(*cd));
	pthread_mutex_lock(&av.lock);
	for (;;) {
		while (av.work == NULL && !av.quit)
			pthread_cond_wait(&av.cond, &av.lock);
		if (av.quit)
			break;
		r = av.work;
		if ((av.work = r->next) == NULL)
			av.wtail = &av.work;
		pthread_mutex_unlock(&av.lock);
		if (r->dovecot != NULL) {
			r->result = auth_dovecot_check(r->dovecot, r->user,
			    r->pass, r->secured, r->err, sizeof(r->err));
			explicit_bzero(r->pass, sizeof(r->pass));
		} else
			verify(r, &t, cd);
		pthread_mutex_lock(&av.lock);
		r->next = av.done;
		av.done = r;
		/* the loop reads it; a full counter still wakes it */
		(void)!write(av.efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&av.lock);
	if (t != NULL)
		mr_tbl_free(t);
	free(cd);
	return NULL;
}

static void
send_reply(uint64_t req, uint32_t result)
{
	struct mr_buf b;

	if (q->smtpd == NULL)
		return;
	mr_buf_init(&b);
	mr_buf_put_u64(&b, req);
	mr_buf_put_u32(&b, result);
	mr_ipc_sendb(q->smtpd, MR_Q_AUTH_REPLY, -1, &b);
	mr_buf_free(&b);
}

static void
done_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct areq *r, *next;
	uint64_t v;

	(void)ev;
	(void)arg;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return;
	pthread_mutex_lock(&av.lock);
	r = av.done;
	av.done = NULL;
	pthread_mutex_unlock(&av.lock);
	for (; r != NULL; r = next) {
		next = r->next;
		av.pending--;
		if (r->result == MR_AUTH_TEMP && r->dovecot != NULL)
			mr_err("auth: dovecot \"%s\": %s", r->dovecot, r->err);
		else if (r->result == MR_AUTH_TEMP)
			mr_err("auth: table \"%s\": %s", r->tname, r->err);
		if (r->gen == av.gen)
			send_reply(r->req, r->result);
		areq_free(r);
	}
}

/* Server idx's AUTH settings, or NULL. */
static const struct mr_auth *
server_auth(uint32_t idx)
{
	if (idx >= q->nservers)
		return NULL;
	return &q->servers[idx].srv->auth;
}

/* The users table of server idx, or NULL. */
static const struct mr_table *
users_table(const struct mr_auth *a)
{
	size_t i;

	if (a == NULL || a->users == NULL)
		return NULL;
	for (i = 0; i < q->cfg->ntables; i++)
		if (strcmp(q->cfg->tables[i].name, a->users) == 0)
			return &q->cfg->tables[i];
	return NULL;
}

/* Wipes the password where the decoder found it: in the channel's own
 * receive buffer (writable; const only to the decoders), which would
 * otherwise keep it until a longer frame overwrites it. */
static void
wipe_frame(const char *pass)
{
	char *w;

	memcpy(&w, &pass, sizeof(w));
	explicit_bzero(w, strlen(pass));
}

/* MR_Q_AUTH from smtpd.  The frame's password is wiped once copied. */
void
auth_request(const unsigned char *p, size_t len)
{
	const struct mr_table *ct;
	const struct mr_auth *sa;
	struct mr_m_auth a;
	struct areq *r;
	const char *err;

	if (mr_msg_auth(p, len, &a, &err) == -1) {
		mr_warn("smtpd: %s", err);
		queued_drop_smtpd();
		return;
	}
	sa = server_auth(a.server);
	ct = users_table(sa);
	if ((ct == NULL && (sa == NULL || sa->dovecot == NULL)) ||
	    !av.started || av.pending >= AUTH_PENDING_MAX) {
		wipe_frame(a.pass);
		if (sa == NULL || (ct == NULL && sa->dovecot == NULL))
			mr_warn("auth: server %u has no users table or "
			    "dovecot socket", (unsigned)a.server);
		send_reply(a.req, !av.started ||
		    av.pending >= AUTH_PENDING_MAX ? MR_AUTH_TEMP :
		    MR_AUTH_FAIL);
		return;
	}
	r = mr_xcalloc(1, sizeof(*r));
	r->req = a.req;
	r->gen = av.gen;
	if (ct != NULL) {
		r->tname = mr_xstrdup(ct->name);
		r->ttype = mr_xstrdup(ct->type);
		r->tpath = mr_xstrdup(ct->path);
	} else {
		r->dovecot = mr_xstrdup(sa->dovecot);
		/* smtpd refuses AUTH before STARTTLS when require-tls is
		 * set, so every AUTH it passes on came over TLS */
		r->secured = sa->require_tls;
	}
	memcpy(r->user, a.user, strlen(a.user) + 1);
	memcpy(r->pass, a.pass, strlen(a.pass) + 1);
	wipe_frame(a.pass);
	av.pending++;
	pthread_mutex_lock(&av.lock);
	*av.wtail = r;
	av.wtail = &r->next;
	pthread_cond_signal(&av.cond);
	pthread_mutex_unlock(&av.lock);
}

/* A new smtpd channel: answers meant for the old one are dropped. */
void
auth_new_channel(void)
{
	av.gen++;
}

void
auth_init(void)
{
	av.wtail = &av.work;
	/* the setting a missing user is hashed with: yescrypt, as new
	 * entries are, so that both cost alike */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, av.dummy,
	    sizeof(av.dummy)) == NULL)
		snprintf(av.dummy, sizeof(av.dummy), "$6$mailrootdummy$");
	if ((av.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
		mr_fatal("queued: eventfd: %s", strerror(errno));
	pthread_mutex_init(&av.lock, NULL);
	pthread_cond_init(&av.cond, NULL);
	av.ev_done = event_new(q->base, av.efd, EV_READ | EV_PERSIST, done_cb,
	    NULL);
	if (av.ev_done == NULL || event_add(av.ev_done, NULL) == -1)
		mr_fatal("queued: cannot watch the auth thread");
	if (pthread_create(&av.thread, NULL, worker, NULL) != 0)
		mr_fatal("queued: cannot start the auth thread");
	av.started = 1;
}

/* At exit: the worker stops after the check in hand; the rest is
 * dropped (smtpd is going too). */
void
auth_shutdown(void)
{
	struct areq *r, *next;

	if (!av.started)
		return;
	pthread_mutex_lock(&av.lock);
	av.quit = 1;
	pthread_cond_signal(&av.cond);
	pthread_mutex_unlock(&av.lock);
	pthread_join(av.thread, NULL);
	av.started = 0;
	for (r = av.work; r != NULL; r = next) {
		next = r->next;
		areq_free(r);
	}
	for (r = av.done; r != NULL; r = next) {
		next = r->next;
		areq_free(r);
	}
	av.work = av.done = NULL;
	event_free(av.ev_done);
	close(av.efd);
}
