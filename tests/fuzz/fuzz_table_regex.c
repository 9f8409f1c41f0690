/*
 * fuzz_table_regex.c - libFuzzer target for the "regex" table parser and
 * its lookups (common/table_regex.c).
 *
 * The input is "KEY\n" followed by the pattern file.  Beyond "no crash":
 * a refused file has a "NAME:LINE: " message; an accepted one answers a
 * lookup of KEY (and of a few fixed keys) with found, not found or a
 * temporary failure, and a found value is at most MR_TABLE_LINE_MAX
 * bytes.  The match limits keep every lookup short (libFuzzer's timeout
 * catches one that is not).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "table.h"

static void
try_key(void *h, const char *key)
{
	enum mr_table_res r;
	char err[512], *val = NULL;

	r = mr_table_regex.lookup(h, key, &val, err, sizeof(err));
	CHECK(r == MR_TABLE_FOUND || r == MR_TABLE_NOTFOUND ||
	    r == MR_TABLE_TEMPFAIL);
	CHECK((r == MR_TABLE_FOUND) == (val != NULL));
	if (val != NULL)
		CHECK(strlen(val) <= MR_TABLE_LINE_MAX);
	free(val);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char err[512], *key;
	size_t klen;
	void *h;

	if (nl == NULL)
		return 0;
	klen = (size_t)(nl - data);
	if ((key = calloc(1, klen + 1)) == NULL)
		abort();
	memcpy(key, data, klen);	/* stops at an inner NUL, as C does */
	h = mr_table_regex_parse("r", (const char *)nl + 1,
	    size - klen - 1, err, sizeof(err));
	if (h == NULL) {
		CHECK(strncmp(err, "r:", 2) == 0);
		free(key);
		return 0;
	}
	try_key(h, key);
	try_key(h, "");
	try_key(h, "user+tag@example.org");
	mr_table_regex.close(h);
	free(key);
	return 0;
}
