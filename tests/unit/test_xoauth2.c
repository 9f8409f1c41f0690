/*
 * test_xoauth2.c - the XOAUTH2 client (common/xoauth2.c): the token from
 * its file's bytes, the initial response against Google's documented
 * example, and the meaning of the server's replies, the RFC 7628 error
 * challenge included.
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

#include "xoauth2.h"

static char tok[MR_XOAUTH2_TOKEN_MAX + 1];

static enum mr_xoauth2_token_err
parse(const char *s)
{
	return mr_xoauth2_token(s, strlen(s), tok);
}

static void
test_token_first_line(void **st)
{
	(void)st;
	assert_int_equal(parse("ya29.abc\n"), MR_XOAUTH2_TOKEN_OK);
	assert_string_equal(tok, "ya29.abc");
	assert_int_equal(parse("ya29.abc \t\r\nsecond line\n"),
	    MR_XOAUTH2_TOKEN_OK);
	assert_string_equal(tok, "ya29.abc");
	assert_int_equal(parse("eyJ0eXAi.eyJhdWQi.sig-_~+/=="),
	    MR_XOAUTH2_TOKEN_OK);
	assert_string_equal(tok, "eyJ0eXAi.eyJhdWQi.sig-_~+/==");
}

static void
test_token_refused(void **st)
{
	static char big[MR_XOAUTH2_TOKEN_MAX + 3];

	(void)st;
	assert_int_equal(parse(""), MR_XOAUTH2_TOKEN_EMPTY);
	assert_int_equal(parse(" \r\ntoken\n"), MR_XOAUTH2_TOKEN_EMPTY);
	assert_string_equal(tok, "");
	assert_int_equal(parse("to ken"), MR_XOAUTH2_TOKEN_BADCHAR);
	assert_int_equal(parse("tok\001en"), MR_XOAUTH2_TOKEN_BADCHAR);
	assert_int_equal(parse("tok\ren"), MR_XOAUTH2_TOKEN_BADCHAR);
	assert_int_equal(parse("t\xc3\xa9"), MR_XOAUTH2_TOKEN_BADCHAR);
	assert_int_equal(mr_xoauth2_token("tok\0en", 6, tok),
	    MR_XOAUTH2_TOKEN_BADCHAR);
	assert_string_equal(tok, "");
	memset(big, 'a', MR_XOAUTH2_TOKEN_MAX);
	assert_int_equal(parse(big), MR_XOAUTH2_TOKEN_OK);
	big[MR_XOAUTH2_TOKEN_MAX] = 'a';
	assert_int_equal(parse(big), MR_XOAUTH2_TOKEN_LONG);
	assert_string_equal(tok, "");
}

static void
test_initial_google_example(void **st)
{
	char out[MR_XOAUTH2_RESP_MAX];

	(void)st;
	/* developers.google.com/gmail/imap/xoauth2-protocol */
	assert_int_equal(mr_xoauth2_initial("someuser@example.com",
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", out), 0);
	assert_string_equal(out, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRo"
	    "PUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRX"
	    "VZMjl0Q2cBAQ==");
}

static void
test_initial_refused(void **st)
{
	static char user[MR_XOAUTH2_USER_MAX + 2];
	static char big[MR_XOAUTH2_TOKEN_MAX + 2];
	char out[MR_XOAUTH2_RESP_MAX];

	(void)st;
	assert_int_equal(mr_xoauth2_initial("", "tok", out), -1);
	assert_int_equal(mr_xoauth2_initial("a\001b", "tok", out), -1);
	assert_int_equal(mr_xoauth2_initial("u", "", out), -1);
	assert_int_equal(mr_xoauth2_initial("u", "to\001k", out), -1);
	memset(user, 'u', MR_XOAUTH2_USER_MAX);
	memset(big, 't', MR_XOAUTH2_TOKEN_MAX);
	assert_int_equal(mr_xoauth2_initial(user, big, out), 0);
	assert_true(strlen(out) < sizeof(out));
	user[MR_XOAUTH2_USER_MAX] = 'u';
	assert_int_equal(mr_xoauth2_initial(user, big, out), -1);
	big[MR_XOAUTH2_TOKEN_MAX] = 't';
	assert_int_equal(mr_xoauth2_initial("u", big, out), -1);
}

static void
test_reply(void **st)
{
	char status[MR_XOAUTH2_STATUS_MAX + 1];

	(void)st;
	assert_int_equal(mr_xoauth2_reply(235, "2.7.0 Accepted", status),
	    MR_XOAUTH2_OK);
	assert_int_equal(mr_xoauth2_reply(535, "5.7.8 Username and "
	    "Password not accepted", status), MR_XOAUTH2_REFUSED);
	assert_int_equal(mr_xoauth2_reply(454, "4.7.0 Try later", status),
	    MR_XOAUTH2_FAILED);
	assert_int_equal(mr_xoauth2_reply(504, "", status),
	    MR_XOAUTH2_FAILED);
	/* {"status":"401","schemes":"bearer","scope":"https://..."} */
	assert_int_equal(mr_xoauth2_reply(334, "eyJzdGF0dXMiOiI0MDEiLCJzY2hl"
	    "bWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8i"
	    "fQ==", status), MR_XOAUTH2_CHALLENGE);
	assert_string_equal(status, "401");
	/* not base64, or no status: still a challenge, no status */
	assert_int_equal(mr_xoauth2_reply(334, "not base64!", status),
	    MR_XOAUTH2_CHALLENGE);
	assert_string_equal(status, "");
	/* {"status":"4\u0030"} : an escape is not copied */
	assert_int_equal(mr_xoauth2_reply(334, "eyJzdGF0dXMiOiI0XHUwMDMwIn0=",
	    status), MR_XOAUTH2_CHALLENGE);
	assert_string_equal(status, "");
	/* {"status":"401 : unterminated */
	assert_int_equal(mr_xoauth2_reply(334, "eyJzdGF0dXMiOiI0MDE=",
	    status), MR_XOAUTH2_CHALLENGE);
	assert_string_equal(status, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_first_line),
		cmocka_unit_test(test_token_refused),
		cmocka_unit_test(test_initial_google_example),
		cmocka_unit_test(test_initial_refused),
		cmocka_unit_test(test_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
