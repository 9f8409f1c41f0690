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
/* The ClientHello callback: SNI chooses the server (and the session
 * id context a ticket must match) before the ticket is looked at. */
int	session_hello(struct ssl_st *, int *alert, void *);
void	session_accept(struct listener *, int fd, struct sockaddr *, int len);
/* A reply from queued for the session with request id req. */
void	session_new_ok(uint64_t req, const char *id, int fd);
void	session_new_fail(uint64_t req, const char *reason);
/* ok: 1 queued, 0 failed (4xx), -1 refused by a header check (5xx) */
void	session_commit_done(uint64_t req, int ok, const char *text);
/* queued's verdict on the recipient the session waits for */
void	session_rcpt_verdict(uint64_t req, uint32_t verdict);

/* etrn.c: the ETRN command (RFC 1985) */
struct mr_server;
int	etrn_offered(const struct mr_server *);
void	etrn_reply(const struct mr_server *, const struct sockaddr *,
	    const char *arg, char *out, size_t len);

/* queued went away: every waiting session gets a temporary failure. */
void	session_queued_lost(void);
size_t	session_count(void);
/* Tells queued of every session in progress (mailrootctl sessions). */
void	session_report_all(void);

/* rcpt_wait.c: asks queued whether addr (in domain) is known: 1 asked
 * (wait for the verdict), 0 nothing to ask, -1 queued is down. */
int	rcpt_check_send(const struct mr_server *, uint64_t req,
	    const char *addr, const char *domain);

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

/* rdns.c: the client's reverse DNS name, asked of deliverd through
 * queued and cached.  status is an enum mr_ptr_status; name is the
 * confirmed name (MR_PTR_OK) or the first PTR name (UNCONFIRMED). */
struct mr_buf;
struct rdns_wait;
struct rdns_result {
	int	 status;
	char	 name[256];
};
typedef void	(*rdns_cb)(void *arg, const struct rdns_result *);
int		 rdns_needed(const struct mr_server *);
int		 rdns_lookup(const struct sockaddr *, rdns_cb, void *arg,
		    struct rdns_result *, struct rdns_wait **);
void		 rdns_cancel(struct rdns_wait *);
int		 rdns_answer(const unsigned char *, size_t);
void		 rdns_queued_lost(void);
/* the confirmed name or NULL */
const char	*rdns_name(const struct rdns_result *);
void		 rdns_received_from(struct mr_buf *,
		    const struct rdns_result *, const char *helo,
		    const char *ip);

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
