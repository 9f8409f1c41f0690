/*
 * ptr_relay.c - queued passes the reverse DNS lookups of smtpd's clients
 * on to deliverd and their answers back (MR_R_PTR, MR_R_PTR_ANSWER).
 *
 * smtpd may not open a socket and queued may open only AF_UNIX ones;
 * deliverd has the network and the resolver.  smtpd and deliverd have no
 * channel of their own, so queued, which talks to both, relays.  It keeps
 * no state: the request id is smtpd's and comes back in the answer; a
 * lookup lost with deliverd is timed out by smtpd.
 *
 * Security: both frames are decoded whole (ipc_msg.c) before they are
 * passed on, re-encoded from the decoded fields, so that nothing but a
 * well-formed frame crosses from one peer to the other; a frame that
 * does not decode drops the peer that sent it.
 */
#include "config.h"

#include <stdint.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "queued.h"

static void
answer(uint64_t req, uint32_t status, uint32_t ttl, const char *name)
{
	struct mr_buf b;

	if (q->smtpd == NULL)
		return;
	mr_buf_init(&b);
	mr_buf_put_u64(&b, req);
	mr_buf_put_u32(&b, status);
	mr_buf_put_u32(&b, ttl);
	mr_buf_put_str(&b, name);
	mr_ipc_sendb(q->smtpd, MR_R_PTR_ANSWER, -1, &b);
	mr_buf_free(&b);
}

/* MR_R_PTR from smtpd: -1 if it does not decode. */
int
ptr_relay_request(const unsigned char *p, size_t len)
{
	struct mr_m_ptr m;
	struct mr_buf b;
	const char *err;

	if (mr_msg_ptr(p, len, &m, &err) == -1) {
		mr_warn("smtpd: %s; dropping the channel", err);
		return -1;
	}
	if (q->deliverd == NULL) {	/* no resolver now: fail at once */
		answer(m.req, MR_PTR_FAIL, 0, "");
		return 0;
	}
	mr_buf_init(&b);
	mr_buf_put_u64(&b, m.req);
	mr_buf_put_str(&b, m.addr);
	mr_ipc_sendb(q->deliverd, MR_R_PTR, -1, &b);
	mr_buf_free(&b);
	return 0;
}

/* MR_R_PTR_ANSWER from deliverd: -1 if it does not decode. */
int
ptr_relay_answer(const unsigned char *p, size_t len)
{
	struct mr_m_ptr_answer a;
	const char *err;

	if (mr_msg_ptr_answer(p, len, &a, &err) == -1) {
		mr_warn("deliverd: %s", err);
		return -1;
	}
	answer(a.req, a.status, a.ttl, a.name);
	return 0;
}
