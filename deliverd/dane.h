/*
 * dane.h - DANE for direct MX delivery (RFC 7672): the DNSSEC status of
 * a lookup, a host's TLSA records as parsed, and what deliverd's SMTP
 * client and the MTA-STS code ask of them.
 *
 * Security: TLSA records are untrusted input from the network; they are
 * parsed (dane_tlsa.c) into a bounded, typed set before OpenSSL sees
 * them, and only those that came with a DNSSEC "secure" verdict are kept.
 */
#ifndef MR_DANE_H
#define MR_DANE_H

#include <stddef.h>
#include <stdint.h>

#define DANE_TLSA_MAX	16	/* records kept per TLSA RRset */
#define DANE_DATA_MAX	2048	/* bytes of one record's association data */

/* DNSSEC verdict of an answer (libunbound's secure / bogus bits) */
enum dane_sec {
	DANE_INSECURE = 0,	/* unsigned, or validation off */
	DANE_SECURE,
	DANE_BOGUS
};

/* TLSA certificate usages (RFC 6698 2.1.1, RFC 7218 names) */
#define DANE_PKIX_TA	0
#define DANE_PKIX_EE	1
#define DANE_DANE_TA	2
#define DANE_DANE_EE	3

struct dane_rr {
	uint8_t		 usage, selector, mtype;
	unsigned char	*data;
	size_t		 len;
};

/*
 * The validated TLSA RRset of one MX host and port, shared by the
 * addresses of that host (refs).  nrr == 0 with nunusable > 0: records
 * exist but none is usable, so TLS is mandatory yet unauthenticated
 * (RFC 7672 2.2).
 */
struct dane_tlsa {
	char		*base;		/* "_25._tcp.mx.example.com" */
	struct dane_rr	 rr[DANE_TLSA_MAX];
	size_t		 nrr;
	size_t		 nunusable;
	unsigned	 refs;
};

/* dane_tlsa.c: parsing, no DNS, no OpenSSL (the fuzz target's part) */
struct dane_tlsa *dane_tlsa_new(const char *base);
/* Adds one record's RDATA: 1 kept, 0 unusable (RFC 7672 3.1.3: PKIX-TA
 * and PKIX-EE, unknown selectors and matching types, malformed or
 * wrongly sized data), never fails otherwise. */
int		 dane_tlsa_add(struct dane_tlsa *, const unsigned char *,
		    size_t);
void		 dane_tlsa_ref(struct dane_tlsa *);
void		 dane_tlsa_unref(struct dane_tlsa *);

#endif
