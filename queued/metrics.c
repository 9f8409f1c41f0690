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
 * a retry each time an attempt leaves recipients pending.
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
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "buf.h"
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
};

static struct {
	uint64_t	(*c)[MC_N];	/* by server index */
	size_t		 n;
	struct evhttp	*http;
} mt;

void
metrics_add(const struct qserver *qs, enum mc_counter k, uint64_t v)
{
	size_t i = (size_t)(qs - q->servers);

	if (k >= MC_N || i >= q->nservers)
		return;
	if (i >= mt.n) {	/* first count, or more servers after reload */
		mt.c = mr_xreallocarray(mt.c, q->nservers, sizeof(*mt.c));
		memset(mt.c + mt.n, 0, (q->nservers - mt.n) * sizeof(*mt.c));
		mt.n = q->nservers;
	}
	mt.c[i][k] += v;
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
			    i < mt.n ? mt.c[i][k] : 0);
	}
}

/* Messages with a pending local, and a pending remote, recipient. */
static void
put_queues(struct evbuffer *out)
{
	const char *name = "mailroot_queue_messages";
	uint64_t (*n)[2];
	const struct qmsg *m;
	size_t i, s;
	int l, r;

	n = mr_xcalloc(q->nservers, sizeof(*n));
	for (m = q->msgs; m != NULL; m = m->next) {
		for (i = 0, l = r = 0; i < m->nrcpts; i++) {
			if (m->rcpts[i].state != R_PENDING)
				continue;
			if (m->rcpts[i].local)
				l = 1;
			else
				r = 1;
		}
		s = (size_t)(m->qs - q->servers);
		n[s][0] += (uint64_t)l;
		n[s][1] += (uint64_t)r;
	}
	put_head(out, name, "gauge",
	    "Messages in the queue with a pending local or remote recipient.");
	for (s = 0; s < q->nservers; s++) {
		put_sample(out, name, s, "local", n[s][0]);
		put_sample(out, name, s, "remote", n[s][1]);
	}
	free(n);
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
	put_queues(out);
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
	free(mt.c);
	mt.c = NULL;
	mt.n = 0;
}
