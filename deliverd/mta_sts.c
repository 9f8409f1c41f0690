/*
 * mta_sts.c - MTA-STS (RFC 8461) for direct MX delivery: discovery
 * (the _mta-sts TXT record through deliverd's libunbound context), the
 * policy cache (in memory, and on disk in mta-sts-cache so that it
 * survives a restart) and what a policy asks of each MX host.
 *
 *   TXT id equal to the cached policy's, or no usable TXT answer, while
 *   the cached policy has not expired: the cached policy (RFC 8461 5.1),
 *   refetched in the background once half its max_age has passed;
 *   a new id, or nothing valid cached: fetched (mta_sts_fetch.c) while
 *   the session waits; a failed fetch keeps an unexpired cached policy.
 *
 * A cache file, one per domain, named by the domain:
 *
 *   mta-sts-cache 1\n id ID\n fetched EPOCH\n expires EPOCH\n \n BODY
 *
 * written to a temporary name, fsynced and renamed, so a reader never
 * sees half of one.
 *
 * Security: TXT answers, policy bodies and the cache files are parsed by
 * mta_sts_parse.c into a typed policy before use; a file is named only
 * by a domain made of [a-z0-9.-] with no empty label, so no name can
 * leave the directory.  The directory is deliverd's user's alone
 * (mailrootd makes it 0700); a file that does not parse is ignored.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unbound.h>

#include "buf.h"
#include "log.h"
#include "util.h"
#include "deliverd.h"
#include "mta_sts.h"

#define STS_MEM_MAX	1024		/* domains kept in memory */
#define RR_TXT		16
#define RCODE_SERVFAIL	2
#define TXT_MAX		4096		/* one record's strings, joined */
#define FILE_MAX	(MTA_STS_BODY_MAX + 512)
#define HTTPS_PORT	443

struct sts_entry {
	TAILQ_ENTRY(sts_entry)	 entry;
	struct mta_sts		 cur;		/* domain always; the rest
						 * when have */
	int			 have;
	unsigned		 refs;		/* queries holding it */
	time_t			 fetched, expires;
	struct sts_fetch	*fetch;
	char			 fetch_id[MTA_STS_ID_MAX + 1];
	TAILQ_HEAD(, mta_sts_query) waiters;
};

struct mta_sts_query {
	TAILQ_ENTRY(mta_sts_query) entry;	/* on e->waiters */
	struct sts_entry	*e;
	char			*ca_file;
	mta_sts_cb		 cb;
	void			*arg;
	int			 ubid;
	int			 ubactive;
	int			 waiting;
};

static struct {
	char			*dir;
	unsigned		 port;
	size_t			 n;
	TAILQ_HEAD(sts_entry_head_, sts_entry) cache;
} sts = { NULL, HTTPS_PORT, 0, TAILQ_HEAD_INITIALIZER(sts.cache) };

/*
 * For the tests only: MAILROOT_TEST_MTA_STS_PORT names the port of the
 * policy host instead of 443.  Only root starts mailrootd and sets its
 * environment; the certificate must still name mta-sts.DOMAIN and chain
 * to a trusted CA, so the port alone weakens nothing.  Said in the log.
 */
int
mta_sts_init(const struct mr_config *cfg)
{
	const char *p = getenv("MAILROOT_TEST_MTA_STS_PORT");
	char *end;
	long v;

	sts.dir = mr_xstrdup(cfg->mta_sts_cache);
	if (p == NULL || *p == '\0')
		return 0;
	errno = 0;
	v = strtol(p, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 65535) {
		mr_err("MAILROOT_TEST_MTA_STS_PORT=%s: not a port", p);
		return -1;
	}
	sts.port = (unsigned)v;
	mr_warn("MTA-STS policies fetched from port %u "
	    "(MAILROOT_TEST_MTA_STS_PORT): not for production", sts.port);
	return 0;
}

static void	query_free(struct mta_sts_query *);

static void
entry_free(struct sts_entry *e)
{
	struct mta_sts_query *q;

	while ((q = TAILQ_FIRST(&e->waiters)) != NULL) {
		TAILQ_REMOVE(&e->waiters, q, entry);
		q->waiting = 0;
		query_free(q);
	}
	sts_fetch_cancel(e->fetch);
	free(e);
}

void
mta_sts_fini(void)
{
	struct sts_entry *e;

	while ((e = TAILQ_FIRST(&sts.cache)) != NULL) {
		TAILQ_REMOVE(&sts.cache, e, entry);
		entry_free(e);
	}
	sts.n = 0;
	free(sts.dir);
	sts.dir = NULL;
}

/* ---- the cache on disk ---- */

/* "[a-z0-9-]+(\.[a-z0-9-]+)*", lower-cased into out: a safe file name. */
static int
domain_key(const char *name, char *out, size_t size)
{
	size_t i, n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	/* room for "mta-sts." in front: the policy host is a name too */
	if (n == 0 || n + 8 > MTA_STS_NAME_MAX || n >= size)
		return -1;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.' ? i == 0 || out[i - 1] == '.' || i == n - 1 :
		    !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-'))
			return -1;
		out[i] = c;
	}
	out[n] = '\0';
	return 0;
}

/* "KEY VALUE\n" at *p: the value's start and length, or -1. */
static int
file_field(const char *t, size_t len, size_t *p, const char *key,
    const char **v, size_t *vn)
{
	size_t k = strlen(key), e;

	if (len - *p < k + 1 || memcmp(t + *p, key, k) != 0 ||
	    t[*p + k] != ' ')
		return -1;
	for (e = *p + k + 1; e < len && t[e] != '\n';)
		e++;
	if (e == len)
		return -1;
	*v = t + *p + k + 1;
	*vn = e - (*p + k + 1);
	*p = e + 1;
	return 0;
}

static int
file_time(const char *v, size_t n, time_t *out)
{
	long long t = 0;
	size_t i;

	if (n == 0 || n > 12)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		t = t * 10 + (v[i] - '0');
	}
	*out = (time_t)t;
	return 0;
}

/* The entry as its file says, if it has a sound one. */
static void
entry_load(struct sts_entry *e)
{
	char path[4096], *t;
	const char *v, *err;
	size_t len, p = 0, vn;
	struct sts_entry x;

	if (snprintf(path, sizeof(path), "%s/%s", sts.dir, e->cur.domain) >=
	    (int)sizeof(path) || (t = mr_read_file(path, FILE_MAX, &len)) ==
	    NULL)
		return;
	memset(&x, 0, sizeof(x));
	if (len < 16 || memcmp(t, "mta-sts-cache 1\n", 16) != 0)
		goto bad;
	p = 16;
	if (file_field(t, len, &p, "id", &v, &vn) == -1 || vn == 0 ||
	    vn > MTA_STS_ID_MAX)
		goto bad;
	memcpy(x.cur.id, v, vn);
	if (file_field(t, len, &p, "fetched", &v, &vn) == -1 ||
	    file_time(v, vn, &x.fetched) == -1 ||
	    file_field(t, len, &p, "expires", &v, &vn) == -1 ||
	    file_time(v, vn, &x.expires) == -1 || p >= len || t[p] != '\n')
		goto bad;
	p++;
	if (mta_sts_policy_parse(t + p, len - p, &x.cur.pol, &err) == -1)
		goto bad;
	memcpy(e->cur.id, x.cur.id, sizeof(e->cur.id));
	e->cur.pol = x.cur.pol;
	e->fetched = x.fetched;
	e->expires = x.expires;
	e->have = 1;
	free(t);
	return;
bad:
	mr_warn("MTA-STS cache file %s is not sound: ignored", path);
	free(t);
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes the entry with the body it was parsed from; a failure is logged
 * and costs the restart only. */
static void
entry_save(const struct sts_entry *e, const char *body, size_t len)
{
	char path[4096], tmp[4096];
	struct mr_buf b;
	int fd = -1;

	mr_buf_init(&b);
	if (snprintf(path, sizeof(path), "%s/%s", sts.dir, e->cur.domain) >=
	    (int)sizeof(path) || snprintf(tmp, sizeof(tmp), "%s/.%s.tmp",
	    sts.dir, e->cur.domain) >= (int)sizeof(tmp))
		goto fail;
	mr_buf_printf(&b, "mta-sts-cache 1\nid %s\nfetched %lld\n"
	    "expires %lld\n\n", e->cur.id, (long long)e->fetched,
	    (long long)e->expires);
	mr_buf_add(&b, body, len);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1 || write_all(fd, b.data, b.len) == -1 ||
	    fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	mr_buf_free(&b);
	return;
fail:
	mr_warn("MTA-STS cache: cannot write %s: %s (the policy is kept in "
	    "memory)", path, strerror(errno));
	if (fd != -1) {
		(void)close(fd);
		(void)unlink(tmp);
	}
	mr_buf_free(&b);
}

/* ---- the cache in memory ---- */

/* The entry of domain, most recently used first; made (and read from
 * disk) when missing.  Entries nothing waits on make room. */
static struct sts_entry *
entry_get(const char *domain)
{
	struct sts_entry *e, *prev;

	TAILQ_FOREACH(e, &sts.cache, entry)
		if (strcmp(e->cur.domain, domain) == 0) {
			TAILQ_REMOVE(&sts.cache, e, entry);
			TAILQ_INSERT_HEAD(&sts.cache, e, entry);
			return e;
		}
	for (e = TAILQ_LAST(&sts.cache, sts_entry_head_); e != NULL &&
	    sts.n >= STS_MEM_MAX; e = prev) {
		prev = TAILQ_PREV(e, sts_entry_head_, entry);
		if (e->fetch == NULL && e->refs == 0) {
			TAILQ_REMOVE(&sts.cache, e, entry);
			entry_free(e);
			sts.n--;
		}
	}
	e = mr_xcalloc(1, sizeof(*e));
	memcpy(e->cur.domain, domain, strlen(domain) + 1);
	TAILQ_INIT(&e->waiters);
	TAILQ_INSERT_HEAD(&sts.cache, e, entry);
	sts.n++;
	entry_load(e);
	return e;
}

static int
entry_valid(const struct sts_entry *e, time_t now)
{
	return e->have && e->expires > now;
}

static void
query_free(struct mta_sts_query *q)
{
	if (q->ubactive)
		(void)ub_cancel(mx_ub(), q->ubid);
	if (q->waiting)
		TAILQ_REMOVE(&q->e->waiters, q, entry);
	q->e->refs--;
	free(q->ca_file);
	free(q);
}

/* Answers and frees the query; a policy of mode none is no policy. */
static void
query_answer(struct mta_sts_query *q, const struct sts_entry *e)
{
	const struct mta_sts *s = NULL;

	if (e != NULL && entry_valid(e, time(NULL)) &&
	    e->cur.pol.mode != MTA_STS_NONE)
		s = &e->cur;
	if (q->waiting)
		TAILQ_REMOVE(&q->e->waiters, q, entry);
	q->waiting = 0;
	q->cb(s, q->arg);
	query_free(q);
}

static void
entry_fetched(const char *body, size_t len, const char *err, void *arg)
{
	struct sts_entry *e = arg;
	struct mta_sts_policy pol;
	const char *perr;
	time_t now = time(NULL);

	e->fetch = NULL;
	if (err == NULL && mta_sts_policy_parse(body, len, &pol, &perr) == -1)
		err = perr;
	if (err == NULL) {
		memcpy(e->cur.id, e->fetch_id, sizeof(e->cur.id));
		e->cur.pol = pol;
		e->fetched = now;
		e->expires = now + (time_t)pol.max_age;
		e->have = 1;
		mr_info("MTA-STS policy of %s: mode %s, id %s, max_age %u, "
		    "%zu mx", e->cur.domain, mta_sts_mode_name(pol.mode),
		    e->cur.id, pol.max_age, pol.nmx);
		entry_save(e, body, len);
	} else
		mr_warn("MTA-STS policy of %s (id %s): cannot fetch it: %s%s",
		    e->cur.domain, e->fetch_id, err, entry_valid(e, now) ?
		    "; the cached policy stays in force" : "");
	while (!TAILQ_EMPTY(&e->waiters))
		query_answer(TAILQ_FIRST(&e->waiters), e);
}

static void
entry_fetch(struct sts_entry *e, const char *id, const char *ca_file)
{
	if (e->fetch != NULL)
		return;		/* one at a time: it reads the newest */
	memcpy(e->fetch_id, id, strlen(id) + 1);
	e->fetch = sts_fetch_start(e->cur.domain, ca_file, sts.port,
	    entry_fetched, e);
	if (e->fetch == NULL)
		entry_fetched(NULL, 0, "cannot start the fetch", e);
}

/* ---- discovery ---- */

/* 1 and id: one valid STSv1 record; 0: none; -1: the lookup failed. */
static int
txt_id(int err, const struct ub_result *res, char *id)
{
	char txt[TXT_MAX], one[MTA_STS_ID_MAX + 1];
	size_t i, p, n, nsts = 0;
	int rc, valid = 0;

	if (err != 0 || res == NULL || res->rcode == RCODE_SERVFAIL)
		return -1;
	for (i = 0; res->havedata && res->data[i] != NULL; i++) {
		const unsigned char *d = (const unsigned char *)res->data[i];
		size_t dl = (size_t)res->len[i];

		/* <length><octets>... joined (RFC 7208 3.3 style) */
		for (p = 0, n = 0; p < dl && n < sizeof(txt); p += 1 + d[p]) {
			size_t sl = d[p];

			if (p + 1 + sl > dl || n + sl > sizeof(txt))
				break;
			memcpy(txt + n, d + p + 1, sl);
			n += sl;
		}
		if ((rc = mta_sts_txt_parse(txt, n, one)) == 0)
			continue;
		nsts++;
		if (rc == 1) {
			memcpy(id, one, sizeof(one));
			valid = 1;
		}
	}
	/* RFC 8461 3.1: exactly one STSv1 record, and a valid one */
	return nsts == 1 && valid ? 1 : 0;
}

static void
txt_decide(struct mta_sts_query *q, int rc, const char *id)
{
	struct sts_entry *e = q->e;
	time_t now = time(NULL);

	if (entry_valid(e, now) && (rc != 1 || strcmp(id, e->cur.id) == 0)) {
		if (rc == 1 && now - e->fetched >=
		    (time_t)e->cur.pol.max_age / 2)
			entry_fetch(e, id, q->ca_file);	/* refresh */
		query_answer(q, e);
		return;
	}
	if (rc != 1) {
		query_answer(q, NULL);
		return;
	}
	/* a new id, or nothing valid cached: wait for the policy */
	TAILQ_INSERT_TAIL(&e->waiters, q, entry);
	q->waiting = 1;
	entry_fetch(e, id, q->ca_file);
}

static void
txt_cb(void *arg, int err, struct ub_result *res)
{
	struct mta_sts_query *q = arg;
	char id[MTA_STS_ID_MAX + 1] = "";
	int rc;

	q->ubactive = 0;
	rc = txt_id(err, res, id);
	if (rc == -1)
		mr_info("MTA-STS: TXT lookup of _mta-sts.%s failed: %s",
		    q->e->cur.domain, err != 0 ? ub_strerror(err) : "SERVFAIL");
	if (res != NULL)
		ub_resolve_free(res);
	txt_decide(q, rc, id);
}

struct mta_sts_query *
mta_sts_lookup(const struct dest *ds, mta_sts_cb cb, void *arg)
{
	struct mta_sts_query *q;
	char key[MTA_STS_NAME_MAX + 1], name[MTA_STS_NAME_MAX + 16];
	int rc;

	if (ds->kind != DEST_MX || !ds->srv->delivery.outbound.mta_sts ||
	    sts.dir == NULL || domain_key(ds->name, key, sizeof(key)) == -1)
		return NULL;
	q = mr_xcalloc(1, sizeof(*q));
	q->e = entry_get(key);
	q->e->refs++;
	q->ca_file = ds->trust.ca_file ? mr_xstrdup(ds->trust.ca_file) :
	    NULL;
	q->cb = cb;
	q->arg = arg;
	snprintf(name, sizeof(name), "_mta-sts.%s", key);
	rc = ub_resolve_async(mx_ub(), name, RR_TXT, 1, q, txt_cb, &q->ubid);
	if (rc != 0) {
		mr_warn("MTA-STS: TXT lookup of %s: %s", name,
		    ub_strerror(rc));
		query_free(q);
		return NULL;
	}
	q->ubactive = 1;
	return q;
}

void
mta_sts_cancel(struct mta_sts_query *q)
{
	if (q != NULL)
		query_free(q);
}

/* ---- what a policy asks of a host ---- */

enum mta_sts_host
mta_sts_host(const struct mta_sts *s, const struct dest *ds,
    const char *host)
{
	(void)host;	/* DANE's precedence is the caller's (smtp_client.c) */
	if (s == NULL)
		return MTA_STS_HOST_OFF;
	/* a configured verify or fingerprint is at least as strict */
	if (ds->tls >= MR_TLS_OUT_VERIFY)
		return MTA_STS_HOST_OFF;
	switch (s->pol.mode) {
	case MTA_STS_ENFORCE:
		return MTA_STS_HOST_ENFORCE;
	case MTA_STS_TESTING:
		return MTA_STS_HOST_TESTING;
	default:
		return MTA_STS_HOST_OFF;
	}
}

void
mta_sts_says(const struct mta_sts *s, struct mr_buf *b)
{
	mr_buf_printf(b, "MTA-STS policy of %s (%s, id %s): ", s->domain,
	    mta_sts_mode_name(s->pol.mode), s->id);
}

/* The names of the hosts that do not match, once each. */
static void
filter_note(struct mr_buf *out, const char *host)
{
	if (out->len > 0 && strstr(out->data, host) != NULL)
		return;
	mr_buf_printf(out, "%s%s", out->len > 0 ? ", " : "", host);
}

int
mta_sts_filter(const struct mta_sts *s, const struct dest *ds,
    struct mx_result *r, const char *qid, struct mr_buf *why)
{
	struct mr_buf out;
	size_t i, k = 0;
	int enforce;

	if (s == NULL || s->pol.mode == MTA_STS_NONE)
		return 0;
	enforce = s->pol.mode == MTA_STS_ENFORCE;
	mr_buf_init(&out);
	for (i = 0; i < r->naddrs; i++) {
		if (mta_sts_mx_match(&s->pol, r->addrs[i].host) ||
		    (ds->dane && dane_applies(&r->addrs[i]))) { /* RFC 8461 2 */
			r->addrs[k++] = r->addrs[i];
			continue;
		}
		filter_note(&out, r->addrs[i].host);
		if (enforce)
			free(r->addrs[i].host);
		else
			r->addrs[k++] = r->addrs[i];
	}
	r->naddrs = k;
	if (out.len > 0) {
		mr_buf_reset(why);
		mta_sts_says(s, why);
		mr_buf_printf(why, "MX %s not in the policy", out.data);
		if (enforce && k == 0)
			mr_buf_adds(why, "; no MX host left");
		mr_warn("%s: %s%s", qid, why->data, enforce ? (k == 0 ?
		    "; deferred" : "; not used") : "; used anyway (testing)");
	}
	mr_buf_free(&out);
	return enforce && k == 0 ? -1 : 0;
}

SSL *
mta_sts_ssl(const struct dest *ds, const char *host, enum mta_sts_host m,
    struct mr_buf *why)
{
	SSL_CTX *ctx;
	SSL *ssl;

	if ((ctx = tls_client_verify_ctx(ds->trust.ca_file, why)) == NULL)
		return NULL;
	if ((ssl = SSL_new(ctx)) == NULL)
		goto fail;
	/* RFC 8461 4.2: the MX host name, wildcards as RFC 6125 */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set_tlsext_host_name(ssl, host) != 1 ||
	    SSL_set1_host(ssl, host) != 1)
		goto fail;
	/* testing: the verdict is read after the handshake, not obeyed */
	if (m == MTA_STS_HOST_TESTING)
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	return ssl;
fail:
	SSL_free(ssl);
	ERR_clear_error();
	mr_buf_printf(why, "cannot set up a TLS session for %s", host);
	return NULL;
}

int
mta_sts_check(SSL *ssl, struct mr_buf *why)
{
	long vr;

	if (ssl == NULL) {
		mr_buf_adds(why, "no TLS session");
		return -1;
	}
	if ((vr = SSL_get_verify_result(ssl)) == X509_V_OK)
		return 0;
	mr_buf_adds(why, X509_verify_cert_error_string(vr));
	return -1;
}
