/*
 * fuzz_submit.c - libFuzzer target for mailroot-sendmail's protocol
 * (common/submit.c) and what queued makes of a submitted message
 * (queued/pickup_parse.c in its sendmail mode, as queued/submit.c calls
 * it).
 *
 * Input: a u32 request length (little-endian), the request payload, then
 * the message.  Beyond "no crash": a refused request has a reason; an
 * accepted one has known flags, a sender and recipients without space or
 * control bytes and within their limits, at least one recipient unless
 * -t, and encodes back to a payload that parses to the same request.
 * The message is then parsed with that envelope: the queued sender is
 * the given one (never one from the message), the recipients include
 * the given ones in order, and the message holds no Bcc field.  The
 * reply decoder gets the same bytes.
 */
#include "config.h"

#include <strings.h>

#include "buf.h"
#include "fuzz.h"
#include "pickup_parse.h"
#include "submit.h"

static void
check_str(const char *s, size_t max)
{
	size_t i, n = strlen(s);

	CHECK(n <= max);
	for (i = 0; i < n; i++)
		CHECK((unsigned char)s[i] >= 32 && (unsigned char)s[i] < 127);
}

static void
check_roundtrip(const struct submit_req *r)
{
	struct submit_req again;
	struct mr_buf b;
	const char *err;
	size_t i;

	mr_buf_init(&b);
	submit_req_encode(r, &b);
	CHECK(submit_req_parse(b.data, b.len, &again, &err) == 0);
	CHECK(again.flags == r->flags && again.size == r->size);
	CHECK(strcmp(again.sender, r->sender) == 0);
	CHECK(strcmp(again.fullname, r->fullname) == 0);
	CHECK(again.nrcpts == r->nrcpts);
	for (i = 0; i < r->nrcpts; i++)
		CHECK(strcmp(again.rcpts[i], r->rcpts[i]) == 0);
	submit_req_free(&again);
	mr_buf_free(&b);
}

/* The message with the request's envelope, as queued parses it. */
static void
check_message(const struct submit_req *r, const char *d, size_t n)
{
	struct pickup_opts o;
	struct pickup_msg m;
	size_t i;

	memset(&o, 0, sizeof(o));
	o.max_size = 4096;
	o.add_headers = 1;
	o.qid = "17C7C8E8D8E947DDF8513BDE";
	o.fqdn = "mx.test.example";
	o.now = 1796037042;
	o.origin = "local user fuzz (uid 1000)";
	o.no_envelope = 1;
	o.sender = r->sender;
	o.rcpts = r->rcpts;
	o.nrcpts = r->nrcpts;
	o.hdr_rcpts = (r->flags & SUBMIT_F_HEADERS) != 0;
	o.from_field = "fuzz@mx.test.example";
	if (pickup_parse(d, n, &o, &m) == 0) {
		CHECK(strcmp(m.sender, r->sender) == 0);
		CHECK(m.nrcpts >= r->nrcpts);
		for (i = 0; i < r->nrcpts; i++)
			CHECK(strcmp(m.rcpts[i], r->rcpts[i]) == 0);
		CHECK(m.data.len <= o.max_size);
		for (i = 0; i + 4 <= m.data.len; i++) {
			if (memcmp(m.data.data + i, "\r\n\r\n", 4) == 0)
				break;
			CHECK(strncasecmp(m.data.data + i, "\nbcc:", 5) != 0);
		}
	} else
		CHECK(m.err != NULL && m.err[0] != '\0');
	pickup_msg_free(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct submit_req r;
	const char *err = NULL;
	char text[256];
	uint32_t len, status;
	size_t i;

	if (size < 4)
		return 0;
	len = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
	    (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
	if (len > size - 4)
		len = (uint32_t)(size - 4);
	(void)submit_reply_parse(data + 4, len, &status, text, sizeof(text),
	    &err);
	if (submit_req_parse(data + 4, len, &r, &err) == -1) {
		CHECK(err != NULL && err[0] != '\0');
		submit_req_free(&r);
		return 0;
	}
	CHECK((r.flags & ~(uint32_t)SUBMIT_F_ALL) == 0);
	CHECK(r.nrcpts > 0 || (r.flags & SUBMIT_F_HEADERS));
	CHECK(r.nrcpts <= SUBMIT_RCPT_MAX && r.size <= SUBMIT_DATA_MAX);
	check_str(r.sender, MR_PATH_MAX);
	check_str(r.fullname, SUBMIT_NAME_MAX);
	for (i = 0; i < r.nrcpts; i++) {
		check_str(r.rcpts[i], MR_PATH_MAX);
		CHECK(strchr(r.rcpts[i], ' ') == NULL ||
		    strchr(r.rcpts[i], '"') != NULL);
	}
	check_roundtrip(&r);
	check_message(&r, (const char *)data + 4 + len, size - 4 - len);
	submit_req_free(&r);
	return 0;
}
