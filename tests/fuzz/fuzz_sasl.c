/*
 * fuzz_sasl.c - libFuzzer target for the AUTH exchange (common/sasl.c).
 *
 * The input is what a client sends after AUTH: the first line is the
 * command's argument, every further line (split at LF) one response.
 * Beyond "no crash", the promises of sasl.h must hold: a finished
 * exchange yields a user of 1..MR_SASL_USER_MAX bytes without a control
 * byte and a password of 1..MR_SASL_PASS_MAX bytes; anything that ends
 * the exchange otherwise leaves no credential behind; a challenge comes
 * only with CONTINUE.  Bits 0 and 1 of the first byte, when set, take
 * PLAIN and LOGIN off the offer.  Base64 decoding is checked against the encoder:
 * what decodes re-encodes to the same text.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sasl.h"

static void
check_done(const struct mr_sasl *s)
{
	size_t i, n = strlen(s->user);

	CHECK(n >= 1 && n <= MR_SASL_USER_MAX);
	for (i = 0; i < n; i++)
		CHECK((unsigned char)s->user[i] >= 0x20 && s->user[i] != 0x7f);
	n = strlen(s->pass);
	CHECK(n >= 1 && n <= MR_SASL_PASS_MAX);
}

static void
check_b64(const char *p, size_t n)
{
	unsigned char d[MR_SASL_RESP_MAX];
	char *re;
	int k;

	if ((k = mr_b64_decode(p, n, d, sizeof(d))) < 0)
		return;
	CHECK((size_t)k <= sizeof(d) && (size_t)k <= n / 4 * 3);
	re = malloc(4 * (((size_t)k + 2) / 3) + 1);
	CHECK(re != NULL);
	mr_b64_encode(d, (size_t)k, re);
	/* equal but for the unused low bits of the last group */
	CHECK(strlen(re) == n);
	CHECK(n < 4 || memcmp(re, p, n - 4) == 0);
	free(re);
}

static enum mr_sasl_res
run(struct mr_sasl *s, enum mr_sasl_res r, const char *ch)
{
	if (r == MR_SASL_CONTINUE)
		CHECK(ch != NULL && strlen(ch) < 64);
	else
		CHECK(ch == NULL);
	if (r == MR_SASL_DONE)
		check_done(s);
	else if (r != MR_SASL_CONTINUE)
		CHECK(s->user[0] == '\0' && s->pass[0] == '\0');
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mr_sasl s;
	enum mr_sasl_res r;
	const char *ch;
	char *buf, *line, *nl;

	if (size > 8192)
		return 0;
	buf = malloc(size + 1);
	CHECK(buf != NULL);
	memcpy(buf, data, size);
	buf[size] = '\0';
	check_b64(buf, strlen(buf));
	line = buf;
	if ((nl = strchr(line, '\n')) != NULL)
		*nl = '\0';
	r = run(&s, mr_sasl_begin(&s, line, !(data[0] & 1), !(data[0] & 2),
	    &ch), ch);
	while (r == MR_SASL_CONTINUE && nl != NULL) {
		line = nl + 1;
		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		r = run(&s, mr_sasl_step(&s, line, strlen(line), &ch), ch);
	}
	mr_sasl_clear(&s);
	free(buf);
	return 0;
}
