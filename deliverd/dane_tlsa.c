/*
 * dane_tlsa.c - TLSA records (RFC 6698 2.1) parsed into a bounded set,
 * keeping only those RFC 7672 lets an SMTP client use.
 *
 * Security: every byte is hostile.  The RDATA comes from a DNS answer;
 * its length is checked before each field is read, the association data
 * must have exactly the size its matching type implies (SHA2-256: 32,
 * SHA2-512: 64) or be a full object of at most DANE_DATA_MAX bytes, and
 * at most DANE_TLSA_MAX records are kept.  Nothing here decides trust:
 * that is OpenSSL's DANE verification, fed only what this file kept.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dane.h"

#define SEL_CERT	0	/* full certificate */
#define SEL_SPKI	1	/* SubjectPublicKeyInfo */
#define MT_FULL		0
#define MT_SHA256	1
#define MT_SHA512	2

struct dane_tlsa *
dane_tlsa_new(const char *base)
{
	struct dane_tlsa *t = mr_xcalloc(1, sizeof(*t));

	t->base = mr_xstrdup(base);
	t->refs = 1;
	return t;
}

/* RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP. */
static int
tlsa_usable(unsigned usage, unsigned sel, unsigned mt, size_t len)
{
	if (usage != DANE_DANE_TA && usage != DANE_DANE_EE)
		return 0;
	if (sel != SEL_CERT && sel != SEL_SPKI)
		return 0;
	switch (mt) {
	case MT_FULL:
		return len > 0 && len <= DANE_DATA_MAX;
	case MT_SHA256:
		return len == 32;
	case MT_SHA512:
		return len == 64;
	default:
		return 0;
	}
}

int
dane_tlsa_add(struct dane_tlsa *t, const unsigned char *p, size_t len)
{
	struct dane_rr *rr;

	if (len < 3 || !tlsa_usable(p[0], p[1], p[2], len - 3) ||
	    t->nrr == DANE_TLSA_MAX) {
		t->nunusable++;
		return 0;
	}
	rr = &t->rr[t->nrr++];
	rr->usage = p[0];
	rr->selector = p[1];
	rr->mtype = p[2];
	rr->len = len - 3;
	rr->data = mr_xmalloc(rr->len);
	memcpy(rr->data, p + 3, rr->len);
	return 1;
}

void
dane_tlsa_ref(struct dane_tlsa *t)
{
	if (t != NULL)
		t->refs++;
}

void
dane_tlsa_unref(struct dane_tlsa *t)
{
	size_t i;

	if (t == NULL || --t->refs > 0)
		return;
	for (i = 0; i < t->nrr; i++)
		free(t->rr[i].data);
	free(t->base);
	free(t);
}
