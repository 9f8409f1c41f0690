/*
 * dkim_canon.c - what a DKIM signature covers (RFC 6376 3.4): the header
 * section split into fields, each field's canonical form, the body's
 * canonical form (streamed), and the From field's domain, which chooses
 * the signing key.
 *
 * Security: every byte is hostile.  The message comes from a client, a
 * Pickup file or a local program, and queued parses it while it holds
 * the signing keys.  The splitter keeps pointers into the caller's bytes
 * and a bounded array of fields (MR_DKIM_FIELDS_MAX), refuses a header
 * section longer than MR_DKIM_HEADER_MAX, and never reads past len; the
 * body canonicaliser holds a constant state (a count of empty lines, not
 * the lines); the From parser writes at most outlen bytes and gives up
 * (the message goes unsigned) rather than guess.  Nothing here allocates
 * except through mr_buf, which aborts on exhaustion.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "buf.h"
#include "dkim.h"

/* RFC 5322 2.2: a field name is printable US-ASCII but the colon. */
static int
ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

static int
wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* The length of the line at p (up to and with its CRLF, or to end). */
static size_t
line_len(const char *p, const char *end)
{
	const char *q;

	for (q = p; q + 1 < end; q++)
		if (q[0] == '\r' && q[1] == '\n')
			return (size_t)(q + 2 - p);
	return (size_t)(end - p);
}

/* A field's name at p: its length, or 0 if the line is no field
 * (a name, optional white space, a colon). */
static size_t
field_name(const char *p, size_t n)
{
	size_t i = 0, name;

	while (i < n && ftext((unsigned char)p[i]))
		i++;
	name = i;
	while (i < n && wsp((unsigned char)p[i]))
		i++;
	return name > 0 && i < n && p[i] == ':' ? name : 0;
}

int
mr_dkim_split(const char *data, size_t len, struct mr_dkim_hdrs *h,
    const char **why)
{
	const char *p = data, *end = data + len;
	struct mr_dkim_field *f;
	size_t n, name;

	h->n = 0;
	h->end = len;
	while (p < end) {
		if ((size_t)(p - data) > MR_DKIM_HEADER_MAX) {
			*why = "header section too long";
			return -1;
		}
		n = line_len(p, end);
		if (n == 2 && p[0] == '\r') {		/* the empty line */
			h->end = (size_t)(p + 2 - data);
			return 0;
		}
		if (wsp((unsigned char)p[0])) {
			if (h->n == 0) {
				*why = "continuation line before any field";
				return -1;
			}
			h->f[h->n - 1].len += n;
		} else if ((name = field_name(p, n)) == 0) {
			*why = "a line in the header section is no field";
			return -1;
		} else if (h->n == MR_DKIM_FIELDS_MAX) {
			*why = "too many header fields";
			return -1;
		} else {
			f = &h->f[h->n++];
			f->p = p;
			f->len = n;
			f->namelen = name;
		}
		p += n;
	}
	return 0;
}

/*
 * relaxed (3.4.2): the name in lower case, no white space around the
 * colon, continuation lines unfolded, runs of white space one space, none
 * at the value's ends.
 */
static void
hdr_relaxed(const char *f, size_t len, int crlf, struct mr_buf *out)
{
	size_t i, name = field_name(f, len);
	int pending = 0, any = 0;
	char c;

	for (i = 0; i < name; i++) {
		c = (char)tolower((unsigned char)f[i]);
		mr_buf_add(out, &c, 1);
	}
	mr_buf_add(out, ":", 1);
	for (i = (const char *)memchr(f, ':', len) - f + 1; i < len; i++) {
		if (f[i] == '\r' && i + 1 < len && f[i + 1] == '\n') {
			i++;		/* unfolded (or the field's end) */
			continue;
		}
		if (wsp((unsigned char)f[i])) {
			pending = 1;
			continue;
		}
		if (pending && any)
			mr_buf_add(out, " ", 1);
		pending = 0;
		any = 1;
		mr_buf_add(out, &f[i], 1);
	}
	if (crlf)
		mr_buf_add(out, "\r\n", 2);
}

void
mr_dkim_hdr_canon(enum mr_dkim_canon c, const char *field, size_t len,
    int crlf, struct mr_buf *out)
{
	if (field_name(field, len) == 0)
		return;		/* not from mr_dkim_split: nothing to add */
	if (c == MR_DKIM_RELAXED) {
		hdr_relaxed(field, len, crlf, out);
		return;
	}
	/* simple (3.4.1): unchanged */
	if (!crlf && len >= 2 && field[len - 2] == '\r' &&
	    field[len - 1] == '\n')
		len -= 2;
	mr_buf_add(out, field, len);
}

/* ---- body ---- */

void
mr_dkim_body_init(struct mr_dkim_body *b, enum mr_dkim_canon c,
    mr_dkim_emit emit, void *arg)
{
	memset(b, 0, sizeof(*b));
	b->c = c;
	b->emit = emit;
	b->arg = arg;
}

static void
flush(struct mr_dkim_body *b)
{
	if (b->olen > 0)
		b->emit(b->arg, b->out, b->olen);
	b->olen = 0;
}

static void
put(struct mr_dkim_body *b, char c)
{
	if (b->olen == sizeof(b->out))
		flush(b);
	b->out[b->olen++] = c;
	b->any = 1;
}

/* A byte of a line's content: the empty lines held back were not the
 * body's last ones after all. */
static void
content(struct mr_dkim_body *b, char c)
{
	if (b->c == MR_DKIM_RELAXED && wsp((unsigned char)c)) {
		b->wsp = 1;
		return;
	}
	for (; b->blank > 0; b->blank--) {
		put(b, '\r');
		put(b, '\n');
	}
	if (b->wsp)
		put(b, ' ');
	b->wsp = 0;
	put(b, c);
	b->content = 1;
}

/* CRLF: white space at a line's end goes (relaxed), an empty line is
 * held back until content shows it is not at the body's end. */
static void
line_end(struct mr_dkim_body *b)
{
	b->wsp = 0;
	if (b->content) {
		put(b, '\r');
		put(b, '\n');
		b->content = 0;
	} else
		b->blank++;
}

void
mr_dkim_body_feed(struct mr_dkim_body *b, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (b->cr) {
			b->cr = 0;
			if (p[i] == '\n') {
				line_end(b);
				continue;
			}
			content(b, '\r');	/* a bare CR is content */
		}
		if (p[i] == '\r')
			b->cr = 1;
		else
			content(b, p[i]);
	}
}

/* 3.4.3: an empty body is one CRLF (simple) and stays empty (relaxed,
 * 3.4.4); a last line without its CRLF gets one. */
void
mr_dkim_body_end(struct mr_dkim_body *b)
{
	if (b->cr) {
		b->cr = 0;
		content(b, '\r');
	}
	b->wsp = 0;
	if (b->content) {
		put(b, '\r');
		put(b, '\n');
		b->content = 0;
	}
	if (b->c == MR_DKIM_SIMPLE && !b->any) {
		put(b, '\r');
		put(b, '\n');
	}
	b->blank = 0;
	flush(b);
}

/* ---- the wire form ---- */

void
mr_dkim_wire_init(struct mr_dkim_wire *w, mr_dkim_emit emit, void *arg)
{
	memset(w, 0, sizeof(*w));
	w->emit = emit;
	w->arg = arg;
	w->bol = 1;
}

static void
wput(struct mr_dkim_wire *w, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (w->olen == sizeof(w->out)) {
			w->emit(w->arg, w->out, w->olen);
			w->olen = 0;
		}
		w->out[w->olen++] = p[i];
	}
}

void
mr_dkim_wire_feed(struct mr_dkim_wire *w, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (w->cr) {		/* CRLF, or a bare CR made one */
			w->cr = 0;
			w->bol = 1;
			w->col = 0;
			wput(w, "\r\n", 2);
			if (p[i] == '\n')
				continue;
		}
		if (p[i] == '\r') {
			w->cr = 1;
			continue;
		}
		if (p[i] == '\n') {	/* a bare LF */
			wput(w, "\r\n", 2);
			w->bol = 1;
			w->col = 0;
			continue;
		}
		if (p[i] == '\0')
			continue;
		if (w->col >= MR_DKIM_LINE_MAX) {
			wput(w, "\r\n ", 3);
			w->col = 1;
		}
		w->bol = 0;
		w->col++;
		wput(w, &p[i], 1);
	}
}

void
mr_dkim_wire_end(struct mr_dkim_wire *w)
{
	if (w->cr || !w->bol)
		wput(w, "\r\n", 2);
	w->cr = 0;
	w->bol = 1;
	w->col = 0;
	if (w->olen > 0)
		w->emit(w->arg, w->out, w->olen);
	w->olen = 0;
}

/* ---- From ---- */

static int
domain_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c >= 0x80;
}

struct from_st {
	int	 depth;		/* in a comment, nested */
	int	 quote;		/* in a quoted string */
	int	 esc;		/* after a backslash in either */
	int	 angle;		/* 0 none yet, 1 inside <>, 2 after */
	int	 collect;	/* after an "@": the domain's bytes */
	size_t	 bare, in;	/* lengths: outside <> and inside */
};

/* Skips comments and quoted strings: 1 if c is inside one. */
static int
from_skip(struct from_st *s, unsigned char c)
{
	if (s->esc) {
		s->esc = 0;
		return 1;
	}
	if (s->depth > 0 || s->quote) {
		if (c == '\\')
			s->esc = 1;
		else if (s->quote && c == '"')
			s->quote = 0;
		else if (s->depth > 0 && c == '(')
			s->depth++;
		else if (s->depth > 0 && c == ')')
			s->depth--;
		return 1;
	}
	if (c == '"' || c == '(') {
		s->collect = 0;
		if (c == '"')
			s->quote = 1;
		else
			s->depth = 1;
		return 1;
	}
	return 0;
}

/* One byte outside comments and quotes; -1 when the field has no
 * single address whose domain can be told. */
static int
from_byte(struct from_st *s, unsigned char c, char *bare, char *in,
    size_t outlen)
{
	size_t *n = s->angle == 1 ? &s->in : &s->bare;
	char *o = s->angle == 1 ? in : bare;

	if (c == ',' || c == ':' || c == ';' || c == '[')
		return -1;	/* several mailboxes, a group, a literal */
	if (c == '<' || c == '>') {
		if ((c == '<') != (s->angle == 0))
			return -1;
		s->angle++;
		s->collect = 0;
		return 0;
	}
	if (c == '@') {
		s->collect = 1;
		*n = 0;		/* the last "@" wins */
		return 0;
	}
	if (!s->collect)
		return 0;
	if (!domain_char(c)) {
		s->collect = 0;
		return 0;
	}
	if (*n + 1 >= outlen)
		return -1;
	o[(*n)++] = (char)tolower(c);
	return 0;
}

int
mr_dkim_from_domain(const char *value, size_t len, char *out, size_t outlen)
{
	char bare[256], in[256];
	struct from_st s;
	size_t i, n;

	if (outlen > sizeof(bare))
		outlen = sizeof(bare);
	memset(&s, 0, sizeof(s));
	for (i = 0; i < len; i++) {
		if (from_skip(&s, (unsigned char)value[i]))
			continue;
		if (from_byte(&s, (unsigned char)value[i], bare, in,
		    outlen) == -1)
			return -1;
	}
	if (s.angle == 1 || s.quote || s.depth > 0)
		return -1;
	n = s.angle == 2 ? s.in : s.bare;
	if (n == 0)
		return -1;
	memcpy(out, s.angle == 2 ? in : bare, n);
	out[n] = '\0';
	return 0;
}
