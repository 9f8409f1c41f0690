/*
 * alias.c - aliases: a local recipient rewritten, through the aliases
 * table of its domain, into one or more addresses, local or remote.
 *
 * Expansion happens once, when a message is committed, before its
 * envelope is written: the envelope holds the final recipients, remote
 * ones are relayed like any other, local ones go to Drop.  A value is a
 * comma-separated list of addresses; one without "@" is in the same
 * domain.  The key tried is "user@domain", then "user" (keys are case
 * insensitive).  Expansion is recursive:
 *   - an alias that lists itself ("bob: bob, archive") delivers to itself;
 *   - an alias that comes back to an address higher in its own chain
 *     ("a: b", "b: a") is a loop: the recipient fails (5.4.6, reported
 *     in a non-delivery report), the rest of the message goes on;
 *   - more than ALIAS_DEPTH levels, or more than ALIAS_RCPTS addresses,
 *     fails the recipient the same way.
 * A table that cannot be read fails the whole commit (smtpd answers 451):
 * mail is never delivered as if the alias did not exist.
 *
 * Security: a table is trusted like the configuration, but every address
 * it yields is parsed as a mailbox before it reaches the envelope, and
 * depth and count are bounded so that a bad table cannot exhaust queued.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "buf.h"
#include "log.h"
#include "queued.h"
#include "table.h"

#define ALIAS_DEPTH	10	/* levels of aliases (sendmail's too) */
#define ALIAS_RCPTS	1000	/* addresses one recipient may become */

struct expand {
	const struct mr_server	*srv;
	const char		*id;
	struct qrcpt		*out;
	size_t			 n;
	const char		*chain[ALIAS_DEPTH + 1];
	char			*err;
	size_t			 errlen;
};

/* Tables opened so far (queued's own, kept across lookups). */
static struct mr_tbl	**tbls;
static size_t		  ntbls;

/* The table named name in the current configuration, opened lazily and
 * renewed when a reload changed its type or path. */
static struct mr_tbl *
get_table(const char *name)
{
	const struct mr_table *ct = NULL;
	size_t i;

	for (i = 0; i < q->cfg->ntables && ct == NULL; i++)
		if (strcmp(q->cfg->tables[i].name, name) == 0)
			ct = &q->cfg->tables[i];
	if (ct == NULL)
		return NULL;	/* the parser checks references */
	for (i = 0; i < ntbls; i++)
		if (strcmp(mr_tbl_name(tbls[i]), name) == 0)
			break;
	if (i < ntbls && mr_tbl_is(tbls[i], ct->type, ct->path))
		return tbls[i];
	if (i == ntbls) {
		tbls = mr_xreallocarray(tbls, ntbls + 1, sizeof(*tbls));
		ntbls++;
	} else
		mr_tbl_free(tbls[i]);
	tbls[i] = mr_tbl_new(ct->name, ct->type, ct->path);
	return tbls[i];
}

/* The aliases table of addr's domain (an alias-of domain uses its
 * target's), or NULL. */
static struct mr_tbl *
table_for(const struct mr_server *srv, const char *addr)
{
	const struct mr_domain *d;
	const char *at = strrchr(addr, '@');

	if (at == NULL || (d = mr_config_domain(srv, at + 1)) == NULL)
		return NULL;
	if (d->kind == MR_DOMAIN_ALIAS)
		d = mr_config_domain(srv, d->alias_of);
	if (d == NULL || d->kind != MR_DOMAIN_LOCAL || d->aliases == NULL)
		return NULL;
	return get_table(d->aliases);
}

static enum mr_table_res
lookup(struct expand *x, const char *addr, char **val)
{
	struct mr_tbl *t = table_for(x->srv, addr);
	enum mr_table_res r;
	char *user;

	if (t == NULL)
		return MR_TABLE_NOTFOUND;
	r = mr_tbl_lookup(t, addr, val, x->err, x->errlen);
	if (r != MR_TABLE_NOTFOUND)
		return r;
	user = mr_xstrdup(addr);
	*strrchr(user, '@') = '\0';
	r = mr_tbl_lookup(t, user, val, x->err, x->errlen);
	free(user);
	return r;
}

/* Adds one final recipient, once (a failure text makes it failed). */
static void
add_out(struct expand *x, const char *addr, const char *fail)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		if (strcasecmp(x->out[i].addr, addr) == 0 &&
		    (x->out[i].state == R_FAILED) == (fail != NULL))
			return;
	x->out = mr_xreallocarray(x->out, x->n + 1, sizeof(*x->out));
	memset(&x->out[x->n], 0, sizeof(*x->out));
	x->out[x->n].addr = mr_xstrdup(addr);
	if (fail != NULL) {
		x->out[x->n].state = R_FAILED;
		x->out[x->n].text = mr_xstrdup(fail);
		mr_info("%s: to=<%s> status=bounced (%s)", x->id, addr, fail);
	}
	x->n++;
}

/* One list item as a mailbox, qualified with parent's domain; -1 if it
 * is not a valid address. */
static int
qualify(const char *item, size_t len, const char *parent,
    struct mr_path *p)
{
	const char *err;
	struct mr_buf b;
	int rc;

	mr_buf_init(&b);
	mr_buf_add(&b, item, len);
	if (memchr(item, '@', len) == NULL)
		mr_buf_printf(&b, "%s", strrchr(parent, '@'));
	rc = mr_mailbox_parse(b.data, b.len, p, &err);
	mr_buf_free(&b);
	return rc;
}

static int expand_addr(struct expand *, const char *, int);

/* The next item of a comma-separated list: start and length, trimmed. */
static const char *
next_item(const char **s, size_t *len)
{
	const char *p = *s, *e;

	while (*p == ' ' || *p == '\t' || *p == ',')
		p++;
	if (*p == '\0')
		return NULL;
	for (e = p; *e != '\0' && *e != ','; e++)
		;
	*s = e;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*len = (size_t)(e - p);
	return p;
}

/* Expands the value of alias addr (at chain depth depth). */
static int
expand_value(struct expand *x, const char *addr, const char *val,
    int depth)
{
	const char *s = val, *item;
	struct mr_path p;
	size_t len;
	int i;

	while ((item = next_item(&s, &len)) != NULL) {
		if (x->n >= ALIAS_RCPTS) {
			add_out(x, x->chain[0], "550 5.4.6 alias expands to "
			    "too many addresses");
			return 0;
		}
		if (qualify(item, len, addr, &p) == -1) {
			mr_warn("%s: alias %s has a bad address \"%.*s\"",
			    x->id, addr, (int)len, item);
			add_out(x, x->chain[0], "550 5.1.3 alias has a bad "
			    "address");
			continue;
		}
		if (strcasecmp(p.addr, addr) == 0) {
			add_out(x, p.addr, NULL);	/* itself */
			continue;
		}
		for (i = 0; i < depth; i++)
			if (strcasecmp(p.addr, x->chain[i]) == 0)
				break;
		if (i < depth)
			add_out(x, x->chain[0], "550 5.4.6 alias loop");
		else if (expand_addr(x, p.addr, depth) == -1)
			return -1;
	}
	return 0;
}

/* Expands addr, depth levels below a recipient; -1 on a table failure. */
static int
expand_addr(struct expand *x, const char *addr, int depth)
{
	enum mr_table_res r;
	char *val = NULL;
	int rc;

	if ((r = lookup(x, addr, &val)) == MR_TABLE_TEMPFAIL)
		return -1;
	if (r == MR_TABLE_NOTFOUND) {
		add_out(x, addr, NULL);
		return 0;
	}
	if (depth >= ALIAS_DEPTH) {
		add_out(x, x->chain[0], "550 5.4.6 alias nesting too deep");
		free(val);
		return 0;
	}
	x->chain[depth] = addr;
	rc = expand_value(x, addr, val, depth + 1);
	free(val);
	return rc;
}

/* Most servers have no aliases: their messages are left alone. */
static int
any_aliases(const struct mr_server *srv)
{
	size_t i;

	for (i = 0; i < srv->ndomains; i++)
		if (srv->domains[i].kind == MR_DOMAIN_LOCAL &&
		    srv->domains[i].aliases != NULL)
			return 1;
	return 0;
}

int
alias_expand(struct qmsg *m, char *err, size_t errlen)
{
	struct expand x;
	size_t i;

	if (!any_aliases(m->qs->srv))
		return 0;
	memset(&x, 0, sizeof(x));
	x.srv = m->qs->srv;
	x.id = m->id;
	x.err = err;
	x.errlen = errlen;
	for (i = 0; i < m->nrcpts; i++)
		if (expand_addr(&x, m->rcpts[i].addr, 0) == -1)
			goto fail;
	for (i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i].addr);
	free(m->rcpts);
	m->rcpts = x.out;
	m->nrcpts = x.n;
	return 0;
fail:
	for (i = 0; i < x.n; i++) {
		free(x.out[i].addr);
		free(x.out[i].text);
	}
	free(x.out);
	return -1;
}
