/*
 * translog.c - notes each SMTP command and its final reply, and sends the
 * record to queued, which writes the server's transaction log (IIS W3C
 * Extended; queued/w3clog.c).  smtpd has no files: the lines travel.
 *
 * Security: the command line is the client's; the method and arguments
 * are cut to fixed sizes and every control byte becomes '+' before they
 * leave (queued's decoder refuses control bytes).  A record is one IPC
 * frame queued in memory: the session never waits for it.  What the
 * log gets of a command is what IIS logged: the verb, its arguments with
 * spaces as '+' (AUTH's are not logged: they carry credentials), the
 * reply code, the bytes each way and the time taken.
 *
 * The same channel carries each session's start, its state after every
 * command and its end (MR_Q_SESSION), for mailrootctl sessions: queued
 * keeps the table (queued/sessions.c).
 */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "ipc.h"
#include "proto.h"
#include "smtpd.h"
#include "translog.h"
#include "util.h"

static void
clean_copy(char *dst, size_t size, const char *src, size_t n, int upper)
{
	size_t i;

	if (n >= size)
		n = size - 1;
	for (i = 0; i < n; i++) {
		char c = src[i];

		if ((unsigned char)c <= 0x20 || (unsigned char)c >= 0x7f)
			c = '+';	/* W3C fields are space-separated */
		if (upper)
			c = (char)toupper((unsigned char)c);
		dst[i] = c;
	}
	dst[n] = '\0';
}

void
translog_begin(struct translog *t, const char *line, size_t len)
{
	const char *sp = memchr(line, ' ', len);
	size_t vlen = sp ? (size_t)(sp - line) : len;

	memset(t, 0, sizeof(*t));
	t->active = 1;
	t->start_ms = mr_now_ms();
	t->cs_bytes = len + 2;
	clean_copy(t->method, sizeof(t->method), line, vlen, 1);
	/* IIS wrote the arguments as a query: "+FROM:<a@b>" */
	if (sp != NULL && strcasecmp(t->method, "AUTH") != 0)
		clean_copy(t->args, sizeof(t->args), sp, len - vlen, 0);
}

int
translog_reply(struct translog *t, const char *line, size_t len)
{
	if (!t->active)
		return 0;
	t->sc_bytes += len;
	/* "354" asks for the message: DATA ends with the reply after it */
	return len >= 4 && line[3] == ' ' && strncmp(line, "354", 3) != 0;
}

void
translog_send(struct translog *t, const struct translog_ctx *x,
    const char *reply)
{
	struct mr_buf b;
	unsigned status = 0;
	int i;

	t->active = 0;
	if (smtpd->queued == NULL)
		return;
	for (i = 0; i < 3 && isdigit((unsigned char)reply[i]); i++)
		status = status * 10 + (unsigned)(reply[i] - '0');
	mr_buf_init(&b);
	mr_buf_put_u32(&b, x->server);
	mr_buf_put_str(&b, x->client_ip);
	mr_buf_put_str(&b, x->server_ip);
	mr_buf_put_u32(&b, x->server_port);
	mr_buf_put_str(&b, x->helo);
	mr_buf_put_str(&b, x->user);
	mr_buf_put_str(&b, t->method);
	mr_buf_put_str(&b, t->args);
	mr_buf_put_u32(&b, status);
	mr_buf_put_u64(&b, t->sc_bytes);
	mr_buf_put_u64(&b, t->cs_bytes);
	mr_buf_put_u32(&b, (uint32_t)(mr_now_ms() - t->start_ms));
	mr_ipc_sendb(smtpd->queued, MR_Q_LOG, -1, &b);
	mr_buf_free(&b);
}

void
translog_session(const struct translog_sess *ss, const struct translog_ctx *x)
{
	struct mr_buf b;

	if (smtpd->queued == NULL)
		return;		/* a new queued hears of it at reconnect */
	mr_buf_init(&b);
	mr_buf_put_u32(&b, ss->op);
	mr_buf_put_u64(&b, ss->id);
	mr_buf_put_u32(&b, x->server);
	mr_buf_put_str(&b, x->client_ip);
	mr_buf_put_str(&b, x->server_ip);
	mr_buf_put_u32(&b, x->server_port);
	mr_buf_put_u32(&b, ss->state);
	mr_buf_put_str(&b, x->helo);
	mr_buf_put_str(&b, x->user);
	mr_buf_put_str(&b, ss->command);
	mr_buf_put_u64(&b, ss->start);
	mr_ipc_sendb(smtpd->queued, MR_Q_SESSION, -1, &b);
	mr_buf_free(&b);
}
