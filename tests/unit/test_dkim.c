/*
 * test_dkim.c - DKIM's canonical forms (common/dkim_canon.c) against
 * RFC 6376's examples (3.4.5) and its rules for empty bodies and empty
 * lines at the end, the header splitter's refusals, the From domain that
 * chooses the key, and the keys themselves (common/dkim_key.c): a short
 * RSA key refused, RSA and Ed25519 signatures that OpenSSL verifies.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "dkim.h"

static void
collect(void *arg, const char *p, size_t n)
{
	mr_buf_add(arg, p, n);
}

/* The body's canonical form, fed in one piece, then byte by byte: both
 * must give want. */
static void
body_is(enum mr_dkim_canon c, const char *in, const char *want)
{
	struct mr_dkim_body b;
	struct mr_buf out;
	size_t i;

	mr_buf_init(&out);
	mr_dkim_body_init(&b, c, collect, &out);
	mr_dkim_body_feed(&b, in, strlen(in));
	mr_dkim_body_end(&b);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.len ? out.data : "", want, strlen(want));
	mr_buf_reset(&out);
	mr_dkim_body_init(&b, c, collect, &out);
	for (i = 0; in[i] != '\0'; i++)
		mr_dkim_body_feed(&b, in + i, 1);
	mr_dkim_body_end(&b);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.len ? out.data : "", want, strlen(want));
	mr_buf_free(&out);
}

/* Every field of msg's header section, canonical, concatenated. */
static void
headers_are(enum mr_dkim_canon c, const char *msg, const char *want)
{
	static struct mr_dkim_hdrs h;
	struct mr_buf out;
	const char *why;
	size_t i;

	assert_int_equal(mr_dkim_split(msg, strlen(msg), &h, &why), 0);
	mr_buf_init(&out);
	for (i = 0; i < h.n; i++)
		mr_dkim_hdr_canon(c, h.f[i].p, h.f[i].len, 1, &out);
	assert_string_equal(out.data, want);
	mr_buf_free(&out);
}

/* RFC 6376 3.4.5 */
static const char example[] =
    "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";

static void
test_rfc_example(void **st)
{
	static struct mr_dkim_hdrs h;
	const char *why;

	(void)st;
	headers_are(MR_DKIM_RELAXED, example, "a:X\r\nb:Y Z\r\n");
	headers_are(MR_DKIM_SIMPLE, example, "A: X\r\nB : Y\t\r\n\tZ  \r\n");
	assert_int_equal(mr_dkim_split(example, strlen(example), &h, &why),
	    0);
	assert_int_equal(h.n, 2);
	assert_string_equal(example + h.end, " C \r\nD \t E\r\n\r\n\r\n");
	body_is(MR_DKIM_RELAXED, example + h.end, " C\r\nD E\r\n");
	body_is(MR_DKIM_SIMPLE, example + h.end, " C \r\nD \t E\r\n");
}

/* 3.4.3, 3.4.4: empty bodies, empty lines at the end, a last line
 * without CRLF, lines of white space only. */
static void
test_body_rules(void **st)
{
	(void)st;
	body_is(MR_DKIM_SIMPLE, "", "\r\n");
	body_is(MR_DKIM_RELAXED, "", "");
	body_is(MR_DKIM_SIMPLE, "\r\n\r\n\r\n", "\r\n");
	body_is(MR_DKIM_RELAXED, "\r\n\r\n", "");
	body_is(MR_DKIM_SIMPLE, "abc", "abc\r\n");
	body_is(MR_DKIM_RELAXED, "abc  ", "abc\r\n");
	body_is(MR_DKIM_RELAXED, "a\r\n  \r\n\t\r\n", "a\r\n");
	body_is(MR_DKIM_SIMPLE, "a\r\n  \r\n", "a\r\n  \r\n");
	body_is(MR_DKIM_RELAXED, "a\r\n \r\nb\r\n", "a\r\n\r\nb\r\n");
	body_is(MR_DKIM_RELAXED, "x \t y\r\n", "x y\r\n");
	/* a bare CR is content, CRLF split across feeds is one line end */
	body_is(MR_DKIM_SIMPLE, "a\rb\r\n", "a\rb\r\n");
	body_is(MR_DKIM_SIMPLE, "a\r", "a\r\r\n");
	/* 8-bit bytes pass unchanged */
	body_is(MR_DKIM_RELAXED, "gr\xc3\xbc\xc3\x9f  dich\r\n",
	    "gr\xc3\xbc\xc3\x9f dich\r\n");
}

static void
test_header_relaxed(void **st)
{
	struct mr_buf out;
	const char sig[] = "DKIM-Signature: v=1;  a=rsa-sha256;\r\n\tb=";

	(void)st;
	headers_are(MR_DKIM_RELAXED, "SUBJECT:  Hello   World \r\n\r\n",
	    "subject:Hello World\r\n");
	headers_are(MR_DKIM_RELAXED, "To:\r\n  a@b\r\n\r\n", "to:a@b\r\n");
	headers_are(MR_DKIM_RELAXED, "X:\r\n\r\n", "x:\r\n");
	/* the signature field itself: no CRLF at its end */
	mr_buf_init(&out);
	mr_dkim_hdr_canon(MR_DKIM_RELAXED, sig, sizeof(sig) - 1, 0, &out);
	assert_string_equal(out.data, "dkim-signature:v=1; a=rsa-sha256; b=");
	mr_buf_reset(&out);
	mr_dkim_hdr_canon(MR_DKIM_SIMPLE, sig, sizeof(sig) - 1, 0, &out);
	assert_string_equal(out.data, sig);
	mr_buf_free(&out);
}

static void
wire_is(const char *in, size_t n, const char *want, size_t wlen)
{
	struct mr_dkim_wire w;
	struct mr_buf out;

	mr_buf_init(&out);
	mr_dkim_wire_init(&w, collect, &out);
	mr_dkim_wire_feed(&w, in, n);
	mr_dkim_wire_end(&w);
	assert_int_equal(out.len, wlen);
	assert_memory_equal(out.len ? out.data : "", want, wlen);
	mr_buf_free(&out);
}

/* What deliverd would send (dot-stuffing aside) is what is signed. */
static void
test_wire(void **st)
{
	char line[2100], want[2200];

	(void)st;
	wire_is("", 0, "", 0);
	wire_is("a\nb\rc\r\n", 7, "a\r\nb\r\nc\r\n", 9);
	wire_is("a\0b", 4, "ab\r\n", 4);
	wire_is("x\r", 2, "x\r\n", 3);
	/* 2000 octets: folded after 998, then after 997 more (the space
	 * counts) */
	memset(line, 'x', 2000);
	memset(want, 'x', sizeof(want));
	memcpy(want + 998, "\r\n ", 3);
	memcpy(want + 998 + 3 + 997, "\r\n ", 3);
	memcpy(want + 2000 + 6, "\r\n", 2);
	wire_is(line, 2000, want, 2008);
	memcpy(want + 998, "\r\n", 2);
	wire_is(line, 998, want, 1000);
}

static void
test_split(void **st)
{
	static struct mr_dkim_hdrs h;
	const char *why, *m;

	(void)st;
	m = "From: a@b\r\nSubject: x\r\n y\r\n\r\nbody\r\n";
	assert_int_equal(mr_dkim_split(m, strlen(m), &h, &why), 0);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.f[0].namelen, 4);
	assert_int_equal(h.f[1].len, strlen("Subject: x\r\n y\r\n"));
	assert_string_equal(m + h.end, "body\r\n");
	/* a header section only: the body is empty */
	m = "From: a@b\r\n";
	assert_int_equal(mr_dkim_split(m, strlen(m), &h, &why), 0);
	assert_int_equal(h.end, strlen(m));
	/* refused: a continuation first, a line that is no field */
	m = " x\r\nFrom: a@b\r\n\r\n";
	assert_int_equal(mr_dkim_split(m, strlen(m), &h, &why), -1);
	m = "From: a@b\r\nno colon here\r\n\r\n";
	assert_int_equal(mr_dkim_split(m, strlen(m), &h, &why), -1);
	m = ": empty name\r\n\r\n";
	assert_int_equal(mr_dkim_split(m, strlen(m), &h, &why), -1);
}

static void
test_split_bounds(void **st)
{
	static struct mr_dkim_hdrs h;
	struct mr_buf m;
	const char *why;
	size_t i;

	(void)st;
	mr_buf_init(&m);
	for (i = 0; i < MR_DKIM_FIELDS_MAX; i++)
		mr_buf_adds(&m, "X: y\r\n");
	assert_int_equal(mr_dkim_split(m.data, m.len, &h, &why), 0);
	mr_buf_adds(&m, "X: y\r\n");
	assert_int_equal(mr_dkim_split(m.data, m.len, &h, &why), -1);
	mr_buf_reset(&m);
	mr_buf_adds(&m, "X: ");
	for (i = 0; i < MR_DKIM_HEADER_MAX / 32; i++)
		mr_buf_adds(&m, "\r\n yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
		    "yyyyyyyyyyyyy");
	mr_buf_adds(&m, "\r\nY: z\r\n\r\n");
	assert_int_equal(mr_dkim_split(m.data, m.len, &h, &why), -1);
	mr_buf_free(&m);
}

static void
from_is(const char *v, const char *want)
{
	char d[256];
	int rc = mr_dkim_from_domain(v, strlen(v), d, sizeof(d));

	if (want == NULL) {
		assert_int_equal(rc, -1);
		return;
	}
	assert_int_equal(rc, 0);
	assert_string_equal(d, want);
}

static void
test_from_domain(void **st)
{
	(void)st;
	from_is(" Joe <Joe@Example.COM>\r\n", "example.com");
	from_is(" joe@example.org (Joe Q. Public)\r\n", "example.org");
	from_is(" \"a@evil.com\" <x@good.org>\r\n", "good.org");
	from_is(" (a@evil.com) x@good.org\r\n", "good.org");
	from_is(" Joe\r\n <joe@\r\n example.net>\r\n", NULL);
	from_is(" Joe\r\n <joe@example.net>\r\n", "example.net");
	from_is(" a@b.com, c@d.com\r\n", NULL);
	from_is(" list: a@b.com;\r\n", NULL);
	from_is(" joe@[192.0.2.1]\r\n", NULL);
	from_is(" <joe@example.com\r\n", NULL);
	from_is(" \"unterminated <x@y.com>\r\n", NULL);
	from_is(" nobody\r\n", NULL);
	from_is("", NULL);
}

/* A key of type id (and RSA bits) written as PEM to a file. */
static char *
key_file(const char *type, unsigned bits)
{
	static char path[64];
	EVP_PKEY *k;
	FILE *fp;
	int fd;

	k = bits ? EVP_PKEY_Q_keygen(NULL, NULL, type, (size_t)bits) :
	    EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(k);
	snprintf(path, sizeof(path), "/tmp/test_dkim.XXXXXX");
	assert_true((fd = mkstemp(path)) != -1);
	assert_non_null(fp = fdopen(fd, "w"));
	assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL,
	    NULL), 1);
	fclose(fp);
	EVP_PKEY_free(k);
	return path;
}

/* Signs a digest and verifies it as a receiver would. */
static void
sign_verify(EVP_PKEY *k)
{
	unsigned char d[32], sig[1024];
	struct mr_buf out;
	EVP_PKEY_CTX *ctx;
	EVP_MD_CTX *md;
	int n;

	memset(d, 0x5a, sizeof(d));
	mr_buf_init(&out);
	assert_int_equal(mr_dkim_key_sign(k, d, &out), 0);
	n = EVP_DecodeBlock(sig, (unsigned char *)out.data, (int)out.len);
	assert_true(n > 0);
	while (out.len > 0 && out.data[--out.len] == '=')
		n--;
	if (mr_dkim_key_is_ed25519(k)) {
		assert_non_null(md = EVP_MD_CTX_new());
		assert_int_equal(EVP_DigestVerifyInit(md, NULL, NULL, NULL,
		    k), 1);
		assert_int_equal(EVP_DigestVerify(md, sig, (size_t)n, d,
		    sizeof(d)), 1);
		d[0] ^= 1;
		assert_int_not_equal(EVP_DigestVerify(md, sig, (size_t)n, d,
		    sizeof(d)), 1);
		EVP_MD_CTX_free(md);
	} else {
		assert_non_null(ctx = EVP_PKEY_CTX_new(k, NULL));
		assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
		assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx,
		    EVP_sha256()), 1);
		assert_int_equal(EVP_PKEY_verify(ctx, sig, (size_t)n, d,
		    sizeof(d)), 1);
		EVP_PKEY_CTX_free(ctx);
	}
	mr_buf_free(&out);
}

static void
test_keys(void **st)
{
	char err[512], *path;
	EVP_PKEY *k;

	(void)st;
	path = key_file("RSA", 1024);
	assert_null(mr_dkim_key_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "2048 at least"));
	unlink(path);
	path = key_file("RSA", 2048);
	assert_non_null(k = mr_dkim_key_load(path, err, sizeof(err)));
	assert_false(mr_dkim_key_is_ed25519(k));
	sign_verify(k);
	EVP_PKEY_free(k);
	unlink(path);
	path = key_file("ED25519", 0);
	assert_non_null(k = mr_dkim_key_load(path, err, sizeof(err)));
	assert_true(mr_dkim_key_is_ed25519(k));
	sign_verify(k);
	EVP_PKEY_free(k);
	unlink(path);
	assert_null(mr_dkim_key_load("/nonexistent/key", err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_example),
		cmocka_unit_test(test_body_rules),
		cmocka_unit_test(test_header_relaxed),
		cmocka_unit_test(test_wire),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_split_bounds),
		cmocka_unit_test(test_from_domain),
		cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests_name("dkim", tests, NULL, NULL);
}
