/*
 * fuzz_proxy.c - libFuzzer target for the PROXY protocol header parser
 * (common/proxy_hdr.c).
 *
 * The input is the first bytes of a connection to a proxy-protocol
 * listener.  Beyond "no crash", every result must keep the promise of
 * proxy_hdr.h: a complete header took between 1 and MR_PROXY_MAX bytes of
 * the input (a version 1 line at most 107, ending in CRLF) and carries an
 * IPv4 or IPv6 client unless it is local, never an IPv4-mapped IPv6 one;
 * the same bytes alone give the same header, and any shorter prefix of
 * them asks for more; "more" is never said once MR_PROXY_MAX bytes are
 * there; a refusal carries a reason fit for one log line.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proxy_hdr.h"

static void
check_addr(const struct sockaddr_storage *ss, socklen_t len)
{
	if (ss->ss_family == AF_INET) {
		CHECK(len == sizeof(struct sockaddr_in));
		return;
	}
	CHECK(ss->ss_family == AF_INET6);
	CHECK(len == sizeof(struct sockaddr_in6));
	CHECK(!IN6_IS_ADDR_V4MAPPED(
	    &((const struct sockaddr_in6 *)ss)->sin6_addr));
}

static void
check_ok(const uint8_t *data, size_t size, const struct mr_proxy_hdr *h)
{
	struct mr_proxy_hdr again;

	CHECK(h->version == 1 || h->version == 2);
	CHECK(h->len > 0 && h->len <= size && h->len <= MR_PROXY_MAX);
	CHECK(h->error == NULL);
	if (h->version == 1) {
		CHECK(h->len <= MR_PROXY_V1_MAX);
		CHECK(data[h->len - 2] == '\r' && data[h->len - 1] == '\n');
		CHECK(memchr(data, '\n', h->len - 1) == NULL);
	} else
		CHECK(h->len >= MR_PROXY_V2_FIXED);
	if (!h->local) {
		check_addr(&h->src, h->srclen);
		check_addr(&h->dst, h->dstlen);
	}
	/* the header's own bytes decide it, not what follows */
	CHECK(mr_proxy_parse(data, h->len, &again) == MR_PROXY_OK);
	CHECK(again.len == h->len && again.local == h->local);
	CHECK(memcmp(&again.src, &h->src, sizeof(h->src)) == 0);
	CHECK(mr_proxy_parse(data, h->len - 1, &again) == MR_PROXY_MORE);
	CHECK(mr_proxy_parse(data, h->len / 2, &again) == MR_PROXY_MORE);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mr_proxy_hdr h;

	switch (mr_proxy_parse(data, size, &h)) {
	case MR_PROXY_OK:
		check_ok(data, size, &h);
		break;
	case MR_PROXY_MORE:
		CHECK(size < MR_PROXY_MAX);
		CHECK(size == 0 || data[0] != 'P' || size < MR_PROXY_V1_MAX);
		break;
	case MR_PROXY_BAD:
		CHECK(h.error != NULL && h.error[0] != '\0');
		CHECK(strpbrk(h.error, "\r\n") == NULL);
		CHECK(strlen(h.error) < 128);
		break;
	default:
		CHECK(!"unknown result");
	}
	return 0;
}
