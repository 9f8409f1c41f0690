/*
 * tls_tune.h - what every TLS context of mailroot gets alike, server and
 * client: the TLS 1.3 cipher suites in the order this CPU runs fastest.
 */
#ifndef MR_TLS_TUNE_H
#define MR_TLS_TUNE_H

#include <openssl/ssl.h>

/* 1 if the CPU has AES instructions (AES-GCM is then the cheaper AEAD),
 * 0 if not (ChaCha20-Poly1305 is). */
int		 mr_tls_cpu_aes(void);
/* The TLS 1.3 suites, fastest first for this CPU. */
const char	*mr_tls13_suites(void);
/* Sets ctx's TLS 1.3 suites; a server also lets a client that puts
 * ChaCha20 first (one without AES instructions) have it.  0, or -1. */
int		 mr_tls_tune(SSL_CTX *ctx, int server);

#endif
