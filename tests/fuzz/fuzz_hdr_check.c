/*
 * fuzz_hdr_check.c - libFuzzer target for the header-check evaluator
 * (common/hdr_check.c) with a real "regex" table (common/table_regex.c).
 *
 * Input: a rules file, a line holding only "%%", then the message; with
 * no such line, a fixed rules file and the whole input as the message.
 * Beyond "no crash": the action is a known one, its text and the field
 * quoted are printable ASCII within their bounds, no action comes
 * without a matched field, and every key handed to the table is within
 * MR_HC_FIELD_MAX and holds no line break (fields are unfolded).
 */
#include "config.h"

#include "fuzz.h"
#include "hdr_check.h"
#include "table.h"

static const char fixed[] =
    "/^subject:.*(win|free)/ REJECT no $1 here\n"
    "/^x-hold:/ HOLD held\n"
    "/^from:.*@spam/ DISCARD\n"
    "/^x-ok/ OK\n"
    "/^x-odd/ FROBNICATE\n";

static enum mr_table_res
lookup(void *h, const char *key, char **val)
{
	char err[256], *k;
	enum mr_table_res r;

	CHECK(strlen(key) <= MR_HC_FIELD_MAX);
	CHECK(strchr(key, '\r') == NULL && strchr(key, '\n') == NULL);
	k = strdup(key);
	CHECK(k != NULL);
	mr_table_lower(k);
	r = mr_table_regex.lookup(h, k, val, err, sizeof(err));
	free(k);
	return r;
}

static void
check_printable(const char *s, size_t max)
{
	size_t i, n = strlen(s);

	CHECK(n <= max);
	for (i = 0; i < n; i++)
		CHECK(s[i] >= ' ' && s[i] <= '~');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data, *sep;
	const char *rules = fixed, *msg = d;
	size_t rlen = sizeof(fixed) - 1, mlen = size;
	struct mr_hc_result r;
	char err[512];
	void *h;

	sep = memmem(d, size, "\n%%\n", 4);
	if (sep != NULL) {
		rules = d;
		rlen = (size_t)(sep - d) + 1;
		msg = sep + 4;
		mlen = size - rlen - 3;
	}
	if ((h = mr_table_regex_parse("fuzz", rules, rlen, err,
	    sizeof(err))) == NULL)
		return 0;
	mr_hc_eval(msg, mlen, lookup, h, &r);
	CHECK(r.action <= MR_HC_TEMPFAIL);
	check_printable(r.text, MR_HC_TEXT_MAX);
	check_printable(r.field, sizeof(r.field) - 1);
	if (r.action != MR_HC_NONE && r.action != MR_HC_TEMPFAIL)
		CHECK(r.field[0] != '\0');
	mr_table_regex.close(h);
	return 0;
}
