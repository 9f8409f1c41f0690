/*
 * tls_sess.c - deliverd's outbound TLS session cache: the sessions
 * (TLS 1.3 tickets, TLS 1.2 sessions) that servers gave, kept to resume
 * the next handshake with the same server under the same policy, which
 * then costs neither side a certificate signature or check.
 *
 * A session is filed under a key made of everything its trust was judged
 * by: the policy level (opportunistic, required, verify, fingerprint),
 * the virtual server sending, the verifying context (the system's store
 * or one tls-ca-file as loaded; a session dies with its context), the
 * host name verified and sent as SNI, and the address and port.  So a
 * session made under one policy never satisfies another (a stricter
 * one least of all), nor another virtual server's.  It is filed only
 * once the policy accepted the handshake (tls_sess_checked), and each is
 * used once (RFC 8446 C.4): the server's next ticket replaces it.  DANE
 * and MTA-STS sessions are never cached (their checks need the full
 * handshake).
 *
 * Security: the sessions hold secrets; they live in deliverd's memory
 * only, at most SESS_MAX of them, and go when the configuration does.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netdb.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "log.h"
#include "util.h"
#include "deliverd.h"

#define SESS_MAX	256		/* sessions kept, all servers */

struct sess_ent {
	char		*key;
	SSL_CTX		*ctx;		/* the context it came from */
	SSL_SESSION	*sess;
	unsigned long	 used;		/* when filed (LRU) */
};

/* What an SSL of the cache carries (SSL ex_data). */
struct sess_tag {
	char		*key;
	int		 checked;	/* the policy accepted the peer */
	SSL_SESSION	*pending;	/* came before the check */
};

static struct sess_ent	 ents[SESS_MAX];
static unsigned long	 tick;
static int		 tag_idx = -1;

static void
ent_clear(struct sess_ent *e)
{
	free(e->key);
	SSL_SESSION_free(e->sess);
	memset(e, 0, sizeof(*e));
}

static void
tag_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct sess_tag *t = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (t == NULL)
		return;
	SSL_SESSION_free(t->pending);
	free(t->key);
	free(t);
}

/* Files sess under its SSL's key; the least recently filed one goes. */
static void
sess_put(SSL *ssl, SSL_SESSION *sess)
{
	struct sess_tag *t = SSL_get_ex_data(ssl, tag_idx);
	struct sess_ent *e = &ents[0];
	size_t i;

	for (i = 0; i < SESS_MAX; i++) {
		if (ents[i].sess == NULL) {
			e = &ents[i];
			break;
		}
		if (ents[i].used < e->used)
			e = &ents[i];
	}
	ent_clear(e);
	e->key = mr_xstrdup(t->key);
	e->ctx = SSL_get_SSL_CTX(ssl);
	e->sess = sess;
	e->used = ++tick;
}

/*
 * OpenSSL's new-session callback.  A copy is kept: OpenSSL marks the
 * connection's own session not resumable when the SSL is freed without
 * a close_notify sent, and deliverd ends a session with QUIT and its 221
 * (the transaction's outcome is known before), not with a TLS shutdown.
 */
static int
sess_new_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct sess_tag *t = SSL_get_ex_data(ssl, tag_idx);
	SSL_SESSION *copy;

	if (t == NULL || !SSL_SESSION_is_resumable(sess) ||
	    (copy = SSL_SESSION_dup(sess)) == NULL)
		return 0;
	if (!t->checked) {
		SSL_SESSION_free(t->pending);
		t->pending = copy;
		return 0;
	}
	sess_put(ssl, copy);
	return 0;
}

int
tls_sess_init(SSL_CTX *ctx)
{
	if (tag_idx == -1 &&
	    (tag_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL,
	    tag_free)) == -1)
		return -1;
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, sess_new_cb);
	return 0;
}

static char *
sess_key(const struct dest *ds, const struct mx_addr *a)
{
	char ip[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
	struct mr_buf b;

	(void)getnameinfo((const struct sockaddr *)&a->ss, a->sslen, ip,
	    sizeof(ip), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
	mr_buf_init(&b);
	mr_buf_printf(&b, "%d %zu %s %s [%s]:%s", (int)ds->tls, ds->srvidx,
	    ds->trust.ca_file != NULL ? ds->trust.ca_file : "-", a->host, ip,
	    port);
	return b.data;
}

/*
 * Tags ssl with its key and offers the newest session filed under it (and
 * made with the same context), taken out of the cache.  0, or -1.
 */
int
tls_sess_offer(SSL *ssl, const struct dest *ds, const struct mx_addr *a)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
	struct sess_ent *e = NULL;
	struct sess_tag *t;
	size_t i;
	int rc = 0;

	t = mr_xcalloc(1, sizeof(*t));
	t->key = sess_key(ds, a);
	if (SSL_set_ex_data(ssl, tag_idx, t) != 1) {
		tag_free(NULL, t, NULL, 0, 0, NULL);
		return -1;
	}
	for (i = 0; i < SESS_MAX; i++)
		if (ents[i].sess != NULL && ents[i].ctx == ctx &&
		    strcmp(ents[i].key, t->key) == 0 &&
		    (e == NULL || ents[i].used > e->used))
			e = &ents[i];
	if (e == NULL)
		return 0;
	if (SSL_SESSION_is_resumable(e->sess) &&
	    SSL_set_session(ssl, e->sess) != 1)
		rc = -1;
	ent_clear(e);
	return rc;
}

/* The policy accepted ssl's peer: its sessions may be filed now. */
void
tls_sess_checked(SSL *ssl)
{
	struct sess_tag *t;

	if (ssl == NULL || (t = SSL_get_ex_data(ssl, tag_idx)) == NULL)
		return;
	t->checked = 1;
	if (t->pending != NULL) {
		sess_put(ssl, t->pending);
		t->pending = NULL;
	}
}

/* Forgets every session made with ctx (NULL: all of them). */
void
tls_sess_flush(SSL_CTX *ctx)
{
	size_t i;

	for (i = 0; i < SESS_MAX; i++)
		if (ents[i].sess != NULL && (ctx == NULL || ents[i].ctx == ctx))
			ent_clear(&ents[i]);
}
