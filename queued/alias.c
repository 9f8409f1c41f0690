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
#define ALIAS_RCPTS	1000	/* addresses aliases may add to a message */

/* One address met during expansion; parent links give its chain. */
struct node {
	char	*addr;
	long	 parent;	/* -1: a recipient of the message */
	int	 depth;
};

struct expand {
	const struct mr_server	*srv;
	const char		*id;
	struct qrcpt		*out;
	size_t			 n;
	struct node		*nodes;	/* breadth first: a queue */
	size_t			 nnodes;
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
		tbls = mr_xreallocarray(tbls, ntbls + 1,
		    sizeof(struct mr_tbl *));
		ntbls++;
	} else
		mr_tbl_free(tbls[i]);
	tbls[i] = mr_tbl_new(ct->name, ct->type, ct->path);
	return tbls[i];
}

struct mr_tbl *
alias_table(const char *name)
{
	return get_table(name);
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
		x->out[x->n].text = qstr_get(fail);
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

static void
add_node(struct expand *x, const char *addr, long parent, int depth)
{
	x->nodes = mr_xreallocarray(x->nodes, x->nnodes + 1,
	    sizeof(*x->nodes));
	x->nodes[x->nnodes].addr = mr_xstrdup(addr);
	x->nodes[x->nnodes].parent = parent;
	x->nodes[x->nnodes].depth = depth;
	x->nnodes++;
}

/* The message's recipient that node i came from. */
static const char *
root_of(const struct expand *x, size_t i)
{
	long k = (long)i;

	while (x->nodes[k].parent != -1)
		k = x->nodes[k].parent;
	return x->nodes[k].addr;
}

/* 1 if addr is node i or one of the aliases it came through. */
static int
in_chain(const struct expand *x, size_t i, const char *addr)
{
	long k;

	for (k = (long)i; k != -1; k = x->nodes[k].parent)
		if (strcasecmp(x->nodes[k].addr, addr) == 0)
			return 1;
	return 0;
}

/* Queues the addresses of the value of alias node i. */
static void
expand_value(struct expand *x, size_t i, const char *val, size_t limit)
{
	const char *s = val, *item;
	struct mr_path p;
	size_t len;

	while ((item = next_item(&s, &len)) != NULL) {
		if (x->nnodes >= limit) {
			add_out(x, root_of(x, i), "550 5.4.6 alias expands "
			    "to too many addresses");
			return;
		}
		if (qualify(item, len, x->nodes[i].addr, &p) == -1) {
			mr_warn("%s: alias %s has a bad address \"%.*s\"",
			    x->id, x->nodes[i].addr, (int)len, item);
			add_out(x, root_of(x, i), "550 5.1.3 alias has a bad "
			    "address");
		} else if (strcasecmp(p.addr, x->nodes[i].addr) == 0)
			add_out(x, p.addr, NULL);	/* itself */
		else if (in_chain(x, i, p.addr))
			add_out(x, root_of(x, i), "550 5.4.6 alias loop");
		else
			add_node(x, p.addr, (long)i, x->nodes[i].depth + 1);
	}
}

/* Every queued address in turn: final, or an alias whose value joins
 * the queue.  -1 on a table failure. */
static int
expand_all(struct expand *x, size_t limit)
{
	enum mr_table_res r;
	char *val;
	size_t i;

	for (i = 0; i < x->nnodes; i++) {
		val = NULL;
		r = lookup(x, x->nodes[i].addr, &val);
		if (r == MR_TABLE_TEMPFAIL)
			return -1;
		if (r == MR_TABLE_NOTFOUND)
			add_out(x, x->nodes[i].addr, NULL);
		else if (x->nodes[i].depth >= ALIAS_DEPTH)
			add_out(x, root_of(x, i), "550 5.4.6 alias nesting "
			    "too deep");
		else
			expand_value(x, i, val, limit);
		free(val);
	}
	return 0;
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

/* A recipient that is no alias keeps its DSN parameters (RFC 3461);
 * those an alias expands to take the defaults. */
static void
keep_dsn(const struct qmsg *m, struct qrcpt *out, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < m->nrcpts; j++)
			if (strcasecmp(out[i].addr, m->rcpts[j].addr) == 0) {
				out[i].notify = m->rcpts[j].notify;
				if (m->rcpts[j].orcpt != NULL)
					out[i].orcpt =
					    mr_xstrdup(m->rcpts[j].orcpt);
				break;
			}
}

int
alias_expand(struct qmsg *m, char *err, size_t errlen)
{
	struct expand x;
	size_t i;
	int rc;

	if (!any_aliases(m->qs->srv))
		return 0;
	memset(&x, 0, sizeof(x));
	x.srv = m->qs->srv;
	x.id = m->id;
	x.err = err;
	x.errlen = errlen;
	for (i = 0; i < m->nrcpts; i++)
		add_node(&x, m->rcpts[i].addr, -1, 0);
	rc = expand_all(&x, m->nrcpts + ALIAS_RCPTS);
	for (i = 0; i < x.nnodes; i++)
		free(x.nodes[i].addr);
	free(x.nodes);
	if (rc == -1) {
		rcpts_free(x.out, x.n);
		return -1;
	}
	keep_dsn(m, x.out, x.n);
	rcpts_free(m->rcpts, m->nrcpts);
	m->rcpts = x.out;
	m->nrcpts = (uint32_t)x.n;
	return 0;
}

void
alias_shutdown(void)
{
	size_t i;

	for (i = 0; i < ntbls; i++)
		mr_tbl_free(tbls[i]);
	free(tbls);
	tbls = NULL;
	ntbls = 0;
}
