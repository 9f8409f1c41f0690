/*
 * pickup_parse.c - reads a Pickup file the way IIS did (IIS-MODEL.md 5).
 *
 * Two forms.  CDO and System.Net.Mail put the envelope first, one
 * "x-sender: ADDR" and one "x-receiver: ADDR" per recipient (any case),
 * before the header section; those lines are the envelope and never
 * reach a recipient.  ADDR is read as in To: System.Net.Mail writes a
 * display name before it and folds a long line before the "<".  A plain RFC 5322 message takes its recipients from
 * To, Cc and Bcc and its sender from Sender, else From (none: the null
 * sender).  Either way every Bcc field, and any X-Sender or X-Receiver
 * field in the header section, is removed from what is sent.
 *
 * Content: a bare CR or LF becomes CRLF (a Unix file is fine), then the
 * bytes go through the SMTP DATA machine (common/dstream.c), which
 * removes the dot-stuffing IIS's producers add (a line's leading "." is
 * dropped; a line holding only "." ends the message, and what follows it
 * is ignored and noted in cut).  A Received field naming the pickup
 * service goes first, and Date and Message-ID are added where missing
 * when add_headers says so, by the code smtpd uses.
 *
 * Security: the file is hostile bytes of any length (its writer may send
 * as anyone, but must not crash queued or smuggle an envelope).  NUL
 * bytes are refused, as SMTP refuses them; every address is checked by
 * mr_mailbox_parse, so none holds a CR, LF or space; recipients are
 * bounded (PICKUP_RCPTS_MAX) and so is the result (max_size).  Nothing
 * here touches a file, the clock or global state: the caller passes the
 * bytes, the time and the names.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "buf.h"
#include "dstream.h"
#include "pickup_parse.h"

struct parse {
	struct pickup_msg	*m;
	const struct pickup_opts *o;
	int			 env_rcpts;	/* x-receiver lines seen */
	int			 env_sender;	/* an x-sender line seen */
	char			 from[MR_PATH_MAX + 1];
	char			 hsender[MR_PATH_MAX + 1];
	struct mr_buf		 body;		/* after dstream */
	size_t			 hdr_off;	/* header section's end */
	int			 hdr_seen;
	int			 has_from;	/* a From field seen */
	struct mr_dstream	 ds;
};

/* Refuses the file for reason why, quoting n bytes of what if n > 0. */
static int
refuse(struct parse *p, const char *why, const char *what, size_t n)
{
	size_t i, len;

	if (p->m->err != NULL)
		return -1;
	len = (size_t)snprintf(p->m->errbuf, sizeof(p->m->errbuf), "%s%s",
	    why, n > 0 ? ": " : "");
	/* the quote goes into logs: printable bytes only */
	for (i = 0; i < n && i < 64 && len + 1 < sizeof(p->m->errbuf); i++) {
		char c = what[i];

		if (c < ' ' || c > '~')
			c = '?';
		p->m->errbuf[len++] = c;
	}
	p->m->errbuf[len] = '\0';
	p->m->err = p->m->errbuf;
	return -1;
}

/* Bare CR and bare LF become CRLF; the text ends in CRLF. */
static void
to_crlf(const char *s, size_t n, struct mr_buf *out)
{
	size_t i, run = 0;

	mr_buf_reserve(out, n + n / 8 + 2);
	for (i = 0; i < n; i++) {
		if (s[i] != '\r' && s[i] != '\n') {
			run++;
			continue;
		}
		mr_buf_add(out, s + i - run, run);
		run = 0;
		mr_buf_add(out, "\r\n", 2);
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			i++;
	}
	mr_buf_add(out, s + n - run, run);
	if (out->len > 0 && (out->len < 2 ||
	    memcmp(out->data + out->len - 2, "\r\n", 2) != 0))
		mr_buf_add(out, "\r\n", 2);
}

static int
add_rcpt(struct parse *p, const char *a)
{
	struct pickup_msg *m = p->m;

	if (m->nrcpts >= PICKUP_RCPTS_MAX)
		return refuse(p, "more than 10000 recipients", "", 0);
	m->rcpts = realloc(m->rcpts, (m->nrcpts + 1) * sizeof(char *));
	if (m->rcpts == NULL || (m->rcpts[m->nrcpts] = strdup(a)) == NULL)
		abort();
	m->nrcpts++;
	return 0;
}

/* One address from an envelope line or a header field into out. */
static int
mailbox(struct parse *p, const char *s, size_t n, char *out, const char *what)
{
	struct mr_path path;
	const char *err;

	if (mr_mailbox_parse(s, n, &path, &err) == -1)
		return refuse(p, what, s, n);
	memcpy(out, path.addr, strlen(path.addr) + 1);
	return 0;
}

static int	addr_list(struct parse *, const char *, size_t, char *,
		    const char *);

/*
 * "x-sender:" or "x-receiver:" with its folded lines (n bytes, CRLFs
 * included): the envelope.  CDO writes a bare address; System.Net.Mail
 * writes MailAddress.Encode(), which holds the display name
 * ("X-Receiver: \"Jane\" <jane@example.com>", an encoded word where it is
 * not ASCII) and folds a long one before the "<": so the value is read
 * as an address list, as To is.  An empty x-sender is the null sender.
 */
static int
env_line(struct parse *p, const char *line, size_t n)
{
	if (n >= 9 && strncasecmp(line, "x-sender:", 9) == 0) {
		p->env_sender = 1;
		p->m->sender[0] = '\0';	/* the last one counts */
		return addr_list(p, line + 9, n - 9, p->m->sender,
		    "x-sender: not an address");
	}
	p->env_rcpts = 1;
	return addr_list(p, line + 11, n - 11, NULL,
	    "x-receiver: not an address");
}

/* mailroot-sendmail's envelope, from the options: the file's own
 * x-sender and x-receiver lines are message text then, never read. */
static int
given_envelope(struct parse *p)
{
	size_t i;

	p->env_sender = 1;
	p->env_rcpts = !p->o->hdr_rcpts;
	if (strlen(p->o->sender) > MR_PATH_MAX)
		return refuse(p, "sender too long", "", 0);
	memcpy(p->m->sender, p->o->sender, strlen(p->o->sender) + 1);
	for (i = 0; i < p->o->nrcpts; i++)
		if (add_rcpt(p, p->o->rcpts[i]) == -1)
			return -1;
	return 0;
}

/* The length of the line at pos in t, without its CRLF. */
static size_t
line_len(const struct mr_buf *t, size_t pos)
{
	const char *eol = memmem(t->data + pos, t->len - pos, "\r\n", 2);

	return eol != NULL ? (size_t)(eol - (t->data + pos)) : t->len - pos;
}

/* Reads the envelope lines at the start; returns where the message
 * begins, or -1. */
static long
envelope(struct parse *p, const struct mr_buf *t)
{
	size_t pos = 0, end, n;
	const char *line;

	/* to_crlf ended every line, the last one included, in CRLF */
	while (pos < t->len) {
		line = t->data + pos;
		n = line_len(t, pos);
		if (!(n >= 9 && strncasecmp(line, "x-sender:", 9) == 0) &&
		    !(n >= 11 && strncasecmp(line, "x-receiver:", 11) == 0))
			break;
		end = pos + n + 2;	/* and its folded lines */
		while (end < t->len && (t->data[end] == ' ' ||
		    t->data[end] == '\t'))
			end += line_len(t, end) + 2;
		if (env_line(p, line, end - pos) == -1)
			return -1;
		pos = end;
	}
	return (long)pos;
}

static void
emit(void *arg, const char *s, size_t n)
{
	struct parse *p = arg;

	mr_buf_add(&p->body, s, n);
}

static void
hdr_end(void *arg, int body)
{
	struct parse *p = arg;

	p->hdr_off = p->body.len;
	p->hdr_seen = 1;
	if (body)		/* the empty line a message without one lacks */
		mr_buf_add(&p->body, "\r\n", 2);
}

/* The message after the envelope, unstuffed, into p->body. */
static int
unstuff(struct parse *p, const char *s, size_t n)
{
	size_t used;
	int done;

	mr_buf_init(&p->body);
	mr_buf_add(&p->body, "", 0);
	mr_dstream_init(&p->ds, emit, p);
	p->ds.hdr_end = hdr_end;
	used = mr_dstream_feed(&p->ds, s, n, &done);
	if (p->ds.nul)
		return refuse(p, "the file contains NUL bytes", "", 0);
	p->m->cut = done && used < n;
	if (!p->hdr_seen)
		p->hdr_off = p->body.len;	/* headers only */
	return 0;
}

enum field { F_OTHER, F_TO, F_BCC, F_FROM, F_SENDER, F_ENVELOPE };

static enum field
field_kind(const char *f, size_t n)
{
	static const struct {
		const char	*name;
		enum field	 kind;
	} names[] = {
		{ "to", F_TO }, { "cc", F_TO }, { "bcc", F_BCC },
		{ "from", F_FROM }, { "sender", F_SENDER },
		{ "x-sender", F_ENVELOPE }, { "x-receiver", F_ENVELOPE },
	};
	size_t i, len;
	const char *colon = memchr(f, ':', n);

	if (colon == NULL)
		return F_OTHER;
	len = (size_t)(colon - f);
	while (len > 0 && (f[len - 1] == ' ' || f[len - 1] == '\t'))
		len--;
	for (i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (strlen(names[i].name) == len &&
		    strncasecmp(f, names[i].name, len) == 0)
			return names[i].kind;
	return F_OTHER;
}

/*
 * An address list (RFC 5322 3.4) as IIS read To, Cc and Bcc: each
 * element's address is what stands in angle brackets, else the element
 * without comments and white space; display names, group names and
 * source routes are dropped.  A malformed address refuses the file: a
 * message must not go to part of its recipients unnoticed.
 */
struct alist {
	struct mr_buf	 a;		/* the address being collected */
	int		 quoted, depth, angle, closed;
	const char	*what;		/* the refusal's words */
};

static int
alist_end(struct parse *p, struct alist *l, char *one)
{
	char addr[MR_PATH_MAX + 1];
	int rc = 0;

	if (l->a.len > 0 && (one == NULL || one[0] == '\0')) {
		rc = mailbox(p, l->a.data, l->a.len, one != NULL ? one : addr,
		    l->what);
		if (rc == 0 && one == NULL)
			rc = add_rcpt(p, addr);
	}
	mr_buf_reset(&l->a);
	l->angle = l->closed = 0;
	return rc;
}

/* Outside quotes and comments: 1 when c ended an element. */
static int
alist_special(struct alist *l, char c)
{
	switch (c) {
	case '"':
		l->quoted = 1;
		break;
	case '(':
		l->depth = 1;
		return 0;
	case '<':
		mr_buf_reset(&l->a);	/* the display name */
		l->angle = 1;
		return 0;
	case '>':
		l->angle = 0;
		l->closed = 1;
		return 0;
	case ':':			/* a group's name, or a route */
		mr_buf_reset(&l->a);
		return 0;
	case ',':
		return !l->angle;	/* in brackets: a source route */
	case ';':
		return 1;
	case ' ':
	case '\t':
	case '\r':
	case '\n':
		return 0;
	default:
		break;
	}
	if (!l->closed)
		mr_buf_add(&l->a, &c, 1);
	return 0;
}

static int
addr_list(struct parse *p, const char *v, size_t n, char *one,
    const char *what)
{
	struct alist l;
	size_t i;
	int rc = 0;

	memset(&l, 0, sizeof(l));
	l.what = what;
	mr_buf_init(&l.a);
	for (i = 0; i < n && rc == 0; i++) {
		if (l.depth > 0) {
			if (v[i] == '\\')
				i++;
			else if (v[i] == '(' || v[i] == ')')
				l.depth += v[i] == '(' ? 1 : -1;
			continue;
		}
		if (l.quoted) {
			if (!l.closed)
				mr_buf_add(&l.a, v + i, 1);
			if (v[i] == '\\' && i + 1 < n && !l.closed)
				mr_buf_add(&l.a, v + ++i, 1);
			else if (v[i] == '"')
				l.quoted = 0;
			continue;
		}
		if (alist_special(&l, v[i]))
			rc = alist_end(p, &l, one);
	}
	if (rc == 0)
		rc = alist_end(p, &l, one);
	mr_buf_free(&l.a);
	return rc;
}

/* Reads one header field (s, n bytes with its CRLFs); 1 to keep it. */
static int
header_field(struct parse *p, const char *s, size_t n, int *keep)
{
	static const char what[] = "not an address in To, Cc, Bcc, From or "
	    "Sender";
	const char *v = memchr(s, ':', n);
	enum field k = field_kind(s, n);
	size_t vn = v != NULL ? n - (size_t)(v + 1 - s) : 0;

	*keep = k != F_BCC && k != F_ENVELOPE;
	if (v == NULL)
		return 0;
	v++;
	switch (k) {
	case F_TO:
	case F_BCC:
		return p->env_rcpts ? 0 : addr_list(p, v, vn, NULL, what);
	case F_FROM:
		p->has_from = 1;
		if (p->o->no_envelope)
			return 0;	/* the sender is given */
		return p->from[0] ? 0 : addr_list(p, v, vn, p->from, what);
	case F_SENDER:
		if (p->o->no_envelope)
			return 0;
		return p->hsender[0] ? 0 :
		    addr_list(p, v, vn, p->hsender, what);
	default:
		return 0;
	}
}

/* Copies the header section to out, reading and filtering each field. */
static int
headers(struct parse *p, struct mr_buf *out)
{
	const char *h = p->body.data, *end = h + p->hdr_off, *s, *e;
	int keep;

	for (s = h; s < end; s = e) {
		/* a field: its line and the folded lines after it */
		e = s;
		do {
			const char *nl = memmem(e, (size_t)(end - e), "\r\n",
			    2);

			e = nl != NULL ? nl + 2 : end;
		} while (e < end && (*e == ' ' || *e == '\t'));
		if (header_field(p, s, (size_t)(e - s), &keep) == -1)
			return -1;
		if (keep)
			mr_buf_add(out, s, (size_t)(e - s));
	}
	return 0;
}

/* The message to queue: Received, the kept fields, the missing ones,
 * the body. */
static int
compose(struct parse *p)
{
	const struct pickup_opts *o = p->o;
	struct mr_buf *out = &p->m->data;
	char date[64], missing[128 + 2 * 256];
	size_t n, i;

	mr_rfc5322_date(o->now, date, sizeof(date));
	mr_buf_printf(out, "Received: from %s by %s "
	    "(mailroot) with local\r\n\tid %s; %s\r\n", o->origin != NULL ?
	    o->origin : "mail pickup service", o->fqdn, o->qid, date);
	if (headers(p, out) == -1)
		return -1;
	if (o->add_headers && !p->has_from && o->from_field != NULL)
		mr_buf_printf(out, "From: %s\r\n", o->from_field);
	if (o->add_headers) {
		n = mr_dstream_missing(&p->ds, o->qid, o->fqdn, o->now,
		    missing, sizeof(missing));
		mr_buf_add(out, missing, n);
	}
	mr_buf_add(out, p->body.data + p->hdr_off, p->body.len - p->hdr_off);
	if (out->len > o->max_size)
		return refuse(p, "larger than the message size limit", "",
		    0);
	for (i = 0; i < out->len && !p->m->eightbit; i++)
		p->m->eightbit = (unsigned char)out->data[i] > 127;
	return 0;
}

int
pickup_parse(const char *file, size_t len, const struct pickup_opts *o,
    struct pickup_msg *m)
{
	struct parse p;
	struct mr_buf text;
	long start;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	memset(&p, 0, sizeof(p));
	p.m = m;
	p.o = o;
	mr_buf_init(&m->data);
	mr_buf_init(&text);
	mr_buf_init(&p.body);
	if (len > o->max_size + o->max_size / 4 + 65536) {
		refuse(&p, "larger than the message size limit", "", 0);
		goto out;
	}
	mr_buf_add(&text, "", 0);
	to_crlf(file, len, &text);
	if (o->no_envelope && given_envelope(&p) == -1)
		goto out;
	start = 0;
	if ((!o->no_envelope && (start = envelope(&p, &text)) == -1) ||
	    unstuff(&p, text.data + start, text.len - (size_t)start) == -1 ||
	    compose(&p) == -1)
		goto out;
	if (!p.env_sender)
		memcpy(m->sender, p.hsender[0] ? p.hsender : p.from,
		    sizeof(m->sender));
	if (m->nrcpts == 0) {
		refuse(&p, "no recipient (no x-receiver line and no To, Cc "
		    "or Bcc address)", "", 0);
		goto out;
	}
	rc = 0;
out:
	mr_buf_free(&text);
	mr_buf_free(&p.body);
	return rc;
}

void
pickup_msg_free(struct pickup_msg *m)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	m->rcpts = NULL;
	m->nrcpts = 0;
	mr_buf_free(&m->data);
}
