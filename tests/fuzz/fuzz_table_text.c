/*
 * fuzz_table_text.c - libFuzzer target for the text form of a table
 * (common/table_inline.c): mailroot-makemap's input and the "file" table.
 *
 * The input is the file's bytes.  Beyond "no crash": an accepted file
 * yields keys that are non-empty, lower case, free of blanks and control
 * bytes and unique; values non-empty without a line break or surrounding
 * blanks; and the in-memory table built from them finds every key with
 * its value.  A refused file has a "NAME:LINE: " message.
 */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "table.h"

static void
check_kv(const struct mr_kv *kv)
{
	const char *p;
	size_t n = strlen(kv->val);

	CHECK(kv->key[0] != '\0' && n > 0 && kv->line > 0);
	for (p = kv->key; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		CHECK(c != ' ' && c != '\t' && c >= 0x20 && c != 0x7f &&
		    tolower(c) == c);
	}
	CHECK(strchr(kv->val, '\n') == NULL && strchr(kv->val, '\r') == NULL);
	CHECK(kv->val[0] != ' ' && kv->val[0] != '\t');
	CHECK(kv->val[n - 1] != ' ' && kv->val[n - 1] != '\t');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mr_kv *kvs;
	char err[512], **keys, **vals, *val;
	size_t n, i;
	void *h;

	if (mr_table_text_parse("f", (const char *)data, size, &kvs, &n, err,
	    sizeof(err)) == -1) {
		CHECK(strncmp(err, "f:", 2) == 0);
		return 0;
	}
	keys = calloc(n + 1, sizeof(char *));
	vals = calloc(n + 1, sizeof(char *));
	CHECK(keys != NULL && vals != NULL);
	for (i = 0; i < n; i++) {
		check_kv(&kvs[i]);
		keys[i] = strdup(kvs[i].key);
		vals[i] = strdup(kvs[i].val);
		CHECK(i == 0 || strcmp(kvs[i - 1].key, kvs[i].key) != 0);
	}
	h = mr_table_inline_new(kvs, n);
	for (i = 0; i < n; i++) {
		CHECK(mr_table_inline.lookup(h, keys[i], &val, err,
		    sizeof(err)) == MR_TABLE_FOUND);
		CHECK(strcmp(val, vals[i]) == 0);
		free(val);
		free(keys[i]);
		free(vals[i]);
	}
	mr_table_inline.close(h);
	free(keys);
	free(vals);
	return 0;
}
