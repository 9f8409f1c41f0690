/*
 * conf.h - the configuration model (mailroot.conf(5)).
 *
 * The parser fills every setting the file omits with its IIS default
 * (IIS-MODEL.md; the GUI default where the GUI and the schema differ) and
 * never with an IIS trap: relay is closed, ESMTP is on outbound.
 * Durations are seconds, sizes are bytes.
 *
 * (Named conf.h because autoconf's config.h is the build's own header.)
 */
#ifndef MR_CONF_H
#define MR_CONF_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum mr_tls_in {		/* server "tls" */
	MR_TLS_IN_NONE,		/* no STARTTLS offered (default without pki) */
	MR_TLS_IN_OPTIONAL,	/* STARTTLS offered (default with pki) */
	MR_TLS_IN_REQUIRED	/* IIS "Require secure channel" */
};

enum mr_tls_out {		/* outbound "tls"; from REQUIRED on, no
				 * mail goes without TLS */
	MR_TLS_OUT_NONE,
	MR_TLS_OUT_OPPORTUNISTIC,	/* default */
	MR_TLS_OUT_REQUIRED,
	MR_TLS_OUT_VERIFY,
	MR_TLS_OUT_FINGERPRINT,		/* pinned digests, tls-fingerprint */
	MR_TLS_OUT_DANE			/* not a setting: deliverd's policy for
					 * an MX host with TLSA records */
};

/* A pinned SHA-256 digest (tls-fingerprint): of the server's certificate
 * or of its public key (DER SubjectPublicKeyInfo); either matches. */
#define MR_TLS_PIN_LEN	32
#define MR_TLS_PINS_MAX	16
struct mr_tls_pin {
	unsigned char		 sha256[MR_TLS_PIN_LEN];
};

/* Outbound TLS beyond the policy: the trust anchors for verify and the
 * digests for fingerprint. */
struct mr_tls_trust {
	char			*ca_file;	/* NULL: the system's store */
	struct mr_tls_pin	*pins;
	size_t			 npins;
};

enum mr_log_format { MR_LOG_W3C, MR_LOG_NCSA, MR_LOG_IIS, MR_LOG_NONE };
enum mr_rotate {
	MR_ROTATE_HOURLY, MR_ROTATE_DAILY, MR_ROTATE_WEEKLY,
	MR_ROTATE_MONTHLY, MR_ROTATE_SIZE
};
enum mr_domain_kind { MR_DOMAIN_LOCAL, MR_DOMAIN_ALIAS, MR_DOMAIN_REMOTE };
enum mr_deliver { MR_DELIVER_DROP, MR_DELIVER_LMTP, MR_DELIVER_MAILDIR };
enum mr_out_auth { MR_AUTH_OUT_NONE, MR_AUTH_OUT_LOGIN, MR_AUTH_OUT_PLAIN,
	MR_AUTH_OUT_XOAUTH2 };

struct mr_listen {
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	char			*text;		/* "127.0.0.1:25", "[::1]:25" */
	int			 tls;		/* implicit TLS */
	int			 proxy;		/* PROXY protocol v1/v2 */
	int			 line;
};

enum mr_rule_kind { MR_RULE_NET, MR_RULE_DOMAIN };

struct mr_rule {
	int			 allow;
	enum mr_rule_kind	 kind;
	int			 family;	/* AF_INET / AF_INET6 */
	unsigned char		 addr[16];	/* network order, masked */
	int			 prefix;	/* 0..32 / 0..128 */
	char			*domain;	/* ".suffix" or exact name */
	int			 line;
};

struct mr_access {
	struct mr_rule		*rules;
	size_t			 nrules;
	int			 default_allow;
};

struct mr_limits {
	unsigned		 connections;	/* 0 = unlimited (IIS) */
	unsigned		 idle_timeout;	/* 600 */
	uint64_t		 message_size;	/* 2048 KiB */
	uint64_t		 session_size;	/* 10240 KiB */
	unsigned		 messages_per_connection;	/* 20 */
	unsigned		 recipients_per_message;	/* 100 */
	/* per client address, beyond IIS; 0 = off (the default) */
	unsigned		 client_connections;	/* at once */
	unsigned		 client_connection_rate;	/* per minute */
};

/*
 * The ESMTP extensions a server offers (IIS SmtpInboundCommandSupportOptions
 * in readable form, IIS-MODEL.md 3): each on by default; EHLO advertises
 * exactly those on, and a MAIL parameter of one that is off gets 555.
 */
struct mr_extensions {
	int			 size;		/* SIZE (RFC 1870) */
	int			 pipelining;	/* PIPELINING (RFC 2920) */
	int			 eightbitmime;	/* 8BITMIME (RFC 6152) */
	int			 chunking;	/* CHUNKING, BDAT (RFC 3030) */
	int			 dsn;		/* DSN (RFC 3461) */
	int			 smtputf8;	/* SMTPUTF8 (RFC 6531) */
};

struct mr_outbound {
	unsigned		 connections;	/* 1000 */
	unsigned		 per_domain;	/* 100 */
	unsigned		 port;		/* 25 */
	unsigned		 timeout;	/* 600: bounds every wait */
	/* each wait of a session (RFC 5321 4.5.3.2), in seconds */
	unsigned		 connect_timeout;	/* 30 */
	unsigned		 greeting_timeout;	/* 300 */
	unsigned		 command_timeout;	/* 300 */
	unsigned		 data_timeout;		/* 120 */
	unsigned		 block_timeout;		/* 180 */
	unsigned		 dot_timeout;		/* 600 */
	unsigned		 rate;		/* messages per rate_window to
						 * one destination; 0: none */
	unsigned		 rate_window;	/* 60 */
	enum mr_tls_out		 tls;		/* opportunistic */
	struct mr_tls_trust	 trust;		/* tls-ca-file, tls-fingerprint */
	int			 dane;		/* 1: DANE (RFC 7672) for direct
						 * MX delivery */
	enum mr_out_auth	 auth;		/* none */
	char			*auth_user;
	char			*auth_password_file;	/* or token-file */
	int			 esmtp;		/* 1 */
	int			 mta_sts;	/* 1: MTA-STS for MX delivery */
};

#define MR_RETRY_MAX	8
#define MR_RATE_MAX	10000	/* outbound rate N: N timestamps kept */
#define MR_SMART_HOSTS_MAX	8	/* smart-host HOST ... */

struct mr_delivery {
	unsigned		 retry[MR_RETRY_MAX];	/* 900 1800 3600 14400 */
	size_t			 nretry;		/* last one repeats */
	unsigned		 delay_notify_outbound;	/* 43200 */
	unsigned		 delay_notify_local;	/* 43200 */
	unsigned		 expire_outbound;	/* 172800 */
	unsigned		 expire_local;		/* 172800 */
	char			*smart_host;	/* NULL = direct MX delivery */
	/* further smart hosts, tried in order after smart_host fails */
	char			*smart_host_next[MR_SMART_HOSTS_MAX - 1];
	size_t			 nsmart_host_next;
	int			 smart_host_first_direct;	/* 0 */
	struct mr_outbound	 outbound;
};

struct mr_logcfg {
	enum mr_log_format	 format;	/* w3c */
	char			**fields;	/* W3C field names */
	size_t			 nfields;
	char			*directory;	/* NULL = <mailroot>/../log? see print */
	enum mr_rotate		 rotate;	/* daily */
	uint64_t		 rotate_size;	/* bytes, for MR_ROTATE_SIZE */
};

struct mr_domain {
	char			*name;		/* lower case */
	enum mr_domain_kind	 kind;
	int			 line;
	/* local */
	enum mr_deliver		 deliver;	/* drop */
	char			*deliver_arg;	/* lmtp socket / maildir path */
	char			*aliases;	/* table name or NULL */
	char			*recipients;	/* table of the known users, or
						 * NULL: every user accepted */
	/* alias-of */
	char			*alias_of;
	/* remote */
	int			 relay;		/* 0: "Allow ... relayed" off */
	char			*route;		/* NULL or "dns": MX; else host */
	int			 esmtp;		/* 1; 0 = "Send HELO" */
	enum mr_tls_out		 tls;		/* inherits outbound tls */
	struct mr_tls_trust	 trust;		/* inherits outbound's */
	int			 dane;		/* inherits outbound dane */
	enum mr_out_auth	 auth;
	char			*auth_user;
	char			*auth_password_file;	/* or token-file */
	int			 hold_for_etrn;	/* 0 */
	unsigned		 rate;		/* 0: the outbound rate */
	unsigned		 rate_window;
	struct mr_access	 etrn_allow;	/* default deny */
	int			 implicit;	/* added by default (fqdn) */
};

struct mr_auth {
	int			 plain;		/* mechanisms */
	int			 login;
	char			*users;		/* table name, NULL = no AUTH */
	char			*dovecot;	/* or Dovecot's auth-client
						 * socket (not both) */
	int			 require_tls;	/* 1 */
	int			 received_auth;	/* 0: name the user in
						 * Received */
};

/*
 * dkim DOMAIN { selector S; key PATH; canonicalization H/B; headers ... }
 * in a server: mail whose From field's domain is DOMAIN is signed by
 * queued when it is committed (RFC 6376, RFC 8463).
 */
#define MR_DKIM_HEADERS_MAX	64
struct mr_dkim {
	char			*domain;	/* lower case */
	char			*selector;
	char			*key;		/* PEM private key file */
	int			 hcanon, bcanon;	/* enum mr_dkim_canon:
						 * relaxed/relaxed */
	char			**headers;	/* lower case; NULL: the
						 * RFC 6376 5.4.1 list */
	size_t			 nheaders;
	int			 line;
};

/* Who gets Date: and Message-ID: added where a message lacks them:
 * clients in `relay allow' (and Pickup, the injector), everyone, nobody. */
enum mr_add_headers {
	MR_ADDHDR_LOCAL = 0,
	MR_ADDHDR_ALL,
	MR_ADDHDR_NONE
};

struct mr_server {
	char			*name;
	int			 line;
	int			 index;		/* position in the file */
	struct mr_listen	*listens;
	size_t			 nlistens;
	char			*mailroot;	/* required, absolute */
	char			*fqdn;		/* default: global hostname */
	char			*pki;		/* pki name or NULL */
	struct mr_access	 connection;	/* default allow (IIS) */
	struct mr_access	 relay;		/* default deny: closed relay */
	int			 relay_authenticated;	/* 1 (IIS GUI) */
	struct mr_auth		 auth;
	enum mr_tls_in		 tls;
	struct mr_limits	 limits;
	struct mr_extensions	 extensions;
	int			 reverse_dns_lookup;	/* 0 */
	unsigned		 hop_count;		/* 15 */
	char			*masquerade_domain;
	int			 masquerade_from;	/* 0 */
	char			*ndr_copy_to;
	char			*header_checks;	/* table name or NULL */
	int			 badmail;		/* 1 */
	enum mr_add_headers	 add_missing_headers;	/* local */
	struct mr_delivery	 delivery;
	struct mr_logcfg	 log;
	struct mr_domain	*domains;
	size_t			 ndomains;
	struct mr_dkim		*dkims;
	size_t			 ndkims;
};

struct mr_pki {
	char			*name;
	char			*certificate;
	char			*key;
	int			 line;
};

struct mr_table {
	char			*name;
	char			*type;		/* "db", "regex", "file" */
	char			*path;
	int			 line;
};

/* Debian's dns-root-data: the root zone's key-signing keys */
#define MR_TRUST_ANCHOR_DEFAULT	"none"	/* see mailroot.conf(5) */

struct mr_config {
	char			*file;		/* as given to the parser */
	char			*hostname;	/* default: the host's FQDN */
	char			*user;		/* queue owner, "mailroot" */
	char			*smtpd_user;	/* "mailroot-smtpd" */
	char			*deliver_user;	/* "mailroot-deliver" */
	char			*chroot;	/* smtpd's empty root */
	char			*resolver;	/* "system" or "IP@PORT" */
	char			*trust_anchor;	/* DNSSEC trust anchor file, or
						 * "none" (no validation) */
	char			*mta_sts_cache;	/* deliverd's policy cache */
	char			*control_group;	/* NULL = root only */
	char			*control_socket;	/* NULL = none */
	char			*metrics_listen;	/* NULL = off */
	struct sockaddr_storage	 metrics_addr;	/* metrics_listen, parsed */
	socklen_t		 metrics_addrlen;
	/* mailroot-sendmail's door (queued/submit.c) */
	char			*submit_socket;	/* /run/mailroot/submit */
	char			**submit_users;	/* NULL = anyone; "@g" =
						 * members of group g */
	size_t			 nsubmit_users;
	char			**sender_users;	/* may use any -f */
	size_t			 nsender_users;
	struct mr_pki		*pkis;
	size_t			 npkis;
	struct mr_table		*tables;
	size_t			 ntables;
	struct mr_server	*servers;
	size_t			 nservers;
};

/*
 * Parses text (len bytes, from a file named name).  Every error is written
 * to errs as "NAME:LINE:COL: message\n" (warnings as "...: warning: ...").
 * Returns the configuration, or NULL when there was at least one error.
 */
struct mr_config	*mr_config_parse(const char *name, const char *text,
			    size_t len, FILE *errs);
/* Reads and parses a file; NULL on any error (reported to errs). */
struct mr_config	*mr_config_load(const char *path, FILE *errs);
void			 mr_config_free(struct mr_config *);
/* From now on the default hostname (the host's FQDN) is looked up once
 * and reused: a child re-parses on reload inside its sandbox, where the
 * name cannot be resolved, and must get the name it started with. */
void			 mr_config_keep_host_fqdn(void);
/* Prints the effective configuration, every default filled in, in the
 * same syntax; the output parses back to an equal configuration. */
void			 mr_config_print(const struct mr_config *, FILE *);

/* Lookups used by the daemons. */
const struct mr_domain	*mr_config_domain(const struct mr_server *,
			    const char *domain);	/* case-insensitive */
int			 mr_domain_is_local(const struct mr_server *,
			    const char *domain);	/* local or alias-of */
/* First matching rule decides, then the default. 1 allow, 0 deny.
 * ptr may be NULL (no reverse name known): domain rules do not match. */
int			 mr_access_check(const struct mr_access *,
			    const struct sockaddr *, const char *ptr);

#endif
