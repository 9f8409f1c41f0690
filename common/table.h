/*
 * table.h - lookup tables: the Berkeley DB maps mailroot-makemap(8)
 * builds, PCRE2 pattern files, plain-text files and in-memory lists,
 * behind one small interface (mailroot.conf(5), TABLES).
 */
#ifndef MR_TABLE_H
#define MR_TABLE_H

#include <stddef.h>
#include <stdio.h>

struct mr_config;

/* Keys and values are bounded: a longer line or result is an error. */
#define MR_TABLE_LINE_MAX	4096
#define MR_TABLE_FILE_MAX	(64u * 1024 * 1024)

/* A lookup's outcome. */
enum mr_table_res {
	MR_TABLE_TEMPFAIL = -1,	/* missing, unreadable or corrupt */
	MR_TABLE_NOTFOUND = 0,
	MR_TABLE_FOUND = 1
};

/* One backend: open a file, look a key up, close (function pointers so
 * that a test or a new kind of table plugs in without touching callers). */
struct mr_table_backend {
	const char	*type;		/* "db", "regex", "file" */
	void		*(*open)(const char *path, char *err, size_t errlen);
	/* *val is malloc'd on MR_TABLE_FOUND */
	enum mr_table_res (*lookup)(void *, const char *key, char **val,
			    char *err, size_t errlen);
	void		(*close)(void *);
};

extern const struct mr_table_backend mr_table_db, mr_table_regex,
    mr_table_file;

/* A table as a process holds it: opened on first use, reopened when its
 * file changes (another inode, size or time), read-only. */
struct mr_tbl;

struct mr_tbl	*mr_tbl_new(const char *name, const char *type,
		    const char *path);	/* NULL: unknown type */
enum mr_table_res mr_tbl_lookup(struct mr_tbl *, const char *key,
		    char **val, char *err, size_t errlen);
/* Opens (or reopens) now: 0, or -1 with the reason in err. */
int		 mr_tbl_check(struct mr_tbl *, char *err, size_t errlen);
const char	*mr_tbl_name(const struct mr_tbl *);
int		 mr_tbl_is(const struct mr_tbl *, const char *type,
		    const char *path);
void		 mr_tbl_free(struct mr_tbl *);

/* Opens every table of the configuration once; each failure is written
 * to errs as "CONF:LINE: table "NAME": ...".  0 if all opened. */
int		 mr_tables_check(const struct mr_config *, FILE *errs);

/*
 * The text form (mailroot-makemap's input and the "file" table): one
 * "KEY VALUE" per line, '#' comments and blank lines skipped, keys case
 * insensitive (stored in lower case), values the rest of the line.
 * Errors are "NAME:LINE: message" in err.
 */
struct mr_kv {
	char	*key;
	char	*val;
	int	 line;
};
int	mr_table_text_parse(const char *name, const char *text, size_t len,
	    struct mr_kv **kvs, size_t *n, char *err, size_t errlen);
void	mr_table_kv_free(struct mr_kv *, size_t);

/* An in-memory table (the "file" backend and tests): takes kvs. */
void	*mr_table_inline_new(struct mr_kv *kvs, size_t n);
extern const struct mr_table_backend mr_table_inline;

/* The pattern form ("regex" table): "/PATTERN/[i] RESULT" per line;
 * the first match wins and $1..$9 in RESULT are its captures. */
void	*mr_table_regex_parse(const char *name, const char *text, size_t len,
	    char *err, size_t errlen);

/* Lower-cases s in place (ASCII). */
void	mr_table_lower(char *s);

#endif
