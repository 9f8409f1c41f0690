/*
 * fuzz_smtp_cmd.c - libFuzzer target for SMTP command lines (smtp_cmd.c).
 *
 * The first input byte says whether EHLO was used (bit 0), the rest is
 * the line without CRLF, copied and NUL-terminated as smtpd hands it over.
 * Beyond "no crash", every result must keep the promise of smtp_cmd.h: a
 * valid command has a known verb and no reply; an invalid one carries a
 * 500/501/555 reply with status and text; a valid MAIL or RCPT carries a
 * path as addr.h promises it, and parameters only after EHLO.
 */
#include "config.h"

#include "fuzz.h"
#include "smtp_cmd.h"

/* No control, space or 8-bit byte outside quotes; a lower-case domain. */
static void
check_path(const struct mr_path *p, int is_mail)
{
	const unsigned char *c;
	int quoted = 0;

	CHECK(strlen(p->addr) <= MR_PATH_MAX);
	CHECK(!p->null || is_mail);
	CHECK(!p->postmaster || !is_mail);
	for (c = (const unsigned char *)p->addr; *c != '\0'; c++) {
		/* 8-bit bytes only as UTF-8 (fuzz_addr checks its form) */
		if (*c >= 0x80) {
			CHECK(p->utf8);
			continue;
		}
		if (quoted && *c == '\\') {
			c++;
			CHECK(*c >= 0x20 && *c != 0x7f);
			continue;
		}
		if (*c == '"')
			quoted = !quoted;
		if (quoted)
			CHECK(*c >= 0x20 && *c < 0x7f);
		else
			CHECK(*c > 0x20 && *c < 0x7f);
	}
	CHECK(!quoted);
	if (p->null) {
		CHECK(p->addr[0] == '\0');
		return;
	}
	if (p->postmaster)
		return;
	CHECK(p->local_len > 0 && p->addr[p->local_len] == '@');
	CHECK(p->domain == p->addr + p->local_len + 1);
	CHECK(p->domain[0] != '\0');
	for (c = (const unsigned char *)p->domain; *c != '\0'; c++)
		CHECK(!(*c >= 'A' && *c <= 'Z'));
}

static void
check_valid(const char *line, size_t len, int esmtp,
    const struct mr_smtp_cmd *c)
{
	CHECK(c->verb != MR_V_UNKNOWN);
	CHECK(c->status == NULL && c->text == NULL);
	CHECK(len <= MR_SMTP_LINE_MAX);
	CHECK(c->arg >= line && c->arg <= line + len);
	switch (c->verb) {
	case MR_V_EHLO:
	case MR_V_HELO:
		CHECK(c->arg[0] != '\0' && strlen(c->arg) <= 255);
		CHECK(strpbrk(c->arg, " \t") == NULL);
		break;
	case MR_V_MAIL:
		check_path(&c->path, 1);
		CHECK(esmtp || (!c->has_size && c->body == MR_BODY_NONE));
		/* RFC 6531: a UTF-8 sender only with SMTPUTF8 */
		CHECK(!c->path.utf8 || (c->smtputf8 && esmtp));
		break;
	case MR_V_RCPT:
		check_path(&c->path, 0);
		CHECK(!c->has_size && c->body == MR_BODY_NONE);
		CHECK(!c->smtputf8);
		break;
	case MR_V_DATA:
	case MR_V_RSET:
	case MR_V_QUIT:
	case MR_V_STARTTLS:
		CHECK(c->arg[0] == '\0');
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mr_smtp_cmd c;
	char *line;
	size_t len;
	int esmtp, rc;

	if (size < 1)
		return 0;
	esmtp = data[0] & 1;
	len = size - 1;
	if ((line = malloc(len + 1)) == NULL)
		return 0;
	memcpy(line, data + 1, len);
	line[len] = '\0';

	rc = mr_smtp_parse(line, len, esmtp, &c);
	CHECK(rc == c.code);
	if (rc == 0)
		check_valid(line, len, esmtp, &c);
	else {
		CHECK(rc == 500 || rc == 501 || rc == 553 || rc == 555);
		CHECK(rc != 553 || strcmp(c.status, "5.6.7") == 0);
		CHECK(c.status != NULL && c.text != NULL);
		CHECK(c.status[0] == '5' && c.status[1] == '.');
		CHECK(c.text[0] != '\0' && strpbrk(c.text, "\r\n") == NULL);
	}
	free(line);
	return 0;
}
