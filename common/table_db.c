/*
 * table_db.c - the "db" table: a Berkeley DB hash file that
 * mailroot-makemap(8) built, keys in lower case, keys and values stored
 * without a terminating NUL.
 *
 * Security: the file is opened read-only, without an environment (no
 * lock or log files are created beside it), and a file that is not a
 * hash database is refused at open.  A value is copied out, bounded and
 * NUL-terminated, before anyone reads it; a value holding a NUL or longer
 * than MR_TABLE_LINE_MAX is a corrupt table (temporary failure), never a
 * truncated answer.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <db.h>

#include "buf.h"
#include "table.h"

/* Berkeley DB would print its own messages on stderr; ours say enough. */
static void
db_quiet(const DB_ENV *env, const char *pfx, const char *msg)
{
	(void)env;
	(void)pfx;
	(void)msg;
}

static void *
db_open_ro(const char *path, char *err, size_t errlen)
{
	DB *db;
	int rc;

	if ((rc = db_create(&db, NULL, 0)) != 0) {
		snprintf(err, errlen, "db_create: %s", db_strerror(rc));
		return NULL;
	}
	db->set_errcall(db, db_quiet);
	rc = db->open(db, NULL, path, NULL, DB_HASH, DB_RDONLY, 0);
	if (rc != 0) {
		snprintf(err, errlen, "cannot open %s as a database: %s",
		    path, rc == EINVAL ? "not a hash database (build it "
		    "with mailroot-makemap)" : db_strerror(rc));
		db->close(db, 0);
		return NULL;
	}
	return db;
}

static enum mr_table_res
db_lookup(void *h, const char *key, char **val, char *err, size_t errlen)
{
	DB *db = h;
	DBT k, v;
	char kb[MR_TABLE_LINE_MAX + 1];
	size_t klen = strlen(key);
	int rc;

	if (klen >= sizeof(kb))
		return MR_TABLE_NOTFOUND;	/* makemap stores none */
	memcpy(kb, key, klen + 1);
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = kb;
	k.size = (u_int32_t)klen;
	rc = db->get(db, NULL, &k, &v, 0);
	if (rc == DB_NOTFOUND)
		return MR_TABLE_NOTFOUND;
	if (rc != 0) {
		snprintf(err, errlen, "lookup: %s", db_strerror(rc));
		return MR_TABLE_TEMPFAIL;
	}
	if (v.size == 0 || v.size > MR_TABLE_LINE_MAX ||
	    memchr(v.data, '\0', v.size) != NULL) {
		snprintf(err, errlen, "corrupt value for \"%s\"", key);
		return MR_TABLE_TEMPFAIL;
	}
	*val = mr_xcalloc(1, v.size + 1);
	memcpy(*val, v.data, v.size);
	return MR_TABLE_FOUND;
}

static void
db_close_ro(void *h)
{
	DB *db = h;

	if (db != NULL)
		db->close(db, 0);
}

const struct mr_table_backend mr_table_db = {
	"db", db_open_ro, db_lookup, db_close_ro
};
