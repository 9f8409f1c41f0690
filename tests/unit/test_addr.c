/*
 * test_addr.c - table-driven tests for the RFC 5321 path parser.
 *
 * Every case is a row: the input (with an explicit length when it holds
 * a NUL), the flags, and either the expected address, domain and bytes
 * consumed, or NULL for a rejected path.  Each accepted path is also held
 * to the invariant the daemons rely on (addr.h): no NUL, no control,
 * space or 8-bit byte outside quotes, a lower-case domain.
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

#include "addr.h"

#define NUL	1		/* allow_null */
#define PM	2		/* allow_postmaster */

#define X8	"xxxxxxxx"
#define X16	X8 X8
#define X32	X16 X16
#define X63	X32 X16 X8 "xxxxxxx"
#define X64	X63 "x"
#define D63	"d" X32 X16 X8 "dddddd"			/* 63 bytes */
#define D253	D63 "." D63 "." D63 "." X32 X16 X8 "xxxxx"	/* 253 */
#define D255	D253 "xx"

struct pcase {
	const char	*name;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	int		 flags;
	const char	*addr;		/* NULL: must be rejected */
	const char	*domain;
	int		 consumed;	/* 0: the whole input */
};

#define OK(n, in, a, d)		{ n, in, 0, 0, a, d, 0 }
#define OKF(n, in, f, a, d)	{ n, in, 0, f, a, d, 0 }
#define OKC(n, in, a, d, c)	{ n, in, 0, 0, a, d, c }
#define BAD(n, in)		{ n, in, 0, 0, NULL, NULL, 0 }
#define BADF(n, in, f)		{ n, in, 0, f, NULL, NULL, 0 }
#define BADN(n, in)		{ n, in, sizeof(in) - 1, 0, NULL, NULL, 0 }

static const struct pcase paths[] = {
	/* plain paths */
	OK("simple", "<user@example.com>", "user@example.com", "example.com"),
	OK("domain lower-cased, local kept", "<User.Name@Example.COM>",
	    "User.Name@example.com", "example.com"),
	OK("atext specials", "<!#$%&'*+-/=?^_`{|}~@x.example>",
	    "!#$%&'*+-/=?^_`{|}~@x.example", "x.example"),
	OK("single-label domain", "<user@localhost>", "user@localhost",
	    "localhost"),
	OK("hyphens and digits", "<a@3com.sub-1.example>",
	    "a@3com.sub-1.example", "3com.sub-1.example"),
	OK("numeric labels, alpha tld", "<a@123.45.example>",
	    "a@123.45.example", "123.45.example"),
	OKC("esmtp parameters follow", "<user@example.com> SIZE=100",
	    "user@example.com", "example.com", 18),
	OKC("trailing space only", "<user@example.com> ",
	    "user@example.com", "example.com", 18),
	OK("local part of 64", "<" X64 "@x.example>", X64 "@x.example",
	    "x.example"),
	OK("label of 63", "<a@" D63 ".example>", "a@" D63 ".example",
	    D63 ".example"),
	OK("path of exactly 256", "<" X64 "@" D63 "." D63 "." D63 ">",
	    X64 "@" D63 "." D63 "." D63, D63 "." D63 "." D63),

	/* source routes: checked, dropped */
	OK("source route dropped",
	    "<@a.example,@b.example:user@c.example>", "user@c.example",
	    "c.example"),
	OK("one-hop source route", "<@A.example:user@C.Example>",
	    "user@c.example", "c.example"),
	BAD("source route with literal", "<@[192.0.2.1]:user@c.example>"),
	BAD("source route without colon", "<@a.example,user@c.example>"),
	BAD("source route with space", "<@a.example user@c.example>"),
	BAD("source route, no mailbox", "<@a.example:>"),
	BAD("source route, empty hop", "<@a.example,:user@c.example>"),
	BAD("lone at", "<@>"),
	BAD("at domain only", "<@example.com>"),

	/* relay tricks are local parts at our domain */
	OK("percent hack", "<user%other.example@local.example>",
	    "user%other.example@local.example", "local.example"),
	OK("bang path", "<other.example!user@local.example>",
	    "other.example!user@local.example", "local.example"),
	OK("quoted at", "<\"user@other.example\"@local.example>",
	    "\"user@other.example\"@local.example", "local.example"),
	OK("quoted escape kept", "<\"a\\\"b\\\\c\"@x.example>",
	    "\"a\\\"b\\\\c\"@x.example", "x.example"),
	OK("quoted space", "<\"john smith\"@x.example>",
	    "\"john smith\"@x.example", "x.example"),
	BAD("path then at remote", "<user@local.example>@remote.example"),
	BAD("trailing dot", "<user@remote.example.>"),
	BAD("double at", "<user@@example.com>"),
	BAD("two at", "<user@other.example@local.example>"),
	BAD("unquoted at in quoted mix", "<\"a\"@b@local.example>"),
	BAD("nested brackets", "<<user@example.com>>"),
	BAD("garbage after path", "<user@example.com>>"),
	BAD("garbage after path, no space", "<user@example.com>SIZE=1"),

	/* address literals */
	OK("IPv4 literal", "<user@[192.0.2.1]>", "user@[192.0.2.1]",
	    "[192.0.2.1]"),
	OK("IPv6 literal", "<user@[IPv6:2001:DB8::1]>",
	    "user@[ipv6:2001:db8::1]", "[ipv6:2001:db8::1]"),
	OK("IPv6 literal, v4 tail", "<user@[IPv6:::ffff:192.0.2.1]>",
	    "user@[ipv6:::ffff:192.0.2.1]", "[ipv6:::ffff:192.0.2.1]"),
	BAD("IPv4 octet over 255", "<user@[192.0.2.256]>"),
	BAD("IPv4 three parts", "<user@[192.0.2]>"),
	BAD("IPv6 without tag", "<user@[2001:db8::1]>"),
	BAD("IPv6 tag, bad text", "<user@[IPv6:2001:db8::zz]>"),
	BAD("IPv6 tag, v4 text", "<user@[IPv6:192.0.2.1]>"),
	BAD("general literal", "<user@[x-tag:anything]>"),
	BAD("empty literal", "<user@[]>"),
	BAD("unbalanced literal", "<user@[192.0.2.1>"),
	BAD("garbage after literal", "<user@[192.0.2.1]x>"),
	BAD("bare dotted quad", "<user@192.0.2.1>"),
	BAD("literal with space", "<user@[192.0.2.1 ]>"),

	/* null path and postmaster */
	OKF("null path", "<>", NUL, "", ""),
	{ "null path, parameters", "<> BODY=8BITMIME", 0, NUL, "", "", 2 },
	{ "postmaster, parameters", "<postmaster> NOTIFY=NEVER", 0, PM,
	    "postmaster", "", 12 },
	BAD("null path not allowed", "<>"),
	BADF("null path, garbage", "<>x", NUL),
	OKF("postmaster", "<Postmaster>", PM, "postmaster", ""),
	OKF("postmaster, upper", "<POSTMASTER>", PM, "postmaster", ""),
	BAD("postmaster not allowed", "<Postmaster>"),
	OKF("postmaster with domain", "<Postmaster@Example.COM>", PM,
	    "Postmaster@example.com", "example.com"),
	BADF("postmaster, garbage", "<postmaster>x", PM),
	BADF("postmaster prefix", "<postmasterx>", PM),
	BADF("quoted postmaster", "<\"postmaster\">", PM),

	/* brackets and structure */
	BAD("empty input", ""),
	BAD("lone bracket", "<"),
	BAD("no brackets", "user@example.com"),
	BAD("no closing bracket", "<user@example.com"),
	BAD("no opening bracket", "user@example.com>"),
	BAD("leading space", " <user@example.com>"),
	BAD("space after bracket", "< user@example.com>"),
	BAD("space before bracket", "<user@example.com >"),
	BAD("no domain", "<user>"),
	BAD("empty domain", "<user@>"),
	BAD("empty local part", "<@example.com>"),
	BAD("empty quoted local part", "<\"\"@example.com>"),

	/* local part syntax */
	BAD("leading dot", "<.user@example.com>"),
	BAD("trailing dot in local", "<user.@example.com>"),
	BAD("double dot", "<us..er@example.com>"),
	BAD("backslash outside quotes", "<us\\er@example.com>"),
	BAD("space in local", "<us er@example.com>"),
	BAD("unbalanced quote", "<\"user@example.com>"),
	BAD("escaped closing quote", "<\"user\\\"@example.com>"),
	BAD("quote then atom", "<\"a\".b@example.com>"),
	BAD("atom then quote", "<a.\"b\"@example.com>"),
	BAD("local part of 65", "<" X64 "x@example.com>"),
	BAD("comma in local", "<a,b@example.com>"),
	BAD("parenthesis comment", "<user(c)@example.com>"),

	/* domain syntax */
	BAD("leading hyphen", "<user@-x.example>"),
	BAD("trailing hyphen", "<user@x-.example>"),
	BAD("underscore", "<user@x_y.example>"),
	BAD("empty label", "<user@x..example>"),
	BAD("leading dot in domain", "<user@.example>"),
	BAD("space in domain", "<user@exa mple.com>"),
	BAD("label of 64", "<a@" D63 "x.example>"),
	BAD("domain of 256", "<a@" D253 ".xx>"),
	BAD("path of 257", "<" X63 "@" D63 "." D63 "." D63 ".a>"),
	BAD("path of 257 by route", "<@r.example:" X64 "@" D63 "." D63
	    "." X32 X16 "xxxxx>"),
	OK("path of 256 with route", "<@r.example:" X64 "@" D63 "." D63
	    "." X32 X16 "xxxx>", X64 "@" D63 "." D63 "." X32 X16 "xxxx",
	    D63 "." D63 "." X32 X16 "xxxx"),

	/* bytes that must never pass */
	BADN("NUL in local", "<us\0er@example.com>"),
	BADN("NUL in domain", "<user@exam\0ple.com>"),
	BADN("NUL in quotes", "<\"us\0er\"@example.com>"),
	BADN("NUL after path", "<user@example.com>\0"),
	BADN("NUL as path", "<\0>"),
	BAD("8-bit in local", "<us\xc3\xa9r@example.com>"),
	BAD("8-bit in quotes", "<\"\xc3\xa9\"@example.com>"),
	BAD("8-bit in domain", "<user@ex\xc3\xa9mple.com>"),
	BAD("8-bit escaped in quotes", "<\"a\\\xe9\"@example.com>"),
	BAD("tab in local", "<us\ter@example.com>"),
	BAD("tab in quotes", "<\"us\ter\"@example.com>"),
	BAD("escaped control in quotes", "<\"a\\\x01\"@example.com>"),
	BAD("DEL in local", "<us\x7f" "er@example.com>"),
	BAD("CR LF in local", "<us\r\ner@example.com>"),
	BAD("CR LF after path", "<user@example.com>\r\n"),
};

/* The invariant of addr.h, for every accepted path. */
static void
check_invariant(const struct mr_path *p)
{
	const unsigned char *c;
	size_t n = strlen(p->addr);
	int quoted = 0;

	assert_true(n <= MR_PATH_MAX);
	if (p->null) {
		assert_int_equal(n, 0);
		return;
	}
	assert_true(p->local_len > 0 && p->local_len <= MR_LOCAL_MAX);
	if (p->postmaster) {
		assert_string_equal(p->addr, "postmaster");
		assert_string_equal(p->domain, "");
		return;
	}
	assert_int_equal(p->addr[p->local_len], '@');
	assert_ptr_equal(p->domain, p->addr + p->local_len + 1);
	assert_true(strlen(p->domain) > 0);
	for (c = (const unsigned char *)p->addr; *c != '\0'; c++) {
		if (quoted && *c == '\\') {
			c++;
			assert_true(*c >= 0x20 && *c < 0x7f);
			continue;
		}
		if (*c == '"')
			quoted = !quoted;
		if (quoted)
			assert_true(*c >= 0x20 && *c < 0x7f);
		else
			assert_true(*c >= 0x21 && *c < 0x7f);
	}
	assert_false(quoted);
	for (c = (const unsigned char *)p->domain; *c != '\0'; c++)
		assert_false(*c >= 'A' && *c <= 'Z');
}

static void
t_path(void **state)
{
	const struct pcase *t = *state;
	struct mr_path p;
	const char *err = NULL;
	size_t len = t->len ? t->len : strlen(t->in);
	int rc;

	rc = mr_path_parse(t->in, len, t->flags & NUL, t->flags & PM, &p,
	    &err);
	if (t->addr == NULL) {
		if (rc != -1)
			fail_msg("accepted \"%s\" as \"%s\"", t->in, p.addr);
		assert_non_null(err);
		assert_string_equal(p.addr, "");
		return;
	}
	if (rc == -1)
		fail_msg("rejected \"%s\": %s", t->in, err);
	assert_int_equal(rc, t->consumed ? (size_t)t->consumed : len);
	assert_string_equal(p.addr, t->addr);
	assert_string_equal(p.domain, t->domain);
	assert_int_equal(p.null, t->addr[0] == '\0');
	check_invariant(&p);
}

/* A source-routed or quoted path parses back to itself. */
static void
t_reparse(void **state)
{
	const char *in[] = {
		"<@a.example:User@B.Example>",
		"<\"a@b c\"@local.example>",
		"<x@[IPv6:2001:DB8::1]>",
	};
	struct mr_path p, q;
	const char *err;
	char buf[MR_PATH_MAX + 3];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_true(mr_path_parse(in[i], strlen(in[i]), 0, 0, &p,
		    &err) > 0);
		n = snprintf(buf, sizeof(buf), "<%s>", p.addr);
		assert_true(n > 0 && (size_t)n < sizeof(buf));
		assert_int_equal(mr_path_parse(buf, (size_t)n, 0, 0, &q,
		    &err), n);
		assert_string_equal(p.addr, q.addr);
		assert_int_equal(p.local_len, q.local_len);
	}
}

/* len bounds the parse: the bytes past it are never read. */
static void
t_length_bounds(void **state)
{
	const char *s = "<user@example.com>";
	struct mr_path p;
	const char *err;

	(void)state;
	assert_int_equal(mr_path_parse(s, strlen(s) - 1, 0, 0, &p, &err),
	    -1);
	assert_int_equal(mr_path_parse(s, 6, 0, 0, &p, &err), -1);
	assert_int_equal(mr_path_parse(s, 0, 1, 1, &p, &err), -1);
	assert_int_equal(mr_path_parse("<>", 1, 1, 1, &p, &err), -1);
}

static void
t_local_len(void **state)
{
	const char *s = "<\"a@b\"@local.example>";
	struct mr_path p;
	const char *err;

	(void)state;
	assert_int_equal(mr_path_parse(s, strlen(s), 0, 0, &p, &err),
	    (int)strlen(s));
	assert_int_equal(p.local_len, 5);
	assert_memory_equal(p.addr, "\"a@b\"", 5);
	assert_string_equal(p.domain, "local.example");
}

static void
t_mailbox(void **state)
{
	struct {
		const char	*in;
		const char	*addr;
	} t[] = {
		{ "user@Example.COM", "user@example.com" },
		{ "\"a b\"@x.example", "\"a b\"@x.example" },
		{ "u@[192.0.2.1]", "u@[192.0.2.1]" },
		{ "<user@example.com>", NULL },
		{ "user@example.com ", NULL },
		{ "user@example.com.", NULL },
		{ "user", NULL },
		{ "user@", NULL },
		{ "@example.com", NULL },
		{ "a@b@example.com", NULL },
		{ "", NULL },
		{ X63 "@" D63 "." D63 "." D63 ".a", NULL },
		{ X64 "@" D63 "." D63 "." D63, X64 "@" D63 "." D63 "." D63 },
	};
	struct mr_path p;
	const char *err;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rc = mr_mailbox_parse(t[i].in, strlen(t[i].in), &p, &err);
		if (t[i].addr == NULL) {
			if (rc != -1)
				fail_msg("accepted mailbox \"%s\"", t[i].in);
			continue;
		}
		if (rc != 0)
			fail_msg("rejected mailbox \"%s\": %s", t[i].in, err);
		assert_string_equal(p.addr, t[i].addr);
		check_invariant(&p);
	}
	assert_int_equal(mr_mailbox_parse("a@b\0c", 5, &p, &err), -1);
}

static void
t_domain_valid(void **state)
{
	struct {
		const char	*in;
		int		 ok;
	} t[] = {
		{ "example.com", 1 },
		{ "Example.COM", 1 },
		{ "localhost", 1 },
		{ "a-b.example", 1 },
		{ D255, 1 },
		{ "[192.0.2.1]", 1 },
		{ "[IPv6:::1]", 1 },
		{ "[ipv6:2001:db8::1]", 1 },
		{ "", 0 },
		{ ".", 0 },
		{ "example.com.", 0 },
		{ ".example.com", 0 },
		{ "a..b", 0 },
		{ "-a.example", 0 },
		{ "a-.example", 0 },
		{ "a b", 0 },
		{ "a_b.example", 0 },
		{ D255 "x", 0 },
		{ D63 "x.example", 0 },
		{ "192.0.2.1", 0 },
		{ "[192.0.2.1", 0 },
		{ "[x:y]", 0 },
		{ "[1.2.3.4]x", 0 },
		{ "ex\xc3\xa9.example", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (mr_domain_valid(t[i].in, strlen(t[i].in)) != t[i].ok)
			fail_msg("mr_domain_valid(\"%s\") != %d", t[i].in,
			    t[i].ok);
	assert_int_equal(mr_domain_valid("a\0b", 3), 0);
}

/* The _utf8 variants (RFC 6531 3.3): strictly valid UTF-8 in the local
 * part, quoted or not, and in domain labels; lengths in octets; the plain
 * parsers still refuse every 8-bit byte. */
static void
t_utf8(void **state)
{
	static const char *const bad[] = {
		"<j\xc0\xb6@x.example>",		/* overlong */
		"<j\xed\xbf\xbf@x.example>",		/* surrogate */
		"<j\xc2\x9f@x.example>",		/* C1 control */
		"<j\xf5\x80\x80\x80@x.example>",	/* beyond U+10FFFF */
		"<a@x\xc3.example>",			/* truncated */
		"<\"a\xc2\x80\"@x.example>",		/* C1 in quotes */
		"<a@-\xc3\xa9.example>",		/* leading hyphen */
	};
	char big[80];
	struct mr_path p;
	const char *err;
	size_t i;

	(void)state;
	assert_int_equal(mr_path_parse_utf8("<\"\xe2\x82\xac x\"@\xC3\x89X."
	    "example>", 21, 0, 0, &p, &err), 21);
	assert_string_equal(p.addr, "\"\xe2\x82\xac x\"@\xc3\x89x.example");
	assert_int_equal(p.utf8, 1);
	assert_int_equal(mr_path_parse_utf8("<a@b.example>", 13, 0, 0, &p,
	    &err), 13);
	assert_int_equal(p.utf8, 0);
	assert_int_equal(mr_path_parse("<j\xc3\xb6@x.example>", 14, 0, 0,
	    &p, &err), -1);
	assert_int_equal(mr_mailbox_parse("j\xc3\xb6@x.example", 12, &p,
	    &err), -1);
	assert_int_equal(mr_mailbox_parse_utf8("j\xc3\xb6@x.example", 12,
	    &p, &err), 0);
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (mr_path_parse_utf8(bad[i], strlen(bad[i]), 0, 0, &p,
		    &err) != -1)
			fail_msg("bad row %zu accepted", i);
	/* 32 two-octet characters are 64 octets: the limit */
	for (i = 0; i < 32; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	memcpy(big + 64, "@x.example", 11);
	assert_int_equal(mr_mailbox_parse_utf8(big, strlen(big), &p, &err),
	    0);
	memmove(big + 2, big, strlen(big) + 1);
	assert_int_equal(mr_mailbox_parse_utf8(big, strlen(big), &p, &err),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(t_reparse),
		cmocka_unit_test(t_length_bounds),
		cmocka_unit_test(t_local_len),
		cmocka_unit_test(t_mailbox),
		cmocka_unit_test(t_domain_valid),
		cmocka_unit_test(t_utf8),
	};
	size_t np = sizeof(paths) / sizeof(paths[0]);
	size_t nf = sizeof(fixed) / sizeof(fixed[0]);
	struct CMUnitTest *t;
	size_t i;
	int rc;

	t = calloc(np + nf, sizeof(*t));
	if (t == NULL)
		return 1;
	for (i = 0; i < np; i++) {
		t[i].name = paths[i].name;
		t[i].test_func = t_path;
		t[i].initial_state = (void *)&paths[i];
	}
	for (i = 0; i < nf; i++)
		t[np + i] = fixed[i];
	rc = _cmocka_run_group_tests("addr", t, np + nf, NULL, NULL);
	free(t);
	return rc;
}
