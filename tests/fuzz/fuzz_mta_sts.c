/*
 * fuzz_mta_sts.c - libFuzzer target for MTA-STS as text
 * (common/mta_sts_parse.c): the _mta-sts TXT record and the policy file,
 * then the MX matching of the parsed patterns.
 *
 * The input is given whole to both parsers.  Beyond "no crash": a TXT
 * id is 1..32 letters and digits; a parsed policy has a known mode,
 * max_age within a year, at most MTA_STS_MX_MAX patterns, each a
 * lower-case host name (with an optional "*." in front) that matches
 * itself (a wildcard: with a label put in front), and mx unless the
 * mode is none; a refused policy comes with a reason and no pattern.
 */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "mta_sts_parse.h"

static void
check_id(const char *id)
{
	size_t i, n = strlen(id);

	CHECK(n >= 1 && n <= MTA_STS_ID_MAX);
	for (i = 0; i < n; i++)
		CHECK(isalnum((unsigned char)id[i]));
}

static void
check_pattern(const struct mta_sts_policy *p, const char *m)
{
	char host[MTA_STS_NAME_MAX + 8];
	size_t i, n = strlen(m);

	CHECK(n >= 1 && n <= MTA_STS_NAME_MAX);
	for (i = m[0] == '*' ? 2 : 0; i < n; i++)
		CHECK(islower((unsigned char)m[i]) ||
		    isdigit((unsigned char)m[i]) || m[i] == '-' ||
		    m[i] == '.');
	if (m[0] == '*') {
		CHECK(m[1] == '.');
		snprintf(host, sizeof(host), "x%s", m + 1);
		CHECK(mta_sts_mx_match(p, host));
	} else
		CHECK(mta_sts_mx_match(p, m));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mta_sts_policy pol;
	char id[MTA_STS_ID_MAX + 1];
	const char *err;
	size_t i;
	int rc;

	rc = mta_sts_txt_parse((const char *)data, size, id);
	CHECK(rc >= -1 && rc <= 1);
	if (rc == 1)
		check_id(id);
	else
		CHECK(id[0] == '\0');
	if (mta_sts_policy_parse((const char *)data, size, &pol, &err) == -1) {
		CHECK(err != NULL && pol.nmx == 0);
		return 0;
	}
	CHECK(err == NULL);
	CHECK(pol.mode == MTA_STS_NONE || pol.mode == MTA_STS_TESTING ||
	    pol.mode == MTA_STS_ENFORCE);
	CHECK(pol.max_age <= MTA_STS_MAX_AGE_MAX);
	CHECK(pol.nmx <= MTA_STS_MX_MAX);
	CHECK(pol.mode == MTA_STS_NONE || pol.nmx > 0);
	for (i = 0; i < pol.nmx; i++)
		check_pattern(&pol, pol.mx[i]);
	return 0;
}
