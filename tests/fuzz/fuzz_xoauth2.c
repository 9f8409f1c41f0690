/*
 * fuzz_xoauth2.c - libFuzzer target for the XOAUTH2 client
 * (common/xoauth2.c): the token-file parser, the initial response and
 * the reading of the server's reply.
 *
 * The input: one byte choosing the reply code (235, 334, 535 or
 * another), then the token file's bytes; the file's second line also
 * serves as the reply text.  Beyond "no crash", the promises of
 * xoauth2.h must hold: a parsed token is 1..MR_XOAUTH2_TOKEN_MAX visible
 * ASCII bytes taken from the start of the file, and any failure leaves
 * "" behind; the initial response decodes to exactly "user=" U ^A
 * "auth=Bearer " T ^A ^A and is refused exactly when the token is not
 * one; a reply's status is short, printable, without quote or
 * backslash, and only comes with a 334.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sasl.h"
#include "xoauth2.h"

#define USER	"user@example.com"

static int
is_token(const char *t)
{
	size_t i, n = strlen(t);

	if (n == 0 || n > MR_XOAUTH2_TOKEN_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7f)
			return 0;
	return 1;
}

static void
check_initial(const char *tok)
{
	static char out[MR_XOAUTH2_RESP_MAX];
	static unsigned char d[MR_XOAUTH2_RAW_MAX], want[MR_XOAUTH2_RAW_MAX];
	size_t n;
	int k, rc;

	rc = mr_xoauth2_initial(USER, tok, out);
	CHECK((rc == 0) == is_token(tok));
	if (rc != 0) {
		CHECK(out[0] == '\0');
		return;
	}
	n = (size_t)snprintf((char *)want, sizeof(want),
	    "user=" USER "\1auth=Bearer %s\1\1", tok);
	CHECK(n < sizeof(want));
	k = mr_b64_decode(out, strlen(out), d, sizeof(d));
	CHECK(k >= 0 && (size_t)k == n && memcmp(d, want, n) == 0);
}

static void
check_token(const char *file, size_t len)
{
	static char tok[MR_XOAUTH2_TOKEN_MAX + 1];
	size_t n;

	if (mr_xoauth2_token(file, len, tok) != MR_XOAUTH2_TOKEN_OK) {
		CHECK(tok[0] == '\0');
		return;
	}
	n = strlen(tok);
	CHECK(is_token(tok) && n <= len && memcmp(tok, file, n) == 0);
	check_initial(tok);
}

static void
check_reply(int code, const char *text)
{
	char status[MR_XOAUTH2_STATUS_MAX + 1];
	enum mr_xoauth2_reply r;
	size_t i, n;

	memset(status, 'x', sizeof(status));
	r = mr_xoauth2_reply(code, text, status);
	n = strnlen(status, sizeof(status));
	CHECK(n <= MR_XOAUTH2_STATUS_MAX);
	for (i = 0; i < n; i++)
		CHECK(status[i] >= ' ' && status[i] < 0x7f &&
		    status[i] != '"' && status[i] != '\\');
	CHECK(n == 0 || r == MR_XOAUTH2_CHALLENGE);
	CHECK((r == MR_XOAUTH2_OK) == (code == 235));
	CHECK((r == MR_XOAUTH2_CHALLENGE) == (code == 334));
	CHECK((r == MR_XOAUTH2_REFUSED) == (code == 535));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int codes[] = { 334, 535, 235, 454, 504, 334 };
	char *file, *line, *nl;

	if (size < 1 || size > 16384)
		return 0;
	file = malloc(size);
	CHECK(file != NULL);
	memcpy(file, data + 1, size - 1);
	file[size - 1] = '\0';
	check_token(file, size - 1);
	/* the first line as a C string, as if handed over unchecked */
	line = file;
	if ((nl = strchr(line, '\n')) != NULL)
		*nl = '\0';
	check_initial(line);
	line = nl != NULL ? nl + 1 : file + (size - 1);
	if ((nl = strchr(line, '\n')) != NULL)
		*nl = '\0';
	check_reply(codes[data[0] % 6], line);
	free(file);
	return 0;
}
