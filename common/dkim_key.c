/*
 * dkim_key.c - DKIM signing keys with OpenSSL: loading (RSA of 2048 bits
 * or more, Ed25519), the signature of a digest, and mailrootd -n's check.
 *
 * Security: a key file is a secret.  Its bytes are wiped once OpenSSL
 * has parsed them; mailrootd reads it only to check it (as root, at
 * start, on reload and for -n) and warns about a file other users may
 * read.  The process that signs is queued, the only one that reads a
 * key for use: smtpd and deliverd, which talk to the network, never can.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "conf.h"
#include "dkim.h"
#include "util.h"

#define KEY_FILE_MAX	(64 * 1024)

static EVP_PKEY *
parse_pem(const char *text, size_t len)
{
	EVP_PKEY *k;
	BIO *bio;

	if ((bio = BIO_new_mem_buf(text, (int)len)) == NULL)
		return NULL;
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return k;
}

EVP_PKEY *
mr_dkim_key_load(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *k;
	char *text;
	size_t len;

	if ((text = mr_read_file(path, KEY_FILE_MAX, &len)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	k = parse_pem(text, len);
	explicit_bzero(text, len);
	free(text);
	ERR_clear_error();
	if (k == NULL) {
		snprintf(err, errlen, "%s: not a PEM private key", path);
		return NULL;
	}
	if (EVP_PKEY_id(k) == EVP_PKEY_ED25519)
		return k;
	if (EVP_PKEY_id(k) != EVP_PKEY_RSA) {
		snprintf(err, errlen, "%s: neither an RSA nor an Ed25519 key",
		    path);
		goto fail;
	}
	if (EVP_PKEY_bits(k) < 2048) {	/* RFC 8301 3.2 */
		snprintf(err, errlen, "%s: an RSA key of %d bits (2048 at "
		    "least)", path, EVP_PKEY_bits(k));
		goto fail;
	}
	return k;
fail:
	EVP_PKEY_free(k);
	return NULL;
}

int
mr_dkim_key_is_ed25519(const EVP_PKEY *k)
{
	return EVP_PKEY_id(k) == EVP_PKEY_ED25519;
}

static int
sign_rsa(EVP_PKEY *k, const unsigned char *digest, unsigned char *sig,
    size_t *siglen)
{
	EVP_PKEY_CTX *ctx;
	int rc = -1;

	if ((ctx = EVP_PKEY_CTX_new(k, NULL)) == NULL)
		return -1;
	if (EVP_PKEY_sign_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_sign(ctx, sig, siglen, digest, 32) == 1)
		rc = 0;
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/* RFC 8463 3: PureEdDSA over the SHA-256 digest. */
static int
sign_ed25519(EVP_PKEY *k, const unsigned char *digest, unsigned char *sig,
    size_t *siglen)
{
	EVP_MD_CTX *ctx;
	int rc = -1;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestSign(ctx, sig, siglen, digest, 32) == 1)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
mr_dkim_key_sign(EVP_PKEY *k, const unsigned char *digest,
    struct mr_buf *out)
{
	unsigned char sig[2048];	/* RSA up to 16384 bits */
	size_t siglen = sizeof(sig), n;
	int rc;

	if ((size_t)EVP_PKEY_size(k) > sizeof(sig))
		return -1;
	rc = mr_dkim_key_is_ed25519(k) ? sign_ed25519(k, digest, sig,
	    &siglen) : sign_rsa(k, digest, sig, &siglen);
	ERR_clear_error();
	if (rc == -1)
		return -1;
	n = 4 * ((siglen + 2) / 3);
	mr_buf_reserve(out, n + 1);
	EVP_EncodeBlock((unsigned char *)out->data + out->len, sig,
	    (int)siglen);
	out->len += n;
	out->data[out->len] = '\0';
	return 0;
}

static int
check_one(const struct mr_config *cf, const struct mr_dkim *d, FILE *errs)
{
	char err[512];
	struct stat st;
	EVP_PKEY *k;

	if ((k = mr_dkim_key_load(d->key, err, sizeof(err))) == NULL) {
		fprintf(errs, "%s:%d: dkim \"%s\": %s\n", cf->file, d->line,
		    d->domain, err);
		return -1;
	}
	EVP_PKEY_free(k);
	if (stat(d->key, &st) == 0 && (st.st_mode & S_IROTH) != 0)
		fprintf(errs, "%s:%d: warning: dkim \"%s\": %s may be read "
		    "by every user (chmod 600 it, owned by the queue user)\n",
		    cf->file, d->line, d->domain, d->key);
	return 0;
}

int
mr_dkim_check(const struct mr_config *cf, FILE *errs)
{
	size_t i, j;
	int rc = 0;

	for (i = 0; i < cf->nservers; i++)
		for (j = 0; j < cf->servers[i].ndkims; j++)
			if (check_one(cf, &cf->servers[i].dkims[j], errs) ==
			    -1)
				rc = -1;
	return rc;
}
