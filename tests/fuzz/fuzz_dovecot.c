/*
 * fuzz_dovecot.c - libFuzzer target for the Dovecot authentication client
 * protocol's lines (common/dovecot_auth.c).
 *
 * The input is what a Dovecot auth-client socket sends, split on LF: the
 * handshake lines until it ends, then the answers to AUTH id 1.  Beyond
 * "no crash": the handshake is READY only at a "DONE" line after a
 * version 1 and a PLAIN mechanism; access is GRANTED only by a line that
 * is "OK\t1" or begins "OK\t1\t"; a line longer than MR_DVA_LINE_MAX or
 * holding a NUL never grants; the request built from the input's first
 * bytes is one line of the documented form.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dovecot_auth.h"
#include "fuzz.h"

static void
check_request(const uint8_t *data, size_t size)
{
	char out[MR_DVA_REQ_MAX], user[MR_SASL_USER_MAX + 1];
	char pass[MR_SASL_PASS_MAX + 1];
	size_t ul = size < 40 ? size : 40, pl = size - ul;
	int n;

	if (pl > MR_SASL_PASS_MAX)
		pl = MR_SASL_PASS_MAX;
	memcpy(user, data, ul);
	user[ul] = '\0';
	memcpy(pass, data + ul, pl);
	pass[pl] = '\0';
	n = mr_dva_request(out, sizeof(out), 1, user, pass, size & 1);
	if (n == -1) {
		CHECK(user[0] == '\0' || pass[0] == '\0');
		return;
	}
	CHECK((size_t)n == strlen(out) && n > 0 && out[n - 1] == '\n');
	CHECK(memchr(out, '\n', (size_t)n - 1) == NULL);
	CHECK(strncmp(out, "AUTH\t1\tPLAIN\tservice=smtp\tnologin\t", 33) == 0);
}

static int
granting(const char *l, size_t len)
{
	return (len == 4 && memcmp(l, "OK\t1", 4) == 0) ||
	    (len > 4 && memcmp(l, "OK\t1\t", 5) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *lf;
	struct mr_dva_hs hs = { 0 };
	enum mr_dva_step st;
	int ready = 0;
	size_t len;

	check_request(data, size);
	for (; p < end; p = lf + 1) {
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
			lf = end;
		len = (size_t)(lf - p);
		if (!ready) {
			st = mr_dva_handshake(&hs, p, len);
			if (st == MR_DVA_REFUSED)
				return 0;
			CHECK(st == MR_DVA_MORE || st == MR_DVA_READY);
			if (st == MR_DVA_READY) {
				CHECK(len == 4 && memcmp(p, "DONE", 4) == 0);
				CHECK(hs.version && hs.plain);
				ready = 1;
			}
			continue;
		}
		st = mr_dva_answer(1, p, len);
		if (st == MR_DVA_GRANTED) {
			CHECK(granting(p, len));
			CHECK(len <= MR_DVA_LINE_MAX);
			CHECK(memchr(p, '\0', len) == NULL);
		}
		if (st != MR_DVA_MORE)
			return 0;
	}
	return 0;
}
