/*
 * test_mta_sts.c - MTA-STS as text (common/mta_sts_parse.c): the
 * _mta-sts TXT record (RFC 8461 3.1), the policy file (3.2) with RFC
 * 8461's own example, and MX matching with wildcards (4.1).
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

#include "mta_sts_parse.h"

static char id[MTA_STS_ID_MAX + 1];
static struct mta_sts_policy pol;
static const char *err;

static int
txt(const char *s)
{
	return mta_sts_txt_parse(s, strlen(s), id);
}

static int
parse(const char *s)
{
	return mta_sts_policy_parse(s, strlen(s), &pol, &err);
}

static void
test_txt_valid(void **st)
{
	(void)st;
	assert_int_equal(txt("v=STSv1; id=20160831085700Z;"), 1);
	assert_string_equal(id, "20160831085700Z");
	assert_int_equal(txt("v=STSv1;id=abc"), 1);
	assert_string_equal(id, "abc");
	assert_int_equal(txt("v=STSv1 ; ext=x; id=A1 "), 1);
	assert_string_equal(id, "A1");
	/* 32 characters is the limit */
	assert_int_equal(txt("v=STSv1; id=0123456789abcdef0123456789abcdef"),
	    1);
}

static void
test_txt_refused(void **st)
{
	(void)st;
	/* not STSv1: discarded (0) */
	assert_int_equal(txt("v=spf1 -all"), 0);
	assert_int_equal(txt("V=STSv1; id=1"), 0);
	assert_int_equal(txt(""), 0);
	/* STSv1 but malformed (-1) */
	assert_int_equal(txt("v=STSv1"), -1);
	assert_int_equal(txt("v=STSv1;"), -1);
	assert_int_equal(txt("v=STSv10; id=1"), -1);
	assert_int_equal(txt("v=STSv1; id="), -1);
	assert_int_equal(txt("v=STSv1; id=a-b"), -1);
	/* a valid id before the fault is no id (found by fuzz_mta_sts) */
	assert_int_equal(txt("v=STSv1; id=abc;\xf7"), -1);
	assert_string_equal(id, "");
	assert_int_equal(txt("v=STSv1; id=0123456789abcdef0123456789abcdef0"),
	    -1);
	assert_int_equal(mta_sts_txt_parse("v=STSv1; id=1\0x", 15, id), -1);
	assert_string_equal(id, "");
}

static void
test_policy_rfc_example(void **st)
{
	(void)st;
	/* RFC 8461 3.2 */
	assert_int_equal(parse("version: STSv1\r\nmode: enforce\r\n"
	    "mx: mail.example.com\r\nmx: *.example.net\r\n"
	    "mx: backupmx.example.com\r\nmax_age: 604800\r\n"), 0);
	assert_null(err);
	assert_int_equal(pol.mode, MTA_STS_ENFORCE);
	assert_int_equal(pol.max_age, 604800);
	assert_int_equal(pol.nmx, 3);
	assert_string_equal(pol.mx[1], "*.example.net");
}

static void
test_policy_variants(void **st)
{
	(void)st;
	/* LF alone, blanks after the colon, unknown keys, any order */
	assert_int_equal(parse("mode:testing\nmx:  MX.Example.COM \n"
	    "ext_key: whatever value\nversion: STSv1\nmax_age: 86400"), 0);
	assert_int_equal(pol.mode, MTA_STS_TESTING);
	assert_string_equal(pol.mx[0], "mx.example.com");
	/* none needs no mx; max_age is capped at a year */
	assert_int_equal(parse("version: STSv1\nmode: none\n"
	    "max_age: 9999999999\n"), 0);
	assert_int_equal(pol.mode, MTA_STS_NONE);
	assert_int_equal(pol.max_age, MTA_STS_MAX_AGE_MAX);
	/* the first of a repeated field counts */
	assert_int_equal(parse("version: STSv1\nmode: enforce\nmode: none\n"
	    "mx: a.b\nmax_age: 1\nmax_age: 2\n"), 0);
	assert_int_equal(pol.mode, MTA_STS_ENFORCE);
	assert_int_equal(pol.max_age, 1);
}

static void
test_policy_refused(void **st)
{
	static const char *const bad[] = {
		"mode: enforce\nmx: a.b\nmax_age: 1\n",
		"version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n",
		"version: STSv1\nmx: a.b\nmax_age: 1\n",
		"version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.b\n",
		"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n",
		"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 12345678901\n",
		"version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: -a.b\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a_b.c\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx a.b\nmax_age: 1\n",
		"<html>version: STSv1</html>",
	};
	static const char nul[] = "version: STSv1\nmode: none\nmax_age: 1\n"
	    "\0x: y\n";
	size_t i;

	(void)st;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i]), -1);
		assert_non_null(err);
		assert_int_equal(pol.nmx, 0);
	}
	/* a NUL inside is malformed, not an end */
	assert_int_equal(mta_sts_policy_parse(nul, sizeof(nul) - 1, &pol,
	    &err), -1);
}

static void
test_mx_match(void **st)
{
	(void)st;
	assert_int_equal(parse("version: STSv1\nmode: enforce\n"
	    "mx: mail.example.com\nmx: *.example.net\nmax_age: 1\n"), 0);
	assert_true(mta_sts_mx_match(&pol, "mail.example.com"));
	assert_true(mta_sts_mx_match(&pol, "MAIL.Example.com."));
	assert_false(mta_sts_mx_match(&pol, "mail.example.com.evil"));
	assert_false(mta_sts_mx_match(&pol, "xmail.example.com"));
	/* RFC 8461 4.1: the wildcard covers one leftmost label only */
	assert_true(mta_sts_mx_match(&pol, "mx1.example.net"));
	assert_false(mta_sts_mx_match(&pol, "example.net"));
	assert_false(mta_sts_mx_match(&pol, "a.mx1.example.net"));
	assert_false(mta_sts_mx_match(&pol, ".example.net"));
	assert_false(mta_sts_mx_match(&pol, ""));
	assert_string_equal(mta_sts_mode_name(pol.mode), "enforce");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_valid),
		cmocka_unit_test(test_txt_refused),
		cmocka_unit_test(test_policy_rfc_example),
		cmocka_unit_test(test_policy_variants),
		cmocka_unit_test(test_policy_refused),
		cmocka_unit_test(test_mx_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
