/*
 * test_sasl.c - the AUTH PLAIN and LOGIN exchanges (common/sasl.c):
 * strict base64, PLAIN's three fields and its authzid rule, LOGIN's two
 * steps, initial responses, "=" and "*".  Every input is one a client can
 * send.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sasl.h"

/* base64 of n bytes of p */
static const char *
enc(const char *p, size_t n)
{
	static char out[2048];

	mr_b64_encode((const unsigned char *)p, n, out);
	return out;
}

static void
test_b64(void **st)
{
	unsigned char d[16];

	(void)st;
	assert_int_equal(mr_b64_decode("", 0, d, sizeof(d)), 0);
	assert_int_equal(mr_b64_decode("YQ==", 4, d, sizeof(d)), 1);
	assert_int_equal(d[0], 'a');
	assert_int_equal(mr_b64_decode("YWI=", 4, d, sizeof(d)), 2);
	assert_int_equal(mr_b64_decode("YWJj", 4, d, sizeof(d)), 3);
	assert_memory_equal(d, "abc", 3);
	assert_int_equal(mr_b64_decode("YWJjZA==", 8, d, sizeof(d)), 4);
	/* not a multiple of 4, bad bytes, padding inside, whitespace */
	assert_int_equal(mr_b64_decode("YWJ", 3, d, sizeof(d)), -1);
	assert_int_equal(mr_b64_decode("YW!j", 4, d, sizeof(d)), -1);
	assert_int_equal(mr_b64_decode("YQ==YWJj", 8, d, sizeof(d)), -1);
	assert_int_equal(mr_b64_decode("Y=Jj", 4, d, sizeof(d)), -1);
	assert_int_equal(mr_b64_decode("====", 4, d, sizeof(d)), -1);
	assert_int_equal(mr_b64_decode("YW j", 4, d, sizeof(d)), -1);
	/* longer than the buffer: refused, not truncated */
	assert_int_equal(mr_b64_decode("YWJjZA==", 8, d, 3), -1);
	assert_int_equal(mr_b64_decode("YWJj", 4, d, 3), 3);
	assert_string_equal(enc("abcd", 4), "YWJjZA==");
	assert_string_equal(enc("ab", 2), "YWI=");
}

static void
test_plain_ir(void **st)
{
	struct mr_sasl s;
	const char *ch;
	char arg[2100];

	(void)st;
	snprintf(arg, sizeof(arg), "PLAIN %s", enc("\0bob\0secret", 11));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_DONE);
	assert_string_equal(s.user, "bob");
	assert_string_equal(s.pass, "secret");
	/* the authzid may be the user itself */
	snprintf(arg, sizeof(arg), "plain %s", enc("bob\0bob\0pw", 10));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_DONE);
	/* but not someone else */
	snprintf(arg, sizeof(arg), "PLAIN %s", enc("root\0bob\0pw", 11));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_DENY);
	assert_int_equal(s.pass[0], '\0');	/* wiped */
	/* three NULs, no password, no user, no NUL */
	snprintf(arg, sizeof(arg), "PLAIN %s", enc("\0bob\0p\0w", 9));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_BAD);
	snprintf(arg, sizeof(arg), "PLAIN %s", enc("\0bob\0", 5));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_BAD);
	snprintf(arg, sizeof(arg), "PLAIN %s", enc("\0\0pw", 4));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_BAD);
	snprintf(arg, sizeof(arg), "PLAIN %s", enc("bobpw", 5));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_BAD);
	/* a control byte in the user name */
	snprintf(arg, sizeof(arg), "PLAIN %s", enc("\0b\rb\0pw", 7));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_BAD);
	/* "=" is an empty response: no fields */
	assert_int_equal(mr_sasl_begin(&s, "PLAIN =", 1, 1, &ch), MR_SASL_BAD);
	assert_int_equal(mr_sasl_begin(&s, "PLAIN !!!!", 1, 1, &ch),
	    MR_SASL_BAD);
	assert_int_equal(mr_sasl_begin(&s, "PLAIN a b", 1, 1, &ch),
	    MR_SASL_SYNTAX);
}

static void
test_plain_steps(void **st)
{
	struct mr_sasl s;
	const char *ch, *r;

	(void)st;
	assert_int_equal(mr_sasl_begin(&s, "PLAIN", 1, 1, &ch),
	    MR_SASL_CONTINUE);
	assert_string_equal(ch, "");
	r = enc("\0alice\0pa ss", 12);
	assert_int_equal(mr_sasl_step(&s, r, strlen(r), &ch), MR_SASL_DONE);
	assert_string_equal(s.user, "alice");
	assert_string_equal(s.pass, "pa ss");
	assert_int_equal(mr_sasl_begin(&s, "PLAIN", 1, 1, &ch),
	    MR_SASL_CONTINUE);
	assert_int_equal(mr_sasl_step(&s, "*", 1, &ch), MR_SASL_CANCEL);
}

static void
test_login(void **st)
{
	struct mr_sasl s;
	const char *ch, *r;

	(void)st;
	assert_int_equal(mr_sasl_begin(&s, "LOGIN", 1, 1, &ch),
	    MR_SASL_CONTINUE);
	assert_string_equal(ch, "VXNlcm5hbWU6");
	r = enc("bob", 3);
	assert_int_equal(mr_sasl_step(&s, r, strlen(r), &ch),
	    MR_SASL_CONTINUE);
	assert_string_equal(ch, "UGFzc3dvcmQ6");
	r = enc("secret", 6);
	assert_int_equal(mr_sasl_step(&s, r, strlen(r), &ch), MR_SASL_DONE);
	assert_string_equal(s.user, "bob");
	assert_string_equal(s.pass, "secret");
	/* an initial response is the user name */
	assert_int_equal(mr_sasl_begin(&s, "LOGIN Ym9i", 1, 1, &ch),
	    MR_SASL_CONTINUE);
	assert_string_equal(ch, "UGFzc3dvcmQ6");
	assert_int_equal(mr_sasl_step(&s, "*", 1, &ch), MR_SASL_CANCEL);
	/* empty user, empty password, bad base64 */
	assert_int_equal(mr_sasl_begin(&s, "LOGIN", 1, 1, &ch),
	    MR_SASL_CONTINUE);
	assert_int_equal(mr_sasl_step(&s, "", 0, &ch), MR_SASL_BAD);
	assert_int_equal(mr_sasl_begin(&s, "LOGIN Ym9i", 1, 1, &ch),
	    MR_SASL_CONTINUE);
	assert_int_equal(mr_sasl_step(&s, "", 0, &ch), MR_SASL_BAD);
	assert_int_equal(mr_sasl_begin(&s, "LOGIN", 1, 1, &ch),
	    MR_SASL_CONTINUE);
	assert_int_equal(mr_sasl_step(&s, "Ym9", 3, &ch), MR_SASL_BAD);
}

static void
test_mechs(void **st)
{
	struct mr_sasl s;
	const char *ch;

	(void)st;
	assert_int_equal(mr_sasl_begin(&s, "", 1, 1, &ch), MR_SASL_SYNTAX);
	assert_int_equal(mr_sasl_begin(&s, "CRAM-MD5", 1, 1, &ch),
	    MR_SASL_NOMECH);
	assert_int_equal(mr_sasl_begin(&s, "PLAIN", 0, 1, &ch),
	    MR_SASL_NOMECH);
	assert_int_equal(mr_sasl_begin(&s, "LOGIN", 1, 0, &ch),
	    MR_SASL_NOMECH);
	assert_int_equal(mr_sasl_begin(&s, "PLAINX", 1, 1, &ch),
	    MR_SASL_NOMECH);
}

static void
test_limits(void **st)
{
	char user[300], resp[700], arg[2100];
	struct mr_sasl s;
	const char *ch;
	size_t n;

	(void)st;
	/* a user of 255 bytes passes, 256 does not */
	memset(user, 'u', sizeof(user));
	resp[0] = '\0';
	memcpy(resp + 1, user, 255);
	resp[256] = '\0';
	memcpy(resp + 257, "pw", 2);
	n = 259;
	snprintf(arg, sizeof(arg), "PLAIN %s", enc(resp, n));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_DONE);
	assert_int_equal(strlen(s.user), 255);
	memcpy(resp + 1, user, 256);
	resp[257] = '\0';
	memcpy(resp + 258, "pw", 2);
	snprintf(arg, sizeof(arg), "PLAIN %s", enc(resp, 260));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_BAD);
	/* a response longer than any valid one */
	memset(resp, 'x', sizeof(resp));
	snprintf(arg, sizeof(arg), "PLAIN %s", enc(resp, sizeof(resp)));
	assert_int_equal(mr_sasl_begin(&s, arg, 1, 1, &ch), MR_SASL_BAD);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_plain_ir),
		cmocka_unit_test(test_plain_steps),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_mechs),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests_name("sasl", tests, NULL, NULL);
}
