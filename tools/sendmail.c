/*
 * sendmail.c - mailroot-sendmail(8): the sendmail-compatible injector
 * that PHP's mail(), cron and scripts call.  It reads a message on
 * standard input and hands it to queued over the local submit-socket
 * (common/submit.h); it exits 0 only once queued says the message is
 * durable in the queue.
 *
 *	mailroot-sendmail [-t] [-i] [-f sender] [-F name] [rcpt ...]
 *	mailroot-sendmail -bs		SMTP on standard input and output
 *	mailroot-sendmail -bv rcpt ...	check addresses (syntax only)
 *	mailroot-sendmail -bp		list the queue (also as "mailq")
 *	mailroot-sendmail -q [-qRsite]	try the queue (a domain's) now
 *
 * Exit codes are sysexits.h's: EX_USAGE for an option mailroot does not
 * implement, EX_DATAERR for a bad address or message, EX_NOPERM when
 * queued refuses the caller (submit-users, submit-sender-users),
 * EX_UNAVAILABLE when queued cannot be reached, EX_TEMPFAIL when the
 * queue could not store the message.
 *
 * Security: no set-user-ID bit, no privilege: the program runs as its
 * caller, who could speak the protocol without it.  queued learns who
 * the caller is from the kernel (SO_PEERCRED) and decides; nothing this
 * program says about the caller is believed.  The socket path comes
 * from -C FILE's submit-socket, else $MAILROOT_SUBMIT_SOCKET, else
 * /run/mailroot/submit.  -bp and -q are requests on the control socket
 * (common/ctl_client.c, as mailrootctl's "queue" and "flush"): queued
 * grants them to root and control-group only, -C FILE's control-socket,
 * else $MAILROOT_CONTROL_SOCKET, else /run/mailroot/control.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "conf.h"
#include "ctl_client.h"
#include "submit.h"
#include "util.h"

#define DEFAULT_SOCKET	"/run/mailroot/submit"
#define DEFAULT_CONTROL	"/run/mailroot/control"

enum mode { M_DELIVER, M_SMTP, M_VERIFY, M_LIST, M_FLUSH };

struct opts {
	enum mode	 mode;
	int		 ignore_dots;	/* -i, -oi */
	const char	*socket;
	const char	*control;	/* NULL: -C's file has none */
	const char	*flush;		/* -qRsite; NULL: all */
	struct submit_req req;
};

static int	smtp_serve(struct opts *);	/* -bs, below */

static void
usage_error(const char *what)
{
	fprintf(stderr, "mailroot-sendmail: %s\n"
	    "usage: mailroot-sendmail [-t] [-i] [-f sender] [-F name] "
	    "[-C config] [rcpt ...]\n"
	    "       mailroot-sendmail -bs | -bv rcpt ... | -bp | -q [-qRsite]"
	    "\n", what);
	exit(EX_USAGE);
}

/* An address as queued will check it: a mailbox or a bare local part. */
static int
addr_ok(const char *a)
{
	struct submit_req r;
	struct mr_buf b;
	const char *err;
	char *rc[1];
	int ok;

	memset(&r, 0, sizeof(r));
	rc[0] = (char *)a;
	r.rcpts = rc;
	r.nrcpts = 1;
	mr_buf_init(&b);
	submit_req_encode(&r, &b);
	ok = submit_req_parse(b.data, b.len, &r, &err) == 0;
	submit_req_free(&r);
	mr_buf_free(&b);
	return ok;
}

/* The paths of the submit-socket and the control-socket a configuration
 * file names (kept in static buffers: the program may exit anywhere
 * after this). */
static void
sockets_of(struct opts *o, const char *file)
{
	static char path[4096], control[4096];
	struct mr_config *cf;
	FILE *devnull = fopen("/dev/null", "w");

	cf = mr_config_load(file, devnull != NULL ? devnull : stderr);
	if (devnull != NULL)
		fclose(devnull);
	if (cf == NULL) {
		fprintf(stderr, "mailroot-sendmail: %s: cannot be read or "
		    "has errors (mailrootd -n -f %s says which)\n", file,
		    file);
		exit(EX_CONFIG);
	}
	snprintf(path, sizeof(path), "%s", cf->submit_socket);
	o->socket = path;
	o->control = NULL;
	if (cf->control_socket != NULL) {
		snprintf(control, sizeof(control), "%s", cf->control_socket);
		o->control = control;
	}
	mr_config_free(cf);
}

/* The value of -X: the rest of the argument, else the next one. */
static const char *
value(char **argv, int *i, const char *rest)
{
	if (*rest != '\0')
		return rest;
	if (argv[*i + 1] == NULL)
		usage_error("an option lacks its value");
	return argv[++*i];
}

static void
set_sender(struct opts *o, const char *s)
{
	size_t n = strlen(s);

	/* "<>" and "" are the null sender; "<a@b>" is a@b */
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s++;
		n -= 2;
	}
	if (n > MR_PATH_MAX)
		usage_error("-f: address too long");
	memcpy(o->req.sender, s, n);
	o->req.sender[n] = '\0';
	o->req.flags |= SUBMIT_F_SENDER;
}

/* -b and -o options; 0 if known. */
static int
b_or_o(struct opts *o, const char *a)
{
	if (strcmp(a, "-bm") == 0)
		o->mode = M_DELIVER;
	else if (strcmp(a, "-bs") == 0)
		o->mode = M_SMTP;
	else if (strcmp(a, "-bv") == 0)
		o->mode = M_VERIFY;
	else if (strcmp(a, "-bp") == 0)
		o->mode = M_LIST;
	else if (strcmp(a, "-oi") == 0)
		o->ignore_dots = 1;
	else if (strncmp(a, "-oe", 3) == 0 || strcmp(a, "-om") == 0 ||
	    strcmp(a, "-odb") == 0 || strcmp(a, "-odi") == 0)
		;	/* error mode, me too, delivery mode: ours is fixed */
	else
		return -1;
	return 0;
}

/*
 * -q: flush the queue now; -qRsite: only what waits for site; -qINTERVAL
 * (a queue runner's period, "-q30m") means nothing here: queued runs the
 * queue itself.  0 if known.
 */
static int
q_option(struct opts *o, char **argv, int *i, const char *a)
{
	if (a[2] == '\0') {
		o->mode = M_FLUSH;
		return 0;
	}
	if (a[2] == 'R') {
		o->mode = M_FLUSH;
		o->flush = value(argv, i, a + 3);
		return 0;
	}
	if (strspn(a + 2, "0123456789smhdw") == strlen(a + 2) &&
	    a[2] >= '0' && a[2] <= '9')
		return 0;
	return -1;
}

/* One option at argv[*i]; 1 at the first recipient. */
static int
option(struct opts *o, char **argv, int *i)
{
	const char *a = argv[*i];
	char msg[128];

	if (a[0] != '-' || strcmp(a, "--") == 0)
		return 1;
	if (b_or_o(o, a) == 0)
		return 0;
	switch (a[1]) {
	case 't':
		if (a[2] != '\0')
			break;
		o->req.flags |= SUBMIT_F_HEADERS;
		return 0;
	case 'i':
		if (a[2] != '\0')
			break;
		o->ignore_dots = 1;
		return 0;
	case 'f':
	case 'r':
		set_sender(o, value(argv, i, a + 2));
		return 0;
	case 'F':
		snprintf(o->req.fullname, sizeof(o->req.fullname), "%s",
		    value(argv, i, a + 2));
		return 0;
	case 'C':
		sockets_of(o, value(argv, i, a + 2));
		return 0;
	case 'q':
		if (q_option(o, argv, i, a) == 0)
			return 0;
		break;
	case 'B':	/* body type: the content says what it is */
	case 'N':	/* DSN NOTIFY: not passed on */
	case 'R':	/* DSN RET */
	case 'V':	/* envelope id */
		(void)value(argv, i, a + 2);
		return 0;
	default:
		break;
	}
	snprintf(msg, sizeof(msg), "option %.40s is not supported", a);
	usage_error(msg);
	return -1;
}

/*
 * The message from fp, dot-stuffed for queued: without -i a line holding
 * only "." ends it (as sendmail); every line that begins with "." gets
 * another, so queued's unstuffing gives the bytes back.  A leading
 * mbox "From " line is dropped, as sendmail drops it.
 */
static int
read_message(FILE *fp, int ignore_dots, struct mr_buf *out)
{
	char *line = NULL;
	size_t cap = 0, first = 1;
	ssize_t n;

	while ((n = getline(&line, &cap, fp)) != -1) {
		if (first && n >= 5 && strncmp(line, "From ", 5) == 0) {
			first = 0;
			continue;
		}
		first = 0;
		if (!ignore_dots && (strcmp(line, ".\n") == 0 ||
		    strcmp(line, ".\r\n") == 0 || strcmp(line, ".") == 0))
			break;
		if (line[0] == '.')
			mr_buf_add(out, ".", 1);
		mr_buf_add(out, line, (size_t)n);
		if (out->len > SUBMIT_DATA_MAX) {
			free(line);
			fprintf(stderr, "mailroot-sendmail: message too big\n");
			return EX_DATAERR;
		}
	}
	free(line);
	if (ferror(fp)) {
		fprintf(stderr, "mailroot-sendmail: reading the message: %s\n",
		    strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

static int
connect_queued(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >=
	    (int)sizeof(sun.sun_path)) {
		fprintf(stderr, "mailroot-sendmail: %s: path too long\n",
		    path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "mailroot-sendmail: cannot reach mailroot at "
		    "%s: %s (is mailrootd running?)\n", path,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* Reads queued's answer into text; its status, or -1. */
static int
read_reply(int fd, char *text, size_t len)
{
	unsigned char hdr[4];
	char body[SUBMIT_REPLY_MAX + 16];
	const char *err;
	uint32_t n, status;
	ssize_t r;
	size_t got;

	for (got = 0; got < 4; got += (size_t)r)
		if ((r = read(fd, hdr + got, 4 - got)) <= 0)
			return -1;
	n = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 |
	    (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	if (n > sizeof(body))
		return -1;
	for (got = 0; got < n; got += (size_t)r)
		if ((r = read(fd, body + got, n - got)) <= 0)
			return -1;
	if (submit_reply_parse(body, n, &status, text, len, &err) == -1)
		return -1;
	return (int)status;
}

/* Hands the message to queued; a sysexits status, text says why. */
static int
submit(const struct opts *o, const struct mr_buf *msg, char *text,
    size_t len)
{
	struct submit_req r = o->req;
	struct mr_buf req, out;
	int fd, status;

	text[0] = '\0';	/* connect_queued says why it failed */
	if ((fd = connect_queued(o->socket)) == -1)
		return EX_UNAVAILABLE;
	r.size = msg->len;
	mr_buf_init(&req);
	mr_buf_init(&out);
	submit_req_encode(&r, &req);
	mr_buf_put_u32(&out, (uint32_t)req.len);
	mr_buf_add(&out, req.data, req.len);
	/* queued answers early (and closes) when it refuses the request;
	 * its answer says more than the failed write would */
	if (mr_write_all(fd, out.data, out.len) == 0)
		(void)mr_write_all(fd, msg->data, msg->len);
	if ((status = read_reply(fd, text, len)) == -1) {
		snprintf(text, len, "mailroot closed the connection without "
		    "an answer");
		status = EX_TEMPFAIL;
	}
	close(fd);
	mr_buf_free(&req);
	mr_buf_free(&out);
	return status;
}

/* -bp ("queue") or -q ("flush") over the control socket; sysexits. */
static int
queue_request(const struct opts *o)
{
	struct mr_buf req, out;
	int rc = EX_SOFTWARE;

	if (o->control == NULL) {
		fprintf(stderr, "mailroot-sendmail: the configuration names "
		    "no control-socket: -bp and -q need one\n");
		return EX_UNAVAILABLE;
	}
	mr_buf_init(&req);
	mr_buf_init(&out);
	mr_ctl_token(&req, o->mode == M_LIST ? "queue" : "flush", NULL);
	if (o->mode == M_FLUSH && o->flush != NULL)
		mr_ctl_token(&req, "target", o->flush);
	switch (mr_ctl_call(o->control, &req, &out)) {
	case MR_CTL_ANSWER_OK:
		rc = fwrite(out.data, 1, out.len, stdout) == out.len &&
		    fflush(stdout) == 0 ? EX_OK : EX_IOERR;
		break;
	case MR_CTL_DENIED:
		fprintf(stderr, "mailroot-sendmail: %s: only root and "
		    "control-group may list or flush the queue\n", out.data);
		rc = EX_NOPERM;
		break;
	case MR_CTL_UNREACHABLE:
		fprintf(stderr, "mailroot-sendmail: cannot reach mailroot's "
		    "control socket: %s\n", out.data);
		rc = EX_UNAVAILABLE;
		break;
	default:
		fprintf(stderr, "mailroot-sendmail: %s\n", out.data);
		break;
	}
	mr_buf_free(&req);
	mr_buf_free(&out);
	return rc;
}

static int
verify(char **rcpts, int n)
{
	int i, rc = EX_OK;

	if (n == 0)
		usage_error("-bv: no address given");
	for (i = 0; i < n; i++) {
		if (addr_ok(rcpts[i]))
			printf("%s... syntax ok\n", rcpts[i]);
		else {
			printf("%s... bad address syntax\n", rcpts[i]);
			rc = EX_NOUSER;
		}
	}
	return rc;
}

static int
deliver(struct opts *o)
{
	struct mr_buf msg;
	char text[SUBMIT_REPLY_MAX + 1];
	int rc;

	if (o->req.nrcpts == 0 && !(o->req.flags & SUBMIT_F_HEADERS))
		usage_error("no recipient given (name them, or use -t)");
	mr_buf_init(&msg);
	mr_buf_add(&msg, "", 0);
	if ((rc = read_message(stdin, o->ignore_dots, &msg)) == 0) {
		rc = submit(o, &msg, text, sizeof(text));
		if (rc != EX_OK && text[0] != '\0')
			fprintf(stderr, "mailroot-sendmail: %s\n", text);
	}
	mr_buf_free(&msg);
	return rc;
}

/* The program's name (argv[0] after its last "/") is name. */
static int
invoked_as(const char *argv0, const char *name)
{
	const char *slash = argv0 != NULL ? strrchr(argv0, '/') : NULL;

	if (argv0 == NULL)
		return 0;
	return strcmp(slash != NULL ? slash + 1 : argv0, name) == 0;
}

int
main(int argc, char *argv[])
{
	struct opts o;
	const char *env;
	int i;

	/* queued may answer and close before it has read everything */
	signal(SIGPIPE, SIG_IGN);
	memset(&o, 0, sizeof(o));
	o.socket = (env = getenv("MAILROOT_SUBMIT_SOCKET")) != NULL &&
	    env[0] == '/' ? env : DEFAULT_SOCKET;
	o.control = (env = getenv("MAILROOT_CONTROL_SOCKET")) != NULL &&
	    env[0] == '/' ? env : DEFAULT_CONTROL;
	/* installed as mailq, it lists the queue (as sendmail -bp) */
	if (invoked_as(argv[0], "mailq"))
		o.mode = M_LIST;
	for (i = 1; i < argc; i++)
		if (option(&o, argv, &i) == 1)
			break;
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	o.req.rcpts = argv + i;
	o.req.nrcpts = (size_t)(argc - i);
	for (; i < argc; i++)
		if (o.mode != M_VERIFY && !addr_ok(argv[i])) {
			fprintf(stderr, "mailroot-sendmail: %s: bad address "
			    "syntax\n", argv[i]);
			return EX_DATAERR;
		}
	if ((o.req.flags & SUBMIT_F_SENDER) && o.req.sender[0] != '\0' &&
	    !addr_ok(o.req.sender)) {
		fprintf(stderr, "mailroot-sendmail: -f %s: not an address\n",
		    o.req.sender);
		return EX_DATAERR;
	}
	switch (o.mode) {
	case M_VERIFY:
		return verify(o.req.rcpts, (int)o.req.nrcpts);
	case M_LIST:
	case M_FLUSH:
		return queue_request(&o);
	case M_SMTP:
		return smtp_serve(&o);
	default:
		return deliver(&o);
	}
}

/* ---- -bs: SMTP on standard input and output ---- */

static void
say(const char *line)
{
	printf("%s\r\n", line);
	fflush(stdout);
}

/* The answer to DATA's end, from queued's status. */
static void
data_reply(int status, const char *text)
{
	char line[SUBMIT_REPLY_MAX + 32];
	const char *code = status == EX_OK ? "250 2.0.0" :
	    status == EX_NOPERM ? "550 5.7.1" :
	    status == EX_DATAERR ? "554 5.6.0" : "451 4.3.0";

	snprintf(line, sizeof(line), "%s %s", code, text[0] != '\0' ? text :
	    "mailroot cannot be reached");
	say(line);
}

/* DATA: the dot-stuffed text up to "." is already queued's form. */
static void
smtp_data(struct opts *o, char **rc, size_t nrc)
{
	char *line = NULL, text[SUBMIT_REPLY_MAX + 1];
	size_t cap = 0;
	struct mr_buf msg;
	ssize_t n;
	struct opts t = *o;

	say("354 End data with <CR><LF>.<CR><LF>");
	mr_buf_init(&msg);
	mr_buf_add(&msg, "", 0);
	while ((n = getline(&line, &cap, stdin)) != -1 &&
	    strcmp(line, ".\r\n") != 0 && strcmp(line, ".\n") != 0)
		if (msg.len <= SUBMIT_DATA_MAX)
			mr_buf_add(&msg, line, (size_t)n);
	free(line);
	t.req.rcpts = rc;
	t.req.nrcpts = nrc;
	t.req.flags = (o->req.flags & ~(uint32_t)SUBMIT_F_HEADERS);
	if (n == -1)
		;	/* the client left: nothing is queued */
	else if (msg.len > SUBMIT_DATA_MAX)
		data_reply(EX_DATAERR, "message too big");
	else
		data_reply(submit(&t, &msg, text, sizeof(text)), text);
	mr_buf_free(&msg);
}

struct smtp_tx {
	int		 mail;		/* MAIL given */
	char		**rcpts;
	size_t		 nrcpts;
};

static void
tx_reset(struct smtp_tx *tx)
{
	size_t i;

	for (i = 0; i < tx->nrcpts; i++)
		free(tx->rcpts[i]);
	free(tx->rcpts);
	memset(tx, 0, sizeof(*tx));
}

/* MAIL FROM: or RCPT TO: (arg after the colon). */
static void
smtp_path(struct opts *o, struct smtp_tx *tx, int rcpt, const char *arg)
{
	struct mr_path p;
	const char *err;

	if (mr_path_parse(arg, strlen(arg), !rcpt, rcpt, &p, &err) == -1) {
		printf("501 5.1.3 %s\r\n", err);
		fflush(stdout);
	} else if (!rcpt) {
		set_sender(o, p.addr);
		tx->mail = 1;
		say("250 2.1.0 Ok");
	} else if (!tx->mail)
		say("503 5.5.1 MAIL first");
	else if (tx->nrcpts >= SUBMIT_RCPT_MAX)
		say("452 4.5.3 Too many recipients");
	else {
		tx->rcpts = mr_xreallocarray(tx->rcpts, tx->nrcpts + 1,
		    sizeof(char *));
		tx->rcpts[tx->nrcpts++] = mr_xstrdup(p.postmaster ?
		    "postmaster" : p.addr);
		say("250 2.1.5 Ok");
	}
}

static int
verb(const char *line, const char *v)
{
	size_t n = strlen(v);

	return strncasecmp(line, v, n) == 0 &&
	    (line[n] == '\0' || line[n] == ' ');
}

static int
smtp_serve(struct opts *o)
{
	struct smtp_tx tx;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	memset(&tx, 0, sizeof(tx));
	say("220 localhost mailroot-sendmail ESMTP");
	while ((n = getline(&line, &cap, stdin)) != -1) {
		line[strcspn(line, "\r\n")] = '\0';
		if (verb(line, "HELO") || verb(line, "EHLO"))
			say("250 localhost");
		else if (strncasecmp(line, "MAIL FROM:", 10) == 0)
			smtp_path(o, (tx_reset(&tx), &tx), 0, line + 10);
		else if (strncasecmp(line, "RCPT TO:", 8) == 0)
			smtp_path(o, &tx, 1, line + 8);
		else if (verb(line, "DATA") && tx.nrcpts == 0)
			say("503 5.5.1 RCPT first");
		else if (verb(line, "DATA")) {
			smtp_data(o, tx.rcpts, tx.nrcpts);
			tx_reset(&tx);
		} else if (verb(line, "RSET")) {
			tx_reset(&tx);
			say("250 2.0.0 Ok");
		} else if (verb(line, "NOOP"))
			say("250 2.0.0 Ok");
		else if (verb(line, "QUIT")) {
			say("221 2.0.0 Bye");
			break;
		} else
			say("502 5.5.2 Command not implemented");
	}
	tx_reset(&tx);
	free(line);
	return EX_OK;
}
