/*
 * dane.c - DANE for direct MX delivery (RFC 7672): the DNSSEC trust
 * anchor of deliverd's resolver, the TLSA lookups of MX hosts whose MX
 * and address records validated, and the TLS session that authenticates
 * a server by its TLSA records with OpenSSL's DANE verification.
 *
 * What applies, per address tried (RFC 7672 2.2):
 *   MX or address records not secure, or no secure TLSA records:
 *       the destination's configured policy (opportunistic by default)
 *   secure TLSA records, none usable: TLS mandatory, unauthenticated
 *   usable records (DANE-TA(2), DANE-EE(3)): TLS mandatory, and the
 *       server's chain must match one of them; never plain text
 * A bogus MX answer, a bogus or failed TLSA lookup of a secure host are
 * temporary failures: that host (or the whole domain) is not tried.
 *
 * Security: DNS answers are untrusted; only those libunbound validated
 * as secure from the configured trust anchor are acted on, and TLSA
 * RDATA is parsed by dane_tlsa.c before OpenSSL sees it.  The trust
 * anchor file is configuration, read once before privileges are dropped.
 * DANE-EE(3) matches skip the name and date checks (RFC 7672 3.1.1);
 * DANE-TA(2) matches check the MX host name (RFC 7672 3.2.2).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unbound.h>

#include "buf.h"
#include "log.h"
#include "proto.h"
#include "deliverd.h"

#define RR_TLSA		52
#define RCODE_NXDOMAIN	3
#define DANE_HOSTS_MAX	16
#define TA_LINE_MAX	4096

struct dane_req;

struct dane_sub {		/* the TLSA lookup of one host */
	struct dane_req	*req;
	char		*host;
	struct dane_tlsa *tlsa;		/* NULL: no usable answer yet */
	char		*failed;	/* why the host is not to be tried */
	int		 id;
	int		 active;
};

struct dane_req {
	struct ub_ctx	*ub;
	struct mx_result *res;
	dane_cb		 cb;
	void		*arg;
	unsigned	 port;
	struct dane_sub	 sub[DANE_HOSTS_MAX];
	size_t		 nsub;
	unsigned	 pending;
};

static int	 validating;	/* a trust anchor is loaded */
static SSL_CTX	*ctx_dane;

/* ---- the trust anchor ---- */

/* One anchor per line ("zone IN DS ..." or "zone IN DNSKEY ..."). */
static int
ta_add_line(struct ub_ctx *ub, char *line, const char *path, int lineno)
{
	char *p = line, *end;
	int rc;

	p += strspn(p, " \t");
	if ((end = strchr(p, ';')) != NULL)
		*end = '\0';
	end = p + strlen(p);
	while (end > p && (end[-1] == '\n' || end[-1] == '\r' ||
	    end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (*p == '\0')
		return 0;
	if ((rc = ub_ctx_add_ta(ub, p)) != 0) {
		mr_err("dnssec-trust-anchor %s line %d: %s", path, lineno,
		    ub_strerror(rc));
		return -1;
	}
	return 1;
}

static int
ta_load(struct ub_ctx *ub, const char *path)
{
	char line[TA_LINE_MAX];
	FILE *fp;
	int n = 0, lineno = 0, rc;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT) {
			mr_warn("no DNSSEC trust anchor at %s: DNSSEC "
			    "validation and DANE are off", path);
			return 0;
		}
		mr_err("dnssec-trust-anchor %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		if ((rc = ta_add_line(ub, line, path, ++lineno)) == -1)
			goto fail;
		n += rc;
	}
	if (ferror(fp)) {
		mr_err("dnssec-trust-anchor %s: read error", path);
		goto fail;
	}
	(void)fclose(fp);
	if (n == 0)
		mr_warn("dnssec-trust-anchor %s holds no anchor: DNSSEC "
		    "validation and DANE are off", path);
	validating = n > 0;
	return 0;
fail:
	(void)fclose(fp);
	return -1;
}

int
dane_init(struct ub_ctx *ub, const char *trust_anchor)
{
	validating = 0;
	if ((ctx_dane = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx_dane, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_dane_enable(ctx_dane) <= 0) {
		mr_err("DANE: cannot create a TLS context");
		return -1;
	}
	/* a match of the TLSA records is the verdict; no PKIX store */
	SSL_CTX_set_verify(ctx_dane, SSL_VERIFY_PEER, NULL);
	if (trust_anchor == NULL || strcmp(trust_anchor, "none") == 0)
		return 0;
	return ta_load(ub, trust_anchor);
}

void
dane_fini(void)
{
	SSL_CTX_free(ctx_dane);
	ctx_dane = NULL;
	validating = 0;
}

int
dane_validating(void)
{
	return validating;
}

/* ---- TLSA lookups ---- */

static void	dane_on_tlsa(void *, int, struct ub_result *);

static void
sub_fail(struct dane_sub *s, const char *why)
{
	struct mr_buf b;

	mr_buf_init(&b);
	mr_buf_printf(&b, "4.7.5 TLSA lookup of _%u._tcp.%s: %s",
	    s->req->port, s->host, why);
	free(s->failed);
	s->failed = b.data;
}

static struct dane_sub *
sub_of(struct dane_req *r, const char *host)
{
	size_t i;

	for (i = 0; i < r->nsub; i++)
		if (strcmp(r->sub[i].host, host) == 0)
			return &r->sub[i];
	if (r->nsub == DANE_HOSTS_MAX)
		return NULL;
	r->sub[r->nsub].req = r;
	r->sub[r->nsub].host = mr_xstrdup(host);
	return &r->sub[r->nsub++];
}

static void
sub_start(struct dane_sub *s)
{
	unsigned port = s->req->port;
	struct mr_buf name;
	int rc;

	mr_buf_init(&name);
	mr_buf_printf(&name, "_%u._tcp.%s", port, s->host);
	rc = ub_resolve_async(s->req->ub, name.data, RR_TLSA, 1, s,
	    dane_on_tlsa, &s->id);
	mr_buf_free(&name);
	if (rc != 0) {
		sub_fail(s, ub_strerror(rc));
		return;
	}
	s->active = 1;
	s->req->pending++;
}

static void
req_free(struct dane_req *r)
{
	size_t i;

	for (i = 0; i < r->nsub; i++) {
		if (r->sub[i].active)
			(void)ub_cancel(r->ub, r->sub[i].id);
		free(r->sub[i].host);
		free(r->sub[i].failed);
		dane_tlsa_unref(r->sub[i].tlsa);
	}
	free(r);
}

/*
 * The lookups are done: every address of a host gets its TLSA set; the
 * addresses of a host whose lookup failed are dropped, and a result left
 * without any becomes a temporary failure naming the first reason.
 */
static void
req_apply(struct dane_req *r)
{
	struct mx_result *res = r->res;
	struct dane_sub *s;
	const char *why = NULL;
	size_t i, n = 0;

	for (i = 0; i < res->naddrs; i++) {
		s = res->addrs[i].dnssec == DANE_SECURE ?
		    sub_of(r, res->addrs[i].host) : NULL;
		if (s != NULL && s->failed != NULL) {
			if (why == NULL)
				why = s->failed;
			mr_warn("%s", s->failed);
			free(res->addrs[i].host);
			continue;
		}
		res->addrs[n] = res->addrs[i];
		res->addrs[n].tlsa = s != NULL ? s->tlsa : NULL;
		dane_tlsa_ref(res->addrs[n].tlsa);
		n++;
	}
	res->naddrs = n;
	if (n == 0 && why != NULL) {
		res->status = MR_DS_TEMP;
		res->error = mr_xstrdup(why);
	}
}

static void
req_done(struct dane_req *r)
{
	struct mx_result *res = r->res;
	dane_cb cb = r->cb;
	void *arg = r->arg;

	req_apply(r);
	req_free(r);
	cb(res, arg);
}

static void
tlsa_take(struct dane_sub *s, unsigned port, struct ub_result *res)
{
	struct mr_buf base;
	size_t i;

	mr_buf_init(&base);
	mr_buf_printf(&base, "_%u._tcp.%s", port, s->host);
	s->tlsa = dane_tlsa_new(base.data);
	mr_buf_free(&base);
	for (i = 0; i < 4 * DANE_TLSA_MAX && res->data[i] != NULL; i++)
		if (res->len[i] >= 0)
			(void)dane_tlsa_add(s->tlsa,
			    (const unsigned char *)res->data[i],
			    (size_t)res->len[i]);
}

/*
 * RFC 7672 2.2: a secure TLSA RRset is used; a secure or insecure denial,
 * or an insecure answer (an unsigned zone below), means no DANE for the
 * host; bogus answers and lookup failures make the host unusable.
 */
static void
dane_on_tlsa(void *arg, int err, struct ub_result *res)
{
	struct dane_sub *s = arg;
	struct dane_req *r = s->req;

	s->active = 0;
	r->pending--;
	if (err != 0)
		sub_fail(s, ub_strerror(err));
	else if (res->bogus)
		sub_fail(s, "DNSSEC validation failed (bogus answer)");
	else if (res->rcode != 0 && res->rcode != RCODE_NXDOMAIN)
		sub_fail(s, "server failure");
	else if (res->havedata && res->secure)
		tlsa_take(s, r->port, res);
	if (res != NULL)
		ub_resolve_free(res);
	if (r->pending == 0)
		req_done(r);
}

struct dane_req *
dane_lookup(struct ub_ctx *ub, struct mx_result *res, unsigned port,
    dane_cb cb, void *arg)
{
	struct dane_req *r = mr_xcalloc(1, sizeof(*r));
	struct dane_sub *s;
	size_t i;

	r->ub = ub;
	r->res = res;
	r->cb = cb;
	r->arg = arg;
	r->port = port;
	for (i = 0; i < res->naddrs; i++) {
		if (res->addrs[i].dnssec != DANE_SECURE)
			continue;
		if ((s = sub_of(r, res->addrs[i].host)) != NULL &&
		    !s->active && s->failed == NULL && s->tlsa == NULL)
			sub_start(s);
	}
	if (r->pending > 0)
		return r;
	/* nothing to wait for: applied now, the caller goes on */
	req_apply(r);
	req_free(r);
	return NULL;
}

void
dane_cancel(struct dane_req *r)
{
	if (r == NULL)
		return;
	mx_result_free(r->res);
	req_free(r);
}

/* ---- the policy and the TLS session ---- */

enum mr_tls_out
dane_tls_policy(const struct dest *ds, const struct mx_addr *a)
{
	if (a->tlsa == NULL)
		return ds->tls;
	if (a->tlsa->nrr == 0)
		return MR_TLS_OUT_REQUIRED;	/* RFC 7672 2.2 */
	return MR_TLS_OUT_DANE;
}

int
dane_applies(const struct mx_addr *a)
{
	return a != NULL && a->tlsa != NULL;
}

SSL *
dane_client_ssl(const struct mx_addr *a, struct mr_buf *why)
{
	const struct dane_tlsa *t = a->tlsa;
	SSL *ssl;
	size_t i;
	int n = 0;

	if ((ssl = SSL_new(ctx_dane)) == NULL ||
	    SSL_set_tlsext_host_name(ssl, a->host) != 1 ||
	    SSL_dane_enable(ssl, a->host) <= 0)
		goto fail;
	/* RFC 7672 3.1.1: DANE-EE binds the key, not names or dates */
	(void)SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	for (i = 0; i < t->nrr; i++)
		if (SSL_dane_tlsa_add(ssl, t->rr[i].usage, t->rr[i].selector,
		    t->rr[i].mtype, t->rr[i].data, t->rr[i].len) > 0)
			n++;
	ERR_clear_error();
	if (n == 0) {
		SSL_free(ssl);
		mr_buf_printf(why, "4.7.5 DANE: no TLSA record of %s is "
		    "usable", t->base);
		return NULL;
	}
	return ssl;
fail:
	SSL_free(ssl);
	ERR_clear_error();
	mr_buf_printf(why, "cannot set up a DANE TLS session for %s",
	    a->host);
	return NULL;
}

int
dane_client_check(SSL *ssl, const struct mx_addr *a, struct mr_buf *why)
{
	if (ssl != NULL && SSL_get_verify_result(ssl) == X509_V_OK &&
	    SSL_get0_dane_authority(ssl, NULL, NULL) >= 0)
		return 0;
	mr_buf_printf(why, "4.7.5 DANE: no TLSA record of %s matches the "
	    "server's certificate", a->tlsa->base);
	return -1;
}

void
dane_client_error(SSL *ssl, const struct mx_addr *a, unsigned long e,
    char *buf, size_t size)
{
	char err[200];
	long vr;

	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		snprintf(buf, size, "4.7.5 DANE: no TLSA record of %s matches "
		    "the server's certificate (%s)", a->tlsa->base,
		    X509_verify_cert_error_string(vr));
		return;
	}
	if (e != 0)
		ERR_error_string_n(e, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "handshake failed");
	snprintf(buf, size, "4.7.5 DANE: TLS with a host that has TLSA "
	    "records (%s) failed: %s", a->tlsa->base, err);
}
