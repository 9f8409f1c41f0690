/*
 * dkim.h - DKIM signatures (RFC 6376, RFC 8463): the canonical forms of
 * a message's header fields and body (dkim_canon.c, no cryptography, so
 * that unit tests and the fuzz target need no OpenSSL) and the signing
 * keys (dkim_key.c, OpenSSL).
 */
#ifndef MR_DKIM_H
#define MR_DKIM_H

#include <stddef.h>
#include <stdio.h>

struct mr_buf;
struct mr_config;

enum mr_dkim_canon { MR_DKIM_RELAXED = 0, MR_DKIM_SIMPLE };

/* a header section with more fields than this is not signed */
#define MR_DKIM_FIELDS_MAX	1000
/* nor one longer than this (a body of any size is) */
#define MR_DKIM_HEADER_MAX	(1024 * 1024)

struct mr_dkim_field {
	const char	*p;		/* the field, from its name to its */
	size_t		 len;		/* last line's CRLF included */
	size_t		 namelen;	/* name, without white space */
};

struct mr_dkim_hdrs {
	struct mr_dkim_field	 f[MR_DKIM_FIELDS_MAX];
	size_t			 n;
	size_t			 end;	/* where the body begins (after the
					 * empty line, or len without one) */
};

/*
 * Splits the header section at the start of data (len bytes) into its
 * fields.  Lines end in CRLF; a line beginning with white space continues
 * the field above.  Returns 0, or -1 with *why set when the section is
 * not one DKIM can sign (a line that is no field, a continuation with no
 * field above, too many fields, or longer than MR_DKIM_HEADER_MAX).
 * Fields point into data.
 */
int	mr_dkim_split(const char *data, size_t len, struct mr_dkim_hdrs *,
	    const char **why);

/* Appends field (as mr_dkim_split found it) in canonical form c to out
 * (RFC 6376 3.4.1, 3.4.2); crlf 0 leaves out the final CRLF (the
 * DKIM-Signature field itself, 3.7). */
void	mr_dkim_hdr_canon(enum mr_dkim_canon c, const char *field,
	    size_t len, int crlf, struct mr_buf *out);

/*
 * The body's canonical form (RFC 6376 3.4.3, 3.4.4), streamed: bytes in
 * with mr_dkim_body_feed, canonical bytes out through emit, in pieces;
 * mr_dkim_body_end flushes.  Constant state whatever the input.
 */
typedef void (*mr_dkim_emit)(void *arg, const char *p, size_t n);

/* RFC 5321 4.5.3.1.6: the longest line, CRLF apart */
#define MR_DKIM_LINE_MAX	998

struct mr_dkim_body {
	enum mr_dkim_canon	 c;
	mr_dkim_emit		 emit;
	void			*arg;
	int			 cr;		/* a CR held back */
	int			 wsp;		/* relaxed: white space held */
	int			 content;	/* the line has content */
	int			 any;		/* something was emitted */
	unsigned long long	 blank;		/* empty lines held back */
	size_t			 olen;
	char			 out[4096];
};

void	mr_dkim_body_init(struct mr_dkim_body *, enum mr_dkim_canon,
	    mr_dkim_emit, void *arg);
void	mr_dkim_body_feed(struct mr_dkim_body *, const char *p, size_t n);
void	mr_dkim_body_end(struct mr_dkim_body *);

/*
 * The message as deliverd sends it (deliverd/smtp_client.c, stuff()),
 * dot-stuffing aside: a bare CR or bare LF becomes CRLF, a NUL is
 * dropped, a line longer than 998 octets is folded with CRLF SPACE (RFC
 * 5321 4.5.3.1.6), and a last line without its line end gets CRLF.  The
 * signer reads a message through this filter and stores what comes out,
 * so that the next hop gets exactly the bytes that were signed.
 */
struct mr_dkim_wire {
	mr_dkim_emit	 emit;
	void		*arg;
	int		 cr;		/* a CR held back */
	int		 bol;		/* at a line's start */
	size_t		 col;		/* octets in the line so far */
	size_t		 olen;
	char		 out[4096];
};

void	mr_dkim_wire_init(struct mr_dkim_wire *, mr_dkim_emit, void *arg);
void	mr_dkim_wire_feed(struct mr_dkim_wire *, const char *p, size_t n);
void	mr_dkim_wire_end(struct mr_dkim_wire *);

/*
 * The domain of the From field's address (the value after "From:"),
 * lower case, in out: 0, or -1 when there is none (a group, no "@",
 * longer than outlen - 1, or more than one mailbox).  Comments and
 * quoted strings are skipped, never trusted to end early.
 */
int	mr_dkim_from_domain(const char *value, size_t len, char *out,
	    size_t outlen);

/* ---- keys (dkim_key.c) ---- */

struct evp_pkey_st;

/*
 * Reads a PEM private key: RSA of at least 2048 bits or Ed25519.  Returns
 * the key, or NULL with the reason in err.
 */
struct evp_pkey_st *mr_dkim_key_load(const char *path, char *err,
	    size_t errlen);
/* 1 for Ed25519, 0 for RSA */
int	mr_dkim_key_is_ed25519(const struct evp_pkey_st *);
/*
 * Signs the SHA-256 digest of the signed data (RFC 6376 3.7; for
 * Ed25519, RFC 8463 3, the digest is what PureEdDSA signs): the base64
 * signature is appended to out.  0, or -1.
 */
int	mr_dkim_key_sign(struct evp_pkey_st *, const unsigned char *digest,
	    struct mr_buf *out);
/*
 * Checks every server's dkim keys as mailrootd -n does: each must load;
 * errors go to errs as "FILE:LINE: ...", a key others may read is
 * warned about.  0, or -1 on any error.
 */
int	mr_dkim_check(const struct mr_config *, FILE *errs);

#endif
