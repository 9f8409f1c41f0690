/*
 * submit.c - the local submission protocol (submit.h): the request
 * mailroot-sendmail sends queued, and queued's answer.
 *
 * Security: queued reads requests from any local user allowed to connect,
 * so a request is hostile bytes.  It is parsed here, once, into a typed
 * struct submit_req before queued acts on it: the payload's length is
 * bounded by the caller (SUBMIT_HDR_MAX), every string by its own limit,
 * the recipient count by SUBMIT_RCPT_MAX, the message size by
 * SUBMIT_DATA_MAX; the sender and each recipient must be a mailbox
 * (mr_mailbox_parse: no space, control byte or CRLF) or a bare local part of atom characters that queued qualifies
 * with its host name; the full name must be printable ASCII without
 * the bytes that would end or fold a header field.  Nothing is kept that
 * the parser did not check.  Pure: no I/O, no global state.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "buf.h"
#include "submit.h"

/* A bare local part as cron and scripts pass it ("root"): RFC 5322
 * atext and dots, not beginning or ending with a dot. */
static int
bare_local(const char *s, size_t n)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~.";
	size_t i;

	if (n == 0 || n > MR_LOCAL_MAX || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    strchr(atext, s[i]) != NULL) || s[i] == '\0')
			return 0;
	return 1;
}

static int
fullname_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < ' ' || *s > '~' || strchr("\"\\<>()", *s) != NULL)
			return 0;
	return 1;
}

static int
get_rcpts(struct mr_rd *rd, struct submit_req *r, const char **err)
{
	struct mr_path p;
	const char *a;
	uint32_t n, i;
	size_t len;

	n = mr_rd_u32(rd);
	if (rd->err || n > SUBMIT_RCPT_MAX) {
		*err = "too many recipients";
		return -1;
	}
	r->rcpts = calloc(n > 0 ? n : 1, sizeof(char *));
	if (r->rcpts == NULL)
		abort();
	for (i = 0; i < n; i++) {
		if ((a = mr_rd_str(rd, MR_PATH_MAX, &len)) == NULL) {
			*err = "a recipient is malformed";
			return -1;
		}
		if (!bare_local(a, len) &&
		    mr_mailbox_parse(a, len, &p, err) == -1)
			return -1;
		if ((r->rcpts[r->nrcpts++] = strdup(a)) == NULL)
			abort();
	}
	return 0;
}

int
submit_req_parse(const void *data, size_t len, struct submit_req *r,
    const char **err)
{
	struct mr_path p;
	struct mr_rd rd;
	const char *s, *name;
	size_t n;

	memset(r, 0, sizeof(*r));
	*err = "malformed request";
	mr_rd_init(&rd, data, len);
	if (mr_rd_u32(&rd) != SUBMIT_VERSION || rd.err) {
		*err = "unknown protocol version";
		return -1;
	}
	r->flags = mr_rd_u32(&rd);
	if ((s = mr_rd_str(&rd, MR_PATH_MAX, &n)) == NULL ||
	    (name = mr_rd_str(&rd, SUBMIT_NAME_MAX, NULL)) == NULL ||
	    (r->flags & ~(uint32_t)SUBMIT_F_ALL) != 0)
		return -1;
	if (n > 0 && !bare_local(s, n) && mr_mailbox_parse(s, n, &p,
	    err) == -1)
		return -1;
	memcpy(r->sender, s, n + 1);
	if (!fullname_ok(name)) {
		*err = "the full name holds a control or special character";
		return -1;
	}
	memcpy(r->fullname, name, strlen(name) + 1);
	if (get_rcpts(&rd, r, err) == -1)
		return -1;
	r->size = mr_rd_u64(&rd);
	if (!mr_rd_done(&rd))
		return -1;
	if (r->size > SUBMIT_DATA_MAX) {
		*err = "message too big";
		return -1;
	}
	if (r->nrcpts == 0 && !(r->flags & SUBMIT_F_HEADERS)) {
		*err = "no recipient";
		return -1;
	}
	return 0;
}

void
submit_req_free(struct submit_req *r)
{
	size_t i;

	for (i = 0; i < r->nrcpts; i++)
		free(r->rcpts[i]);
	free(r->rcpts);
	r->rcpts = NULL;
	r->nrcpts = 0;
}

void
submit_req_encode(const struct submit_req *r, struct mr_buf *b)
{
	size_t i;

	mr_buf_put_u32(b, SUBMIT_VERSION);
	mr_buf_put_u32(b, r->flags);
	mr_buf_put_str(b, r->sender);
	mr_buf_put_str(b, r->fullname);
	mr_buf_put_u32(b, (uint32_t)r->nrcpts);
	for (i = 0; i < r->nrcpts; i++)
		mr_buf_put_str(b, r->rcpts[i]);
	mr_buf_put_u64(b, r->size);
}

int
submit_reply_parse(const void *data, size_t len, uint32_t *status,
    char *text, size_t textlen, const char **err)
{
	struct mr_rd rd;
	const char *s;
	size_t n;

	mr_rd_init(&rd, data, len);
	*status = mr_rd_u32(&rd);
	if ((s = mr_rd_str(&rd, SUBMIT_REPLY_MAX, &n)) == NULL ||
	    !mr_rd_done(&rd) || *status > 255 || n >= textlen) {
		*err = "malformed reply";
		return -1;
	}
	memcpy(text, s, n + 1);
	return 0;
}

void
submit_reply_encode(uint32_t status, const char *text, struct mr_buf *b)
{
	mr_buf_put_u32(b, status);
	mr_buf_put_strn(b, text, strnlen(text, SUBMIT_REPLY_MAX - 1));
}
