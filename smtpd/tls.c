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
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "tls.h"
#include "util.h"

#define PEM_MAX		(1 << 20)	/* a chain and a key */

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
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (load_chain(ctx, name, pem, certlen) == -1 ||
	    load_key(ctx, name, pem + certlen, len - certlen) == -1)
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
