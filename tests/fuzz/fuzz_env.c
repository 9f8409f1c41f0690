/*
 * fuzz_env.c - libFuzzer target for the envelope file parser
 * (queued/queue_env.c).
 *
 * The input is an envelope as read from Queue/ID.env, copied and
 * NUL-terminated as mr_read_file leaves it; the message id is ENV_ID.
 * Beyond "no crash", a length that disagrees with the text (an embedded
 * NUL) must be refused before anything is stored; an accepted envelope
 * has a sender, a client, a helo and at least one recipient, no value
 * holds a line break, and env_format writes it back to text that parses
 * to the same envelope.
 */
#include "config.h"

#include "fuzz.h"
#include "buf.h"
#include "proto.h"
#include "queued.h"

#define ENV_ID	"0123456789abcdef01234567"

/* queue_env.c's calls into the rest of queued: nothing to do here */
void
sched_forget(struct qmsg *m)
{
	(void)m;
}

void
journal_release(struct qmsg *m)
{
	(void)m;
}

void
commit_env_wait(struct qmsg *m)
{
	(void)m;
}

void
commit_env_forget(struct qmsg *m)
{
	(void)m;
}

static struct qmsg *
new_msg(void)
{
	return msg_new(NULL, ENV_ID);
}

static char *
copy(const uint8_t *data, size_t size)
{
	char *s;

	s = mr_xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static void
check_str(const char *s)
{
	CHECK(s != NULL);
	CHECK(strchr(s, '\n') == NULL);
}

static void
check_msg(const struct qmsg *m)
{
	size_t i;

	check_str(m->sender);
	check_str(m->client);
	check_str(m->helo);
	CHECK(m->nrcpts > 0 && m->rcpts != NULL);
	for (i = 0; i < m->nrcpts; i++) {
		check_str(m->rcpts[i].addr);
		CHECK(m->rcpts[i].state <= R_FAILED);
		if (m->rcpts[i].text != NULL)
			check_str(m->rcpts[i].text);
	}
}

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* What env_format writes must parse back to the same envelope. */
static void
check_roundtrip(const struct qmsg *m)
{
	struct mr_buf b;
	struct qmsg *m2;
	size_t i;

	mr_buf_init(&b);
	env_format(m, &b);
	m2 = new_msg();
	CHECK(env_parse(m2, b.data, b.len) == 0);
	CHECK(str_eq(m->sender, m2->sender));
	CHECK(str_eq(m->client, m2->client));
	CHECK(str_eq(m->helo, m2->helo));
	CHECK(m->created == m2->created && m->next_try == m2->next_try);
	CHECK(m->attempts == m2->attempts && m->size == m2->size);
	CHECK(m->body == m2->body && m->body <= MR_BODY_8BITMIME);
	CHECK(m->smtputf8 == m2->smtputf8 && m->smtputf8 <= 1);
	CHECK(m->nrcpts == m2->nrcpts);
	for (i = 0; i < m->nrcpts; i++) {
		CHECK(str_eq(m->rcpts[i].addr, m2->rcpts[i].addr));
		CHECK(str_eq(m->rcpts[i].text, m2->rcpts[i].text));
		CHECK(m->rcpts[i].state == m2->rcpts[i].state);
	}
	msg_free(m2);
	mr_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qmsg *m;
	char *text;
	size_t len, bad;

	text = copy(data, size);
	len = strlen(text);

	/* a length that is not the text's: refused, nothing stored */
	bad = len < size ? size : len + 1;
	m = new_msg();
	CHECK(env_parse(m, text, bad) == -1);
	CHECK(m->sender == NULL && m->client == NULL && m->helo == NULL);
	CHECK(m->nrcpts == 0 && m->rcpts == NULL);
	msg_free(m);

	m = new_msg();
	if (env_parse(m, text, len) == 0) {
		check_msg(m);
		check_roundtrip(m);
	}
	msg_free(m);
	free(text);
	return 0;
}
