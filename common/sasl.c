/*
 * sasl.c - the PLAIN and LOGIN exchanges of SMTP AUTH, server side
 * (RFC 4954, RFC 4616; LOGIN as the draft-murchison-sasl-login clients
 * speak it: "Username:", "Password:").
 *
 * Security: every line comes from an unauthenticated network client.
 * Base64 is decoded strictly (no whitespace, padding only at the end,
 * length a multiple of four) into a fixed buffer whose size bounds the
 * whole response before a byte is written; a longer response is refused,
 * never truncated.  PLAIN must hold exactly two NULs; the user name may
 * hold no control byte (it reaches logs, the Received field and the
 * envelope), the password anything but NUL.  A proxy authorization
 * (an authzid other than the user) is refused: nobody may act as
 * another.  Every buffer that held a password is wiped before it is
 * left.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "sasl.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* "Username:" and "Password:" in base64 */
#define LOGIN_USER	"VXNlcm5hbWU6"
#define LOGIN_PASS	"UGFzc3dvcmQ6"

static int
b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
mr_b64_decode(const char *in, size_t inlen, unsigned char *out, size_t max)
{
	size_t i, n = 0, pad = 0;
	unsigned long acc;
	int v, k;

	if (inlen % 4 != 0)
		return -1;
	if (inlen > 0 && in[inlen - 1] == '=')
		pad = inlen > 1 && in[inlen - 2] == '=' ? 2 : 1;
	if (inlen / 4 * 3 - pad > max)
		return -1;
	for (i = 0; i < inlen; i += 4) {
		acc = 0;
		for (k = 0; k < 4; k++) {
			v = b64_val((unsigned char)in[i + (size_t)k]);
			if (v == -1 && !(i + 4 == inlen &&
			    (size_t)k >= 4 - pad))
				return -1;
			acc = acc << 6 | (unsigned long)(v == -1 ? 0 : v);
		}
		out[n++] = (unsigned char)(acc >> 16);
		if (i + 4 < inlen || pad < 2)
			out[n++] = (unsigned char)(acc >> 8 & 0xff);
		if (i + 4 < inlen || pad < 1)
			out[n++] = (unsigned char)(acc & 0xff);
	}
	return (int)n;
}

void
mr_b64_encode(const unsigned char *in, size_t n, char *out)
{
	unsigned long acc;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		acc = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 |
		    in[i + 2];
		*out++ = b64[acc >> 18];
		*out++ = b64[acc >> 12 & 63];
		*out++ = b64[acc >> 6 & 63];
		*out++ = b64[acc & 63];
	}
	if (i < n) {
		acc = (unsigned long)in[i] << 16;
		if (i + 1 < n)
			acc |= (unsigned long)in[i + 1] << 8;
		*out++ = b64[acc >> 18];
		*out++ = b64[acc >> 12 & 63];
		if (i + 1 < n)
			*out++ = b64[acc >> 6 & 63];
		else
			*out++ = '=';
		*out++ = '=';
	}
	*out = '\0';
}

void
mr_sasl_clear(struct mr_sasl *s)
{
	explicit_bzero(s, sizeof(*s));
}

/* A user name: 1..MR_SASL_USER_MAX bytes, no control byte. */
static int
copy_user(char *dst, const unsigned char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > MR_SASL_USER_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return -1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

/* A password: 1..MR_SASL_PASS_MAX bytes, no NUL. */
static int
copy_pass(char *dst, const unsigned char *p, size_t n)
{
	if (n == 0 || n > MR_SASL_PASS_MAX || memchr(p, '\0', n) != NULL)
		return -1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

/* RFC 4616 2: [authzid] NUL authcid NUL passwd */
static enum mr_sasl_res
plain_response(struct mr_sasl *s, const unsigned char *d, size_t n)
{
	const unsigned char *a, *b;
	size_t zlen;

	if ((a = memchr(d, '\0', n)) == NULL ||
	    (b = memchr(a + 1, '\0', n - (size_t)(a + 1 - d))) == NULL)
		return MR_SASL_BAD;
	zlen = (size_t)(a - d);
	if (copy_user(s->user, a + 1, (size_t)(b - a - 1)) == -1 ||
	    copy_pass(s->pass, b + 1, n - (size_t)(b + 1 - d)) == -1 ||
	    zlen > MR_SASL_USER_MAX)
		return MR_SASL_BAD;
	if (zlen > 0 && (zlen != strlen(s->user) ||
	    memcmp(d, s->user, zlen) != 0))
		return MR_SASL_DENY;
	return MR_SASL_DONE;
}

/* One decoded response, by mechanism and step. */
static enum mr_sasl_res
response(struct mr_sasl *s, const unsigned char *d, size_t n,
    const char **challenge)
{
	if (s->mech == MR_SASL_PLAIN)
		return plain_response(s, d, n);
	if (s->step == 0) {
		if (copy_user(s->user, d, n) == -1)
			return MR_SASL_BAD;
		s->step = 1;
		*challenge = LOGIN_PASS;
		return MR_SASL_CONTINUE;
	}
	if (copy_pass(s->pass, d, n) == -1)
		return MR_SASL_BAD;
	return MR_SASL_DONE;
}

enum mr_sasl_res
mr_sasl_step(struct mr_sasl *s, const char *line, size_t len,
    const char **challenge)
{
	unsigned char d[MR_SASL_RESP_MAX];
	enum mr_sasl_res r;
	int n;

	*challenge = NULL;
	if (len == 1 && line[0] == '*')
		r = MR_SASL_CANCEL;
	else if ((n = mr_b64_decode(line, len, d, sizeof(d))) == -1)
		r = MR_SASL_BAD;
	else
		r = response(s, d, (size_t)n, challenge);
	explicit_bzero(d, sizeof(d));
	if (r != MR_SASL_CONTINUE && r != MR_SASL_DONE)
		mr_sasl_clear(s);
	return r;
}

enum mr_sasl_res
mr_sasl_begin(struct mr_sasl *s, const char *arg, int plain_ok,
    int login_ok, const char **challenge)
{
	size_t mlen = strcspn(arg, " ");
	const char *ir = arg + mlen;

	mr_sasl_clear(s);
	*challenge = NULL;
	if (mlen == 0)
		return MR_SASL_SYNTAX;
	if (plain_ok && mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0)
		s->mech = MR_SASL_PLAIN;
	else if (login_ok && mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0)
		s->mech = MR_SASL_LOGIN;
	else
		return MR_SASL_NOMECH;
	if (*ir == '\0') {
		*challenge = s->mech == MR_SASL_PLAIN ? "" : LOGIN_USER;
		return MR_SASL_CONTINUE;
	}
	ir++;
	if (strchr(ir, ' ') != NULL)
		return MR_SASL_SYNTAX;
	/* RFC 4954 4: "=" is an initial response of no bytes */
	if (strcmp(ir, "=") == 0)
		ir = "";
	return mr_sasl_step(s, ir, strlen(ir), challenge);
}
