/*
 * masq_hdr.c - `masquerade-from': the domain of each address in a
 * message's From fields replaced by the masquerade domain, for deliverd
 * to send in place of the original header (deliverd/masquerade.c).
 *
 * An address is an addr-spec inside "<...>" (the one after a source
 * route "<@a,@b:u@d>"), or a bare addr-spec in a mailbox that has no
 * "<...>"; the domain is what follows its "@": a dot-atom or a
 * domain-literal "[...]".  Quoted strings, comments (nested) and
 * domain-literals are skipped as RFC 5322 3.2.4 and 3.2.2 say, so an
 * "@" inside a display name, a comment or an encoded word is not taken
 * for an address.  Everything else is copied byte for byte, folding
 * included.
 *
 * Security: the header comes from the network.  The scan never reads
 * past len (every look-ahead is bounded by the field's end), keeps no
 * state across fields, and writes only what it read plus the domain
 * (checked by the configuration parser: no CR, LF or NUL), so it cannot
 * add a line or a field.  The output is bounded: the rewrite gives up
 * (and the header goes out as it was) when it would pass twice
 * MR_MASQ_HEAD_MAX.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "masq_hdr.h"

struct scan {
	const char	*v;	/* the field's value */
	size_t		 n;
	size_t		 i;
	int		 angle;	/* inside "<...>" */
};

/* Ends a dot-atom domain (RFC 5322 specials, white space, controls). */
static int
domain_end(unsigned char c)
{
	return c <= ' ' || c == 0x7f || strchr("<>()[]:;@\\,\"", c) != NULL;
}

/* Past a quoted string, comment or domain-literal opening at s->i. */
static void
skip_nested(struct scan *s)
{
	char open = s->v[s->i], close = ']';
	int depth = 1;

	if (open == '"')
		close = '"';
	else if (open == '(')
		close = ')';

	for (s->i++; s->i < s->n && depth > 0; s->i++) {
		if (s->v[s->i] == '\\' && open != '[' && s->i + 1 < s->n)
			s->i++;
		else if (s->v[s->i] == close)
			depth--;
		else if (open == '(' && s->v[s->i] == '(')
			depth++;
	}
}

/* Whether a "<" opens later in the mailbox that holds position i. */
static int
angle_follows(const char *v, size_t n, size_t i)
{
	struct scan s = { v, n, i, 0 };

	while (s.i < s.n) {
		switch (s.v[s.i]) {
		case '"':
		case '(':
		case '[':
			skip_nested(&s);
			continue;
		case '<':
			return 1;
		case ',':
		case ';':
			return 0;
		default:
			s.i++;
		}
	}
	return 0;
}

/* The length of the domain after an "@" at v[i - 1]: 0 if none. */
static size_t
domain_len(const struct scan *s)
{
	struct scan t = *s;

	if (t.i < t.n && t.v[t.i] == '[') {
		/* dtext (RFC 5322 3.4.1) up to "]", and no more domain after
		 * it ("[a].b"); no line end: a literal is not folded here */
		for (t.i++; t.i < t.n && t.v[t.i] > ' ' && t.v[t.i] < 0x7f &&
		    strchr("[]\\", t.v[t.i]) == NULL; t.i++)
			;
		if (t.i >= t.n || t.v[t.i] != ']' || (t.i + 1 < t.n &&
		    !domain_end((unsigned char)t.v[t.i + 1])))
			return 0;
		return t.i + 1 - s->i;
	}
	while (t.i < t.n && !domain_end((unsigned char)t.v[t.i]))
		t.i++;
	return t.i - s->i;
}

/* At an "@" (s->i past it): replaces the domain if it is an address's.
 * 1 if it did. */
static int
at_sign(struct scan *s, const char *domain, struct mr_buf *out)
{
	size_t dl = domain_len(s);
	int closes;	/* the domain ends at ">" */

	if (dl == 0)
		return 0;
	closes = s->i + dl < s->n && s->v[s->i + dl] == '>';
	if (s->angle ? !closes : angle_follows(s->v, s->n, s->i))
		return 0;	/* a route's domain, or not the address */
	mr_buf_adds(out, domain);
	s->i += dl;
	return 1;
}

/* One From field's value, rewritten into out; the addresses changed. */
static size_t
rewrite_value(const char *v, size_t n, const char *domain,
    struct mr_buf *out)
{
	struct scan s = { v, n, 0, 0 };
	size_t from, changed = 0;

	while (s.i < s.n) {
		from = s.i;
		switch (v[s.i]) {
		case '"':
		case '(':
		case '[':
			skip_nested(&s);
			mr_buf_add(out, v + from, s.i - from);
			continue;
		case '<':
			s.angle = 1;
			break;
		case '>':
			s.angle = 0;
			break;
		case '@':
			mr_buf_add(out, "@", 1);
			s.i++;
			changed += (size_t)at_sign(&s, domain, out);
			continue;
		default:
			break;
		}
		mr_buf_add(out, v + s.i, 1);
		s.i++;
	}
	return changed;
}

/* The end of the field starting at p (after its last folded line);
 * 0 if it does not end within len. */
static size_t
field_end(const char *h, size_t len, int eof, size_t p)
{
	const char *nl;

	for (;;) {
		if ((nl = memchr(h + p, '\n', len - p)) == NULL)
			return 0;
		p = (size_t)(nl - h) + 1;
		if (p == len)
			return eof ? p : 0;
		if (h[p] != ' ' && h[p] != '\t')
			return p;
	}
}

static int
is_from(const char *f, size_t n)
{
	size_t i = 4;

	if (n < 5 || strncasecmp(f, "from", 4) != 0)
		return 0;
	while (i < n && (f[i] == ' ' || f[i] == '\t'))
		i++;
	return i < n && f[i] == ':';
}

int
mr_masq_from(const char *hdr, size_t len, int eof, const char *domain,
    struct mr_buf *out, size_t *skip)
{
	size_t p = 0, end, colon, changed = 0;

	mr_buf_reset(out);
	while (p < len && hdr[p] != '\r' && hdr[p] != '\n') {
		if ((end = field_end(hdr, len, eof, p)) == 0)
			break;		/* goes on past what we have */
		if (is_from(hdr + p, end - p)) {
			colon = (size_t)((const char *)memchr(hdr + p, ':',
			    end - p) - hdr) + 1;
			mr_buf_add(out, hdr + p, colon - p);
			changed += rewrite_value(hdr + colon, end - colon,
			    domain, out);
		} else
			mr_buf_add(out, hdr + p, end - p);
		if (out->len > 2 * MR_MASQ_HEAD_MAX)
			return 0;
		p = end;
	}
	*skip = p;
	return changed > 0;
}
