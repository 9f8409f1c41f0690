/*
 * xoauth2.c - the client side of SASL XOAUTH2, the mechanism Google and
 * Microsoft 365 document for SMTP with an OAuth 2.0 access token; its
 * error exchange is the one of OAUTHBEARER (RFC 7628 3.2.2).
 *
 * Security: the token file is trusted configuration, but whatever a
 * refresher left in it is checked before it goes on the wire: one line,
 * bounded, visible ASCII only, so it cannot end the SMTP command or the
 * ^A-separated fields early.  The server's 334 text is untrusted: it is
 * decoded into a bounded buffer and only a short printable "status"
 * value is taken from it, for the log.  The token is wiped from the
 * scratch buffer here; the caller wipes tok and out.
 */
#include "config.h"

#include <string.h>

#include "sasl.h"
#include "xoauth2.h"

#define XOAUTH2_CHALLENGE_MAX	2048	/* decoded 334 text, bytes */

static int
visible(unsigned char c)
{
	return c > ' ' && c < 0x7f;
}

enum mr_xoauth2_token_err
mr_xoauth2_token(const char *data, size_t len, char *tok)
{
	size_t n, i;
	const char *nl;

	tok[0] = '\0';
	if ((nl = memchr(data, '\n', len)) != NULL)
		len = (size_t)(nl - data);
	n = len;
	while (n > 0 && (data[n - 1] == ' ' || data[n - 1] == '\t' ||
	    data[n - 1] == '\r'))
		n--;
	if (n == 0)
		return MR_XOAUTH2_TOKEN_EMPTY;
	if (n > MR_XOAUTH2_TOKEN_MAX)
		return MR_XOAUTH2_TOKEN_LONG;
	for (i = 0; i < n; i++)
		if (!visible((unsigned char)data[i]))
			return MR_XOAUTH2_TOKEN_BADCHAR;
	memcpy(tok, data, n);
	tok[n] = '\0';
	return MR_XOAUTH2_TOKEN_OK;
}

const char *
mr_xoauth2_token_strerror(enum mr_xoauth2_token_err e)
{
	switch (e) {
	case MR_XOAUTH2_TOKEN_OK:
		return "ok";
	case MR_XOAUTH2_TOKEN_EMPTY:
		return "no token on the first line";
	case MR_XOAUTH2_TOKEN_LONG:
		return "token longer than 4096 bytes";
	case MR_XOAUTH2_TOKEN_BADCHAR:
		return "token holds a space, control or 8-bit byte";
	}
	return "?";
}

/* Appends len bytes (no NUL: the response is counted, not a string). */
static void
put(unsigned char *raw, size_t *n, const void *p, size_t len)
{
	memcpy(raw + *n, p, len);
	*n += len;
}

int
mr_xoauth2_initial(const char *user, const char *token, char *out)
{
	unsigned char raw[MR_XOAUTH2_RAW_MAX];
	size_t ulen = strlen(user), tlen = strlen(token), i, n = 0;

	out[0] = '\0';
	if (ulen == 0 || ulen > MR_XOAUTH2_USER_MAX || tlen == 0 ||
	    tlen > MR_XOAUTH2_TOKEN_MAX)
		return -1;
	for (i = 0; i < ulen; i++)
		if ((unsigned char)user[i] < ' ' || user[i] == 0x7f)
			return -1;
	for (i = 0; i < tlen; i++)
		if (!visible((unsigned char)token[i]))
			return -1;
	put(raw, &n, "user=", 5);
	put(raw, &n, user, ulen);
	put(raw, &n, "\1auth=Bearer ", 13);
	put(raw, &n, token, tlen);
	put(raw, &n, "\1\1", 2);
	mr_b64_encode(raw, n, out);
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

/* The value of "status" in the decoded JSON d, if short and printable. */
static void
challenge_status(const char *d, size_t n, char *status)
{
	const char *p, *end = d + n;
	size_t k = 0;

	status[0] = '\0';
	if ((p = memmem(d, n, "\"status\"", 8)) == NULL)
		return;
	for (p += 8; p < end && (*p == ' ' || *p == ':'); p++)
		;
	if (p == end || *p++ != '"')
		return;
	while (p < end && *p != '"') {
		if (k == MR_XOAUTH2_STATUS_MAX || *p == '\\' ||
		    (unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f) {
			status[0] = '\0';
			return;
		}
		status[k++] = *p++;
	}
	status[p < end ? k : 0] = '\0';
}

enum mr_xoauth2_reply
mr_xoauth2_reply(int code, const char *text, char *status)
{
	unsigned char d[XOAUTH2_CHALLENGE_MAX];
	size_t n;
	int k;

	status[0] = '\0';
	if (code == 235)
		return MR_XOAUTH2_OK;
	if (code == 535)
		return MR_XOAUTH2_REFUSED;
	if (code != 334)
		return MR_XOAUTH2_FAILED;
	n = strcspn(text, " ");
	if ((k = mr_b64_decode(text, n, d, sizeof(d))) > 0)
		challenge_status((const char *)d, (size_t)k, status);
	return MR_XOAUTH2_CHALLENGE;
}
