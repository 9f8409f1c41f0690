/*
 * sasl.h - the server side of SMTP AUTH's PLAIN (RFC 4616) and LOGIN
 * exchanges (RFC 4954): base64 lines in, a user name and a password out.
 * Pure: no I/O, no allocation; smtpd/auth.c drives it and the unit tests
 * and fuzz_sasl call it directly.
 */
#ifndef MR_SASL_H
#define MR_SASL_H

#include <stddef.h>

#define MR_SASL_USER_MAX	255	/* authcid / authzid, octets */
#define MR_SASL_PASS_MAX	255
/* A decoded response: authzid NUL authcid NUL passwd at most. */
#define MR_SASL_RESP_MAX	(2 * MR_SASL_USER_MAX + MR_SASL_PASS_MAX + 2)

enum mr_sasl_mech {
	MR_SASL_NONE = 0,
	MR_SASL_PLAIN,
	MR_SASL_LOGIN
};

/* What the caller does next. */
enum mr_sasl_res {
	MR_SASL_CONTINUE,	/* send "334 " + *challenge, read a line */
	MR_SASL_DONE,		/* user and pass are set: verify them */
	MR_SASL_CANCEL,		/* the client sent "*": 501 5.0.0 */
	MR_SASL_BAD,		/* malformed base64 or response: 501 5.5.2 */
	MR_SASL_NOMECH,		/* unknown or disabled mechanism: 504 */
	MR_SASL_SYNTAX,		/* AUTH without a mechanism: 501 5.5.4 */
	MR_SASL_DENY		/* an authzid other than the user: 535 */
};

struct mr_sasl {
	enum mr_sasl_mech	 mech;
	int			 step;	/* LOGIN: 0 user, 1 password */
	char			 user[MR_SASL_USER_MAX + 1];
	char			 pass[MR_SASL_PASS_MAX + 1];
};

/*
 * Strict base64 (RFC 4648 4): the alphabet only, length a multiple of 4,
 * '=' only as the last one or two characters.  Decodes at most max bytes
 * into out; returns the length, or -1 (bad input or too long).
 */
int	mr_b64_decode(const char *in, size_t inlen, unsigned char *out,
	    size_t max);
/* Encodes n bytes into out (size 4 * ((n + 2) / 3) + 1 at least). */
void	mr_b64_encode(const unsigned char *in, size_t n, char *out);

/*
 * The AUTH command's argument, "MECHANISM [initial-response]" (the
 * response "=" is an empty one).  plain_ok, login_ok: the mechanisms
 * offered.  Starts s afresh.
 */
enum mr_sasl_res mr_sasl_begin(struct mr_sasl *s, const char *arg,
		    int plain_ok, int login_ok, const char **challenge);
/* One line of the client's (CRLF removed) during the exchange. */
enum mr_sasl_res mr_sasl_step(struct mr_sasl *s, const char *line,
		    size_t len, const char **challenge);
/* Wipes the credentials (explicit_bzero); s may begin again. */
void	mr_sasl_clear(struct mr_sasl *s);

#endif
