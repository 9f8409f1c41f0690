/*
 * auth.h - SMTP AUTH in smtpd (RFC 4954): the exchange with the client
 * and the answer from queued, which alone verifies (auth.c).
 */
#ifndef MR_SMTPD_AUTH_H
#define MR_SMTPD_AUTH_H

#include <stdint.h>

#include "sasl.h"

struct event;
struct mr_server;
struct session;

/* A session's AUTH state (inside struct session). */
struct auth_state {
	struct mr_sasl	 sasl;		/* the exchange under way */
	int		 exchange;	/* reading responses */
	int		 waiting;	/* credentials at queued */
	char		 user[MR_SASL_USER_MAX + 1];	/* authenticated
							 * as; "" = not */
	unsigned	 failures;	/* 535s in this session */
	struct event	*delay;		/* a 535 held back */
	struct session	*owner;		/* of the delay */
};

/* What auth.c needs to know of its session. */
struct auth_ctx {
	struct session		*s;
	uint64_t		 id;
	const char		*ip;
	const struct mr_server	*srv;
	int			 tls;
	int			 helo;		/* EHLO was said */
	int			 in_mail;
};

/* The EHLO keyword line ("AUTH PLAIN LOGIN"), or NULL if not offered. */
const char *auth_ehlo(const struct mr_server *, int tls);
/* The AUTH command; a response line while a->exchange. */
void	auth_cmd(const struct auth_ctx *, struct auth_state *,
	    const char *arg);
void	auth_line(const struct auth_ctx *, struct auth_state *,
	    const char *line, size_t len);
/* queued's verdict (enum mr_auth_res), or MR_AUTH_TEMP if it went away */
void	auth_result(const struct auth_ctx *, struct auth_state *,
	    uint32_t result);
/* The authenticated user as the Received field names it (where
 * received-auth is on): RFC 5322 comment-safe, '?' for other bytes. */
void	auth_received_name(const char *user, char *buf, size_t len);
/* Forgets everything (STARTTLS, the end of the session). */
void	auth_reset(struct auth_state *);

/* smtp_session.c, for auth.c */
void	session_auth_reply(struct session *, int refusal, const char *line);
void	session_auth_wait(struct session *);	/* reads nothing more */
void	session_auth_resume(struct session *);	/* reads on */
void	session_auth_close(struct session *);	/* after the reply */
/* MR_Q_AUTH_REPLY from queued (smtpd.c) */
void	session_auth_done(uint64_t req, uint32_t result);

#endif
