/*
 * ctl_client.c - one request over the control socket and its answer
 * (ctl_proto.h), for mailrootctl(8) and mailroot-sendmail -bp / -q.
 *
 * Security: runs with the caller's rights only; queued decides from
 * SO_PEERCRED what the caller may do, so nothing here is a check.  The
 * answer comes from queued (trusted), but is still read within a bound
 * (MR_CTL_ANSWER_MAX) and its status line is looked for, not assumed;
 * the output is handed back as bytes for the caller to print.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl_client.h"
#include "util.h"

void
mr_ctl_token(struct mr_buf *b, const char *name, const char *val)
{
	mr_buf_adds(b, name);
	if (val != NULL) {
		mr_buf_adds(b, "=");
		mr_buf_adds(b, val);
	}
	mr_buf_add(b, "", 1);
}

/* The connected socket; -1 (and errno) with why said. */
static int
connect_to(const char *path, struct mr_buf *why)
{
	struct sockaddr_un sun;
	int fd, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		mr_buf_printf(why, "%s: path too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		mr_buf_printf(why, "%s: %s", path, strerror(saved));
		if (fd != -1)
			close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* The request framed (u32 length, network order) and sent; then the
 * answer read to the end into ans. */
static int
exchange(int fd, const struct mr_buf *req, struct mr_buf *ans)
{
	unsigned char hdr[4];
	char buf[65536];
	ssize_t n;

	hdr[0] = (unsigned char)(req->len >> 24);
	hdr[1] = (unsigned char)(req->len >> 16);
	hdr[2] = (unsigned char)(req->len >> 8);
	hdr[3] = (unsigned char)req->len;
	/* a refused caller gets its answer at once: read it even if the
	 * write fails because queued closed first */
	if (mr_write_all(fd, hdr, 4) == 0)
		(void)mr_write_all(fd, req->data, req->len);
	while ((n = read(fd, buf, sizeof(buf))) > 0 ||
	    (n == -1 && errno == EINTR)) {
		if (n > 0)
			mr_buf_add(ans, buf, (size_t)n);
		if (ans->len > MR_CTL_ANSWER_MAX)
			return -1;
	}
	mr_buf_add(ans, "", 0);
	return n == -1 ? -1 : 0;
}

enum mr_ctl_outcome
mr_ctl_call(const char *path, const struct mr_buf *req, struct mr_buf *out)
{
	struct mr_buf ans;
	enum mr_ctl_outcome rc = MR_CTL_BROKEN;
	const char *nl;
	int fd;

	mr_buf_reset(out);
	if ((fd = connect_to(path, out)) == -1)
		return errno == EACCES || errno == EPERM ? MR_CTL_DENIED :
		    MR_CTL_UNREACHABLE;
	mr_buf_init(&ans);
	if (exchange(fd, req, &ans) == -1 || ans.data == NULL ||
	    (nl = memchr(ans.data, '\n', ans.len)) == NULL) {
		mr_buf_printf(out, "%s: no answer", path);
		goto done;
	}
	if (nl - ans.data == 2 && memcmp(ans.data, "ok", 2) == 0) {
		rc = MR_CTL_ANSWER_OK;
		mr_buf_add(out, nl + 1, ans.len - (size_t)(nl + 1 - ans.data));
	} else if (ans.len > 6 && memcmp(ans.data, "error ", 6) == 0) {
		rc = MR_CTL_ANSWER_ERROR;
		mr_buf_add(out, ans.data + 6, (size_t)(nl - ans.data) - 6);
		/* queued/control.c's answer to a caller it refuses */
		if (strcmp(out->data, "permission denied") == 0)
			rc = MR_CTL_DENIED;
	} else
		mr_buf_add(out, ans.data, (size_t)(nl - ans.data));
	mr_buf_add(out, "", 0);
done:
	close(fd);
	mr_buf_free(&ans);
	return rc;
}
