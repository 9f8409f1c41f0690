/*
 * mta_sts_parse.c - MTA-STS (RFC 8461) as text: the _mta-sts TXT record
 * (3.1), the policy file (3.2) and the matching of MX host names against
 * the policy's patterns (4.1).  Pure functions: no I/O, no allocation.
 *
 * Security: every byte is hostile (a DNS answer, an HTTPS body from the
 * recipient's web server, or the cache file deliverd wrote from one).
 * Both parsers walk (pointer, length) once, never past len, accept only
 * the printable ASCII and blanks the grammar allows, and copy a field
 * only after its length is known to fit; counts are bounded
 * (MTA_STS_MX_MAX patterns, ten digits of max_age).  A NUL byte is
 * malformed input, never an end of string.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mta_sts_parse.h"

#define LABEL_MAX	63	/* RFC 1035 2.3.4 */
#define KEY_MAX		32	/* sts-policy-ext-name: 1 + *31 */

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static int
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* ---- the TXT record, RFC 8461 3.1 ---- */

/* "id=" 1*32(ALPHA / DIGIT), or an extension name=value; -1 if bad. */
static int
txt_field(const char *f, size_t n, char *id, int *have_id)
{
	size_t i, eq;

	for (eq = 0; eq < n && f[eq] != '='; eq++)
		if (!is_alnum((unsigned char)f[eq]) && f[eq] != '_' &&
		    f[eq] != '-' && f[eq] != '.')
			return -1;
	if (eq == 0 || eq == n || eq > KEY_MAX)
		return -1;
	for (i = eq + 1; i < n; i++)
		if ((unsigned char)f[i] < 0x21 || (unsigned char)f[i] > 0x7e ||
		    f[i] == ';' || f[i] == '=')
			return -1;
	if (eq == 2 && memcmp(f, "id", 2) == 0) {
		if (n - 3 < 1 || n - 3 > MTA_STS_ID_MAX)
			return -1;
		for (i = 3; i < n; i++)
			if (!is_alnum((unsigned char)f[i]))
				return -1;
		if (!*have_id) {
			memcpy(id, f + 3, n - 3);
			id[n - 3] = '\0';
			*have_id = 1;
		}
	}
	return 0;
}

int
mta_sts_txt_parse(const char *txt, size_t len, char id[MTA_STS_ID_MAX + 1])
{
	static const char ver[] = "v=STSv1";
	size_t p = sizeof(ver) - 1, start, end;
	int have_id = 0, fields = 0;

	id[0] = '\0';
	if (len < p || memcmp(txt, ver, p) != 0)
		return 0;
	while (p < len) {
		while (p < len && is_wsp(txt[p]))
			p++;
		if (p == len)
			break;
		if (txt[p++] != ';')
			goto bad;
		while (p < len && is_wsp(txt[p]))
			p++;
		if (p == len)
			break;			/* [sts-sep] at the end */
		for (start = p; p < len && txt[p] != ';' && !is_wsp(txt[p]);)
			p++;
		end = p;
		if (txt_field(txt + start, end - start, id, &have_id) == -1)
			goto bad;
		fields++;
	}
	if (fields > 0 && have_id)
		return 1;
bad:
	id[0] = '\0';		/* an id from a malformed record is none */
	return -1;
}

/* ---- the policy, RFC 8461 3.2 ---- */

struct pol_scan {
	struct mta_sts_policy	*out;
	const char		*err;
	int			 have_version, have_mode, have_age;
};

/* Label *("." Label), letters lower-cased into out; -1 if not a name. */
static int
host_copy(const char *v, size_t n, char *out)
{
	size_t i, label = 0;

	if (n == 0 || n > MTA_STS_NAME_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '.') {
			if (label == 0 || v[i - 1] == '-')
				return -1;
			label = 0;
		} else if (is_alnum(c) || (c == '-' && label > 0)) {
			if (++label > LABEL_MAX)
				return -1;
		} else
			return -1;
		out[i] = (char)tolower(c);
	}
	if (label == 0 || v[n - 1] == '-')
		return -1;
	out[n] = '\0';
	return 0;
}

static void
pol_mx(struct pol_scan *ps, const char *v, size_t n)
{
	struct mta_sts_policy *p = ps->out;
	char *dst;

	/* beyond the bound: ignored; under enforce that can only refuse */
	if (p->nmx >= MTA_STS_MX_MAX)
		return;
	dst = p->mx[p->nmx];
	if (n >= 2 && v[0] == '*' && v[1] == '.') {
		dst[0] = '*';
		dst[1] = '.';
		if (n - 2 > MTA_STS_NAME_MAX - 2 ||
		    host_copy(v + 2, n - 2, dst + 2) == -1) {
			ps->err = "bad mx pattern";
			return;
		}
	} else if (host_copy(v, n, dst) == -1) {
		ps->err = "bad mx pattern";
		return;
	}
	p->nmx++;
}

static void
pol_mode(struct pol_scan *ps, const char *v, size_t n)
{
	static const struct {
		const char		*name;
		enum mta_sts_mode	 mode;
	} modes[] = {
		{ "enforce", MTA_STS_ENFORCE },
		{ "testing", MTA_STS_TESTING },
		{ "none", MTA_STS_NONE },
	};
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strlen(modes[i].name) == n &&
		    memcmp(modes[i].name, v, n) == 0) {
			ps->out->mode = modes[i].mode;
			ps->have_mode = 1;
			return;
		}
	ps->err = "unknown mode";
}

static void
pol_max_age(struct pol_scan *ps, const char *v, size_t n)
{
	unsigned long long age = 0;
	size_t i;

	if (n == 0 || n > 10) {
		ps->err = "bad max_age";
		return;
	}
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9') {
			ps->err = "bad max_age";
			return;
		}
		age = age * 10 + (unsigned)(v[i] - '0');
	}
	if (age > MTA_STS_MAX_AGE_MAX)
		age = MTA_STS_MAX_AGE_MAX;
	ps->out->max_age = (uint32_t)age;
	ps->have_age = 1;
}

/* One "key: value" line; fields other than mx count the first time. */
static void
pol_field(struct pol_scan *ps, const char *k, size_t kn, const char *v,
    size_t vn)
{
	if (kn == 7 && memcmp(k, "version", 7) == 0) {
		if (ps->have_version)
			return;
		if (vn != 5 || memcmp(v, "STSv1", 5) != 0)
			ps->err = "version is not STSv1";
		ps->have_version = 1;
	} else if (kn == 4 && memcmp(k, "mode", 4) == 0) {
		if (!ps->have_mode)
			pol_mode(ps, v, vn);
	} else if (kn == 7 && memcmp(k, "max_age", 7) == 0) {
		if (!ps->have_age)
			pol_max_age(ps, v, vn);
	} else if (kn == 2 && memcmp(k, "mx", 2) == 0)
		pol_mx(ps, v, vn);
	/* sts-policy-extension: ignored (RFC 8461 3.2) */
}

/* Splits a line into key and value; -1 if it is not "key:" *WSP value. */
static int
pol_line(struct pol_scan *ps, const char *l, size_t n)
{
	size_t k, v, e, i;

	for (k = 0; k < n && l[k] != ':'; k++)
		if (!is_alnum((unsigned char)l[k]) &&
		    (k == 0 || (l[k] != '_' && l[k] != '-' && l[k] != '.')))
			return -1;
	if (k == 0 || k == n || k > KEY_MAX)
		return -1;
	for (v = k + 1; v < n && is_wsp(l[v]);)
		v++;
	for (e = n; e > v && is_wsp(l[e - 1]);)
		e--;
	for (i = v; i < e; i++)
		if (((unsigned char)l[i] < 0x20 && l[i] != '\t') ||
		    (unsigned char)l[i] > 0x7e)
			return -1;
	pol_field(ps, l, k, l + v, e - v);
	return 0;
}

static int
pol_check(struct pol_scan *ps)
{
	if (ps->err == NULL && !ps->have_version)
		ps->err = "no version";
	if (ps->err == NULL && !ps->have_mode)
		ps->err = "no mode";
	if (ps->err == NULL && !ps->have_age)
		ps->err = "no max_age";
	if (ps->err == NULL && ps->out->mode != MTA_STS_NONE &&
	    ps->out->nmx == 0)
		ps->err = "no mx";
	return ps->err == NULL ? 0 : -1;
}

int
mta_sts_policy_parse(const char *text, size_t len,
    struct mta_sts_policy *out, const char **err)
{
	struct pol_scan ps;
	size_t p = 0, e, n;

	memset(out, 0, sizeof(*out));
	memset(&ps, 0, sizeof(ps));
	ps.out = out;
	if (len > MTA_STS_BODY_MAX)
		ps.err = "policy too long";
	while (ps.err == NULL && p < len) {
		for (e = p; e < len && text[e] != '\n';)
			e++;
		n = e - p;
		if (n > 0 && text[p + n - 1] == '\r')
			n--;		/* CRLF or LF (sts-policy-term-delim) */
		if (n > 0 && pol_line(&ps, text + p, n) == -1)
			ps.err = "malformed line";
		p = e + 1;
	}
	if (pol_check(&ps) == -1) {
		*err = ps.err;
		memset(out, 0, sizeof(*out));
		return -1;
	}
	*err = NULL;
	return 0;
}

/* ---- matching, RFC 8461 4.1 ---- */

int
mta_sts_mx_match(const struct mta_sts_policy *p, const char *host)
{
	size_t i, n = strlen(host), dot;
	const char *pat;

	if (n > 0 && host[n - 1] == '.')
		n--;				/* the root */
	if (n == 0)
		return 0;
	for (dot = 0; dot < n && host[dot] != '.';)
		dot++;
	for (i = 0; i < p->nmx; i++) {
		pat = p->mx[i];
		if (pat[0] == '*') {
			/* "*.example.com": exactly one more label on the
			 * left, never the bare domain */
			if (dot > 0 && dot < n && strlen(pat + 1) == n - dot &&
			    strncasecmp(pat + 1, host + dot, n - dot) == 0)
				return 1;
		} else if (strlen(pat) == n && strncasecmp(pat, host, n) == 0)
			return 1;
	}
	return 0;
}

const char *
mta_sts_mode_name(enum mta_sts_mode m)
{
	switch (m) {
	case MTA_STS_ENFORCE:
		return "enforce";
	case MTA_STS_TESTING:
		return "testing";
	default:
		return "none";
	}
}
