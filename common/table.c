/*
 * table.c - a named table as a process holds it: which backend, the file,
 * and when to reopen it.
 *
 * A table is opened by the process that needs it, read-only, on first
 * use; before every lookup the file is looked at again (stat) and
 * reopened when it is another file (mailroot-makemap renames a new one
 * into place) or has changed.  A table that cannot be opened -- missing,
 * unreadable, corrupt -- makes every lookup a temporary failure: the
 * caller answers 4xx and keeps the mail, never treats the key as absent.
 *
 * Security: paths come from the configuration; nothing here writes.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "table.h"

struct mr_tbl {
	char				*name, *type, *path;
	const struct mr_table_backend	*be;
	void				*h;	/* NULL: not open */
	struct stat			 st;	/* of the open file */
};

static const struct mr_table_backend *const backends[] = {
	&mr_table_db, &mr_table_regex, &mr_table_file
};

struct mr_tbl *
mr_tbl_new(const char *name, const char *type, const char *path)
{
	struct mr_tbl *t;
	size_t i;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->type, type) == 0)
			break;
	if (i == sizeof(backends) / sizeof(backends[0]))
		return NULL;
	t = mr_xcalloc(1, sizeof(*t));
	t->name = mr_xstrdup(name);
	t->type = mr_xstrdup(type);
	t->path = mr_xstrdup(path);
	t->be = backends[i];
	return t;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	    a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void
tbl_close(struct mr_tbl *t)
{
	if (t->h != NULL)
		t->be->close(t->h);
	t->h = NULL;
}

/* Opens the table unless the open one is still the file at its path. */
int
mr_tbl_check(struct mr_tbl *t, char *err, size_t errlen)
{
	struct stat st;

	if (stat(t->path, &st) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", t->path,
		    strerror(errno));
		tbl_close(t);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", t->path);
		tbl_close(t);
		return -1;
	}
	if (t->h != NULL && same_file(&st, &t->st))
		return 0;
	tbl_close(t);
	if ((t->h = t->be->open(t->path, err, errlen)) == NULL)
		return -1;
	t->st = st;
	return 0;
}

enum mr_table_res
mr_tbl_lookup(struct mr_tbl *t, const char *key, char **val, char *err,
    size_t errlen)
{
	enum mr_table_res r;
	char *k;

	*val = NULL;
	if (mr_tbl_check(t, err, errlen) == -1)
		return MR_TABLE_TEMPFAIL;
	k = mr_xstrdup(key);
	mr_table_lower(k);
	r = t->be->lookup(t->h, k, val, err, errlen);
	free(k);
	return r;
}

const char *
mr_tbl_name(const struct mr_tbl *t)
{
	return t->name;
}

int
mr_tbl_is(const struct mr_tbl *t, const char *type, const char *path)
{
	return strcmp(t->type, type) == 0 && strcmp(t->path, path) == 0;
}

void
mr_tbl_free(struct mr_tbl *t)
{
	if (t == NULL)
		return;
	tbl_close(t);
	free(t->name);
	free(t->type);
	free(t->path);
	free(t);
}

int
mr_tables_check(const struct mr_config *cf, FILE *errs)
{
	const struct mr_table *ct;
	struct mr_tbl *t;
	char err[512];
	size_t i;
	int rc = 0;

	for (i = 0; i < cf->ntables; i++) {
		ct = &cf->tables[i];
		if ((t = mr_tbl_new(ct->name, ct->type, ct->path)) == NULL)
			abort();	/* the parser knows the same types */
		if (mr_tbl_check(t, err, sizeof(err)) == -1) {
			fprintf(errs, "%s:%d: table \"%s\": %s\n", cf->file,
			    ct->line, ct->name, err);
			rc = -1;
		}
		mr_tbl_free(t);
	}
	return rc;
}
