/*
 * auth_client.c - SASL towards a smart host or route (RFC 4954): which
 * mechanisms the server offers, the password or token file, and the
 * PLAIN (RFC 4616), LOGIN and XOAUTH2 (common/xoauth2.c) responses.
 * smtp_client.c drives the dialogue.
 *
 * The password or access token is read from its file at each AUTH, as
 * deliverd's user, so a changed password, or the token the
 * administrator's refresher wrote, takes effect without a reload; the
 * file should be readable by that user alone.  It is kept only while the
 * response is built and wiped afterwards (explicit_bzero).
 *
 * Security: the EHLO AUTH line is untrusted text from the server; it is
 * only compared word by word with the mechanism names.  The password
 * and token files are trusted configuration but read bounded and
 * without following a symbolic link; a NUL, CR or LF inside a password
 * ends it, a token with a control byte is not sent at all.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "buf.h"
#include "deliverd.h"
#include "xoauth2.h"

#define AUTH_SECRET_MAX	1024

/* "PLAIN LOGIN CRAM-MD5": the mechanisms in an EHLO AUTH line. */
unsigned
auth_ehlo_mechs(const char *list)
{
	unsigned m = 0;
	size_t n;

	for (;;) {
		list += strspn(list, " ");
		if ((n = strcspn(list, " ")) == 0)
			return m;
		if (n == 5 && strncasecmp(list, "PLAIN", 5) == 0)
			m |= AUTH_MECH_PLAIN;
		else if (n == 5 && strncasecmp(list, "LOGIN", 5) == 0)
			m |= AUTH_MECH_LOGIN;
		else if (n == 7 && strncasecmp(list, "XOAUTH2", 7) == 0)
			m |= AUTH_MECH_XOAUTH2;
		list += n;
	}
}

/* Up to size bytes of path into buf, *len of them; -1 with errno. */
static int
auth_file_read(const char *path, char *buf, size_t size, size_t *len)
{
	ssize_t n;
	int fd, saved;

	*len = 0;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	while (*len < size) {
		n = read(fd, buf + *len, size - *len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	if (close(fd) == -1)
		goto wipe;
	return 0;
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
wipe:
	saved = errno;
	explicit_bzero(buf, size);
	errno = saved;
	return -1;
}

/* The first line of path into buf; -1 with errno on failure. */
int
auth_secret_read(const char *path, char *buf, size_t size)
{
	size_t len;

	if (auth_file_read(path, buf, size - 1, &len) == -1)
		return -1;
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/* Appends the base64 of len bytes at p to out. */
void
auth_b64(struct mr_buf *out, const void *p, size_t len)
{
	size_t need = 4 * ((len + 2) / 3) + 1;
	int n;

	mr_buf_reserve(out, need);
	n = EVP_EncodeBlock((unsigned char *)out->data + out->len, p,
	    (int)len);
	out->len += (size_t)n;
	out->data[out->len] = '\0';
}

/*
 * "AUTH XOAUTH2 " and the initial response with the token read now from
 * the token file, so the refresher's latest token is the one sent.
 */
static int
auth_xoauth2(const struct dest *ds, struct mr_buf *out, const char **why)
{
	char file[MR_XOAUTH2_TOKEN_MAX + 64], tok[MR_XOAUTH2_TOKEN_MAX + 1];
	char resp[MR_XOAUTH2_RESP_MAX];
	enum mr_xoauth2_token_err e;
	size_t len;
	int rc = -1;

	if (auth_file_read(ds->auth_password_file, file, sizeof(file),
	    &len) == -1) {
		*why = strerror(errno);
		return -1;
	}
	if ((e = mr_xoauth2_token(file, len, tok)) != MR_XOAUTH2_TOKEN_OK)
		*why = mr_xoauth2_token_strerror(e);
	else if (mr_xoauth2_initial(ds->auth_user ? ds->auth_user : "", tok,
	    resp) == -1)
		*why = "user name empty, too long or with a control byte";
	else {
		mr_buf_adds(out, "AUTH XOAUTH2 ");
		mr_buf_adds(out, resp);
		rc = 0;
	}
	explicit_bzero(file, sizeof(file));
	explicit_bzero(tok, sizeof(tok));
	explicit_bzero(resp, sizeof(resp));
	return rc;
}

/*
 * The AUTH command for mech (PLAIN and XOAUTH2 with their initial
 * response, RFC 4954 4; LOGIN without), the LOGIN answer to step 1
 * (user) or 2 (password), or XOAUTH2's empty answer to the error
 * challenge (step 1).  -1 with *why if the secret cannot be used.
 */
int
auth_response(const struct dest *ds, int step, struct mr_buf *out,
    const char **why)
{
	char secret[AUTH_SECRET_MAX];
	struct mr_buf raw;
	const char *user = ds->auth_user ? ds->auth_user : "";

	if (ds->auth == MR_AUTH_OUT_XOAUTH2)
		return step == 0 ? auth_xoauth2(ds, out, why) : 0;
	if (ds->auth == MR_AUTH_OUT_LOGIN && step == 0) {
		mr_buf_adds(out, "AUTH LOGIN");
		return 0;
	}
	if (ds->auth == MR_AUTH_OUT_LOGIN && step == 1) {
		auth_b64(out, user, strlen(user));
		return 0;
	}
	if (auth_secret_read(ds->auth_password_file, secret,
	    sizeof(secret)) == -1) {
		*why = strerror(errno);
		return -1;
	}
	mr_buf_init(&raw);
	if (ds->auth == MR_AUTH_OUT_PLAIN) {
		/* authzid (empty) NUL authcid NUL password */
		mr_buf_add(&raw, "", 1);
		mr_buf_add(&raw, user, strlen(user) + 1);
		mr_buf_adds(&raw, secret);
		mr_buf_adds(out, "AUTH PLAIN ");
	} else
		mr_buf_adds(&raw, secret);
	auth_b64(out, raw.data, raw.len);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(raw.data, raw.cap);
	mr_buf_free(&raw);
	return 0;
}
