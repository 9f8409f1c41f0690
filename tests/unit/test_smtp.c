/*
 * test_smtp.c - table-driven tests for the SMTP command parser
 * (smtp_cmd.c) and the DATA stream machine (dstream.c).
 *
 * Both take bytes straight from a network client, so every row here is
 * an input a client can send.  Each row of a table becomes one cmocka
 * test named after it.  A command line is passed as (pointer, length)
 * with a NUL at the length, as smtpd passes it, so a row can hold a NUL
 * inside the line.  A DATA stream row is fed whole, one byte at a time,
 * and split at every position into two and three feeds: the state must
 * carry across calls and every feeding must emit the same bytes, consume
 * the same count and end (or not end) the data alike.
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

#include "dstream.h"
#include "smtp_cmd.h"

/* ---- mr_smtp_parse ---- */

#define ESMTP	1
#define SMTP	0

struct ccase {
	const char	*name;
	const char	*line;
	size_t		 len;		/* 0: strlen(line) */
	int		 esmtp;
	int		 code;		/* 0: valid */
	const char	*status;	/* expected enhanced status if code */
	enum mr_verb	 verb;		/* checked when valid */
	const char	*addr;		/* path.addr; NULL: not checked */
	const char	*domain;
};

#define OKV(n, l, v)		{ n, l, 0, SMTP, 0, NULL, v, NULL, NULL }
#define OKE(n, l, v)		{ n, l, 0, ESMTP, 0, NULL, v, NULL, NULL }
#define OKP(n, l, e, v, a, d)	{ n, l, 0, e, 0, NULL, v, a, d }
#define BAD(n, l, e, c, s)	{ n, l, 0, e, c, s, MR_V_UNKNOWN, NULL, NULL }
#define BADN(n, l, c, s)	{ n, l, sizeof(l) - 1, ESMTP, c, s, \
				    MR_V_UNKNOWN, NULL, NULL }

static const struct ccase cmds[] = {
	/* every verb */
	OKV("verb EHLO", "EHLO client.example", MR_V_EHLO),
	OKV("verb HELO", "HELO client.example", MR_V_HELO),
	OKP("verb MAIL", "MAIL FROM:<a@b.example>", SMTP, MR_V_MAIL,
	    "a@b.example", "b.example"),
	OKP("verb RCPT", "RCPT TO:<c@d.example>", SMTP, MR_V_RCPT,
	    "c@d.example", "d.example"),
	OKV("verb DATA", "DATA", MR_V_DATA),
	OKV("verb RSET", "RSET", MR_V_RSET),
	OKV("verb NOOP", "NOOP", MR_V_NOOP),
	OKV("verb QUIT", "QUIT", MR_V_QUIT),
	OKV("verb VRFY", "VRFY user", MR_V_VRFY),
	OKV("verb HELP", "HELP", MR_V_HELP),
	OKV("verb STARTTLS", "STARTTLS", MR_V_STARTTLS),
	OKV("verb AUTH", "AUTH PLAIN", MR_V_AUTH),
	OKV("verb ETRN", "ETRN example.com", MR_V_ETRN),

	/* case-insensitive verbs and keywords */
	OKV("lower-case ehlo", "ehlo client.example", MR_V_EHLO),
	OKV("mixed-case HeLo", "HeLo client.example", MR_V_HELO),
	OKP("lower-case mail from", "mail from:<a@b.example>", SMTP,
	    MR_V_MAIL, "a@b.example", "b.example"),
	OKP("mixed-case rCpT tO", "rCpT tO:<a@b.example>", SMTP, MR_V_RCPT,
	    "a@b.example", "b.example"),
	OKV("lower-case data", "data", MR_V_DATA),
	OKV("lower-case quit", "quit", MR_V_QUIT),
	OKV("lower-case starttls", "starttls", MR_V_STARTTLS),
	OKV("trailing spaces after DATA", "DATA   ", MR_V_DATA),
	OKV("NOOP takes a string", "NOOP anything at all", MR_V_NOOP),

	/* HELO / EHLO argument */
	BAD("HELO without argument", "HELO", SMTP, 501, "5.5.4"),
	BAD("EHLO without argument", "EHLO", SMTP, 501, "5.5.4"),
	BAD("EHLO with a space only", "EHLO ", SMTP, 501, "5.5.4"),
	BAD("HELO with two words", "HELO a.example b.example", SMTP, 501,
	    "5.5.4"),
	BAD("EHLO with a trailing space", "EHLO a.example ", SMTP, 501,
	    "5.5.4"),
	BAD("EHLO with a tab inside", "EHLO a\tb", SMTP, 501, "5.5.4"),
	OKV("EHLO address literal", "EHLO [192.0.2.1]", MR_V_EHLO),
	OKV("EHLO after two spaces", "EHLO  client.example", MR_V_EHLO),

	/* MAIL FROM */
	OKP("MAIL FROM: space after colon", "MAIL FROM: <a@b.example>", SMTP,
	    MR_V_MAIL, "a@b.example", "b.example"),
	OKP("MAIL FROM null sender", "MAIL FROM:<>", SMTP, MR_V_MAIL, "", ""),
	OKP("MAIL FROM null sender, space", "MAIL FROM: <>", SMTP, MR_V_MAIL,
	    "", ""),
	OKP("MAIL FROM trailing spaces", "MAIL FROM:<a@b.example>   ", SMTP,
	    MR_V_MAIL, "a@b.example", "b.example"),
	OKP("MAIL FROM domain lower-cased", "MAIL FROM:<Joe@B.Example>", SMTP,
	    MR_V_MAIL, "Joe@b.example", "b.example"),
	BAD("MAIL without FROM", "MAIL", SMTP, 501, "5.5.4"),
	BAD("MAIL TO: instead of FROM:", "MAIL TO:<a@b.example>", SMTP, 501,
	    "5.5.4"),
	BAD("MAIL FROM without colon", "MAIL FROM <a@b.example>", SMTP, 501,
	    "5.5.4"),
	/* without brackets, as IIS and Postfix take them */
	OKP("MAIL FROM without brackets", "MAIL FROM:a@b.example", SMTP,
	    MR_V_MAIL, "a@b.example", "b.example"),
	OKP("RCPT TO without brackets", "RCPT TO:c@D.example", SMTP,
	    MR_V_RCPT, "c@d.example", "d.example"),
	OKP("MAIL FROM without brackets, space, parameter",
	    "MAIL FROM: a@b.example SIZE=10", ESMTP, MR_V_MAIL, "a@b.example",
	    "b.example"),
	OKP("RCPT TO bare Postmaster", "RCPT TO:Postmaster", SMTP, MR_V_RCPT,
	    "postmaster", ""),
	BAD("MAIL FROM without brackets, closing one", "MAIL FROM:a@b.example>",
	    SMTP, 501, "5.1.7"),
	BAD("RCPT TO without brackets, two @", "RCPT TO:a@b@c.example", SMTP,
	    501, "5.1.3"),
	BAD("RCPT TO without brackets, no domain", "RCPT TO:user", SMTP, 501,
	    "5.1.3"),
	OKV("EXPN is a verb", "EXPN list", MR_V_EXPN),
	OKV("TURN is a verb", "TURN", MR_V_TURN),
	BAD("MAIL FROM empty", "MAIL FROM:", SMTP, 501, "5.1.7"),
	BAD("MAIL FROM <postmaster> is no sender", "MAIL FROM:<postmaster>",
	    SMTP, 501, "5.1.7"),
	/* the path parser itself wants a space or the end after '>' */
	BAD("MAIL FROM junk after path", "MAIL FROM:<a@b.example>x", ESMTP,
	    501, "5.1.7"),
	BAD("MAIL FROM parameter glued to path",
	    "MAIL FROM:<a@b.example>SIZE=10", ESMTP, 501, "5.1.7"),
	BAD("RCPT TO parameter glued to path",
	    "RCPT TO:<a@b.example>NOTIFY=NEVER", ESMTP, 501, "5.1.3"),
	BAD("MAIL FROM unclosed bracket", "MAIL FROM:<a@b.example", SMTP, 501,
	    "5.1.7"),

	/* MAIL parameters */
	BAD("SIZE not a number", "MAIL FROM:<a@b.example> SIZE=abc", ESMTP,
	    501, "5.5.4"),
	BAD("SIZE negative", "MAIL FROM:<a@b.example> SIZE=-1", ESMTP, 501,
	    "5.5.4"),
	BAD("SIZE with trailing junk", "MAIL FROM:<a@b.example> SIZE=12k",
	    ESMTP, 501, "5.5.4"),
	BAD("SIZE twice", "MAIL FROM:<a@b.example> SIZE=1 SIZE=2", ESMTP, 501,
	    "5.5.4"),
	BAD("SIZE of 20 digits", "MAIL FROM:<a@b.example> "
	    "SIZE=18446744073709551616", ESMTP, 501, "5.5.4"),
	BAD("SIZE of 40 digits", "MAIL FROM:<a@b.example> "
	    "SIZE=9999999999999999999999999999999999999999", ESMTP, 501,
	    "5.5.4"),
	BAD("BODY=BINARYMIME unsupported",
	    "MAIL FROM:<a@b.example> BODY=BINARYMIME", ESMTP, 555, "5.5.4"),
	BAD("BODY= empty", "MAIL FROM:<a@b.example> BODY=", ESMTP, 555,
	    "5.5.4"),
	BAD("unknown MAIL parameter", "MAIL FROM:<a@b.example> FOO=bar",
	    ESMTP, 555, "5.5.4"),
	OKP("AUTH= accepted (RFC 4954 5)", "MAIL FROM:<a@b.example> AUTH=<>",
	    ESMTP, MR_V_MAIL, "a@b.example", "b.example"),
	BAD("unknown after a good one",
	    "MAIL FROM:<a@b.example> SIZE=10 XRET=HDRS", ESMTP, 555, "5.5.4"),
	/* DSN (RFC 3461 4.3, 4.4): parsed here, refused by smtpd where
	 * DSN is not offered */
	OKE("RET=HDRS", "MAIL FROM:<a@b.example> SIZE=10 RET=HDRS", MR_V_MAIL),
	OKE("RET=full ENVID", "MAIL FROM:<a@b.example> RET=full "
	    "ENVID=QQ+2B1+3D2", MR_V_MAIL),
	BAD("RET=ALL", "MAIL FROM:<a@b.example> RET=ALL", ESMTP, 501,
	    "5.5.4"),
	BAD("RET twice", "MAIL FROM:<a@b.example> RET=FULL RET=HDRS", ESMTP,
	    501, "5.5.4"),
	BAD("RET without EHLO", "MAIL FROM:<a@b.example> RET=FULL", SMTP,
	    555, "5.5.4"),
	BAD("ENVID empty", "MAIL FROM:<a@b.example> ENVID=", ESMTP, 501,
	    "5.5.4"),
	BAD("ENVID with =", "MAIL FROM:<a@b.example> ENVID=a=b", ESMTP, 501,
	    "5.5.4"),
	BAD("ENVID bad hexchar", "MAIL FROM:<a@b.example> ENVID=a+2b", ESMTP,
	    501, "5.5.4"),
	BAD("ENVID short hexchar", "MAIL FROM:<a@b.example> ENVID=a+2", ESMTP,
	    501, "5.5.4"),
	BAD("ENVID 8-bit", "MAIL FROM:<a@b.example> ENVID=\xc3\xa9", ESMTP,
	    501, "5.5.4"),
	BAD("ENVID over 100", "MAIL FROM:<a@b.example> ENVID="
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "456789012345678901234567890123456789X", ESMTP, 501, "5.5.4"),
	BAD("ENVID twice", "MAIL FROM:<a@b.example> ENVID=a ENVID=b", ESMTP,
	    501, "5.5.4"),
	BAD("NOTIFY on MAIL", "MAIL FROM:<a@b.example> NOTIFY=NEVER", ESMTP,
	    555, "5.5.4"),
	BAD("SIZE without EHLO", "MAIL FROM:<a@b.example> SIZE=10", SMTP,
	    555, "5.5.4"),
	BAD("BODY without EHLO", "MAIL FROM:<a@b.example> BODY=8BITMIME",
	    SMTP, 555, "5.5.4"),

	/* RCPT TO */
	OKP("RCPT TO: space after colon", "RCPT TO: <a@b.example>", SMTP,
	    MR_V_RCPT, "a@b.example", "b.example"),
	BAD("RCPT null path", "RCPT TO:<>", SMTP, 501, "5.1.3"),
	BAD("RCPT FROM: instead of TO:", "RCPT FROM:<a@b.example>", SMTP, 501,
	    "5.5.4"),
	BAD("RCPT without TO", "RCPT", SMTP, 501, "5.5.4"),
	OKE("NOTIFY=NEVER", "RCPT TO:<a@b.example> NOTIFY=NEVER", MR_V_RCPT),
	OKE("NOTIFY list", "RCPT TO:<a@b.example> NOTIFY=delay,Success,FAILURE"
	    " ORCPT=rfc822;a+40b.example", MR_V_RCPT),
	BAD("NOTIFY NEVER and more", "RCPT TO:<a@b.example> "
	    "NOTIFY=NEVER,SUCCESS", ESMTP, 501, "5.5.4"),
	BAD("NOTIFY repeated word", "RCPT TO:<a@b.example> "
	    "NOTIFY=DELAY,DELAY", ESMTP, 501, "5.5.4"),
	BAD("NOTIFY empty word", "RCPT TO:<a@b.example> NOTIFY=SUCCESS,",
	    ESMTP, 501, "5.5.4"),
	BAD("NOTIFY empty", "RCPT TO:<a@b.example> NOTIFY=", ESMTP, 501,
	    "5.5.4"),
	BAD("NOTIFY unknown", "RCPT TO:<a@b.example> NOTIFY=ALWAYS", ESMTP,
	    501, "5.5.4"),
	BAD("NOTIFY twice", "RCPT TO:<a@b.example> NOTIFY=NEVER "
	    "NOTIFY=DELAY", ESMTP, 501, "5.5.4"),
	BAD("ORCPT without type", "RCPT TO:<a@b.example> ORCPT=a@b.example",
	    ESMTP, 501, "5.5.4"),
	BAD("ORCPT empty type", "RCPT TO:<a@b.example> ORCPT=;a@b.example",
	    ESMTP, 501, "5.5.4"),
	BAD("ORCPT empty address", "RCPT TO:<a@b.example> ORCPT=rfc822;",
	    ESMTP, 501, "5.5.4"),
	BAD("ORCPT bad type", "RCPT TO:<a@b.example> ORCPT=rf(c;a",
	    ESMTP, 501, "5.5.4"),
	BAD("ORCPT bad xtext", "RCPT TO:<a@b.example> ORCPT=rfc822;a=b",
	    ESMTP, 501, "5.5.4"),
	BAD("RCPT unknown parameter", "RCPT TO:<a@b.example> FOO=1",
	    ESMTP, 555, "5.5.4"),
	BAD("RCPT parameter without EHLO",
	    "RCPT TO:<a@b.example> ORCPT=rfc822;a@b.example", SMTP, 555,
	    "5.5.4"),
	BAD("RCPT SIZE= is no RCPT parameter", "RCPT TO:<a@b.example> SIZE=1",
	    ESMTP, 555, "5.5.4"),

	/* commands that take no argument */
	BAD("DATA with argument", "DATA now", SMTP, 501, "5.5.4"),
	BAD("RSET with argument", "RSET all", SMTP, 501, "5.5.4"),
	BAD("QUIT with argument", "QUIT now", SMTP, 501, "5.5.4"),
	BAD("STARTTLS with argument", "STARTTLS x", ESMTP, 501, "5.5.4"),

	/* control characters and NUL: the line is (ptr, len) */
	BADN("NUL after the verb", "NOOP\0x", 500, "5.5.2"),
	BADN("NUL inside MAIL FROM", "MAIL FROM:<a\0@b.example>", 500,
	    "5.5.2"),
	BADN("NUL before parameters", "MAIL FROM:<a@b.example>\0 SIZE=1",
	    500, "5.5.2"),
	BADN("NUL as the whole line", "\0", 500, "5.5.2"),
	BADN("NUL at the end", "QUIT\0", 500, "5.5.2"),
	BAD("CR inside a line", "NOOP\rQUIT", SMTP, 500, "5.5.2"),
	BAD("LF inside a line", "NOOP\nQUIT", SMTP, 500, "5.5.2"),
	BAD("ESC inside HELO", "HELO a\033b", SMTP, 500, "5.5.2"),
	BAD("control byte inside a path", "RCPT TO:<a\001@b.example>", SMTP,
	    500, "5.5.2"),
	BAD("DEL inside a path", "RCPT TO:<a\177@b.example>", SMTP, 501,
	    "5.1.3"),

	/* unknown verbs */
	BAD("unknown verb", "FOO bar", SMTP, 500, "5.5.2"),
	BAD("empty line", "", SMTP, 500, "5.5.2"),
	BAD("verb with a prefix", "XMAIL FROM:<a@b.example>", SMTP, 500,
	    "5.5.2"),
	BAD("verb glued to argument", "MAILFROM:<a@b.example>", SMTP, 500,
	    "5.5.2"),
	BAD("leading space", " NOOP", SMTP, 500, "5.5.2"),
	BAD("verb followed by tab", "NOOP\tx", SMTP, 500, "5.5.2"),
	BAD("truncated verb", "QUI", SMTP, 500, "5.5.2"),
	BAD("8-bit verb", "QU\311T", SMTP, 500, "5.5.2"),

	/*
	 * Open-relay tricks reach the parser as a local part at a domain;
	 * routing uses the domain alone (addr.h).
	 */
	OKP("percent hack is local", "RCPT TO:<user%remote.example@local.test>",
	    SMTP, MR_V_RCPT, "user%remote.example@local.test", "local.test"),
	OKP("bang path is local", "RCPT TO:<remote.example!user@local.test>",
	    SMTP, MR_V_RCPT, "remote.example!user@local.test", "local.test"),
	OKP("quoted a@b is local", "RCPT TO:<\"a@b\"@local.test>", SMTP,
	    MR_V_RCPT, "\"a@b\"@local.test", "local.test"),
	OKP("source route to local dropped",
	    "RCPT TO:<@local.test:user@remote.example>", SMTP, MR_V_RCPT,
	    "user@remote.example", "remote.example"),
	OKP("source route to remote dropped",
	    "RCPT TO:<@remote.example,@other.example:user@local.test>", SMTP,
	    MR_V_RCPT, "user@local.test", "local.test"),
	OKP("recipient domain lower-cased", "RCPT TO:<User@LOCAL.Test>", SMTP,
	    MR_V_RCPT, "User@local.test", "local.test"),
	BAD("quoted address, no domain", "RCPT TO:<\"user@remote.example\">",
	    SMTP, 501, "5.1.3"),
	BAD("two @", "RCPT TO:<user@remote.example@local.test>", SMTP, 501,
	    "5.1.3"),
	BAD("no local part", "RCPT TO:<@local.test>", SMTP, 501, "5.1.3"),
	BAD("space in the path", "RCPT TO:<user @local.test>", SMTP, 501,
	    "5.1.3"),
};

static void
check_cmd(void **state)
{
	const struct ccase *t = *state;
	struct mr_smtp_cmd c;
	size_t len = t->len ? t->len : strlen(t->line);
	char *line;
	int rc;

	/* a copy of exactly len bytes plus the NUL smtpd guarantees, so
	 * that the sanitizers catch a read past the line */
	line = malloc(len + 1);
	assert_non_null(line);
	memcpy(line, t->line, len);
	line[len] = '\0';
	memset(&c, 0xa5, sizeof(c));
	rc = mr_smtp_parse(line, len, t->esmtp, &c);
	if (t->code == 0) {
		if (rc != 0)
			print_error("unexpected %d %s %s\n", c.code,
			    c.status ? c.status : "-", c.text ? c.text : "-");
		assert_int_equal(rc, 0);
		assert_int_equal(c.code, 0);
		assert_int_equal(c.verb, t->verb);
		assert_non_null(c.arg);
		if (t->addr != NULL) {
			assert_string_equal(c.path.addr, t->addr);
			assert_non_null(c.path.domain);
			assert_string_equal(c.path.domain, t->domain);
		}
	} else {
		assert_int_equal(rc, t->code);
		assert_int_equal(c.code, t->code);
		assert_non_null(c.status);
		assert_string_equal(c.status, t->status);
		assert_non_null(c.text);
		assert_true(strlen(c.text) > 0);
		/* the text goes into a reply line as is */
		assert_null(strpbrk(c.text, "\r\n"));
	}
	free(line);
}

/* ---- mr_smtp_parse, cases that need more than a row ---- */

static int
parse(const char *line, int esmtp, struct mr_smtp_cmd *c)
{
	return mr_smtp_parse(line, strlen(line), esmtp, c);
}

static void
t_helo_arg(void **state)
{
	struct mr_smtp_cmd c;

	(void)state;
	assert_int_equal(parse("EHLO client.example", SMTP, &c), 0);
	assert_string_equal(c.arg, "client.example");
	assert_int_equal(parse("helo  [192.0.2.1]", SMTP, &c), 0);
	assert_string_equal(c.arg, "[192.0.2.1]");
	assert_int_equal(parse("VRFY  postmaster", SMTP, &c), 0);
	assert_string_equal(c.arg, "postmaster");
}

static void
t_helo_length(void **state)
{
	struct mr_smtp_cmd c;
	char line[5 + 300];

	(void)state;
	memcpy(line, "EHLO ", 5);
	memset(line + 5, 'a', 255);
	line[5 + 255] = '\0';
	assert_int_equal(parse(line, SMTP, &c), 0);
	assert_int_equal(strlen(c.arg), 255);
	memset(line + 5, 'a', 256);
	line[5 + 256] = '\0';
	assert_int_equal(parse(line, SMTP, &c), 501);
	assert_string_equal(c.status, "5.5.4");
}

static void
t_null_sender(void **state)
{
	struct mr_smtp_cmd c;

	(void)state;
	assert_int_equal(parse("MAIL FROM:<>", SMTP, &c), 0);
	assert_int_equal(c.path.null, 1);
	assert_string_equal(c.path.addr, "");
	assert_int_equal(c.has_size, 0);
	assert_int_equal(c.body, MR_BODY_NONE);
	assert_int_equal(parse("MAIL FROM:<> SIZE=0 BODY=7BIT", ESMTP, &c),
	    0);
	assert_int_equal(c.path.null, 1);
	assert_int_equal(c.has_size, 1);
	assert_true(c.size == 0);
	assert_int_equal(c.body, MR_BODY_7BIT);
}

static void
t_size_param(void **state)
{
	struct mr_smtp_cmd c;

	(void)state;
	assert_int_equal(parse("MAIL FROM:<a@b.example> SIZE=1000", ESMTP,
	    &c), 0);
	assert_int_equal(c.has_size, 1);
	assert_true(c.size == 1000);
	assert_int_equal(c.path.null, 0);
	assert_int_equal(parse("MAIL FROM:<a@b.example> size=12345", ESMTP,
	    &c), 0);
	assert_true(c.size == 12345);
	/* the largest that fits (19 digits) */
	assert_int_equal(parse("MAIL FROM:<a@b.example> "
	    "SIZE=9999999999999999999", ESMTP, &c), 0);
	assert_true(c.size == UINT64_C(9999999999999999999));
	/* leading zeros are digits too */
	assert_int_equal(parse("MAIL FROM:<a@b.example> "
	    "SIZE=0000000000000000042", ESMTP, &c), 0);
	assert_true(c.size == 42);
	/* an empty SIZE value is a bad parameter, never a size of 0 */
	assert_true(parse("MAIL FROM:<a@b.example> SIZE=", ESMTP, &c) >= 500);
	assert_int_equal(c.has_size, 0);
}

static void
t_body_param(void **state)
{
	struct mr_smtp_cmd c;

	(void)state;
	assert_int_equal(parse("MAIL FROM:<a@b.example> BODY=8BITMIME", ESMTP,
	    &c), 0);
	assert_int_equal(c.body, MR_BODY_8BITMIME);
	assert_int_equal(c.has_size, 0);
	assert_int_equal(parse("MAIL FROM:<a@b.example> body=7bit", ESMTP,
	    &c), 0);
	assert_int_equal(c.body, MR_BODY_7BIT);
	assert_int_equal(parse("MAIL FROM: <a@b.example>  BODY=8bitmime  "
	    "SIZE=7 ", ESMTP, &c), 0);
	assert_int_equal(c.body, MR_BODY_8BITMIME);
	assert_true(c.size == 7);
	assert_string_equal(c.path.addr, "a@b.example");
}

/* SMTPUTF8 (RFC 6531): UTF-8 in both parts of an address, kept byte for
 * byte; a UTF-8 sender without the parameter is 553 5.6.7; invalid UTF-8
 * is a syntax error. */
static void
t_smtputf8_param(void **state)
{
	static const char *const bad[] = {
		"MAIL FROM:<j\xc0\xafrg@b.example> SMTPUTF8",	/* overlong */
		"MAIL FROM:<j\xe0\x80\xaf@b.example> SMTPUTF8",
		"MAIL FROM:<j\xed\xa0\x80@b.example> SMTPUTF8", /* surrogate */
		"MAIL FROM:<j\xc2\x85@b.example> SMTPUTF8",	/* C1 (NEL) */
		"MAIL FROM:<j\xf4\x90\x80\x80@b.example> SMTPUTF8",
		"MAIL FROM:<j\xb6@b.example> SMTPUTF8",	/* lone trail */
		"MAIL FROM:<j\xc3@b.example> SMTPUTF8",	/* truncated */
		"RCPT TO:<a@\xff.example>",
	};
	struct mr_smtp_cmd c;
	size_t i;

	(void)state;
	assert_int_equal(parse("MAIL FROM:<j\xc3\xb6rg@B\xc3\xbc"
	    "cher.example> SMTPUTF8 BODY=8BITMIME", ESMTP, &c), 0);
	assert_true(c.smtputf8 && c.path.utf8);
	assert_string_equal(c.path.addr, "j\xc3\xb6rg@b\xc3\xbc"
	    "cher.example");
	assert_int_equal(parse("MAIL FROM:<a@b.example> smtputf8", ESMTP,
	    &c), 0);
	assert_true(c.smtputf8 && !c.path.utf8);
	assert_int_equal(parse("MAIL FROM:<j\xc3\xb6rg@b.example>", ESMTP,
	    &c), 553);
	assert_string_equal(c.status, "5.6.7");
	/* a recipient's transaction is smtpd's to judge */
	assert_int_equal(parse("RCPT TO:<\xf0\x9f\x93\xa7@\xe4\xbe\x8b."
	    "example>", ESMTP, &c), 0);
	assert_true(c.path.utf8);
	assert_int_equal(parse("RCPT TO:<a@b.example> SMTPUTF8", ESMTP, &c),
	    555);
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (parse(bad[i], ESMTP, &c) != 501)
			fail_msg("bad row %zu: %d", i, c.code);
}

static void
t_postmaster(void **state)
{
	struct mr_smtp_cmd c;

	(void)state;
	assert_int_equal(parse("RCPT TO:<postmaster>", SMTP, &c), 0);
	assert_int_equal(c.path.postmaster, 1);
	assert_int_equal(parse("RCPT TO:<Postmaster>", SMTP, &c), 0);
	assert_int_equal(c.path.postmaster, 1);
	assert_int_equal(parse("rcpt to: <POSTMASTER>", SMTP, &c), 0);
	assert_int_equal(c.path.postmaster, 1);
	/* with a domain it is an ordinary mailbox */
	assert_int_equal(parse("RCPT TO:<postmaster@local.test>", SMTP, &c),
	    0);
	assert_int_equal(c.path.postmaster, 0);
	assert_string_equal(c.path.domain, "local.test");
	/* any other bare word is no address */
	assert_int_equal(parse("RCPT TO:<root>", SMTP, &c), 501);
}

static void
t_quoted_local_len(void **state)
{
	struct mr_smtp_cmd c;

	(void)state;
	assert_int_equal(parse("RCPT TO:<\"a@b\"@local.test>", SMTP, &c), 0);
	assert_int_equal(c.path.local_len, 5);
	assert_ptr_equal(c.path.domain, c.path.addr + 6);
}

static void
t_line_length(void **state)
{
	struct mr_smtp_cmd c;
	char *line;
	size_t n;

	(void)state;
	line = malloc(MR_SMTP_LINE_MAX + 2);
	assert_non_null(line);
	/* exactly the limit: accepted */
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', MR_SMTP_LINE_MAX - 5);
	line[MR_SMTP_LINE_MAX] = '\0';
	assert_int_equal(mr_smtp_parse(line, MR_SMTP_LINE_MAX, SMTP, &c), 0);
	assert_int_equal(c.verb, MR_V_NOOP);
	/* one byte more: 500 5.5.2, whatever the command */
	line[MR_SMTP_LINE_MAX] = 'x';
	line[MR_SMTP_LINE_MAX + 1] = '\0';
	assert_int_equal(mr_smtp_parse(line, MR_SMTP_LINE_MAX + 1, SMTP, &c),
	    500);
	assert_string_equal(c.status, "5.5.2");
	/* an overlong MAIL FROM with a long parameter list */
	n = (size_t)snprintf(line, MR_SMTP_LINE_MAX + 2,
	    "MAIL FROM:<a@b.example>");
	for (; n < MR_SMTP_LINE_MAX + 1; n++)
		line[n] = n % 8 ? 'x' : ' ';
	line[n] = '\0';
	assert_int_equal(mr_smtp_parse(line, n, ESMTP, &c), 500);
	assert_string_equal(c.status, "5.5.2");
	free(line);
}

static void
t_overlong_path(void **state)
{
	struct mr_smtp_cmd c;
	char line[512];
	int n;

	(void)state;
	/* a local part of 65 bytes is over RFC 5321 4.5.3.1.1 */
	n = snprintf(line, sizeof(line), "RCPT TO:<%065d@local.test>", 0);
	assert_true(n > 0);
	assert_int_equal(parse(line, SMTP, &c), 501);
	assert_string_equal(c.status, "5.1.3");
}

/* ---- mr_dstream_feed ---- */

struct sink {
	char	 buf[4096];
	size_t	 len;
	int	 overflow;
};

static void
collect(void *arg, const char *p, size_t n)
{
	struct sink *k = arg;

	/* the machine emits only bytes it was given or CRLF */
	assert_true(n > 0);
	if (k->len + n > sizeof(k->buf)) {
		k->overflow = 1;
		return;
	}
	memcpy(k->buf + k->len, p, n);
	k->len += n;
}

struct dcase {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	const char	*out;
	size_t		 outlen;
	size_t		 consumed;	/* (size_t)-1: all of it */
	int		 done;
	int		 received;	/* -1: not checked */
};

#define ALL	((size_t)-1)
/* input, output, consumed, done: string literals with their lengths */
#define D(n, i, o, c, d)	{ n, i, sizeof(i) - 1, o, sizeof(o) - 1, c, \
				    d, -1 }
#define R(n, i, o, r)		{ n, i, sizeof(i) - 1, o, sizeof(o) - 1, \
				    ALL, 1, r }

static const struct dcase streams[] = {
	D("simple message", "Subject: x\r\n\r\nbody\r\n.\r\n",
	    "Subject: x\r\n\r\nbody\r\n", ALL, 1),
	D("empty message", ".\r\n", "", ALL, 1),
	D("empty message, then a command", ".\r\nQUIT\r\n", "", 3, 1),
	D("end, then pipelined commands", "a\r\n.\r\nMAIL FROM:<x@y>\r\n",
	    "a\r\n", 6, 1),
	D("end, then a second end", "a\r\n.\r\n.\r\n", "a\r\n", 6, 1),
	D("dot-stuffed lines unstuffed",
	    "..a\r\n..\r\n...\r\nb..\r\n.\r\n",
	    ".a\r\n.\r\n..\r\nb..\r\n", ALL, 1),
	D("dot followed by text", ".abc\r\n.\r\n", "abc\r\n", ALL, 1),
	D("dot inside a line kept", "a.b\r\n.\r\n", "a.b\r\n", ALL, 1),
	D("no end yet", "abc\r\ndef\r\n", "abc\r\ndef\r\n", ALL, 0),
	/* the start of a line that may be a header field is held too */
	D("no end yet, CR held", "abc\r", "", ALL, 0),
	D("no end yet, CR held after a field", "a: b\r", "a: b", ALL, 0),
	D("no end yet, dot held", "abc\r\n.", "abc\r\n", ALL, 0),
	D("no end yet, dot CR held", "abc\r\n.\r", "abc\r\n", ALL, 0),
	D("empty lines", "a\r\n\r\n\r\nb\r\n.\r\n", "a\r\n\r\n\r\nb\r\n",
	    ALL, 1),
	D("NUL and 8-bit bytes are data", "a\0b\377\r\n.\r\n",
	    "a\0b\377\r\n", ALL, 1),

	/* bare LF and bare CR */
	D("bare LF becomes CRLF", "a\nb\r\n.\r\n", "a\r\nb\r\n", ALL, 1),
	D("bare LF at the start", "\nb\r\n.\r\n", "\r\nb\r\n", ALL, 1),
	D("bare CR becomes CRLF", "a\rb\r\n.\r\n", "a\r\nb\r\n", ALL, 1),
	D("CR CR LF", "a\r\r\n.\r\n", "a\r\n\r\n", ALL, 1),
	D("bare CR at the end", "a\r", "", ALL, 0),
	D("CR LF CR", "a\r\n\rb\r\n.\r\n", "a\r\n\r\nb\r\n", ALL, 1),
	D("LF CR", "a\n\rb\r\n.\r\n", "a\r\n\r\nb\r\n", ALL, 1),

	/* SMTP smuggling: none of these ends the data */
	D("LF dot LF does not end", "a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n",
	    ALL, 1),
	D("LF dot CRLF does not end", "a\n.\r\nb\r\n.\r\n",
	    "a\r\n.\r\nb\r\n", ALL, 1),
	D("CRLF dot LF does not end", "a\r\n.\nb\r\n.\r\n",
	    "a\r\n\r\nb\r\n", ALL, 1),
	D("CR dot CRLF does not end", "a\r.\r\nb\r\n.\r\n",
	    "a\r\n.\r\nb\r\n", ALL, 1),
	D("CR dot CR does not end", "a\r.\rb\r\n.\r\n",
	    "a\r\n.\r\nb\r\n", ALL, 1),
	D("CRLF dot CR does not end", "a\r\n.\rb\r\n.\r\n",
	    "a\r\n\r\nb\r\n", ALL, 1),
	D("CRLF dot CR CR LF does not end", "a\r\n.\r\r\nb\r\n.\r\n",
	    "a\r\n\r\n\r\nb\r\n", ALL, 1),
	D("LF dot LF only, no end", "a\n.\n", "a\r\n.\r\n", ALL, 0),
	D("CR dot CR LF only, no end", "a\r.\r\n", "a\r\n.\r\n", ALL, 0),
	D("CRLF dot LF at the start, no end", ".\n", "\r\n", ALL, 0),
	D("bare LF dot CRLF at the start, no end", "\n.\r\n", "\r\n.\r\n", ALL,
	    0),
	D("smuggled transaction stays data",
	    "Subject: s\r\n\r\nhello\n.\r\nMAIL FROM:<x@y>\r\n"
	    "RCPT TO:<z@remote.example>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n",
	    "Subject: s\r\n\r\nhello\r\n.\r\nMAIL FROM:<x@y>\r\n"
	    "RCPT TO:<z@remote.example>\r\nDATA\r\nsmuggled\r\n",
	    sizeof("Subject: s\r\n\r\nhello\n.\r\nMAIL FROM:<x@y>\r\n"
	    "RCPT TO:<z@remote.example>\r\nDATA\r\nsmuggled\r\n.\r\n") - 1, 1),

	/* Received: header fields (hop count) */
	R("no Received", "Subject: x\r\n\r\nb\r\n.\r\n",
	    "Subject: x\r\n\r\nb\r\n", 0),
	R("Received counted", "Received: a\r\nReceived: b\r\n\r\nb\r\n.\r\n",
	    "Received: a\r\nReceived: b\r\n\r\nb\r\n", 2),
	R("Received any case", "received: a\r\nRECEIVED: b\r\nReCeIvEd:c\r\n"
	    "\r\n.\r\n", "received: a\r\nRECEIVED: b\r\nReCeIvEd:c\r\n\r\n", 3),
	R("Received with no value", "Received:\r\n\r\n.\r\n",
	    "Received:\r\n\r\n", 1),
	R("Received in the body not counted",
	    "Received: a\r\n\r\nReceived: b\r\nReceived: c\r\n.\r\n",
	    "Received: a\r\n\r\nReceived: b\r\nReceived: c\r\n", 1),
	R("folded Received counted once",
	    "Received: from a\r\n\tby b\r\n Received: x\r\n\tfor <c@d>;"
	    " date\r\nSubject: s\r\n\r\n.\r\n",
	    "Received: from a\r\n\tby b\r\n Received: x\r\n\tfor <c@d>;"
	    " date\r\nSubject: s\r\n\r\n", 1),
	R("look-alike fields not counted",
	    "X-Received: a\r\nReceivedx: b\r\nReceive: c\r\nReceived-SPF: d"
	    "\r\n\r\n.\r\n",
	    "X-Received: a\r\nReceivedx: b\r\nReceive: c\r\nReceived-SPF: d"
	    "\r\n\r\n", 0),
	R("bare LF header lines", "Received: a\nReceived: b\n\nReceived: c\r\n"
	    ".\r\n", "Received: a\r\nReceived: b\r\n\r\nReceived: c\r\n", 2),
	R("no header section", "\r\nReceived: a\r\n.\r\n",
	    "\r\nReceived: a\r\n", 0),
	R("long Received lines", "Received: from a.very.long.host.name."
	    "example ([192.0.2.1]) by mx.example with ESMTP id 0123456789\r\n"
	    "Received: x\r\n\r\n.\r\n",
	    "Received: from a.very.long.host.name."
	    "example ([192.0.2.1]) by mx.example with ESMTP id 0123456789\r\n"
	    "Received: x\r\n\r\n", 2),
	R("headers only, no body", "Received: a\r\n.\r\n", "Received: a\r\n",
	    1),
	R("white space before the colon", "Received : a\r\nReceived\t: b\r\n"
	    "\r\n.\r\n", "Received : a\r\nReceived\t: b\r\n\r\n", 2),
};

/* One feeding of in[0..n) cut at the given points; returns the bytes
 * consumed in all and whether the data ended.  Stops at the end, as
 * smtpd does: the rest is the next command. */
static size_t
feed_cut(const struct dcase *t, const size_t *cuts, size_t ncuts,
    struct sink *k, int *done, unsigned *received)
{
	struct mr_dstream d;
	size_t i, from = 0, to, used, total = 0;

	memset(k, 0, sizeof(*k));
	mr_dstream_init(&d, collect, k);
	*done = 0;
	for (i = 0; i <= ncuts && !*done; i++) {
		to = i < ncuts ? cuts[i] : t->inlen;
		used = mr_dstream_feed(&d, t->in + from, to - from, done);
		assert_true(used <= to - from);
		if (!*done)
			assert_int_equal(used, to - from);
		total += used;
		from = to;
	}
	*received = d.received;
	return total;
}

static void
expect_feed(const struct dcase *t, const size_t *cuts, size_t ncuts)
{
	struct sink k;
	unsigned received;
	size_t consumed;
	int done;

	consumed = feed_cut(t, cuts, ncuts, &k, &done, &received);
	if (k.len != t->outlen || memcmp(k.buf, t->out, k.len) != 0 ||
	    done != t->done ||
	    consumed != (t->consumed == ALL ? t->inlen : t->consumed) ||
	    (t->received >= 0 && received != (unsigned)t->received)) {
		size_t i;

		print_error("feeding cut at");
		for (i = 0; i < ncuts; i++)
			print_error(" %zu", cuts[i]);
		print_error(": emitted %zu bytes, done %d, consumed %zu, "
		    "received %u\n", k.len, done, consumed, received);
	}
	assert_false(k.overflow);
	assert_memory_equal(k.buf, t->out, t->outlen);
	assert_int_equal(k.len, t->outlen);
	assert_int_equal(done, t->done);
	assert_int_equal(consumed, t->consumed == ALL ? t->inlen :
	    t->consumed);
	if (t->received >= 0)
		assert_int_equal(received, t->received);
}

static void
check_stream(void **state)
{
	const struct dcase *t = *state;
	size_t cuts[2], i, j, *every;

	/* whole */
	expect_feed(t, NULL, 0);
	/* two feeds, cut at every position (an empty feed included) */
	for (i = 0; i <= t->inlen; i++) {
		cuts[0] = i;
		expect_feed(t, cuts, 1);
	}
	/* three feeds */
	for (i = 0; i <= t->inlen; i++)
		for (j = i; j <= t->inlen; j++) {
			cuts[0] = i;
			cuts[1] = j;
			expect_feed(t, cuts, 2);
		}
	/* one byte at a time */
	every = calloc(t->inlen + 1, sizeof(*every));
	assert_non_null(every);
	for (i = 0; i < t->inlen; i++)
		every[i] = i + 1;
	expect_feed(t, every, t->inlen ? t->inlen - 1 : 0);
	free(every);
}

/* After the end the machine is not fed again; a new message starts from
 * init, with a fresh header count. */
static void
t_stream_reinit(void **state)
{
	struct mr_dstream d;
	struct sink k;
	int done;

	(void)state;
	memset(&k, 0, sizeof(k));
	mr_dstream_init(&d, collect, &k);
	assert_int_equal(mr_dstream_feed(&d, "Received: a\r\n.\r\n", 16,
	    &done), 16);
	assert_int_equal(done, 1);
	assert_int_equal(d.received, 1);
	mr_dstream_init(&d, collect, &k);
	assert_int_equal(d.received, 0);
	assert_int_equal(d.in_headers, 1);
	assert_int_equal(mr_dstream_feed(&d, "b\r\n.\r\n", 6, &done), 6);
	assert_int_equal(done, 1);
	assert_int_equal(k.len, 13 + 3);
	assert_memory_equal(k.buf, "Received: a\r\nb\r\n", 16);
}

/* done is reset by every call; a feed of nothing consumes nothing */
static void
t_stream_empty_feed(void **state)
{
	struct mr_dstream d;
	struct sink k;
	int done = 1;

	(void)state;
	memset(&k, 0, sizeof(k));
	mr_dstream_init(&d, collect, &k);
	assert_int_equal(mr_dstream_feed(&d, "", 0, &done), 0);
	assert_int_equal(done, 0);
	assert_int_equal(k.len, 0);
}

/*
 * lf_ends (an LF-only client smtpd trusts): any "." line ends the data,
 * whatever ends it and the line before; a bare CR still begins no line;
 * the output is the same CRLF text.  Raw mode (BDAT) clears it.
 */
static void
t_stream_lf_ends(void **state)
{
	static const struct {
		const char	*in, *out;
		size_t		 used;
	} c[] = {
		{ "a\n..b\n.\nMAIL", "a\r\n.b\r\n", 8 },
		{ "a\n.\r\nX", "a\r\n", 5 },
		{ "a\r\n.\nX", "a\r\n", 5 },
		{ ".\n", "", 2 },
		{ "a\r.\nb", "a\r\n.\r\nb", 0 },	/* bare CR */
		{ "a\n.\rb", "a\r\n\r\nb", 0 },	/* ".", bare CR */
	};
	struct mr_dstream d;
	struct sink k;
	size_t i, n;
	int done;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(*c); i++) {
		memset(&k, 0, sizeof(k));
		mr_dstream_init(&d, collect, &k);
		d.in_headers = 0;
		d.lf_ends = 1;
		n = strlen(c[i].in);
		assert_int_equal(mr_dstream_feed(&d, c[i].in, n, &done),
		    c[i].used ? c[i].used : n);
		assert_int_equal(done, c[i].used != 0);
		assert_int_equal(k.len, strlen(c[i].out));
		assert_memory_equal(k.buf, c[i].out, k.len);
	}
	mr_dstream_init(&d, collect, &k);
	d.lf_ends = 1;
	mr_dstream_set_raw(&d);
	assert_int_equal(d.lf_ends, 0);
}

/* Many Received fields: the count does not wrap or stop. */
static void
t_stream_many_received(void **state)
{
	struct mr_dstream d;
	struct sink k;
	int i, done;

	(void)state;
	memset(&k, 0, sizeof(k));
	mr_dstream_init(&d, collect, &k);
	for (i = 0; i < 100; i++) {
		k.len = 0;
		assert_int_equal(mr_dstream_feed(&d, "Received: x\r\n", 13,
		    &done), 13);
		assert_int_equal(done, 0);
	}
	assert_int_equal(d.received, 100);
	k.len = 0;
	assert_int_equal(mr_dstream_feed(&d, "\r\nReceived: y\r\n.\r\n", 18,
	    &done), 18);
	assert_int_equal(done, 1);
	assert_int_equal(d.received, 100);
}

/* A NUL anywhere is noted, whatever state the machine is in; its
 * absence is not. */
static void
t_stream_nul(void **state)
{
	static const char *const ins[] = { "a\0b\r\n", "\0", ".\0",
	    "a\r\0", "a\r\n\0.\r\n", "a\r\n.\r\0" };
	static const size_t lens[] = { 5, 1, 2, 3, 7, 6 };
	struct mr_dstream d;
	struct sink k;
	size_t i;
	int done;

	(void)state;
	for (i = 0; i < sizeof(ins) / sizeof(*ins); i++) {
		memset(&k, 0, sizeof(k));
		mr_dstream_init(&d, collect, &k);
		(void)mr_dstream_feed(&d, ins[i], lens[i], &done);
		assert_int_equal(done, 0);
		assert_int_equal(d.nul, 1);
	}
	mr_dstream_init(&d, collect, &k);
	(void)mr_dstream_feed(&d, "a\r\n.\r\n", 6, &done);
	assert_int_equal(done, 1);
	assert_int_equal(d.nul, 0);
}

/*
 * Where the header section ends, the hdr_end callback runs once, before
 * what follows: "[0]" at an empty line, "[1]" before a line that is no
 * header field (a message without header section included).  Fed whole
 * and byte by byte, with the same result.
 */
static const struct {
	const char	*in, *out;
	int		 date, msgid;
} hdr_cases[] = {
	{ "Subject: x\r\n\r\nbody\r\n.\r\n",
	    "Subject: x\r\n[0]\r\nbody\r\n", 0, 0 },
	{ "hello\r\nworld\r\n.\r\n", "[1]hello\r\nworld\r\n", 0, 0 },
	{ "Subject: x\r\nnot a field\r\n.\r\n",
	    "Subject: x\r\n[1]not a field\r\n", 0, 0 },
	{ "Subject: x\r\n\tfolded\r\n more\r\n\r\n.\r\n",
	    "Subject: x\r\n\tfolded\r\n more\r\n[0]\r\n", 0, 0 },
	{ "Date: d\r\nMESSAGE-ID: <m>\r\n\r\n.\r\n",
	    "Date: d\r\nMESSAGE-ID: <m>\r\n[0]\r\n", 1, 1 },
	{ "Dates: d\r\nMessage-IDs: <m>\r\nX: Date: y\r\n\r\n.\r\n",
	    "Dates: d\r\nMessage-IDs: <m>\r\nX: Date: y\r\n[0]\r\n", 0, 0 },
	{ ": no name\r\n.\r\n", "[1]: no name\r\n", 0, 0 },
	/* RFC 5322 4.5: white space may come between name and colon */
	{ "Date : d\r\nMessage-ID\t: <m>\r\nReceived  : x\r\n\r\n.\r\n",
	    "Date : d\r\nMessage-ID\t: <m>\r\nReceived  : x\r\n[0]\r\n",
	    1, 1 },
	{ "Subject x\r\n.\r\n", "[1]Subject x\r\n", 0, 0 },
	{ "Sub ject: x\r\n.\r\n", "[1]Sub ject: x\r\n", 0, 0 },
	{ "a\nb: c\n\nd\r\n.\r\n", "[1]a\r\nb: c\r\n\r\nd\r\n", 0, 0 },
	{ "Subject: x\r\n.\r\n", "Subject: x\r\n", 0, 0 },
	{ ".\r\n", "", 0, 0 },
	{ "\r\n.\r\n", "[0]\r\n", 0, 0 },
	{ "X-Very-Long-Field-Name-That-Goes-On-And-On-Past-The-Buffer-Of-The-"
	    "Machine-Xyz-And-Then-Some: v\r\n\r\n.\r\n",
	    "X-Very-Long-Field-Name-That-Goes-On-And-On-Past-The-Buffer-Of-The-"
	    "Machine-Xyz-And-Then-Some: v\r\n[0]\r\n", 0, 0 },
};

static void
mark_end(void *arg, int body)
{
	collect(arg, body ? "[1]" : "[0]", 3);
}

static void
hdr_feed(size_t c, int bytewise)
{
	struct mr_dstream d;
	struct sink k;
	size_t i, n = strlen(hdr_cases[c].in);
	int done = 0;

	memset(&k, 0, sizeof(k));
	mr_dstream_init(&d, collect, &k);
	d.hdr_end = mark_end;
	for (i = 0; i < n && !done; i += bytewise ? 1 : n)
		(void)mr_dstream_feed(&d, hdr_cases[c].in + i,
		    bytewise ? 1 : n, &done);
	assert_int_equal(done, 1);
	if (k.len != strlen(hdr_cases[c].out) ||
	    memcmp(k.buf, hdr_cases[c].out, k.len) != 0)
		print_error("case %zu: got \"%.*s\"\n", c, (int)k.len, k.buf);
	assert_int_equal(k.len, strlen(hdr_cases[c].out));
	assert_memory_equal(k.buf, hdr_cases[c].out, k.len);
	assert_int_equal(d.has_date, hdr_cases[c].date);
	assert_int_equal(d.has_msgid, hdr_cases[c].msgid);
}

static void
t_stream_header_end(void **state)
{
	size_t c;

	(void)state;
	for (c = 0; c < sizeof(hdr_cases) / sizeof(*hdr_cases); c++) {
		hdr_feed(c, 0);
		hdr_feed(c, 1);
	}
}

/* ---- main ---- */

#define NCMDS		(sizeof(cmds) / sizeof(*cmds))
#define NSTREAMS	(sizeof(streams) / sizeof(*streams))

static const struct CMUnitTest fixed[] = {
	cmocka_unit_test(t_helo_arg),
	cmocka_unit_test(t_helo_length),
	cmocka_unit_test(t_null_sender),
	cmocka_unit_test(t_size_param),
	cmocka_unit_test(t_body_param),
	cmocka_unit_test(t_smtputf8_param),
	cmocka_unit_test(t_postmaster),
	cmocka_unit_test(t_quoted_local_len),
	cmocka_unit_test(t_line_length),
	cmocka_unit_test(t_overlong_path),
	cmocka_unit_test(t_stream_reinit),
	cmocka_unit_test(t_stream_empty_feed),
	cmocka_unit_test(t_stream_lf_ends),
	cmocka_unit_test(t_stream_many_received),
	cmocka_unit_test(t_stream_nul),
	cmocka_unit_test(t_stream_header_end),
};

#define NFIXED		(sizeof(fixed) / sizeof(*fixed))

int
main(void)
{
	static struct CMUnitTest tests[NCMDS + NSTREAMS + NFIXED];
	static char names[NCMDS + NSTREAMS][96];
	size_t i, n = 0;

	/* one named test per row; the group runner takes a built array */
	for (i = 0; i < NCMDS; i++, n++) {
		snprintf(names[n], sizeof(names[n]), "parse: %s",
		    cmds[i].name);
		tests[n].name = names[n];
		tests[n].test_func = check_cmd;
		tests[n].initial_state = (void *)&cmds[i];
	}
	for (i = 0; i < NSTREAMS; i++, n++) {
		snprintf(names[n], sizeof(names[n]), "dstream: %s",
		    streams[i].name);
		tests[n].name = names[n];
		tests[n].test_func = check_stream;
		tests[n].initial_state = (void *)&streams[i];
	}
	for (i = 0; i < NFIXED; i++)
		tests[n++] = fixed[i];
	return _cmocka_run_group_tests("smtp", tests, n, NULL, NULL);
}
