/*
 * tls_tune.c - the TLS 1.3 cipher suite order of every mailroot context,
 * chosen by the CPU: AES-128-GCM first where the CPU has AES instructions
 * (x86 AES-NI with PCLMULQDQ, ARMv8 AES with PMULL), ChaCha20-Poly1305
 * first where it has not.  Only the order changes: the set is OpenSSL's
 * TLS 1.3 default (three AEADs), so no peer loses a suite it had.
 *
 * Security: all three suites are AEADs with ephemeral key exchange; the
 * choice among them is speed alone.  Nothing here reads input.
 */
#include "config.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#endif

#include "tls_tune.h"

#define SUITES_AES	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
			"TLS_CHACHA20_POLY1305_SHA256"
#define SUITES_CHACHA	"TLS_CHACHA20_POLY1305_SHA256:" \
			"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"

int
mr_tls_cpu_aes(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("aes") &&
	    __builtin_cpu_supports("pclmul");
#elif defined(__aarch64__) && defined(__linux__) && defined(HWCAP_AES)
	unsigned long hw = getauxval(AT_HWCAP);

	return (hw & HWCAP_AES) != 0 && (hw & HWCAP_PMULL) != 0;
#else
	return 0;
#endif
}

const char *
mr_tls13_suites(void)
{
	static const char *suites;

	if (suites == NULL)
		suites = mr_tls_cpu_aes() ? SUITES_AES : SUITES_CHACHA;
	return suites;
}

int
mr_tls_tune(SSL_CTX *ctx, int server)
{
	if (SSL_CTX_set_ciphersuites(ctx, mr_tls13_suites()) != 1)
		return -1;
	if (server)
		SSL_CTX_set_options(ctx, SSL_OP_PRIORITIZE_CHACHA);
	return 0;
}
