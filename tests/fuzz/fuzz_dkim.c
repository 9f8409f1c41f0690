/*
 * fuzz_dkim.c - libFuzzer target for DKIM's canonical forms and the From
 * domain (common/dkim_canon.c), which queued runs on every message it
 * signs.
 *
 * Input: a message (header section, empty line, body).  Beyond "no
 * crash": the wire form (what deliverd sends, which is what is signed)
 * has CRLF line ends only, no NUL and no line over 998 octets, and is
 * its own wire form; every field's relaxed form is "name:value" CRLF with a lower
 * case name, no line break inside and no white space at the value's ends
 * or in runs; its simple form is the field unchanged; the body's
 * canonical forms end in CRLF (or are empty, relaxed), never end in an
 * empty line, have no white space runs or trailing white space
 * (relaxed), come out the same fed whole or in pieces, and are their own
 * canonical forms (canonicalising twice changes nothing); a From domain
 * is lower case domain bytes within its buffer.
 */
#include "config.h"

#include "buf.h"
#include "dkim.h"
#include "fuzz.h"

static void
collect(void *arg, const char *p, size_t n)
{
	mr_buf_add(arg, p, n);
}

static void
body(enum mr_dkim_canon c, const char *p, size_t n, size_t step,
    struct mr_buf *out)
{
	struct mr_dkim_body b;
	size_t i;

	mr_dkim_body_init(&b, c, collect, out);
	for (i = 0; i < n; i += step)
		mr_dkim_body_feed(&b, p + i, n - i < step ? n - i : step);
	mr_dkim_body_end(&b);
}

static void
check_body(enum mr_dkim_canon c, const char *p, size_t n)
{
	struct mr_buf a, b, again;
	size_t i;

	mr_buf_init(&a);
	mr_buf_init(&b);
	mr_buf_init(&again);
	body(c, p, n, n > 0 ? n : 1, &a);
	body(c, p, n, 7, &b);
	CHECK(a.len == b.len && (a.len == 0 || memcmp(a.data, b.data,
	    a.len) == 0));
	CHECK(c == MR_DKIM_RELAXED || a.len >= 2);
	if (a.len > 0) {
		CHECK(a.len >= 2 && memcmp(a.data + a.len - 2, "\r\n", 2) == 0);
		CHECK(a.len == 2 || a.len < 4 ||
		    memcmp(a.data + a.len - 4, "\r\n\r\n", 4) != 0);
	}
	for (i = 0; c == MR_DKIM_RELAXED && i < a.len; i++) {
		CHECK(a.data[i] != '\t');
		CHECK(a.data[i] != ' ' || (i + 2 < a.len && a.data[i + 1] !=
		    ' ' && memcmp(a.data + i + 1, "\r\n", 2) != 0));
	}
	body(c, a.data != NULL ? a.data : "", a.len, 5, &again);
	CHECK(again.len == a.len && (a.len == 0 || memcmp(again.data, a.data,
	    a.len) == 0));
	mr_buf_free(&a);
	mr_buf_free(&b);
	mr_buf_free(&again);
}

static void
check_relaxed(const struct mr_dkim_field *f)
{
	struct mr_buf o;
	const char *colon;
	size_t i;

	mr_buf_init(&o);
	mr_dkim_hdr_canon(MR_DKIM_RELAXED, f->p, f->len, 1, &o);
	CHECK(o.len >= f->namelen + 3);
	CHECK(memcmp(o.data + o.len - 2, "\r\n", 2) == 0);
	CHECK(memmem(o.data, o.len, "\r\n", 2) == o.data + o.len - 2);
	colon = memchr(o.data, ':', o.len);
	CHECK(colon == o.data + f->namelen);
	for (i = 0; i < f->namelen; i++)
		CHECK(o.data[i] < 'A' || o.data[i] > 'Z');
	for (i = f->namelen + 1; i < o.len - 2; i++) {
		CHECK(o.data[i] != '\t');
		CHECK(o.data[i] != ' ' || (i > f->namelen + 1 &&
		    i + 1 < o.len - 2 && o.data[i + 1] != ' '));
	}
	mr_buf_free(&o);
}

static void
check_simple(const struct mr_dkim_field *f)
{
	struct mr_buf o;

	mr_buf_init(&o);
	mr_dkim_hdr_canon(MR_DKIM_SIMPLE, f->p, f->len, 1, &o);
	CHECK(o.len == f->len && memcmp(o.data, f->p, f->len) == 0);
	mr_buf_free(&o);
}

static void
check_from(const struct mr_dkim_field *f)
{
	const char *colon = memchr(f->p, ':', f->len);
	char d[64];
	size_t i, n;

	CHECK(colon != NULL);
	memset(d, 'Z', sizeof(d));
	if (mr_dkim_from_domain(colon + 1, f->len - (size_t)(colon + 1 -
	    f->p), d, sizeof(d)) == -1)
		return;
	n = strlen(d);
	CHECK(n > 0 && n < sizeof(d));
	for (i = 0; i < n; i++)
		CHECK((d[i] < 'A' || d[i] > 'Z') && d[i] != '@' &&
		    d[i] != ' ' && d[i] != '<' && d[i] != '>');
}

static void
wire(const char *p, size_t n, struct mr_buf *out)
{
	struct mr_dkim_wire w;

	mr_dkim_wire_init(&w, collect, out);
	mr_dkim_wire_feed(&w, p, n);
	mr_dkim_wire_end(&w);
}

/* The wire form: CRLF line ends only, no NUL, no line over 998 octets,
 * and its own wire form. */
static void
check_wire(const char *p, size_t n)
{
	struct mr_buf a, b;
	size_t i, col = 0;

	mr_buf_init(&a);
	mr_buf_init(&b);
	wire(p, n, &a);
	for (i = 0; i < a.len; i++) {
		CHECK(a.data[i] != '\0');
		if (a.data[i] == '\r') {
			CHECK(i + 1 < a.len && a.data[i + 1] == '\n');
			col = 0;
			i++;
			continue;
		}
		CHECK(a.data[i] != '\n');
		CHECK(++col <= MR_DKIM_LINE_MAX);
	}
	CHECK(a.len == 0 || memcmp(a.data + a.len - 2, "\r\n", 2) == 0);
	wire(a.data != NULL ? a.data : "", a.len, &b);
	CHECK(a.len == b.len && (a.len == 0 || memcmp(a.data, b.data,
	    a.len) == 0));
	mr_buf_free(&a);
	mr_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mr_dkim_hdrs h;
	const char *p = (const char *)data, *why;
	size_t i;

	check_wire(p, size);
	check_body(MR_DKIM_RELAXED, p, size);
	check_body(MR_DKIM_SIMPLE, p, size);
	if (mr_dkim_split(p, size, &h, &why) == -1) {
		CHECK(why != NULL);
		return 0;
	}
	CHECK(h.n <= MR_DKIM_FIELDS_MAX && h.end <= size);
	for (i = 0; i < h.n; i++) {
		CHECK(h.f[i].p >= p && h.f[i].p + h.f[i].len <= p + size);
		CHECK(h.f[i].namelen > 0 && h.f[i].namelen < h.f[i].len);
		check_relaxed(&h.f[i]);
		check_simple(&h.f[i]);
		if (h.f[i].namelen == 4 && strncasecmp(h.f[i].p, "from", 4) ==
		    0)
			check_from(&h.f[i]);
	}
	return 0;
}
