/*
 * contrib/bench/mrb-smtp.c - the benchmark's own SMTP load generator and
 * sink, with STARTTLS (TLS 1.3 only) on both: relay-bench's Python pair
 * and Postfix's smtp-source/smtp-sink have no TLS.  Not part of mailroot:
 * contrib/bench/run compiles it into its temporary directory.
 *
 * Security stance: a benchmark tool for loopback inside a private network
 * namespace.  It trusts its peers (certificates are not verified), but
 * bounds what it buffers: a command line over 4 KiB closes the session.
 *
 *   mrb-smtp sink [-C cert.pem -K key.pem] ADDR:PORT ...
 *	Answers every transaction with 250 and counts messages and
 *	recipients.  Commands on standard input, one per line:
 *	  reset       counters to zero
 *	  expect N    print "done T MSGS RCPTS SESSIONS TLS TLSMSGS RESUMED"
 *	              when RCPTS reaches N (T: CLOCK_MONOTONIC seconds;
 *	              SESSIONS greeted, TLS of them started TLS, TLSMSGS
 *	              messages received over TLS, RESUMED TLS sessions that
 *	              resumed one and carried a message)
 *	  count       print "count T MSGS RCPTS SESSIONS TLS TLSMSGS RESUMED
 *	              DOWN" (DOWN: connections greeted with 421 while down)
 *	  down / up   greet new sessions with 421 and close / normally
 *	End of standard input stops it.
 *
 *   mrb-smtp load [-T [-N]] [-c SESSIONS] [-n COUNT] [-s SIZE] [-r RCPTS]
 *	[-D DOMAINS] [-k MSGS-PER-CONNECTION] [-t TIMEOUT] ADDR:PORT
 *	Sends COUNT messages of SIZE bytes over SESSIONS parallel
 *	sessions, MAIL/RCPT/DATA pipelined; -T: STARTTLS first, resuming
 *	the TLS session (ticket) the server gave last, as a client pool
 *	does (-N: never, every handshake in full).  With -D,
 *	recipient j of a message is in domain d(j mod DOMAINS).bench.invalid.
 *	Prints one JSON line: accepted, failed, times, errors.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define LINE_MAX_LEN	4096
#define NERR		16

static struct event_base *base;
static SSL_CTX *ctx;
static SSL_SESSION *last_sess;	/* load: the newest session to resume */
static int no_resume;

static double
mono(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("mrb-smtp: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int
parse_addr(const char *s, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t n;

	if (colon == NULL || (n = (size_t)(colon - s)) >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((unsigned short)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

/* A copy: the connection's own is spoilt when it ends without a TLS
 * shutdown (as sessions here end after QUIT). */
static int
new_session(SSL *ssl, SSL_SESSION *sess)
{
	SSL_SESSION *copy = SSL_SESSION_dup(sess);

	(void)ssl;
	if (copy != NULL) {
		SSL_SESSION_free(last_sess);
		last_sess = copy;
	}
	return 0;
}

static SSL_CTX *
tls_ctx(int server, const char *cert, const char *key)
{
	SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() :
	    TLS_client_method());

	if (c == NULL || !SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION))
		die("SSL_CTX_new failed");
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	if (server && (SSL_CTX_use_certificate_chain_file(c, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1))
		die("cannot load %s / %s", cert, key);
	if (!server && !no_resume) {
		SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(c, new_session);
	}
	return c;
}

/* ------------------------------------------------------------------ sink */

struct sconn {
	struct bufferevent *bev;
	int data, tls, quit, counted;
	unsigned nrcpt;
};

static unsigned long s_msgs, s_rcpts, s_expect, s_sess, s_tls, s_tlsmsgs,
    s_tlsres;
static unsigned long s_downconns;
static int s_down;

static void
s_check(void)
{
	if (s_expect && s_rcpts >= s_expect) {
		printf("done %.6f %lu %lu %lu %lu %lu %lu\n", mono(), s_msgs,
		    s_rcpts, s_sess, s_tls, s_tlsmsgs, s_tlsres);
		fflush(stdout);
		s_expect = 0;
	}
}

static void
s_free(struct sconn *c)
{
	bufferevent_free(c->bev);
	free(c);
}

static void s_read(struct bufferevent *, void *);
static void s_event(struct bufferevent *, short, void *);
static void s_write(struct bufferevent *, void *);

static void
s_starttls(struct sconn *c)
{
	SSL *ssl = SSL_new(ctx);
	struct bufferevent *f;

	if (ssl == NULL)
		die("SSL_new failed");
	f = bufferevent_openssl_filter_new(base, c->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL)
		die("bufferevent_openssl_filter_new failed");
	c->bev = f;
	c->tls = 1;
	s_tls++;
	bufferevent_setcb(f, s_read, s_write, s_event, c);
	bufferevent_enable(f, EV_READ | EV_WRITE);
}

static void
s_command(struct sconn *c, const char *l, struct evbuffer *out)
{
	if (!strncasecmp(l, "EHLO", 4) || !strncasecmp(l, "HELO", 4))
		evbuffer_add_printf(out, "250-mrb-sink\r\n250-PIPELINING\r\n"
		    "250-8BITMIME\r\n%s250 SIZE 104857600\r\n",
		    ctx != NULL && !c->tls ? "250-STARTTLS\r\n" : "");
	else if (!strncasecmp(l, "MAIL", 4)) {
		c->nrcpt = 0;
		evbuffer_add_printf(out, "250 2.1.0 ok\r\n");
	} else if (!strncasecmp(l, "RCPT", 4)) {
		c->nrcpt++;
		evbuffer_add_printf(out, "250 2.1.5 ok\r\n");
	} else if (!strncasecmp(l, "DATA", 4)) {
		c->data = 1;
		evbuffer_add_printf(out, "354 go\r\n");
	} else if (!strncasecmp(l, "RSET", 4)) {
		c->nrcpt = 0;
		evbuffer_add_printf(out, "250 ok\r\n");
	} else if (!strncasecmp(l, "QUIT", 4)) {
		c->quit = 1;
		s_downconns++;
		evbuffer_add_printf(out, "221 bye\r\n");
	} else if (!strncasecmp(l, "STARTTLS", 8) && ctx != NULL && !c->tls) {
		evbuffer_add_printf(out, "220 go ahead\r\n");
		c->tls = -1;
	} else
		evbuffer_add_printf(out, "250 ok\r\n");
}

/* In DATA: consume up to the end of data; 1 when it was found. */
static int
s_data(struct sconn *c, struct evbuffer *in)
{
	struct evbuffer_ptr p;
	size_t len = evbuffer_get_length(in);

	p = evbuffer_search(in, "\r\n.\r\n", 5, NULL);
	if (p.pos < 0) {
		if (len > 4)
			evbuffer_drain(in, len - 4);
		return 0;
	}
	evbuffer_drain(in, (size_t)p.pos + 5);
	c->data = 0;
	s_msgs++;
	if (c->tls)
		s_tlsmsgs++;
	/* a TLS session that resumed one, counted at its first message */
	if (c->tls == 1 && !c->counted) {
		c->counted = 1;
		if (SSL_session_reused(bufferevent_openssl_get_ssl(c->bev)))
			s_tlsres++;
	}
	s_rcpts += c->nrcpt;
	c->nrcpt = 0;
	return 1;
}

static void
s_read(struct bufferevent *bev, void *arg)
{
	struct sconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	char *l;
	size_t n;

	if (c->quit) {		/* after QUIT over TLS: wait for the close */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	for (;;) {
		if (c->data) {
			if (!s_data(c, in))
				break;
			evbuffer_add_printf(out, "250 2.0.0 queued\r\n");
			s_check();
			continue;
		}
		l = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (l == NULL) {
			if (evbuffer_get_length(in) > LINE_MAX_LEN) {
				evbuffer_add_printf(out, "500 line too long\r\n");
				c->quit = 1;
			}
			break;
		}
		s_command(c, l, out);
		free(l);
		if (c->tls == -1) {
			evbuffer_drain(in, evbuffer_get_length(in));
			s_starttls(c);
			return;
		}
		if (c->quit)
			break;
	}
	if (c->quit && !c->tls)
		bufferevent_disable(bev, EV_READ);
}

static void
s_write(struct bufferevent *bev, void *arg)
{
	struct sconn *c = arg;

	/*
	 * In plain text the reply is in the socket now: close.  Over TLS it
	 * may still wait in the filter's underlying buffer: the client's
	 * close (or the idle timeout) ends the session instead.
	 */
	(void)bev;
	if (c->quit && !c->tls)
		s_free(c);
}

static void
s_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		s_free(arg);
}

static void
s_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct sconn *c = calloc(1, sizeof(*c));
	struct timeval tv = { 300, 0 };

	(void)l; (void)sa; (void)salen; (void)arg;
	if (c == NULL) {
		close(fd);
		return;
	}
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, s_read, s_write, s_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (s_down) {
		c->quit = 1;
		s_downconns++;
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		    "421 4.3.2 down for the benchmark\r\n");
		return;
	}
	s_sess++;
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	    "220 mrb-sink ESMTP\r\n");
}

static void
s_stdin(evutil_socket_t fd, short what, void *arg)
{
	static char buf[256];
	static size_t have;
	ssize_t r;
	char *nl;

	(void)what; (void)arg;
	r = read(fd, buf + have, sizeof(buf) - 1 - have);
	if (r <= 0) {
		event_base_loopexit(base, NULL);
		return;
	}
	have += (size_t)r;
	buf[have] = '\0';
	while ((nl = strchr(buf, '\n')) != NULL) {
		*nl = '\0';
		if (!strcmp(buf, "reset"))
			s_msgs = s_rcpts = s_expect = s_sess = s_tls =
			    s_tlsmsgs = s_tlsres = s_downconns = 0;
		else if (!strncmp(buf, "expect ", 7)) {
			s_expect = strtoul(buf + 7, NULL, 10);
			s_check();
		} else if (!strcmp(buf, "count")) {
			printf("count %.6f %lu %lu %lu %lu %lu %lu %lu\n",
			    mono(), s_msgs, s_rcpts, s_sess, s_tls, s_tlsmsgs,
			    s_tlsres, s_downconns);
			fflush(stdout);
		} else if (!strcmp(buf, "down"))
			s_down = 1;
		else if (!strcmp(buf, "up"))
			s_down = 0;
		have -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, have + 1);
	}
	if (have >= sizeof(buf) - 1)
		have = 0;
}

static int
sink_main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	struct sockaddr_in sin;
	struct event *ev;
	int ch, i;

	while ((ch = getopt(argc, argv, "C:K:")) != -1) {
		switch (ch) {
		case 'C': cert = optarg; break;
		case 'K': key = optarg; break;
		default: die("usage: mrb-smtp sink [-C cert -K key] addr:port ...");
		}
	}
	if (optind >= argc)
		die("sink: no address");
	if (cert != NULL)
		ctx = tls_ctx(1, cert, key != NULL ? key : cert);
	for (i = optind; i < argc; i++) {
		if (parse_addr(argv[i], &sin) == -1)
			die("bad address %s", argv[i]);
		if (evconnlistener_new_bind(base, s_accept, NULL,
		    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024,
		    (struct sockaddr *)&sin, sizeof(sin)) == NULL)
			die("cannot listen on %s: %s", argv[i], strerror(errno));
	}
	ev = event_new(base, 0, EV_READ | EV_PERSIST, s_stdin, NULL);
	if (ev == NULL || event_add(ev, NULL) == -1)
		die("event_new failed");
	printf("ready\n");
	fflush(stdout);
	return event_base_dispatch(base) == -1;
}

/* ------------------------------------------------------------------ load */

enum lstate { L_GREET, L_EHLO, L_STARTTLS, L_HANDSHAKE, L_EHLO2, L_TXN,
	L_DOT, L_QUIT };

struct lconn {
	struct bufferevent *bev;
	enum lstate st;
	unsigned replies, sent, msg;
	int ok;
};

static struct {
	struct sockaddr_in sin;
	int tls, sessions, active;
	unsigned long count, next, accepted, failed, cfail, rcpts, domains,
	    perconn, handshakes, resumed;
	size_t size;
	int timeout;
	double t0, t_last;
	char *body;
	size_t bodylen;
	char token[32];
	struct { char what[64]; unsigned long n; } err[NERR];
} L;

static void l_start(void);
static void l_read(struct bufferevent *, void *);
static void l_event(struct bufferevent *, short, void *);

static void
l_error(const char *what)
{
	char *p;
	int i;

	for (i = 0; i < NERR && L.err[i].n; i++)
		if (!strcmp(L.err[i].what, what))
			break;
	if (i == NERR)
		i = NERR - 1;
	if (!L.err[i].n) {
		snprintf(L.err[i].what, sizeof(L.err[i].what), "%s", what);
		for (p = L.err[i].what; *p != '\0'; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 32)
				*p = '\'';
	}
	L.err[i].n++;
}

static void
l_close(struct lconn *c, const char *err)
{
	if (err != NULL) {
		l_error(err);
		if (c->st == L_TXN || c->st == L_DOT)
			L.failed++;
	}
	bufferevent_free(c->bev);
	free(c);
	L.active--;
	if (err != NULL)
		L.cfail++;
	/* a session that failed is replaced, within the failure bound */
	if (L.next < L.count && L.cfail <= L.count)
		l_start();
	else if (L.active == 0)
		event_base_loopexit(base, NULL);
}

static void
l_txn(struct lconn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	unsigned long i = L.next++, j;

	c->msg = (unsigned)i;
	c->st = L_TXN;
	c->replies = 0;
	evbuffer_add_printf(out, "MAIL FROM:<bench@client.invalid>\r\n");
	for (j = 0; j < L.rcpts; j++) {
		if (L.domains)
			evbuffer_add_printf(out, "RCPT TO:<r%lu.%lu@d%lu.bench.invalid>"
			    "\r\n", j, i, j % L.domains);
		else
			evbuffer_add_printf(out, "RCPT TO:<r%lu.%lu@bench.invalid>"
			    "\r\n", j, i);
	}
	evbuffer_add_printf(out, "DATA\r\n");
}

static void
l_body(struct lconn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "From: <bench@client.invalid>\r\n"
	    "To: <r0.%u@bench.invalid>\r\nSubject: mrb-smtp message %u\r\n"
	    "Message-ID: <%s.%u@client.invalid>\r\n"
	    "X-Bench-Id: %s-%u\r\n\r\n", c->msg, c->msg, L.token, c->msg,
	    L.token, c->msg);
	evbuffer_add(out, L.body, L.bodylen);
	evbuffer_add(out, ".\r\n", 3);
	c->st = L_DOT;
}

static void
l_after(struct lconn *c)
{
	L.accepted++;
	L.t_last = mono();
	c->sent++;
	if (L.next < L.count && c->sent < L.perconn)
		l_txn(c);
	else {
		evbuffer_add_printf(bufferevent_get_output(c->bev), "QUIT\r\n");
		c->st = L_QUIT;
	}
}

static void
l_handshake(struct lconn *c)
{
	SSL *ssl = SSL_new(ctx);
	struct bufferevent *f;

	if (ssl == NULL)
		die("SSL_new failed");
	if (last_sess != NULL) {	/* a copy each: handshakes write */
		SSL_SESSION *copy = SSL_SESSION_dup(last_sess);

		if (copy == NULL || SSL_set_session(ssl, copy) != 1)
			die("SSL_set_session failed");
		SSL_SESSION_free(copy);
	}
	f = bufferevent_openssl_filter_new(base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL)
		die("bufferevent_openssl_filter_new failed");
	c->bev = f;
	c->st = L_HANDSHAKE;
	bufferevent_setcb(f, l_read, NULL, l_event, c);
	bufferevent_enable(f, EV_READ | EV_WRITE);
}

/* One complete reply with code: 0 to go on, -1 to close the session. */
static int
l_reply(struct lconn *c, int code)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	switch (c->st) {
	case L_GREET:
		if (code != 220)
			return -1;
		evbuffer_add_printf(out, "EHLO client.invalid\r\n");
		c->st = L_EHLO;
		return 0;
	case L_EHLO:
	case L_EHLO2:
		if (code != 250)
			return -1;
		if (c->st == L_EHLO && L.tls) {
			evbuffer_add_printf(out, "STARTTLS\r\n");
			c->st = L_STARTTLS;
		} else if (L.next < L.count)
			l_txn(c);
		else {
			evbuffer_add_printf(out, "QUIT\r\n");
			c->st = L_QUIT;
		}
		return 0;
	case L_STARTTLS:
		if (code != 220)
			return -1;
		l_handshake(c);
		return 1;
	case L_TXN:
		/* MAIL, the RCPTs and DATA were pipelined */
		if (++c->replies < L.rcpts + 2) {
			if (code / 100 != 2)
				c->ok = 0;
			return 0;
		}
		if (code != 354 || !c->ok)
			return -1;
		l_body(c);
		return 0;
	case L_DOT:
		if (code != 250)
			return -1;
		l_after(c);
		return 0;
	default:
		return -1;
	}
}

static void
l_read(struct bufferevent *bev, void *arg)
{
	struct lconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *l, what[64];
	size_t n;
	int code, r;

	while ((l = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		if (n < 3 || (n > 3 && l[3] == '-')) {
			free(l);
			continue;
		}
		code = atoi(l);
		if (c->st == L_QUIT) {
			free(l);
			l_close(c, NULL);
			return;
		}
		if (c->st == L_TXN && c->replies == 0)
			c->ok = 1;
		r = l_reply(c, code);
		if (r < 0) {
			snprintf(what, sizeof(what), "state %d: %.40s", c->st, l);
			free(l);
			l_close(c, what);
			return;
		}
		free(l);
		if (r > 0)
			return;		/* the TLS filter took the session */
	}
	if (evbuffer_get_length(in) > LINE_MAX_LEN)
		l_close(c, "reply line too long");
}

static void
l_event(struct bufferevent *bev, short what, void *arg)
{
	struct lconn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->st == L_HANDSHAKE) {
			L.handshakes++;
			if (SSL_session_reused(bufferevent_openssl_get_ssl(
			    c->bev)))
				L.resumed++;
			evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "EHLO client.invalid\r\n");
			c->st = L_EHLO2;
		}
		return;
	}
	if (c->st == L_QUIT)
		l_close(c, NULL);	/* after QUIT, however it ends */
	else if (what & BEV_EVENT_TIMEOUT)
		l_close(c, "timeout");
	else if (what & BEV_EVENT_EOF)
		l_close(c, "connection closed");
	else if (what & BEV_EVENT_ERROR)
		l_close(c, c->st == L_HANDSHAKE ? "TLS handshake failed" :
		    "connection error");
}

static void
l_start(void)
{
	struct lconn *c = calloc(1, sizeof(*c));
	struct timeval tv = { L.timeout, 0 };

	if (c == NULL)
		die("out of memory");
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		die("bufferevent_socket_new failed");
	bufferevent_setcb(c->bev, l_read, NULL, l_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	L.active++;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&L.sin,
	    sizeof(L.sin)) == -1) {
		l_error("connect failed");
		bufferevent_free(c->bev);
		free(c);
		L.active--;
		L.cfail++;
	}
}

static void
l_make_body(void)
{
	size_t want = L.size > 200 ? L.size - 200 : 2, i;
	static const char line[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n";

	L.body = malloc(want + sizeof(line));
	if (L.body == NULL)
		die("out of memory");
	for (i = 0; i < want; i += sizeof(line) - 1)
		memcpy(L.body + i, line, sizeof(line) - 1);
	L.bodylen = i;
}

static int
load_main(int argc, char **argv)
{
	int ch, i;

	L.sessions = 20;
	L.count = 1000;
	L.size = 4096;
	L.rcpts = 1;
	L.perconn = 1;
	L.timeout = 300;
	while ((ch = getopt(argc, argv, "TNc:n:s:r:D:k:t:")) != -1) {
		switch (ch) {
		case 'T': L.tls = 1; break;
		case 'N': no_resume = 1; break;
		case 'c': L.sessions = atoi(optarg); break;
		case 'n': L.count = strtoul(optarg, NULL, 10); break;
		case 's': L.size = strtoul(optarg, NULL, 10); break;
		case 'r': L.rcpts = strtoul(optarg, NULL, 10); break;
		case 'D': L.domains = strtoul(optarg, NULL, 10); break;
		case 'k': L.perconn = strtoul(optarg, NULL, 10); break;
		case 't': L.timeout = atoi(optarg); break;
		default: die("usage: mrb-smtp load [-T [-N]] [-c sessions] [-n count] "
		    "[-s size] [-r rcpts] [-D domains] [-k per-conn] addr:port");
		}
	}
	if (optind != argc - 1 || parse_addr(argv[optind], &L.sin) == -1)
		die("load: one ADDR:PORT");
	if (L.sessions < 1 || L.rcpts < 1 || L.perconn < 1 || L.timeout < 1)
		die("load: -c, -r, -k and -t must be positive");
	if (L.tls)
		ctx = tls_ctx(0, NULL, NULL);
	snprintf(L.token, sizeof(L.token), "%lx%lx", (unsigned long)getpid(),
	    (unsigned long)time(NULL));
	l_make_body();
	L.t0 = L.t_last = mono();
	for (i = 0; i < L.sessions && (unsigned long)i < L.count; i++)
		l_start();
	if (L.active > 0 && event_base_dispatch(base) == -1)
		die("event loop failed");
	printf("{\"accepted\": %lu, \"failed\": %lu, \"t_start\": %.6f, "
	    "\"t_last_accept\": %.6f, \"t_end\": %.6f, \"tls_handshakes\": "
	    "%lu, \"tls_resumed\": %lu, \"errors\": {", L.accepted, L.failed,
	    L.t0, L.t_last, mono(), L.handshakes, L.resumed);
	for (i = 0; i < NERR && L.err[i].n; i++)
		printf("%s\"%s\": %lu", i ? ", " : "", L.err[i].what, L.err[i].n);
	printf("}}\n");
	return L.accepted == L.count ? 0 : 2;
}

int
main(int argc, char **argv)
{
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die("signal failed");
	base = event_base_new();
	if (base == NULL)
		die("event_base_new failed");
	if (argc >= 2 && !strcmp(argv[1], "sink"))
		return sink_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "load"))
		return load_main(argc - 1, argv + 1);
	die("usage: mrb-smtp sink|load ...");
	return 1;
}
