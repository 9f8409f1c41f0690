/*
 * table_inline.c - the text form of a table ("KEY VALUE" lines), shared
 * by mailroot-makemap(8) and the "file" table, and the in-memory table
 * it is held in.
 *
 * Security: the text is whatever an administrator (or an attacker who
 * can write the file) put there: every line is bounded, a NUL byte or a
 * key without a value is an error naming FILE:LINE, and nothing in a
 * value is interpreted here.  Lookups are a binary search on a sorted
 * copy; the table never changes after it is built.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "table.h"
#include "util.h"

struct inline_tbl {
	struct mr_kv	*kvs;
	size_t		 n;
};

void
mr_table_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

void
mr_table_kv_free(struct mr_kv *kvs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(kvs[i].key);
		free(kvs[i].val);
	}
	free(kvs);
}

static int
kv_cmp(const void *a, const void *b)
{
	const struct mr_kv *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : x->line - y->line;
}

/* Splits one line (no newline, NUL-free) into key and value; 0 for a
 * blank or comment line, 1 for an entry, -1 with a message. */
static int
split_line(const char *s, size_t len, struct mr_kv *kv, const char **why)
{
	size_t k, v, e;

	for (k = 0; k < len && (s[k] == ' ' || s[k] == '\t'); k++)
		;
	if (k == len || s[k] == '#')
		return 0;
	for (v = k; v < len && s[v] != ' ' && s[v] != '\t'; v++)
		;
	kv->key = mr_xcalloc(1, v - k + 1);
	memcpy(kv->key, s + k, v - k);
	mr_table_lower(kv->key);
	for (; v < len && (s[v] == ' ' || s[v] == '\t'); v++)
		;
	for (e = len; e > v && (s[e - 1] == ' ' || s[e - 1] == '\t' ||
	    s[e - 1] == '\r'); e--)
		;
	if (e == v) {
		*why = "key without a value";
		return -1;
	}
	kv->val = mr_xcalloc(1, e - v + 1);
	memcpy(kv->val, s + v, e - v);
	return 1;
}

static int
check_line(const char *s, size_t len, const char **why)
{
	size_t i;

	if (len > MR_TABLE_LINE_MAX) {
		*why = "line too long";
		return -1;
	}
	for (i = 0; i < len; i++)
		if (s[i] == '\0' || (unsigned char)s[i] == 0x7f ||
		    ((unsigned char)s[i] < 0x20 && s[i] != '\t' &&
		    (s[i] != '\r' || i + 1 != len))) {	/* CRLF files */
			*why = "control character";
			return -1;
		}
	return 0;
}

/* After sorting, equal keys sit together: the second is an error. */
static int
check_dups(const char *name, struct mr_kv *kvs, size_t n, char *err,
    size_t errlen)
{
	size_t i;

	if (n > 1)
		qsort(kvs, n, sizeof(*kvs), kv_cmp);
	for (i = 1; i < n; i++)
		if (strcmp(kvs[i - 1].key, kvs[i].key) == 0) {
			snprintf(err, errlen, "%s:%d: duplicate key \"%s\" "
			    "(first at line %d)", name, kvs[i].line,
			    kvs[i].key, kvs[i - 1].line);
			return -1;
		}
	return 0;
}

int
mr_table_text_parse(const char *name, const char *text, size_t len,
    struct mr_kv **kvsp, size_t *np, char *err, size_t errlen)
{
	struct mr_kv *kvs = NULL, kv;
	const char *p = text, *end = text + len, *nl, *why = NULL;
	size_t n = 0;
	int line = 0, r;

	for (; p < end; p = nl + 1) {
		line++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		memset(&kv, 0, sizeof(kv));
		if (check_line(p, (size_t)(nl - p), &why) == -1 ||
		    (r = split_line(p, (size_t)(nl - p), &kv, &why)) == -1)
			goto fail;
		if (r == 0)
			continue;
		kv.line = line;
		kvs = mr_xreallocarray(kvs, n + 1, sizeof(*kvs));
		kvs[n++] = kv;
	}
	if (check_dups(name, kvs, n, err, errlen) == -1)
		goto fail_quiet;
	*kvsp = kvs;
	*np = n;
	return 0;
fail:
	free(kv.key);
	snprintf(err, errlen, "%s:%d: %s", name, line, why);
fail_quiet:
	mr_table_kv_free(kvs, n);
	return -1;
}

void *
mr_table_inline_new(struct mr_kv *kvs, size_t n)
{
	struct inline_tbl *t = mr_xcalloc(1, sizeof(*t));
	size_t i;

	for (i = 0; i < n; i++)
		mr_table_lower(kvs[i].key);
	if (n > 1)
		qsort(kvs, n, sizeof(*kvs), kv_cmp);
	t->kvs = kvs;
	t->n = n;
	return t;
}

static enum mr_table_res
inline_lookup(void *h, const char *key, char **val, char *err,
    size_t errlen)
{
	struct inline_tbl *t = h;
	size_t lo = 0, hi = t->n, mid;
	int c;

	(void)err;
	(void)errlen;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(key, t->kvs[mid].key);
		if (c == 0) {
			*val = mr_xstrdup(t->kvs[mid].val);
			return MR_TABLE_FOUND;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return MR_TABLE_NOTFOUND;
}

static void
inline_close(void *h)
{
	struct inline_tbl *t = h;

	if (t == NULL)
		return;
	mr_table_kv_free(t->kvs, t->n);
	free(t);
}

static void *
file_open(const char *path, char *err, size_t errlen)
{
	struct mr_kv *kvs;
	size_t len, n;
	char *text;

	if ((text = mr_read_file(path, MR_TABLE_FILE_MAX, &len)) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (mr_table_text_parse(path, text, len, &kvs, &n, err,
	    errlen) == -1) {
		free(text);
		return NULL;
	}
	free(text);
	return mr_table_inline_new(kvs, n);
}

const struct mr_table_backend mr_table_inline = {
	"inline", NULL, inline_lookup, inline_close
};
const struct mr_table_backend mr_table_file = {
	"file", file_open, inline_lookup, inline_close
};
