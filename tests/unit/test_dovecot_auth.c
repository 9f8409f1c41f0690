/*
 * test_dovecot_auth.c - the lines of Dovecot's authentication client
 * protocol (common/dovecot_auth.c): the handshake a real Dovecot 2.3
 * sends, the answers to AUTH, and the malformed lines that must never
 * grant.
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

#include "dovecot_auth.h"

static enum mr_dva_step
hs_feed(struct mr_dva_hs *hs, const char *const *lines)
{
	enum mr_dva_step st = MR_DVA_MORE;

	for (; *lines != NULL && st == MR_DVA_MORE; lines++)
		st = mr_dva_handshake(hs, *lines, strlen(*lines));
	return st;
}

static void
test_handshake_real(void **st)
{
	/* as Dovecot 2.3.19 sends it */
	static const char *const lines[] = {
		"VERSION\t1\t2", "MECH\tPLAIN\tplaintext",
		"MECH\tLOGIN\tplaintext", "SPID\t4242", "CUID\t7",
		"COOKIE\t0123456789abcdef0123456789abcdef", "DONE", NULL
	};
	struct mr_dva_hs hs = { 0 };

	(void)st;
	assert_int_equal(hs_feed(&hs, lines), MR_DVA_READY);
	assert_true(hs.plain);
}

static void
test_handshake_refused(void **st)
{
	static const char *const v2[] = { "VERSION\t2\t0", NULL };
	static const char *const noplain[] = {
		"VERSION\t1\t2", "MECH\tLOGIN", "DONE", NULL };
	static const char *const noversion[] = { "SPID\t1", NULL };
	static const char *const early[] = { "DONE", NULL };
	static const char *const twice[] = {
		"VERSION\t1\t2", "VERSION\t1\t2", NULL };
	static const char *const badnum[] = { "VERSION\t1x\t2", NULL };
	static const char *const okearly[] = {
		"VERSION\t1\t2", "OK\t1", NULL };
	static const char *const donex[] = {
		"VERSION\t1\t2", "MECH\tPLAIN", "DONE\tx", NULL };
	struct mr_dva_hs hs;

	(void)st;
#define REFUSED(l) do {							\
		memset(&hs, 0, sizeof(hs));				\
		assert_int_equal(hs_feed(&hs, l), MR_DVA_REFUSED);	\
	} while (0)
	REFUSED(v2);
	REFUSED(noplain);
	REFUSED(noversion);
	REFUSED(early);
	REFUSED(twice);
	REFUSED(badnum);
	REFUSED(okearly);
	REFUSED(donex);
#undef REFUSED
	/* a newer minor version is compatible */
	memset(&hs, 0, sizeof(hs));
	assert_int_equal(mr_dva_handshake(&hs, "VERSION\t1\t3", 11),
	    MR_DVA_MORE);
}

#define ANS(id, s)	mr_dva_answer(id, s, strlen(s))

static void
test_answer(void **st)
{
	(void)st;
	assert_int_equal(ANS(1, "OK\t1\tuser=alice"), MR_DVA_GRANTED);
	assert_int_equal(ANS(1, "OK\t1"), MR_DVA_GRANTED);
	assert_int_equal(ANS(1, "FAIL\t1\tuser=alice"), MR_DVA_DENIED);
	assert_int_equal(ANS(1, "FAIL\t1\tuser=alice\ttemp"),
	    MR_DVA_TEMPFAIL);
	assert_int_equal(ANS(1, "CONT\t1\t"), MR_DVA_DENIED);
	/* another id's answer, or a malformed one, never grants */
	assert_int_equal(ANS(1, "OK\t2"), MR_DVA_REFUSED);
	assert_int_equal(ANS(1, "OK\t01x"), MR_DVA_REFUSED);
	/* the id as the very digits sent: no leading zero (fuzz_dovecot) */
	assert_int_equal(ANS(1, "OK\t01\tuser=alice"), MR_DVA_REFUSED);
	assert_int_equal(ANS(1, "OK"), MR_DVA_REFUSED);
	assert_int_equal(ANS(1, "OK\t"), MR_DVA_REFUSED);
	assert_int_equal(ANS(1, "OK\t1234567890"), MR_DVA_REFUSED);
	assert_int_equal(ANS(1, "ok\t1"), MR_DVA_MORE);
	assert_int_equal(ANS(1, ""), MR_DVA_REFUSED);
	assert_int_equal(ANS(1, "DONE"), MR_DVA_REFUSED);
	assert_int_equal(mr_dva_answer(1, "OK\t1\0", 5), MR_DVA_REFUSED);
	/* other commands are skipped */
	assert_int_equal(ANS(1, "NOTICE\tsomething"), MR_DVA_MORE);
}

static void
test_line_bound(void **st)
{
	static char big[MR_DVA_LINE_MAX + 2];
	struct mr_dva_line l;

	(void)st;
	memset(big, 'x', sizeof(big));
	memcpy(big, "OK\t1\t", 5);
	mr_dva_parse(big, MR_DVA_LINE_MAX, &l);
	assert_int_equal(l.kind, MR_DVA_OK);
	mr_dva_parse(big, MR_DVA_LINE_MAX + 1, &l);
	assert_int_equal(l.kind, MR_DVA_BAD);
}

static void
test_request(void **st)
{
	char out[MR_DVA_REQ_MAX], user[MR_SASL_USER_MAX + 2];
	char pass[MR_SASL_PASS_MAX + 1];
	int n;

	(void)st;
	/* base64("\0alice\0pw") */
	n = mr_dva_request(out, sizeof(out), 1, "alice", "pw", 1);
	assert_int_equal(n, (int)strlen(out));
	assert_string_equal(out, "AUTH\t1\tPLAIN\tservice=smtp\tnologin\t"
	    "secured\tresp=AGFsaWNlAHB3\n");
	mr_dva_request(out, sizeof(out), 7, "alice", "pw", 0);
	assert_string_equal(out, "AUTH\t7\tPLAIN\tservice=smtp\tnologin\t"
	    "resp=AGFsaWNlAHB3\n");
	assert_int_equal(mr_dva_request(out, sizeof(out), 1, "", "pw", 0),
	    -1);
	assert_int_equal(mr_dva_request(out, sizeof(out), 1, "a", "", 0),
	    -1);
	memset(user, 'u', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	assert_int_equal(mr_dva_request(out, sizeof(out), 1, user, "p", 0),
	    -1);
	/* the longest fits */
	user[MR_SASL_USER_MAX] = '\0';
	memset(pass, 'p', sizeof(pass) - 1);
	pass[sizeof(pass) - 1] = '\0';
	assert_true(mr_dva_request(out, sizeof(out), 4294967295UL, user,
	    pass, 1) > 0);
	assert_int_equal(mr_dva_request(out, 20, 1, "a", "b", 0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_real),
		cmocka_unit_test(test_handshake_refused),
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_line_bound),
		cmocka_unit_test(test_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
