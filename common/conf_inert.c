/*
 * conf_inert.c - the settings mailroot.conf(5) accepts but the daemons do
 * not act on yet (marked "parsed; not yet implemented" in the manual).
 *
 * Each such statement in a file gets a warning at its position, so that
 * "mailrootd -n" tells the administrator what the file asks for and does
 * not get.  A setting whose inertness leaves the server more open than
 * the file says -- a deny rule that can never match -- is an error: the
 * file is refused rather than run more open than written.  The table
 * below is the whole list; the manual's section SETTINGS NOT YET
 * IMPLEMENTED names the same set (tests/integration/test_config_check.py
 * compares them).  Remove an entry when its setting is implemented.
 *
 * Security: reads only the statement tree conf_lex.c built; every value
 * was already checked by conf_parse.c, which rejects a file with errors.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "conf_lex.h"
#include "conf_inert.h"

enum where {
	W_TOP, W_SERVER, W_AUTH, W_DELIVERY, W_OUTBOUND, W_LOCAL, W_REMOTE,
	W_LOG
};

struct inert {
	const char	*kw;
	const char	*a1;	/* args[1] must be this (NULL: any) */
	const char	*a2;	/* args[2] must be this (NULL: any) */
	const char	*opt;	/* some later argument is this */
	const char	*name;	/* the setting, as the message quotes it */
	const char	*what;	/* the rest of the message */
	enum where	 where;
	int		 error;	/* inert and opens access */
};

/* The table reads where, keyword, arguments, error, name, text. */
#define I(w, kw, a1, a2, opt, err, name, what) \
	{ kw, a1, a2, opt, name, what, w, err }

#define NOEFFECT	"is not yet implemented and has no effect"

/* Every setting is implemented today: the table holds only its end.
 * An entry looks like
 *	I(W_LOG, "format", "ncsa", NULL, NULL, 0, "log { format ncsa }",
 *	    NOEFFECT ": no transaction log is written"),
 */
static const struct inert inert[] = {
	I(W_TOP, NULL, NULL, NULL, NULL, 0, NULL, NULL)
};

static int
arg_is(const struct mr_cf_stmt *st, size_t i, const char *want)
{
	return want == NULL || (i < st->nargs &&
	    strcmp(st->args[i].text, want) == 0);
}

/* The argument the message points at: the option, else the keyword. */
static const struct mr_cf_arg *
matches(const struct inert *in, enum where w, const struct mr_cf_stmt *st)
{
	size_t i;

	if (in->where != w || strcmp(st->args[0].text, in->kw) != 0 ||
	    !arg_is(st, 1, in->a1) || !arg_is(st, 2, in->a2))
		return NULL;
	if (in->opt == NULL)
		return &st->args[0];
	for (i = 2; i < st->nargs; i++)
		if (strcmp(st->args[i].text, in->opt) == 0)
			return &st->args[i];
	return NULL;
}

static void
check_stmt(struct mr_cf_diag *d, enum where w, const struct mr_cf_stmt *st)
{
	const struct mr_cf_arg *at;
	size_t i;

	for (i = 0; inert[i].kw != NULL; i++) {
		if ((at = matches(&inert[i], w, st)) == NULL)
			continue;
		if (inert[i].error)
			mr_cf_error(d, at->line, at->col, "\"%s\" %s",
			    inert[i].name, inert[i].what);
		else
			mr_cf_warn(d, at->line, at->col, "\"%s\" %s",
			    inert[i].name, inert[i].what);
	}
}

/* Which table a block's statements are looked up in; -1: none. */
static int
inner(enum where w, const struct mr_cf_stmt *st)
{
	const char *kw = st->args[0].text;

	if (w == W_TOP && strcmp(kw, "server") == 0)
		return W_SERVER;
	if (w == W_SERVER && strcmp(kw, "auth") == 0)
		return W_AUTH;
	if (w == W_SERVER && strcmp(kw, "delivery") == 0)
		return W_DELIVERY;
	if (w == W_SERVER && strcmp(kw, "log") == 0)
		return W_LOG;
	if (w == W_DELIVERY && strcmp(kw, "outbound") == 0)
		return W_OUTBOUND;
	if (w == W_SERVER && strcmp(kw, "domain") == 0 && st->nargs > 2)
		return strcmp(st->args[2].text, "local") == 0 ? W_LOCAL :
		    strcmp(st->args[2].text, "remote") == 0 ? W_REMOTE : -1;
	return -1;
}

/* server { delivery { outbound { } } } is the deepest block we look in */
#define WALK_DEPTH	4

struct level {
	const struct mr_cf_stmt	*kids;
	size_t			 n, i;
	enum where		 w;
};

void
mr_cf_inert(struct mr_cf_diag *d, const struct mr_cf_stmt *root)
{
	struct level lv[WALK_DEPTH];
	const struct mr_cf_stmt *st;
	struct level *l;
	size_t top = 0;
	int in;

	lv[0] = (struct level){ root->kids, root->nkids, 0, W_TOP };
	for (;;) {
		l = &lv[top];
		if (l->i == l->n) {
			if (top == 0)
				return;
			top--;
			continue;
		}
		st = &l->kids[l->i++];
		if (st->nargs == 0)
			continue;
		check_stmt(d, l->w, st);
		if ((in = inner(l->w, st)) != -1 && top + 1 < WALK_DEPTH)
			lv[++top] = (struct level){ st->kids, st->nkids, 0,
			    (enum where)in };
	}
}
