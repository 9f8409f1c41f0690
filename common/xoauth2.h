/*
 * xoauth2.h - the SASL XOAUTH2 client side, as pure functions: the
 * access token from the bytes of its file, the initial response, and
 * what the server's reply to it means.  deliverd/auth_client.c reads the
 * file and smtp_client.c sends; nothing here does I/O.
 */
#ifndef MR_XOAUTH2_H
#define MR_XOAUTH2_H

#include <stddef.h>

#define MR_XOAUTH2_TOKEN_MAX	4096	/* bytes of an access token */
#define MR_XOAUTH2_USER_MAX	255
/* "user=" U ^A "auth=Bearer " T ^A ^A, base64, NUL */
#define MR_XOAUTH2_RAW_MAX	(MR_XOAUTH2_USER_MAX + \
	MR_XOAUTH2_TOKEN_MAX + 21)
#define MR_XOAUTH2_RESP_MAX	(4 * ((MR_XOAUTH2_RAW_MAX + 2) / 3) + 1)
#define MR_XOAUTH2_STATUS_MAX	31	/* the "status" of an error */

enum mr_xoauth2_token_err {
	MR_XOAUTH2_TOKEN_OK,
	MR_XOAUTH2_TOKEN_EMPTY,
	MR_XOAUTH2_TOKEN_LONG,
	MR_XOAUTH2_TOKEN_BADCHAR
};

/* What a reply to AUTH XOAUTH2 (or to the empty line) asks of us. */
enum mr_xoauth2_reply {
	MR_XOAUTH2_OK,		/* 235: authenticated */
	MR_XOAUTH2_CHALLENGE,	/* 334 error (RFC 7628 3.2.2): send "" */
	MR_XOAUTH2_REFUSED,	/* 535: the token was refused */
	MR_XOAUTH2_FAILED	/* anything else */
};

/*
 * The token in the first len bytes of a token file: its first line,
 * trailing white space removed, 1..MR_XOAUTH2_TOKEN_MAX visible ASCII
 * bytes (no control byte, space or 8-bit byte), copied with a NUL into
 * tok (MR_XOAUTH2_TOKEN_MAX + 1 bytes).  On error tok is "".
 */
enum mr_xoauth2_token_err mr_xoauth2_token(const char *data, size_t len,
    char *tok);
const char	*mr_xoauth2_token_strerror(enum mr_xoauth2_token_err);

/*
 * base64("user=" user "\1auth=Bearer " token "\1\1") into out
 * (MR_XOAUTH2_RESP_MAX bytes); -1 if user is empty, longer than
 * MR_XOAUTH2_USER_MAX or holds a control byte, or token is not valid.
 */
int		 mr_xoauth2_initial(const char *user, const char *token,
		    char *out);

/*
 * The meaning of a reply code and its text (the first line, after the
 * code).  For a 334 the base64 JSON is decoded and its "status" value,
 * when there is one of printable ASCII, copied to status
 * (MR_XOAUTH2_STATUS_MAX + 1 bytes), else status is "".
 */
enum mr_xoauth2_reply mr_xoauth2_reply(int code, const char *text,
    char *status);

#endif
