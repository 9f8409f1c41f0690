/*
 * mta_sts.h - MTA-STS (RFC 8461) in deliverd: the policy of a recipient
 * domain (mta_sts.c: discovery, cache, enforcement) and its fetch over
 * HTTPS (mta_sts_fetch.c).
 */
#ifndef MR_MTA_STS_H
#define MR_MTA_STS_H

#include <stddef.h>

#include "mta_sts_parse.h"

struct dest;
struct mr_buf;
struct mr_config;
struct mx_result;
struct ssl_st;
struct event_base;

/* A domain's policy as a session holds it (a copy). */
struct mta_sts {
	char			 domain[MTA_STS_NAME_MAX + 1];
	char			 id[MTA_STS_ID_MAX + 1];
	struct mta_sts_policy	 pol;
};

/* What MTA-STS asks of one MX host. */
enum mta_sts_host {
	MTA_STS_HOST_OFF,	/* nothing: the destination's own policy */
	MTA_STS_HOST_TESTING,	/* verify, report failures, deliver */
	MTA_STS_HOST_ENFORCE	/* verified TLS or no delivery */
};

struct mta_sts_query;
/* sts: the domain's policy (NULL: none, or mode none), valid during the
 * call only. */
typedef void	(*mta_sts_cb)(const struct mta_sts *sts, void *arg);

/* Before the privilege drop: the cache directory, the fetch port. */
int		 mta_sts_init(const struct mr_config *);
void		 mta_sts_fini(void);
/* NULL if MTA-STS does not apply to dest (not direct MX delivery, or
 * off): go on without.  Never calls back before returning. */
struct mta_sts_query *mta_sts_lookup(const struct dest *, mta_sts_cb,
		    void *arg);
void		 mta_sts_cancel(struct mta_sts_query *);

/*
 * The per-host hook of the TLS decision (smtp_client.c, for each address
 * before it is tried): what the policy asks of host.  Where DANE applies
 * the caller does not ask (RFC 8461 2: DANE takes precedence).
 */
enum mta_sts_host mta_sts_host(const struct mta_sts *, const struct dest *,
		    const char *host);
/* enforce: drops the addresses of MX hosts the policy does not list;
 * -1 with why if none is left.  testing: logs them, drops nothing. */
int		 mta_sts_filter(const struct mta_sts *, const struct dest *,
		    struct mx_result *, const char *qid, struct mr_buf *why);
/* The SSL of an MTA-STS host: verify against the destination's
 * tls-ca-file or the system's store, the MX name; under testing the
 * handshake goes on whatever the verdict (mta_sts_check reports it). */
struct ssl_st	*mta_sts_ssl(const struct dest *, const char *host,
		    enum mta_sts_host, struct mr_buf *why);
/* After the handshake: 0, or -1 with why (the verdict). */
int		 mta_sts_check(struct ssl_st *, struct mr_buf *why);
/* "MTA-STS policy of DOMAIN (MODE, id ID): " into b. */
void		 mta_sts_says(const struct mta_sts *, struct mr_buf *b);

/* mta_sts_fetch.c: body (len octets) or err; never before returning. */
struct sts_fetch;
typedef void	(*sts_fetch_cb)(const char *body, size_t len,
		    const char *err, void *arg);
struct sts_fetch *sts_fetch_start(const char *domain, const char *ca_file,
		    unsigned port, sts_fetch_cb, void *arg);
void		 sts_fetch_cancel(struct sts_fetch *);

#endif
