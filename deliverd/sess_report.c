/*
 * sess_report.c - what deliverd tells queued about its outbound work:
 * each session's start, its state as it goes and its end (MR_D_SESSION,
 * for mailrootctl sessions), and the counters of the metrics
 * (MR_D_COUNT: connections, bytes of messages sent, DNS lookups).
 * smtp_client.c says when; this file only encodes.
 *
 * Security: the host name comes from the configuration or a DNS answer
 * (mx_resolve.c checked it looks like a host name), the address from
 * inet_ntop; both are cut to the sizes queued's decoder accepts and any
 * control byte becomes '?', so queued never drops deliverd for a frame
 * built here.  A frame is queued in memory: a session never waits for it;
 * while queued is down nothing is sent, and smtp_report_all() tells a new
 * queued of every session still open.
 */
#include "config.h"

#include <string.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "proto.h"
#include "deliverd.h"

/* s cut to max bytes, control bytes as '?', into out[max + 1]. */
static const char *
clean(char *out, size_t max, const char *s)
{
	size_t i;

	for (i = 0; i < max && s[i] != '\0'; i++) {
		out[i] = s[i];
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			out[i] = '?';
	}
	out[i] = '\0';
	return out;
}

void
report_session(const struct osess_report *r)
{
	struct mr_ipc *c = deliverd_queued();
	struct mr_buf b;
	char host[255 + 1], addr[64 + 1], cmd[MR_SESS_CMD_MAX + 1];

	if (c == NULL)
		return;		/* a new queued hears of it at reconnect */
	mr_buf_init(&b);
	mr_buf_put_u32(&b, r->op);
	mr_buf_put_u64(&b, r->id);
	mr_buf_put_u32(&b, (uint32_t)r->srvidx);
	mr_buf_put_str(&b, clean(host, sizeof(host) - 1, r->host));
	mr_buf_put_str(&b, clean(addr, sizeof(addr) - 1, r->addr));
	mr_buf_put_u32(&b, r->port <= 65535 ? r->port : 0);
	mr_buf_put_u32(&b, r->state);
	mr_buf_put_str(&b, clean(cmd, sizeof(cmd) - 1, r->command));
	mr_buf_put_u32(&b, r->sent);
	mr_buf_put_u64(&b, (uint64_t)r->start);
	(void)mr_ipc_sendb(c, MR_D_SESSION, -1, &b);
	mr_buf_free(&b);
}

void
report_count(size_t srvidx, uint32_t counter, uint64_t amount)
{
	struct mr_ipc *c = deliverd_queued();
	struct mr_buf b;

	if (c == NULL || amount == 0)
		return;		/* lost with queued's counters anyway */
	mr_buf_init(&b);
	mr_buf_put_u32(&b, (uint32_t)srvidx);
	mr_buf_put_u32(&b, counter);
	mr_buf_put_u64(&b, amount);
	(void)mr_ipc_sendb(c, MR_D_COUNT, -1, &b);
	mr_buf_free(&b);
}
