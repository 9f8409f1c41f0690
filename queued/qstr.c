/*
 * qstr.c - shared strings for the fields that repeat across queued
 * messages: the sender, the client's address and HELO name, and each
 * recipient's last reply ("451 4.3.0 Try again later" in a million
 * deferred messages).  One copy per distinct text, counted: qstr_get
 * takes a reference (and makes the copy the first time), qstr_put drops
 * one (and frees the copy with the last).  A field holding a shared
 * string is only ever set through qstr_get / qstr_set and given back
 * through qstr_put, never freed or written through.
 *
 * The table is a hash set with chains, grown by doubling when it holds
 * more strings than buckets; with strings that repeat it stays small.
 *
 * Security: the texts come from envelopes and from deliverd's replies,
 * already checked by their readers; here they are only hashed, compared
 * and copied.  The hash is not keyed: a peer that makes many distinct
 * reply texts makes long chains at worst, each walked once per get.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "queued.h"
#include "util.h"

struct qstr {
	struct qstr	*next;
	uint32_t	 hash;
	uint32_t	 refs;
	char		 s[];
};

static struct {
	struct qstr	**b;
	size_t		  nb;	/* buckets, a power of two (or 0) */
	size_t		  n;	/* distinct strings */
} tab;

static void
grow(void)
{
	struct qstr **nb, *e, *next;
	size_t i, n = tab.nb ? tab.nb * 2 : 256;

	nb = mr_xcalloc(n, sizeof(struct qstr *));
	for (i = 0; i < tab.nb; i++)
		for (e = tab.b[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	free(tab.b);
	tab.b = nb;
	tab.nb = n;
}

const char *
qstr_get(const char *s)
{
	struct qstr *e;
	uint32_t h;
	size_t len;

	if (s == NULL)
		return NULL;
	h = mr_hash_str(s);
	if (tab.nb != 0)
		for (e = tab.b[h & (tab.nb - 1)]; e != NULL; e = e->next)
			if (e->hash == h && strcmp(e->s, s) == 0) {
				if (e->refs == UINT32_MAX)
					mr_panic("qstr: reference count");
				e->refs++;
				return e->s;
			}
	if (tab.n >= tab.nb)
		grow();
	len = strlen(s);
	e = mr_xmalloc(offsetof(struct qstr, s) + len + 1);
	memcpy(e->s, s, len + 1);
	e->hash = h;
	e->refs = 1;
	e->next = tab.b[h & (tab.nb - 1)];
	tab.b[h & (tab.nb - 1)] = e;
	tab.n++;
	return e->s;
}

void
qstr_put(const char *s)
{
	struct qstr *e, **pp;

	if (s == NULL)
		return;
	e = (struct qstr *)(void *)(s - offsetof(struct qstr, s));
	if (--e->refs != 0)
		return;
	for (pp = &tab.b[e->hash & (tab.nb - 1)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			tab.n--;
			free(e);
			return;
		}
	mr_panic("qstr: a string that is not shared");
}

void
qstr_set(const char **field, const char *s)
{
	const char *old = *field;

	*field = qstr_get(s);	/* first: s may be the old text itself */
	qstr_put(old);
}
