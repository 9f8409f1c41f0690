/*
 * smtp_cmd.c - SMTP command lines (RFC 5321 4.1) into struct mr_smtp_cmd.
 *
 * Security: the line comes straight from a network client.  It is bounded
 * (MR_SMTP_LINE_MAX), must not contain NUL, CR, LF or other control bytes
 * outside what the grammar allows, and addresses go through
 * mr_path_parse_utf8: c->path.utf8 tells the caller whether the address
 * needs SMTPUTF8 (RFC 6531).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_cmd.h"

static const struct {
	const char	*name;
	enum mr_verb	 verb;
} verbs[] = {
	{ "EHLO", MR_V_EHLO }, { "HELO", MR_V_HELO }, { "MAIL", MR_V_MAIL },
	{ "RCPT", MR_V_RCPT }, { "DATA", MR_V_DATA }, { "RSET", MR_V_RSET },
	{ "NOOP", MR_V_NOOP }, { "QUIT", MR_V_QUIT }, { "VRFY", MR_V_VRFY },
	{ "HELP", MR_V_HELP }, { "STARTTLS", MR_V_STARTTLS },
	{ "AUTH", MR_V_AUTH }, { "ETRN", MR_V_ETRN }, { "EXPN", MR_V_EXPN },
	{ "TURN", MR_V_TURN }, { "BDAT", MR_V_BDAT },
};

static int
fail(struct mr_smtp_cmd *c, int code, const char *status, const char *text)
{
	c->code = code;
	c->status = status;
	c->text = text;
	return code;
}

/* One ESMTP parameter of MAIL FROM: "KEY=VALUE", n bytes. */
static int
mail_param(struct mr_smtp_cmd *c, const char *p, size_t n)
{
	const char *err;

	switch (mr_dsn_mail_param(p, n, &c->dsn_mail, &err)) {
	case 1:
		c->has_dsn = 1;
		return 0;
	case -1:
		return fail(c, 501, "5.5.4", err);
	default:
		break;
	}
	if (n > 5 && strncasecmp(p, "SIZE=", 5) == 0) {
		uint64_t v = 0;
		size_t i;

		if (c->has_size || n - 5 > 19)
			return fail(c, 501, "5.5.4", "Bad SIZE parameter");
		for (i = 5; i < n; i++) {
			if (!isdigit((unsigned char)p[i]))
				return fail(c, 501, "5.5.4",
				    "Bad SIZE parameter");
			v = v * 10 + (uint64_t)(p[i] - '0');
		}
		c->has_size = 1;
		c->size = v;
		return 0;
	}
	/* RFC 4954 5: accepted and not trusted (the sender's identity is
	 * what this session authenticated, if anything) */
	if (n > 5 && strncasecmp(p, "AUTH=", 5) == 0)
		return 0;
	if (n == 8 && strncasecmp(p, "SMTPUTF8", 8) == 0) {
		c->smtputf8 = 1;	/* RFC 6531 3.4 */
		return 0;
	}
	if (n == 9 && strncasecmp(p, "BODY=7BIT", 9) == 0) {
		c->body = MR_BODY_7BIT;
		return 0;
	}
	if (n == 13 && strncasecmp(p, "BODY=8BITMIME", 13) == 0) {
		c->body = MR_BODY_8BITMIME;
		return 0;
	}
	return fail(c, 555, "5.5.4", "Unsupported MAIL parameter");
}

/* One ESMTP parameter of RCPT TO: DSN's NOTIFY and ORCPT only. */
static int
rcpt_param(struct mr_smtp_cmd *c, const char *p, size_t n)
{
	const char *err;

	switch (mr_dsn_rcpt_param(p, n, &c->dsn_rcpt, &err)) {
	case 1:
		c->has_dsn = 1;
		return 0;
	case -1:
		return fail(c, 501, "5.5.4", err);
	default:
		return fail(c, 555, "5.5.4", "Unsupported RCPT parameter");
	}
}

static int
parse_params(struct mr_smtp_cmd *c, const char *p, int is_mail)
{
	while (*p == ' ')
		p++;
	while (*p != '\0') {
		size_t n = strcspn(p, " ");

		if (!is_mail ? rcpt_param(c, p, n) != 0 :
		    mail_param(c, p, n) != 0)
			return c->code;
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}

/*
 * A path without its angle brackets, "user@domain" up to the next space,
 * as IIS and Postfix (strict_rfc821_envelopes = no) accept it: parsed as
 * if bracketed.  Returns the bytes of arg consumed, or -1 with *err.
 */
static int
parse_bare_path(const char *arg, int is_mail, struct mr_path *path,
    const char **err)
{
	char buf[MR_SMTP_LINE_MAX + 3];
	size_t len = strcspn(arg, " ");

	*err = "address must be enclosed in <>";
	if (len == 0 || len > MR_SMTP_LINE_MAX)
		return -1;
	buf[0] = '<';
	memcpy(buf + 1, arg, len);
	buf[len + 1] = '>';
	buf[len + 2] = '\0';
	if (mr_path_parse_utf8(buf, len + 2, 0, !is_mail, path, err) !=
	    (int)len + 2)
		return -1;
	return (int)len;
}

/* "FROM:<path> params" / "TO:<path> params" */
static int
parse_path_cmd(struct mr_smtp_cmd *c, const char *arg, int esmtp,
    int is_mail)
{
	const char *kw = is_mail ? "FROM:" : "TO:";
	size_t kwlen = strlen(kw);
	const char *err;
	int n;

	if (strncasecmp(arg, kw, kwlen) != 0)
		return fail(c, 501, "5.5.4", is_mail ?
		    "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
	arg += kwlen;
	while (*arg == ' ')	/* "MAIL FROM: <a@b>" is common */
		arg++;
	if (*arg == '<')
		n = mr_path_parse_utf8(arg, strlen(arg), is_mail, !is_mail,
		    &c->path, &err);
	else
		n = parse_bare_path(arg, is_mail, &c->path, &err);
	if (n < 0)
		return fail(c, 501, is_mail ? "5.1.7" : "5.1.3", err);
	arg += n;
	if (*arg != '\0' && *arg != ' ')
		return fail(c, 501, "5.5.4", "Syntax error after address");
	while (*arg == ' ')
		arg++;
	if (*arg != '\0' && !esmtp)
		return fail(c, 555, "5.5.4", "Parameters need EHLO");
	if (parse_params(c, arg, is_mail) != 0)
		return c->code;
	/* RFC 6531 3.7.4.1: a UTF-8 sender without SMTPUTF8 (a recipient's
	 * transaction state is the session's to check) */
	if (is_mail && c->path.utf8 && !c->smtputf8)
		return fail(c, 553, "5.6.7", "Non-ASCII addresses not "
		    "permitted for that sender (no SMTPUTF8)");
	return 0;
}

int
mr_smtp_parse(const char *line, size_t len, int esmtp,
    struct mr_smtp_cmd *c)
{
	size_t i, vlen;

	memset(c, 0, sizeof(*c));
	if (len > MR_SMTP_LINE_MAX)
		return fail(c, 500, "5.5.2", "Line too long");
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			return fail(c, 500, "5.5.2",
			    "Control character in command");
	vlen = strcspn(line, " ");
	for (i = 0; i < sizeof(verbs) / sizeof(*verbs); i++)
		if (strlen(verbs[i].name) == vlen &&
		    strncasecmp(line, verbs[i].name, vlen) == 0)
			break;
	if (i == sizeof(verbs) / sizeof(*verbs))
		return fail(c, 500, "5.5.2", "Command not recognized");
	c->verb = verbs[i].verb;
	c->arg = line + vlen;
	while (*c->arg == ' ')
		c->arg++;
	switch (c->verb) {
	case MR_V_EHLO:
	case MR_V_HELO:
		if (*c->arg == '\0' || strpbrk(c->arg, " \t") != NULL ||
		    strlen(c->arg) > 255)
			return fail(c, 501, "5.5.4", c->verb == MR_V_EHLO ?
			    "Syntax: EHLO hostname" : "Syntax: HELO hostname");
		return 0;
	case MR_V_MAIL:
		return parse_path_cmd(c, c->arg, esmtp, 1);
	case MR_V_RCPT:
		return parse_path_cmd(c, c->arg, esmtp, 0);
	case MR_V_BDAT:
		if (mr_bdat_parse(c->arg, &c->bdat) == -1)
			return fail(c, 501, "5.5.4",
			    "Syntax: BDAT chunk-size [LAST]");
		return 0;
	case MR_V_DATA:
	case MR_V_RSET:
	case MR_V_QUIT:
	case MR_V_STARTTLS:
		if (*c->arg != '\0')
			return fail(c, 501, "5.5.4",
			    "Syntax error: no parameters allowed");
		return 0;
	default:
		return 0;
	}
}
