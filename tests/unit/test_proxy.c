/*
 * test_proxy.c - table-driven tests for the PROXY protocol header parser
 * (common/proxy_hdr.c), versions 1 and 2.
 *
 * The header comes from whoever connects to a proxy-protocol listener, so
 * every row is an input a peer can send.  Each row becomes one cmocka
 * test.  A row that parses is also fed as every shorter prefix, each of
 * which must ask for more (smtpd reads the header as it trickles in), and
 * with SMTP bytes after it, which must not change the result or the
 * header's length (they belong to the session).
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy_hdr.h"

struct pcase {
	const char	*name;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	enum mr_proxy_rc rc;
	int		 version;	/* checked when OK */
	int		 local;
	const char	*src;		/* client address when !local */
	unsigned	 port;
	const char	*error;		/* a word of the reason when BAD */
};

#define SIG	"\r\n\r\n\0\r\nQUIT\n"
#define B(s)	s, sizeof(s) - 1
#define V2_TCP4_BODY "\xc0\x00\x02\x01" "\xc6\x33\x64\x02" "\xdc\x04\x00\x19"
#define V6A	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
#define V6B	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02"
#define UNIX216	"/tmp/sock" \
	"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" \
	"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" \
	"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" \
	"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" \
	"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" \
	"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" \
	"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"

static const struct pcase cases[] = {
	/* version 1 */
	{ "v1 tcp4", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n", 0,
	    MR_PROXY_OK, 1, 0, "192.0.2.1", 56324, NULL },
	{ "v1 tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 4000 25\r\n", 0,
	    MR_PROXY_OK, 1, 0, "2001:db8::1", 4000, NULL },
	{ "v1 tcp6 v4-mapped is ipv4",
	    "PROXY TCP6 ::ffff:192.0.2.7 ::ffff:10.0.0.1 1 25\r\n", 0,
	    MR_PROXY_OK, 1, 0, "192.0.2.7", 1, NULL },
	{ "v1 ports 0 and 65535", "PROXY TCP4 10.0.0.1 10.0.0.2 0 65535\r\n",
	    0, MR_PROXY_OK, 1, 0, "10.0.0.1", 0, NULL },
	{ "v1 unknown", "PROXY UNKNOWN\r\n", 0, MR_PROXY_OK, 1, 1, NULL, 0,
	    NULL },
	{ "v1 unknown with addresses",
	    "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 0, MR_PROXY_OK, 1, 1,
	    NULL, 0, NULL },
	{ "v1 longest line", "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
	    "ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", 0,
	    MR_PROXY_OK, 1, 0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    65535, NULL },
	{ "empty", "", 0, MR_PROXY_MORE, 0, 0, NULL, 0, NULL },
	{ "v1 partial", "PROXY TCP4 192.0.2.1", 0, MR_PROXY_MORE, 0, 0, NULL,
	    0, NULL },
	{ "v1 partial signature", "PROX", 0, MR_PROXY_MORE, 0, 0, NULL, 0,
	    NULL },
	{ "v1 up to the CR", "PROXY UNKNOWN\r", 0, MR_PROXY_MORE, 0, 0, NULL,
	    0, NULL },
	{ "smtp command", "EHLO client.test\r\n", 0, MR_PROXY_BAD, 0, 0,
	    NULL, 0, "not a PROXY" },
	{ "lower case", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "not a PROXY" },
	{ "v1 no space after PROXY", "PROXYTCP4", 0, MR_PROXY_BAD, 0, 0,
	    NULL, 0, "not a PROXY" },
	{ "v1 bare LF", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "CRLF" },
	{ "v1 bare CR", "PROXY TCP4 1.2.3.4\rX", 0, MR_PROXY_BAD, 0, 0, NULL,
	    0, "CR" },
	{ "v1 two spaces", "PROXY TCP4  192.0.2.1 198.51.100.2 1 25\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "expected" },
	{ "v1 trailing space", "PROXY TCP4 192.0.2.1 198.51.100.2 1 25 \r\n",
	    0, MR_PROXY_BAD, 0, 0, NULL, 0, "expected" },
	{ "v1 missing port", "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "expected" },
	{ "v1 extra field", "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "expected" },
	{ "v1 tcp4 with ipv6", "PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n",
	    0, MR_PROXY_BAD, 0, 0, NULL, 0, "address" },
	{ "v1 tcp6 with ipv4", "PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "address" },
	{ "v1 short address", "PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "address" },
	{ "v1 host name", "PROXY TCP4 mx.example 198.51.100.2 1 2\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "address" },
	{ "v1 port too big", "PROXY TCP4 10.0.0.1 10.0.0.2 65536 25\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "port" },
	{ "v1 port six digits", "PROXY TCP4 10.0.0.1 10.0.0.2 000025 25\r\n",
	    0, MR_PROXY_BAD, 0, 0, NULL, 0, "port" },
	{ "v1 negative port", "PROXY TCP4 10.0.0.1 10.0.0.2 -1 25\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "port" },
	{ "v1 unknown protocol", "PROXY TCP5 10.0.0.1 10.0.0.2 1 25\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "protocol" },
	{ "v1 no protocol", "PROXY \r\n", 0, MR_PROXY_BAD, 0, 0, NULL, 0,
	    "protocol" },
	{ "v1 8-bit byte", "PROXY TCP4 10.0.0.1\xc3\xa9 10.0.0.2 1 25\r\n", 0,
	    MR_PROXY_BAD, 0, 0, NULL, 0, "8-bit" },
	{ "v1 NUL", B("PROXY TCP4 10.0.0.1\0 10.0.0.2 1 25\r\n"),
	    MR_PROXY_BAD, 0, 0, NULL, 0, "control" },
	{ "v1 no CRLF within 107 bytes", "PROXY UNKNOWN "
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0, MR_PROXY_BAD, 0, 0,
	    NULL, 0, "107" },
	/* version 2 */
	{ "v2 tcp4", B(SIG "\x21\x11\x00\x0c" V2_TCP4_BODY), MR_PROXY_OK, 2,
	    0, "192.0.2.1", 56324, NULL },
	{ "v2 tcp6", B(SIG "\x21\x21\x00\x24" V6A V6B "\x0f\xa0\x00\x19"),
	    MR_PROXY_OK, 2, 0, "2001:db8::1", 4000, NULL },
	{ "v2 tcp6 v4-mapped is ipv4", B(SIG "\x21\x21\x00\x24"
	    "\0\0\0\0\0\0\0\0\0\0\xff\xff\xc0\x00\x02\x07" V6B
	    "\x00\x01\x00\x19"), MR_PROXY_OK, 2, 0, "192.0.2.7", 1, NULL },
	{ "v2 tcp4 with TLVs skipped", B(SIG "\x21\x11\x00\x13" V2_TCP4_BODY
	    "\x04\x00\x04" "abcd"), MR_PROXY_OK, 2, 0, "192.0.2.1", 56324,
	    NULL },
	{ "v2 local", B(SIG "\x20\x00\x00\x00"), MR_PROXY_OK, 2, 1, NULL, 0,
	    NULL },
	{ "v2 local with a family, no addresses", B(SIG "\x20\x11\x00\x00"),
	    MR_PROXY_OK, 2, 1, NULL, 0, NULL },
	{ "v2 proxy unspecified family", B(SIG "\x21\x00\x00\x00"),
	    MR_PROXY_OK, 2, 1, NULL, 0, NULL },
	{ "v2 partial signature", B("\r\n\r\n\0"), MR_PROXY_MORE, 0, 0, NULL,
	    0, NULL },
	{ "v2 fixed part only", B(SIG "\x21\x11\x00\x0c"), MR_PROXY_MORE, 0,
	    0, NULL, 0, NULL },
	{ "v2 partial addresses", B(SIG "\x21\x11\x00\x0c\xc0\x00\x02"),
	    MR_PROXY_MORE, 0, 0, NULL, 0, NULL },
	{ "v2 wrong signature", B("\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x0c"),
	    MR_PROXY_BAD, 0, 0, NULL, 0, "not a PROXY" },
	{ "v2 signature then smtp", B("\r\n\r\nEHLO"), MR_PROXY_BAD, 0, 0,
	    NULL, 0, "not a PROXY" },
	{ "v2 version 1 byte", B(SIG "\x11\x11\x00\x0c" V2_TCP4_BODY),
	    MR_PROXY_BAD, 0, 0, NULL, 0, "version" },
	{ "v2 version 3", B(SIG "\x31\x11\x00\x0c" V2_TCP4_BODY),
	    MR_PROXY_BAD, 0, 0, NULL, 0, "version" },
	{ "v2 unknown command", B(SIG "\x22\x11\x00\x0c" V2_TCP4_BODY),
	    MR_PROXY_BAD, 0, 0, NULL, 0, "command" },
	{ "v2 unknown family", B(SIG "\x21\x41\x00\x0c" V2_TCP4_BODY),
	    MR_PROXY_BAD, 0, 0, NULL, 0, "family" },
	{ "v2 inet with unspecified protocol", B(SIG "\x21\x10\x00\x0c"
	    V2_TCP4_BODY), MR_PROXY_BAD, 0, 0, NULL, 0, "family" },
	{ "v2 udp4", B(SIG "\x21\x12\x00\x0c" V2_TCP4_BODY), MR_PROXY_BAD,
	    0, 0, NULL, 0, "TCP" },
	{ "v2 unix stream", B(SIG "\x21\x31\x00\xd8" UNIX216), MR_PROXY_BAD,
	    0, 0, NULL, 0, "TCP" },
	{ "v2 tcp4 too short", B(SIG "\x21\x11\x00\x0b" "\xc0\x00\x02\x01"
	    "\xc6\x33\x64\x02" "\xdc\x04\x00"), MR_PROXY_BAD, 0, 0, NULL, 0,
	    "short" },
	{ "v2 tcp6 too short", B(SIG "\x21\x21\x00\x0c" V2_TCP4_BODY),
	    MR_PROXY_BAD, 0, 0, NULL, 0, "short" },
	{ "v2 too long", B(SIG "\x21\x11\x08\x01"), MR_PROXY_BAD, 0, 0,
	    NULL, 0, "longer" },
	{ "v2 longest", B(SIG "\x20\x00\x08\x00"), MR_PROXY_MORE, 0, 0,
	    NULL, 0, NULL },
};

#define NCASES	(sizeof(cases) / sizeof(*cases))

static size_t
case_len(const struct pcase *c)
{
	return c->len ? c->len : strlen(c->in);
}

static void
check_src(const struct pcase *c, const struct mr_proxy_hdr *h)
{
	char ip[INET6_ADDRSTRLEN];
	const void *a;
	unsigned port;

	if (h->src.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&h->src;

		assert_int_equal(h->srclen, sizeof(*sin));
		a = &sin->sin_addr;
		port = ntohs(sin->sin_port);
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)&h->src;

		assert_int_equal(h->src.ss_family, AF_INET6);
		assert_int_equal(h->srclen, sizeof(*sin6));
		a = &sin6->sin6_addr;
		port = ntohs(sin6->sin6_port);
	}
	assert_non_null(inet_ntop(h->src.ss_family, a, ip, sizeof(ip)));
	assert_string_equal(ip, c->src);
	assert_int_equal(port, c->port);
	assert_true(h->dst.ss_family == AF_INET ||
	    h->dst.ss_family == AF_INET6);
}

static void
check_ok(const struct pcase *c, const struct mr_proxy_hdr *h, size_t len)
{
	assert_int_equal(h->version, c->version);
	assert_int_equal(h->local, c->local);
	assert_int_equal(h->len, len);
	if (!c->local)
		check_src(c, h);
}

/* The header alone, then every prefix, then with the session's bytes. */
static void
check_case(void **state)
{
	const struct pcase *c = *state;
	size_t len = case_len(c), i;
	struct mr_proxy_hdr h;
	static const char tail[] = "EHLO x\r\n\r\n\r\n\0";
	char *more;

	assert_int_equal(mr_proxy_parse(c->in, len, &h), c->rc);
	if (c->rc == MR_PROXY_BAD) {
		assert_non_null(h.error);
		assert_non_null(strstr(h.error, c->error));
		return;
	}
	if (c->rc == MR_PROXY_MORE)
		return;
	check_ok(c, &h, len);
	for (i = 0; i < len; i++)
		assert_int_equal(mr_proxy_parse(c->in, i, &h), MR_PROXY_MORE);
	more = malloc(len + sizeof(tail));
	assert_non_null(more);
	memcpy(more, c->in, len);
	memcpy(more + len, tail, sizeof(tail));
	assert_int_equal(mr_proxy_parse(more, len + sizeof(tail), &h),
	    MR_PROXY_OK);
	check_ok(c, &h, len);
	free(more);
}

int
main(void)
{
	static struct CMUnitTest tests[NCASES];
	static char names[NCASES][96];
	size_t i;

	for (i = 0; i < NCASES; i++) {
		snprintf(names[i], sizeof(names[i]), "proxy: %s",
		    cases[i].name);
		tests[i].name = names[i];
		tests[i].test_func = check_case;
		tests[i].initial_state = (void *)&cases[i];
	}
	return _cmocka_run_group_tests("proxy", tests, NCASES, NULL, NULL);
}
