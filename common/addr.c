/*
 * addr.c - RFC 5321 4.1.2 paths and mailboxes from untrusted input.
 *
 * Owns the one parser that turns "<local@domain>" from an SMTP client, a
 * Pickup file or the configuration into a struct mr_path.
 *
 * Security: every byte is hostile.  The parser walks the grammar over
 * (pointer, length) one byte at a time, never searches for a delimiter,
 * and copies into out->addr only after the whole path has matched and its
 * length is known to fit.  It accepts printable 7-bit bytes only (a space
 * only inside a quoted local part), so no NUL, control character or 8-bit
 * byte reaches a log line, a queue file or a peer; the _utf8 variants
 * (SMTPUTF8, RFC 6531) add strictly valid UTF-8 characters in the local
 * part and domain labels, never a C0 or C1 control, a surrogate or an
 * overlong form, and bound lengths in octets as RFC 6531 3.3 says.  The domain is what
 * follows the one unquoted '@'; percent signs, bangs and quoted '@' are
 * bytes of an opaque local part, so a local part can never name a relay.
 * A source route is checked and dropped (RFC 5321 Appendix C).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "addr.h"

#define LABEL_MAX	63	/* RFC 1035 2.3.4 */
#define LITERAL_MAX	64	/* "IPv6:" + longest IPv6 text, roomy */

struct scan {
	const unsigned char	*s;
	size_t			 len;
	size_t			 pos;
	const char		*err;
	int			 utf8;	/* UTF-8 allowed (RFC 6531) */
	int			 seen8;	/* a UTF-8 character was accepted */
};

/* A matched stretch of the input. */
struct span {
	size_t	 off;
	size_t	 len;
};

static int
peek(const struct scan *sc)
{
	return sc->pos < sc->len ? sc->s[sc->pos] : -1;
}

static int
fail(struct scan *sc, const char *err)
{
	if (sc->err == NULL)
		sc->err = err;
	return -1;
}

/* Fails at the current byte, naming it when it is one of the classes an
 * attacker uses (8-bit, control, space) rather than a plain typo. */
static int
fail_at(struct scan *sc, const char *what)
{
	int c = peek(sc);

	if (c >= 0x80)
		what = sc->utf8 ? "invalid UTF-8 in address" :
		    "non-ASCII character in address (no SMTPUTF8)";
	else if (c == ' ')
		what = "space in address";
	else if (c >= 0 && (c < 0x20 || c == 0x7f))
		what = "control character in address";
	return fail(sc, what);
}

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_letdig(int c)
{
	return is_alpha(c) || is_digit(c);
}

/* RFC 5322 3.2.3 atext */
static int
is_atext(int c)
{
	if (c <= 0 || c > 0x7e)
		return 0;
	return is_letdig(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/*
 * RFC 6531 UTF8-non-ascii (RFC 6532 3.1, RFC 3629 4) at the current byte
 * when the scan allows UTF-8: the length of one strictly valid multi-byte
 * character, else 0.  No overlong form, no surrogate, nothing above
 * U+10FFFF, and no C1 control (U+0080..U+009F).
 */
static size_t
utf8_char(const struct scan *sc)
{
	const unsigned char *p = sc->s + sc->pos;
	size_t left = sc->len - sc->pos, n, i;
	unsigned lo = 0x80, hi = 0xbf;

	if (!sc->utf8 || left == 0 || p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	if (p[0] < 0xe0)
		n = 2;
	else if (p[0] < 0xf0)
		n = 3;
	else
		n = 4;
	if (p[0] == 0xc2 || p[0] == 0xe0)
		lo = 0xa0;		/* C1 controls; overlong */
	else if (p[0] == 0xed)
		hi = 0x9f;		/* surrogates */
	else if (p[0] == 0xf0)
		lo = 0x90;		/* overlong */
	else if (p[0] == 0xf4)
		hi = 0x8f;		/* above U+10FFFF */
	if (left < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Steps over one UTF-8 character if there is one: 1, else 0. */
static int
take_utf8(struct scan *sc)
{
	size_t n = utf8_char(sc);

	if (n == 0)
		return 0;
	sc->pos += n;
	sc->seen8 = 1;
	return 1;
}

static int
ascii_caseeq(const unsigned char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower(a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* Dot-string = Atom *("." Atom) */
static int
scan_dot_string(struct scan *sc)
{
	size_t start = sc->pos;

	for (;;) {
		if (!is_atext(peek(sc)) && utf8_char(sc) == 0) {
			if (sc->pos == start)
				return fail_at(sc, "invalid local part");
			return fail_at(sc, "empty atom in local part");
		}
		for (;;) {
			if (is_atext(peek(sc)))
				sc->pos++;
			else if (!take_utf8(sc))
				break;
		}
		if (peek(sc) != '.')
			return 0;
		sc->pos++;
	}
}

/*
 * Quoted-string = DQUOTE *QcontentSMTP DQUOTE; qtextSMTP is %d32-33 /
 * %d35-91 / %d93-126 and quoted-pairSMTP is "\" %d32-126.  Kept as
 * written, quotes and backslashes included.
 */
static int
scan_quoted(struct scan *sc)
{
	size_t start = sc->pos++;
	int c;

	while ((c = peek(sc)) != '"') {
		if (c == -1)
			return fail(sc, "unbalanced quote in local part");
		if (c == '\\') {
			sc->pos++;
			if ((c = peek(sc)) == -1)
				return fail(sc,
				    "unbalanced quote in local part");
		}
		if (c >= 0x80 && take_utf8(sc))
			continue;
		if (c < 0x20 || c > 0x7e)
			return fail_at(sc, "invalid character in quotes");
		sc->pos++;
	}
	if (sc->pos == start + 1)
		return fail(sc, "empty local part");
	sc->pos++;
	return 0;
}

/* Local-part = Dot-string / Quoted-string, at most 64 octets as written
 * (RFC 5321 4.5.3.1.1). */
static int
scan_local(struct scan *sc, struct span *sp)
{
	int rc;

	sp->off = sc->pos;
	if (peek(sc) == '"')
		rc = scan_quoted(sc);
	else
		rc = scan_dot_string(sc);
	if (rc == -1)
		return -1;
	sp->len = sc->pos - sp->off;
	if (sp->len > MR_LOCAL_MAX)
		return fail(sc, "local part longer than 64 characters");
	return 0;
}

/* sub-domain = Let-dig [Ldh-str]: no leading or trailing hyphen. */
static int
scan_label(struct scan *sc, int *numeric)
{
	size_t start = sc->pos;
	int c;

	if (!is_letdig(peek(sc)) && utf8_char(sc) == 0)
		return fail_at(sc, start > 0 && sc->s[start - 1] == '.' ?
		    "empty label in domain" : "invalid domain");
	*numeric = 1;
	for (;;) {
		if (take_utf8(sc)) {	/* U-label (RFC 6531 3.3) */
			*numeric = 0;
			continue;
		}
		if ((c = peek(sc)) == -1 || !(is_letdig(c) || c == '-'))
			break;
		if (!is_digit(c))
			*numeric = 0;
		sc->pos++;
	}
	if (sc->s[sc->pos - 1] == '-')
		return fail(sc, "domain label ends with a hyphen");
	if (sc->pos - start > LABEL_MAX)
		return fail(sc, "domain label longer than 63 characters");
	return 0;
}

/*
 * Domain = sub-domain *("." sub-domain), at most 255 octets (RFC 5321
 * 4.5.3.1.2).  An all-numeric last label is refused: no top-level domain
 * is numeric (RFC 3696 2), and "user@10.0.0.1" must not reach a resolver
 * that would take it for an address; the client writes "[10.0.0.1]".
 */
static int
scan_domain(struct scan *sc)
{
	size_t start = sc->pos;
	int numeric = 0;

	for (;;) {
		if (scan_label(sc, &numeric) == -1)
			return -1;
		if (peek(sc) != '.')
			break;
		sc->pos++;
	}
	if (sc->pos - start > MR_DOMAIN_MAX)
		return fail(sc, "domain longer than 255 characters");
	if (numeric)
		return fail(sc, "numeric domain (use an address literal)");
	return 0;
}

/* Checks the n bytes (NUL-terminated) between the brackets of an
 * address literal. */
static int
check_literal(struct scan *sc, const char *text, size_t n)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (n >= 5 && ascii_caseeq((const unsigned char *)text, "IPv6:", 5)) {
		if (inet_pton(AF_INET6, text + 5, a) != 1)
			return fail(sc, "invalid IPv6 address literal");
		return 0;
	}
	if (is_digit((unsigned char)text[0])) {
		if (inet_pton(AF_INET, text, a) != 1)
			return fail(sc, "invalid IPv4 address literal");
		return 0;
	}
	/* General-address-literal: RFC 5321 4.1.3 wants its tag registered
	 * with IANA; none is besides IPv6, and none could be routed. */
	return fail(sc, "unsupported address literal");
}

/* address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General ) "]" */
static int
scan_literal(struct scan *sc)
{
	char text[LITERAL_MAX + 1];
	size_t n = 0;
	int c;

	sc->pos++;
	while ((c = peek(sc)) != ']') {
		if (c == -1)
			return fail(sc, "unbalanced [ in address literal");
		/* dcontent = %d33-90 / %d94-126 */
		if (c < 33 || c > 126 || c == '[' || c == '\\')
			return fail_at(sc, "invalid address literal");
		if (n == LITERAL_MAX)
			return fail(sc, "address literal too long");
		text[n++] = (char)c;
		sc->pos++;
	}
	text[n] = '\0';
	if (n == 0)
		return fail(sc, "empty address literal");
	if (check_literal(sc, text, n) == -1)
		return -1;
	sc->pos++;
	return 0;
}

static int
scan_host(struct scan *sc, struct span *sp)
{
	int rc;

	sp->off = sc->pos;
	if (peek(sc) == '[')
		rc = scan_literal(sc);
	else
		rc = scan_domain(sc);
	sp->len = sc->pos - sp->off;
	return rc;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) */
static int
scan_mailbox(struct scan *sc, struct span *local, struct span *dom)
{
	int c;

	if (scan_local(sc, local) == -1)
		return -1;
	if ((c = peek(sc)) != '@') {
		if (c == -1 || c == '>')
			return fail(sc, "address lacks a domain");
		return fail_at(sc, "invalid character in local part");
	}
	sc->pos++;
	if (peek(sc) == -1 || peek(sc) == '>')
		return fail(sc, "address lacks a domain");
	return scan_host(sc, dom);
}

/*
 * A-d-l = At-domain *( "," At-domain ) ":", At-domain = "@" Domain.
 * Checked so that garbage cannot hide in it, then dropped: RFC 5321
 * Appendix C says a server SHOULD ignore the route.
 */
static int
scan_route(struct scan *sc)
{
	int c;

	for (;;) {
		if (peek(sc) != '@')
			return fail_at(sc, "invalid source route");
		sc->pos++;
		if (scan_domain(sc) == -1)
			return -1;
		if ((c = peek(sc)) == ':')
			break;
		if (c != ',')
			return fail_at(sc, "invalid source route");
		sc->pos++;
	}
	sc->pos++;
	return 0;
}

static void
path_clear(struct mr_path *out)
{
	memset(out, 0, sizeof(*out));
	out->domain = out->addr;
}

/* Builds "local@domain" in out, the domain lower-cased.  The caller has
 * checked that both fit in MR_PATH_MAX. */
static void
path_fill(struct mr_path *out, const unsigned char *s, const struct span *l,
    const struct span *d)
{
	char *p = out->addr;
	size_t i;

	memcpy(p, s + l->off, l->len);
	p += l->len;
	*p++ = '@';
	for (i = 0; i < d->len; i++)
		*p++ = (char)lower(s[d->off + i]);
	*p = '\0';
	out->local_len = l->len;
	out->domain = out->addr + l->len + 1;
}

static int
path_fail(struct mr_path *out, const char **err, const char *why)
{
	path_clear(out);
	*err = why;
	return -1;
}

/* "<Postmaster>" (RFC 5321 4.1.1.3), any case, no domain. */
static int
is_postmaster(const struct scan *sc)
{
	return sc->len - sc->pos >= 11 &&
	    ascii_caseeq(sc->s + sc->pos, "postmaster>", 11);
}

/* What follows "<...>" must be the end or SP Mail-parameters; anything
 * else ("<user@local>@remote") is a malformed path, not parameters. */
static int
scan_after(struct scan *sc)
{
	int c;

	sc->pos++;
	c = peek(sc);
	if (c != -1 && c != ' ')
		return fail(sc, "garbage after path");
	return 0;
}

static int
path_parse(const char *s, size_t len, int allow_null, int allow_postmaster,
    int utf8, struct mr_path *out, const char **err)
{
	struct scan sc = { (const unsigned char *)s, len, 0, NULL, utf8, 0 };
	struct span local = { 0, 0 }, dom = { 0, 0 };
	size_t body;
	int c;

	path_clear(out);
	if (peek(&sc) != '<')
		return path_fail(out, err, "address must be enclosed in <>");
	body = ++sc.pos;
	if (peek(&sc) == '>') {
		if (!allow_null)
			return path_fail(out, err, "null path not allowed");
		if (scan_after(&sc) == -1)
			return path_fail(out, err, sc.err);
		out->null = 1;
		return (int)sc.pos;
	}
	if (allow_postmaster && is_postmaster(&sc)) {
		sc.pos += 10;
		if (scan_after(&sc) == -1)
			return path_fail(out, err, sc.err);
		out->postmaster = 1;
		memcpy(out->addr, "postmaster", 11);
		out->local_len = 10;
		out->domain = out->addr + 10;
		return (int)sc.pos;
	}
	if (peek(&sc) == '@' && scan_route(&sc) == -1)
		return path_fail(out, err, sc.err);
	if (scan_mailbox(&sc, &local, &dom) == -1)
		return path_fail(out, err, sc.err);
	if ((c = peek(&sc)) != '>') {
		if (c == -1)
			return path_fail(out, err, "missing > after address");
		if (c == '@')
			return path_fail(out, err, "more than one @");
		fail_at(&sc, "invalid character in domain");
		return path_fail(out, err, sc.err);
	}
	/* RFC 5321 4.5.3.1.3, source route included */
	if (sc.pos - body > MR_PATH_MAX)
		return path_fail(out, err, "path longer than 256 characters");
	if (scan_after(&sc) == -1)
		return path_fail(out, err, sc.err);
	path_fill(out, sc.s, &local, &dom);
	out->utf8 = sc.seen8;
	return (int)sc.pos;
}

int
mr_path_parse(const char *s, size_t len, int allow_null,
    int allow_postmaster, struct mr_path *out, const char **err)
{
	return path_parse(s, len, allow_null, allow_postmaster, 0, out, err);
}

int
mr_path_parse_utf8(const char *s, size_t len, int allow_null,
    int allow_postmaster, struct mr_path *out, const char **err)
{
	return path_parse(s, len, allow_null, allow_postmaster, 1, out, err);
}

static int
mailbox_parse(const char *s, size_t len, int utf8, struct mr_path *out,
    const char **err)
{
	struct scan sc = { (const unsigned char *)s, len, 0, NULL, utf8, 0 };
	struct span local = { 0, 0 }, dom = { 0, 0 };

	path_clear(out);
	if (len > MR_PATH_MAX)
		return path_fail(out, err,
		    "address longer than 256 characters");
	if (scan_mailbox(&sc, &local, &dom) == -1)
		return path_fail(out, err, sc.err);
	if (sc.pos != len) {
		if (peek(&sc) == '@')
			return path_fail(out, err, "more than one @");
		fail_at(&sc, "invalid character in domain");
		return path_fail(out, err, sc.err);
	}
	path_fill(out, sc.s, &local, &dom);
	out->utf8 = sc.seen8;
	return 0;
}

int
mr_mailbox_parse(const char *s, size_t len, struct mr_path *out,
    const char **err)
{
	return mailbox_parse(s, len, 0, out, err);
}

int
mr_mailbox_parse_utf8(const char *s, size_t len, struct mr_path *out,
    const char **err)
{
	return mailbox_parse(s, len, 1, out, err);
}

int
mr_domain_valid(const char *s, size_t len)
{
	struct scan sc = { (const unsigned char *)s, len, 0, NULL, 0, 0 };
	struct span sp;

	return scan_host(&sc, &sp) == 0 && sc.pos == len;
}
