/*
 * conf_parse.c - the meaning of mailroot.conf(5): statements to a
 * struct mr_config, IIS defaults for what the file omits, and the
 * cross-checks (references, duplicates, listen conflicts).
 *
 * Security: every value is checked for syntax and range before it is
 * stored; nothing here touches the file system beyond reading the file
 * (the daemons check that paths exist), and a configuration with any
 * error is never returned, so a daemon never runs half-configured.
 * Relay stays closed unless the file opens it, and opening it to the
 * world is warned about.
 */
#include "config.h"

#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "conf.h"
#include "conf_inert.h"
#include "conf_lex.h"
#include "log.h"

#define CONF_MAX_SIZE	(4u * 1024 * 1024)

#ifndef MR_LOCALSTATEDIR
#define MR_LOCALSTATEDIR	"/var"
#endif

/* Parse state kept beside each domain and server: positions for the
 * checks that can only run once the whole file is read. */
struct dstate {
	int	 tls_set, tls_line, tls_col;
	int	 ca_set, pins_set;	/* tls-ca-file, tls-fingerprint */
	int	 dane_set;
	int	 alias_line, alias_col;
};

struct sstate {
	int		 tls_set, tls_line, tls_col;
	int		 tlsl_line, tlsl_col;	/* first tls listen */
	int		 masqf_line, masqf_col; /* masquerade-from */
	int		 otls_line, otls_col;	/* outbound tls */
	struct dstate	*ds;
	size_t		 nds;
};

enum ref_kind { REF_PKI, REF_TABLE };

struct ref {
	enum ref_kind	 kind;
	const char	*name;		/* the statement's own argument text:
					 * a repeated setting frees the copy
					 * in the configuration */
	int		 line, col;
};

struct pc {
	struct mr_cf_diag	 d;
	struct mr_config	*cf;
	struct sstate		*ss;	/* one per server */
	size_t			 cur;	/* current server */
	size_t			 curdom;	/* current domain */
	struct ref		*refs;
	size_t			 nrefs;
};

typedef void kw_fn(struct pc *, const struct mr_cf_stmt *);

enum { NOBLOCK, BLOCK, OPTBLOCK };

struct kw {
	const char	*name;
	int		 min, max;	/* arguments after the keyword */
	int		 block;
	kw_fn		*fn;
};

static const char *const default_fields[] = {
	"date", "time", "c-ip", "cs-username", "s-sitename",
	"s-computername", "s-ip", "s-port", "cs-method", "cs-uri-query",
	"sc-status", "cs-bytes", "sc-bytes", "time-taken"
};

static const char *const known_fields[] = {
	"date", "time", "c-ip", "cs-username", "s-sitename",
	"s-computername", "s-ip", "s-port", "cs-method", "cs-uri-stem",
	"cs-uri-query", "sc-status", "sc-win32-status", "sc-bytes",
	"cs-bytes", "time-taken", "cs-version", "cs-host",
	"cs(User-Agent)", "cs(Cookie)", "cs(Referer)", NULL
};

static const char *const tls_in_names[] = {
	"none", "optional", "required", NULL
};
static const char *const tls_out_names[] = {
	"none", "opportunistic", "required", "verify", "fingerprint", NULL
};
static const char *const format_names[] = {
	"w3c", "ncsa", "iis", "none", NULL
};
static const char *const rotate_names[] = {
	"hourly", "daily", "weekly", "monthly", "size", NULL
};

/* ---- diagnostics ---- */

static void
aerr(struct pc *, const struct mr_cf_stmt *, size_t, const char *, ...)
    __attribute__((format(printf, 4, 5)));
static void
awarn(struct pc *, const struct mr_cf_stmt *, size_t, const char *, ...)
    __attribute__((format(printf, 4, 5)));

/* Reports an error (or a warning) at argument i of st. */
static void
aerr(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mr_cf_error(&pc->d, st->args[i].line, st->args[i].col, "%s", msg);
}

static void
awarn(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mr_cf_warn(&pc->d, st->args[i].line, st->args[i].col, "%s", msg);
}

#define ARG(st, i)	((st)->args[(i)].text)
#define KW(st)		ARG(st, 0)

static struct mr_server *
cur_server(struct pc *pc)
{
	return &pc->cf->servers[pc->cur];
}

static struct mr_domain *
cur_domain(struct pc *pc)
{
	return &cur_server(pc)->domains[pc->curdom];
}

/* ---- values ---- */

static void
set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = mr_xstrdup(v);
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static int
all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* RFC 1035 host name: letters, digits, hyphens; labels 1-63 bytes. */
static int
valid_hostname(const char *s)
{
	size_t len = strlen(s), lab = 0;
	const char *p;

	if (len == 0 || len > 253)
		return 0;
	for (p = s; *p; p++) {
		if (*p == '.') {
			if (lab == 0 || p[-1] == '-')
				return 0;
			lab = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-') {
			if (*p == '-' && lab == 0)
				return 0;
			if (++lab > 63)
				return 0;
		} else
			return 0;
	}
	return lab > 0 && p[-1] != '-';
}

static int
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 || *s == '-')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("._-", *s) == NULL)
			return 0;
	return 1;
}

static int
get_uint(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    unsigned min, unsigned max, unsigned *out)
{
	unsigned long long v;
	char *end;

	if (!all_digits(ARG(st, i))) {
		aerr(pc, st, i, "bad number \"%s\" for \"%s\"", ARG(st, i),
		    KW(st));
		return -1;
	}
	errno = 0;
	v = strtoull(ARG(st, i), &end, 10);
	if (errno == ERANGE || v < min || v > max) {
		aerr(pc, st, i, "\"%s\" must be between %u and %u", KW(st),
		    min, max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

/* Digits and an optional unit letter; mult maps the letter. */
static int
get_scaled(const char *s, const char *units, const uint64_t *mult,
    uint64_t max, uint64_t *out)
{
	unsigned long long v;
	const char *u;
	char *end;
	uint64_t m = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -2;
	if (*end != '\0') {
		if (end[1] != '\0' || (u = strchr(units, *end)) == NULL)
			return -1;
		m = mult[u - units];
	}
	if (v > max / m)
		return -2;
	*out = v * m;
	return 0;
}

static int
get_size(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    uint64_t *out)
{
	static const uint64_t mult[] = { 1024, 1024, 1048576, 1048576,
	    1073741824, 1073741824 };
	int r;

	r = get_scaled(ARG(st, i), "kKmMgG", mult, UINT64_MAX / 2, out);
	if (r == -1)
		aerr(pc, st, i, "bad size \"%s\" for \"%s\": use bytes or a "
		    "number with K, M or G", ARG(st, i), KW(st));
	else if (r == -2)
		aerr(pc, st, i, "size \"%s\" for \"%s\" is too large",
		    ARG(st, i), KW(st));
	return r == 0 ? 0 : -1;
}

static int
get_duration(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    unsigned *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400 };
	uint64_t v;
	int r;

	r = get_scaled(ARG(st, i), "smhd", mult, UINT_MAX, &v);
	if (r == -1)
		aerr(pc, st, i, "bad duration \"%s\" for \"%s\": use seconds "
		    "or a number with s, m, h or d", ARG(st, i), KW(st));
	else if (r == -2)
		aerr(pc, st, i, "duration \"%s\" for \"%s\" is too large",
		    ARG(st, i), KW(st));
	else
		*out = (unsigned)v;
	return r == 0 ? 0 : -1;
}

static int
get_enum(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    const char *const *names, int *out)
{
	struct mr_buf b;
	size_t n;

	for (n = 0; names[n] != NULL; n++)
		if (strcmp(ARG(st, i), names[n]) == 0) {
			*out = (int)n;
			return 0;
		}
	mr_buf_init(&b);
	for (n = 0; names[n] != NULL; n++)
		mr_buf_printf(&b, "%s%s", n == 0 ? "" :
		    names[n + 1] == NULL ? " or " : ", ", names[n]);
	aerr(pc, st, i, "bad value \"%s\" for \"%s\": expected %s",
	    ARG(st, i), KW(st), b.data);
	mr_buf_free(&b);
	return -1;
}

static int
get_bool(struct pc *pc, const struct mr_cf_stmt *st, size_t i, int *out)
{
	if (strcmp(ARG(st, i), "yes") != 0 && strcmp(ARG(st, i), "no") != 0) {
		aerr(pc, st, i, "bad boolean \"%s\" for \"%s\": expected yes "
		    "or no", ARG(st, i), KW(st));
		return -1;
	}
	*out = strcmp(ARG(st, i), "yes") == 0;
	return 0;
}

static int
get_path(struct pc *pc, const struct mr_cf_stmt *st, size_t i, char **dst)
{
	if (ARG(st, i)[0] != '/') {
		aerr(pc, st, i, "%s path \"%s\" is not absolute", KW(st),
		    ARG(st, i));
		return -1;
	}
	set_str(dst, ARG(st, i));
	return 0;
}

static int
get_domain(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    char **dst)
{
	if (!valid_hostname(ARG(st, i))) {
		aerr(pc, st, i, "bad domain name \"%s\"", ARG(st, i));
		return -1;
	}
	set_str(dst, ARG(st, i));
	lower(*dst);
	return 0;
}

static int
get_port(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    const char *port, unsigned *out)
{
	unsigned long v;

	v = all_digits(port) && strlen(port) <= 5 ? strtoul(port, NULL, 10)
	    : 0;
	if (v == 0 || v > 65535) {
		aerr(pc, st, i, "bad port \"%s\" in \"%s\": expected 1-65535",
		    port, ARG(st, i));
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

/*
 * "1.2.3.4:25" or "[::1]:25" into a socket address and its canonical
 * text.  IPv6 needs brackets so that the port is never ambiguous.
 */
static int
get_addrport(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    struct sockaddr_storage *ss, socklen_t *sslen, char **text)
{
	const char *s = ARG(st, i), *colon, *host;
	char ip[INET6_ADDRSTRLEN], canon[INET6_ADDRSTRLEN + 10];
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	size_t hlen;
	unsigned port;
	int v6 = s[0] == '[';

	host = s + v6;
	colon = v6 ? strstr(s, "]:") : strrchr(s, ':');
	if (colon == NULL || (!v6 && strchr(s, ':') != colon)) {
		aerr(pc, st, i, "bad address \"%s\": expected ADDR:PORT or "
		    "[IPv6]:PORT", s);
		return -1;
	}
	hlen = (size_t)(colon - host);
	if (hlen >= sizeof(ip)) {
		aerr(pc, st, i, "bad IP address in \"%s\"", s);
		return -1;
	}
	memcpy(ip, host, hlen);
	ip[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (v6 ? inet_pton(AF_INET6, ip, &sin6->sin6_addr) != 1 :
	    inet_pton(AF_INET, ip, &sin->sin_addr) != 1) {
		aerr(pc, st, i, "bad IP address \"%s\" in \"%s\"", ip, s);
		return -1;
	}
	if (get_port(pc, st, i, colon + 1 + v6, &port) == -1)
		return -1;
	if (v6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*sin6);
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(canon, sizeof(canon), "[%s]:%u", ip, port);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*sin);
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(canon, sizeof(canon), "%s:%u", ip, port);
	}
	set_str(text, canon);
	return 0;
}

/*
 * A relay target: "host", "host:port", "[1.2.3.4]", "[1.2.3.4]:587",
 * "[IPv6:2001:db8::1]".  Brackets mean an address: no MX lookup.
 */
static int
get_hostport(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    char **dst)
{
	const char *s = ARG(st, i), *close, *port = NULL;
	char host[256];
	unsigned char a[16];
	size_t hlen;
	unsigned p;

	if (s[0] == '[') {
		if ((close = strchr(s, ']')) == NULL)
			goto bad;
		hlen = (size_t)(close - s - 1);
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			goto bad;
		if (inet_pton(AF_INET, host, a) != 1 &&
		    inet_pton(AF_INET6, strncasecmp(host, "IPv6:", 5) == 0 ?
		    host + 5 : host, a) != 1)
			goto bad;
	} else {
		close = strchr(s, ':');
		hlen = close ? (size_t)(close - s) : strlen(s);
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (close)
			port = close + 1;
		if (!valid_hostname(host))
			goto bad;
	}
	if (port != NULL && get_port(pc, st, i, port, &p) == -1)
		return -1;
	set_str(dst, s);
	if (s[0] != '[')
		lower(*dst);
	return 0;
bad:
	aerr(pc, st, i, "bad host \"%s\": expected a host name or [IP], "
	    "with an optional :PORT", s);
	return -1;
}

/* ---- access rules ---- */

static struct mr_rule *
rule_add(struct mr_access *acc)
{
	struct mr_rule *r;

	acc->rules = mr_xreallocarray(acc->rules, acc->nrules + 1,
	    sizeof(*acc->rules));
	r = &acc->rules[acc->nrules++];
	memset(r, 0, sizeof(*r));
	return r;
}

/* Masks addr to prefix bits; returns 1 when host bits were set. */
static int
mask_addr(unsigned char *addr, int bytes, int prefix)
{
	int i, bits, changed = 0;
	unsigned char m;

	for (i = 0; i < bytes; i++) {
		bits = prefix - i * 8;
		m = bits >= 8 ? 0xff : bits <= 0 ? 0 :
		    (unsigned char)(0xff << (8 - bits));
		if (addr[i] & ~m)
			changed = 1;
		addr[i] &= m;
	}
	return changed;
}

/* A v4-mapped IPv6 rule is stored as the IPv4 rule it means. */
static void
unmap_rule(struct mr_rule *r)
{
	static const unsigned char pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	if (r->family != AF_INET6 || r->prefix < 96 ||
	    memcmp(r->addr, pfx, sizeof(pfx)) != 0)
		return;
	memmove(r->addr, r->addr + 12, 4);
	memset(r->addr + 4, 0, 12);
	r->family = AF_INET;
	r->prefix -= 96;
}

/* "IP" or "IP/PREFIX" at argument i. */
static int
get_net(struct pc *pc, const struct mr_cf_stmt *st, size_t i,
    struct mr_rule *r)
{
	char ip[INET6_ADDRSTRLEN];
	const char *s = ARG(st, i), *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	if (hlen >= sizeof(ip))
		goto badip;
	memcpy(ip, s, hlen);
	ip[hlen] = '\0';
	if (inet_pton(AF_INET, ip, r->addr) == 1)
		r->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, r->addr) == 1)
		r->family = AF_INET6;
	else
		goto badip;
	max = r->family == AF_INET ? 32 : 128;
	r->prefix = max;
	if (slash != NULL) {
		/* At most 3 digits: strtol cannot overflow. */
		long prefix = all_digits(slash + 1) && strlen(slash + 1) <= 3 ?
		    strtol(slash + 1, NULL, 10) : -1;

		if (prefix < 0 || prefix > max) {
			aerr(pc, st, i, "bad CIDR \"%s\": prefix must be 0-%d",
			    s, max);
			return -1;
		}
		r->prefix = (int)prefix;
	}
	if (mask_addr(r->addr, max / 8, r->prefix)) {
		inet_ntop(r->family, r->addr, ip, sizeof(ip));
		awarn(pc, st, i, "\"%s\" has host bits set; it means %s/%d",
		    s, ip, r->prefix);
	}
	unmap_rule(r);
	return 0;
badip:
	aerr(pc, st, i, "bad IP address \"%s\"", s);
	return -1;
}

/* "allow|deny IP|CIDR" or "allow|deny domain SUFFIX" from argument 1. */
static void
add_rule(struct pc *pc, const struct mr_cf_stmt *st, struct mr_access *acc,
    int relay)
{
	struct mr_rule r;
	const char *sfx;

	memset(&r, 0, sizeof(r));
	r.allow = strcmp(ARG(st, 1), "allow") == 0;
	r.line = st->line;
	if (strcmp(ARG(st, 2), "domain") == 0) {
		if (st->nargs != 4) {
			aerr(pc, st, st->nargs < 4 ? 2 : 4, "%s for \"%s %s "
			    "domain\"", st->nargs < 4 ? "missing argument" :
			    "too many arguments", KW(st), ARG(st, 1));
			return;
		}
		sfx = ARG(st, 3) + (ARG(st, 3)[0] == '.');
		if (!valid_hostname(sfx)) {
			aerr(pc, st, 3, "bad domain name \"%s\"", ARG(st, 3));
			return;
		}
		r.kind = MR_RULE_DOMAIN;
		r.domain = mr_xstrdup(ARG(st, 3));
		lower(r.domain);
	} else {
		if (st->nargs > 3) {
			aerr(pc, st, 3, "too many arguments for \"%s\"",
			    KW(st));
			return;
		}
		r.kind = MR_RULE_NET;
		if (get_net(pc, st, 2, &r) == -1)
			return;
		if (relay && r.allow && r.prefix == 0)
			awarn(pc, st, 2, "\"relay allow %s\" makes an open "
			    "relay: anyone may relay through this server",
			    ARG(st, 2));
	}
	*rule_add(acc) = r;
}

/* connection|relay allow|deny ... ; ... default allow|deny */
static void
access_stmt(struct pc *pc, const struct mr_cf_stmt *st, struct mr_access *acc,
    int relay)
{
	static const char *const verbs[] = { "allow", "deny", "default",
	    NULL };
	static const char *const dflt[] = { "deny", "allow", NULL };
	int v;

	if (get_enum(pc, st, 1, verbs, &v) == -1)
		return;
	if (v != 2) {
		add_rule(pc, st, acc, relay);
		return;
	}
	if (st->nargs > 3) {
		aerr(pc, st, 3, "too many arguments for \"%s default\"",
		    KW(st));
		return;
	}
	if (get_enum(pc, st, 2, dflt, &acc->default_allow) == -1)
		return;
	if (relay && acc->default_allow)
		awarn(pc, st, 2, "\"relay default allow\" makes an open "
		    "relay: anyone may relay through this server");
}

/* ---- references checked once the whole file is read ---- */

static void
add_ref(struct pc *pc, enum ref_kind kind, const char *name,
    const struct mr_cf_stmt *st, size_t i)
{
	struct ref *r;

	pc->refs = mr_xreallocarray(pc->refs, pc->nrefs + 1,
	    sizeof(*pc->refs));
	r = &pc->refs[pc->nrefs++];
	(void)name;
	r->kind = kind;
	r->name = st->args[i].text;
	r->line = st->args[i].line;
	r->col = st->args[i].col;
}

static void
check_refs(struct pc *pc)
{
	const struct mr_config *cf = pc->cf;
	const struct ref *r;
	size_t i, j;
	int found;

	for (i = 0; i < pc->nrefs; i++) {
		r = &pc->refs[i];
		found = 0;
		if (r->kind == REF_PKI) {
			for (j = 0; j < cf->npkis && !found; j++)
				found = strcmp(cf->pkis[j].name, r->name) == 0;
		} else {
			for (j = 0; j < cf->ntables && !found; j++)
				found = strcmp(cf->tables[j].name,
				    r->name) == 0;
		}
		if (!found)
			mr_cf_error(&pc->d, r->line, r->col, "unknown %s "
			    "\"%s\"", r->kind == REF_PKI ? "pki" : "table",
			    r->name);
	}
}

/* ---- dispatch ---- */

static void
too_many(struct pc *pc, const struct mr_cf_stmt *st, const struct kw *k)
{
	if (k->max > 1)
		aerr(pc, st, (size_t)k->max + 1, "too many arguments for "
		    "\"%s\" (at most %d)", k->name, k->max);
	else
		aerr(pc, st, (size_t)k->max + 1, "too many arguments for "
		    "\"%s\"", k->name);
}

static void
dispatch(struct pc *pc, const struct mr_cf_stmt *kids, size_t n,
    const struct kw *tab, const char *where)
{
	const struct mr_cf_stmt *st;
	const struct kw *k;
	size_t i, nargs;

	for (i = 0; i < n; i++) {
		st = &kids[i];
		for (k = tab; k->name != NULL; k++)
			if (strcmp(k->name, KW(st)) == 0)
				break;
		if (k->name == NULL) {
			aerr(pc, st, 0, "unknown keyword \"%s\" %s", KW(st),
			    where);
			continue;
		}
		nargs = st->nargs - 1;
		if (nargs < (size_t)k->min)
			aerr(pc, st, 0, "missing argument for \"%s\"",
			    k->name);
		else if (k->max >= 0 && nargs > (size_t)k->max)
			too_many(pc, st, k);
		else if (st->block && k->block == NOBLOCK)
			aerr(pc, st, 0, "\"%s\" does not take a block",
			    k->name);
		else if (!st->block && k->block == BLOCK)
			aerr(pc, st, 0, "\"%s\" needs a { block }", k->name);
		else
			k->fn(pc, st);
	}
}

/* ---- global statements ---- */

static void
kw_hostname(struct pc *pc, const struct mr_cf_stmt *st)
{
	if (!valid_hostname(ARG(st, 1))) {
		aerr(pc, st, 1, "bad hostname \"%s\"", ARG(st, 1));
		return;
	}
	set_str(&pc->cf->hostname, ARG(st, 1));
	lower(pc->cf->hostname);
}

static void
kw_user(struct pc *pc, const struct mr_cf_stmt *st)
{
	char **dst;

	if (!valid_name(ARG(st, 1))) {
		aerr(pc, st, 1, "bad %s name \"%s\"", strcmp(KW(st),
		    "control-group") == 0 ? "group" : "user", ARG(st, 1));
		return;
	}
	if (strcmp(KW(st), "user") == 0)
		dst = &pc->cf->user;
	else if (strcmp(KW(st), "smtpd-user") == 0)
		dst = &pc->cf->smtpd_user;
	else if (strcmp(KW(st), "deliver-user") == 0)
		dst = &pc->cf->deliver_user;
	else
		dst = &pc->cf->control_group;
	set_str(dst, ARG(st, 1));
}

static void
kw_chroot(struct pc *pc, const struct mr_cf_stmt *st)
{
	get_path(pc, st, 1, &pc->cf->chroot);
}

static void
kw_submit_socket(struct pc *pc, const struct mr_cf_stmt *st)
{
	get_path(pc, st, 1, &pc->cf->submit_socket);
	if (pc->cf->submit_socket != NULL &&
	    strlen(pc->cf->submit_socket) >= 100)
		aerr(pc, st, 1, "socket path too long (at most 99 bytes)");
}

/* submit-users / submit-sender-users: "any", or user names and
 * "@group" names. */
static void
kw_submit_users(struct pc *pc, const struct mr_cf_stmt *st)
{
	int sender = strcmp(KW(st), "submit-sender-users") == 0;
	char ***list = sender ? &pc->cf->sender_users : &pc->cf->submit_users;
	size_t *n = sender ? &pc->cf->nsender_users : &pc->cf->nsubmit_users;
	const char *a;
	size_t i;

	for (i = 1; i < st->nargs; i++) {
		a = ARG(st, i);
		if (strcmp(a, "any") == 0 && st->nargs == 2)
			continue;
		if (!valid_name(a[0] == '@' ? a + 1 : a)) {
			aerr(pc, st, i, "bad user or @group name \"%s\"",
			    a);
			return;
		}
	}
	for (i = 0; i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
	*n = 0;
	if (strcmp(ARG(st, 1), "any") == 0)
		return;
	*list = mr_xcalloc(st->nargs, sizeof(char *));
	for (i = 1; i < st->nargs; i++)
		(*list)[(*n)++] = mr_xstrdup(ARG(st, i));
}

/* An absolute path with a name after its last slash. */
static void
kw_control_socket(struct pc *pc, const struct mr_cf_stmt *st)
{
	const char *s = ARG(st, 1);

	if (s[0] != '/' || s[strlen(s) - 1] == '/' || strlen(s) > 200) {
		aerr(pc, st, 1, "bad control-socket \"%s\": expected an "
		    "absolute path to a file, at most 200 bytes", s);
		return;
	}
	set_str(&pc->cf->control_socket, s);
}

/* "system", "IP" or "IP@PORT": a forwarding resolver. */
static void
kw_mta_sts_cache(struct pc *pc, const struct mr_cf_stmt *st)
{
	get_path(pc, st, 1, &pc->cf->mta_sts_cache);
}

static void
kw_resolver(struct pc *pc, const struct mr_cf_stmt *st)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned char a[16];
	const char *s = ARG(st, 1), *at = strchr(s, '@');
	size_t hlen = at ? (size_t)(at - s) : strlen(s);
	unsigned port;

	if (strcmp(s, "system") != 0) {
		if (hlen >= sizeof(ip))
			goto bad;
		memcpy(ip, s, hlen);
		ip[hlen] = '\0';
		if (inet_pton(AF_INET, ip, a) != 1 &&
		    inet_pton(AF_INET6, ip, a) != 1)
			goto bad;
		if (at != NULL && get_port(pc, st, 1, at + 1, &port) == -1)
			return;
	}
	set_str(&pc->cf->resolver, s);
	return;
bad:
	aerr(pc, st, 1, "bad resolver \"%s\": expected system or IP@PORT", s);
}

/* dnssec-trust-anchor PATH | none: the anchors DNSSEC validation
 * starts from (DANE, RFC 7672); none turns validation off. */
static void
kw_trust_anchor(struct pc *pc, const struct mr_cf_stmt *st)
{
	const char *s = ARG(st, 1);

	if (strcmp(s, "none") != 0 && s[0] != '/') {
		aerr(pc, st, 1, "bad dnssec-trust-anchor \"%s\": expected an "
		    "absolute path or none", s);
		return;
	}
	set_str(&pc->cf->trust_anchor, s);
}

static void
kw_metrics(struct pc *pc, const struct mr_cf_stmt *st)
{
	if (strcmp(ARG(st, 1), "listen") != 0) {
		aerr(pc, st, 1, "bad value \"%s\" for \"metrics\": expected "
		    "listen", ARG(st, 1));
		return;
	}
	get_addrport(pc, st, 2, &pc->cf->metrics_addr,
	    &pc->cf->metrics_addrlen, &pc->cf->metrics_listen);
}

static void
kw_pki_cert(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_pki *p = &pc->cf->pkis[pc->cf->npkis - 1];

	get_path(pc, st, 1, strcmp(KW(st), "key") == 0 ? &p->key :
	    &p->certificate);
}

static const struct kw pki_kw[] = {
	{ "certificate", 1, 1, NOBLOCK, kw_pki_cert },
	{ "key", 1, 1, NOBLOCK, kw_pki_cert },
	{ NULL, 0, 0, 0, NULL }
};

static void
kw_pki(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_config *cf = pc->cf;
	struct mr_pki *p;
	size_t i;

	for (i = 0; i < cf->npkis; i++)
		if (strcmp(cf->pkis[i].name, ARG(st, 1)) == 0) {
			aerr(pc, st, 1, "duplicate pki \"%s\" (first at line "
			    "%d)", ARG(st, 1), cf->pkis[i].line);
			return;
		}
	cf->pkis = mr_xreallocarray(cf->pkis, cf->npkis + 1,
	    sizeof(*cf->pkis));
	p = &cf->pkis[cf->npkis++];
	memset(p, 0, sizeof(*p));
	p->name = mr_xstrdup(ARG(st, 1));
	p->line = st->line;
	dispatch(pc, st->kids, st->nkids, pki_kw, "in pki block");
	if (p->certificate == NULL)
		aerr(pc, st, 0, "pki \"%s\" has no certificate", p->name);
	if (p->key == NULL)
		aerr(pc, st, 0, "pki \"%s\" has no key", p->name);
}

/* table NAME TYPE:PATH */
static void
kw_table(struct pc *pc, const struct mr_cf_stmt *st)
{
	static const char *const types[] = { "db", "regex", "file", NULL };
	struct mr_config *cf = pc->cf;
	struct mr_table *t;
	const char *colon = strchr(ARG(st, 2), ':');
	size_t i;

	for (i = 0; i < cf->ntables; i++)
		if (strcmp(cf->tables[i].name, ARG(st, 1)) == 0) {
			aerr(pc, st, 1, "duplicate table \"%s\" (first at "
			    "line %d)", ARG(st, 1), cf->tables[i].line);
			return;
		}
	if (colon == NULL) {
		aerr(pc, st, 2, "bad table \"%s\": expected TYPE:PATH",
		    ARG(st, 2));
		return;
	}
	for (i = 0; types[i] != NULL; i++)
		if (strlen(types[i]) == (size_t)(colon - ARG(st, 2)) &&
		    strncmp(types[i], ARG(st, 2), strlen(types[i])) == 0)
			break;
	if (types[i] == NULL) {
		aerr(pc, st, 2, "bad table type \"%.*s\": expected db, regex "
		    "or file", (int)(colon - ARG(st, 2)), ARG(st, 2));
		return;
	}
	if (colon[1] != '/') {
		aerr(pc, st, 2, "table path \"%s\" is not absolute",
		    colon + 1);
		return;
	}
	cf->tables = mr_xreallocarray(cf->tables, cf->ntables + 1,
	    sizeof(*cf->tables));
	t = &cf->tables[cf->ntables++];
	t->name = mr_xstrdup(ARG(st, 1));
	t->type = mr_xstrdup(types[i]);
	t->path = mr_xstrdup(colon + 1);
	t->line = st->line;
}

/* ---- server: listen, identity, access ---- */

/* Servers may share an implicit TLS address: the client's SNI name
 * chooses among them (smtpd/tls.c), the first one is the default. */
static void
check_listen_dup(struct pc *pc, const struct mr_cf_stmt *st,
    const struct mr_listen *l)
{
	const char *text = l->text;
	const struct mr_server *s;
	size_t i, j;

	for (i = 0; i <= pc->cur; i++) {
		s = &pc->cf->servers[i];
		for (j = 0; j < s->nlistens; j++) {
			if (strcmp(s->listens[j].text, text) != 0)
				continue;
			if (i != pc->cur && l->tls && s->listens[j].tls &&
			    !l->proxy && !s->listens[j].proxy)
				continue;
			if (i == pc->cur)
				aerr(pc, st, 1, "duplicate listen address "
				    "\"%s\" (first at line %d)", text,
				    s->listens[j].line);
			else
				aerr(pc, st, 1, "listen address \"%s\" is "
				    "already used by server \"%s\" (line %d)",
				    text, s->name, s->listens[j].line);
			return;
		}
	}
}

/* listen ADDR:PORT [tls] [proxy-protocol] */
static void
kw_listen(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_server *srv = cur_server(pc);
	struct sstate *ss = &pc->ss[pc->cur];
	struct mr_listen l;
	size_t i;

	memset(&l, 0, sizeof(l));
	l.line = st->line;
	for (i = 2; i < st->nargs; i++) {
		if (strcmp(ARG(st, i), "tls") == 0)
			l.tls = 1;
		else if (strcmp(ARG(st, i), "proxy-protocol") == 0)
			l.proxy = 1;
		else {
			aerr(pc, st, i, "unknown listen option \"%s\": "
			    "expected tls or proxy-protocol", ARG(st, i));
			return;
		}
	}
	if (get_addrport(pc, st, 1, &l.addr, &l.addrlen, &l.text) == -1)
		return;
	check_listen_dup(pc, st, &l);
	if (l.tls && ss->tlsl_line == 0) {
		ss->tlsl_line = st->line;
		ss->tlsl_col = st->col;
	}
	srv->listens = mr_xreallocarray(srv->listens, srv->nlistens + 1,
	    sizeof(*srv->listens));
	srv->listens[srv->nlistens++] = l;
}

static void
kw_mailroot(struct pc *pc, const struct mr_cf_stmt *st)
{
	size_t i;

	if (ARG(st, 1)[0] != '/') {
		aerr(pc, st, 1, "mailroot \"%s\" is not an absolute path",
		    ARG(st, 1));
		return;
	}
	for (i = 0; i < pc->cur; i++)
		if (pc->cf->servers[i].mailroot != NULL &&
		    strcmp(pc->cf->servers[i].mailroot, ARG(st, 1)) == 0) {
			aerr(pc, st, 1, "mailroot \"%s\" is already used by "
			    "server \"%s\"", ARG(st, 1),
			    pc->cf->servers[i].name);
			return;
		}
	set_str(&cur_server(pc)->mailroot, ARG(st, 1));
}

static void
kw_fqdn(struct pc *pc, const struct mr_cf_stmt *st)
{
	if (!valid_hostname(ARG(st, 1))) {
		aerr(pc, st, 1, "bad hostname \"%s\"", ARG(st, 1));
		return;
	}
	set_str(&cur_server(pc)->fqdn, ARG(st, 1));
	lower(cur_server(pc)->fqdn);
}

static void
kw_srv_pki(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_server *srv = cur_server(pc);

	set_str(&srv->pki, ARG(st, 1));
	add_ref(pc, REF_PKI, srv->pki, st, 1);
}

static void
kw_connection(struct pc *pc, const struct mr_cf_stmt *st)
{
	access_stmt(pc, st, &cur_server(pc)->connection, 0);
}

static void
kw_relay(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_server *srv = cur_server(pc);

	if (strcmp(ARG(st, 1), "authenticated") != 0) {
		access_stmt(pc, st, &srv->relay, 1);
		return;
	}
	if (st->nargs > 3)
		aerr(pc, st, 3, "too many arguments for \"relay "
		    "authenticated\"");
	else
		get_bool(pc, st, 2, &srv->relay_authenticated);
}

static void
kw_tls_in(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct sstate *ss = &pc->ss[pc->cur];
	int v;

	if (get_enum(pc, st, 1, tls_in_names, &v) == -1)
		return;
	cur_server(pc)->tls = (enum mr_tls_in)v;
	ss->tls_set = 1;
	ss->tls_line = st->args[1].line;
	ss->tls_col = st->args[1].col;
}

/* ---- server: auth { } ---- */

static void
kw_mechanisms(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_auth *a = &cur_server(pc)->auth;
	size_t i;

	for (i = 1; i < st->nargs; i++) {
		if (strcasecmp(ARG(st, i), "plain") == 0)
			a->plain = 1;
		else if (strcasecmp(ARG(st, i), "login") == 0)
			a->login = 1;
		else
			aerr(pc, st, i, "unknown auth mechanism \"%s\": "
			    "expected plain or login", ARG(st, i));
	}
}

static void
kw_users(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_auth *a = &cur_server(pc)->auth;

	set_str(&a->users, ARG(st, 1));
	add_ref(pc, REF_TABLE, a->users, st, 1);
}

/* Dovecot's auth-client socket: a UNIX socket path (sun_path: < 108). */
static void
kw_dovecot(struct pc *pc, const struct mr_cf_stmt *st)
{
	const char *s = ARG(st, 1);

	if (s[0] != '/' || s[strlen(s) - 1] == '/' || strlen(s) > 100) {
		aerr(pc, st, 1, "bad dovecot socket \"%s\": expected an "
		    "absolute path to a socket, at most 100 bytes", s);
		return;
	}
	set_str(&cur_server(pc)->auth.dovecot, s);
}

static void
kw_require_tls(struct pc *pc, const struct mr_cf_stmt *st)
{
	get_bool(pc, st, 1, &cur_server(pc)->auth.require_tls);
}

static void
kw_received_auth(struct pc *pc, const struct mr_cf_stmt *st)
{
	get_bool(pc, st, 1, &cur_server(pc)->auth.received_auth);
}

static const struct kw auth_kw[] = {
	{ "mechanisms", 1, 2, NOBLOCK, kw_mechanisms },
	{ "users", 1, 1, NOBLOCK, kw_users },
	{ "dovecot", 1, 1, NOBLOCK, kw_dovecot },
	{ "require-tls", 1, 1, NOBLOCK, kw_require_tls },
	{ "received-auth", 1, 1, NOBLOCK, kw_received_auth },
	{ NULL, 0, 0, 0, NULL }
};

static void
kw_auth_in(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_auth *a = &cur_server(pc)->auth;

	dispatch(pc, st->kids, st->nkids, auth_kw, "in auth block");
	/* One backend: a name found in both would have two passwords. */
	if (a->users != NULL && a->dovecot != NULL)
		aerr(pc, st, 0, "auth: \"users\" and \"dovecot\" exclude "
		    "each other");
	if ((a->plain || a->login) && a->users == NULL && a->dovecot == NULL)
		aerr(pc, st, 0, "auth mechanisms need a users table or a "
		    "dovecot socket");
	/* A backend alone offers both: what IIS Basic clients send. */
	if ((a->users != NULL || a->dovecot != NULL) && !a->plain &&
	    !a->login)
		a->plain = a->login = 1;
}

/* ---- server: limits { } ---- */

static void
kw_limit(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_limits *l = &cur_server(pc)->limits;
	const char *k = KW(st);

	if (strcmp(k, "connections") == 0)
		get_uint(pc, st, 1, 0, UINT_MAX, &l->connections);
	else if (strcmp(k, "idle-timeout") == 0)
		get_duration(pc, st, 1, &l->idle_timeout);
	else if (strcmp(k, "message-size") == 0)
		get_size(pc, st, 1, &l->message_size);
	else if (strcmp(k, "session-size") == 0)
		get_size(pc, st, 1, &l->session_size);
	else if (strcmp(k, "messages-per-connection") == 0)
		get_uint(pc, st, 1, 1, UINT_MAX, &l->messages_per_connection);
	else if (strcmp(k, "client-connections") == 0)
		get_uint(pc, st, 1, 0, UINT_MAX, &l->client_connections);
	else if (strcmp(k, "client-connection-rate") == 0)
		get_uint(pc, st, 1, 0, UINT_MAX, &l->client_connection_rate);
	else
		get_uint(pc, st, 1, 1, UINT_MAX, &l->recipients_per_message);
}

static const struct kw limits_kw[] = {
	{ "connections", 1, 1, NOBLOCK, kw_limit },
	{ "idle-timeout", 1, 1, NOBLOCK, kw_limit },
	{ "message-size", 1, 1, NOBLOCK, kw_limit },
	{ "session-size", 1, 1, NOBLOCK, kw_limit },
	{ "messages-per-connection", 1, 1, NOBLOCK, kw_limit },
	{ "recipients-per-message", 1, 1, NOBLOCK, kw_limit },
	{ "client-connections", 1, 1, NOBLOCK, kw_limit },
	{ "client-connection-rate", 1, 1, NOBLOCK, kw_limit },
	{ NULL, 0, 0, 0, NULL }
};

static const struct mr_cf_stmt *
find_kid(const struct mr_cf_stmt *st, const char *name)
{
	size_t i;

	for (i = st->nkids; i > 0; i--)
		if (strcmp(st->kids[i - 1].args[0].text, name) == 0)
			return &st->kids[i - 1];
	return NULL;
}

static void
kw_limits(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_limits *l = &cur_server(pc)->limits;
	const struct mr_cf_stmt *at;

	dispatch(pc, st->kids, st->nkids, limits_kw, "in limits block");
	if (l->session_size >= l->message_size)
		return;
	if ((at = find_kid(st, "session-size")) == NULL &&
	    (at = find_kid(st, "message-size")) == NULL)
		at = st;
	aerr(pc, at, 0, "session-size (%llu bytes) is smaller than "
	    "message-size (%llu bytes)", (unsigned long long)l->session_size,
	    (unsigned long long)l->message_size);
}

/* ---- server: extensions { NAME yes|no } ---- */

static void
kw_extension(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_extensions *e = &cur_server(pc)->extensions;
	const char *k = KW(st);

	if (strcmp(k, "size") == 0)
		get_bool(pc, st, 1, &e->size);
	else if (strcmp(k, "pipelining") == 0)
		get_bool(pc, st, 1, &e->pipelining);
	else if (strcmp(k, "8bitmime") == 0)
		get_bool(pc, st, 1, &e->eightbitmime);
	else if (strcmp(k, "chunking") == 0)
		get_bool(pc, st, 1, &e->chunking);
	else if (strcmp(k, "smtputf8") == 0)
		get_bool(pc, st, 1, &e->smtputf8);
	else
		get_bool(pc, st, 1, &e->dsn);
}

static const struct kw extensions_kw[] = {
	{ "size", 1, 1, NOBLOCK, kw_extension },
	{ "pipelining", 1, 1, NOBLOCK, kw_extension },
	{ "8bitmime", 1, 1, NOBLOCK, kw_extension },
	{ "chunking", 1, 1, NOBLOCK, kw_extension },
	{ "dsn", 1, 1, NOBLOCK, kw_extension },
	{ "smtputf8", 1, 1, NOBLOCK, kw_extension },
	{ NULL, 0, 0, 0, NULL }
};

static void
kw_extensions(struct pc *pc, const struct mr_cf_stmt *st)
{
	dispatch(pc, st->kids, st->nkids, extensions_kw,
	    "in extensions block");
}

/* ---- server: other settings ---- */

static void
kw_misc(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_server *srv = cur_server(pc);
	const char *k = KW(st);

	if (strcmp(k, "reverse-dns-lookup") == 0)
		get_bool(pc, st, 1, &srv->reverse_dns_lookup);
	else if (strcmp(k, "hop-count") == 0)
		get_uint(pc, st, 1, 1, 256, &srv->hop_count);
	else if (strcmp(k, "badmail") == 0)
		get_bool(pc, st, 1, &srv->badmail);
	else if (strcmp(k, "masquerade-domain") == 0)
		get_domain(pc, st, 1, &srv->masquerade_domain);
	else if (strcmp(k, "masquerade-from") == 0 &&
	    get_bool(pc, st, 1, &srv->masquerade_from) == 0 &&
	    srv->masquerade_from) {
		pc->ss[pc->cur].masqf_line = st->args[1].line;
		pc->ss[pc->cur].masqf_col = st->args[1].col;
	}
}

static const char *const add_headers_names[] = {
	"local", "all", "none", NULL
};

static void
kw_add_missing_headers(struct pc *pc, const struct mr_cf_stmt *st)
{
	int v;

	if (get_enum(pc, st, 1, add_headers_names, &v) == 0)
		cur_server(pc)->add_missing_headers = (enum mr_add_headers)v;
}

static void
kw_header_checks(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_server *s = cur_server(pc);

	set_str(&s->header_checks, ARG(st, 1));
	add_ref(pc, REF_TABLE, s->header_checks, st, 1);
}

static void
kw_ndr_copy_to(struct pc *pc, const struct mr_cf_stmt *st)
{
	const char *s = ARG(st, 1), *at = strrchr(s, '@'), *p;

	for (p = s; at != NULL && p < at; p++)
		if ((unsigned char)*p <= ' ' || strchr("<>()[]\\,;:\"", *p))
			break;
	if (at == NULL || at == s || p != at || at - s > 64 ||
	    !valid_hostname(at + 1)) {
		aerr(pc, st, 1, "bad address \"%s\" for \"ndr-copy-to\": "
		    "expected user@domain", s);
		return;
	}
	set_str(&cur_server(pc)->ndr_copy_to, s);
}

/* ---- outbound TLS: tls-ca-file, tls-fingerprint ---- */

/* tls-ca-file PATH | system */
static void
get_ca_file(struct pc *pc, const struct mr_cf_stmt *st,
    struct mr_tls_trust *t)
{
	if (strcmp(ARG(st, 1), "system") == 0 && !st->args[1].quoted) {
		free(t->ca_file);
		t->ca_file = NULL;
	} else
		(void)get_path(pc, st, 1, &t->ca_file);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "sha256:" and 32 bytes in hex, optionally with a ':' between two
 * bytes, as "openssl x509 -fingerprint -sha256" prints them. */
static int
parse_pin(const char *s, struct mr_tls_pin *pin)
{
	size_t n = 0;
	int hi, lo;

	if (strncasecmp(s, "sha256:", 7) != 0)
		return -1;
	for (s += 7; *s != '\0' && n < MR_TLS_PIN_LEN; n++) {
		if ((hi = hexval(s[0])) == -1 || (lo = hexval(s[1])) == -1)
			return -1;
		pin->sha256[n] = (unsigned char)(hi << 4 | lo);
		s += 2;
		if (*s == ':' && n + 1 < MR_TLS_PIN_LEN)
			s++;
	}
	return n == MR_TLS_PIN_LEN && *s == '\0' ? 0 : -1;
}

/* tls-fingerprint sha256:HEX ...: replaces the list */
static int
get_pins(struct pc *pc, const struct mr_cf_stmt *st,
    struct mr_tls_trust *t)
{
	struct mr_tls_pin *pins;
	size_t i, n = st->nargs - 1;

	/* dispatch() held the count to 1..MR_TLS_PINS_MAX */
	if (n < 1 || n > MR_TLS_PINS_MAX)
		mr_panic("config: tls-fingerprint with %zu arguments", n);
	pins = mr_xcalloc(n, sizeof(*pins));
	for (i = 0; i < n; i++)
		if (parse_pin(ARG(st, i + 1), &pins[i]) == -1) {
			aerr(pc, st, i + 1, "bad fingerprint \"%s\": expected "
			    "sha256: and 64 hexadecimal digits",
			    ARG(st, i + 1));
			free(pins);
			return -1;
		}
	free(t->pins);
	t->pins = pins;
	t->npins = n;
	return 0;
}

static void
trust_copy(struct mr_tls_trust *dst, const struct mr_tls_trust *src,
    int ca, int pins)
{
	if (ca) {
		free(dst->ca_file);
		dst->ca_file = src->ca_file ? mr_xstrdup(src->ca_file) : NULL;
	}
	if (pins) {
		free(dst->pins);
		dst->pins = NULL;
		dst->npins = src->npins;
		if (src->npins > 0) {
			dst->pins = mr_xcalloc(src->npins, sizeof(*dst->pins));
			memcpy(dst->pins, src->pins,
			    src->npins * sizeof(*dst->pins));
		}
	}
}

static void
trust_free(struct mr_tls_trust *t)
{
	free(t->ca_file);
	free(t->pins);
}

/* ---- server: delivery { outbound { } } ---- */

/*
 * auth none | auth login|plain "USER" password-file "PATH"
 *           | auth xoauth2 "USER" token-file "PATH"
 */
static void
get_out_auth(struct pc *pc, const struct mr_cf_stmt *st,
    enum mr_out_auth *auth, char **user, char **pwfile)
{
	static const char *const names[] = { "none", "login", "plain",
	    "xoauth2", NULL };
	const char *file;
	int v;

	if (get_enum(pc, st, 1, names, &v) == -1)
		return;
	if (v == 0 && st->nargs > 2) {
		aerr(pc, st, 2, "too many arguments for \"auth none\"");
		return;
	}
	file = v == MR_AUTH_OUT_XOAUTH2 ? "token-file" : "password-file";
	if (v != 0 && (st->nargs != 5 || strcmp(ARG(st, 3), file) != 0)) {
		aerr(pc, st, 1, "\"auth %s\" needs \"USER %s PATH\"",
		    ARG(st, 1), file);
		return;
	}
	if (v != 0 && get_path(pc, st, 4, pwfile) == -1)
		return;
	*auth = (enum mr_out_auth)v;
	free(*user);
	*user = v != 0 ? mr_xstrdup(ARG(st, 2)) : NULL;
	if (v == 0) {
		free(*pwfile);
		*pwfile = NULL;
	}
}

/* rate N [per DURATION]: at most N messages per DURATION (1m) */
static void
get_rate(struct pc *pc, const struct mr_cf_stmt *st, unsigned *rate,
    unsigned *window)
{
	unsigned n, w = 60;

	if (st->nargs == 3) {
		aerr(pc, st, 2, "\"rate\" needs \"N\" or \"N per DURATION\"");
		return;
	}
	if (get_uint(pc, st, 1, 0, MR_RATE_MAX, &n) == -1)
		return;
	if (st->nargs == 4) {
		if (strcmp(ARG(st, 2), "per") != 0) {
			aerr(pc, st, 2, "expected \"per\" after \"rate %s\"",
			    ARG(st, 1));
			return;
		}
		if (get_duration(pc, st, 3, &w) == -1)
			return;
		if (w == 0 || w > 86400) {
			aerr(pc, st, 3, "the \"rate\" window must be between "
			    "1s and 1d");
			return;
		}
	}
	*rate = n;
	*window = w;
}

/*
 * The timeouts of each step of a session (RFC 5321 4.5.3.2): 1 if st
 * sets one (or was refused), 0 if it is another keyword.
 */
static int
outbound_timeout(struct pc *pc, const struct mr_cf_stmt *st,
    struct mr_outbound *o)
{
	static const struct {
		const char	*name;
		size_t		 off;
	} t[] = {
		{ "timeout", offsetof(struct mr_outbound, timeout) },
		{ "connect-timeout", offsetof(struct mr_outbound,
		    connect_timeout) },
		{ "greeting-timeout", offsetof(struct mr_outbound,
		    greeting_timeout) },
		{ "command-timeout", offsetof(struct mr_outbound,
		    command_timeout) },
		{ "data-timeout", offsetof(struct mr_outbound, data_timeout) },
		{ "block-timeout", offsetof(struct mr_outbound,
		    block_timeout) },
		{ "dot-timeout", offsetof(struct mr_outbound, dot_timeout) },
	};
	size_t i;
	unsigned v;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strcmp(KW(st), t[i].name) != 0)
			continue;
		if (get_duration(pc, st, 1, &v) == -1)
			return 1;
		if (v == 0)
			aerr(pc, st, 1, "\"%s\" must be at least 1s", t[i].name);
		else
			memcpy((char *)o + t[i].off, &v, sizeof(v));
		return 1;
	}
	return 0;
}

static void
kw_outbound_set(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_outbound *o = &cur_server(pc)->delivery.outbound;
	const char *k = KW(st);
	int v;

	if (outbound_timeout(pc, st, o))
		return;
	if (strcmp(k, "rate") == 0)
		get_rate(pc, st, &o->rate, &o->rate_window);
	else if (strcmp(k, "connections") == 0)
		get_uint(pc, st, 1, 1, UINT_MAX, &o->connections);
	else if (strcmp(k, "per-domain") == 0)
		get_uint(pc, st, 1, 1, UINT_MAX, &o->per_domain);
	else if (strcmp(k, "port") == 0)
		get_uint(pc, st, 1, 1, 65535, &o->port);
	else if (strcmp(k, "esmtp") == 0)
		get_bool(pc, st, 1, &o->esmtp);
	else if (strcmp(k, "dane") == 0)
		get_bool(pc, st, 1, &o->dane);
	else if (strcmp(k, "mta-sts") == 0)
		get_bool(pc, st, 1, &o->mta_sts);
	else if (strcmp(k, "auth") == 0)
		get_out_auth(pc, st, &o->auth, &o->auth_user,
		    &o->auth_password_file);
	else if (strcmp(k, "tls-ca-file") == 0)
		get_ca_file(pc, st, &o->trust);
	else if (strcmp(k, "tls-fingerprint") == 0)
		(void)get_pins(pc, st, &o->trust);
	else if (get_enum(pc, st, 1, tls_out_names, &v) == 0) {
		o->tls = (enum mr_tls_out)v;
		pc->ss[pc->cur].otls_line = st->args[1].line;
		pc->ss[pc->cur].otls_col = st->args[1].col;
	}
}

static const struct kw outbound_kw[] = {
	{ "connections", 1, 1, NOBLOCK, kw_outbound_set },
	{ "per-domain", 1, 1, NOBLOCK, kw_outbound_set },
	{ "port", 1, 1, NOBLOCK, kw_outbound_set },
	{ "timeout", 1, 1, NOBLOCK, kw_outbound_set },
	{ "connect-timeout", 1, 1, NOBLOCK, kw_outbound_set },
	{ "greeting-timeout", 1, 1, NOBLOCK, kw_outbound_set },
	{ "command-timeout", 1, 1, NOBLOCK, kw_outbound_set },
	{ "data-timeout", 1, 1, NOBLOCK, kw_outbound_set },
	{ "block-timeout", 1, 1, NOBLOCK, kw_outbound_set },
	{ "dot-timeout", 1, 1, NOBLOCK, kw_outbound_set },
	{ "rate", 1, 3, NOBLOCK, kw_outbound_set },
	{ "tls", 1, 1, NOBLOCK, kw_outbound_set },
	{ "tls-ca-file", 1, 1, NOBLOCK, kw_outbound_set },
	{ "tls-fingerprint", 1, MR_TLS_PINS_MAX, NOBLOCK, kw_outbound_set },
	{ "auth", 1, 4, NOBLOCK, kw_outbound_set },
	{ "esmtp", 1, 1, NOBLOCK, kw_outbound_set },
	{ "dane", 1, 1, NOBLOCK, kw_outbound_set },
	{ "mta-sts", 1, 1, NOBLOCK, kw_outbound_set },
	{ NULL, 0, 0, 0, NULL }
};

static void
kw_outbound(struct pc *pc, const struct mr_cf_stmt *st)
{
	dispatch(pc, st->kids, st->nkids, outbound_kw, "in outbound block");
}

static void
kw_retry(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_delivery *dl = &cur_server(pc)->delivery;
	unsigned v[MR_RETRY_MAX];
	size_t i;

	/* dispatch() held the count to retry's 1..MR_RETRY_MAX. */
	if (st->nargs < 2 || st->nargs - 1 > MR_RETRY_MAX)
		mr_panic("config: retry with %zu arguments", st->nargs - 1);
	for (i = 1; i < st->nargs; i++)
		if (get_duration(pc, st, i, &v[i - 1]) == -1)
			return;
	memcpy(dl->retry, v, (st->nargs - 1) * sizeof(v[0]));
	dl->nretry = st->nargs - 1;
}

/* delay-notify|expire [outbound D] [local D] */
static void
kw_outlocal(struct pc *pc, const struct mr_cf_stmt *st)
{
	static const char *const which[] = { "outbound", "local", NULL };
	struct mr_delivery *dl = &cur_server(pc)->delivery;
	int notify = strcmp(KW(st), "delay-notify") == 0, w;
	size_t i;
	unsigned *dst;

	if (st->nargs % 2 == 0) {
		aerr(pc, st, st->nargs - 1, "missing duration after \"%s\"",
		    ARG(st, st->nargs - 1));
		return;
	}
	for (i = 1; i + 1 < st->nargs; i += 2) {
		if (get_enum(pc, st, i, which, &w) == -1)
			return;
		if (notify)
			dst = w ? &dl->delay_notify_local :
			    &dl->delay_notify_outbound;
		else
			dst = w ? &dl->expire_local : &dl->expire_outbound;
		if (get_duration(pc, st, i + 1, dst) == -1)
			return;
	}
}

static void
smart_hosts_free(struct mr_delivery *dl)
{
	size_t i;

	free(dl->smart_host);
	dl->smart_host = NULL;
	for (i = 0; i < dl->nsmart_host_next; i++)
		free(dl->smart_host_next[i]);
	dl->nsmart_host_next = 0;
}

/* smart-host none | smart-host HOST [HOST ...]: tried in order */
static void
kw_smart_host(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_delivery *dl = &cur_server(pc)->delivery;
	char *h[MR_SMART_HOSTS_MAX] = { NULL };
	size_t i, n = st->nargs - 1;

	/* dispatch() held the count to 1..MR_SMART_HOSTS_MAX */
	if (n < 1 || n > MR_SMART_HOSTS_MAX)
		mr_panic("config: smart-host with %zu arguments", n);
	if (strcmp(ARG(st, 1), "none") == 0 && !st->args[1].quoted) {
		if (n > 1)
			aerr(pc, st, 2, "too many arguments for "
			    "\"smart-host none\"");
		else
			smart_hosts_free(dl);
		return;
	}
	for (i = 0; i < n; i++)
		if (get_hostport(pc, st, i + 1, &h[i]) == -1)
			goto fail;
	smart_hosts_free(dl);
	dl->smart_host = h[0];
	for (i = 1; i < n; i++)
		dl->smart_host_next[dl->nsmart_host_next++] = h[i];
	return;
fail:
	for (i = 0; i < n; i++)
		free(h[i]);
}

static void
kw_first_direct(struct pc *pc, const struct mr_cf_stmt *st)
{
	get_bool(pc, st, 1, &cur_server(pc)->delivery.smart_host_first_direct);
}

static const struct kw delivery_kw[] = {
	{ "retry", 1, MR_RETRY_MAX, NOBLOCK, kw_retry },
	{ "delay-notify", 2, 4, NOBLOCK, kw_outlocal },
	{ "expire", 2, 4, NOBLOCK, kw_outlocal },
	{ "smart-host", 1, MR_SMART_HOSTS_MAX, NOBLOCK, kw_smart_host },
	{ "smart-host-first-direct", 1, 1, NOBLOCK, kw_first_direct },
	{ "outbound", 0, 0, BLOCK, kw_outbound },
	{ NULL, 0, 0, 0, NULL }
};

static void
kw_delivery(struct pc *pc, const struct mr_cf_stmt *st)
{
	dispatch(pc, st->kids, st->nkids, delivery_kw, "in delivery block");
}

/* ---- server: log { } ---- */

static void
kw_fields(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_logcfg *lg = &cur_server(pc)->log;
	size_t i, j;

	for (i = 1; i < st->nargs; i++) {
		for (j = 0; known_fields[j] != NULL; j++)
			if (strcasecmp(known_fields[j], ARG(st, i)) == 0)
				break;
		if (known_fields[j] == NULL) {
			aerr(pc, st, i, "unknown log field \"%s\"",
			    ARG(st, i));
			return;
		}
	}
	for (i = 0; i < lg->nfields; i++)
		free(lg->fields[i]);
	lg->fields = mr_xreallocarray(lg->fields, st->nargs - 1,
	    sizeof(*lg->fields));
	lg->nfields = 0;
	for (i = 1; i < st->nargs; i++) {
		for (j = 0; strcasecmp(known_fields[j], ARG(st, i)) != 0; j++)
			;
		lg->fields[lg->nfields++] = mr_xstrdup(known_fields[j]);
	}
}

static void
kw_log_set(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_logcfg *lg = &cur_server(pc)->log;
	int v;

	if (strcmp(KW(st), "directory") == 0)
		get_path(pc, st, 1, &lg->directory);
	else if (strcmp(KW(st), "format") == 0) {
		if (get_enum(pc, st, 1, format_names, &v) == 0)
			lg->format = (enum mr_log_format)v;
	} else if (get_enum(pc, st, 1, rotate_names, &v) == 0) {
		if ((v == MR_ROTATE_SIZE) != (st->nargs == 3))
			aerr(pc, st, v == MR_ROTATE_SIZE ? 1 : 2, v ==
			    MR_ROTATE_SIZE ? "\"rotate size\" needs a size" :
			    "too many arguments for \"rotate\"");
		else if (v != MR_ROTATE_SIZE ||
		    get_size(pc, st, 2, &lg->rotate_size) == 0)
			lg->rotate = (enum mr_rotate)v;
	}
}

static const struct kw log_kw[] = {
	{ "format", 1, 1, NOBLOCK, kw_log_set },
	{ "fields", 1, -1, NOBLOCK, kw_fields },
	{ "directory", 1, 1, NOBLOCK, kw_log_set },
	{ "rotate", 1, 2, NOBLOCK, kw_log_set },
	{ NULL, 0, 0, 0, NULL }
};

static void
kw_log(struct pc *pc, const struct mr_cf_stmt *st)
{
	dispatch(pc, st->kids, st->nkids, log_kw, "in log block");
}

/* ---- server: domains ---- */

/* queued resolves no names: an LMTP server over TCP is an IP address
 * ("[1.2.3.4]:24", "[IPv6:::1]", "1.2.3.4:24"; get_hostport checks the
 * port). */
static int
lmtp_ip(const char *s)
{
	unsigned char a[16];
	char host[256];
	const char *end;
	size_t n;

	if (s[0] == '[') {
		s++;
		if ((end = strchr(s, ']')) == NULL)
			return 0;
		if (strncasecmp(s, "IPv6:", 5) == 0)
			s += 5;
	} else if ((end = strchr(s, ':')) == NULL)
		end = s + strlen(s);
	if (end < s || (n = (size_t)(end - s)) >= sizeof(host))
		return 0;
	memcpy(host, s, n);
	host[n] = '\0';
	return inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1;
}

/* %d, %u and %% only: maildir.c expands nothing else. */
static int
maildir_tmpl_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '%' && (++s, *s != 'd' && *s != 'u' && *s != '%'))
			return 0;
	return 1;
}

static void
kw_deliver(struct pc *pc, const struct mr_cf_stmt *st)
{
	static const char *const names[] = { "drop", "lmtp", "maildir",
	    NULL };
	struct mr_domain *d = cur_domain(pc);
	int v;

	if (get_enum(pc, st, 1, names, &v) == -1)
		return;
	if ((v == MR_DELIVER_DROP) != (st->nargs == 2)) {
		aerr(pc, st, v == MR_DELIVER_DROP ? 2 : 1, v ==
		    MR_DELIVER_DROP ? "too many arguments for \"deliver "
		    "drop\"" : "\"deliver %s\" needs a path", ARG(st, 1));
		return;
	}
	if (v == MR_DELIVER_MAILDIR && !maildir_tmpl_ok(ARG(st, 2))) {
		aerr(pc, st, 2, "a Maildir path may use %%d, %%u and %%%% "
		    "only");
		return;
	}
	if (v == MR_DELIVER_LMTP && ARG(st, 2)[0] != '/' &&
	    !lmtp_ip(ARG(st, 2))) {
		aerr(pc, st, 2, "an LMTP server is a UNIX socket path or an "
		    "IP address with a port, such as [127.0.0.1]:24");
		return;
	}
	if (v == MR_DELIVER_MAILDIR && get_path(pc, st, 2,
	    &d->deliver_arg) == -1)
		return;
	if (v == MR_DELIVER_LMTP && (ARG(st, 2)[0] == '/' ?
	    get_path(pc, st, 2, &d->deliver_arg) :
	    get_hostport(pc, st, 2, &d->deliver_arg)) == -1)
		return;
	if (v == MR_DELIVER_DROP) {
		free(d->deliver_arg);
		d->deliver_arg = NULL;
	}
	d->deliver = (enum mr_deliver)v;
}

static void
kw_aliases(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_domain *d = cur_domain(pc);

	set_str(&d->aliases, ARG(st, 1));
	add_ref(pc, REF_TABLE, d->aliases, st, 1);
}

static void
kw_recipients(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_domain *d = cur_domain(pc);

	set_str(&d->recipients, ARG(st, 1));
	add_ref(pc, REF_TABLE, d->recipients, st, 1);
}

static const struct kw local_kw[] = {
	{ "deliver", 1, 2, NOBLOCK, kw_deliver },
	{ "aliases", 1, 1, NOBLOCK, kw_aliases },
	{ "recipients", 1, 1, NOBLOCK, kw_recipients },
	{ NULL, 0, 0, 0, NULL }
};

static void
kw_remote_set(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_domain *d = cur_domain(pc);
	struct dstate *ds = &pc->ss[pc->cur].ds[pc->curdom];
	const char *k = KW(st);
	int v;

	if (strcmp(k, "relay") == 0)
		get_bool(pc, st, 1, &d->relay);
	else if (strcmp(k, "esmtp") == 0)
		get_bool(pc, st, 1, &d->esmtp);
	else if (strcmp(k, "hold-for-etrn") == 0)
		get_bool(pc, st, 1, &d->hold_for_etrn);
	else if (strcmp(k, "dane") == 0) {
		get_bool(pc, st, 1, &d->dane);
		ds->dane_set = 1;
	} else if (strcmp(k, "rate") == 0)
		get_rate(pc, st, &d->rate, &d->rate_window);
	else if (strcmp(k, "auth") == 0)
		get_out_auth(pc, st, &d->auth, &d->auth_user,
		    &d->auth_password_file);
	else if (strcmp(k, "tls-ca-file") == 0) {
		get_ca_file(pc, st, &d->trust);
		ds->ca_set = 1;
	} else if (strcmp(k, "tls-fingerprint") == 0) {
		if (get_pins(pc, st, &d->trust) == 0)
			ds->pins_set = 1;
	} else if (get_enum(pc, st, 1, tls_out_names, &v) == 0) {
		d->tls = (enum mr_tls_out)v;
		ds->tls_set = 1;
		ds->tls_line = st->args[1].line;
		ds->tls_col = st->args[1].col;
	}
}

static void
kw_route(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_domain *d = cur_domain(pc);

	if (strcmp(ARG(st, 1), "dns") == 0 && !st->args[1].quoted) {
		free(d->route);
		d->route = NULL;
	} else
		get_hostport(pc, st, 1, &d->route);
}

static void
kw_etrn_allow(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_domain *d = cur_domain(pc);
	struct mr_rule r;
	size_t i;

	for (i = 1; i < st->nargs; i++) {
		memset(&r, 0, sizeof(r));
		r.allow = 1;
		r.kind = MR_RULE_NET;
		r.line = st->line;
		if (get_net(pc, st, i, &r) == 0)
			*rule_add(&d->etrn_allow) = r;
	}
}

static const struct kw remote_kw[] = {
	{ "relay", 1, 1, NOBLOCK, kw_remote_set },
	{ "route", 1, 1, NOBLOCK, kw_route },
	{ "esmtp", 1, 1, NOBLOCK, kw_remote_set },
	{ "tls", 1, 1, NOBLOCK, kw_remote_set },
	{ "tls-ca-file", 1, 1, NOBLOCK, kw_remote_set },
	{ "tls-fingerprint", 1, MR_TLS_PINS_MAX, NOBLOCK, kw_remote_set },
	{ "auth", 1, 4, NOBLOCK, kw_remote_set },
	{ "hold-for-etrn", 1, 1, NOBLOCK, kw_remote_set },
	{ "dane", 1, 1, NOBLOCK, kw_remote_set },
	{ "rate", 1, 3, NOBLOCK, kw_remote_set },
	{ "etrn-allow", 1, -1, NOBLOCK, kw_etrn_allow },
	{ NULL, 0, 0, 0, NULL }
};

static void
domain_init(struct mr_domain *d, const char *name, int line)
{
	memset(d, 0, sizeof(*d));
	d->name = mr_xstrdup(name);
	lower(d->name);
	d->line = line;
	d->deliver = MR_DELIVER_DROP;
	d->esmtp = 1;
	d->tls = MR_TLS_OUT_OPPORTUNISTIC;
	d->dane = 1;
	d->auth = MR_AUTH_OUT_NONE;
}

static struct mr_domain *
domain_add(struct pc *pc, const char *name, int line)
{
	struct mr_server *srv = cur_server(pc);
	struct sstate *ss = &pc->ss[pc->cur];

	srv->domains = mr_xreallocarray(srv->domains, srv->ndomains + 1,
	    sizeof(*srv->domains));
	ss->ds = mr_xreallocarray(ss->ds, srv->ndomains + 1,
	    sizeof(*ss->ds));
	memset(&ss->ds[srv->ndomains], 0, sizeof(*ss->ds));
	ss->nds = srv->ndomains + 1;
	pc->curdom = srv->ndomains;
	domain_init(&srv->domains[srv->ndomains], name, line);
	return &srv->domains[srv->ndomains++];
}

/*
 * A domain of the "domain" statement: a host name, or a domain in UTF-8
 * (U-labels, for SMTPUTF8) as addr.c takes it in an address.  Nothing
 * converts between U-labels and A-labels: matching is by bytes after ASCII
 * lower-casing.
 */
static int
valid_mail_domain(const char *s)
{
	char buf[MR_DOMAIN_MAX + 3];
	struct mr_path p;
	const char *err;
	int n;

	if (valid_hostname(s))
		return 1;
	n = snprintf(buf, sizeof(buf), "x@%s", s);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return 0;
	return mr_mailbox_parse_utf8(buf, (size_t)n, &p, &err) == 0 &&
	    p.utf8 && strcasecmp(p.domain, s) == 0;
}

/* domain NAME local [{ }] | NAME alias-of OTHER | NAME remote [{ }] */
static void
kw_domain(struct pc *pc, const struct mr_cf_stmt *st)
{
	static const char *const kinds[] = { "local", "alias-of", "remote",
	    NULL };
	const struct mr_domain *old;
	struct mr_domain *d;
	int k;

	if (!valid_mail_domain(ARG(st, 1))) {
		aerr(pc, st, 1, "bad domain name \"%s\"", ARG(st, 1));
		return;
	}
	if (get_enum(pc, st, 2, kinds, &k) == -1)
		return;
	if ((k == MR_DOMAIN_ALIAS) != (st->nargs == 4)) {
		aerr(pc, st, k == MR_DOMAIN_ALIAS ? 2 : 3, k ==
		    MR_DOMAIN_ALIAS ? "missing argument for \"alias-of\"" :
		    "too many arguments for \"domain\"");
		return;
	}
	if (k == MR_DOMAIN_ALIAS && (st->block ||
	    !valid_mail_domain(ARG(st, 3)))) {
		aerr(pc, st, 3, st->block ? "\"alias-of\" does not take a "
		    "block" : "bad domain name \"%s\"", ARG(st, 3));
		return;
	}
	if ((old = mr_config_domain(cur_server(pc), ARG(st, 1))) != NULL) {
		aerr(pc, st, 1, "duplicate domain \"%s\" in server \"%s\" "
		    "(first at line %d)", old->name, cur_server(pc)->name,
		    old->line);
		return;
	}
	d = domain_add(pc, ARG(st, 1), st->line);
	d->kind = (enum mr_domain_kind)k;
	if (k == MR_DOMAIN_ALIAS) {
		set_str(&d->alias_of, ARG(st, 3));
		lower(d->alias_of);
		pc->ss[pc->cur].ds[pc->curdom].alias_line = st->args[3].line;
		pc->ss[pc->cur].ds[pc->curdom].alias_col = st->args[3].col;
	} else if (k == MR_DOMAIN_LOCAL)
		dispatch(pc, st->kids, st->nkids, local_kw,
		    "in local domain block");
	else
		dispatch(pc, st->kids, st->nkids, remote_kw,
		    "in remote domain block");
}

/* ---- server: dkim DOMAIN { ... } ---- */

static struct mr_dkim *
cur_dkim(struct pc *pc)
{
	struct mr_server *s = cur_server(pc);

	return &s->dkims[s->ndkims - 1];
}

static void
kw_dkim_selector(struct pc *pc, const struct mr_cf_stmt *st)
{
	if (!valid_hostname(ARG(st, 1))) {
		aerr(pc, st, 1, "bad selector \"%s\"", ARG(st, 1));
		return;
	}
	set_str(&cur_dkim(pc)->selector, ARG(st, 1));
	lower(cur_dkim(pc)->selector);
}

static void
kw_dkim_key(struct pc *pc, const struct mr_cf_stmt *st)
{
	get_path(pc, st, 1, &cur_dkim(pc)->key);
}

/* HEADER/BODY, each relaxed or simple; one word names both. */
static void
kw_dkim_canon(struct pc *pc, const struct mr_cf_stmt *st)
{
	static const char *const names[] = { "relaxed", "simple", NULL };
	const char *a = ARG(st, 1), *slash = strchr(a, '/');
	size_t hl = slash != NULL ? (size_t)(slash - a) : strlen(a);
	const char *b = slash != NULL ? slash + 1 : a;
	int h = -1, bd = -1, i;

	for (i = 0; names[i] != NULL; i++) {
		if (strlen(names[i]) == hl && strncmp(a, names[i], hl) == 0)
			h = i;
		if (strcmp(b, names[i]) == 0)
			bd = i;
	}
	if (h == -1 || bd == -1) {
		aerr(pc, st, 1, "bad canonicalization \"%s\": expected "
		    "HEADER/BODY, each relaxed or simple", a);
		return;
	}
	cur_dkim(pc)->hcanon = h;
	cur_dkim(pc)->bcanon = bd;
}

/* The fields to sign; From is always signed (RFC 6376 5.4). */
static void
kw_dkim_headers(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_dkim *d = cur_dkim(pc);
	const char *p;
	size_t i;

	for (i = 1; i < st->nargs; i++) {
		for (p = ARG(st, i); *p > 32 && *p < 127 && *p != ':'; p++)
			;
		if (*p != '\0' || p == ARG(st, i)) {
			aerr(pc, st, i, "bad header field name \"%s\"",
			    ARG(st, i));
			return;
		}
	}
	for (i = 0; i < d->nheaders; i++)
		free(d->headers[i]);
	free(d->headers);
	d->headers = mr_xcalloc(st->nargs + 1, sizeof(char *));
	d->nheaders = 0;
	for (i = 1; i < st->nargs; i++) {
		d->headers[d->nheaders] = mr_xstrdup(ARG(st, i));
		lower(d->headers[d->nheaders++]);
	}
	for (i = 0; i < d->nheaders; i++)
		if (strcmp(d->headers[i], "from") == 0)
			return;
	d->headers[d->nheaders++] = mr_xstrdup("from");
}

static const struct kw dkim_kw[] = {
	{ "selector", 1, 1, NOBLOCK, kw_dkim_selector },
	{ "key", 1, 1, NOBLOCK, kw_dkim_key },
	{ "canonicalization", 1, 1, NOBLOCK, kw_dkim_canon },
	{ "headers", 1, MR_DKIM_HEADERS_MAX - 1, NOBLOCK, kw_dkim_headers },
	{ NULL, 0, 0, 0, NULL }
};

static void
kw_dkim(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_server *s = cur_server(pc);
	struct mr_dkim *d;
	size_t i;

	if (!valid_hostname(ARG(st, 1))) {
		aerr(pc, st, 1, "bad domain name \"%s\"", ARG(st, 1));
		return;
	}
	s->dkims = mr_xreallocarray(s->dkims, s->ndkims + 1,
	    sizeof(*s->dkims));
	d = &s->dkims[s->ndkims++];
	memset(d, 0, sizeof(*d));
	d->domain = mr_xstrdup(ARG(st, 1));
	lower(d->domain);
	d->line = st->line;
	dispatch(pc, st->kids, st->nkids, dkim_kw, "in dkim block");
	if (d->selector == NULL)
		aerr(pc, st, 0, "dkim \"%s\" has no selector", d->domain);
	if (d->key == NULL)
		aerr(pc, st, 0, "dkim \"%s\" has no key", d->domain);
	for (i = 0; d->selector != NULL && i + 1 < s->ndkims; i++)
		if (strcmp(s->dkims[i].domain, d->domain) == 0 &&
		    s->dkims[i].selector != NULL &&
		    strcmp(s->dkims[i].selector, d->selector) == 0)
			aerr(pc, st, 1, "duplicate dkim \"%s\" selector "
			    "\"%s\" in server \"%s\" (first at line %d)",
			    d->domain, d->selector, s->name, s->dkims[i].line);
}

/* ---- server ---- */

static const struct kw server_kw[] = {
	{ "listen", 1, 3, NOBLOCK, kw_listen },
	{ "mailroot", 1, 1, NOBLOCK, kw_mailroot },
	{ "fqdn", 1, 1, NOBLOCK, kw_fqdn },
	{ "pki", 1, 1, NOBLOCK, kw_srv_pki },
	{ "connection", 2, 3, NOBLOCK, kw_connection },
	{ "relay", 2, 3, NOBLOCK, kw_relay },
	{ "auth", 0, 0, BLOCK, kw_auth_in },
	{ "tls", 1, 1, NOBLOCK, kw_tls_in },
	{ "limits", 0, 0, BLOCK, kw_limits },
	{ "extensions", 0, 0, BLOCK, kw_extensions },
	{ "reverse-dns-lookup", 1, 1, NOBLOCK, kw_misc },
	{ "hop-count", 1, 1, NOBLOCK, kw_misc },
	{ "masquerade-domain", 1, 1, NOBLOCK, kw_misc },
	{ "masquerade-from", 1, 1, NOBLOCK, kw_misc },
	{ "ndr-copy-to", 1, 1, NOBLOCK, kw_ndr_copy_to },
	{ "header-checks", 1, 1, NOBLOCK, kw_header_checks },
	{ "badmail", 1, 1, NOBLOCK, kw_misc },
	{ "add-missing-headers", 1, 1, NOBLOCK, kw_add_missing_headers },
	{ "delivery", 0, 0, BLOCK, kw_delivery },
	{ "log", 0, 0, BLOCK, kw_log },
	{ "domain", 2, 3, OPTBLOCK, kw_domain },
	{ "dkim", 1, 1, BLOCK, kw_dkim },
	{ NULL, 0, 0, 0, NULL }
};

static void
server_init(struct mr_server *s)
{
	static const unsigned retry[] = { 900, 1800, 3600, 14400 };
	struct mr_delivery *dl = &s->delivery;
	size_t i;

	memset(s, 0, sizeof(*s));
	s->connection.default_allow = 1;
	s->relay.default_allow = 0;
	s->relay_authenticated = 1;
	s->auth.require_tls = 1;
	s->tls = MR_TLS_IN_NONE;
	s->limits.connections = 0;
	s->limits.idle_timeout = 600;
	s->limits.message_size = 2048 * 1024;
	s->limits.session_size = 10240 * 1024;
	s->limits.messages_per_connection = 20;
	s->limits.recipients_per_message = 100;
	s->limits.client_connections = 0;
	s->limits.client_connection_rate = 0;
	s->extensions.size = s->extensions.pipelining = 1;
	s->extensions.eightbitmime = s->extensions.chunking = 1;
	s->extensions.dsn = s->extensions.smtputf8 = 1;
	s->hop_count = 15;
	s->badmail = 1;
	memcpy(dl->retry, retry, sizeof(retry));
	dl->nretry = 4;
	dl->delay_notify_outbound = dl->delay_notify_local = 43200;
	dl->expire_outbound = dl->expire_local = 172800;
	dl->outbound.connections = 1000;
	dl->outbound.per_domain = 100;
	dl->outbound.port = 25;
	dl->outbound.timeout = 600;
	dl->outbound.connect_timeout = 30;
	dl->outbound.greeting_timeout = 300;	/* RFC 5321 4.5.3.2.1 */
	dl->outbound.command_timeout = 300;	/* 4.5.3.2.2, 4.5.3.2.3 */
	dl->outbound.data_timeout = 120;	/* 4.5.3.2.4 */
	dl->outbound.block_timeout = 180;	/* 4.5.3.2.5 */
	dl->outbound.dot_timeout = 600;		/* 4.5.3.2.6 */
	dl->outbound.rate_window = 60;
	dl->outbound.tls = MR_TLS_OUT_OPPORTUNISTIC;
	dl->outbound.dane = 1;
	dl->outbound.auth = MR_AUTH_OUT_NONE;
	dl->outbound.esmtp = 1;
	dl->outbound.mta_sts = 1;
	s->log.format = MR_LOG_W3C;
	s->log.rotate = MR_ROTATE_DAILY;
	s->log.nfields = sizeof(default_fields) / sizeof(default_fields[0]);
	s->log.fields = mr_xcalloc(s->log.nfields, sizeof(char *));
	for (i = 0; i < s->log.nfields; i++)
		s->log.fields[i] = mr_xstrdup(default_fields[i]);
}

static void
kw_server(struct pc *pc, const struct mr_cf_stmt *st)
{
	struct mr_config *cf = pc->cf;
	struct mr_server *s;
	size_t i;

	if (ARG(st, 1)[0] == '\0')
		aerr(pc, st, 1, "server name must not be empty");
	for (i = 0; i < cf->nservers; i++)
		if (strcmp(cf->servers[i].name, ARG(st, 1)) == 0)
			aerr(pc, st, 1, "duplicate server name \"%s\" (first "
			    "at line %d)", ARG(st, 1), cf->servers[i].line);
	cf->servers = mr_xreallocarray(cf->servers, cf->nservers + 1,
	    sizeof(*cf->servers));
	pc->ss = mr_xreallocarray(pc->ss, cf->nservers + 1, sizeof(*pc->ss));
	memset(&pc->ss[cf->nservers], 0, sizeof(*pc->ss));
	pc->cur = cf->nservers;
	s = &cf->servers[cf->nservers++];
	server_init(s);
	s->name = mr_xstrdup(ARG(st, 1));
	s->line = st->line;
	s->index = (int)pc->cur;
	dispatch(pc, st->kids, st->nkids, server_kw, "in server block");
	if (s->mailroot == NULL)
		aerr(pc, st, 0, "server \"%s\" has no mailroot", s->name);
	if (s->nlistens == 0)
		aerr(pc, st, 0, "server \"%s\" has no listen address",
		    s->name);
}

static const struct kw global_kw[] = {
	{ "hostname", 1, 1, NOBLOCK, kw_hostname },
	{ "user", 1, 1, NOBLOCK, kw_user },
	{ "smtpd-user", 1, 1, NOBLOCK, kw_user },
	{ "deliver-user", 1, 1, NOBLOCK, kw_user },
	{ "control-group", 1, 1, NOBLOCK, kw_user },
	{ "chroot", 1, 1, NOBLOCK, kw_chroot },
	{ "submit-socket", 1, 1, NOBLOCK, kw_submit_socket },
	{ "submit-users", 1, 64, NOBLOCK, kw_submit_users },
	{ "submit-sender-users", 1, 64, NOBLOCK, kw_submit_users },
	{ "control-socket", 1, 1, NOBLOCK, kw_control_socket },
	{ "resolver", 1, 1, NOBLOCK, kw_resolver },
	{ "dnssec-trust-anchor", 1, 1, NOBLOCK, kw_trust_anchor },
	{ "mta-sts-cache", 1, 1, NOBLOCK, kw_mta_sts_cache },
	{ "metrics", 2, 2, NOBLOCK, kw_metrics },
	{ "pki", 1, 1, BLOCK, kw_pki },
	{ "table", 2, 2, NOBLOCK, kw_table },
	{ "server", 1, 1, BLOCK, kw_server },
	{ NULL, 0, 0, 0, NULL }
};

/* ---- completing the model ---- */

static int	 keep_fqdn;	/* mr_config_keep_host_fqdn() was called */
static char	*kept_fqdn;

void
mr_config_keep_host_fqdn(void)
{
	keep_fqdn = 1;
}

static char *
lookup_fqdn(void)
{
	struct addrinfo hints, *res;
	char name[256], *fqdn = NULL;

	if (gethostname(name, sizeof(name)) == -1)
		return mr_xstrdup("localhost");
	name[sizeof(name) - 1] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_CANONNAME;
	if (getaddrinfo(name, NULL, &hints, &res) == 0) {
		if (res->ai_canonname != NULL &&
		    valid_hostname(res->ai_canonname))
			fqdn = mr_xstrdup(res->ai_canonname);
		freeaddrinfo(res);
	}
	if (fqdn == NULL)
		fqdn = mr_xstrdup(valid_hostname(name) ? name : "localhost");
	lower(fqdn);
	return fqdn;
}

/* The host's FQDN, as IIS reads the computer's DNS name at boot. */
static char *
host_fqdn(void)
{
	if (!keep_fqdn)
		return lookup_fqdn();
	if (kept_fqdn == NULL)
		kept_fqdn = lookup_fqdn();
	return mr_xstrdup(kept_fqdn);
}

static void
global_defaults(struct mr_config *cf)
{
	if (cf->hostname == NULL)
		cf->hostname = host_fqdn();
	if (cf->user == NULL)
		cf->user = mr_xstrdup("mailroot");
	if (cf->smtpd_user == NULL)
		cf->smtpd_user = mr_xstrdup("mailroot-smtpd");
	if (cf->deliver_user == NULL)
		cf->deliver_user = mr_xstrdup("mailroot-deliver");
	if (cf->chroot == NULL)
		cf->chroot = mr_xstrdup(MR_LOCALSTATEDIR
		    "/lib/mailroot/empty");
	if (cf->resolver == NULL)
		cf->resolver = mr_xstrdup("system");
	if (cf->trust_anchor == NULL)
		cf->trust_anchor = mr_xstrdup(MR_TRUST_ANCHOR_DEFAULT);
	if (cf->mta_sts_cache == NULL)
		cf->mta_sts_cache = mr_xstrdup(MR_LOCALSTATEDIR
		    "/lib/mailroot/mta-sts");
	if (cf->submit_socket == NULL)
		cf->submit_socket = mr_xstrdup("/run/mailroot/submit");
}

/* IIS creates a local domain named after the FQDN for every server. */
static void
implicit_domain(struct pc *pc, struct mr_server *s)
{
	struct mr_domain *d;
	size_t i;

	for (i = 0; i < s->ndomains; i++)
		if (s->domains[i].kind == MR_DOMAIN_LOCAL)
			return;
	if (mr_config_domain(s, s->fqdn) != NULL)
		return;
	d = domain_add(pc, s->fqdn, s->line);
	d->kind = MR_DOMAIN_LOCAL;
	d->implicit = 1;
}

static void
check_aliases(struct pc *pc, const struct mr_server *s,
    const struct sstate *ss)
{
	const struct mr_domain *d, *t;
	size_t i;

	for (i = 0; i < s->ndomains; i++) {
		d = &s->domains[i];
		if (d->kind != MR_DOMAIN_ALIAS)
			continue;
		if ((t = mr_config_domain(s, d->alias_of)) == NULL)
			mr_cf_error(&pc->d, ss->ds[i].alias_line,
			    ss->ds[i].alias_col, "domain \"%s\" is an alias "
			    "of unknown domain \"%s\"", d->name, d->alias_of);
		else if (t->kind != MR_DOMAIN_LOCAL)
			mr_cf_error(&pc->d, ss->ds[i].alias_line,
			    ss->ds[i].alias_col, "domain \"%s\" is an alias "
			    "of \"%s\", which is not a local domain", d->name,
			    d->alias_of);
	}
}

/* esmtp no: HELO, after which STARTTLS cannot be sent (RFC 3207 4). */
static void
warn_helo_tls(struct pc *pc, int line, int col, int esmtp,
    enum mr_tls_out tls, const char *where)
{
	if (esmtp || tls < MR_TLS_OUT_REQUIRED ||
	    tls > MR_TLS_OUT_FINGERPRINT || line == 0)
		return;
	mr_cf_warn(&pc->d, line, col, "esmtp no sends HELO, which cannot "
	    "start TLS: with tls %s no mail %s is ever delivered",
	    tls_out_names[tls], where);
}

/*
 * A remote domain takes the outbound block's tls, tls-ca-file and
 * tls-fingerprint where it sets none of its own; tls fingerprint with no
 * digest to match could never deliver, and is an error.
 */
static void
outbound_tls_finish(struct pc *pc, struct mr_server *s,
    const struct sstate *ss)
{
	const struct mr_outbound *o = &s->delivery.outbound;
	struct mr_domain *d;
	size_t i;

	if (o->tls == MR_TLS_OUT_FINGERPRINT && o->trust.npins == 0)
		mr_cf_error(&pc->d, ss->otls_line, ss->otls_col, "tls "
		    "fingerprint needs tls-fingerprint in the outbound block "
		    "of server \"%s\"", s->name);
	warn_helo_tls(pc, ss->otls_line, ss->otls_col, o->esmtp, o->tls,
	    "under these outbound settings");
	for (i = 0; i < s->ndomains; i++) {
		d = &s->domains[i];
		if (d->kind != MR_DOMAIN_REMOTE)
			continue;
		if (!ss->ds[i].tls_set)
			d->tls = o->tls;
		if (!ss->ds[i].dane_set)
			d->dane = o->dane;
		trust_copy(&d->trust, &o->trust, !ss->ds[i].ca_set,
		    !ss->ds[i].pins_set);
		if (d->tls == MR_TLS_OUT_FINGERPRINT && d->trust.npins == 0 &&
		    ss->ds[i].tls_set)
			mr_cf_error(&pc->d, ss->ds[i].tls_line,
			    ss->ds[i].tls_col, "tls fingerprint needs "
			    "tls-fingerprint in domain \"%s\"", d->name);
		warn_helo_tls(pc, d->line, 1, d->esmtp, d->tls, "to this "
		    "domain");
	}
}

static void
server_finish(struct pc *pc, size_t idx)
{
	struct mr_server *s = &pc->cf->servers[idx];
	struct sstate *ss = &pc->ss[idx];

	pc->cur = idx;
	if (s->fqdn == NULL)
		s->fqdn = mr_xstrdup(pc->cf->hostname);
	if (!ss->tls_set)
		s->tls = s->pki ? MR_TLS_IN_OPTIONAL : MR_TLS_IN_NONE;
	else if (s->tls != MR_TLS_IN_NONE && s->pki == NULL)
		mr_cf_error(&pc->d, ss->tls_line, ss->tls_col, "tls %s needs "
		    "a pki in server \"%s\"", tls_in_names[s->tls], s->name);
	if (ss->tlsl_line != 0 && s->pki == NULL)
		mr_cf_error(&pc->d, ss->tlsl_line, ss->tlsl_col, "listen with "
		    "tls needs a pki in server \"%s\"", s->name);
	if (s->masquerade_from && s->masquerade_domain == NULL)
		mr_cf_error(&pc->d, ss->masqf_line, ss->masqf_col,
		    "masquerade-from needs a masquerade-domain in server "
		    "\"%s\"", s->name);
	outbound_tls_finish(pc, s, ss);
	implicit_domain(pc, s);
	check_aliases(pc, s, ss);
}

/* ---- entry points ---- */

static void
access_free(struct mr_access *a)
{
	size_t i;

	for (i = 0; i < a->nrules; i++)
		free(a->rules[i].domain);
	free(a->rules);
}

static void
domain_free(struct mr_domain *d)
{
	free(d->name);
	free(d->deliver_arg);
	free(d->aliases);
	free(d->recipients);
	free(d->alias_of);
	free(d->route);
	free(d->auth_user);
	free(d->auth_password_file);
	trust_free(&d->trust);
	access_free(&d->etrn_allow);
}

static void
dkim_free(struct mr_dkim *d)
{
	size_t i;

	free(d->domain);
	free(d->selector);
	free(d->key);
	for (i = 0; i < d->nheaders; i++)
		free(d->headers[i]);
	free(d->headers);
}

static void
server_free(struct mr_server *s)
{
	size_t i;

	free(s->name);
	for (i = 0; i < s->nlistens; i++)
		free(s->listens[i].text);
	free(s->listens);
	free(s->mailroot);
	free(s->fqdn);
	free(s->pki);
	access_free(&s->connection);
	access_free(&s->relay);
	free(s->auth.users);
	free(s->auth.dovecot);
	free(s->masquerade_domain);
	free(s->ndr_copy_to);
	free(s->header_checks);
	smart_hosts_free(&s->delivery);
	free(s->delivery.outbound.auth_user);
	free(s->delivery.outbound.auth_password_file);
	trust_free(&s->delivery.outbound.trust);
	for (i = 0; i < s->log.nfields; i++)
		free(s->log.fields[i]);
	free(s->log.fields);
	free(s->log.directory);
	for (i = 0; i < s->ndomains; i++)
		domain_free(&s->domains[i]);
	free(s->domains);
	for (i = 0; i < s->ndkims; i++)
		dkim_free(&s->dkims[i]);
	free(s->dkims);
}

void
mr_config_free(struct mr_config *cf)
{
	size_t i;

	if (cf == NULL)
		return;
	for (i = 0; i < cf->npkis; i++) {
		free(cf->pkis[i].name);
		free(cf->pkis[i].certificate);
		free(cf->pkis[i].key);
	}
	free(cf->pkis);
	for (i = 0; i < cf->ntables; i++) {
		free(cf->tables[i].name);
		free(cf->tables[i].type);
		free(cf->tables[i].path);
	}
	free(cf->tables);
	for (i = 0; i < cf->nservers; i++)
		server_free(&cf->servers[i]);
	free(cf->servers);
	free(cf->file);
	free(cf->hostname);
	free(cf->user);
	free(cf->smtpd_user);
	free(cf->deliver_user);
	free(cf->chroot);
	free(cf->resolver);
	free(cf->trust_anchor);
	free(cf->mta_sts_cache);
	free(cf->control_group);
	free(cf->control_socket);
	free(cf->metrics_listen);
	free(cf->submit_socket);
	for (i = 0; i < cf->nsubmit_users; i++)
		free(cf->submit_users[i]);
	free(cf->submit_users);
	for (i = 0; i < cf->nsender_users; i++)
		free(cf->sender_users[i]);
	free(cf->sender_users);
	free(cf);
}

struct mr_config *
mr_config_parse(const char *name, const char *text, size_t len, FILE *errs)
{
	struct mr_cf_stmt root;
	struct pc pc;
	size_t i;

	memset(&pc, 0, sizeof(pc));
	pc.d.file = name;
	pc.d.errs = errs;
	pc.cf = mr_xcalloc(1, sizeof(*pc.cf));
	pc.cf->file = mr_xstrdup(name);
	mr_cf_read(&pc.d, text, len, &root);
	dispatch(&pc, root.kids, root.nkids, global_kw, "at top level");
	mr_cf_inert(&pc.d, &root);
	global_defaults(pc.cf);
	check_refs(&pc);
	for (i = 0; i < pc.cf->nservers; i++)
		server_finish(&pc, i);
	for (i = 0; i < pc.cf->nservers; i++)
		free(pc.ss[i].ds);
	free(pc.ss);
	free(pc.refs);
	mr_cf_stmt_free(&root);
	/* Nowhere to report a failure to write the report. */
	if (errs != NULL)
		(void)fflush(errs);
	if (pc.d.nerrors > 0) {
		mr_config_free(pc.cf);
		return NULL;
	}
	return pc.cf;
}

/* Reads at most CONF_MAX_SIZE bytes: a configuration is never larger. */
static char *
read_bounded(const char *path, size_t *lenp)
{
	struct mr_buf b;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	mr_buf_init(&b);
	mr_buf_reserve(&b, 8192);
	for (;;) {
		if (b.cap - b.len - 1 == 0)
			mr_buf_reserve(&b, b.cap);
		n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		b.len += (size_t)n;
		if (b.len > CONF_MAX_SIZE) {
			n = -1;
			errno = EFBIG;
			break;
		}
	}
	saved = errno;
	if (close(fd) == -1 && n == 0) {
		n = -1;
		saved = errno;
	}
	if (n == -1) {
		mr_buf_free(&b);
		errno = saved;
		return NULL;
	}
	b.data[b.len] = '\0';
	*lenp = b.len;
	return b.data;
}

struct mr_config *
mr_config_load(const char *path, FILE *errs)
{
	struct mr_config *cf;
	size_t len;
	char *text;

	if ((text = read_bounded(path, &len)) == NULL) {
		if (errs != NULL)
			fprintf(errs, "%s: cannot read: %s\n", path,
			    errno == EFBIG ? "file is larger than 4 MiB" :
			    strerror(errno));
		return NULL;
	}
	cf = mr_config_parse(path, text, len, errs);
	free(text);
	return cf;
}
