/*
 * auth_client.c - SASL towards a smart host or route (RFC 4954): which
 * mechanisms the server offers, the password file, and the PLAIN
 * (RFC 4616) and LOGIN responses.  smtp_client.c drives the dialogue.
 *
 * The password is read from its file at each AUTH, as deliverd's user,
 * so a changed password takes effect without a reload; the file should
 * be readable by that user alone.  It is kept only while the response is
 * built and wiped afterwards (explicit_bzero).
 *
 * Security: the EHLO AUTH line is untrusted text from the server; it is
 * only compared word by word with the mechanism names.  The password
 * file is trusted configuration but read bounded (AUTH_SECRET_MAX) and
 * without following a symbolic link; a NUL, CR or LF inside it ends it.
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
		list += n;
	}
}

/* The first line of path into buf; -1 with errno on failure. */
int
auth_secret_read(const char *path, char *buf, size_t size)
{
	ssize_t n;
	size_t len = 0;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	while (len + 1 < size) {
		n = read(fd, buf + len, size - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	(void)close(fd);
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
fail:
	saved = errno;
	(void)close(fd);
	explicit_bzero(buf, size);
	errno = saved;
	return -1;
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
 * The AUTH command for mech (PLAIN with its initial response, RFC 4954
 * 4; LOGIN without), or the LOGIN answer to step 1 (user) or 2
 * (password).  -1 if the password file cannot be read (errno set).
 */
int
auth_response(const struct dest *ds, int step, struct mr_buf *out)
{
	char secret[AUTH_SECRET_MAX];
	struct mr_buf raw;
	const char *user = ds->auth_user ? ds->auth_user : "";

	if (ds->auth == MR_AUTH_OUT_LOGIN && step == 0) {
		mr_buf_adds(out, "AUTH LOGIN");
		return 0;
	}
	if (ds->auth == MR_AUTH_OUT_LOGIN && step == 1) {
		auth_b64(out, user, strlen(user));
		return 0;
	}
	if (auth_secret_read(ds->auth_password_file, secret,
	    sizeof(secret)) == -1)
		return -1;
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
