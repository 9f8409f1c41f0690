/*
 * fuzz_masq_hdr.c - libFuzzer target for masquerade-from's rewrite of
 * the From fields (common/masq_hdr.c).
 *
 * Input: a message's first bytes, the first byte saying whether they are
 * all of it (eof).  Beyond "no crash": what is replaced lies within the
 * input; the rewrite adds and removes no line (as many LF bytes as the
 * bytes it replaces); it contains the domain when it says it changed
 * something; and a second pass over the output changes the same fields
 * to the same bytes (the domain is replaced by itself).
 */
#include "config.h"

#include "buf.h"
#include "fuzz.h"
#include "masq_hdr.h"

#define DOMAIN	"masq.example"

static size_t
lines(const char *p, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += p[i] == '\n';
	return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mr_buf out, again;
	const char *hdr;
	size_t skip = 0, skip2 = 0;
	int eof;

	if (size < 1)
		return 0;
	eof = data[0] & 1;
	hdr = (const char *)data + 1;
	size--;
	mr_buf_init(&out);
	mr_buf_init(&again);
	if (mr_masq_from(hdr, size, eof, DOMAIN, &out, &skip) == 1) {
		CHECK(skip <= size);
		CHECK(lines(out.data, out.len) == lines(hdr, skip));
		CHECK(memmem(out.data, out.len, DOMAIN, strlen(DOMAIN)) !=
		    NULL);
		/* the whole rewritten prefix, then the rest as it was */
		if (mr_masq_from(out.data, out.len, 1, DOMAIN, &again,
		    &skip2) == 1 && skip2 == out.len)
			CHECK(again.len == out.len &&
			    memcmp(again.data, out.data, out.len) == 0);
	}
	mr_buf_free(&out);
	mr_buf_free(&again);
	return 0;
}
