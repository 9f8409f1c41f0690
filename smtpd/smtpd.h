/*
 * smtpd.h - the inbound SMTP server shared by every virtual server.
 */
#ifndef MR_SMTPD_H
#define MR_SMTPD_H

#include <sys/socket.h>
#include <stdint.h>

#include "conf.h"

struct event_base;
struct mr_ipc;
struct session;
struct ssl_st;

struct gen;
struct client;
struct client_table;

struct listener {
	struct gen		*gen;		/* the configuration it is of */
	const struct mr_server	*srv;
	const struct mr_listen	*lcfg;
	int			 fd;		/* -1 once replaced */
	struct evconnlistener	*ev;		/* NULL once replaced */
	struct ssl_ctx_st	*tls;		/* the server's certificate,
						 * NULL without a pki */
};

struct smtpd {
	struct event_base	*base;
	struct mr_config	*cfg;		/* for new sessions */
	struct mr_ipc		*queued;	/* NULL while queued is down */
	struct gen		*gen;		/* cfg and its listeners */
	unsigned		*conns;		/* per server */
	struct client_table	**clients;	/* per server */
	uint64_t		 next_id;
	int			 stopping;
};

extern struct smtpd *smtpd;

/* smtp_session.c */
/* The TLS servername callback: SNI may choose another server sharing
 * an implicit TLS address. */
int	session_sni(struct ssl_st *, int *alert, void *);
void	session_accept(struct listener *, int fd, struct sockaddr *, int len);
/* A reply from queued for the session with request id req. */
void	session_new_ok(uint64_t req, const char *id, int fd);
void	session_new_fail(uint64_t req, const char *reason);
void	session_commit_done(uint64_t req, int ok, const char *text);
/* etrn.c: the ETRN command (RFC 1985) */
struct mr_server;
int	etrn_offered(const struct mr_server *);
void	etrn_reply(const struct mr_server *, const struct sockaddr *,
	    const char *arg, char *out, size_t len);

/* queued went away: every waiting session gets a temporary failure. */
void	session_queued_lost(void);
size_t	session_count(void);

/* proxy.c: reads the PROXY header of a connection to a proxy-protocol
 * listener, then calls session_accept with the client it names and the
 * descriptor at the client's first byte. */
void	proxy_accept(struct listener *, int fd, struct sockaddr *, int len);

/* client_limit.c: connections by client address, per server.
 * client_connect counts one more (open now, and in this minute) and
 * returns the entry to give back to client_done when it closes; NULL
 * for an address that is neither IPv4 nor IPv6. */
struct client_table *client_table_new(void);
void		 client_table_free(struct client_table *);
struct client	*client_connect(struct client_table *,
		    const struct sockaddr *, unsigned *open, unsigned *rate);
void		 client_done(struct client_table *, struct client *);

/* smtpd.c */
void	smtpd_maybe_exit(void);
/* A session keeps the configuration of the listener that accepted it
 * (and the listener) until it ends, across reloads. */
void	smtpd_hold(struct listener *);
void	smtpd_release(struct listener *);
/* The listener on l's address whose server is called name (its fqdn or
 * a name of its certificate), or NULL. */
struct listener	*smtpd_sni_listener(struct listener *l, const char *name);

#endif
