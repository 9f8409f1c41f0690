/*
 * replay.c - the final results deliverd reported in the last minute,
 * sent again to every new queued channel.
 *
 * queued removes a message when it reads its result.  If queued is
 * killed after a message was delivered but before it read the result,
 * the restarted queued would deliver the message again; instead it first
 * applies these replays (MR_D_REPLAY), matched by queue id and recipient,
 * which is harmless for results it had already applied.
 *
 * Security: holds only what deliverd itself reported; the texts were
 * already bounded for MR_D_RESULT.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "deliverd.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"

#define REPLAY_KEEP	60		/* seconds */
#define REPLAY_MAX	8192		/* entries */
#define FRAME_BUDGET	(MR_IPC_MAX - 4096)

struct entry {
	time_t	 when;
	int	 status;
	char	*qid;
	char	*rcpt;
	char	*text;
};

static struct entry	ring[REPLAY_MAX];
static size_t		head, count;	/* oldest at head */

static void
entry_clear(struct entry *e)
{
	free(e->qid);
	free(e->rcpt);
	free(e->text);
	memset(e, 0, sizeof(*e));
}

static void
expire(time_t now)
{
	while (count > 0 && (ring[head].when + REPLAY_KEEP < now ||
	    count == REPLAY_MAX)) {
		entry_clear(&ring[head]);
		head = (head + 1) % REPLAY_MAX;
		count--;
	}
}

void
replay_record(const char *qid, const char *rcpt, int status,
    const char *text, size_t textmax)
{
	struct entry *e;
	time_t now = time(NULL);
	size_t n = strlen(text);

	if (status != MR_DS_OK && status != MR_DS_PERM &&
	    status != MR_DS_RELAYED)
		return;		/* a deferral is retried anyway */
	expire(now);
	e = &ring[(head + count) % REPLAY_MAX];
	e->when = now;
	e->status = status;
	e->qid = mr_xstrdup(qid);
	e->rcpt = mr_xstrdup(rcpt);
	e->text = mr_xstrndup(text, n > textmax ? textmax : n);
	count++;
}

static void
flush(struct mr_ipc *chan, struct mr_buf *body, uint32_t n)
{
	struct mr_buf b;

	if (n == 0)
		return;
	mr_buf_init(&b);
	mr_buf_put_u32(&b, n);
	mr_buf_add(&b, body->data, body->len);
	mr_ipc_sendb(chan, MR_D_REPLAY, -1, &b);
	mr_buf_free(&b);
	mr_buf_reset(body);
}

void
replay_send(struct mr_ipc *chan)
{
	struct mr_buf body;
	uint32_t n = 0;
	size_t i;

	expire(time(NULL));
	mr_buf_init(&body);
	for (i = 0; i < count; i++) {
		const struct entry *e = &ring[(head + i) % REPLAY_MAX];

		if (body.len + strlen(e->text) + MR_ADDR_MAX + MR_ID_MAX +
		    32 > FRAME_BUDGET || n == MR_RCPT_MAX) {
			flush(chan, &body, n);
			n = 0;
		}
		mr_buf_put_str(&body, e->qid);
		mr_buf_put_str(&body, e->rcpt);
		mr_buf_put_u32(&body, (uint32_t)e->status);
		mr_buf_put_str(&body, e->text);
		n++;
	}
	flush(chan, &body, n);
	mr_buf_free(&body);
	mr_ipc_send(chan, MR_D_REPLAY_END, -1, NULL, 0);
	if (count > 0)
		mr_info("replayed %zu recent result%s to queued", count,
		    count == 1 ? "" : "s");
}

void
replay_free(void)
{
	while (count > 0) {
		entry_clear(&ring[head]);
		head = (head + 1) % REPLAY_MAX;
		count--;
	}
}
