/*
 * proxy_hdr.c - the PROXY protocol header, versions 1 and 2, from
 * untrusted input (HAProxy's "The PROXY protocol" specification).
 *
 * Owns the one parser that turns the first bytes of a connection to a
 * proxy-protocol listener into a struct mr_proxy_hdr: the client address
 * every later access, relay, limit and log decision uses.
 *
 * Security: every byte is hostile, and a header that parses is believed,
 * so the parser is strict: version 1 is the exact grammar (single spaces,
 * printable bytes, CRLF within 107 bytes, addresses of the family the
 * line names, ports up to 65535); version 2 must carry the 12-byte
 * signature, version 2, a known command and one of the families the
 * specification lists, and is read up to MR_PROXY_V2_MAX bytes at most.
 * Nothing is copied before its length is checked against the buffer it
 * goes to.  The function touches nothing but its arguments: no allocation,
 * no system call, so the fuzz target and the unit tests call it as smtpd
 * does.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <string.h>

#include "proxy_hdr.h"

static const char v1_sig[] = "PROXY";
static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define V2_LOCAL	0x0
#define V2_PROXY	0x1
/* The family bytes of specification 2.2: address family, protocol. */
#define V2_UNSPEC	0x00
#define V2_TCP4		0x11
#define V2_UDP4		0x12
#define V2_TCP6		0x21
#define V2_UDP6		0x22
#define V2_STREAM_UNIX	0x31
#define V2_DGRAM_UNIX	0x32
#define V2_TCP4_LEN	12	/* two addresses, two ports */
#define V2_TCP6_LEN	36

#define FIELD_MAX	64	/* longer than any address or port */

static enum mr_proxy_rc
bad(struct mr_proxy_hdr *out, const char *why)
{
	out->error = why;
	return MR_PROXY_BAD;
}

/* An address in network order as a socket address; an IPv4-mapped IPv6
 * address becomes the IPv4 address it carries. */
static void
set_addr(struct sockaddr_storage *ss, socklen_t *sslen, int family,
    const unsigned char *addr, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6 && memcmp(addr, mapped, sizeof(mapped)) == 0) {
		family = AF_INET;
		addr += sizeof(mapped);
	}
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, 4);
		sin->sin_port = htons(port);
		*sslen = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, addr, 16);
		sin6->sin6_port = htons(port);
		*sslen = sizeof(*sin6);
	}
}

/* ---- version 1: "PROXY TCP4 1.2.3.4 5.6.7.8 1234 25\r\n" ---- */

/*
 * The field after the single space at *pos of line (n bytes, no CRLF),
 * NUL-terminated into f; *pos moves to the byte after it.  -1 if there
 * is no space there, the field is empty or it does not fit f.
 */
static int
v1_field(const unsigned char *line, size_t n, size_t *pos, char *f,
    size_t fsz)
{
	size_t start, i;

	if (*pos >= n || line[*pos] != ' ')
		return -1;
	start = i = *pos + 1;
	while (i < n && line[i] != ' ')
		i++;
	if (i == start || i - start >= fsz)
		return -1;
	memcpy(f, line + start, i - start);
	f[i - start] = '\0';
	*pos = i;
	return 0;
}

/* A decimal port, 0 to 65535, digits only. */
static int
v1_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* The fields after the protocol: source, destination, their ports. */
static enum mr_proxy_rc
v1_addrs(const unsigned char *line, size_t n, size_t pos, int family,
    struct mr_proxy_hdr *out)
{
	char src[FIELD_MAX], dst[FIELD_MAX], sp[FIELD_MAX], dp[FIELD_MAX];
	unsigned char sa[16], da[16];
	uint16_t sport, dport;

	if (v1_field(line, n, &pos, src, sizeof(src)) == -1 ||
	    v1_field(line, n, &pos, dst, sizeof(dst)) == -1 ||
	    v1_field(line, n, &pos, sp, sizeof(sp)) == -1 ||
	    v1_field(line, n, &pos, dp, sizeof(dp)) == -1 || pos != n)
		return bad(out, "version 1 header: expected source, "
		    "destination and two ports");
	if (inet_pton(family, src, sa) != 1 ||
	    inet_pton(family, dst, da) != 1)
		return bad(out, "version 1 header: bad address");
	if (v1_port(sp, &sport) == -1 || v1_port(dp, &dport) == -1)
		return bad(out, "version 1 header: bad port");
	set_addr(&out->src, &out->srclen, family, sa, sport);
	set_addr(&out->dst, &out->dstlen, family, da, dport);
	return MR_PROXY_OK;
}

/* The line up to its LF: its length without CRLF in *n, or MORE/BAD. */
static enum mr_proxy_rc
v1_line(const unsigned char *p, size_t len, size_t *n,
    struct mr_proxy_hdr *out)
{
	size_t i;

	for (i = 0; i < len && i < MR_PROXY_V1_MAX; i++) {
		if (p[i] == '\n') {
			if (i == 0 || p[i - 1] != '\r')
				return bad(out, "version 1 header: line "
				    "not ended by CRLF");
			*n = i - 1;
			return MR_PROXY_OK;
		}
		if (p[i] == '\r' && i + 1 < len && p[i + 1] != '\n')
			return bad(out, "version 1 header: bare CR");
		if (p[i] != '\r' && (p[i] < 0x20 || p[i] > 0x7e))
			return bad(out, "version 1 header: control or "
			    "8-bit byte");
	}
	if (i == MR_PROXY_V1_MAX)
		return bad(out, "version 1 header: no CRLF within 107 bytes");
	return MR_PROXY_MORE;
}

static enum mr_proxy_rc
parse_v1(const unsigned char *p, size_t len, struct mr_proxy_hdr *out)
{
	char proto[FIELD_MAX];
	size_t n, pos = sizeof(v1_sig) - 1;
	enum mr_proxy_rc rc;

	if (memcmp(p, v1_sig, len < pos ? len : pos) != 0 ||
	    (len > pos && p[pos] != ' '))
		return bad(out, "not a PROXY header");
	if ((rc = v1_line(p, len, &n, out)) != MR_PROXY_OK)
		return rc;
	out->version = 1;
	out->len = n + 2;
	if (v1_field(p, n, &pos, proto, sizeof(proto)) == -1)
		return bad(out, "version 1 header: no protocol");
	/* UNKNOWN: the rest of the line is to be ignored (2.1) */
	if (strcmp(proto, "UNKNOWN") == 0) {
		out->local = 1;
		return MR_PROXY_OK;
	}
	if (strcmp(proto, "TCP4") == 0)
		return v1_addrs(p, n, pos, AF_INET, out);
	if (strcmp(proto, "TCP6") == 0)
		return v1_addrs(p, n, pos, AF_INET6, out);
	return bad(out, "version 1 header: unknown protocol");
}

/* ---- version 2: signature, command, family, length, addresses, TLVs ---- */

/* The fixed 16 bytes, checked before the rest is waited for. */
static enum mr_proxy_rc
v2_fixed(const unsigned char *p, size_t *total, struct mr_proxy_hdr *out)
{
	size_t dlen = (size_t)p[14] << 8 | p[15];

	if (p[12] >> 4 != 2)
		return bad(out, "version 2 header: unknown version");
	if ((p[12] & 0xf) != V2_LOCAL && (p[12] & 0xf) != V2_PROXY)
		return bad(out, "version 2 header: unknown command");
	switch (p[13]) {
	case V2_UNSPEC:
	case V2_UDP4:
	case V2_UDP6:
	case V2_STREAM_UNIX:
	case V2_DGRAM_UNIX:
		break;
	case V2_TCP4:
		if (dlen < V2_TCP4_LEN && (p[12] & 0xf) == V2_PROXY)
			return bad(out, "version 2 header: too short for "
			    "TCP over IPv4");
		break;
	case V2_TCP6:
		if (dlen < V2_TCP6_LEN && (p[12] & 0xf) == V2_PROXY)
			return bad(out, "version 2 header: too short for "
			    "TCP over IPv6");
		break;
	default:
		return bad(out, "version 2 header: unknown address family");
	}
	*total = MR_PROXY_V2_FIXED + dlen;
	if (*total > MR_PROXY_V2_MAX)
		return bad(out, "version 2 header: longer than 2064 bytes");
	return MR_PROXY_OK;
}

static enum mr_proxy_rc
parse_v2(const unsigned char *p, size_t len, struct mr_proxy_hdr *out)
{
	const unsigned char *a = p + MR_PROXY_V2_FIXED;
	size_t total;
	enum mr_proxy_rc rc;

	if (memcmp(p, v2_sig, len < sizeof(v2_sig) ? len : sizeof(v2_sig)) !=
	    0)
		return bad(out, "not a PROXY header");
	if (len < MR_PROXY_V2_FIXED)
		return MR_PROXY_MORE;
	if ((rc = v2_fixed(p, &total, out)) != MR_PROXY_OK)
		return rc;
	if (len < total)
		return MR_PROXY_MORE;
	out->version = 2;
	out->len = total;
	/* LOCAL: the balancer speaks for itself (a health check); an
	 * unspecified family: use the real endpoints (2.2) */
	if ((p[12] & 0xf) == V2_LOCAL || p[13] == V2_UNSPEC) {
		out->local = 1;
		return MR_PROXY_OK;
	}
	if (p[13] == V2_TCP4) {
		set_addr(&out->src, &out->srclen, AF_INET, a,
		    (uint16_t)(a[8] << 8 | a[9]));
		set_addr(&out->dst, &out->dstlen, AF_INET, a + 4,
		    (uint16_t)(a[10] << 8 | a[11]));
		return MR_PROXY_OK;
	}
	if (p[13] == V2_TCP6) {
		set_addr(&out->src, &out->srclen, AF_INET6, a,
		    (uint16_t)(a[32] << 8 | a[33]));
		set_addr(&out->dst, &out->dstlen, AF_INET6, a + 16,
		    (uint16_t)(a[34] << 8 | a[35]));
		return MR_PROXY_OK;
	}
	/* SMTP is TCP, and a UNIX socket address cannot be matched by
	 * an access rule */
	return bad(out, "version 2 header: not TCP over IPv4 or IPv6");
}

enum mr_proxy_rc
mr_proxy_parse(const void *buf, size_t len, struct mr_proxy_hdr *out)
{
	const unsigned char *p = buf;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return MR_PROXY_MORE;
	if (p[0] == (unsigned char)v1_sig[0])
		return parse_v1(p, len, out);
	if (p[0] == v2_sig[0])
		return parse_v2(p, len, out);
	return bad(out, "not a PROXY header");
}
