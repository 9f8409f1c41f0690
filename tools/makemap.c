/*
 * makemap.c - mailroot-makemap(8): builds the Berkeley DB hash file of a
 * "db" table from its text form, or looks a key up.
 *
 *	mailroot-makemap [-o OUTPUT] FILE	FILE -> FILE.db (or OUTPUT)
 *	mailroot-makemap -q KEY FILE		print KEY's value
 *
 * The new database is written to a temporary file in the output's
 * directory, flushed, then renamed over the old one and the directory
 * flushed: a reader (queued reopens a table whose file changed) sees the
 * old database or the new one, never a partial one.  Any error in the
 * text -- "FILE:LINE: message" -- leaves the old database in place.
 *
 * Security: run by the administrator; reads one text file, writes only
 * the temporary file and the output.  The database is created mode 0644:
 * queued, which runs as the mailroot user, must be able to read it.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <db.h>

#include "buf.h"
#include "table.h"
#include "util.h"

static void
usage(void)
{
	fprintf(stderr, "usage: mailroot-makemap [-o output] file\n"
	    "       mailroot-makemap -q key file\n");
	exit(2);
}

/* FILE.db, unless FILE already names a database. */
static char *
db_name(const char *file, int query)
{
	struct mr_buf b;
	size_t n = strlen(file);

	mr_buf_init(&b);
	if (query && n > 3 && strcmp(file + n - 3, ".db") == 0)
		mr_buf_adds(&b, file);
	else
		mr_buf_printf(&b, "%s.db", file);
	return b.data;
}

static int
put_all(DB *db, const struct mr_kv *kvs, size_t n)
{
	DBT k, v;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		k.data = kvs[i].key;
		k.size = (u_int32_t)strlen(kvs[i].key);
		v.data = kvs[i].val;
		v.size = (u_int32_t)strlen(kvs[i].val);
		if ((rc = db->put(db, NULL, &k, &v, 0)) != 0) {
			fprintf(stderr, "mailroot-makemap: put: %s\n",
			    db_strerror(rc));
			return -1;
		}
	}
	return 0;
}

/* Writes the database to tmp (an empty file mkstemp made) and flushes. */
static int
write_db(const char *tmp, const struct mr_kv *kvs, size_t n)
{
	DB *db = NULL;
	int rc, fd = -1;

	if ((rc = db_create(&db, NULL, 0)) != 0 ||
	    (rc = db->open(db, NULL, tmp, NULL, DB_HASH, DB_CREATE |
	    DB_TRUNCATE, 0644)) != 0) {
		fprintf(stderr, "mailroot-makemap: %s: %s\n", tmp,
		    db_strerror(rc));
		goto fail;
	}
	if (put_all(db, kvs, n) == -1)
		goto fail;
	rc = db->close(db, 0);
	db = NULL;
	if (rc != 0) {
		fprintf(stderr, "mailroot-makemap: %s: close: %s\n", tmp,
		    db_strerror(rc));
		goto fail;
	}
	if ((fd = open(tmp, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fchmod(fd, 0644) == -1 || fsync(fd) == -1 || close(fd) == -1) {
		fprintf(stderr, "mailroot-makemap: %s: %s\n", tmp,
		    strerror(errno));
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	if (db != NULL)
		db->close(db, 0);
	if (fd != -1)
		close(fd);
	return -1;
}

/* tmp beside out, then rename, then the directory flushed. */
static int
install_db(const char *out, const struct mr_kv *kvs, size_t n)
{
	struct mr_buf tmp;
	char *dir = mr_xstrdup(out);
	int fd, rc = -1;

	mr_buf_init(&tmp);
	mr_buf_printf(&tmp, "%s.tmpXXXXXX", out);
	if ((fd = mkstemp(tmp.data)) == -1) {
		fprintf(stderr, "mailroot-makemap: %s: %s\n", tmp.data,
		    strerror(errno));
		goto done;
	}
	close(fd);
	if (write_db(tmp.data, kvs, n) == -1)
		goto unlink;
	if (rename(tmp.data, out) == -1) {
		fprintf(stderr, "mailroot-makemap: rename to %s: %s\n", out,
		    strerror(errno));
		goto unlink;
	}
	if (mr_fsync_dir(dirname(dir)) == -1)
		fprintf(stderr, "mailroot-makemap: fsync %s: %s\n", dir,
		    strerror(errno));
	else
		rc = 0;
	goto done;
unlink:
	unlink(tmp.data);
done:
	mr_buf_free(&tmp);
	free(dir);
	return rc;
}

static int
build(const char *file, const char *out)
{
	struct mr_kv *kvs;
	char err[512], *text, *db;
	size_t len, n;
	int rc;

	if ((text = mr_read_file(file, MR_TABLE_FILE_MAX, &len)) == NULL) {
		fprintf(stderr, "mailroot-makemap: %s: %s\n", file,
		    strerror(errno));
		return 1;
	}
	rc = mr_table_text_parse(file, text, len, &kvs, &n, err,
	    sizeof(err));
	free(text);
	if (rc == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	db = out != NULL ? mr_xstrdup(out) : db_name(file, 0);
	rc = install_db(db, kvs, n) == -1;
	mr_table_kv_free(kvs, n);
	free(db);
	return rc;
}

/* 0 found (the value printed), 1 not found, 2 error. */
static int
query(const char *key, const char *file)
{
	struct mr_tbl *t;
	char err[512], *db = db_name(file, 1), *val;
	enum mr_table_res r;

	t = mr_tbl_new("-q", "db", db);
	r = mr_tbl_lookup(t, key, &val, err, sizeof(err));
	mr_tbl_free(t);
	free(db);
	if (r == MR_TABLE_TEMPFAIL) {
		fprintf(stderr, "mailroot-makemap: %s\n", err);
		return 2;
	}
	if (r == MR_TABLE_NOTFOUND)
		return 1;
	printf("%s\n", val);
	free(val);
	return fflush(stdout) == EOF ? 2 : 0;
}

int
main(int argc, char *argv[])
{
	const char *key = NULL, *out = NULL;
	int ch;

	while ((ch = getopt(argc, argv, "o:q:")) != -1) {
		switch (ch) {
		case 'o':
			out = optarg;
			break;
		case 'q':
			key = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || (key != NULL && out != NULL))
		usage();
	if (key != NULL)
		return query(key, argv[optind]);
	return build(argv[optind], out);
}
