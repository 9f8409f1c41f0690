/*
 * tls.h - smtpd's certificates: one SSL_CTX per pki of a configuration.
 */
#ifndef MR_SMTPD_TLS_H
#define MR_SMTPD_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct mr_config;
struct mr_server;

/* At start, before the chroot: reads every pki's files.  An array of
 * cfg->npkis contexts, or NULL (logged) if one does not load. */
SSL_CTX	**tls_load_files(const struct mr_config *);
/* MR_M_PKI: pki number idx of the coming configuration; fd holds the
 * chain (certlen bytes) then the key.  0, or -1 (logged). */
int	  tls_pki_frame(uint32_t idx, uint32_t certlen, int fd);
/* MR_M_CONFIG: the contexts from the frames received since the last
 * one, or NULL (logged); the frames are forgotten either way. */
SSL_CTX	**tls_load_pending(const struct mr_config *);
void	  tls_free(SSL_CTX **, size_t);
/* The context of a server's pki, or NULL for a server without one. */
SSL_CTX	 *tls_ctx_of(SSL_CTX **, const struct mr_config *,
	    const struct mr_server *);

#endif
