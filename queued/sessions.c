/*
 * sessions.c - the SMTP sessions in progress, as smtpd reports them
 * (MR_Q_SESSION: a session's start, its state after each command, its
 * end), and their list for "mailrootctl sessions", like IIS Manager's
 * Current Sessions: client, server, state, user, start, last command.
 *
 * smtpd owns the sessions; queued only keeps what it was told, so the
 * table is emptied when the channel to smtpd goes, and a reconnected
 * smtpd reports every session again.
 *
 * Security: a frame is decoded by mr_msg_session (ipc_msg.c: lengths
 * bounded, no control bytes, op and state known) before it is used; one
 * that does not decode, or names no server, drops smtpd.  The strings are
 * copied into fixed fields; the table holds at most SESS_MAX sessions
 * (beyond that a new one is not listed, with a warning once a minute),
 * so smtpd cannot make queued grow without bound.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "control.h"
#include "ctl_proto.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

#define SESS_HASH	1024
#define SESS_MAX	16384
#define WARN_EVERY	60

struct sess {
	struct sess	*next;
	uint64_t	 id;
	uint32_t	 server;
	uint32_t	 port;
	uint32_t	 state;
	uint64_t	 start;
	char		 client[64 + 1];
	char		 local[64 + 1];
	char		 helo[255 + 1];
	char		 user[MR_ADDR_MAX + 1];
	char		 command[MR_SESS_CMD_MAX + 1];
};

static struct sess	*table[SESS_HASH];
static size_t		 nsess;
static time_t		 warned;

static const char *const state_names[] = {
	"connected", "tls", "greeted", "mail", "data", "closing"
};

static struct sess **
find(uint64_t id)
{
	struct sess **pp;

	for (pp = &table[id % SESS_HASH]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->id == id)
			break;
	return pp;
}

/* Every string fits: the decoder bounded it to the field's size. */
static void
copy_in(struct sess *s, const struct mr_m_session *m)
{
	s->server = m->server;
	s->port = m->server_port;
	s->state = m->state;
	s->start = m->start;
	snprintf(s->client, sizeof(s->client), "%s", m->client_ip);
	snprintf(s->local, sizeof(s->local), "%s", m->server_ip);
	snprintf(s->helo, sizeof(s->helo), "%s", m->helo);
	snprintf(s->user, sizeof(s->user), "%s", m->user);
	snprintf(s->command, sizeof(s->command), "%s", m->command);
}

static void
add(const struct mr_m_session *m)
{
	struct sess *s;
	time_t now;

	if (nsess >= SESS_MAX) {
		now = time(NULL);
		if (now - warned >= WARN_EVERY) {
			mr_warn("sessions: more than %d in progress; "
			    "mailrootctl sessions does not list them all",
			    SESS_MAX);
			warned = now;
		}
		return;
	}
	s = mr_xcalloc(1, sizeof(*s));
	s->id = m->id;
	copy_in(s, m);
	s->next = table[m->id % SESS_HASH];
	table[m->id % SESS_HASH] = s;
	nsess++;
}

/* MR_Q_SESSION from smtpd: -1 if malformed (the caller drops smtpd). */
int
sessions_update(const unsigned char *data, size_t len)
{
	struct mr_m_session m;
	struct sess **pp, *s;
	const char *err;

	if (mr_msg_session(data, len, &m, &err) == -1 ||
	    m.server >= q->nservers) {
		mr_warn("smtpd sent a %s", m.server >= q->nservers ?
		    "SESSION for no server" : err);
		return -1;
	}
	if (m.op == MR_SESS_BEGIN || m.op == MR_SESS_ONCE)
		metrics_add(&q->servers[m.server], MC_CONNECTIONS, 1);
	if (m.op == MR_SESS_ONCE)	/* over before it could be listed */
		return 0;
	pp = find(m.id);
	if (m.op == MR_SESS_GONE) {
		if ((s = *pp) != NULL) {
			*pp = s->next;
			free(s);
			nsess--;
		}
		return 0;
	}
	if (*pp != NULL)
		copy_in(*pp, &m);
	else
		add(&m);
	return 0;
}

/* The sessions in progress of server i (for the metrics). */
size_t
sessions_count(size_t server)
{
	const struct sess *s;
	size_t i, n = 0;

	for (i = 0; i < SESS_HASH; i++)
		for (s = table[i]; s != NULL; s = s->next)
			n += s->server == server;
	return n;
}

/* smtpd went away: its sessions with it. */
void
sessions_clear(void)
{
	struct sess *s;
	size_t i;

	for (i = 0; i < SESS_HASH; i++)
		while ((s = table[i]) != NULL) {
			table[i] = s->next;
			free(s);
		}
	nsess = 0;
}

/* One listed session (an array of these, not of bare pointers). */
struct entry {
	const struct sess	*s;
};

static int
by_start(const void *a, const void *b)
{
	const struct sess *x = ((const struct entry *)a)->s;
	const struct sess *y = ((const struct entry *)b)->s;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The sessions of the server named (every one with ""), oldest first;
 * *np of them. */
static struct entry *
listed(const char *server, size_t *np)
{
	struct entry *v;
	const struct sess *s;
	size_t i, n = 0;

	v = mr_xcalloc(nsess + 1, sizeof(struct entry));
	for (i = 0; i < SESS_HASH; i++)
		for (s = table[i]; s != NULL; s = s->next)
			if (server[0] == '\0' || strcmp(server,
			    q->servers[s->server].srv->name) == 0)
				v[n++].s = s;
	qsort(v, n, sizeof(struct entry), by_start);
	*np = n;
	return v;
}

static void
sess_json(struct mr_buf *b, const struct sess *s, time_t now)
{
	char started[32];

	control_iso_time((time_t)s->start, started, sizeof(started));
	mr_buf_printf(b, "{\"id\":%llu,\"server\":", (unsigned long long)s->id);
	control_json_str(b, q->servers[s->server].srv->name);
	mr_buf_adds(b, ",\"client\":");
	control_json_str(b, s->client);
	mr_buf_adds(b, ",\"local_address\":");
	control_json_str(b, s->local);
	mr_buf_printf(b, ",\"local_port\":%u,\"state\":\"%s\",\"user\":",
	    s->port, state_names[s->state]);
	control_json_str(b, s->user);
	mr_buf_adds(b, ",\"helo\":");
	control_json_str(b, s->helo);
	mr_buf_adds(b, ",\"command\":");
	control_json_str(b, s->command);
	mr_buf_printf(b, ",\"started\":\"%s\",\"seconds\":%lld}", started,
	    (long long)(now - (time_t)s->start));
}

static void
sess_line(struct mr_buf *b, const struct sess *s, int wsrv)
{
	char started[32];

	control_iso_time((time_t)s->start, started, sizeof(started));
	mr_buf_printf(b, "%-8llu  %-*s  %-39s  %-9s  %-20s  %-20s  %-8s  %s\n",
	    (unsigned long long)s->id, wsrv, q->servers[s->server].srv->name,
	    s->client, state_names[s->state], s->user[0] ? s->user : "-",
	    started, s->command[0] ? s->command : "-",
	    s->helo[0] ? s->helo : "-");
}

/* mailrootctl sessions [--server NAME]: the inbound sessions, then the
 * outbound ones */
void
sessions_verb(struct conn *c, const struct mr_ctl_req *r)
{
	struct mr_buf b;
	struct entry *v;
	size_t i, n;
	time_t now = time(NULL);
	int wsrv = 6;

	v = listed(r->server, &n);
	for (i = 0; i < n; i++) {
		int w = (int)strlen(q->servers[v[i].s->server].srv->name);

		if (w > wsrv)
			wsrv = w;
	}
	mr_buf_init(&b);
	if (r->json)
		mr_buf_adds(&b, "{\"sessions\":[");
	else
		mr_buf_printf(&b, "%-8s  %-*s  %-39s  %-9s  %-20s  %-20s  "
		    "%-8s  %s\n", "ID", wsrv, "SERVER", "CLIENT", "STATE", "USER",
		    "STARTED", "COMMAND", "HELO");
	for (i = 0; i < n; i++) {
		if (r->json) {
			if (i > 0)
				mr_buf_adds(&b, ",");
			sess_json(&b, v[i].s, now);
		} else
			sess_line(&b, v[i].s, wsrv);
	}
	if (r->json)
		mr_buf_printf(&b, "],\"count\":%zu", n);
	else
		mr_buf_printf(&b, "%zu inbound session%s\n", n,
		    n == 1 ? "" : "s");
	outbound_verb(&b, r->server, r->json);	/* deliverd's (outbound.c) */
	if (r->json)
		mr_buf_adds(&b, "}\n");
	control_answer(c, NULL, &b);
	mr_buf_free(&b);
	free(v);
}
