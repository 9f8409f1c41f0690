/*
 * addr.h - RFC 5321 paths and mailboxes from untrusted input.
 *
 * Security: the result of mr_path_parse is the only form of an address the
 * daemons use.  It contains no byte the RFC 5321 grammar forbids (no
 * control characters, no spaces outside a quoted local part, no NUL), the
 * domain is lower-cased, and routing decisions use the domain alone, so the
 * open-relay tricks (user%other@local, other!user@local, "a@b"@local,
 * @route:user@host) are a local part at the domain, never a relay.
 */
#ifndef MR_ADDR_H
#define MR_ADDR_H

#include <stddef.h>

#define MR_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define MR_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define MR_PATH_MAX	256	/* RFC 5321 4.5.3.1.3, without the brackets */

struct mr_path {
	int	 null;			/* "<>" */
	int	 postmaster;		/* "<Postmaster>" with no domain */
	char	 addr[MR_PATH_MAX + 1];	/* "local@domain", "" for null */
	size_t	 local_len;		/* bytes of addr before '@' */
	const char *domain;		/* points into addr after '@' ("" if none) */
	int	 utf8;			/* holds a non-ASCII (UTF-8) character */
};

/*
 * Parses "<path>" at s (len bytes, no CRLF), as after "MAIL FROM:" or
 * "RCPT TO:".  A source route (@a,@b:) is accepted and dropped (RFC 5321
 * 4.1.2 / Appendix C).  allow_null permits "<>", allow_postmaster a bare
 * "<Postmaster>".  On success returns the number of bytes consumed (the
 * ESMTP parameters follow) and fills out; on failure returns -1 and sets
 * *err to a short reason fit for an SMTP reply.
 */
int	mr_path_parse(const char *s, size_t len, int allow_null,
	    int allow_postmaster, struct mr_path *out, const char **err);

/* Checks a bare "local@domain" mailbox (configuration, Pickup headers):
 * 0 and fills out, or -1 with *err. */
int	mr_mailbox_parse(const char *s, size_t len, struct mr_path *out,
	    const char **err);

/* The same, also accepting strictly valid UTF-8 in the local part and the
 * domain (SMTPUTF8, RFC 6531 3.3); out->utf8 says whether there was any.
 * Lengths stay bounded in octets.  Domains are not converted (no IDNA):
 * they are compared byte for byte after ASCII lower-casing. */
int	mr_path_parse_utf8(const char *s, size_t len, int allow_null,
	    int allow_postmaster, struct mr_path *out, const char **err);
int	mr_mailbox_parse_utf8(const char *s, size_t len, struct mr_path *out,
	    const char **err);

/* 1 if s is a syntactically valid domain name (RFC 5321 Domain) or an
 * address literal "[1.2.3.4]" / "[IPv6:...]". */
int	mr_domain_valid(const char *s, size_t len);

#endif
