/*
 * table_regex.c - the "regex" table: PCRE2 patterns tried in order, the
 * first match wins, its captures substituted into the result.
 *
 *	# comment
 *	/^postmaster@/		admin@example.org
 *	/^(.+)\+.*@(.*)$/	$1@$2
 *
 * A line is "/PATTERN/FLAGS RESULT": the pattern ends at the first '/'
 * not escaped by a backslash, FLAGS is empty or "i" (every pattern is
 * matched without regard to case anyway: keys are lower case), RESULT is
 * the rest of the line, where $1 to $9 stand for captures (an unset one
 * for nothing) and $$ for a dollar sign.
 *
 * Security: the file is trusted like the configuration, but parsed as if
 * it were not: lines bounded, every pattern compiled at open (a bad one
 * is an error naming FILE:LINE), a match limit on every match so that no
 * pattern can stall queued, and a result longer than MR_TABLE_LINE_MAX is
 * refused rather than cut.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "buf.h"
#include "table.h"
#include "util.h"

#define RX_MATCH_LIMIT	100000
#define RX_DEPTH_LIMIT	1000

struct rx_rule {
	pcre2_code	*re;
	char		*result;
	int		 line;
};

struct rx_tbl {
	struct rx_rule		*rules;
	size_t			 n;
	pcre2_match_context	*mctx;
};

static void
rx_close(void *h)
{
	struct rx_tbl *t = h;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		pcre2_code_free(t->rules[i].re);
		free(t->rules[i].result);
	}
	free(t->rules);
	pcre2_match_context_free(t->mctx);
	free(t);
}

/* Checks RESULT's $ references: $1..$9 and $$ only. */
static const char *
check_result(const char *r, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (r[i] != '$')
			continue;
		if (i + 1 < len && (r[i + 1] == '$' ||
		    (r[i + 1] >= '1' && r[i + 1] <= '9'))) {
			i++;
			continue;
		}
		return "\"$\" must be followed by 1 to 9 or \"$\"";
	}
	return NULL;
}

/* One non-blank line into a rule; a message on error. */
static const char *
parse_rule(const char *s, size_t len, struct rx_rule *r, char *msg,
    size_t msglen)
{
	size_t i, pe, rs;
	int ecode;
	PCRE2_SIZE eoff;
	uint32_t opts = PCRE2_CASELESS;

	if (s[0] != '/')
		return "expected /PATTERN/";
	for (i = 1; i < len && s[i] != '/'; i++)
		if (s[i] == '\\')
			i++;
	if (i >= len)
		return "pattern without its closing \"/\"";
	pe = i;
	for (i++; i < len && s[i] != ' ' && s[i] != '\t'; i++)
		if (s[i] != 'i')
			return "unknown flag after the pattern (only \"i\")";
	for (; i < len && (s[i] == ' ' || s[i] == '\t'); i++)
		;
	for (rs = i; len > rs && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
	    s[len - 1] == '\r'); len--)
		;
	if (rs == len)
		return "pattern without a result";
	if (check_result(s + rs, len - rs) != NULL)
		return check_result(s + rs, len - rs);
	r->re = pcre2_compile((PCRE2_SPTR)(s + 1), pe - 1, opts, &ecode,
	    &eoff, NULL);
	if (r->re == NULL) {
		char e[120];

		pcre2_get_error_message(ecode, (PCRE2_UCHAR *)e, sizeof(e));
		snprintf(msg, msglen, "bad pattern at offset %zu: %s",
		    (size_t)eoff, e);
		return msg;
	}
	r->result = mr_xcalloc(1, len - rs + 1);
	memcpy(r->result, s + rs, len - rs);
	return NULL;
}

/* Blank or comment: nothing to do. */
static int
blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r');
	    i++)
		;
	return i == len || s[i] == '#';
}

static const char *
check_bytes(const char *s, size_t len)
{
	size_t i;

	if (len > MR_TABLE_LINE_MAX)
		return "line too long";
	for (i = 0; i < len; i++)
		if (s[i] == '\0' || (unsigned char)s[i] == 0x7f ||
		    ((unsigned char)s[i] < 0x20 && s[i] != '\t' &&
		    (s[i] != '\r' || i + 1 != len)))
			return "control character";
	return NULL;
}

void *
mr_table_regex_parse(const char *name, const char *text, size_t len,
    char *err, size_t errlen)
{
	struct rx_tbl *t = mr_xcalloc(1, sizeof(*t));
	const char *p = text, *end = text + len, *nl, *why;
	char msg[200];
	struct rx_rule r;
	int line = 0;

	for (; p < end; p = nl + 1) {
		line++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((why = check_bytes(p, (size_t)(nl - p))) != NULL)
			goto fail;
		if (blank(p, (size_t)(nl - p)))
			continue;
		while (p < nl && (*p == ' ' || *p == '\t'))
			p++;
		memset(&r, 0, sizeof(r));
		why = parse_rule(p, (size_t)(nl - p), &r, msg, sizeof(msg));
		if (why != NULL)
			goto fail;
		r.line = line;
		t->rules = mr_xreallocarray(t->rules, t->n + 1,
		    sizeof(*t->rules));
		t->rules[t->n++] = r;
	}
	if ((t->mctx = pcre2_match_context_create(NULL)) == NULL)
		abort();
	pcre2_set_match_limit(t->mctx, RX_MATCH_LIMIT);
	pcre2_set_depth_limit(t->mctx, RX_DEPTH_LIMIT);
	return t;
fail:
	snprintf(err, errlen, "%s:%d: %s", name, line, why);
	rx_close(t);
	return NULL;
}

static void *
rx_open(const char *path, char *err, size_t errlen)
{
	size_t len;
	char *text;
	void *t;

	if ((text = mr_read_file(path, MR_TABLE_FILE_MAX, &len)) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	t = mr_table_regex_parse(path, text, len, err, errlen);
	free(text);
	return t;
}

/* RESULT with $N replaced by capture N of the match. */
static int
expand(const char *res, const char *key, pcre2_match_data *md, int rc,
    struct mr_buf *out)
{
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
	const char *p;
	int n;

	for (p = res; *p != '\0'; p++) {
		if (*p != '$') {
			mr_buf_add(out, p, 1);
		} else if (*++p == '$') {
			mr_buf_add(out, "$", 1);
		} else {
			n = *p - '0';
			if (n < rc && ov[2 * n] != PCRE2_UNSET)
				mr_buf_add(out, key + ov[2 * n],
				    ov[2 * n + 1] - ov[2 * n]);
		}
		if (out->len > MR_TABLE_LINE_MAX)
			return -1;
	}
	return 0;
}

static enum mr_table_res
rx_lookup(void *h, const char *key, char **val, char *err, size_t errlen)
{
	struct rx_tbl *t = h;
	pcre2_match_data *md;
	enum mr_table_res res = MR_TABLE_NOTFOUND;
	struct mr_buf out;
	size_t i;
	int rc = PCRE2_ERROR_NOMATCH;

	mr_buf_init(&out);
	for (i = 0; i < t->n; i++) {
		if ((md = pcre2_match_data_create_from_pattern(t->rules[i].re,
		    NULL)) == NULL)
			abort();
		rc = pcre2_match(t->rules[i].re, (PCRE2_SPTR)key,
		    strlen(key), 0, 0, md, t->mctx);
		if (rc > 0 && expand(t->rules[i].result, key, md, rc,
		    &out) == -1) {
			snprintf(err, errlen, "line %d: result too long",
			    t->rules[i].line);
			res = MR_TABLE_TEMPFAIL;
		} else if (rc > 0) {
			mr_buf_add(&out, "", 1);
			*val = mr_xstrdup(out.data);
			res = MR_TABLE_FOUND;
		} else if (rc != PCRE2_ERROR_NOMATCH) {
			snprintf(err, errlen, "line %d: match failed (%d)",
			    t->rules[i].line, rc);
			res = MR_TABLE_TEMPFAIL;
		}
		pcre2_match_data_free(md);
		if (rc != PCRE2_ERROR_NOMATCH)
			break;
	}
	mr_buf_free(&out);
	return res;
}

const struct mr_table_backend mr_table_regex = {
	"regex", rx_open, rx_lookup, rx_close
};
