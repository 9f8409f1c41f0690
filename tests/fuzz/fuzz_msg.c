/*
 * fuzz_msg.c - libFuzzer targets for the IPC payload decoders
 * (common/ipc_msg.c), one per receiving process: build.sh compiles this
 * file four times, with FUZZ_QUEUED, FUZZ_SMTPD, FUZZ_DELIVERD or
 * FUZZ_MASTER defined (fuzz_msg_queued, fuzz_msg_smtpd, ...).
 *
 * The frame around the payload is taken as well formed (fuzz_ipc covers
 * the framing): the first input byte picks one of the message types that
 * receiver accepts, the rest is the payload, as hostile as the peer
 * likes.  Beyond "no crash, no leak", a refused payload leaves nothing
 * allocated and an accepted one keeps the promises of ipc_msg.h (bounded
 * counts and lengths, no control byte where none may be, known statuses)
 * and encodes back to the very same bytes, so the decoder read every byte
 * once and in order; a COMMIT's recipients, which the decoder normalises,
 * must decode again to themselves.
 */
#include "config.h"

#include <netinet/in.h>

#include "fuzz.h"
#include "buf.h"
#include "dsn_param.h"
#include "ipc_msg.h"
#include "proto.h"
#include "sasl.h"

/* What the receiver accepts. */
static const uint32_t types[] = {
#if defined(FUZZ_QUEUED)
	MR_Q_NEW, MR_Q_COMMIT, MR_Q_ABORT, MR_D_RESULT, MR_D_REPLAY, MR_M_PEER,
	MR_M_CONFIG, MR_Q_RCPT_CHECK, MR_Q_AUTH,
	/* reverse DNS, relayed both ways */
	MR_R_PTR, MR_R_PTR_ANSWER, MR_Q_LOG, MR_Q_ETRN,
	/* mailrootctl sessions */
	MR_Q_SESSION,
	/* deliverd's outbound sessions and counters, master's restarts */
	MR_D_SESSION, MR_D_COUNT, MR_M_RESTARTS
#elif defined(FUZZ_SMTPD)
	MR_Q_NEW_OK, MR_Q_NEW_FAIL, MR_Q_COMMIT_OK, MR_Q_COMMIT_FAIL, MR_M_PEER,
	MR_M_LISTEN, MR_M_CONFIG, MR_M_PKI, MR_Q_RCPT_VERDICT, MR_Q_COMMIT_REJECT,
	MR_Q_AUTH_REPLY,
	/* reverse DNS */
	MR_R_PTR_ANSWER
#elif defined(FUZZ_DELIVERD)
	MR_D_JOB, MR_M_PEER, MR_M_CONFIG,
	/* reverse DNS */
	MR_R_PTR,
	/* a flush lifts the marks of next hops that are down */
	MR_D_FLUSH
#elif defined(FUZZ_MASTER)
	MR_M_PEER_BAD, MR_M_CTL
#else
#error "define the receiver: FUZZ_QUEUED, _SMTPD, _DELIVERD or _MASTER"
#endif
};

static void
check_same(const struct mr_buf *b, const uint8_t *p, size_t len)
{
	CHECK(b->len == len && memcmp(b->data, p, len) == 0);
}

static void
check_str(const char *s, size_t max, int clean, int nonempty)
{
	CHECK(s != NULL && strlen(s) <= max);
	CHECK(!clean || mr_msg_clean(s));
	CHECK(!nonempty || s[0] != '\0');
}

/* The DSN block (RFC 3461) of a decoded COMMIT or JOB, checked. */
static void
put_dsn(struct mr_buf *b, const struct mr_m_dsn *d, size_t n)
{
	size_t i;

	CHECK(d->ret <= MR_RET_HDRS);
	check_str(d->envid, MR_ENVID_MAX, 1, 0);
	mr_buf_put_u32(b, d->ret);
	mr_buf_put_str(b, d->envid);
	mr_buf_put_u32(b, (uint32_t)n);
	for (i = 0; i < n; i++) {
		CHECK(mr_dsn_notify_valid(d->notify[i]));
		check_str(d->orcpt[i], MR_ORCPT_MAX, 1, 0);
		CHECK(strchr(d->orcpt[i], ' ') == NULL);
		mr_buf_put_u32(b, d->notify[i]);
		mr_buf_put_str(b, d->orcpt[i]);
	}
}

static void
put_commit(struct mr_buf *b, const struct mr_m_commit *c)
{
	size_t i;

	mr_buf_put_u64(b, c->req);
	mr_buf_put_str(b, c->id);
	mr_buf_put_str(b, c->sender);
	mr_buf_put_u32(b, (uint32_t)c->nrcpts);
	for (i = 0; i < c->nrcpts; i++)
		mr_buf_put_str(b, c->rcpts[i]);
	mr_buf_put_u64(b, c->size);
	mr_buf_put_str(b, c->client);
	mr_buf_put_str(b, c->helo);
	mr_buf_put_u32(b, c->body);
	mr_buf_put_str(b, c->auth);
	put_dsn(b, &c->dsn, c->nrcpts);
	CHECK(c->smtputf8 <= 1);
	mr_buf_put_u32(b, c->smtputf8);
}

static void
fuzz_commit(const uint8_t *p, size_t len)
{
	struct mr_m_commit c, again;
	struct mr_buf b;
	const char *err = NULL;
	size_t i;

	if (mr_msg_commit(p, len, &c, &err) == -1) {
		CHECK(err != NULL && c.rcpts == NULL && c.nrcpts == 0);
		return;
	}
	check_str(c.id, MR_ID_MAX, 1, 1);
	check_str(c.sender, MR_ADDR_MAX, 1, 0);
	check_str(c.client, MR_TEXT_MAX, 1, 0);
	check_str(c.helo, MR_TEXT_MAX, 1, 0);
	check_str(c.auth, MR_SASL_USER_MAX, 1, 0);
	CHECK(c.nrcpts >= 1 && c.nrcpts <= MR_RCPT_MAX);
	CHECK(c.body <= MR_BODY_8BITMIME);
	for (i = 0; i < c.nrcpts; i++)
		check_str(c.rcpts[i], MR_ADDR_MAX, 1, 1);
	mr_buf_init(&b);
	put_commit(&b, &c);
	CHECK(mr_msg_commit((unsigned char *)b.data, b.len, &again, &err) ==
	    0);
	CHECK(again.nrcpts == c.nrcpts && again.size == c.size);
	for (i = 0; i < c.nrcpts; i++)
		CHECK(strcmp(again.rcpts[i], c.rcpts[i]) == 0);
	mr_msg_commit_free(&again);
	mr_msg_commit_free(&c);
	mr_buf_free(&b);
}

static void
fuzz_job(const uint8_t *p, size_t len)
{
	struct mr_m_job j;
	struct mr_buf b;
	const char *err = NULL;
	size_t i;

	if (mr_msg_job(p, len, &j, &err) == -1) {
		CHECK(err != NULL && j.rcpts == NULL && j.nrcpts == 0);
		return;
	}
	check_str(j.id, MR_ID_MAX, 1, 1);
	check_str(j.sender, MR_ADDR_MAX, 1, 0);
	CHECK(j.nrcpts >= 1 && j.nrcpts <= MR_RCPT_MAX);
	mr_buf_init(&b);
	mr_buf_put_u64(&b, j.job);
	mr_buf_put_u32(&b, j.server);
	mr_buf_put_str(&b, j.id);
	mr_buf_put_str(&b, j.sender);
	mr_buf_put_u32(&b, (uint32_t)j.nrcpts);
	for (i = 0; i < j.nrcpts; i++) {
		check_str(j.rcpts[i], MR_ADDR_MAX, 1, 1);
		mr_buf_put_str(&b, j.rcpts[i]);
	}
	CHECK(j.body <= MR_BODY_8BITMIME);
	mr_buf_put_u32(&b, j.body);
	check_str(j.auth, MR_SASL_USER_MAX, 1, 0);
	mr_buf_put_str(&b, j.auth);
	put_dsn(&b, &j.dsn, j.nrcpts);
	CHECK(j.smtputf8 <= 1);
	mr_buf_put_u32(&b, j.smtputf8);
	check_same(&b, p, len);
	mr_buf_free(&b);
	mr_msg_job_free(&j);
}

static void
fuzz_results(uint32_t type, const uint8_t *p, size_t len)
{
	struct mr_m_results r;
	struct mr_buf b;
	const char *err = NULL;
	int replay = type == MR_D_REPLAY;
	size_t i;

	if ((replay ? mr_msg_replay(p, len, &r, &err) :
	    mr_msg_result(p, len, &r, &err)) == -1) {
		CHECK(err != NULL && r.r == NULL && r.n == 0);
		return;
	}
	CHECK(r.n >= 1 && r.n <= MR_RCPT_MAX);
	CHECK(replay || r.job != 0);
	mr_buf_init(&b);
	if (!replay)
		mr_buf_put_u64(&b, r.job);
	mr_buf_put_u32(&b, (uint32_t)r.n);
	for (i = 0; i < r.n; i++) {
		const struct mr_m_status *st = &r.r[i];

		CHECK(st->status == MR_DS_OK || st->status == MR_DS_PERM ||
		    st->status == MR_DS_RELAYED ||
		    (!replay && (st->status == MR_DS_TEMP ||
		    st->status == MR_DS_AGAIN)));
		check_str(st->text, MR_TEXT_MAX, 0, 0);
		if (replay) {
			check_str(st->id, MR_ID_MAX, 1, 1);
			check_str(st->rcpt, MR_ADDR_MAX, 0, 0);
			mr_buf_put_str(&b, st->id);
			mr_buf_put_str(&b, st->rcpt);
		} else
			CHECK(st->id == NULL && st->rcpt == NULL);
		mr_buf_put_u32(&b, st->status);
		mr_buf_put_str(&b, st->text);
	}
	check_same(&b, p, len);
	mr_buf_free(&b);
	mr_msg_results_free(&r);
}

/* MR_Q_RCPT_CHECK and MR_Q_RCPT_VERDICT */
static void
fuzz_rcpt(uint32_t type, const uint8_t *p, size_t len)
{
	struct mr_m_rcpt_check rc;
	struct mr_m_rcpt_verdict rv;
	struct mr_buf b;
	const char *err = NULL;

	mr_buf_init(&b);
	if (type == MR_Q_RCPT_CHECK && mr_msg_rcpt_check(p, len, &rc,
	    &err) == 0) {
		check_str(rc.rcpt, MR_ADDR_MAX, 1, 1);
		CHECK(strchr(rc.rcpt, '@') != NULL);
		mr_buf_put_u64(&b, rc.req);
		mr_buf_put_u32(&b, rc.server);
		mr_buf_put_str(&b, rc.rcpt);
		check_same(&b, p, len);
	} else if (type == MR_Q_RCPT_VERDICT && mr_msg_rcpt_verdict(p, len,
	    &rv, &err) == 0) {
		CHECK(rv.verdict <= MR_RV_TEMPFAIL);
		mr_buf_put_u64(&b, rv.req);
		mr_buf_put_u32(&b, rv.verdict);
		check_same(&b, p, len);
	} else
		CHECK(err != NULL);
	mr_buf_free(&b);
}

/* AUTH and its answer: re-encoded to the same bytes. */
static void
fuzz_auth(uint32_t type, const uint8_t *p, size_t len)
{
	struct mr_m_auth a;
	struct mr_m_auth_reply r;
	struct mr_buf b;
	const char *err = NULL;

	mr_buf_init(&b);
	if (type == MR_Q_AUTH && mr_msg_auth(p, len, &a, &err) == 0) {
		check_str(a.user, MR_SASL_USER_MAX, 1, 1);
		check_str(a.pass, MR_SASL_PASS_MAX, 0, 1);
		mr_buf_put_u64(&b, a.req);
		mr_buf_put_u32(&b, a.server);
		mr_buf_put_str(&b, a.user);
		mr_buf_put_str(&b, a.pass);
		check_same(&b, p, len);
	} else if (type == MR_Q_AUTH_REPLY &&
	    mr_msg_auth_reply(p, len, &r, &err) == 0) {
		CHECK(r.result <= MR_AUTH_TEMP);
		mr_buf_put_u64(&b, r.req);
		mr_buf_put_u32(&b, r.result);
		check_same(&b, p, len);
	} else
		CHECK(err != NULL);
	mr_buf_free(&b);
}

/* MR_R_PTR, MR_R_PTR_ANSWER: a name only with a status that has one,
 * and a host name then; a numeric address; re-encoded to the bytes. */
static void
fuzz_ptr(uint32_t type, const uint8_t *p, size_t len)
{
	struct mr_m_ptr_answer a;
	struct mr_m_ptr m;
	struct mr_buf b;
	const char *err = NULL;

	mr_buf_init(&b);
	if (type == MR_R_PTR) {
		if (mr_msg_ptr(p, len, &m, &err) == 0) {
			check_str(m.addr, INET6_ADDRSTRLEN, 1, 1);
			mr_buf_put_u64(&b, m.req);
			mr_buf_put_str(&b, m.addr);
			check_same(&b, p, len);
		}
	} else if (mr_msg_ptr_answer(p, len, &a, &err) == 0) {
		CHECK(a.status <= MR_PTR_FAIL && a.ttl <= MR_PTR_TTL_MAX);
		check_str(a.name, MR_PTR_NAME_MAX, 1, 0);
		CHECK((a.status == MR_PTR_OK || a.status == MR_PTR_UNCONFIRMED) ==
		    (a.name[0] != '\0'));
		CHECK(a.name[0] == '\0' || mr_msg_hostname(a.name));
		CHECK(strpbrk(a.name, " ()[];\\\"") == NULL);
		mr_buf_put_u64(&b, a.req);
		mr_buf_put_u32(&b, a.status);
		mr_buf_put_u32(&b, a.ttl);
		mr_buf_put_str(&b, a.name);
		check_same(&b, p, len);
	}
	mr_buf_free(&b);
}

/* MR_Q_LOG: strings clean and bounded, and the frame re-encodes. */
static void
fuzz_log(const uint8_t *p, size_t len, struct mr_buf *b)
{
	struct mr_m_log lg;
	const char *err;

	if (mr_msg_log(p, len, &lg, &err) != 0)
		return;
	check_str(lg.client_ip, 64, 1, 0);
	check_str(lg.server_ip, 64, 1, 0);
	check_str(lg.helo, 255, 1, 0);
	check_str(lg.user, MR_ADDR_MAX, 1, 0);
	check_str(lg.method, 16, 1, 1);
	check_str(lg.args, 512, 1, 0);
	CHECK(lg.server_port <= 65535 && lg.status <= 999);
	mr_buf_put_u32(b, lg.server);
	mr_buf_put_str(b, lg.client_ip);
	mr_buf_put_str(b, lg.server_ip);
	mr_buf_put_u32(b, lg.server_port);
	mr_buf_put_str(b, lg.helo);
	mr_buf_put_str(b, lg.user);
	mr_buf_put_str(b, lg.method);
	mr_buf_put_str(b, lg.args);
	mr_buf_put_u32(b, lg.status);
	mr_buf_put_u64(b, lg.sc_bytes);
	mr_buf_put_u64(b, lg.cs_bytes);
	mr_buf_put_u32(b, lg.time_taken);
	check_same(b, p, len);
}

/* MR_Q_SESSION: op and state known, strings clean and bounded, and the
 * frame re-encodes. */
static void
fuzz_session(const uint8_t *p, size_t len, struct mr_buf *b)
{
	struct mr_m_session ss;
	const char *err;

	if (mr_msg_session(p, len, &ss, &err) != 0)
		return;
	CHECK(ss.op <= MR_SESS_ONCE && ss.state <= MR_SS_MAX);
	check_str(ss.client_ip, 64, 1, 0);
	check_str(ss.server_ip, 64, 1, 0);
	check_str(ss.helo, 255, 1, 0);
	check_str(ss.user, MR_ADDR_MAX, 1, 0);
	check_str(ss.command, MR_SESS_CMD_MAX, 1, 0);
	CHECK(ss.server_port <= 65535);
	mr_buf_put_u32(b, ss.op);
	mr_buf_put_u64(b, ss.id);
	mr_buf_put_u32(b, ss.server);
	mr_buf_put_str(b, ss.client_ip);
	mr_buf_put_str(b, ss.server_ip);
	mr_buf_put_u32(b, ss.server_port);
	mr_buf_put_u32(b, ss.state);
	mr_buf_put_str(b, ss.helo);
	mr_buf_put_str(b, ss.user);
	mr_buf_put_str(b, ss.command);
	mr_buf_put_u64(b, ss.start);
	check_same(b, p, len);
}

/* MR_D_SESSION: op and state known, strings clean and bounded, and the
 * frame re-encodes. */
static void
fuzz_osession(const uint8_t *p, size_t len, struct mr_buf *b)
{
	struct mr_m_osession os;
	const char *err;

	if (mr_msg_osession(p, len, &os, &err) != 0)
		return;
	CHECK(os.op <= MR_SESS_BEGIN && os.state <= MR_OS_MAX);
	check_str(os.host, 255, 1, 0);
	check_str(os.addr, 64, 1, 0);
	check_str(os.command, MR_SESS_CMD_MAX, 1, 0);
	CHECK(os.port <= 65535);
	mr_buf_put_u32(b, os.op);
	mr_buf_put_u64(b, os.id);
	mr_buf_put_u32(b, os.server);
	mr_buf_put_str(b, os.host);
	mr_buf_put_str(b, os.addr);
	mr_buf_put_u32(b, os.port);
	mr_buf_put_u32(b, os.state);
	mr_buf_put_str(b, os.command);
	mr_buf_put_u32(b, os.sent);
	mr_buf_put_u64(b, os.start);
	check_same(b, p, len);
}

/* MR_D_COUNT and MR_M_RESTARTS: known counters, the master never
 * restarted, and the frame re-encodes. */
static void
fuzz_counts(uint32_t type, const uint8_t *p, size_t len, struct mr_buf *b)
{
	struct mr_m_dcount dc;
	uint32_t r[MR_PROC_COUNT];
	const char *err;
	size_t k;

	if (type == MR_D_COUNT) {
		if (mr_msg_dcount(p, len, &dc, &err) != 0)
			return;
		CHECK(dc.counter <= MR_DC_MAX);
		mr_buf_put_u32(b, dc.server);
		mr_buf_put_u32(b, dc.counter);
		mr_buf_put_u64(b, dc.amount);
	} else {
		if (mr_msg_restarts(p, len, r, &err) != 0)
			return;
		CHECK(r[MR_PROC_MASTER] == 0);
		mr_buf_put_u32(b, MR_PROC_COUNT);
		for (k = 0; k < MR_PROC_COUNT; k++)
			mr_buf_put_u32(b, r[k]);
	}
	check_same(b, p, len);
}

/* The messages that decode to one string or number or two. */
static void
fuzz_small(uint32_t type, uint32_t reporter, const uint8_t *p, size_t len)
{
	struct mr_m_new nw;
	struct mr_m_abort ab;
	struct mr_m_etrn et;
	struct mr_m_flush fl;
	struct mr_m_reply rp;
	struct mr_buf b;
	const char *err = NULL;
	uint32_t kind, idx;
	int id;

	mr_buf_init(&b);
	switch (type) {
	case MR_Q_NEW:
		if (mr_msg_new(p, len, &nw, &err) == 0) {
			mr_buf_put_u64(&b, nw.req);
			mr_buf_put_u32(&b, nw.server);
			check_same(&b, p, len);
		}
		break;
	case MR_Q_ETRN:
		if (mr_msg_etrn(p, len, &et, &err) == 0) {
			check_str(et.domain, 255, 1, 1);
			mr_buf_put_u32(&b, et.server);
			mr_buf_put_str(&b, et.domain);
			check_same(&b, p, len);
		}
		break;
	case MR_D_FLUSH:
		if (mr_msg_flush(p, len, &fl, &err) == 0) {
			check_str(fl.domain, 255, 1, 0);
			mr_buf_put_u32(&b, fl.server);
			mr_buf_put_str(&b, fl.domain);
			check_same(&b, p, len);
		}
		break;
	case MR_Q_ABORT:
		if (mr_msg_abort(p, len, &ab, &err) == 0) {
			check_str(ab.id, MR_ID_MAX, 0, 1);
			mr_buf_put_str(&b, ab.id);
			check_same(&b, p, len);
		}
		break;
	case MR_M_LISTEN:
	case MR_M_CONFIG:
		if ((type == MR_M_LISTEN ? mr_msg_listen(p, len, &kind, &err) :
		    mr_msg_config(p, len, &kind, &err)) == 0) {
			CHECK(kind <= MR_LISTEN_MAX);
			mr_buf_put_u32(&b, kind);
			check_same(&b, p, len);
		}
		break;
	case MR_M_PKI:
		if (mr_msg_pki(p, len, &kind, &idx, &err) == 0) {
			mr_buf_put_u32(&b, kind);
			mr_buf_put_u32(&b, idx);
			check_same(&b, p, len);
		}
		break;
	case MR_M_PEER:
	case MR_M_PEER_BAD:
		if ((type == MR_M_PEER ? mr_msg_peer(p, len, &kind, &err) :
		    mr_msg_peer_bad(p, len, reporter, &kind, &err)) == 0) {
			CHECK(kind > MR_PROC_MASTER && kind < MR_PROC_COUNT);
			CHECK(type == MR_M_PEER || kind != reporter);
			mr_buf_put_u32(&b, kind);
			check_same(&b, p, len);
		}
		break;
	case MR_Q_LOG:
		fuzz_log(p, len, &b);
		break;
	case MR_Q_SESSION:
		fuzz_session(p, len, &b);
		break;
	case MR_D_SESSION:
		fuzz_osession(p, len, &b);
		break;
	case MR_D_COUNT:
	case MR_M_RESTARTS:
		fuzz_counts(type, p, len, &b);
		break;
	case MR_M_CTL:
		if (mr_msg_ctl(p, len, &kind, &idx, &err) == 0) {
			CHECK(kind == MR_CTL_ACT_RELOAD ||
			    kind == MR_CTL_ACT_STOP);
			mr_buf_put_u32(&b, kind);
			mr_buf_put_u32(&b, idx);
			check_same(&b, p, len);
		}
		break;
	default:
		id = type == MR_Q_NEW_OK || type == MR_Q_COMMIT_OK;
		if (mr_msg_reply(type, p, len, &rp, &err) == 0) {
			check_str(rp.text, id ? MR_ID_MAX : MR_TEXT_MAX, 1, id);
			mr_buf_put_u64(&b, rp.req);
			mr_buf_put_str(&b, rp.text);
			check_same(&b, p, len);
		}
		break;
	}
	mr_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t type;

	if (size < 1)
		return 0;
	type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	switch (type) {
	case MR_Q_COMMIT:
		fuzz_commit(data + 1, size - 1);
		break;
	case MR_D_JOB:
		fuzz_job(data + 1, size - 1);
		break;
	case MR_D_RESULT:
	case MR_D_REPLAY:
		fuzz_results(type, data + 1, size - 1);
		break;
	case MR_Q_RCPT_CHECK:
	case MR_Q_RCPT_VERDICT:
		fuzz_rcpt(type, data + 1, size - 1);
		break;
	case MR_Q_AUTH:
	case MR_Q_AUTH_REPLY:
		fuzz_auth(type, data + 1, size - 1);
		break;
	case MR_R_PTR:
	case MR_R_PTR_ANSWER:
		fuzz_ptr(type, data + 1, size - 1);
		break;
	default:
		/* the reporter of a PEER_BAD: the selector's high bits */
		fuzz_small(type, (uint32_t)(data[0] >> 4) % MR_PROC_COUNT,
		    data + 1, size - 1);
		break;
	}
	return 0;
}
