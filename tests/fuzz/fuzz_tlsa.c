/*
 * fuzz_tlsa.c - libFuzzer target for the TLSA record parser
 * (deliverd/dane_tlsa.c), which sees the RDATA of DNS answers.
 *
 * The input is a run of records, each a two-byte big-endian length and
 * that many bytes of RDATA (a short tail is a last, truncated record).
 * Beyond "no crash": every record is counted once, kept or unusable;
 * at most DANE_TLSA_MAX are kept, each a DANE-TA(2) or DANE-EE(3) usage
 * with a known selector, and association data of the size its matching
 * type implies, equal to the bytes it came from.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "dane.h"

static void
check_rr(const struct dane_rr *rr, const uint8_t *p, size_t len)
{
	CHECK(rr->usage == DANE_DANE_TA || rr->usage == DANE_DANE_EE);
	CHECK(rr->selector <= 1);
	CHECK(rr->len + 3 == len);
	if (rr->mtype == 1)
		CHECK(rr->len == 32);
	else if (rr->mtype == 2)
		CHECK(rr->len == 64);
	else
		CHECK(rr->mtype == 0 && rr->len > 0 &&
		    rr->len <= DANE_DATA_MAX);
	CHECK(memcmp(rr->data, p + 3, rr->len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dane_tlsa *t = dane_tlsa_new("_25._tcp.mx.example");
	size_t off = 0, n = 0, len, kept;
	int rc;

	while (off < size) {
		len = size - off < 2 ? 0 : (size_t)data[off] << 8 |
		    data[off + 1];
		off += size - off < 2 ? size - off : 2;
		if (len > size - off)
			len = size - off;
		kept = t->nrr;
		rc = dane_tlsa_add(t, data + off, len);
		CHECK(rc == 0 || rc == 1);
		CHECK(t->nrr == kept + (size_t)rc);
		if (rc == 1)
			check_rr(&t->rr[t->nrr - 1], data + off, len);
		off += len;
		n++;
	}
	CHECK(t->nrr <= DANE_TLSA_MAX);
	CHECK(t->nrr + t->nunusable == n);
	dane_tlsa_ref(t);
	dane_tlsa_unref(t);
	dane_tlsa_unref(t);
	return 0;
}
