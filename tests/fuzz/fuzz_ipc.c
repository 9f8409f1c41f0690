/*
 * fuzz_ipc.c - libFuzzer target for IPC frame decoding (ipc.c) and the
 * payload reader (buf.c).
 *
 * The first input byte chooses the receive conditions (bit 0 truncated,
 * bits 1-2 the number of fds, bits 3-7 the highest known type), the rest
 * is the datagram.  An accepted frame's payload is then read with mr_rd_*
 * in an order the payload itself picks, and every read is checked to stay
 * inside the payload and to fail for good after the first failure.
 */
#include "config.h"

#include "fuzz.h"
#include "buf.h"
#include "ipc.h"

static void
check_frame(const uint8_t *buf, size_t n, int trunc, int nfds,
    uint32_t max_type, const struct mr_ipc_msg *m)
{
	CHECK(!trunc && nfds <= 1);
	CHECK(n >= MR_IPC_HDR);
	CHECK(m->type >= 1 && m->type <= max_type);
	CHECK(m->len <= MR_IPC_MAX && m->len == n - MR_IPC_HDR);
	CHECK(m->data == buf + MR_IPC_HDR);
	CHECK(m->fd == -1);
}

/* One read chosen by op; returns 0 once the reader has failed. */
static int
read_one(struct mr_rd *r, const unsigned char *end, unsigned op)
{
	const unsigned char *before = r->p;
	const char *s;
	size_t left = r->left, n = (size_t)-1, maxlen = op >> 2;

	switch (op & 3) {
	case 0:
		if (mr_rd_u32(r) != 0)
			CHECK(!r->err);
		break;
	case 1:
		if (mr_rd_u64(r) != 0)
			CHECK(!r->err);
		break;
	default:
		s = mr_rd_str(r, (op & 1) ? maxlen : SIZE_MAX, &n);
		if (s == NULL) {
			CHECK(r->err);
			break;
		}
		CHECK(!r->err && n <= left && strlen(s) == n);
		CHECK((const unsigned char *)s + n < end);
		CHECK(!(op & 1) || n <= maxlen);
		break;
	}
	if (r->err) {
		CHECK(mr_rd_u32(r) == 0 && mr_rd_u64(r) == 0);
		CHECK(mr_rd_str(r, SIZE_MAX, NULL) == NULL);
		CHECK(!mr_rd_done(r));
		return 0;
	}
	CHECK(r->p > before && r->p <= end && r->left < left);
	CHECK(r->p + r->left == end);
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mr_ipc_msg m;
	struct mr_rd r;
	const char *err = NULL;
	const uint8_t *buf;
	uint32_t max_type;
	int trunc, nfds;
	size_t n;

	if (size < 1)
		return 0;
	trunc = data[0] & 1;
	nfds = (data[0] >> 1) & 3;
	max_type = (uint32_t)(data[0] >> 3) + 1;
	buf = data + 1;
	n = size - 1;

	if (mr_ipc_decode(buf, n, trunc, nfds, max_type, &m, &err) == -1) {
		CHECK(err != NULL && m.fd == -1);
		return 0;
	}
	check_frame(buf, n, trunc, nfds, max_type, &m);

	/* the payload steers its own decoding: each step peeks one byte */
	mr_rd_init(&r, m.data, m.len);
	while (r.left > 0) {
		unsigned op = r.p[0] ^ m.type;

		if (!read_one(&r, m.data + m.len, op))
			break;
	}
	CHECK(r.err || mr_rd_done(&r));
	return 0;
}
