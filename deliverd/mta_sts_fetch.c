/*
 * mta_sts_fetch.c - fetches an MTA-STS policy (RFC 8461 3.3):
 * GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt with libevent's
 * HTTP client over an OpenSSL bufferevent.  The host's addresses come
 * from deliverd's resolver (mx_resolve.c, the same libunbound context),
 * never from a blocking lookup; the first address is asked.
 *
 * Why deliverd: it is the process that already talks to remote hosts,
 * runs unprivileged and sandboxed, and holds the resolver and the TLS
 * trust anchors; queued and smtpd never open a connection out.
 *
 * Security: the web server is untrusted.  Its certificate must chain to
 * the system's store or the destination's tls-ca-file and name
 * mta-sts.DOMAIN (no partial wildcards), with TLS 1.2 or later; only a
 * 200 answer of type text/plain counts (a 3xx is a failure: redirects
 * are never followed); headers are bounded to HDR_MAX and the body to
 * MTA_STS_BODY_MAX octets by libevent, and the whole exchange to
 * FETCH_TIMEOUT seconds.  The body goes to the caller as bytes and
 * length, to be parsed by mta_sts_parse.c before anything uses it.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "log.h"
#include "mta_sts_parse.h"
#include "deliverd.h"
#include "mta_sts.h"

#define FETCH_TIMEOUT	60	/* seconds, the whole fetch */
#define IO_TIMEOUT	30	/* seconds, each wait of the exchange */
#define HDR_MAX		8192	/* octets of response headers */
#define WELL_KNOWN	"/.well-known/mta-sts.txt"

struct sts_fetch {
	char			 host[MTA_STS_NAME_MAX + 1];
	char			*ca_file;
	unsigned		 port;
	sts_fetch_cb		 cb;
	void			*arg;
	struct mx_query		*mxq;
	struct evhttp_connection *evcon;
	struct event		*deadline;
	struct event		*reap;		/* frees evcon outside its
						 * callbacks */
	int			 done;
};

static void
fetch_free(struct sts_fetch *f)
{
	mx_cancel(f->mxq);
	if (f->evcon != NULL)
		evhttp_connection_free(f->evcon);
	if (f->deadline != NULL)
		event_free(f->deadline);
	if (f->reap != NULL)
		event_free(f->reap);
	free(f->ca_file);
	free(f);
}

static void
fetch_reap_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	fetch_free(arg);
}

/* Tells the caller once; the fetch is freed from the event loop. */
static void
fetch_end(struct sts_fetch *f, const char *body, size_t len,
    const char *err)
{
	if (f->done)
		return;
	f->done = 1;
	f->cb(body, len, err, f->arg);
	event_active(f->reap, 0, 0);
}

static void
fetch_fail(struct sts_fetch *f, const char *what)
{
	char err[512];

	snprintf(err, sizeof(err), "https://%s%s: %s", f->host, WELL_KNOWN,
	    what);
	fetch_end(f, NULL, 0, err);
}

static void
fetch_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	fetch_fail(arg, "timed out");
}

/* What the TLS layer said, when the exchange failed. */
static const char *
fetch_tls_error(struct sts_fetch *f)
{
	struct bufferevent *bev;
	SSL *ssl;
	long vr;

	if (f->evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(f->evcon)) == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return "no answer";
	if ((vr = SSL_get_verify_result(ssl)) != X509_V_OK)
		return X509_verify_cert_error_string(vr);
	return "connection failed or no answer";
}

static void
fetch_done_cb(struct evhttp_request *req, void *arg)
{
	struct sts_fetch *f = arg;
	struct evbuffer *in;
	const char *ct;
	char code[64];
	size_t len;

	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		fetch_fail(f, fetch_tls_error(f));
		return;
	}
	if (evhttp_request_get_response_code(req) != 200) {
		/* RFC 8461 3.3: a redirect is not followed */
		snprintf(code, sizeof(code), "HTTP status %d",
		    evhttp_request_get_response_code(req));
		fetch_fail(f, code);
		return;
	}
	ct = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");
	if (ct == NULL || strncasecmp(ct, "text/plain", 10) != 0 ||
	    (ct[10] != '\0' && ct[10] != ';' && ct[10] != ' ')) {
		fetch_fail(f, "not text/plain");
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	if (len > MTA_STS_BODY_MAX) {
		fetch_fail(f, "too long");
		return;
	}
	fetch_end(f, (const char *)evbuffer_pullup(in, -1), len, NULL);
}

static SSL *
fetch_ssl(struct sts_fetch *f, struct mr_buf *why)
{
	SSL_CTX *ctx;
	SSL *ssl;

	if ((ctx = tls_client_verify_ctx(f->ca_file, why)) == NULL)
		return NULL;
	if ((ssl = SSL_new(ctx)) == NULL)
		goto fail;
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set_tlsext_host_name(ssl, f->host) != 1 ||
	    SSL_set1_host(ssl, f->host) != 1)
		goto fail;
	return ssl;
fail:
	SSL_free(ssl);
	ERR_clear_error();
	mr_buf_adds(why, "cannot set up a TLS session");
	return NULL;
}

static int
addr_text(const struct mx_addr *a, char *ip, size_t size)
{
	const void *p;

	if (a->ss.ss_family == AF_INET6)
		p = &((const struct sockaddr_in6 *)(const void *)&a->ss)->
		    sin6_addr;
	else
		p = &((const struct sockaddr_in *)(const void *)&a->ss)->
		    sin_addr;
	return inet_ntop(a->ss.ss_family, p, ip, (socklen_t)size) ==
	    NULL ? -1 : 0;
}

/* The connection and the GET; -1 with why if they cannot be made. */
static int
fetch_request(struct sts_fetch *f, const struct mx_addr *a,
    struct mr_buf *why)
{
	struct evhttp_request *req;
	struct bufferevent *bev;
	struct evkeyvalq *h;
	char ip[INET6_ADDRSTRLEN];
	SSL *ssl;

	if (addr_text(a, ip, sizeof(ip)) == -1 ||
	    (ssl = fetch_ssl(f, why)) == NULL)
		return -1;
	bev = bufferevent_openssl_socket_new(deliverd_base(), -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	f->evcon = evhttp_connection_base_bufferevent_new(deliverd_base(),
	    NULL, bev, ip, (ev_uint16_t)f->port);
	if (f->evcon == NULL) {
		bufferevent_free(bev);
		return -1;
	}
	evhttp_connection_set_timeout(f->evcon, IO_TIMEOUT);
	evhttp_connection_set_retries(f->evcon, 0);
	evhttp_connection_set_max_headers_size(f->evcon, HDR_MAX);
	evhttp_connection_set_max_body_size(f->evcon, MTA_STS_BODY_MAX);
	if ((req = evhttp_request_new(fetch_done_cb, f)) == NULL)
		return -1;
	h = evhttp_request_get_output_headers(req);
	if (evhttp_add_header(h, "Host", f->host) == -1 ||
	    evhttp_add_header(h, "Connection", "close") == -1) {
		evhttp_request_free(req);
		return -1;
	}
	/* on failure libevent has freed or called back the request */
	return evhttp_make_request(f->evcon, req, EVHTTP_REQ_GET,
	    WELL_KNOWN) == 0 ? 0 : -1;
}

static void
fetch_resolved(struct mx_result *r, void *arg)
{
	struct sts_fetch *f = arg;
	struct mr_buf why;

	f->mxq = NULL;
	mr_buf_init(&why);
	if (r->status != 0 || r->naddrs == 0)
		fetch_fail(f, r->error ? r->error : "no address");
	else if (fetch_request(f, &r->addrs[0], &why) == -1)
		fetch_fail(f, why.len > 0 ? why.data :
		    "cannot start the request");
	mr_buf_free(&why);
	mx_result_free(r);
}

struct sts_fetch *
sts_fetch_start(const char *domain, const char *ca_file, unsigned port,
    sts_fetch_cb cb, void *arg)
{
	struct sts_fetch *f = mr_xcalloc(1, sizeof(*f));
	struct timeval tv = { FETCH_TIMEOUT, 0 };

	if (snprintf(f->host, sizeof(f->host), "mta-sts.%s", domain) >=
	    (int)sizeof(f->host)) {
		free(f);
		return NULL;
	}
	f->ca_file = ca_file != NULL ? mr_xstrdup(ca_file) : NULL;
	f->port = port;
	f->cb = cb;
	f->arg = arg;
	f->deadline = evtimer_new(deliverd_base(), fetch_deadline_cb, f);
	f->reap = event_new(deliverd_base(), -1, 0, fetch_reap_cb, f);
	if (f->deadline == NULL || f->reap == NULL ||
	    evtimer_add(f->deadline, &tv) == -1)
		mr_panic("mta-sts: event_new failed");
	f->mxq = mx_resolve(DEST_HOST, f->host, port, 0, fetch_resolved, f);
	return f;
}

/* The caller loses interest: no callback any more. */
void
sts_fetch_cancel(struct sts_fetch *f)
{
	if (f == NULL)
		return;
	if (f->done)
		return;		/* the reap event frees it */
	fetch_free(f);
}
