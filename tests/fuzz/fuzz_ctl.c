/*
 * fuzz_ctl.c - the control socket's request parser (common/ctl_proto.c).
 *
 * Input: the bytes of one request after its length.  Beyond "no crash":
 * an accepted request names a known verb, carries an id exactly when the
 * verb needs one (letters and digits only; hold and release take an id
 * or a domain, exactly one), every filled field is
 * NUL-terminated, printable and within its size, and options appear only
 * on the verbs they belong to.
 */
#include "config.h"

#include "ctl_proto.h"
#include "fuzz.h"

static void
check_field(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	CHECK(n < size);
	for (; *s != '\0'; s++)
		CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
}

static int
needs_id(enum mr_ctl_verb v)
{
	return v == MR_CTL_SHOW || v == MR_CTL_RETRY || v == MR_CTL_DELETE ||
	    v == MR_CTL_BOUNCE;
}

/* hold/release: an id or a domain, exactly one; etrn: a domain. */
static void
check_object(const struct mr_ctl_req *r)
{
	int id = r->id[0] != '\0', target = r->target[0] != '\0';

	if (r->verb == MR_CTL_HOLD || r->verb == MR_CTL_RELEASE)
		CHECK(id != target);
	else if (r->verb == MR_CTL_ETRN)
		CHECK(target && !id);
	else {
		CHECK(needs_id(r->verb) == id);
		CHECK(r->verb == MR_CTL_FLUSH || !target);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mr_ctl_req r;
	const char *err = NULL;
	const char *p;

	if (mr_ctl_parse(data, size, &r, &err) == -1) {
		CHECK(err != NULL);
		return 0;
	}
	CHECK(size > 0 && size <= MR_CTL_MAX);
	CHECK(mr_ctl_verb_name(r.verb) != NULL);
	check_field(r.id, sizeof(r.id));
	check_object(&r);
	for (p = r.id; *p != '\0'; p++)
		CHECK((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= 'a' && *p <= 'z'));
	check_field(r.server, sizeof(r.server));
	check_field(r.domain, sizeof(r.domain));
	check_field(r.sender, sizeof(r.sender));
	check_field(r.target, sizeof(r.target));
	check_field(r.reason, sizeof(r.reason));
	CHECK(mr_ctl_state_name(r.state) != NULL);
	if (r.verb != MR_CTL_QUEUE)
		CHECK(r.domain[0] == '\0' && r.sender[0] == '\0' &&
		    r.state == MR_CTL_ST_ANY);
	/* --server filters the queue and the sessions */
	if (r.verb != MR_CTL_QUEUE && r.verb != MR_CTL_SESSIONS)
		CHECK(r.server[0] == '\0');
	CHECK(r.verb == MR_CTL_BOUNCE || r.reason[0] == '\0');
	CHECK(r.verb == MR_CTL_SHOW || !r.body);
	CHECK(r.json == 0 || r.json == 1);
	return 0;
}
