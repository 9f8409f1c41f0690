/*
 * auth.c - SMTP AUTH PLAIN and LOGIN in smtpd (RFC 4954): when AUTH is
 * offered, the exchange with the client (common/sasl.c parses it), the
 * request to queued and its answer, and the slowdown of clients that
 * keep failing.
 *
 * Where verification happens: not here.  smtpd is chrooted into an empty
 * directory and runs with no file to read; it sends the user name and
 * password to queued over their channel (MR_Q_AUTH) and waits for the
 * verdict without blocking its loop; the session reads nothing more
 * meanwhile.  The password is wiped from smtpd's buffers once sent.
 *
 * Security: every line comes from an unauthenticated client.  AUTH is
 * offered only where the server has a users table, and, with require-tls
 * (the default), only inside TLS: before it AUTH is refused with 538 and
 * no password is read.  The exchange is bounded by the command line
 * limit and by sasl.c.  Each 535 is held back by a delay that grows with
 * the failures from the client's address (on a libevent timer; other
 * clients are not slowed), and a session that fails AUTH_FAILURES_MAX
 * times is closed with 421.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "buf.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "smtpd.h"
#include "auth.h"

#define AUTH_FAILURES_MAX	3	/* per session, then 421 */
#define DELAY_BASE_MS		250	/* doubled per failure ... */
#define DELAY_MAX_MS		5000	/* ... up to this */
#define FAIL_SLOTS		256	/* addresses remembered */
#define FAIL_FORGET		600	/* seconds without a failure */

/* Recent failures by client address (smtpd is one process: one table). */
static struct {
	char	 ip[48];
	unsigned n;
	time_t	 last;
} fails[FAIL_SLOTS];

const char *
auth_ehlo(const struct mr_server *srv, int tls)
{
	const struct mr_auth *a = &srv->auth;

	if ((a->users == NULL && a->dovecot == NULL) ||
	    (a->require_tls && !tls))
		return NULL;
	if (a->plain && a->login)
		return "AUTH PLAIN LOGIN";
	return a->plain ? "AUTH PLAIN" : "AUTH LOGIN";
}

/* Counts one more failure from ip; returns how many there are now. */
static unsigned
fail_count(const char *ip)
{
	time_t now = time(NULL);
	size_t i, slot = 0;

	for (i = 0; i < FAIL_SLOTS; i++) {
		if (strcmp(fails[i].ip, ip) == 0 && fails[i].n > 0)
			break;
		if (fails[i].last < fails[slot].last)
			slot = i;	/* the oldest is replaced */
	}
	if (i == FAIL_SLOTS) {
		i = slot;
		snprintf(fails[i].ip, sizeof(fails[i].ip), "%s", ip);
		fails[i].n = 0;
	} else if (now - fails[i].last > FAIL_FORGET)
		fails[i].n = 0;
	fails[i].n++;
	fails[i].last = now;
	return fails[i].n;
}

static unsigned
fail_delay(unsigned n)
{
	unsigned ms = DELAY_BASE_MS;

	while (--n > 0 && ms < DELAY_MAX_MS)
		ms *= 2;
	return ms < DELAY_MAX_MS ? ms : DELAY_MAX_MS;
}

void
auth_received_name(const char *user, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && user[i] != '\0'; i++)
		buf[i] = isalnum((unsigned char)user[i]) ||
		    strchr("-._@+=!#$%&'*/?^`{|}~", user[i]) != NULL ?
		    user[i] : '?';
	buf[i] = '\0';
}

void
auth_reset(struct auth_state *a)
{
	if (a->delay != NULL)
		event_free(a->delay);
	mr_sasl_clear(&a->sasl);
	explicit_bzero(a, sizeof(*a));
}

/* Sends the finished exchange's credentials to queued, then wipes them. */
static void
ask_queued(const struct auth_ctx *c, struct auth_state *a)
{
	struct mr_buf b;

	a->exchange = 0;
	if (smtpd->queued == NULL) {
		mr_sasl_clear(&a->sasl);
		session_auth_reply(c->s, 1, "454 4.7.0 Temporary "
		    "authentication failure");
		return;
	}
	mr_buf_init(&b);
	mr_buf_put_u64(&b, c->id);
	mr_buf_put_u32(&b, (uint32_t)c->srv->index);
	mr_buf_put_str(&b, a->sasl.user);
	mr_buf_put_str(&b, a->sasl.pass);
	mr_ipc_sendb(smtpd->queued, MR_Q_AUTH, -1, &b);
	explicit_bzero(b.data, b.len);
	mr_buf_free(&b);
	explicit_bzero(a->sasl.pass, sizeof(a->sasl.pass));
	a->waiting = 1;
	session_auth_wait(c->s);
}

/* What sasl.c said, as a reply or a request to queued. */
static void
step_result(const struct auth_ctx *c, struct auth_state *a,
    enum mr_sasl_res r, const char *challenge)
{
	char line[128];

	a->exchange = r == MR_SASL_CONTINUE;
	switch (r) {
	case MR_SASL_CONTINUE:
		snprintf(line, sizeof(line), "334 %s", challenge);
		session_auth_reply(c->s, 0, line);
		return;
	case MR_SASL_DONE:
		ask_queued(c, a);
		return;
	case MR_SASL_CANCEL:
		session_auth_reply(c->s, 1, "501 5.0.0 Authentication "
		    "cancelled");
		return;
	case MR_SASL_NOMECH:
		session_auth_reply(c->s, 1, "504 5.5.4 Unrecognized "
		    "authentication type");
		return;
	case MR_SASL_SYNTAX:
		session_auth_reply(c->s, 1, "501 5.5.4 Syntax: AUTH "
		    "mechanism [initial-response]");
		return;
	case MR_SASL_DENY:
		/* no verification: nobody may act for another */
		auth_result(c, a, MR_AUTH_FAIL);
		return;
	case MR_SASL_BAD:
	default:
		session_auth_reply(c->s, 1, "501 5.5.2 Cannot decode "
		    "response");
		return;
	}
}

void
auth_cmd(const struct auth_ctx *c, struct auth_state *a, const char *arg)
{
	const struct mr_auth *cf = &c->srv->auth;
	enum mr_sasl_res r;
	const char *ch;

	if (cf->users == NULL && cf->dovecot == NULL)
		session_auth_reply(c->s, 1, "503 5.5.1 Error: "
		    "authentication not enabled");
	else if (!c->helo)
		session_auth_reply(c->s, 1, "503 5.5.1 Error: send EHLO "
		    "first");
	else if (a->user[0] != '\0')	/* RFC 4954 4 */
		session_auth_reply(c->s, 1, "503 5.5.1 Error: already "
		    "authenticated");
	else if (c->in_mail)
		session_auth_reply(c->s, 1, "503 5.5.1 Error: MAIL "
		    "transaction in progress");
	else if (cf->require_tls && !c->tls)	/* RFC 4954 6 */
		session_auth_reply(c->s, 1, "538 5.7.11 Encryption required "
		    "for requested authentication mechanism");
	else {
		r = mr_sasl_begin(&a->sasl, arg, cf->plain, cf->login, &ch);
		step_result(c, a, r, ch);
	}
}

void
auth_line(const struct auth_ctx *c, struct auth_state *a, const char *line,
    size_t len)
{
	enum mr_sasl_res r;
	const char *ch;

	r = mr_sasl_step(&a->sasl, line, len, &ch);
	step_result(c, a, r, ch);
}

/* The held-back 535 (and the 421 of the last failure allowed). */
static void
delay_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct auth_state *a = arg;

	(void)fd;
	(void)ev;
	session_auth_reply(a->owner, 0, "535 5.7.8 Error: authentication "
	    "failed");
	if (a->failures >= AUTH_FAILURES_MAX) {
		session_auth_reply(a->owner, 1, "421 4.7.0 Too many "
		    "authentication failures, closing connection");
		session_auth_close(a->owner);
		return;
	}
	session_auth_resume(a->owner);
}

/* A wrong password: logged now, answered after the delay. */
static void
failed(const struct auth_ctx *c, struct auth_state *a)
{
	struct timeval tv;
	unsigned n, ms;

	a->failures++;
	n = fail_count(c->ip);
	ms = fail_delay(n);
	mr_info("session %llu [%s]: authentication failed for user=<%s>: "
	    "failure %u from this address, 535 delayed %u ms",
	    (unsigned long long)c->id, c->ip, a->sasl.user, n, ms);
	mr_sasl_clear(&a->sasl);
	if (a->delay == NULL &&
	    (a->delay = evtimer_new(smtpd->base, delay_cb, a)) == NULL) {
		session_auth_reply(c->s, 1, "454 4.7.0 Temporary "
		    "authentication failure");
		session_auth_close(c->s);
		return;
	}
	a->owner = c->s;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	session_auth_wait(c->s);
	evtimer_add(a->delay, &tv);
}

void
auth_result(const struct auth_ctx *c, struct auth_state *a, uint32_t result)
{
	a->waiting = 0;
	switch (result) {
	case MR_AUTH_OK:
		memcpy(a->user, a->sasl.user, sizeof(a->user));
		mr_sasl_clear(&a->sasl);
		mr_info("session %llu [%s]: authenticated as <%s>",
		    (unsigned long long)c->id, c->ip, a->user);
		session_auth_reply(c->s, 0, "235 2.7.0 Authentication "
		    "successful");
		session_auth_resume(c->s);
		break;
	case MR_AUTH_FAIL:
		failed(c, a);
		break;
	default:
		mr_sasl_clear(&a->sasl);
		session_auth_reply(c->s, 1, "454 4.7.0 Temporary "
		    "authentication failure");
		session_auth_resume(c->s);
		break;
	}
}
