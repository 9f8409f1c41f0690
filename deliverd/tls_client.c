/*
 * tls_client.c - deliverd's side of outbound TLS (mailroot.conf(5),
 * outbound and remote-domain "tls"): the client contexts, the SSL of one
 * connection (SNI, the name to verify) and the check a policy makes once
 * the handshake is done.
 *
 *   opportunistic, required  encryption only, the certificate unchecked
 *   verify         the chain against the system's store or the
 *                  destination's tls-ca-file, the name against the host
 *                  connected to (MX, smart host or route name; the
 *                  address of a [literal]); TLS 1.2 or later
 *   fingerprint    the SHA-256 digest of the certificate or of its public
 *                  key (DER SubjectPublicKeyInfo) among tls-fingerprint;
 *                  chain, name and dates are not looked at: a pin is trust
 *                  in that key itself (as Postfix's fingerprint level and
 *                  DANE-EE, RFC 7671 5.1); TLS 1.2 or later
 *
 * SNI (RFC 6066 3) names the host under every policy; an address is
 * never sent as a name.  A handshake resumes a session the same server
 * gave under the same policy where tls_sess.c has one; the checks below
 * run on a resumed session alike (it keeps the peer's certificate and
 * the verdict it was verified with).  Session with smtp_client.c: the
 * policy decides whether STARTTLS may be skipped; this file, whether a
 * peer is trusted.
 *
 * Security: the server's certificate is untrusted input; OpenSSL parses
 * and checks it, and nothing of it but its digests and OpenSSL's verdict
 * reaches a log line.  A tls-ca-file is configuration, read as deliverd's
 * user at first use and again whenever it changes (a renewed CA needs no
 * restart).  Digests are compared in constant time.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "log.h"
#include "tls_tune.h"
#include "deliverd.h"

#define CA_CACHE_MAX	16	/* distinct tls-ca-files kept loaded */

/* A context per tls-ca-file, rebuilt when the file changes. */
struct ca_ctx {
	char		*path;
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
	SSL_CTX		*ctx;
};

static SSL_CTX		*ctx_plain;	/* opportunistic, required */
static SSL_CTX		*ctx_system;	/* verify, the system's store */
static SSL_CTX		*ctx_pinned;	/* fingerprint */
static struct ca_ctx	 cas[CA_CACHE_MAX];
static size_t		 ca_next;	/* the slot a new file takes */

static SSL_CTX *
ctx_new(int verify, int modern)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
	    NULL);
	if ((modern &&
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) ||
	    mr_tls_tune(ctx, 0) == -1 || tls_sess_init(ctx) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
tls_client_init(void)
{
	ctx_plain = ctx_new(0, 0);
	ctx_system = ctx_new(1, 1);
	ctx_pinned = ctx_new(0, 1);
	if (ctx_plain == NULL || ctx_system == NULL || ctx_pinned == NULL) {
		mr_err("TLS: cannot create a client context");
		return -1;
	}
	if (SSL_CTX_set_default_verify_paths(ctx_system) != 1) {
		mr_err("TLS: cannot load the system certificate store");
		return -1;
	}
	return 0;
}

static void
ca_clear(struct ca_ctx *c)
{
	free(c->path);
	if (c->ctx != NULL)
		tls_sess_flush(c->ctx);
	SSL_CTX_free(c->ctx);	/* connections using it hold references */
	memset(c, 0, sizeof(*c));
}

void
tls_client_fini(void)
{
	size_t i;

	tls_sess_flush(NULL);
	for (i = 0; i < CA_CACHE_MAX; i++)
		ca_clear(&cas[i]);
	SSL_CTX_free(ctx_plain);
	SSL_CTX_free(ctx_system);
	SSL_CTX_free(ctx_pinned);
	ctx_plain = ctx_system = ctx_pinned = NULL;
}

static int
ca_same(const struct ca_ctx *c, const struct stat *st)
{
	return c->dev == st->st_dev && c->ino == st->st_ino &&
	    c->size == st->st_size &&
	    c->mtime.tv_sec == st->st_mtim.tv_sec &&
	    c->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static struct ca_ctx *
ca_slot(const char *path)
{
	size_t i;

	for (i = 0; i < CA_CACHE_MAX; i++)
		if (cas[i].path != NULL && strcmp(cas[i].path, path) == 0)
			return &cas[i];
	i = ca_next;
	ca_next = (ca_next + 1) % CA_CACHE_MAX;
	return &cas[i];
}

/*
 * The verify context of a tls-ca-file: the cached one while the file is
 * unchanged (stat before reading: a change during the read only costs
 * one more load).  NULL with why when the file cannot be used.
 */
static SSL_CTX *
ca_ctx(const char *path, struct mr_buf *why)
{
	struct ca_ctx *c;
	struct stat st;
	SSL_CTX *ctx;
	char err[256];

	if (stat(path, &st) == -1) {
		mr_buf_printf(why, "cannot use tls-ca-file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	c = ca_slot(path);
	if (c->path != NULL && ca_same(c, &st))
		return c->ctx;
	ca_clear(c);
	ERR_clear_error();
	if ((ctx = ctx_new(1, 1)) == NULL ||
	    SSL_CTX_load_verify_locations(ctx, path, NULL) != 1) {
		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		ERR_clear_error();
		SSL_CTX_free(ctx);
		mr_buf_printf(why, "cannot load tls-ca-file %s: %s", path,
		    err);
		return NULL;
	}
	c->path = mr_xstrdup(path);
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->size = st.st_size;
	c->mtime = st.st_mtim;
	c->ctx = ctx;
	return ctx;
}

static SSL_CTX *
policy_ctx(const struct dest *ds, struct mr_buf *why)
{
	switch (ds->tls) {
	case MR_TLS_OUT_VERIFY:
		if (ds->trust.ca_file != NULL)
			return ca_ctx(ds->trust.ca_file, why);
		return ctx_system;
	case MR_TLS_OUT_FINGERPRINT:
		return ctx_pinned;
	default:
		return ctx_plain;
	}
}

SSL_CTX *
tls_client_verify_ctx(const char *ca_file, struct mr_buf *why)
{
	return ca_file != NULL ? ca_ctx(ca_file, why) : ctx_system;
}

/* verify: the certificate must name host, or hold the address. */
static int
ssl_set_name(SSL *ssl, const char *host, int literal)
{
	const char *ip = host;

	if (literal) {
		if (strncasecmp(host, "IPv6:", 5) == 0)
			ip = host + 5;
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    ip) == 1 ? 0 : -1;
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

SSL *
tls_client_ssl(const struct dest *ds, const struct mx_addr *a,
    struct mr_buf *why)
{
	struct sockaddr_storage ss;
	const char *host = a->host;
	socklen_t len;
	SSL_CTX *ctx;
	SSL *ssl = NULL;
	int literal;

	if ((ctx = policy_ctx(ds, why)) == NULL)
		return NULL;
	if ((ssl = SSL_new(ctx)) == NULL)
		goto fail;
	literal = mx_parse_ip(host, 0, &ss, &len) == 0;
	/* RFC 6066 3: a literal address is not sent as a server name */
	if (!literal && SSL_set_tlsext_host_name(ssl, host) != 1)
		goto fail;
	if (ds->tls == MR_TLS_OUT_VERIFY &&
	    ssl_set_name(ssl, host, literal) == -1)
		goto fail;
	if (tls_sess_offer(ssl, ds, a) == -1)
		goto fail;
	return ssl;
fail:
	SSL_free(ssl);
	ERR_clear_error();
	mr_buf_printf(why, "cannot set up a TLS session for %s", host);
	return NULL;
}

static X509 *
peer_cert(SSL *ssl)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	return SSL_get1_peer_certificate(ssl);
#else
	return SSL_get_peer_certificate(ssl);
#endif
}

/* The SHA-256 of the certificate (DER) and of its public key (DER
 * SubjectPublicKeyInfo, what "openssl pkey -pubin -outform DER" gives). */
static int
cert_digests(X509 *crt, unsigned char *dc, unsigned char *dk)
{
	unsigned char *der = NULL;
	unsigned n = 0;
	int len, rc = -1;

	if (X509_digest(crt, EVP_sha256(), dc, &n) != 1 ||
	    n != MR_TLS_PIN_LEN)
		return -1;
	if ((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(crt), &der)) <= 0)
		return -1;
	if (EVP_Digest(der, (size_t)len, dk, &n, EVP_sha256(), NULL) == 1 &&
	    n == MR_TLS_PIN_LEN)
		rc = 0;
	OPENSSL_free(der);
	return rc;
}

static int
pin_match(const struct mr_tls_trust *t, const unsigned char *d)
{
	size_t i;
	int found = 0;

	for (i = 0; i < t->npins; i++)
		found |= CRYPTO_memcmp(t->pins[i].sha256, d,
		    MR_TLS_PIN_LEN) == 0;
	return found;
}

static void
hex(struct mr_buf *b, const unsigned char *d)
{
	size_t i;

	for (i = 0; i < MR_TLS_PIN_LEN; i++)
		mr_buf_printf(b, "%02x", d[i]);
}

/* fingerprint: one of the two digests must be pinned. */
static int
check_pins(SSL *ssl, const struct dest *ds, struct mr_buf *why)
{
	unsigned char dc[MR_TLS_PIN_LEN], dk[MR_TLS_PIN_LEN];
	X509 *crt;
	int rc = -1;

	if ((crt = peer_cert(ssl)) == NULL) {
		mr_buf_adds(why, "the server sent no certificate");
		return -1;
	}
	if (cert_digests(crt, dc, dk) == -1)
		mr_buf_adds(why, "cannot digest the server's certificate");
	else if (pin_match(&ds->trust, dc) || pin_match(&ds->trust, dk))
		rc = 0;
	else {
		mr_buf_adds(why, "certificate fingerprint mismatch: the "
		    "certificate is sha256:");
		hex(why, dc);
		mr_buf_adds(why, ", its public key sha256:");
		hex(why, dk);
		mr_buf_adds(why, "; tls-fingerprint pins neither");
	}
	X509_free(crt);
	ERR_clear_error();
	return rc;
}

static int
policy_check(SSL *ssl, const struct dest *ds, struct mr_buf *why)
{
	long vr;

	if (ssl == NULL) {
		mr_buf_adds(why, "no TLS session");
		return -1;
	}
	switch (ds->tls) {
	case MR_TLS_OUT_VERIFY:
		/* the handshake failed already if not; said twice is safe */
		if ((vr = SSL_get_verify_result(ssl)) == X509_V_OK)
			return 0;
		mr_buf_adds(why, X509_verify_cert_error_string(vr));
		return -1;
	case MR_TLS_OUT_FINGERPRINT:
		return check_pins(ssl, ds, why);
	default:
		return 0;
	}
}

int
tls_client_check(SSL *ssl, const struct dest *ds, struct mr_buf *why)
{
	if (policy_check(ssl, ds, why) == -1)
		return -1;
	tls_sess_checked(ssl);	/* its sessions may be resumed now */
	return 0;
}

void
tls_client_error(SSL *ssl, const struct dest *ds, unsigned long e,
    char *buf, size_t size)
{
	long vr;

	snprintf(buf, size, "handshake failed");
	/* without verification OpenSSL still notes a verdict: not a cause */
	if (ssl != NULL && ds->tls == MR_TLS_OUT_VERIFY &&
	    (vr = SSL_get_verify_result(ssl)) != X509_V_OK)
		snprintf(buf, size, "%s", X509_verify_cert_error_string(vr));
	else if (e != 0)
		ERR_error_string_n(e, buf, size);
}
