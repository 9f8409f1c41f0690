/*
 * ipc_msg.c - the decoders of every IPC payload (ipc_msg.h).
 *
 * Security: every payload comes from another process, which may be
 * compromised; each byte is hostile.  A decoder reads only through the
 * bounds-checked mr_rd_* reader, bounds every count before it allocates
 * (a count can never promise more entries than the bytes left could
 * hold), fills a structure whose free function is safe at every point of
 * a failure, and refuses control bytes in anything that reaches an SMTP
 * line, a header, a log line or the envelope.  Nothing here has side
 * effects: the receiver acts only on a structure that decoded whole.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "buf.h"
#include "dsn_param.h"
#include "ipc_msg.h"
#include "proto.h"
#include "sasl.h"

/* The smallest encoding of a string: u32 length and the NUL. */
#define STR_MIN		5

int
mr_msg_clean(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* Reads a count of entries at least min bytes each: 1..max and no more
 * than the rest of the payload can hold; 0 on error. */
static size_t
rd_count(struct mr_rd *rd, size_t max, size_t min)
{
	uint32_t n = mr_rd_u32(rd);

	if (rd->err || n == 0 || n > max || n > rd->left / min) {
		rd->err = 1;
		return 0;
	}
	return n;
}

int
mr_msg_new(const unsigned char *p, size_t len, struct mr_m_new *out,
    const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	out->req = mr_rd_u64(&rd);
	out->server = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd)) {
		*err = "malformed NEW";
		return -1;
	}
	return 0;
}

static void
dsn_free(struct mr_m_dsn *d)
{
	free(d->notify);
	free(d->orcpt);
	d->notify = NULL;
	d->orcpt = NULL;
}

/* The DSN block for n recipients: u32 ret, str envid, u32 n, n x (u32
 * notify, str orcpt).  0, or -1 with rd->err set. */
static int
rd_dsn(struct mr_rd *rd, size_t n, struct mr_m_dsn *d)
{
	size_t i, len;

	d->ret = mr_rd_u32(rd);
	d->envid = mr_rd_str(rd, MR_ENVID_MAX, &len);
	if (rd->err || d->ret > MR_RET_HDRS ||
	    (len > 0 && !mr_dsn_envid_valid(d->envid, len)) ||
	    rd_count(rd, MR_RCPT_MAX, 4 + STR_MIN) != n) {
		rd->err = 1;
		return -1;
	}
	d->notify = mr_xcalloc(n, sizeof(*d->notify));
	d->orcpt = mr_xcalloc(n, sizeof(*d->orcpt));
	for (i = 0; i < n; i++) {
		d->notify[i] = mr_rd_u32(rd);
		d->orcpt[i] = mr_rd_str(rd, MR_ORCPT_MAX, &len);
		if (rd->err || !mr_dsn_notify_valid(d->notify[i]) ||
		    (len > 0 && !mr_dsn_orcpt_valid(d->orcpt[i], len))) {
			rd->err = 1;
			return -1;
		}
	}
	return 0;
}

void
mr_msg_commit_free(struct mr_m_commit *m)
{
	size_t i;

	dsn_free(&m->dsn);

	for (i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	m->rcpts = NULL;
	m->nrcpts = 0;
}

/* The recipients of a COMMIT, counted in m->nrcpts as they are filled
 * (so that mr_msg_commit_free frees exactly those). */
static int
commit_rcpts(struct mr_rd *rd, struct mr_m_commit *m, const char **err)
{
	struct mr_path path;
	const char *s, *perr;
	size_t n, i, slen;

	if ((n = rd_count(rd, MR_RCPT_MAX, STR_MIN)) == 0) {
		*err = "bad recipient count in COMMIT";
		return -1;
	}
	m->rcpts = mr_xcalloc(n, sizeof(*m->rcpts));
	for (i = 0; i < n; i++) {
		s = mr_rd_str(rd, MR_ADDR_MAX, &slen);
		if (s == NULL || mr_mailbox_parse_utf8(s, slen, &path,
		    &perr) == -1) {
			*err = "bad recipient in COMMIT";
			return -1;
		}
		m->smtputf8 |= (uint32_t)path.utf8 << 1;	/* seen */
		m->rcpts[m->nrcpts++] = mr_xstrdup(path.addr);
	}
	return 0;
}

/* The SMTPUTF8 flag after the DSN block: 0 or 1, and 1 if any address
 * held UTF-8 (bit 1 of out->smtputf8 said so while reading). */
static int
commit_utf8(struct mr_rd *rd, struct mr_m_commit *out)
{
	uint32_t v = mr_rd_u32(rd);
	int seen = (out->smtputf8 & 2) != 0;

	out->smtputf8 = v;
	return v > 1 || (seen && v == 0) ? -1 : 0;
}

int
mr_msg_commit(const unsigned char *p, size_t len, struct mr_m_commit *out,
    const char **err)
{
	struct mr_path path;
	struct mr_rd rd;
	const char *perr;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	mr_rd_init(&rd, p, len);
	out->req = mr_rd_u64(&rd);
	out->id = mr_rd_str(&rd, MR_ID_MAX, NULL);
	out->sender = mr_rd_str(&rd, MR_ADDR_MAX, &n);
	*err = "malformed COMMIT";
	if (rd.err || out->id[0] == '\0' || !mr_msg_clean(out->id) ||
	    (n > 0 && mr_mailbox_parse_utf8(out->sender, n, &path,
	    &perr) == -1))
		goto fail;
	out->smtputf8 = n > 0 && path.utf8 ? 2 : 0;	/* UTF-8 seen */
	if (commit_rcpts(&rd, out, err) == -1)
		goto fail;
	out->size = mr_rd_u64(&rd);
	out->client = mr_rd_str(&rd, MR_TEXT_MAX, NULL);
	out->helo = mr_rd_str(&rd, MR_TEXT_MAX, NULL);
	out->body = mr_rd_u32(&rd);
	out->auth = mr_rd_str(&rd, MR_SASL_USER_MAX, NULL);
	/* ---- DSN (RFC 3461) ---- */
	(void)rd_dsn(&rd, out->nrcpts, &out->dsn);
	if (commit_utf8(&rd, out) == -1 || !mr_rd_done(&rd) ||
	    !mr_msg_clean(out->client) || !mr_msg_clean(out->helo) ||
	    out->body > MR_BODY_8BITMIME || !mr_msg_clean(out->auth)) {
		*err = "malformed COMMIT";
		goto fail;
	}
	return 0;
fail:
	mr_msg_commit_free(out);
	return -1;
}

int
mr_msg_etrn(const unsigned char *p, size_t len, struct mr_m_etrn *out,
    const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	out->server = mr_rd_u32(&rd);
	out->domain = mr_rd_str(&rd, 255, NULL);
	if (!mr_rd_done(&rd) || out->domain[0] == '\0' ||
	    !mr_msg_clean(out->domain)) {
		*err = "malformed ETRN";
		return -1;
	}
	return 0;
}

int
mr_msg_flush(const unsigned char *p, size_t len, struct mr_m_flush *out,
    const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	out->server = mr_rd_u32(&rd);
	out->domain = mr_rd_str(&rd, 255, NULL);
	if (!mr_rd_done(&rd) || !mr_msg_clean(out->domain)) {
		*err = "malformed FLUSH";
		return -1;
	}
	return 0;
}

int
mr_msg_abort(const unsigned char *p, size_t len, struct mr_m_abort *out,
    const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	out->id = mr_rd_str(&rd, MR_ID_MAX, NULL);
	if (!mr_rd_done(&rd) || out->id[0] == '\0') {
		*err = "malformed ABORT";
		return -1;
	}
	return 0;
}

int
mr_msg_reply(uint32_t type, const unsigned char *p, size_t len,
    struct mr_m_reply *out, const char **err)
{
	int is_id = type == MR_Q_NEW_OK || type == MR_Q_COMMIT_OK;
	struct mr_rd rd;

	*err = "malformed reply from queued";
	if (!is_id && type != MR_Q_NEW_FAIL && type != MR_Q_COMMIT_FAIL &&
	    type != MR_Q_COMMIT_REJECT)
		return -1;
	mr_rd_init(&rd, p, len);
	out->req = mr_rd_u64(&rd);
	out->text = mr_rd_str(&rd, is_id ? MR_ID_MAX : MR_TEXT_MAX, NULL);
	if (!mr_rd_done(&rd) || !mr_msg_clean(out->text) ||
	    (is_id && out->text[0] == '\0'))
		return -1;
	return 0;
}

int
mr_msg_rcpt_check(const unsigned char *p, size_t len,
    struct mr_m_rcpt_check *out, const char **err)
{
	struct mr_path path;
	struct mr_rd rd;
	size_t n;

	*err = "malformed RCPT_CHECK";
	mr_rd_init(&rd, p, len);
	out->req = mr_rd_u64(&rd);
	out->server = mr_rd_u32(&rd);
	out->rcpt = mr_rd_str(&rd, MR_ADDR_MAX, &n);
	if (!mr_rd_done(&rd) || mr_mailbox_parse_utf8(out->rcpt, n, &path,
	    err) == -1)
		return -1;
	return 0;
}

int
mr_msg_rcpt_verdict(const unsigned char *p, size_t len,
    struct mr_m_rcpt_verdict *out, const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	out->req = mr_rd_u64(&rd);
	out->verdict = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd) || out->verdict > MR_RV_TEMPFAIL) {
		*err = "malformed RCPT_VERDICT";
		return -1;
	}
	return 0;
}

void
mr_msg_job_free(struct mr_m_job *j)
{
	dsn_free(&j->dsn);
	free(j->rcpts);
	j->rcpts = NULL;
	j->nrcpts = 0;
}

int
mr_msg_job(const unsigned char *p, size_t len, struct mr_m_job *out,
    const char **err)
{
	struct mr_rd rd;
	const char *s;
	size_t n, i;

	memset(out, 0, sizeof(*out));
	mr_rd_init(&rd, p, len);
	out->job = mr_rd_u64(&rd);
	out->server = mr_rd_u32(&rd);
	out->id = mr_rd_str(&rd, MR_ID_MAX, NULL);
	out->sender = mr_rd_str(&rd, MR_ADDR_MAX, NULL);
	*err = "malformed job";
	if (rd.err)
		return -1;
	if (out->id[0] == '\0' || !mr_msg_clean(out->id) ||
	    !mr_msg_clean(out->sender)) {
		*err = "control byte in id or sender";
		return -1;
	}
	if ((n = rd_count(&rd, MR_RCPT_MAX, STR_MIN)) == 0) {
		*err = "bad recipient count";
		return -1;
	}
	out->rcpts = mr_xcalloc(n, sizeof(*out->rcpts));
	for (i = 0; i < n; i++) {
		s = mr_rd_str(&rd, MR_ADDR_MAX, NULL);
		if (s == NULL || *s == '\0' || !mr_msg_clean(s)) {
			*err = s == NULL ? "malformed job" : "bad recipient";
			goto fail;
		}
		out->rcpts[out->nrcpts++] = s;
	}
	out->body = mr_rd_u32(&rd);
	out->auth = mr_rd_str(&rd, MR_SASL_USER_MAX, NULL);
	/* ---- DSN (RFC 3461) ---- */
	(void)rd_dsn(&rd, out->nrcpts, &out->dsn);
	out->smtputf8 = mr_rd_u32(&rd);		/* RFC 6531 */
	if (!mr_rd_done(&rd) || out->body > MR_BODY_8BITMIME ||
	    !mr_msg_clean(out->auth) || out->smtputf8 > 1)
		goto fail;
	return 0;
fail:
	mr_msg_job_free(out);
	return -1;
}

void
mr_msg_results_free(struct mr_m_results *r)
{
	free(r->r);
	r->r = NULL;
	r->n = 0;
}

/* n results (replay: with id and recipient) into out->r. */
static int
read_results(struct mr_rd *rd, struct mr_m_results *out, int replay)
{
	struct mr_m_status *st;
	size_t n, i;

	/* a result is at least a status and a text, a replay two more
	 * strings */
	n = rd_count(rd, MR_RCPT_MAX, replay ? 4 + 3 * STR_MIN : 4 + STR_MIN);
	if (n == 0)
		return -1;
	out->r = mr_xcalloc(n, sizeof(*out->r));
	for (i = 0; i < n; i++) {
		st = &out->r[i];
		if (replay) {
			st->id = mr_rd_str(rd, MR_ID_MAX, NULL);
			st->rcpt = mr_rd_str(rd, MR_ADDR_MAX, NULL);
		}
		st->status = mr_rd_u32(rd);
		st->text = mr_rd_str(rd, MR_TEXT_MAX, NULL);
		if (rd->err || (st->status != MR_DS_OK &&
		    st->status != MR_DS_PERM && st->status != MR_DS_RELAYED &&
		    (replay || (st->status != MR_DS_TEMP &&
		    st->status != MR_DS_AGAIN))) ||
		    (replay && (st->id[0] == '\0' || !mr_msg_clean(st->id))))
			return -1;
		out->n++;
	}
	return mr_rd_done(rd) ? 0 : -1;
}

int
mr_msg_result(const unsigned char *p, size_t len, struct mr_m_results *out,
    const char **err)
{
	struct mr_rd rd;

	memset(out, 0, sizeof(*out));
	mr_rd_init(&rd, p, len);
	out->job = mr_rd_u64(&rd);
	if (rd.err || out->job == 0 || read_results(&rd, out, 0) == -1) {
		*err = "malformed result";
		mr_msg_results_free(out);
		return -1;
	}
	return 0;
}

int
mr_msg_replay(const unsigned char *p, size_t len, struct mr_m_results *out,
    const char **err)
{
	struct mr_rd rd;

	memset(out, 0, sizeof(*out));
	mr_rd_init(&rd, p, len);
	if (read_results(&rd, out, 1) == -1) {
		*err = "malformed replay";
		mr_msg_results_free(out);
		return -1;
	}
	return 0;
}

int
mr_msg_peer(const unsigned char *p, size_t len, uint32_t *kind,
    const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	*kind = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd) || *kind <= MR_PROC_MASTER ||
	    *kind >= MR_PROC_COUNT) {
		*err = "malformed PEER";
		return -1;
	}
	return 0;
}

/* MR_M_LISTEN and MR_M_CONFIG: one u32 (a position, a count). */
static int
msg_u32(const unsigned char *p, size_t len, uint32_t max, uint32_t *v,
    const char **err, const char *what)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	*v = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd) || *v > max) {
		*err = what;
		return -1;
	}
	return 0;
}

int
mr_msg_listen(const unsigned char *p, size_t len, uint32_t *pos,
    const char **err)
{
	return msg_u32(p, len, MR_LISTEN_MAX - 1, pos, err, "malformed LISTEN");
}

int
mr_msg_config(const unsigned char *p, size_t len, uint32_t *nlisteners,
    const char **err)
{
	return msg_u32(p, len, MR_LISTEN_MAX, nlisteners, err,
	    "malformed CONFIG");
}

int
mr_msg_pki(const unsigned char *p, size_t len, uint32_t *idx,
    uint32_t *chainlen, const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	*idx = mr_rd_u32(&rd);
	*chainlen = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd)) {
		*err = "malformed PKI";
		return -1;
	}
	return 0;
}

int
mr_msg_peer_bad(const unsigned char *p, size_t len, uint32_t reporter,
    uint32_t *kind, const char **err)
{
	if (mr_msg_peer(p, len, kind, err) == -1 || *kind == reporter) {
		*err = "malformed PEER_BAD";
		return -1;
	}
	return 0;
}

int
mr_msg_auth(const unsigned char *p, size_t len, struct mr_m_auth *out,
    const char **err)
{
	struct mr_rd rd;
	size_t ulen = 0, plen = 0;

	memset(out, 0, sizeof(*out));
	mr_rd_init(&rd, p, len);
	out->req = mr_rd_u64(&rd);
	out->server = mr_rd_u32(&rd);
	out->user = mr_rd_str(&rd, MR_SASL_USER_MAX, &ulen);
	out->pass = mr_rd_str(&rd, MR_SASL_PASS_MAX, &plen);
	if (!mr_rd_done(&rd) || ulen == 0 || plen == 0 ||
	    !mr_msg_clean(out->user)) {
		*err = "malformed AUTH";
		return -1;
	}
	return 0;
}

int
mr_msg_auth_reply(const unsigned char *p, size_t len,
    struct mr_m_auth_reply *out, const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	out->req = mr_rd_u64(&rd);
	out->result = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd) || out->result > MR_AUTH_TEMP) {
		*err = "malformed AUTH_REPLY";
		return -1;
	}
	return 0;
}

/* ---- reverse DNS of a client (MR_R_PTR, MR_R_PTR_ANSWER) ---- */

int
mr_msg_hostname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MR_PTR_NAME_MAX || s[0] == '.' || s[n - 1] == '.' ||
	    strstr(s, "..") != NULL)
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("-_.", *s) == NULL)
			return 0;
	return 1;
}

int
mr_msg_ptr(const unsigned char *p, size_t len, struct mr_m_ptr *out,
    const char **err)
{
	unsigned char a[16];
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	out->req = mr_rd_u64(&rd);
	out->addr = mr_rd_str(&rd, INET6_ADDRSTRLEN, NULL);
	if (!mr_rd_done(&rd) || (inet_pton(AF_INET, out->addr, a) != 1 &&
	    inet_pton(AF_INET6, out->addr, a) != 1)) {
		*err = "malformed PTR";
		return -1;
	}
	return 0;
}

int
mr_msg_ptr_answer(const unsigned char *p, size_t len,
    struct mr_m_ptr_answer *out, const char **err)
{
	struct mr_rd rd;
	int named;

	mr_rd_init(&rd, p, len);
	out->req = mr_rd_u64(&rd);
	out->status = mr_rd_u32(&rd);
	out->ttl = mr_rd_u32(&rd);
	out->name = mr_rd_str(&rd, MR_PTR_NAME_MAX, NULL);
	*err = "malformed PTR_ANSWER";
	if (!mr_rd_done(&rd) || out->status > MR_PTR_FAIL ||
	    out->ttl > MR_PTR_TTL_MAX)
		return -1;
	named = out->status == MR_PTR_OK || out->status == MR_PTR_UNCONFIRMED;
	if (named ? !mr_msg_hostname(out->name) : out->name[0] != '\0')
		return -1;
	return 0;
}

int
mr_msg_ctl(const unsigned char *p, size_t len, uint32_t *action,
    uint32_t *uid, const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	*action = mr_rd_u32(&rd);
	*uid = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd) || (*action != MR_CTL_ACT_RELOAD &&
	    *action != MR_CTL_ACT_STOP)) {
		*err = "malformed CTL";
		return -1;
	}
	return 0;
}

/* A string of at most max bytes without control bytes; NULL on error. */
static const char *
rd_clean(struct mr_rd *rd, size_t max)
{
	const char *s = mr_rd_str(rd, max, NULL);

	if (s == NULL || !mr_msg_clean(s)) {
		rd->err = 1;
		return NULL;
	}
	return s;
}

int
mr_msg_log(const unsigned char *p, size_t len, struct mr_m_log *m,
    const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	m->server = mr_rd_u32(&rd);
	m->client_ip = rd_clean(&rd, 64);
	m->server_ip = rd_clean(&rd, 64);
	m->server_port = mr_rd_u32(&rd);
	m->helo = rd_clean(&rd, 255);
	m->user = rd_clean(&rd, MR_ADDR_MAX);
	m->method = rd_clean(&rd, 16);
	m->args = rd_clean(&rd, 512);
	m->status = mr_rd_u32(&rd);
	m->sc_bytes = mr_rd_u64(&rd);
	m->cs_bytes = mr_rd_u64(&rd);
	m->time_taken = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd) || m->method[0] == '\0' ||
	    m->server_port > 65535 || m->status > 999) {
		*err = "malformed LOG";
		return -1;
	}
	return 0;
}

int
mr_msg_session(const unsigned char *p, size_t len, struct mr_m_session *m,
    const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	m->op = mr_rd_u32(&rd);
	m->id = mr_rd_u64(&rd);
	m->server = mr_rd_u32(&rd);
	m->client_ip = rd_clean(&rd, 64);
	m->server_ip = rd_clean(&rd, 64);
	m->server_port = mr_rd_u32(&rd);
	m->state = mr_rd_u32(&rd);
	m->helo = rd_clean(&rd, 255);
	m->user = rd_clean(&rd, MR_ADDR_MAX);
	m->command = rd_clean(&rd, MR_SESS_CMD_MAX);
	m->start = mr_rd_u64(&rd);
	if (!mr_rd_done(&rd) || m->op > MR_SESS_ONCE ||
	    m->server_port > 65535 || m->state > MR_SS_MAX) {
		*err = "malformed SESSION";
		return -1;
	}
	return 0;
}

int
mr_msg_osession(const unsigned char *p, size_t len,
    struct mr_m_osession *m, const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	m->op = mr_rd_u32(&rd);
	m->id = mr_rd_u64(&rd);
	m->server = mr_rd_u32(&rd);
	m->host = rd_clean(&rd, 255);
	m->addr = rd_clean(&rd, 64);
	m->port = mr_rd_u32(&rd);
	m->state = mr_rd_u32(&rd);
	m->command = rd_clean(&rd, MR_SESS_CMD_MAX);
	m->sent = mr_rd_u32(&rd);
	m->start = mr_rd_u64(&rd);
	if (!mr_rd_done(&rd) || m->op > MR_SESS_BEGIN || m->port > 65535 ||
	    m->state > MR_OS_MAX) {
		*err = "malformed outbound SESSION";
		return -1;
	}
	return 0;
}

int
mr_msg_dcount(const unsigned char *p, size_t len, struct mr_m_dcount *m,
    const char **err)
{
	struct mr_rd rd;

	mr_rd_init(&rd, p, len);
	m->server = mr_rd_u32(&rd);
	m->counter = mr_rd_u32(&rd);
	m->amount = mr_rd_u64(&rd);
	if (!mr_rd_done(&rd) || m->counter > MR_DC_MAX) {
		*err = "malformed COUNT";
		return -1;
	}
	return 0;
}

int
mr_msg_restarts(const unsigned char *p, size_t len,
    uint32_t restarts[MR_PROC_COUNT], const char **err)
{
	struct mr_rd rd;
	size_t k;

	mr_rd_init(&rd, p, len);
	*err = "malformed RESTARTS";
	if (mr_rd_u32(&rd) != MR_PROC_COUNT)
		return -1;
	for (k = 0; k < MR_PROC_COUNT; k++)
		restarts[k] = mr_rd_u32(&rd);
	if (!mr_rd_done(&rd) || restarts[MR_PROC_MASTER] != 0)
		return -1;
	return 0;
}
