/*
 * test_table.c - the table backends: the text parser and in-memory table,
 * the PCRE2 pattern table with captures, and a Berkeley DB map written
 * here and read through mr_tbl (reopened when the file changes; missing
 * or corrupt is a temporary failure, never "not found").
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <db.h>

#include "table.h"

static char err[512];

/* Looks key up in an open backend handle: the value, or NULL. */
static char *
get(const struct mr_table_backend *be, void *h, const char *key,
    enum mr_table_res want)
{
	char *val = NULL;

	assert_int_equal(be->lookup(h, key, &val, err, sizeof(err)), want);
	return val;
}

static void
expect(const struct mr_table_backend *be, void *h, const char *key,
    const char *want)
{
	char *val = get(be, h, key, want ? MR_TABLE_FOUND : MR_TABLE_NOTFOUND);

	if (want == NULL)
		assert_null(val);
	else
		assert_string_equal(val, want);
	free(val);
}

static void
t_text_inline(void **state)
{
	const char *text = "# aliases\n\n  Alice\tbob \r\n"
	    "team alice, carol@remote.example\nlast x";
	struct mr_kv *kvs;
	size_t n;
	void *h;

	(void)state;
	assert_int_equal(mr_table_text_parse("t", text, strlen(text), &kvs,
	    &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	h = mr_table_inline_new(kvs, n);
	expect(&mr_table_inline, h, "alice", "bob");
	expect(&mr_table_inline, h, "team", "alice, carol@remote.example");
	expect(&mr_table_inline, h, "last", "x");
	expect(&mr_table_inline, h, "nobody", NULL);
	expect(&mr_table_inline, h, "", NULL);
	mr_table_inline.close(h);
}

static void
t_text_errors(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
		{ "a b\nc\n", "f:2: key without a value" },
		{ "a b\n#\nA c\n", "f:3: duplicate key \"a\" (first at "
		    "line 1)" },
		{ "a b\x01\n", "f:1: control character" },
	};
	struct mr_kv *kvs;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mr_table_text_parse("f", bad[i].text,
		    strlen(bad[i].text), &kvs, &n, err, sizeof(err)), -1);
		assert_string_equal(err, bad[i].err);
	}
	assert_int_equal(mr_table_text_parse("f", "a b\0c d", 7, &kvs, &n,
	    err, sizeof(err)), -1);
	assert_string_equal(err, "f:1: control character");
}

static void
t_regex(void **state)
{
	const char *text = "# comment\n"
	    "/^([^+]+)\\+[^@]*@(.*)$/   $1@$2\n"
	    "/^sales-(.*)@/i  $1@remote.example, $$5\n"
	    "/^(x)?y$/  [$1]\n"
	    "/\\/slash/  s\n"
	    "/^sales-/  never\n";
	void *h;

	(void)state;
	h = mr_table_regex_parse("r", text, strlen(text), err, sizeof(err));
	assert_non_null(h);
	expect(&mr_table_regex, h, "eve+lists@local.test", "eve@local.test");
	expect(&mr_table_regex, h, "sales-frank@x",
	    "frank@remote.example, $5");
	expect(&mr_table_regex, h, "y", "[]");	/* unset capture */
	expect(&mr_table_regex, h, "a/slash", "s");
	expect(&mr_table_regex, h, "nobody@local.test", NULL);
	mr_table_regex.close(h);
}

static void
t_regex_errors(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
		{ "/a/ x\nnoslash y\n", "r:2: expected /PATTERN/" },
		{ "/a/ x\n/open y\n", "r:2: pattern without its closing "
		    "\"/\"" },
		{ "/a/\n", "r:1: pattern without a result" },
		{ "/a/x y\n", "r:1: unknown flag after the pattern (only "
		    "\"i\")" },
		{ "/a/ $0\n", "r:1: \"$\" must be followed by 1 to 9 or "
		    "\"$\"" },
		{ "/a/ x\n/b/ x\ry\n", "r:2: control character" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(mr_table_regex_parse("r", bad[i].text,
		    strlen(bad[i].text), err, sizeof(err)));
		assert_string_equal(err, bad[i].err);
	}
	assert_null(mr_table_regex_parse("r", "\n/(/ x\n", 7, err,
	    sizeof(err)));
	assert_true(strncmp(err, "r:2: bad pattern at offset", 26) == 0);
}

/* A hash database with the given pairs, as mailroot-makemap writes. */
static void
write_db(const char *path, const char *const *kv)
{
	DB *db;
	DBT k, v;

	unlink(path);
	assert_int_equal(db_create(&db, NULL, 0), 0);
	assert_int_equal(db->open(db, NULL, path, NULL, DB_HASH, DB_CREATE,
	    0644), 0);
	for (; kv[0] != NULL; kv += 2) {
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		k.data = (void *)(uintptr_t)kv[0];
		k.size = (u_int32_t)strlen(kv[0]);
		v.data = (void *)(uintptr_t)kv[1];
		v.size = (u_int32_t)strlen(kv[1]);
		assert_int_equal(db->put(db, NULL, &k, &v, 0), 0);
	}
	assert_int_equal(db->close(db, 0), 0);
}

static enum mr_table_res
tbl_get(struct mr_tbl *t, const char *key, char **val)
{
	return mr_tbl_lookup(t, key, val, err, sizeof(err));
}

static void
t_db_reopen_and_failures(void **state)
{
	static const char *const v1[] = { "alice", "bob", NULL };
	static const char *const v2[] = { "alice", "dave", "empty", "", NULL };
	char path[] = "/tmp/test_table.XXXXXX", db[64], *val;
	struct mr_tbl *t;
	FILE *f;
	int fd;

	(void)state;
	assert_int_not_equal(fd = mkstemp(path), -1);
	close(fd);
	snprintf(db, sizeof(db), "%s.db", path);
	write_db(db, v1);
	t = mr_tbl_new("al", "db", db);
	assert_non_null(t);
	assert_int_equal(tbl_get(t, "ALICE", &val), MR_TABLE_FOUND);
	assert_string_equal(val, "bob");
	free(val);
	assert_int_equal(tbl_get(t, "carol", &val), MR_TABLE_NOTFOUND);
	write_db(db, v2);		/* another file: reopened */
	assert_int_equal(tbl_get(t, "alice", &val), MR_TABLE_FOUND);
	assert_string_equal(val, "dave");
	free(val);
	/* an empty value is corrupt, not an empty answer */
	assert_int_equal(tbl_get(t, "empty", &val), MR_TABLE_TEMPFAIL);
	assert_int_equal(unlink(db), 0);
	assert_int_equal(tbl_get(t, "alice", &val), MR_TABLE_TEMPFAIL);
	assert_non_null(strstr(err, "No such file"));
	assert_non_null(f = fopen(db, "w"));
	fputs("not a database\n", f);
	fclose(f);
	assert_int_equal(tbl_get(t, "alice", &val), MR_TABLE_TEMPFAIL);
	assert_int_equal(mr_tbl_check(t, err, sizeof(err)), -1);
	mr_tbl_free(t);
	assert_null(mr_tbl_new("x", "ldap", db));
	unlink(db);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_text_inline),
		cmocka_unit_test(t_text_errors),
		cmocka_unit_test(t_regex),
		cmocka_unit_test(t_regex_errors),
		cmocka_unit_test(t_db_reopen_and_failures),
	};

	return cmocka_run_group_tests_name("table", tests, NULL, NULL);
}
