/*
 * hdr_check.c - the header-check evaluator (hdr_check.h): splits the
 * header section into fields, unfolds each (a line break before white
 * space is removed, RFC 5322 2.2.3), looks it up, and reads the action.
 *
 * Security: the message is hostile bytes.  Only the first MR_HC_SCAN_MAX
 * bytes are read; a field is cut at MR_HC_FIELD_MAX bytes for the lookup
 * (the table's key limit), NUL bytes end nothing and are passed as
 * spaces; the reason copied from a table result keeps printable ASCII
 * only, bounded, so that it cannot break the SMTP reply it goes into.
 * Nothing here does I/O: the caller's lookup does.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hdr_check.h"

static const struct {
	const char		*word;
	enum mr_hc_action	 action;
} actions[] = {
	{ "reject", MR_HC_REJECT }, { "discard", MR_HC_DISCARD },
	{ "hold", MR_HC_HOLD }, { "ok", MR_HC_NONE }, { "dunno", MR_HC_NONE },
};

const char *
mr_hc_name(enum mr_hc_action a)
{
	static const char *const names[] = { "none", "hold", "discard",
	    "reject", "tempfail" };

	return a <= MR_HC_TEMPFAIL ? names[a] : "?";
}

/* A table result: its action (-1: unknown) and its text into r. */
static int
parse_result(const char *val, struct mr_hc_result *r, char *text)
{
	size_t i, n = strcspn(val, " \t"), t = 0;
	const char *rest = val + n;

	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strlen(actions[i].word) == n &&
		    strncasecmp(val, actions[i].word, n) == 0)
			break;
	if (i == sizeof(actions) / sizeof(actions[0])) {
		r->bad++;
		return -1;
	}
	rest += strspn(rest, " \t");
	for (; *rest != '\0' && t < MR_HC_TEXT_MAX; rest++)
		if (*rest >= ' ' && *rest <= '~')
			text[t++] = *rest;
	text[t] = '\0';
	return (int)actions[i].action;
}

/* One unfolded field (with its name) into key; its length. */
static size_t
unfold(const char *s, size_t n, char *key)
{
	size_t i, k = 0;

	for (i = 0; i < n && k < MR_HC_FIELD_MAX; i++) {
		if (s[i] == '\r' || s[i] == '\n')
			continue;
		if (s[i] == '\0')
			key[k++] = ' ';
		else
			key[k++] = s[i];
	}
	key[k] = '\0';
	return k;
}

/* The end of the field starting at s (its last line break included). */
static const char *
field_end(const char *s, const char *end)
{
	const char *nl;

	do {
		nl = memchr(s, '\n', (size_t)(end - s));
		s = nl != NULL ? nl + 1 : end;
	} while (s < end && (*s == ' ' || *s == '\t'));
	return s;
}

/* Looks one field up; 1 when it decides the message. */
static int
check_field(const char *key, mr_hc_lookup lookup, void *arg,
    struct mr_hc_result *r)
{
	char text[MR_HC_TEXT_MAX + 1], *val = NULL;
	enum mr_table_res res;
	size_t i;
	int a;

	res = lookup(arg, key, &val);
	if (res == MR_TABLE_TEMPFAIL) {
		r->action = MR_HC_TEMPFAIL;
		r->text[0] = '\0';
		return 1;
	}
	if (res != MR_TABLE_FOUND || val == NULL) {
		free(val);
		return 0;
	}
	a = parse_result(val, r, text);
	free(val);
	if (a <= (int)MR_HC_NONE || (a == MR_HC_HOLD &&
	    r->action == MR_HC_HOLD))
		return 0;
	r->action = (enum mr_hc_action)a;
	memcpy(r->text, text, sizeof(text));
	for (i = 0; key[i] != '\0' && i + 1 < sizeof(r->field); i++)
		if (key[i] >= ' ' && key[i] <= '~')
			r->field[i] = key[i];
		else
			r->field[i] = '?';
	r->field[i] = '\0';
	return a != MR_HC_HOLD;
}

void
mr_hc_eval(const char *msg, size_t len, mr_hc_lookup lookup, void *arg,
    struct mr_hc_result *r)
{
	const char *s = msg, *end, *e;
	char *key;

	memset(r, 0, sizeof(*r));
	end = msg + (len < MR_HC_SCAN_MAX ? len : MR_HC_SCAN_MAX);
	key = malloc(MR_HC_FIELD_MAX + 1);
	if (key == NULL)
		abort();
	while (s < end && *s != '\r' && *s != '\n') {
		e = field_end(s, end);
		if (unfold(s, (size_t)(e - s), key) > 0 &&
		    check_field(key, lookup, arg, r))
			break;
		s = e;
	}
	free(key);
}
