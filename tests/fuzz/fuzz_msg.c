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

#include "fuzz.h"
#include "buf.h"
#include "ipc_msg.h"
#include "proto.h"

/* What the receiver accepts. */
static const uint32_t types[] = {
#if defined(FUZZ_QUEUED)
	MR_Q_NEW, MR_Q_COMMIT, MR_Q_ABORT, MR_D_RESULT, MR_D_REPLAY, MR_M_PEER,
	MR_M_CONFIG, MR_Q_ETRN
#elif defined(FUZZ_SMTPD)
	MR_Q_NEW_OK, MR_Q_NEW_FAIL, MR_Q_COMMIT_OK, MR_Q_COMMIT_FAIL, MR_M_PEER,
	MR_M_LISTEN, MR_M_CONFIG, MR_M_PKI
#elif defined(FUZZ_DELIVERD)
	MR_D_JOB, MR_M_PEER, MR_M_CONFIG
#elif defined(FUZZ_MASTER)
	MR_M_PEER_BAD
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

/* The messages that decode to one string or number or two. */
static void
fuzz_small(uint32_t type, uint32_t reporter, const uint8_t *p, size_t len)
{
	struct mr_m_new nw;
	struct mr_m_abort ab;
	struct mr_m_etrn et;
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
	default:
		/* the reporter of a PEER_BAD: the selector's high bits */
		fuzz_small(type, (uint32_t)(data[0] >> 4) % MR_PROC_COUNT,
		    data + 1, size - 1);
		break;
	}
	return 0;
}
