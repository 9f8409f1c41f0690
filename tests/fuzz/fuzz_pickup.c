/*
 * fuzz_pickup.c - libFuzzer target for the Pickup file parser
 * (queued/pickup_parse.c).
 *
 * The first input byte sets the options (add Date/Message-ID or not, a
 * small or the default size limit); the rest is the file.  Beyond "no
 * crash", the parser must keep the promises of its head comment: a
 * refused file has a reason; an accepted one has 1..PICKUP_RCPTS_MAX
 * recipients and a sender that are mailboxes without space or control
 * bytes, a message within the size limit that begins with our Received
 * field, has CRLF line ends only and no NUL, and whose header section
 * holds no Bcc, X-Sender or X-Receiver field.
 */
#include "config.h"

#include <strings.h>

#include "fuzz.h"
#include "pickup_parse.h"

static void
check_addr(const char *a, int may_be_empty)
{
	size_t i, n = strlen(a);

	CHECK(n <= MR_PATH_MAX);
	CHECK(may_be_empty || n > 0);
	for (i = 0; i < n; i++)
		CHECK(((unsigned char)a[i] > 32 && (unsigned char)a[i] < 127) ||
		    a[i] == ' ');	/* a space only in a quoted local part */
	if (n > 0)
		CHECK(strchr(a, '@') != NULL);
}

/* Line ends are CRLF only; no header field the parser must remove. */
static void
check_data(const char *d, size_t n)
{
	static const char *const banned[] = { "bcc:", "x-sender:",
	    "x-receiver:" };
	size_t i, j, k, hdr_end = n;
	const char *e = memmem(d, n, "\r\n\r\n", 4);

	if (e != NULL)
		hdr_end = (size_t)(e - d) + 2;
	CHECK(n >= 9 && strncmp(d, "Received:", 9) == 0);
	for (i = 0; i < n; i++) {
		CHECK(d[i] != '\0');
		if (d[i] == '\n')
			CHECK(i > 0 && d[i - 1] == '\r');
		if (d[i] == '\r')
			CHECK(i + 1 < n && d[i + 1] == '\n');
	}
	for (i = 0; i < hdr_end; i++) {
		if (i > 0 && d[i - 1] != '\n')
			continue;
		for (j = 0; j < 3; j++) {
			k = strlen(banned[j]);
			if (hdr_end - i >= k)
				CHECK(strncasecmp(d + i, banned[j], k) != 0);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pickup_opts o;
	struct pickup_msg m;
	size_t i;

	if (size < 1)
		return 0;
	memset(&o, 0, sizeof(o));
	o.add_headers = data[0] & 1;
	o.max_size = data[0] & 2 ? 512 : 2048 * 1024;
	o.qid = "17C7C8E8D8E947DDF8513BDE";
	o.fqdn = "mx.test.example";
	o.now = 1796037042;
	if (pickup_parse((const char *)data + 1, size - 1, &o, &m) == -1) {
		CHECK(m.err != NULL && m.err[0] != '\0');
		pickup_msg_free(&m);
		return 0;
	}
	CHECK(m.err == NULL);
	CHECK(m.nrcpts >= 1 && m.nrcpts <= PICKUP_RCPTS_MAX);
	CHECK(m.data.len <= o.max_size);
	check_addr(m.sender, 1);
	for (i = 0; i < m.nrcpts; i++)
		check_addr(m.rcpts[i], 0);
	check_data(m.data.data, m.data.len);
	pickup_msg_free(&m);
	return 0;
}
