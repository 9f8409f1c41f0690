/*
 * outbound.c - what deliverd reports of its outbound work: the sessions
 * it has open (MR_D_SESSION: a session's start, its state as it goes,
 * its end), listed by "mailrootctl sessions" after the inbound ones, and
 * its counters for the metrics (MR_D_COUNT: connections, bytes of the
 * messages sent, DNS lookups and their failures).
 *
 * deliverd owns the sessions; queued keeps only what it was told, so the
 * table is emptied when the channel to deliverd goes, and a reconnected
 * deliverd reports every session again (smtp_report_all).
 *
 * Security: a frame is decoded by mr_msg_osession or mr_msg_dcount
 * (ipc_msg.c: lengths bounded, no control bytes, op, state and counter
 * known) before it is used; one that does not decode, or names no
 * server, drops deliverd.  Strings are copied into fixed fields; the
 * table holds at most OSESS_MAX sessions (beyond that a new one is not
 * listed, with a warning once a minute), so deliverd cannot make queued
 * grow without bound.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "control.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

#define OSESS_HASH	256
#define OSESS_MAX	16384
#define WARN_EVERY	60

struct osess {
	struct osess	*next;
	uint64_t	 id;
	uint32_t	 server;
	uint32_t	 port;
	uint32_t	 state;
	uint32_t	 sent;
	uint64_t	 start;
	char		 host[255 + 1];
	char		 addr[64 + 1];
	char		 command[MR_SESS_CMD_MAX + 1];
};

static struct osess	*table[OSESS_HASH];
static size_t		 nsess;
static time_t		 warned;

static const char *const state_names[] = {
	"resolving", "connecting", "greeting", "hello", "mail", "data",
	"idle", "closing"
};

static const enum mc_counter dcounters[] = {
	[MR_DC_CONNECTIONS] = MC_OUT_CONNECTIONS,
	[MR_DC_BYTES_SENT] = MC_BYTES_SENT,
	[MR_DC_DNS] = MC_DNS_LOOKUPS,
	[MR_DC_DNS_FAIL] = MC_DNS_FAILURES
};

static struct osess **
find(uint64_t id)
{
	struct osess **pp;

	for (pp = &table[id % OSESS_HASH]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->id == id)
			break;
	return pp;
}

/* Every string fits: the decoder bounded it to the field's size. */
static void
copy_in(struct osess *s, const struct mr_m_osession *m)
{
	s->server = m->server;
	s->port = m->port;
	s->state = m->state;
	s->sent = m->sent;
	s->start = m->start;
	snprintf(s->host, sizeof(s->host), "%s", m->host);
	snprintf(s->addr, sizeof(s->addr), "%s", m->addr);
	snprintf(s->command, sizeof(s->command), "%s", m->command);
}

static void
add(const struct mr_m_osession *m)
{
	struct osess *s;
	time_t now;

	if (nsess >= OSESS_MAX) {
		now = time(NULL);
		if (now - warned >= WARN_EVERY) {
			mr_warn("sessions: more than %d outbound in progress; "
			    "mailrootctl sessions does not list them all",
			    OSESS_MAX);
			warned = now;
		}
		return;
	}
	s = mr_xcalloc(1, sizeof(*s));
	s->id = m->id;
	copy_in(s, m);
	s->next = table[m->id % OSESS_HASH];
	table[m->id % OSESS_HASH] = s;
	nsess++;
}

/* MR_D_SESSION from deliverd: -1 if malformed (the caller drops it). */
int
outbound_session(const unsigned char *data, size_t len)
{
	struct mr_m_osession m;
	struct osess **pp, *s;
	const char *err;

	if (mr_msg_osession(data, len, &m, &err) == -1 ||
	    m.server >= q->nservers) {
		mr_warn("deliverd sent a %s", m.server >= q->nservers ?
		    "SESSION for no server" : err);
		return -1;
	}
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

/* MR_D_COUNT from deliverd: -1 if malformed (the caller drops it). */
int
outbound_count(const unsigned char *data, size_t len)
{
	struct mr_m_dcount m;
	const char *err;

	if (mr_msg_dcount(data, len, &m, &err) == -1 ||
	    m.server >= q->nservers) {
		mr_warn("deliverd sent a %s", m.server >= q->nservers ?
		    "COUNT for no server" : err);
		return -1;
	}
	metrics_add(&q->servers[m.server], dcounters[m.counter], m.amount);
	return 0;
}

/* The outbound sessions of server i with a connection open (for the
 * metrics): not resolving or connecting. */
size_t
outbound_connections(size_t server)
{
	const struct osess *s;
	size_t i, n = 0;

	for (i = 0; i < OSESS_HASH; i++)
		for (s = table[i]; s != NULL; s = s->next)
			n += s->server == server &&
			    s->state >= MR_OS_GREETING;
	return n;
}

/* deliverd went away: its sessions with it. */
void
outbound_clear(void)
{
	struct osess *s;
	size_t i;

	for (i = 0; i < OSESS_HASH; i++)
		while ((s = table[i]) != NULL) {
			table[i] = s->next;
			free(s);
		}
	nsess = 0;
}

/* One listed session (an array of these, not of bare pointers). */
struct entry {
	const struct osess	*s;
};

static int
by_start(const void *a, const void *b)
{
	const struct osess *x = ((const struct entry *)a)->s;
	const struct osess *y = ((const struct entry *)b)->s;

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
	const struct osess *s;
	size_t i, n = 0;

	v = mr_xcalloc(nsess + 1, sizeof(struct entry));
	for (i = 0; i < OSESS_HASH; i++)
		for (s = table[i]; s != NULL; s = s->next)
			if (server[0] == '\0' || strcmp(server,
			    q->servers[s->server].srv->name) == 0)
				v[n++].s = s;
	qsort(v, n, sizeof(struct entry), by_start);
	*np = n;
	return v;
}

static void
osess_json(struct mr_buf *b, const struct osess *s, time_t now)
{
	char started[32];

	control_iso_time((time_t)s->start, started, sizeof(started));
	mr_buf_printf(b, "{\"id\":%llu,\"server\":", (unsigned long long)s->id);
	control_json_str(b, q->servers[s->server].srv->name);
	mr_buf_adds(b, ",\"remote_host\":");
	control_json_str(b, s->host);
	mr_buf_adds(b, ",\"remote_address\":");
	control_json_str(b, s->addr);
	mr_buf_printf(b, ",\"remote_port\":%u,\"state\":\"%s\",\"command\":",
	    s->port, state_names[s->state]);
	control_json_str(b, s->command);
	mr_buf_printf(b, ",\"sent\":%u,\"started\":\"%s\",\"seconds\":%lld}",
	    s->sent, started, (long long)(now - (time_t)s->start));
}

static void
osess_line(struct mr_buf *b, const struct osess *s, int wsrv)
{
	char started[32];

	control_iso_time((time_t)s->start, started, sizeof(started));
	mr_buf_printf(b, "%-8llu  %-*s  %-39s  %-10s  %-20s  %-8s  %4u  %s\n",
	    (unsigned long long)s->id, wsrv, q->servers[s->server].srv->name,
	    s->addr[0] ? s->addr : "-", state_names[s->state], started,
	    s->command[0] ? s->command : "-", s->sent, s->host);
}

/*
 * The outbound part of mailrootctl sessions: in JSON, ",\"outbound\":
 * [...],\"outbound_count\":N" to close the object; in columns, a table
 * of its own after the inbound one.
 */
void
outbound_verb(struct mr_buf *b, const char *server, int json)
{
	struct entry *v;
	size_t i, n;
	time_t now = time(NULL);
	int wsrv = 6;

	v = listed(server, &n);
	for (i = 0; i < n; i++) {
		int w = (int)strlen(q->servers[v[i].s->server].srv->name);

		if (w > wsrv)
			wsrv = w;
	}
	if (json)
		mr_buf_adds(b, ",\"outbound\":[");
	else
		mr_buf_printf(b, "\n%-8s  %-*s  %-39s  %-10s  %-20s  %-8s  "
		    "%4s  %s\n", "OUT-ID", wsrv, "SERVER", "REMOTE", "STATE",
		    "STARTED", "COMMAND", "SENT", "HOST");
	for (i = 0; i < n; i++) {
		if (json && i > 0)
			mr_buf_adds(b, ",");
		if (json)
			osess_json(b, v[i].s, now);
		else
			osess_line(b, v[i].s, wsrv);
	}
	if (json)
		mr_buf_printf(b, "],\"outbound_count\":%zu", n);
	else
		mr_buf_printf(b, "%zu outbound session%s\n", n,
		    n == 1 ? "" : "s");
	free(v);
}
