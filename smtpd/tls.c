/*
 * tls.c - smtpd's server certificates: one OpenSSL context per pki of a
 * configuration, made from the certificate chain and key as PEM bytes.
 *
 * Where the bytes come from: at start smtpd is still root and reads the
 * pki files itself, before it drops privileges and enters its empty
 * chroot; on a reload, where it can open nothing, mailrootd (root) reads
 * them and hands them over as sealed memfds in MR_M_PKI frames before
 * MR_M_CONFIG.  Either way the private key lives in smtpd's memory for
 * as long as a configuration using it does.
 *
 * Security: the bytes are PEM parsed by OpenSSL; a chain or key that does
 * not load, or a key that does not match its certificate, refuses the
 * configuration (at start: smtpd exits; on reload: the running one stays).
 * Only TLS 1.2 and 1.3 are offered; renegotiation is off.
 *
 * Resumption (RFC 8446 2.2, RFC 5077): each handshake issues one
 * stateless session ticket, sealed (AES-256-CBC, HMAC-SHA256) with a
 * ticket key that lives in this process's memory only: made at random at
 * the first handshake, replaced every TICKET_KEY_LIFE seconds, the one
 * before still opening tickets (and renewing them) for one more period,
 * then forgotten; every context of every configuration generation uses
 * the same keys, so a reload does not cost the clients a full handshake.
 * A ticket resumes only at a context with the same certificate (the
 * session id context is its SHA-256): a session one virtual server gave
 * never resumes at another with a different certificate.  A resumed TLS
 * 1.3 handshake still makes a fresh ephemeral key exchange (no psk_ke
 * only resumption, so forward secrecy stays); there is no early data.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/opensslv.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#endif
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "tls.h"
#include "tls_tune.h"
#include "util.h"

#define PEM_MAX		(1 << 20)	/* a chain and a key */
#define TICKET_KEY_LIFE	3600		/* seconds a key seals */
#define TICKET_NAME_LEN	16

struct ticket_key {
	unsigned char	 name[TICKET_NAME_LEN];
	unsigned char	 aes[32];
	unsigned char	 hmac[32];
	time_t		 born;		/* 0: no key */
};

/* [0] seals new tickets, [1] (the one before) only opens them */
static struct ticket_key tkeys[2];

struct pending {
	char		*pem;		/* chain then key */
	size_t		 len, certlen;
};

static struct pending	*pend;		/* MR_M_PKI frames so far */
static size_t		 npend;

static void
log_ssl_error(const char *name, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown error";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	mr_err("pki \"%s\": %s: %s", name, what, buf);
}

/* The chain: the first certificate is the server's, the rest go along. */
static int
load_chain(SSL_CTX *ctx, const char *name, const char *pem, size_t len)
{
	BIO *bio;
	X509 *x;
	int n = 0, rc = -1;

	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return -1;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (n++ == 0 ? SSL_CTX_use_certificate(ctx, x) != 1 :
		    SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			log_ssl_error(name, "certificate");
			goto fail;
		}
		if (n == 1)
			X509_free(x);	/* add0 took the others */
	}
	ERR_clear_error();	/* the end of the file */
	if (n == 0) {
		mr_err("pki \"%s\": no certificate in the chain", name);
		goto fail;
	}
	rc = 0;
fail:
	BIO_free(bio);
	return rc;
}

static int
load_key(SSL_CTX *ctx, const char *name, const char *pem, size_t len)
{
	EVP_PKEY *k;
	BIO *bio;
	int rc = -1;

	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return -1;
	if ((k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
		log_ssl_error(name, "key");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(ctx, k) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		log_ssl_error(name, "key does not match the certificate");
		goto fail;
	}
	rc = 0;
fail:
	EVP_PKEY_free(k);
	BIO_free(bio);
	return rc;
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
/* A new sealing key when the current one is older than its life. */
static int
tkey_rotate(time_t now)
{
	struct ticket_key *k = &tkeys[0];

	if (k->born != 0 && now >= k->born && now - k->born < TICKET_KEY_LIFE)
		return 0;
	tkeys[1] = tkeys[0];
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
	    RAND_priv_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_priv_bytes(k->hmac, sizeof(k->hmac)) != 1) {
		OPENSSL_cleanse(tkeys, sizeof(tkeys));
		return -1;
	}
	k->born = now;
	return 0;
}

static int
tkey_use(struct ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *c,
    EVP_MAC_CTX *h, int enc)
{
	static char digest[] = "SHA256";
	OSSL_PARAM p[3];

	p[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac,
	    sizeof(k->hmac));
	p[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest,
	    0);
	p[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(h, p) != 1)
		return -1;
	if (enc)
		return EVP_EncryptInit_ex(c, EVP_aes_256_cbc(), NULL, k->aes,
		    iv) == 1 ? 0 : -1;
	return EVP_DecryptInit_ex(c, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1 ?
	    0 : -1;
}

/*
 * OpenSSL's ticket callback: enc seals with the current key (1, or -1);
 * else the key named opens it: 1 the current, 2 the previous (a new
 * ticket is issued), 0 none (a full handshake).
 */
static int
ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *c, EVP_MAC_CTX *h, int enc)
{
	time_t now = time(NULL);
	size_t i;

	(void)ssl;
	if (tkey_rotate(now) == -1)
		return enc ? -1 : 0;
	if (enc) {
		memcpy(name, tkeys[0].name, TICKET_NAME_LEN);
		if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
		    tkey_use(&tkeys[0], iv, c, h, 1) == -1)
			return -1;
		return 1;
	}
	for (i = 0; i < 2; i++) {
		if (tkeys[i].born == 0 ||
		    now - tkeys[i].born >= (time_t)(i + 1) * TICKET_KEY_LIFE ||
		    CRYPTO_memcmp(name, tkeys[i].name, TICKET_NAME_LEN) != 0)
			continue;
		if (tkey_use(&tkeys[i], iv, c, h, 0) == -1)
			return -1;
		return i == 0 ? 1 : 2;
	}
	return 0;
}

/* Tickets sealed with the process's keys, resumable only where the
 * certificate is the same (the session id context). */
static int
ctx_tickets(SSL_CTX *ctx, const char *name)
{
	unsigned char sid[SSL_MAX_SID_CTX_LENGTH];
	unsigned n = 0;
	X509 *crt;

	if ((crt = SSL_CTX_get0_certificate(ctx)) == NULL ||
	    X509_digest(crt, EVP_sha256(), sid, &n) != 1 ||
	    n != sizeof(sid) ||
	    SSL_CTX_set_session_id_context(ctx, sid, n) != 1 ||
	    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1) {
		log_ssl_error(name, "session tickets");
		return -1;
	}
	SSL_CTX_set_timeout(ctx, TICKET_KEY_LIFE);
	SSL_CTX_set_num_tickets(ctx, 1);
	return 0;
}

#else
/* Before OpenSSL 3.0 (no ticket key callback for EVP_MAC): no tickets. */
static int
ctx_tickets(SSL_CTX *ctx, const char *name)
{
	(void)name;
	SSL_CTX_set_num_tickets(ctx, 0);
	return 0;
}
#endif

static SSL_CTX *
ctx_new(const char *name, const char *pem, size_t certlen, size_t len)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		log_ssl_error(name, "SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		log_ssl_error(name, "TLS versions");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	/* tickets only: no session cache held in the server */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (mr_tls_tune(ctx, 1) == -1) {
		log_ssl_error(name, "cipher suites");
		goto fail;
	}
	if (load_chain(ctx, name, pem, certlen) == -1 ||
	    load_key(ctx, name, pem + certlen, len - certlen) == -1 ||
	    ctx_tickets(ctx, name) == -1)
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
tls_free(SSL_CTX **ctxs, size_t n)
{
	size_t i;

	if (ctxs == NULL)
		return;
	for (i = 0; i < n; i++)
		SSL_CTX_free(ctxs[i]);
	free(ctxs);
}

static void
pending_clear(void)
{
	size_t i;

	for (i = 0; i < npend; i++) {
		if (pend[i].pem != NULL)
			OPENSSL_cleanse(pend[i].pem, pend[i].len);
		free(pend[i].pem);
	}
	free(pend);
	pend = NULL;
	npend = 0;
}

/* Reads a file into a buffer the caller cleanses and frees. */
static char *
read_pem(const char *name, const char *path, size_t *len)
{
	char *p;

	if ((p = mr_read_file(path, PEM_MAX, len)) == NULL)
		mr_err("pki \"%s\": %s: %s", name, path, strerror(errno));
	return p;
}

static SSL_CTX *
ctx_from_files(const struct mr_pki *pki)
{
	char *cert, *key = NULL, *both = NULL;
	size_t clen, klen = 0;
	SSL_CTX *ctx = NULL;

	if ((cert = read_pem(pki->name, pki->certificate, &clen)) == NULL ||
	    (key = read_pem(pki->name, pki->key, &klen)) == NULL)
		goto fail;
	both = mr_xmalloc(clen + klen + 1);
	memcpy(both, cert, clen);
	memcpy(both + clen, key, klen);
	ctx = ctx_new(pki->name, both, clen, clen + klen);
	OPENSSL_cleanse(both, clen + klen);
fail:
	if (key != NULL)
		OPENSSL_cleanse(key, klen);
	free(both);
	free(key);
	free(cert);
	return ctx;
}

SSL_CTX **
tls_load_files(const struct mr_config *cfg)
{
	SSL_CTX **ctxs;
	size_t i;

	ctxs = mr_xcalloc(cfg->npkis ? cfg->npkis : 1, sizeof(SSL_CTX *));
	for (i = 0; i < cfg->npkis; i++)
		if ((ctxs[i] = ctx_from_files(&cfg->pkis[i])) == NULL) {
			tls_free(ctxs, cfg->npkis);
			return NULL;
		}
	return ctxs;
}

int
tls_pki_frame(uint32_t idx, uint32_t certlen, int fd)
{
	struct pending *p;
	char *pem;
	size_t len;

	if (idx == 0)		/* a new set: what a failed reload left */
		pending_clear();
	if (idx != npend || idx >= 1000) {
		mr_warn("mailrootd: PKI frame out of order ignored");
		pending_clear();
		return -1;
	}
	if ((pem = mr_read_fd(fd, PEM_MAX, &len)) == NULL ||
	    certlen > len) {
		mr_err("reload: reading pki %u: %s", idx,
		    pem == NULL ? strerror(errno) : "bad length");
		free(pem);
		pending_clear();
		return -1;
	}
	pend = mr_xreallocarray(pend, npend + 1, sizeof(*pend));
	p = &pend[npend++];
	p->pem = pem;
	p->len = len;
	p->certlen = certlen;
	return 0;
}

SSL_CTX **
tls_load_pending(const struct mr_config *cfg)
{
	SSL_CTX **ctxs = NULL;
	size_t i;

	if (npend != cfg->npkis) {
		mr_err("reload: %zu certificates configured, %zu received",
		    cfg->npkis, npend);
		goto done;
	}
	ctxs = mr_xcalloc(cfg->npkis ? cfg->npkis : 1, sizeof(SSL_CTX *));
	for (i = 0; i < cfg->npkis; i++)
		if ((ctxs[i] = ctx_new(cfg->pkis[i].name, pend[i].pem,
		    pend[i].certlen, pend[i].len)) == NULL) {
			tls_free(ctxs, cfg->npkis);
			ctxs = NULL;
			break;
		}
done:
	pending_clear();
	return ctxs;
}

SSL_CTX *
tls_ctx_of(SSL_CTX **ctxs, const struct mr_config *cfg,
    const struct mr_server *srv)
{
	size_t i;

	if (srv->pki == NULL || ctxs == NULL)
		return NULL;
	for (i = 0; i < cfg->npkis; i++)
		if (strcmp(cfg->pkis[i].name, srv->pki) == 0)
			return ctxs[i];
	return NULL;
}
