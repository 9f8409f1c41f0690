/*
 * test_msg.c - unit tests for the IPC payload decoders (ipc_msg.c).
 *
 * Each decoder is a pure function: hand-made payloads go in, a typed
 * structure or a refusal comes out, and nothing is left allocated after
 * a refusal (the ASan build checks that).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "dsn_param.h"
#include "ipc_msg.h"
#include "proto.h"

static void
commit_head(struct mr_buf *b, const char *sender, uint32_t n)
{
	mr_buf_init(b);
	mr_buf_put_u64(b, 7);
	mr_buf_put_str(b, "ABC123");
	mr_buf_put_str(b, sender);
	mr_buf_put_u32(b, n);
}

static int
commit(const struct mr_buf *b, struct mr_m_commit *c)
{
	const char *err = NULL;
	int rc;

	rc = mr_msg_commit((const unsigned char *)b->data, b->len, c, &err);
	if (rc == -1) {
		assert_non_null(err);
		assert_null(c->rcpts);
		assert_int_equal(c->nrcpts, 0);
	}
	return rc;
}

/* The DSN block for n recipients, the same parameters for each. */
static void
put_dsn(struct mr_buf *b, uint32_t ret, const char *envid, uint32_t n,
    uint32_t notify, const char *orcpt)
{
	uint32_t i;

	mr_buf_put_u32(b, ret);
	mr_buf_put_str(b, envid);
	mr_buf_put_u32(b, n);
	for (i = 0; i < n; i++) {
		mr_buf_put_u32(b, notify);
		mr_buf_put_str(b, orcpt);
	}
}

/* Every malformed DSN block refuses the whole COMMIT. */
static void
t_commit_bad_dsn(void **state)
{
	static const struct {
		uint32_t	 ret;
		const char	*envid;
		uint32_t	 n;
		uint32_t	 notify;
		const char	*orcpt;
	} bad[] = {
		{ 3, "", 1, 0, "" },				/* no such RET */
		{ 0, "a b", 1, 0, "" },				/* not xtext */
		{ 0, "a+2", 1, 0, "" },
		{ 0, "", 2, 0, "" },				/* count */
		{ 0, "", 1, MR_NOTIFY_NEVER | MR_NOTIFY_DELAY, "" },
		{ 0, "", 1, 16, "" },
		{ 0, "", 1, 0, "rfc822" },			/* no ';' */
		{ 0, "", 1, 0, "rfc822;a\r\nb" },
	};
	struct mr_m_commit c;
	struct mr_buf b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		commit_head(&b, "", 1);
		mr_buf_put_str(&b, "r@remote.test");
		mr_buf_put_u64(&b, 1);
		mr_buf_put_str(&b, "");
		mr_buf_put_str(&b, "");
		mr_buf_put_u32(&b, MR_BODY_NONE);
		mr_buf_put_str(&b, "");
		put_dsn(&b, bad[i].ret, bad[i].envid, bad[i].n, bad[i].notify,
		    bad[i].orcpt);
		mr_buf_put_u32(&b, 0);
		if (commit(&b, &c) != -1)
			fail_msg("DSN row %zu decoded", i);
		mr_buf_free(&b);
	}
}

static void
t_commit_good(void **state)
{
	struct mr_m_commit c;
	struct mr_buf b;

	(void)state;
	commit_head(&b, "a@client.test", 2);
	mr_buf_put_str(&b, "r1@Remote.TEST");
	mr_buf_put_str(&b, "r2@remote.test");
	mr_buf_put_u64(&b, 1234);
	mr_buf_put_str(&b, "127.0.0.1");
	mr_buf_put_str(&b, "client.test");
	mr_buf_put_u32(&b, MR_BODY_8BITMIME);
	/* without the AUTH name the frame is short */
	assert_int_equal(commit(&b, &c), -1);
	mr_buf_put_str(&b, "bob");
	assert_int_equal(commit(&b, &c), -1);	/* no DSN block */
	put_dsn(&b, MR_RET_HDRS, "env+2Bid", 2, MR_NOTIFY_NEVER,
	    "rfc822;r1@remote.test");
	assert_int_equal(commit(&b, &c), -1);	/* no SMTPUTF8 flag */
	mr_buf_put_u32(&b, 0);
	assert_int_equal(commit(&b, &c), 0);
	assert_int_equal(c.smtputf8, 0);
	assert_string_equal(c.auth, "bob");
	assert_int_equal(c.body, MR_BODY_8BITMIME);
	assert_int_equal(c.dsn.ret, MR_RET_HDRS);
	assert_string_equal(c.dsn.envid, "env+2Bid");
	assert_int_equal(c.dsn.notify[1], MR_NOTIFY_NEVER);
	assert_string_equal(c.dsn.orcpt[1], "rfc822;r1@remote.test");
	assert_int_equal(c.req, 7);
	assert_string_equal(c.id, "ABC123");
	assert_string_equal(c.sender, "a@client.test");
	assert_int_equal(c.nrcpts, 2);
	assert_string_equal(c.rcpts[0], "r1@remote.test");
	assert_string_equal(c.rcpts[1], "r2@remote.test");
	assert_int_equal(c.size, 1234);
	assert_string_equal(c.helo, "client.test");
	mr_msg_commit_free(&c);
	mr_buf_free(&b);
}

/* A UTF-8 address (RFC 6531) only in a COMMIT flagged SMTPUTF8; the flag
 * is 0 or 1; invalid UTF-8 never decodes. */
static void
t_commit_smtputf8(void **state)
{
	static const struct {
		const char	*rcpt;
		uint32_t	 flag;
		int		 rc;
	} rows[] = {
		{ "j\xc3\xb6rg@b\xc3\xbc" "cher.test", 1, 0 },
		{ "j\xc3\xb6rg@b\xc3\xbc" "cher.test", 0, -1 },
		{ "r@remote.test", 1, 0 },
		{ "r@remote.test", 2, -1 },
		{ "j\xc0\xafrg@remote.test", 1, -1 },	/* overlong */
		{ "j\xed\xa0\x80@remote.test", 1, -1 },	/* surrogate */
		{ "j\xc2\x85@remote.test", 1, -1 },	/* C1 control */
		{ "j\xc3@remote.test", 1, -1 },		/* truncated */
	};
	struct mr_m_commit c;
	struct mr_buf b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		commit_head(&b, "", 1);
		mr_buf_put_str(&b, rows[i].rcpt);
		mr_buf_put_u64(&b, 1);
		mr_buf_put_str(&b, "");
		mr_buf_put_str(&b, "");
		mr_buf_put_u32(&b, MR_BODY_8BITMIME);
		mr_buf_put_str(&b, "");
		put_dsn(&b, 0, "", 1, 0, "");
		mr_buf_put_u32(&b, rows[i].flag);
		if (commit(&b, &c) != rows[i].rc)
			fail_msg("row %zu", i);
		if (rows[i].rc == 0) {
			assert_int_equal(c.smtputf8, rows[i].flag);
			assert_string_equal(c.rcpts[0], rows[i].rcpt);
		}
		mr_msg_commit_free(&c);
		mr_buf_free(&b);
	}
}

/* The frame that once crashed queued: a recipient count above the
 * maximum, with no recipient array allocated yet. */
static void
t_commit_rcpt_count_over_max(void **state)
{
	struct mr_m_commit c;
	struct mr_buf b;

	(void)state;
	commit_head(&b, "", MR_RCPT_MAX + 1);
	assert_int_equal(commit(&b, &c), -1);
	mr_buf_free(&b);
	commit_head(&b, "", 0);
	assert_int_equal(commit(&b, &c), -1);
	mr_buf_free(&b);
}

/* A count the rest of the payload cannot hold allocates nothing. */
static void
t_commit_rcpt_count_beyond_payload(void **state)
{
	struct mr_m_commit c;
	struct mr_buf b;

	(void)state;
	commit_head(&b, "", 3);
	mr_buf_put_str(&b, "r@remote.test");
	assert_int_equal(commit(&b, &c), -1);
	mr_buf_free(&b);
}

/* A bad recipient after good ones: those are freed, none leak. */
static void
t_commit_bad_rcpt_late(void **state)
{
	struct mr_m_commit c;
	struct mr_buf b;

	(void)state;
	commit_head(&b, "", 3);
	mr_buf_put_str(&b, "r1@remote.test");
	mr_buf_put_str(&b, "r2@remote.test");
	mr_buf_put_str(&b, "no-at-sign");
	mr_buf_put_u64(&b, 1);
	mr_buf_put_str(&b, "");
	mr_buf_put_str(&b, "");
	assert_int_equal(commit(&b, &c), -1);
	mr_buf_free(&b);
}

static void
t_commit_control_in_helo(void **state)
{
	struct mr_m_commit c;
	struct mr_buf b;

	(void)state;
	commit_head(&b, "", 1);
	mr_buf_put_str(&b, "r@remote.test");
	mr_buf_put_u64(&b, 1);
	mr_buf_put_str(&b, "127.0.0.1");
	mr_buf_put_str(&b, "evil\r\nX-Injected: 1");
	mr_buf_put_u32(&b, MR_BODY_7BIT);
	mr_buf_put_str(&b, "");
	put_dsn(&b, 0, "", 1, 0, "");
	mr_buf_put_u32(&b, 0);
	assert_int_equal(commit(&b, &c), -1);
	mr_buf_free(&b);
	/* nor in the AUTH name, which reaches the envelope and MAIL AUTH= */
	commit_head(&b, "", 1);
	mr_buf_put_str(&b, "r@remote.test");
	mr_buf_put_u64(&b, 1);
	mr_buf_put_str(&b, "127.0.0.1");
	mr_buf_put_str(&b, "client.test");
	mr_buf_put_u32(&b, MR_BODY_7BIT);
	mr_buf_put_str(&b, "bob\r\nRCPT TO:<x@y>");
	put_dsn(&b, 0, "", 1, 0, "");
	mr_buf_put_u32(&b, 0);
	assert_int_equal(commit(&b, &c), -1);
	mr_buf_free(&b);
}

static void
t_job(void **state)
{
	struct mr_m_job j;
	struct mr_buf b;
	const char *err;

	(void)state;
	mr_buf_init(&b);
	mr_buf_put_u64(&b, 9);
	mr_buf_put_u32(&b, 0);
	mr_buf_put_str(&b, "ID1");
	mr_buf_put_str(&b, "");
	mr_buf_put_u32(&b, 1);
	mr_buf_put_str(&b, "r@remote.test");
	mr_buf_put_u32(&b, MR_BODY_8BITMIME + 1);	/* no such BODY */
	mr_buf_put_str(&b, "");
	put_dsn(&b, 0, "", 1, 0, "");
	mr_buf_put_u32(&b, 0);
	assert_int_equal(mr_msg_job((unsigned char *)b.data, b.len, &j, &err),
	    -1);
	b.len -= 4 + 5 + 4 + 5 + 4 + 4 + 5 + 4;
	mr_buf_put_u32(&b, MR_BODY_8BITMIME);
	mr_buf_put_str(&b, "");
	put_dsn(&b, MR_RET_FULL, "E", 1, MR_NOTIFY_SUCCESS |
	    MR_NOTIFY_FAILURE, "rfc822;x@y");
	/* the SMTPUTF8 flag (RFC 6531) is 0 or 1 */
	mr_buf_put_u32(&b, 2);
	assert_int_equal(mr_msg_job((unsigned char *)b.data, b.len, &j, &err),
	    -1);
	b.len -= 4;
	mr_buf_put_u32(&b, 1);
	assert_int_equal(mr_msg_job((unsigned char *)b.data, b.len, &j, &err),
	    0);
	assert_int_equal(j.smtputf8, 1);
	assert_string_equal(j.auth, "");
	assert_int_equal(j.body, MR_BODY_8BITMIME);
	assert_int_equal(j.nrcpts, 1);
	assert_string_equal(j.rcpts[0], "r@remote.test");
	assert_int_equal(j.dsn.ret, MR_RET_FULL);
	assert_int_equal(j.dsn.notify[0], MR_NOTIFY_SUCCESS |
	    MR_NOTIFY_FAILURE);
	assert_string_equal(j.dsn.orcpt[0], "rfc822;x@y");
	mr_msg_job_free(&j);
	/* a CR in a recipient is an SMTP command injection */
	b.data[b.len - 4 - 6 - 5 - 4 - 6 - 4 - 4 - 15] = '\r';
	assert_int_equal(mr_msg_job((unsigned char *)b.data, b.len, &j, &err),
	    -1);
	assert_null(j.rcpts);
	mr_buf_free(&b);
}

static void
t_results(void **state)
{
	struct mr_m_results r;
	struct mr_buf b;
	const char *err;

	(void)state;
	mr_buf_init(&b);
	mr_buf_put_u64(&b, 3);
	mr_buf_put_u32(&b, 0xffffffffU);
	assert_int_equal(mr_msg_result((unsigned char *)b.data, b.len, &r,
	    &err), -1);
	mr_buf_reset(&b);
	mr_buf_put_u64(&b, 3);
	mr_buf_put_u32(&b, 2);
	mr_buf_put_u32(&b, MR_DS_OK);
	mr_buf_put_str(&b, "250 ok");
	mr_buf_put_u32(&b, 7);		/* no such status */
	mr_buf_put_str(&b, "?");
	assert_int_equal(mr_msg_result((unsigned char *)b.data, b.len, &r,
	    &err), -1);
	assert_null(r.r);
	b.len -= 4 + 4 + 2;	/* the status and "?" (u32 length, '?', NUL) */
	mr_buf_put_u32(&b, MR_DS_AGAIN);	/* not tried: a result only */
	mr_buf_put_str(&b, "?");
	assert_int_equal(mr_msg_result((unsigned char *)b.data, b.len, &r,
	    &err), 0);
	assert_int_equal(r.r[1].status, MR_DS_AGAIN);
	mr_msg_results_free(&r);
	mr_buf_reset(&b);
	mr_buf_put_u32(&b, 1);
	mr_buf_put_str(&b, "ID1");
	mr_buf_put_str(&b, "r@remote.test");
	mr_buf_put_u32(&b, MR_DS_TEMP);	/* a replay is final only */
	mr_buf_put_str(&b, "451 later");
	assert_int_equal(mr_msg_replay((unsigned char *)b.data, b.len, &r,
	    &err), -1);
	mr_buf_free(&b);
}

static void
t_reply_and_peer(void **state)
{
	struct mr_m_reply r;
	struct mr_buf b;
	const char *err;
	uint32_t kind;

	(void)state;
	mr_buf_init(&b);
	mr_buf_put_u64(&b, 1);
	mr_buf_put_str(&b, "id\r\nX: 1");
	assert_int_equal(mr_msg_reply(MR_Q_NEW_OK, (unsigned char *)b.data,
	    b.len, &r, &err), -1);
	mr_buf_reset(&b);
	mr_buf_put_u64(&b, 1);
	mr_buf_put_str(&b, "");
	assert_int_equal(mr_msg_reply(MR_Q_COMMIT_OK, (unsigned char *)b.data,
	    b.len, &r, &err), -1);
	assert_int_equal(mr_msg_reply(MR_Q_COMMIT_FAIL,
	    (unsigned char *)b.data, b.len, &r, &err), 0);
	mr_buf_reset(&b);
	mr_buf_put_u32(&b, MR_PROC_QUEUED);
	assert_int_equal(mr_msg_peer((unsigned char *)b.data, b.len, &kind,
	    &err), 0);
	assert_int_equal(kind, MR_PROC_QUEUED);
	assert_int_equal(mr_msg_peer_bad((unsigned char *)b.data, b.len,
	    MR_PROC_QUEUED, &kind, &err), -1);
	mr_buf_reset(&b);
	mr_buf_put_u32(&b, MR_PROC_MASTER);
	assert_int_equal(mr_msg_peer((unsigned char *)b.data, b.len, &kind,
	    &err), -1);
	mr_buf_free(&b);
}

/* MR_R_PTR: a numeric address and nothing else. */
static int
ptr(const char *addr, int extra)
{
	struct mr_m_ptr m;
	struct mr_buf b;
	const char *err;
	int rc;

	mr_buf_init(&b);
	mr_buf_put_u64(&b, 9);
	mr_buf_put_str(&b, addr);
	if (extra)
		mr_buf_put_u32(&b, 0);
	rc = mr_msg_ptr((unsigned char *)b.data, b.len, &m, &err);
	if (rc == 0)
		assert_string_equal(m.addr, addr);
	mr_buf_free(&b);
	return rc;
}

static void
t_ptr(void **state)
{
	(void)state;
	assert_int_equal(ptr("127.0.0.4", 0), 0);
	assert_int_equal(ptr("2001:db8::1", 0), 0);
	assert_int_equal(ptr("127.0.0.4", 1), -1);
	assert_int_equal(ptr("", 0), -1);
	assert_int_equal(ptr("host.example", 0), -1);
	assert_int_equal(ptr("127.0.0.4\r\n", 0), -1);
}

static int
ptr_answer(uint32_t status, uint32_t ttl, const char *name)
{
	struct mr_m_ptr_answer a;
	struct mr_buf b;
	const char *err;
	int rc;

	mr_buf_init(&b);
	mr_buf_put_u64(&b, 9);
	mr_buf_put_u32(&b, status);
	mr_buf_put_u32(&b, ttl);
	mr_buf_put_str(&b, name);
	rc = mr_msg_ptr_answer((unsigned char *)b.data, b.len, &a, &err);
	if (rc == 0) {
		assert_int_equal(a.req, 9);
		assert_int_equal(a.status, status);
		assert_string_equal(a.name, name);
	}
	mr_buf_free(&b);
	return rc;
}

static void
t_ptr_answer(void **state)
{
	(void)state;
	assert_int_equal(ptr_answer(MR_PTR_OK, 60, "good.example"), 0);
	assert_int_equal(ptr_answer(MR_PTR_UNCONFIRMED, 0, "a-b_c.d"), 0);
	assert_int_equal(ptr_answer(MR_PTR_NONE, 60, ""), 0);
	assert_int_equal(ptr_answer(MR_PTR_FAIL, 0, ""), 0);
	/* a name exactly when there is one, and a host name at that */
	assert_int_equal(ptr_answer(MR_PTR_OK, 60, ""), -1);
	assert_int_equal(ptr_answer(MR_PTR_FAIL, 0, "x.example"), -1);
	assert_int_equal(ptr_answer(MR_PTR_OK, 60, "x.example."), -1);
	assert_int_equal(ptr_answer(MR_PTR_OK, 60, "a..b"), -1);
	assert_int_equal(ptr_answer(MR_PTR_OK, 60, "x (y) [1.2.3.4]"), -1);
	assert_int_equal(ptr_answer(MR_PTR_OK, 60, "x\r\nX-Evil: 1"), -1);
	assert_int_equal(ptr_answer(MR_PTR_FAIL + 1, 0, ""), -1);
	assert_int_equal(ptr_answer(MR_PTR_OK, MR_PTR_TTL_MAX + 1, "x"), -1);
}

/* MR_Q_SESSION: what mailrootctl sessions lists. */
static int
session(uint32_t op, uint32_t state, const char *helo, const char *cmd,
    int trailing, struct mr_m_session *m)
{
	/* the decoded strings point into the frame: it lives until the
	 * next call (the last one stays reachable until exit) */
	static struct mr_buf b;
	const char *err;

	mr_buf_free(&b);
	mr_buf_init(&b);
	mr_buf_put_u32(&b, op);
	mr_buf_put_u64(&b, 42);
	mr_buf_put_u32(&b, 0);
	mr_buf_put_str(&b, "192.0.2.1");
	mr_buf_put_str(&b, "127.0.0.1");
	mr_buf_put_u32(&b, 25);
	mr_buf_put_u32(&b, state);
	mr_buf_put_str(&b, helo);
	mr_buf_put_str(&b, "bob");
	mr_buf_put_str(&b, cmd);
	mr_buf_put_u64(&b, 1800000000);
	if (trailing)
		mr_buf_add(&b, "x", 1);
	return mr_msg_session((unsigned char *)b.data, b.len, m, &err);
}

static void
t_session(void **state)
{
	struct mr_m_session m;
	char longcmd[MR_SESS_CMD_MAX + 2];

	(void)state;
	assert_int_equal(session(MR_SESS_NOW, MR_SS_MAIL, "c.example", "RCPT",
	    0, &m), 0);
	assert_int_equal(m.id, 42);
	assert_int_equal(m.state, MR_SS_MAIL);
	assert_int_equal(m.server_port, 25);
	assert_int_equal(m.start, 1800000000);
	assert_string_equal(m.helo, "c.example");
	assert_string_equal(m.user, "bob");
	assert_string_equal(m.command, "RCPT");
	assert_int_equal(session(MR_SESS_GONE, 0, "", "", 0, &m), 0);
	/* unknown op or state, control bytes, a long verb, bytes after */
	assert_int_equal(session(MR_SESS_BEGIN, 0, "", "", 0, &m), 0);
	assert_int_equal(session(MR_SESS_ONCE, 0, "", "", 0, &m), 0);
	assert_int_equal(session(MR_SESS_ONCE + 1, 0, "", "", 0, &m), -1);
	assert_int_equal(session(MR_SESS_NOW, MR_SS_MAX + 1, "", "", 0, &m),
	    -1);
	assert_int_equal(session(MR_SESS_NOW, 0, "a\r\nb", "", 0, &m), -1);
	memset(longcmd, 'A', sizeof(longcmd) - 1);
	longcmd[sizeof(longcmd) - 1] = '\0';
	assert_int_equal(session(MR_SESS_NOW, 0, "", longcmd, 0, &m), -1);
	assert_int_equal(session(MR_SESS_NOW, 0, "", "", 1, &m), -1);
}

/* MR_D_SESSION: deliverd's outbound sessions. */
static int
osession(uint32_t op, uint32_t state, const char *host, uint32_t port,
    int trailing, struct mr_m_osession *m)
{
	static struct mr_buf b;		/* as in session() */
	const char *err;

	mr_buf_free(&b);
	mr_buf_init(&b);
	mr_buf_put_u32(&b, op);
	mr_buf_put_u64(&b, 7);
	mr_buf_put_u32(&b, 1);
	mr_buf_put_str(&b, host);
	mr_buf_put_str(&b, "192.0.2.25");
	mr_buf_put_u32(&b, port);
	mr_buf_put_u32(&b, state);
	mr_buf_put_str(&b, "DATA");
	mr_buf_put_u32(&b, 3);
	mr_buf_put_u64(&b, 1800000000);
	if (trailing)
		mr_buf_add(&b, "x", 1);
	return mr_msg_osession((unsigned char *)b.data, b.len, m, &err);
}

static void
t_osession(void **state)
{
	struct mr_m_osession m;

	(void)state;
	assert_int_equal(osession(MR_SESS_NOW, MR_OS_DATA, "mx.example", 25,
	    0, &m), 0);
	assert_int_equal(m.id, 7);
	assert_int_equal(m.server, 1);
	assert_int_equal(m.state, MR_OS_DATA);
	assert_int_equal(m.sent, 3);
	assert_int_equal(m.start, 1800000000);
	assert_string_equal(m.host, "mx.example");
	assert_string_equal(m.addr, "192.0.2.25");
	assert_string_equal(m.command, "DATA");
	assert_int_equal(osession(MR_SESS_BEGIN + 1, 0, "h", 25, 0, &m), -1);
	assert_int_equal(osession(MR_SESS_NOW, MR_OS_MAX + 1, "h", 25, 0, &m),
	    -1);
	assert_int_equal(osession(MR_SESS_NOW, 0, "h\r\nX: y", 25, 0, &m),
	    -1);
	assert_int_equal(osession(MR_SESS_NOW, 0, "h", 65536, 0, &m), -1);
	assert_int_equal(osession(MR_SESS_NOW, 0, "h", 25, 1, &m), -1);
}

/* MR_D_COUNT and MR_M_RESTARTS: the metrics' inputs. */
static void
t_counts(void **state)
{
	struct mr_m_dcount dc;
	struct mr_buf b;
	uint32_t r[MR_PROC_COUNT];
	const char *err;

	(void)state;
	mr_buf_init(&b);
	mr_buf_put_u32(&b, 2);
	mr_buf_put_u32(&b, MR_DC_BYTES_SENT);
	mr_buf_put_u64(&b, 1234);
	assert_int_equal(mr_msg_dcount((unsigned char *)b.data, b.len, &dc,
	    &err), 0);
	assert_int_equal(dc.server, 2);
	assert_int_equal(dc.counter, MR_DC_BYTES_SENT);
	assert_int_equal(dc.amount, 1234);
	mr_buf_reset(&b);
	mr_buf_put_u32(&b, 0);
	mr_buf_put_u32(&b, MR_DC_MAX + 1);
	mr_buf_put_u64(&b, 1);
	assert_int_equal(mr_msg_dcount((unsigned char *)b.data, b.len, &dc,
	    &err), -1);
	mr_buf_reset(&b);
	mr_buf_put_u32(&b, MR_PROC_COUNT);
	mr_buf_put_u32(&b, 0);
	mr_buf_put_u32(&b, 1);
	mr_buf_put_u32(&b, 2);
	mr_buf_put_u32(&b, 3);
	assert_int_equal(mr_msg_restarts((unsigned char *)b.data, b.len, r,
	    &err), 0);
	assert_int_equal(r[MR_PROC_SMTPD], 1);
	assert_int_equal(r[MR_PROC_DELIVERD], 3);
	/* a short frame, or a master said to have restarted */
	assert_int_equal(mr_msg_restarts((unsigned char *)b.data, b.len - 1,
	    r, &err), -1);
	mr_buf_reset(&b);
	mr_buf_put_u32(&b, MR_PROC_COUNT);
	mr_buf_put_u32(&b, 1);
	mr_buf_put_u32(&b, 0);
	mr_buf_put_u32(&b, 0);
	mr_buf_put_u32(&b, 0);
	assert_int_equal(mr_msg_restarts((unsigned char *)b.data, b.len, r,
	    &err), -1);
	mr_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_osession),
		cmocka_unit_test(t_counts),
		cmocka_unit_test(t_commit_good),
		cmocka_unit_test(t_commit_smtputf8),
		cmocka_unit_test(t_commit_bad_dsn),
		cmocka_unit_test(t_commit_rcpt_count_over_max),
		cmocka_unit_test(t_commit_rcpt_count_beyond_payload),
		cmocka_unit_test(t_commit_bad_rcpt_late),
		cmocka_unit_test(t_commit_control_in_helo),
		cmocka_unit_test(t_job),
		cmocka_unit_test(t_results),
		cmocka_unit_test(t_reply_and_peer),
		cmocka_unit_test(t_ptr),
		cmocka_unit_test(t_ptr_answer),
		cmocka_unit_test(t_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
