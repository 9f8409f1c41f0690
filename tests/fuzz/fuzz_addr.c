/*
 * fuzz_addr.c - libFuzzer target for the RFC 5321 path parser (addr.c).
 *
 * The first input byte holds the flags (bit 0 allow_null, bit 1
 * allow_postmaster, bit 2 the _utf8 variants of SMTPUTF8), the rest is
 * the path.  Beyond "no crash", every accepted path must keep the promise
 * of addr.h: no NUL, control, space or (without bit 2) 8-bit byte outside
 * quotes, 8-bit bytes only as strictly valid UTF-8 without C1 controls
 * (checked by an independent decoder here), a lower-case domain, consumed
 * <= len, and "<" addr ">" parses back to the same address.
 */
#include "config.h"

#include "fuzz.h"
#include "addr.h"

static int utf8_mode;

/* Decodes one UTF-8 character at s: its length, or 0 when it is not a
 * shortest-form scalar value above U+009F (no C1 control, no surrogate). */
static size_t
ref_utf8(const unsigned char *s)
{
	unsigned long cp;
	size_t n, i;

	if (s[0] >= 0xc0 && s[0] < 0xe0) {
		n = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] < 0xf0) {
		n = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] < 0xf8) {
		n = 4;
		cp = s[0] & 0x07u;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 2 && cp < 0xa0) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Every 8-bit byte of s in valid UTF-8, and only in UTF-8 mode; returns
 * whether there was one. */
static int
check_utf8(const char *s)
{
	const unsigned char *c = (const unsigned char *)s;
	size_t n;
	int seen = 0;

	while (*c != '\0') {
		if (*c < 0x80) {
			c++;
			continue;
		}
		CHECK(utf8_mode);
		n = ref_utf8(c);
		CHECK(n > 0);
		c += n;
		seen = 1;
	}
	return seen;
}

static void
check_addr(const struct mr_path *p)
{
	const unsigned char *c;
	int quoted = 0;

	CHECK(p->utf8 == check_utf8(p->addr));
	CHECK(strlen(p->addr) <= MR_PATH_MAX);
	if (p->null || p->postmaster)
		return;
	CHECK(p->local_len > 0 && p->local_len <= MR_LOCAL_MAX);
	CHECK(p->addr[p->local_len] == '@');
	CHECK(p->domain == p->addr + p->local_len + 1);
	CHECK(p->domain[0] != '\0' && strlen(p->domain) <= MR_DOMAIN_MAX);
	for (c = (const unsigned char *)p->addr; *c != '\0'; c++) {
		if (*c >= 0x80)
			continue;	/* checked by check_utf8 */
		if (quoted && *c == '\\') {
			c++;
			CHECK(*c >= 0x20 && *c != 0x7f);
			continue;
		}
		if (*c == '"')
			quoted = !quoted;
		if (quoted)
			CHECK(*c >= 0x20 && *c < 0x7f);
		else
			CHECK(*c > 0x20 && *c < 0x7f);
	}
	CHECK(!quoted);
	for (c = (const unsigned char *)p->domain; *c != '\0'; c++)
		CHECK(!(*c >= 'A' && *c <= 'Z'));
	if (!check_utf8(p->domain))
		CHECK(mr_domain_valid(p->domain, strlen(p->domain)));
}

static int
path_parse(const char *s, size_t len, int allow_null, int allow_pm,
    struct mr_path *p, const char **err)
{
	if (utf8_mode)
		return mr_path_parse_utf8(s, len, allow_null, allow_pm, p,
		    err);
	return mr_path_parse(s, len, allow_null, allow_pm, p, err);
}

static int
mailbox_parse(const char *s, size_t len, struct mr_path *p, const char **err)
{
	if (utf8_mode)
		return mr_mailbox_parse_utf8(s, len, p, err);
	return mr_mailbox_parse(s, len, p, err);
}

/* "<" addr ">" must parse to the same address, as must the bare mailbox. */
static void
check_reparse(const struct mr_path *p, int allow_null, int allow_pm)
{
	char buf[MR_PATH_MAX + 3];
	struct mr_path q;
	const char *err;
	int n;

	n = snprintf(buf, sizeof(buf), "<%s>", p->addr);
	CHECK(n > 0 && (size_t)n < sizeof(buf));
	CHECK(path_parse(buf, (size_t)n, allow_null, allow_pm, &q,
	    &err) == n);
	CHECK(strcmp(p->addr, q.addr) == 0);
	CHECK(p->local_len == q.local_len);
	CHECK(p->null == q.null && p->postmaster == q.postmaster);
	if (p->null || p->postmaster)
		return;
	CHECK(mailbox_parse(p->addr, strlen(p->addr), &q, &err) == 0);
	CHECK(strcmp(p->addr, q.addr) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mr_path p;
	const char *err = NULL, *s;
	int allow_null, allow_pm, rc;
	size_t len;

	if (size < 1)
		return 0;
	allow_null = data[0] & 1;
	allow_pm = (data[0] >> 1) & 1;
	utf8_mode = (data[0] >> 2) & 1;
	s = (const char *)data + 1;
	len = size - 1;

	rc = path_parse(s, len, allow_null, allow_pm, &p, &err);
	if (rc == -1) {
		CHECK(err != NULL && p.addr[0] == '\0');
	} else {
		CHECK(rc >= 2 && (size_t)rc <= len && s[rc - 1] == '>');
		CHECK((size_t)rc == len || s[rc] == ' ');
		CHECK(!p.null || allow_null);
		CHECK(!p.postmaster || allow_pm);
		check_addr(&p);
		check_reparse(&p, allow_null, allow_pm);
	}

	err = NULL;
	if (mailbox_parse(s, len, &p, &err) == 0) {
		CHECK(len == strlen(p.addr));
		check_addr(&p);
		check_reparse(&p, 0, 0);
	} else
		CHECK(err != NULL && p.addr[0] == '\0');

	if (mr_domain_valid(s, len))
		CHECK(len <= MR_DOMAIN_MAX && memchr(s, '\0', len) == NULL);
	return 0;
}
