/*
 * proxy_hdr.h - the PROXY protocol header (HAProxy's specification,
 * versions 1 and 2) that a load balancer sends before the client's bytes.
 *
 * Security: the header is untrusted input; mr_proxy_parse is a pure
 * function of the bytes it is given.  It never reads past len, returns a
 * complete header only when every byte of it has been checked, and tells
 * how many bytes the header took, so that the caller consumes exactly
 * those and the client's first byte is the next one it reads.
 */
#ifndef MR_PROXY_HDR_H
#define MR_PROXY_HDR_H

#include <sys/socket.h>
#include <stddef.h>

#define MR_PROXY_V1_MAX		107	/* with CRLF (specification 2.1) */
#define MR_PROXY_V2_FIXED	16	/* signature, command, family, len */
/* The largest version 2 header read: the addresses and room for the
 * TLVs a load balancer adds (which are skipped). */
#define MR_PROXY_V2_MAX		(MR_PROXY_V2_FIXED + 2048)
#define MR_PROXY_MAX		MR_PROXY_V2_MAX

enum mr_proxy_rc {
	MR_PROXY_OK,		/* a complete header; see struct */
	MR_PROXY_MORE,		/* a valid start: every byte is header */
	MR_PROXY_BAD		/* not a PROXY header; see ->error */
};

struct mr_proxy_hdr {
	int			 version;	/* 1 or 2 */
	/* No address to use: version 2 LOCAL (the balancer's own health
	 * check), an unspecified family, or version 1 UNKNOWN.  The
	 * connection's own endpoints stand. */
	int			 local;
	struct sockaddr_storage	 src;		/* the client (!local) */
	socklen_t		 srclen;
	struct sockaddr_storage	 dst;		/* where it connected */
	socklen_t		 dstlen;
	size_t			 len;		/* bytes of the header */
	const char		*error;		/* MR_PROXY_BAD: why */
};

/*
 * Parses the start of a connection's bytes (buf, len).  MR_PROXY_OK: out
 * holds the header, which took out->len bytes of buf.  MR_PROXY_MORE: the
 * bytes are a valid beginning and all of them belong to the header, so
 * the caller may consume them and wait for more.  MR_PROXY_BAD: out->error
 * says why, in words fit for a log line.  An IPv4-mapped IPv6 address is
 * returned as IPv4, as access rules name it.
 */
enum mr_proxy_rc	mr_proxy_parse(const void *buf, size_t len,
			    struct mr_proxy_hdr *out);

#endif
