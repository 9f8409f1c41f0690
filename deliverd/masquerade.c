/*
 * masquerade.c - `masquerade-domain' (IIS "Masquerade domain"): the
 * domain of the envelope sender of outgoing mail is replaced by the
 * server's masquerade domain at MAIL FROM.  The local part stays as it
 * is, and the null sender (a DSN) stays null.  Header fields (From) are
 * not changed.
 *
 * Security: the sender was checked by mr_msg_job (no control byte) and
 * the domain by the configuration parser, so the new path holds neither
 * CR nor LF and cannot inject a command.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"

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
}
