/*
 * dkim_sign.c - DKIM signatures (RFC 6376; Ed25519, RFC 8463) added to
 * each new message once, when queued commits it, whichever door it came
 * through (SMTP, Pickup, mailroot-sendmail): all three reach the same
 * group commit (queue_commit.c), whose worker thread calls dkim_sign
 * before it writes the envelope.  A retry sends the signed file again;
 * nothing is signed per attempt.
 *
 * The key is chosen by the domain of the message's From field (the
 * domain DMARC aligns with), among the server's `dkim' blocks; a message
 * with no From field, more than one, or a domain without a key is
 * committed unsigned.  The signed message is written to Queue/tmp/ID.dkim
 * (the DKIM-Signature field, then the message as it was) and renamed
 * over Queue/ID.eml before the envelope exists, so recovery treats a
 * crash at any point as it treats an unfinished commit; the new file's
 * descriptor replaces the old one, so the commit's own flush reports its
 * write errors (queue_commit.c).
 *
 * Keys are loaded here, after the sandbox (Landlock lets queued read the
 * directories of the key files), at start and on every reload, and kept
 * in a reference-counted set per server: a commit in flight keeps the set
 * it began with across a reload.  The counts are touched only by the
 * loop; the worker only reads a set.  A key that does not load is
 * logged, and its domain's mail is refused for now (451, or left in
 * Pickup) rather than sent without the signature the site asked for.
 *
 * Security: the keys are readable by the queue user alone; smtpd and
 * deliverd cannot open them (other users, Landlock) and never see a key.
 * The message is untrusted: it is parsed by dkim_canon.c, with the
 * header section bounded (MR_DKIM_HEADER_MAX; longer goes unsigned) and
 * the body streamed.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "buf.h"
#include "dkim.h"
#include "log.h"
#include "queued.h"
#include "util.h"

#define CHUNK	(64 * 1024)

struct dkim_key {
	char		*domain;
	char		*selector;
	enum mr_dkim_canon hcanon, bcanon;
	char		**headers;	/* NULL: default_headers */
	size_t		 nheaders;
	EVP_PKEY	*pkey;		/* NULL: did not load */
};

struct dkim_set {
	unsigned	 refs;
	struct dkim_key	*keys;
	size_t		 nkeys;
};

static struct dkim_set **sets;	/* per server; NULL where none */
static size_t nsets;

/* RFC 6376 5.4.1's list; From comes first and is signed once more than
 * it occurs (5.4.2), so that a second From cannot be added unseen. */
static const char *const default_headers[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "resent-date",
	"resent-from", "resent-sender", "resent-to", "resent-cc",
	"in-reply-to", "references", "list-id", "list-help",
	"list-unsubscribe", "list-subscribe", "list-post", "list-owner",
	"list-archive", "message-id", "mime-version", "content-type",
	"content-transfer-encoding", "content-id", "content-description",
	"sender"
};

static void
key_init(struct dkim_key *k, const struct mr_dkim *d)
{
	char err[512];
	size_t i;

	k->domain = mr_xstrdup(d->domain);
	k->selector = mr_xstrdup(d->selector);
	k->hcanon = (enum mr_dkim_canon)d->hcanon;
	k->bcanon = (enum mr_dkim_canon)d->bcanon;
	if (d->headers != NULL) {
		k->headers = mr_xcalloc(d->nheaders, sizeof(char *));
		for (i = 0; i < d->nheaders; i++)
			k->headers[i] = mr_xstrdup(d->headers[i]);
		k->nheaders = d->nheaders;
	}
	if ((k->pkey = mr_dkim_key_load(d->key, err, sizeof(err))) == NULL)
		mr_err("dkim \"%s\": %s; its mail waits until the key can "
		    "be read", d->domain, err);
}

static struct dkim_set *
set_new(const struct mr_server *srv)
{
	struct dkim_set *s;
	size_t i;

	if (srv->ndkims == 0)
		return NULL;
	s = mr_xcalloc(1, sizeof(*s));
	s->refs = 1;
	s->keys = mr_xcalloc(srv->ndkims, sizeof(*s->keys));
	s->nkeys = srv->ndkims;
	for (i = 0; i < s->nkeys; i++)
		key_init(&s->keys[i], &srv->dkims[i]);
	return s;
}

void
dkim_unref(struct dkim_set *s)
{
	size_t i, j;

	if (s == NULL || --s->refs > 0)
		return;
	for (i = 0; i < s->nkeys; i++) {
		free(s->keys[i].domain);
		free(s->keys[i].selector);
		for (j = 0; j < s->keys[i].nheaders; j++)
			free(s->keys[i].headers[j]);
		free(s->keys[i].headers);
		EVP_PKEY_free(s->keys[i].pkey);
	}
	free(s->keys);
	free(s);
}

/* The keys of cfg's servers (at start, after the sandbox; on reload). */
void
dkim_load(const struct mr_config *cfg)
{
	size_t i;

	for (i = 0; i < nsets; i++)
		dkim_unref(sets[i]);
	free(sets);
	nsets = cfg->nservers;
	sets = mr_xcalloc(nsets, sizeof(struct dkim_set *));
	for (i = 0; i < nsets; i++)
		sets[i] = set_new(&cfg->servers[i]);
}

void
dkim_shutdown(void)
{
	size_t i;

	for (i = 0; i < nsets; i++)
		dkim_unref(sets[i]);
	free(sets);
	sets = NULL;
	nsets = 0;
}

/* The keys a commit for qs's server signs with (NULL: none). */
struct dkim_set *
dkim_ref(const struct qserver *qs)
{
	size_t i = (size_t)(qs - q->servers);

	if (i >= nsets || sets[i] == NULL)
		return NULL;
	sets[i]->refs++;
	return sets[i];
}

/* ---- signing (the commit worker thread) ---- */

struct sign_job {
	const struct dkim_key	*k;
	int			 fd;		/* the message as committed */
	struct mr_buf		 head;		/* its start, wire form */
	int			 found;		/* head holds the whole header
						 * section */
	struct mr_dkim_hdrs	*h;
	size_t			 skip;		/* body pass: header bytes */
	struct mr_dkim_body	 body;
	EVP_MD_CTX		*md;
	int			 out;		/* the signed copy */
	int			 stop;		/* the pass has what it needs */
	int			 werr;
};

/*
 * Reads the whole file through the wire filter (mr_dkim_wire: the form
 * deliverd sends, which is the form signed and stored) into fn, until
 * fn sets j->stop.  0, or -1 on a read error.
 */
static int
wire_pass(struct sign_job *j, mr_dkim_emit fn)
{
	struct mr_dkim_wire w;
	char *buf = mr_xmalloc(CHUNK);
	off_t off = 0;
	ssize_t n;

	mr_dkim_wire_init(&w, fn, j);
	j->stop = 0;
	while (!j->stop) {
		n = pread(j->fd, buf, CHUNK, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		mr_dkim_wire_feed(&w, buf, (size_t)n);
		off += n;
	}
	free(buf);
	if (j->stop)
		return 0;
	if (n == -1)
		return -1;
	mr_dkim_wire_end(&w);
	return 0;
}

/* Pass 1: the header section, until its empty line (or the file's end;
 * a section longer than MR_DKIM_HEADER_MAX is not signed). */
static void
head_add(void *arg, const char *p, size_t n)
{
	struct sign_job *j = arg;
	size_t from = j->head.len > 3 ? j->head.len - 3 : 0;

	if (j->stop)
		return;
	mr_buf_add(&j->head, p, n);
	if ((j->head.len >= 2 && memcmp(j->head.data, "\r\n", 2) == 0) ||
	    memmem(j->head.data + from, j->head.len - from, "\r\n\r\n",
	    4) != NULL) {
		j->found = 1;
		j->stop = 1;
	} else if (j->head.len > MR_DKIM_HEADER_MAX)
		j->stop = 1;
}

static void
md_add(void *arg, const char *p, size_t n)
{
	struct sign_job *j = arg;

	if (EVP_DigestUpdate(j->md, p, n) != 1)
		j->werr = EIO;
}

/* Pass 2: what follows the header section, canonical, into the hash. */
static void
body_add(void *arg, const char *p, size_t n)
{
	struct sign_job *j = arg;
	size_t k = j->skip < n ? j->skip : n;

	j->skip -= k;
	mr_dkim_body_feed(&j->body, p + k, n - k);
}

/* bh= (RFC 6376 3.7): the canonical body's SHA-256, base64. */
static int
body_hash(struct sign_job *j, struct mr_buf *sig)
{
	unsigned char d[32];
	char b64[64];

	if (EVP_DigestInit_ex(j->md, EVP_sha256(), NULL) != 1)
		return -1;
	j->skip = j->h->end;
	mr_dkim_body_init(&j->body, j->k->bcanon, md_add, j);
	if (wire_pass(j, body_add) == -1)
		return -1;
	mr_dkim_body_end(&j->body);
	if (j->werr || EVP_DigestFinal_ex(j->md, d, NULL) != 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)b64, d, sizeof(d));
	mr_buf_printf(sig, "\tbh=%s;\r\n\tb=", b64);
	return 0;
}

static int
name_is(const struct mr_dkim_field *f, const char *name)
{
	return f->namelen == strlen(name) &&
	    strncasecmp(f->p, name, f->namelen) == 0;
}

static size_t
count_fields(const struct mr_dkim_hdrs *h, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < h->n; i++)
		n += name_is(&h->f[i], name);
	return n;
}

/* The field named name that is nth counting from the bottom (5.4.2). */
static const struct mr_dkim_field *
from_bottom(const struct mr_dkim_hdrs *h, const char *name, size_t nth)
{
	size_t i;

	for (i = h->n; i-- > 0;)
		if (name_is(&h->f[i], name) && nth-- == 0)
			return &h->f[i];
	return NULL;
}

static int
listed_before(const struct dkim_key *k, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (strcmp(k->headers[j], k->headers[i]) == 0)
			return 1;
	return 0;
}

/* h= (the names, each as often as it occurs, From once more) and the
 * canonical fields it names, in that order, to data. */
static void
signed_fields(const struct sign_job *j, struct mr_buf *hlist,
    struct mr_buf *data)
{
	const struct dkim_key *k = j->k;
	size_t i, t, c, n = k->headers != NULL ? k->nheaders :
	    sizeof(default_headers) / sizeof(default_headers[0]);
	const struct mr_dkim_field *f;
	const char *name;

	for (i = 0; i < n; i++) {
		name = k->headers != NULL ? k->headers[i] : default_headers[i];
		if (k->headers != NULL && listed_before(k, i))
			continue;
		c = count_fields(j->h, name);
		for (t = 0; t < c + (strcmp(name, "from") == 0); t++) {
			mr_buf_printf(hlist, "%s%s", hlist->len > 0 ? ":" :
			    "", name);
			if ((f = from_bottom(j->h, name, t)) != NULL)
				mr_dkim_hdr_canon(k->hcanon, f->p, f->len, 1,
				    data);
		}
	}
}

/* The whole DKIM-Signature field, CRLF included, in sig. */
static int
make_signature(struct sign_job *j, struct mr_buf *sig)
{
	static const char *const canon[] = { "relaxed", "simple" };
	const struct dkim_key *k = j->k;
	struct mr_buf hlist, data, b;
	unsigned char d[32];
	size_t i, start = sig->len;
	int rc = -1;

	mr_buf_init(&hlist);
	mr_buf_init(&data);
	mr_buf_init(&b);
	signed_fields(j, &hlist, &data);
	mr_buf_printf(sig, "DKIM-Signature: v=1; a=%s; c=%s/%s; d=%s; "
	    "s=%s;\r\n\tt=%lld; h=%s;\r\n", mr_dkim_key_is_ed25519(k->pkey) ?
	    "ed25519-sha256" : "rsa-sha256", canon[k->hcanon],
	    canon[k->bcanon], k->domain, k->selector, (long long)time(NULL),
	    hlist.data);
	if (body_hash(j, sig) == -1)
		goto fail;
	mr_dkim_hdr_canon(k->hcanon, sig->data + start, sig->len - start, 0,
	    &data);
	if (EVP_Digest(data.data, data.len, d, NULL, EVP_sha256(), NULL) !=
	    1 || mr_dkim_key_sign(k->pkey, d, &b) == -1)
		goto fail;
	for (i = 0; i < b.len; i += 72)	/* folded: lines stay short */
		mr_buf_printf(sig, "%s%.*s", i > 0 ? "\r\n\t" : "",
		    (int)(b.len - i < 72 ? b.len - i : 72), b.data + i);
	mr_buf_adds(sig, "\r\n");
	rc = 0;
fail:
	mr_buf_free(&hlist);
	mr_buf_free(&data);
	mr_buf_free(&b);
	return rc;
}

/* Pass 3: the signed copy. */
static void
copy_out(void *arg, const char *p, size_t n)
{
	struct sign_job *j = arg;

	if (!j->werr && mr_write_all(j->out, p, n) == -1)
		j->werr = errno != 0 ? errno : EIO;
}

/* The signed copy at tmp, renamed over path; its descriptor in j->out. */
static int
write_signed(struct sign_job *j, const struct mr_buf *sig, const char *tmp,
    const char *path)
{
	j->out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (j->out == -1) {
		j->werr = errno;
		return -1;
	}
	copy_out(j, sig->data, sig->len);
	if (wire_pass(j, copy_out) == -1 && !j->werr)
		j->werr = errno;
	if (j->werr || rename(tmp, path) == -1) {
		if (!j->werr)
			j->werr = errno;
		close(j->out);
		j->out = -1;
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The message's From domain, which chooses the keys; -1 if none. */
static int
from_domain(const struct mr_dkim_hdrs *h, char *dom, size_t len)
{
	const struct mr_dkim_field *f;
	const char *colon;

	if (count_fields(h, "from") != 1)
		return -1;	/* RFC 5322 3.6: exactly one */
	f = from_bottom(h, "from", 0);
	colon = memchr(f->p, ':', f->len);
	return mr_dkim_from_domain(colon + 1, f->len - (size_t)(colon + 1 -
	    f->p), dom, len);
}

/* A signature by each of the domain's keys (RSA and Ed25519 side by
 * side, RFC 8463 2), in sig; 0 if none, -1 on failure. */
static int
sign_all(struct sign_job *j, const struct dkim_set *set, const char *dom,
    struct mr_buf *sig, char *note, size_t notelen)
{
	size_t i, o = 0;

	for (i = 0; i < set->nkeys; i++) {
		if (strcmp(set->keys[i].domain, dom) != 0)
			continue;
		j->k = &set->keys[i];
		if (j->k->pkey == NULL) {
			snprintf(note, notelen, "dkim \"%s\" selector \"%s\": "
			    "the key did not load", dom, j->k->selector);
			return -1;
		}
		if (make_signature(j, sig) == -1) {
			snprintf(note, notelen, "dkim \"%s\": signing failed",
			    dom);
			return -1;
		}
		if (o < notelen)
			o += (size_t)snprintf(note + o, notelen - o, "%s"
			    "DKIM-Signature d=%s s=%s", o > 0 ? ", " : "",
			    dom, j->k->selector);
	}
	return sig->len > 0;
}

static int
sign_job(struct sign_job *j, const struct dkim_set *set, const char *path,
    const char *tmp, struct mr_buf *sig, char *note, size_t notelen)
{
	const char *why;
	char dom[256];
	int rc;

	if (wire_pass(j, head_add) == -1) {
		snprintf(note, notelen, "dkim: read: %s", strerror(errno));
		return -1;
	}
	if ((!j->found && j->head.len > MR_DKIM_HEADER_MAX) ||
	    mr_dkim_split(j->head.data != NULL ? j->head.data : "",
	    j->head.len, j->h, &why) == -1)
		return 0;	/* not a header section DKIM can sign */
	if (from_domain(j->h, dom, sizeof(dom)) == -1 ||
	    (rc = sign_all(j, set, dom, sig, note, notelen)) == 0)
		return 0;
	if (rc == -1)
		return -1;
	if (write_signed(j, sig, tmp, path) == -1) {
		snprintf(note, notelen, "dkim: %s: %s", tmp,
		    strerror(j->werr));
		return -1;
	}
	return 1;
}

/*
 * Signs the message at path (open as *fd) if its From domain has a key in
 * set.  1: signed, *fd and *size are the new file's, note says how; 0:
 * unsigned; -1: failed (note says why), the message is not committed.
 * Called by the commit worker: reads set, changes nothing shared.
 */
int
dkim_sign(const struct dkim_set *set, const char *path, const char *tmp,
    int *fd, uint64_t *size, char *note, size_t notelen)
{
	struct sign_job j;
	struct mr_buf sig;
	struct stat st;
	int rc;

	memset(&j, 0, sizeof(j));
	j.fd = *fd;
	j.out = -1;
	mr_buf_init(&j.head);
	mr_buf_init(&sig);
	j.h = mr_xmalloc(sizeof(*j.h));
	if ((j.md = EVP_MD_CTX_new()) == NULL) {
		snprintf(note, notelen, "dkim: out of memory");
		rc = -1;
	} else
		rc = sign_job(&j, set, path, tmp, &sig, note, notelen);
	if (rc == 1) {
		close(*fd);
		*fd = j.out;
		*size = fstat(j.out, &st) == 0 ? (uint64_t)st.st_size :
		    *size + sig.len;
	}
	EVP_MD_CTX_free(j.md);
	free(j.h);
	mr_buf_free(&j.head);
	mr_buf_free(&sig);
	return rc;
}
