/*
 * fuzz_addr.c - libFuzzer target for the RFC 5321 path parser (addr.c).
 *
 * The first input byte holds the flags (bit 0 allow_null, bit 1
 * allow_postmaster), the rest is the path.  Beyond "no crash", every
 * accepted path must keep the promise of addr.h: no NUL, control, space
 * or 8-bit byte outside quotes, a lower-case domain, consumed <= len, and
 * "<" addr ">" parses back to the same address.
 */
#include "config.h"

#include "fuzz.h"
#include "addr.h"

static void
check_addr(const struct mr_path *p)
{
	const unsigned char *c;
	int quoted = 0;

	CHECK(strlen(p->addr) <= MR_PATH_MAX);
	if (p->null || p->postmaster)
		return;
	CHECK(p->local_len > 0 && p->local_len <= MR_LOCAL_MAX);
	CHECK(p->addr[p->local_len] == '@');
	CHECK(p->domain == p->addr + p->local_len + 1);
	CHECK(p->domain[0] != '\0' && strlen(p->domain) <= MR_DOMAIN_MAX);
	for (c = (const unsigned char *)p->addr; *c != '\0'; c++) {
		if (quoted && *c == '\\') {
			c++;
			CHECK(*c >= 0x20 && *c < 0x7f);
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
	CHECK(mr_domain_valid(p->domain, strlen(p->domain)));
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
	CHECK(mr_path_parse(buf, (size_t)n, allow_null, allow_pm, &q,
	    &err) == n);
	CHECK(strcmp(p->addr, q.addr) == 0);
	CHECK(p->local_len == q.local_len);
	CHECK(p->null == q.null && p->postmaster == q.postmaster);
	if (p->null || p->postmaster)
		return;
	CHECK(mr_mailbox_parse(p->addr, strlen(p->addr), &q, &err) == 0);
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
	s = (const char *)data + 1;
	len = size - 1;

	rc = mr_path_parse(s, len, allow_null, allow_pm, &p, &err);
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
	if (mr_mailbox_parse(s, len, &p, &err) == 0) {
		CHECK(len == strlen(p.addr));
		check_addr(&p);
		check_reparse(&p, 0, 0);
	} else
		CHECK(err != NULL && p.addr[0] == '\0');

	if (mr_domain_valid(s, len))
		CHECK(len <= MR_DOMAIN_MAX && memchr(s, '\0', len) == NULL);
	return 0;
}
