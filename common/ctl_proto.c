/*
 * ctl_proto.c - parses a control socket request (ctl_proto.h) into a
 * typed structure before queued acts on it.
 *
 * Security: the bytes come from a local user whose credentials queued has
 * checked, but are parsed as hostile all the same: the length is bounded
 * by the caller and again here, tokens are counted, every value is
 * copied into a fixed field only after its length is checked, and a
 * control byte anywhere refuses the request (values reach logs and
 * answers).  Nothing is acted on here.
 */
#include "config.h"

#include <string.h>

#include "ctl_proto.h"

/* What names the verb's object: nothing, a queue id, an id or a domain
 * ("target"), a domain, or an optional server or domain. */
enum arg { A_NONE, A_ID, A_ID_OR_TARGET, A_TARGET, A_TARGET_OPT };

struct verb {
	const char	*name;
	enum mr_ctl_verb verb;
	int		 read_only;
	enum arg	 arg;
};

static const struct verb verbs[] = {
	{ "queue", MR_CTL_QUEUE, 1, A_NONE },
	{ "show", MR_CTL_SHOW, 1, A_ID },
	{ "flush", MR_CTL_FLUSH, 0, A_TARGET_OPT },
	{ "retry", MR_CTL_RETRY, 0, A_ID },
	{ "hold", MR_CTL_HOLD, 0, A_ID_OR_TARGET },
	{ "release", MR_CTL_RELEASE, 0, A_ID_OR_TARGET },
	{ "delete", MR_CTL_DELETE, 0, A_ID },
	{ "bounce", MR_CTL_BOUNCE, 0, A_ID },
	{ "stats", MR_CTL_STATS, 1, A_NONE },
	{ "reload", MR_CTL_RELOAD, 0, A_NONE },
	{ "stop", MR_CTL_STOP, 0, A_NONE },
	{ "etrn", MR_CTL_ETRN, 0, A_TARGET },
	{ "sessions", MR_CTL_SESSIONS, 1, A_NONE },
	{ NULL, 0, 0, A_NONE }
};

static const char *const state_names[] = {
	"any", "pending", "deferred", "held", "failed", NULL
};

static const struct verb *
find_verb(const char *name)
{
	size_t i;

	for (i = 0; verbs[i].name != NULL; i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

const char *
mr_ctl_verb_name(enum mr_ctl_verb v)
{
	size_t i;

	for (i = 0; verbs[i].name != NULL; i++)
		if (verbs[i].verb == v)
			return verbs[i].name;
	return NULL;
}

int
mr_ctl_read_only(enum mr_ctl_verb v)
{
	size_t i;

	for (i = 0; verbs[i].name != NULL; i++)
		if (verbs[i].verb == v)
			return verbs[i].read_only;
	return 0;
}

const char *
mr_ctl_state_name(enum mr_ctl_state s)
{
	if ((size_t)s >= sizeof(state_names) / sizeof(state_names[0]) - 1)
		return NULL;
	return state_names[s];
}

static int
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* Copies a value into a field of size sz; -1 if it does not fit. */
static int
set_field(char *dst, size_t sz, const char *val)
{
	size_t n = strlen(val);

	if (n == 0 || n >= sz)
		return -1;
	memcpy(dst, val, n + 1);
	return 0;
}

/* Queue ids are what mr_queue_id makes: letters and digits. */
static int
valid_id(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= 'a' && *s <= 'z')))
			return 0;
	return 1;
}

static int
set_state(struct mr_ctl_req *r, const char *val)
{
	size_t i;

	for (i = 1; state_names[i] != NULL; i++)
		if (strcmp(state_names[i], val) == 0) {
			r->state = (enum mr_ctl_state)i;
			return 0;
		}
	return -1;
}

/* One option token; -1 if it does not belong to the verb v. */
static int
option(struct mr_ctl_req *r, const struct verb *v, char *tok)
{
	char *val = strchr(tok, '=');
	int q = r->verb == MR_CTL_QUEUE;

	if (val == NULL) {
		if (strcmp(tok, "json") == 0)
			return r->json++ ? -1 : 0;
		if (strcmp(tok, "body") == 0 && r->verb == MR_CTL_SHOW)
			return r->body++ ? -1 : 0;
		return -1;
	}
	*val++ = '\0';
	if (strcmp(tok, "id") == 0 && r->id[0] == '\0' && valid_id(val))
		return set_field(r->id, sizeof(r->id), val);
	if ((q || r->verb == MR_CTL_SESSIONS) && strcmp(tok, "server") == 0 &&
	    r->server[0] == '\0')
		return set_field(r->server, sizeof(r->server), val);
	if (q && strcmp(tok, "domain") == 0 && r->domain[0] == '\0')
		return set_field(r->domain, sizeof(r->domain), val);
	if (q && strcmp(tok, "sender") == 0 && r->sender[0] == '\0')
		return set_field(r->sender, sizeof(r->sender), val);
	if (q && strcmp(tok, "state") == 0 && r->state == MR_CTL_ST_ANY)
		return set_state(r, val);
	if (v->arg >= A_ID_OR_TARGET && strcmp(tok, "target") == 0 &&
	    r->target[0] == '\0')
		return set_field(r->target, sizeof(r->target), val);
	if (r->verb == MR_CTL_BOUNCE && strcmp(tok, "reason") == 0 &&
	    r->reason[0] == '\0')
		return set_field(r->reason, sizeof(r->reason), val);
	return -1;
}

/* The verb's object is there, and nothing else. */
static int
check_arg(const struct mr_ctl_req *r, enum arg a, const char **err)
{
	int id = r->id[0] != '\0', target = r->target[0] != '\0';

	*err = "a queue id is needed here, and only here";
	switch (a) {
	case A_ID:
		return id && !target ? 0 : -1;
	case A_ID_OR_TARGET:
		*err = "a queue id or a domain is needed here";
		return id != target ? 0 : -1;
	case A_TARGET:
		*err = "a domain is needed here";
		return target && !id ? 0 : -1;
	default:
		return !id ? 0 : -1;
	}
}

int
mr_ctl_parse(const unsigned char *p, size_t len, struct mr_ctl_req *r,
    const char **err)
{
	char buf[MR_CTL_MAX + 1], *tok, *next, *end;
	const struct verb *v = NULL;
	size_t ntok = 0;

	memset(r, 0, sizeof(*r));
	*err = "malformed request";
	/* tokens end in NUL: the last byte must be one */
	if (len == 0 || len > MR_CTL_MAX || p[len - 1] != '\0')
		return -1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	end = buf + len;
	for (tok = buf; tok < end; tok = next) {
		next = tok + strlen(tok) + 1;	/* option() cuts at '=' */
		if (++ntok > MR_CTL_TOKENS || !printable(tok)) {
			*err = "too many or unprintable tokens";
			return -1;
		}
		if (ntok == 1) {
			if ((v = find_verb(tok)) == NULL) {
				*err = "unknown verb";
				return -1;
			}
			r->verb = v->verb;
		} else if (option(r, v, tok) == -1) {
			*err = "bad or repeated option";
			return -1;
		}
	}
	if (v == NULL) {
		*err = "empty request";
		return -1;
	}
	return check_arg(r, v->arg, err);
}
