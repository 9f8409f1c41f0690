/*
 * metrics.c - the Prometheus metrics ("metrics listen"): counters of
 * what queued sees, per virtual server, served over HTTP (text
 * exposition format 0.0.4) with libevent's evhttp on MR_FD_METRICS,
 * the TCP listener mailrootd bound for us.
 *
 * Counters are per message (IIS's SMTP Server performance object,
 * IIS-MODEL.md section 8): received when a message is committed to a
 * queue; delivered (a local recipient: Drop, Maildir, LMTP), sent (a
 * remote one) and failed when it leaves the queue; an NDR when a
 * non-delivery report is queued; badmail when a file goes to Badmail;
 * a retry each time an attempt leaves recipients pending; an inbound
 * connection when smtpd reports a new session (sessions.c), whose
 * table also gives the connections open now.  deliverd counts what only
 * it sees (MR_D_COUNT, outbound.c): outbound connections, the bytes of
 * the messages next hops accepted, its DNS lookups and their failures;
 * its session table gives the outbound connections open now.  mailrootd
 * tells each child's restarts (MR_M_RESTARTS).  Two histograms: the size
 * of each committed message, and the delivery latency of each message
 * that leaves the queue with a recipient delivered -- from its commit,
 * by the monotonic clock (by its created time, in whole seconds, for a
 * message queued before queued started).
 *
 * Security: every byte of a request is hostile.  evhttp parses it with
 * bounded header sizes, no body and a timeout; only GET of /metrics is
 * answered (other methods 405, other paths 404), and the answer holds
 * counters only, never an address or a message.  Who may connect is
 * the administrator's choice of bind address.  A bad request is
 * answered or dropped by evhttp; it never stops queued.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "buf.h"
#include "ipc_msg.h"
#include "log.h"
#include "proto.h"
#include "queued.h"
#include "util.h"

#define HTTP_TIMEOUT	10	/* seconds for a whole request */
#define HTTP_MAX_HDRS	8192	/* bytes of request line and headers */

static const struct {
	const char	*name;
	const char	*help;
} counters[MC_N] = {
	[MC_RECEIVED] = { "mailroot_messages_received_total",
	    "Messages committed to the queue." },
	[MC_DELIVERED] = { "mailroot_messages_delivered_total",
	    "Messages delivered to a local recipient (Drop, Maildir, LMTP)." },
	[MC_SENT] = { "mailroot_messages_sent_total",
	    "Messages sent to a remote recipient." },
	[MC_FAILED] = { "mailroot_messages_failed_total",
	    "Messages that left the queue with a failed recipient." },
	[MC_NDRS] = { "mailroot_ndrs_total",
	    "Non-delivery reports queued." },
	[MC_BADMAIL] = { "mailroot_badmail_total",
	    "Messages moved to Badmail." },
	[MC_BYTES] = { "mailroot_bytes_received_total",
	    "Bytes of the messages committed to the queue." },
	[MC_RETRIES] = { "mailroot_delivery_retries_total",
	    "Attempts after which recipients stayed pending for a retry." },
	[MC_CONNECTIONS] = { "mailroot_inbound_connections_total",
	    "SMTP connections accepted." },
	[MC_OUT_CONNECTIONS] = { "mailroot_outbound_connections_total",
	    "Outbound SMTP connections established." },
	[MC_BYTES_SENT] = { "mailroot_bytes_sent_total",
	    "Bytes of the messages remote servers accepted." },
	[MC_DNS_LOOKUPS] = { "mailroot_dns_lookups_total",
	    "Next hops looked up in the DNS." },
	[MC_DNS_FAILURES] = { "mailroot_dns_lookup_failures_total",
	    "DNS lookups of a next hop that gave no address." },
};

/* The histograms, their upper bounds in base units (+Inf is implied). */
enum mh_hist { MH_SIZE, MH_LATENCY, MH_N };
#define MH_BUCKETS	12

static const struct {
	const char	*name;
	const char	*help;
	double		 le[MH_BUCKETS];
	size_t		 n;
} hists[MH_N] = {
	[MH_SIZE] = { "mailroot_message_size_bytes",
	    "Size of the messages committed to the queue.",
	    { 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
	    67108864 }, 9 },
	[MH_LATENCY] = { "mailroot_delivery_latency_seconds",
	    "Time from commit to leaving the queue, of delivered messages.",
	    { 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400 },
	    12 },
};

struct hist {
	uint64_t	 bucket[MH_BUCKETS];	/* cumulative: <= le */
	uint64_t	 count;
	double		 sum;
};

struct srv_metrics {
	uint64_t	 c[MC_N];
	struct hist	 h[MH_N];
};

static struct {
	struct srv_metrics *s;	/* by server index */
	size_t		 n;
	struct evhttp	*http;
	uint32_t	 restarts[MR_PROC_COUNT];	/* MR_M_RESTARTS */
} mt;

/* Server qs's metrics, NULL if it is none of ours. */
static struct srv_metrics *
of(const struct qserver *qs)
{
	size_t i = (size_t)(qs - q->servers);

	if (i >= q->nservers)
		return NULL;
	if (i >= mt.n) {	/* first count, or more servers after reload */
		mt.s = mr_xreallocarray(mt.s, q->nservers, sizeof(*mt.s));
		memset(mt.s + mt.n, 0, (q->nservers - mt.n) * sizeof(*mt.s));
		mt.n = q->nservers;
	}
	return &mt.s[i];
}

void
metrics_add(const struct qserver *qs, enum mc_counter k, uint64_t v)
{
	struct srv_metrics *sm;

	if (k < MC_N && (sm = of(qs)) != NULL)
		sm->c[k] += v;
}

static void
observe(const struct qserver *qs, enum mh_hist k, double v)
{
	struct srv_metrics *sm;
	struct hist *h;
	size_t b;

	if ((sm = of(qs)) == NULL)
		return;
	h = &sm->h[k];
	for (b = 0; b < hists[k].n; b++)
		if (v <= hists[k].le[b])
			h->bucket[b]++;
	h->count++;
	h->sum += v;
}

void
metrics_size(const struct qserver *qs, uint64_t bytes)
{
	observe(qs, MH_SIZE, (double)bytes);
}

/* Seconds m spent between commit and now. */
static double
latency(const struct qmsg *m)
{
	time_t now;

	if (m->accepted_ms != 0)
		return (double)(mr_now_ms() - m->accepted_ms) / 1000.0;
	now = q_now();
	return now > m->created ? (double)(now - m->created) : 0.0;
}

/* A message leaves the queue: what became of its recipients. */
void
metrics_done(const struct qmsg *m)
{
	int local = 0, remote = 0, failed = 0;
	size_t i;

	for (i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].state == R_FAILED)
			failed = 1;
		else if (m->rcpts[i].state == R_SENT && m->rcpts[i].local)
			local = 1;
		else if (m->rcpts[i].state == R_SENT)
			remote = 1;
	}
	metrics_add(m->qs, MC_DELIVERED, (uint64_t)local);
	metrics_add(m->qs, MC_SENT, (uint64_t)remote);
	metrics_add(m->qs, MC_FAILED, (uint64_t)failed);
	if (local || remote)
		observe(m->qs, MH_LATENCY, latency(m));
}

/* A label value, escaped as the exposition format asks (\\, \", \n). */
static void
put_label(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(out, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, s, 1);
	}
}

static void
put_head(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

static void
put_sample(struct evbuffer *out, const char *name, size_t srv,
    const char *queue, uint64_t v)
{
	evbuffer_add_printf(out, "%s{server=\"", name);
	put_label(out, q->servers[srv].srv->name);
	if (queue != NULL)
		evbuffer_add_printf(out, "\",queue=\"%s", queue);
	evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)v);
}

static void
put_counters(struct evbuffer *out)
{
	size_t k, i;

	for (k = 0; k < MC_N; k++) {
		put_head(out, counters[k].name, "counter", counters[k].help);
		for (i = 0; i < q->nservers; i++)
			put_sample(out, counters[k].name, i, NULL,
			    i < mt.n ? mt.s[i].c[k] : 0);
	}
}

static void
put_bucket(struct evbuffer *out, const char *name, size_t srv,
    const char *le, uint64_t v)
{
	evbuffer_add_printf(out, "%s_bucket{server=\"", name);
	put_label(out, q->servers[srv].srv->name);
	evbuffer_add_printf(out, "\",le=\"%s\"} %llu\n", le,
	    (unsigned long long)v);
}

static void
put_hist(struct evbuffer *out, enum mh_hist k, size_t srv)
{
	static const struct hist none;
	const struct hist *h = srv < mt.n ? &mt.s[srv].h[k] : &none;
	const char *name = hists[k].name;
	char le[32];
	size_t b;

	for (b = 0; b < hists[k].n; b++) {
		snprintf(le, sizeof(le), "%.10g", hists[k].le[b]);
		put_bucket(out, name, srv, le, h->bucket[b]);
	}
	put_bucket(out, name, srv, "+Inf", h->count);
	evbuffer_add_printf(out, "%s_sum{server=\"", name);
	put_label(out, q->servers[srv].srv->name);
	evbuffer_add_printf(out, "\"} %.17g\n%s_count{server=\"", h->sum,
	    name);
	put_label(out, q->servers[srv].srv->name);
	evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)h->count);
}

static void
put_hists(struct evbuffer *out)
{
	size_t k, i;

	for (k = 0; k < MH_N; k++) {
		put_head(out, hists[k].name, "histogram", hists[k].help);
		for (i = 0; i < q->nservers; i++)
			put_hist(out, (enum mh_hist)k, i);
	}
}

static void
put_connections(struct evbuffer *out)
{
	const char *name = "mailroot_inbound_connections";
	const char *oname = "mailroot_outbound_connections";
	size_t i;

	put_head(out, name, "gauge", "SMTP connections open now.");
	for (i = 0; i < q->nservers; i++)
		put_sample(out, name, i, NULL, sessions_count(i));
	put_head(out, oname, "gauge",
	    "Outbound SMTP connections open now.");
	for (i = 0; i < q->nservers; i++)
		put_sample(out, oname, i, NULL, outbound_connections(i));
}

/* MR_M_RESTARTS: mailrootd's count of each child's restarts, sent after
 * every start of a child.  A malformed frame is logged and ignored: the
 * counts stay as they were. */
void
metrics_restarts(const unsigned char *data, size_t len)
{
	uint32_t r[MR_PROC_COUNT];
	const char *err;

	if (mr_msg_restarts(data, len, r, &err) == -1) {
		mr_warn("mailrootd: %s ignored", err);
		return;
	}
	memcpy(mt.restarts, r, sizeof(mt.restarts));
}

static void
put_restarts(struct evbuffer *out)
{
	static const char *const names[MR_PROC_COUNT] = {
		[MR_PROC_SMTPD] = "smtpd", [MR_PROC_QUEUED] = "queued",
		[MR_PROC_DELIVERD] = "deliverd"
	};
	const char *name = "mailroot_process_restarts_total";
	size_t k;

	put_head(out, name, "counter",
	    "Times mailrootd started a child process again.");
	for (k = MR_PROC_SMTPD; k < MR_PROC_COUNT; k++)
		evbuffer_add_printf(out, "%s{process=\"%s\"} %lu\n", name,
		    names[k], (unsigned long)mt.restarts[k]);
}

/* Messages with a pending local, and a pending remote, recipient. */
/*
 * mailroot_queue_messages, kept as messages enter the queue, change and
 * leave it (metrics_queue), so that a scrape costs nothing per message:
 * per server, the messages with a pending local and a pending remote
 * recipient.  qmsg.qbits is what each message counts for now.
 */
static uint64_t	(*qcount)[2];

static uint8_t
queue_bits(const struct qmsg *m)
{
	uint8_t bits = 0;
	size_t i;

	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == R_PENDING)
			bits |= m->rcpts[i].local ? 1 : 2;
	return bits;
}

/* m is in the queue (in) and may have changed, or leaves it (!in). */
void
metrics_queue(struct qmsg *m, int in)
{
	uint8_t bits = in ? queue_bits(m) : 0, diff = bits ^ m->qbits;
	size_t s = (size_t)(m->qs - q->servers), k;

	if (qcount == NULL)
		qcount = mr_xcalloc(q->nservers, sizeof(*qcount));
	for (k = 0; k < 2; k++)
		if (diff & (1 << k)) {
			if (bits & (1 << k))
				qcount[s][k]++;
			else
				qcount[s][k]--;
		}
	m->qbits = bits;
}

static void
put_queues(struct evbuffer *out)
{
	const char *name = "mailroot_queue_messages";
	size_t s;

	put_head(out, name, "gauge",
	    "Messages in the queue with a pending local or remote recipient.");
	for (s = 0; s < q->nservers; s++) {
		put_sample(out, name, s, "local",
		    qcount != NULL ? qcount[s][0] : 0);
		put_sample(out, name, s, "remote",
		    qcount != NULL ? qcount[s][1] : 0);
	}
}

static void
serve(struct evhttp_request *req, void *arg)
{
	const char *path;
	struct evbuffer *out;

	(void)arg;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET");
		evhttp_send_error(req, HTTP_BADMETHOD, NULL);
		return;
	}
	path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	if ((out = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, NULL);
		return;
	}
	put_counters(out);
	put_hists(out);
	put_connections(out);
	put_queues(out);
	put_restarts(out);
	put_head(out, "mailroot_build_info", "gauge",
	    "The running mailroot's version.");
	evbuffer_add_printf(out, "mailroot_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}

void
metrics_start(void)
{
	int on = 0;
	socklen_t len = sizeof(on);

	if (getsockopt(MR_FD_METRICS, SOL_SOCKET, SO_ACCEPTCONN, &on,
	    &len) == -1 || !on)
		return;		/* no "metrics listen" */
	if (mr_set_nonblock(MR_FD_METRICS) == -1 ||
	    mr_set_cloexec(MR_FD_METRICS, 1) == -1)
		mr_fatal("metrics listener: %s", strerror(errno));
	if ((mt.http = evhttp_new(q->base)) == NULL)
		mr_fatal("metrics: evhttp_new failed");
	/* the methods evhttp parses; serve() answers all but GET with 405
	 * (evhttp itself would say 501) */
	evhttp_set_allowed_methods(mt.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(mt.http, HTTP_MAX_HDRS);
	evhttp_set_max_body_size(mt.http, 0);
	evhttp_set_timeout(mt.http, HTTP_TIMEOUT);
	evhttp_set_gencb(mt.http, serve, NULL);
	if (evhttp_accept_socket(mt.http, MR_FD_METRICS) == -1)
		mr_fatal("metrics: cannot serve the listener");
	mr_info("metrics ready");
}

void
metrics_shutdown(void)
{
	if (mt.http != NULL)
		evhttp_free(mt.http);
	mt.http = NULL;
	free(mt.s);
	mt.s = NULL;
	mt.n = 0;
}
