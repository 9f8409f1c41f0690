/*
 * masquerade.c - `masquerade-domain' (IIS "Masquerade domain"): the
 * domain of the envelope sender of outgoing mail is replaced by the
 * server's masquerade domain at MAIL FROM.  The local part stays as it
 * is, and the null sender (a DSN) stays null.  This is all IIS did;
 * with `masquerade-from yes' the addresses of the From fields get the
 * domain too (common/masq_hdr.c), so that the header agrees with the
 * envelope: the rewritten header section is kept with the job and sent
 * in place of the file's (smtp_client.c), the queue file is not changed.
 *
 * Security: the sender was checked by mr_msg_job (no control byte) and
 * the domain by the configuration parser, so the new path holds neither
 * CR nor LF and cannot inject a command.  The header is read within
 * MR_MASQ_HEAD_MAX bytes and rewritten by a parser that adds no line.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "log.h"
#include "masq_hdr.h"

/* The From fields of j's message, if they need it. */
static void
masquerade_from(struct job *j, const char *dom)
{
	struct mr_buf out;
	char *buf = mr_xmalloc(MR_MASQ_HEAD_MAX);
	ssize_t n;
	size_t skip;

	while ((n = pread(j->fd, buf, MR_MASQ_HEAD_MAX, 0)) == -1 &&
	    errno == EINTR)
		;
	if (n == -1) {
		/* the DATA phase reads the file again, and says so */
		mr_warn("%s: From not masqueraded: %s", j->qid,
		    strerror(errno));
		free(buf);
		return;
	}
	mr_buf_init(&out);
	if (mr_masq_from(buf, (size_t)n, (off_t)n == j->size, dom, &out,
	    &skip) == 1) {
		j->head = out.data;	/* NUL-terminated by mr_buf */
		j->head_len = out.len;
		j->head_skip = skip;
		j->size += (off_t)out.len - (off_t)skip;
	} else
		mr_buf_free(&out);
	free(buf);
}

void
masquerade(struct job *j)
{
	const char *dom = j->srv->masquerade_domain, *at;
	struct mr_buf b;

	if (dom == NULL || j->sender[0] == '\0' ||
	    (at = strrchr(j->sender, '@')) == NULL)
		return;
	mr_buf_init(&b);
	mr_buf_add(&b, j->sender, (size_t)(at - j->sender) + 1);
	mr_buf_adds(&b, dom);
	free(j->sender);
	j->sender = b.data;	/* NUL-terminated by mr_buf */
	if (j->srv->masquerade_from)
		masquerade_from(j, dom);
}
