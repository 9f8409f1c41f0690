/*
 * dsn_param.c - RFC 3461 MAIL and RCPT parameters (see dsn_param.h).
 *
 * Security: every byte comes from a network client.  Each value is
 * checked against the RFC's grammar and length limit before it is
 * copied into a fixed buffer of that size; a value is kept in its xtext
 * form, which holds no space, control byte, "=" or 8-bit byte, so it can
 * go into a queue file or a command to a next hop as it is.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "dsn_param.h"

static int
upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

int
mr_xtext_valid(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '+') {
			if (i + 2 >= n || !upper_hex(p[i + 1]) ||
			    !upper_hex(p[i + 2]))
				return 0;
			i += 2;
		} else if (c < '!' || c > '~' || c == '=')
			return 0;
	}
	return 1;
}

int
mr_dsn_notify_valid(unsigned bits)
{
	if (bits & ~(unsigned)(MR_NOTIFY_SUCCESS | MR_NOTIFY_FAILURE |
	    MR_NOTIFY_DELAY | MR_NOTIFY_NEVER))
		return 0;
	return !(bits & MR_NOTIFY_NEVER) || bits == MR_NOTIFY_NEVER;
}

int
mr_dsn_envid_valid(const char *p, size_t n)
{
	return n > 0 && n <= MR_ENVID_MAX && mr_xtext_valid(p, n);
}

/* p starts with key (case-insensitive) and "=": the value's offset, or 0 */
static size_t
value_of(const char *p, size_t n, const char *key)
{
	size_t k = strlen(key);

	if (n <= k || strncasecmp(p, key, k) != 0 || p[k] != '=')
		return 0;
	return k + 1;
}

static int
bad(const char **err, const char *why)
{
	*err = why;
	return -1;
}

int
mr_dsn_mail_param(const char *p, size_t n, struct mr_dsn_mail *m,
    const char **err)
{
	size_t v;

	if ((v = value_of(p, n, "RET")) != 0) {
		if (m->ret != MR_RET_NONE)
			return bad(err, "Duplicate RET parameter");
		if (n - v == 4 && strncasecmp(p + v, "FULL", 4) == 0)
			m->ret = MR_RET_FULL;
		else if (n - v == 4 && strncasecmp(p + v, "HDRS", 4) == 0)
			m->ret = MR_RET_HDRS;
		else
			return bad(err, "Bad RET parameter");
		return 1;
	}
	if ((v = value_of(p, n, "ENVID")) != 0) {
		if (m->has_envid)
			return bad(err, "Duplicate ENVID parameter");
		if (!mr_dsn_envid_valid(p + v, n - v))
			return bad(err, "Bad ENVID parameter");
		memcpy(m->envid, p + v, n - v);
		m->envid[n - v] = '\0';
		m->has_envid = 1;
		return 1;
	}
	return 0;
}

/* NOTIFY=NEVER | 1#(SUCCESS / FAILURE / DELAY), each at most once */
static int
notify_value(const char *p, size_t n, unsigned *out)
{
	static const struct {
		const char	*word;
		unsigned	 bit;
	} words[] = {
		{ "NEVER", MR_NOTIFY_NEVER }, { "SUCCESS", MR_NOTIFY_SUCCESS },
		{ "FAILURE", MR_NOTIFY_FAILURE }, { "DELAY", MR_NOTIFY_DELAY },
	};
	size_t i, w, len;
	unsigned bits = 0;

	for (i = 0; i <= n; i += len + 1) {
		const char *c = memchr(p + i, ',', n - i);

		len = c != NULL ? (size_t)(c - (p + i)) : n - i;
		for (w = 0; w < sizeof(words) / sizeof(*words); w++)
			if (strlen(words[w].word) == len &&
			    strncasecmp(p + i, words[w].word, len) == 0)
				break;
		if (w == sizeof(words) / sizeof(*words) ||
		    (bits & words[w].bit))
			return -1;
		bits |= words[w].bit;
	}
	if ((bits & MR_NOTIFY_NEVER) && bits != MR_NOTIFY_NEVER)
		return -1;
	*out = bits;
	return 0;
}

/* ORCPT=addr-type ";" xtext; addr-type is an atom (RFC 5322) */
int
mr_dsn_orcpt_valid(const char *p, size_t n)
{
	const char *semi = memchr(p, ';', n);
	size_t i, t;

	if (semi == NULL || semi == p || n > MR_ORCPT_MAX)
		return 0;
	t = (size_t)(semi - p);
	for (i = 0; i < t; i++)
		if (p[i] == '\0' || (!isalnum((unsigned char)p[i]) &&
		    strchr("!#$%&'*+-/=?^_`{|}~", p[i]) == NULL))
			return 0;
	return t + 1 < n && mr_xtext_valid(semi + 1, n - t - 1);
}

int
mr_dsn_rcpt_param(const char *p, size_t n, struct mr_dsn_rcpt *r,
    const char **err)
{
	size_t v;

	if ((v = value_of(p, n, "NOTIFY")) != 0) {
		if (r->notify != 0)
			return bad(err, "Duplicate NOTIFY parameter");
		if (notify_value(p + v, n - v, &r->notify) == -1)
			return bad(err, "Bad NOTIFY parameter");
		return 1;
	}
	if ((v = value_of(p, n, "ORCPT")) != 0) {
		if (r->orcpt[0] != '\0')
			return bad(err, "Duplicate ORCPT parameter");
		if (!mr_dsn_orcpt_valid(p + v, n - v))
			return bad(err, "Bad ORCPT parameter");
		memcpy(r->orcpt, p + v, n - v);
		r->orcpt[n - v] = '\0';
		return 1;
	}
	return 0;
}
