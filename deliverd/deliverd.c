/*
 * deliverd.c - the outbound delivery process: start-up, the channels to
 * mailrootd and queued, jobs, routing of recipients to destinations,
 * connection limits, and the per-recipient results.
 *
 * Security: runs unprivileged (mr_privdrop) after the resolver and TLS
 * contexts are made.  Every MR_D_JOB frame is untrusted input: lengths,
 * counts, the server index and the descriptor are checked, and envelope
 * strings holding a control byte (an SMTP command injection) drop the
 * channel.  deliverd never opens the queue: it reads the message through
 * the descriptor queued hands it, and answers with results only.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "buf.h"
#include "conf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "child.h"
#include "privdrop.h"
#include "mta_sts.h"
#include "sandbox.h"
#include "proto.h"
#include "util.h"
#include "deliverd.h"

#define SHUTDOWN_GRACE		10	/* seconds */
#define MSGS_PER_CONN_CAP	1000	/* when the setting is unlimited */

static struct {
	struct event_base	*base;
	struct mr_config	*cfg;
	struct mr_ipc		*queued;
	TAILQ_HEAD(, job)	 jobs;
	size_t			 njobs;
	TAILQ_HEAD(, dest)	 dests;
	unsigned		*srvconns;	/* sessions per server */
	int			 stopping;
	int			 abandoning;
	struct event		*grace;
	size_t			 norphans;	/* jobs of a queued that died */
	int			 replay_due;	/* a new queued waits for them */
	struct event		*replay_timer;
	struct event		*kick;		/* starts rerouted deliveries */
} d;

#define ORPHAN_WAIT		10	/* seconds a replay waits for orphans */
#define DRAIN_WAIT		10	/* seconds queued has to take the last results */

static void	job_finish(struct job *);
static void	dest_kick(struct dest *);
static void	kick_all(void);

struct event_base *
deliverd_base(void)
{
	return d.base;
}

struct mr_ipc *
deliverd_queued(void)
{
	return d.queued;
}

const struct mr_config *
deliverd_config(void)
{
	return d.cfg;
}

static const char *
status_word(int st)
{
	switch (st) {
	case MR_DS_OK:
	case MR_DS_RELAYED:
		return "sent";
	case MR_DS_PERM:
		return "bounced";
	case MR_DS_AGAIN:
		return "not tried";
	default:
		return "deferred";
	}
}

/* ---- destinations ---- */

static void
dest_free(struct dest *ds)
{
	TAILQ_REMOVE(&d.dests, ds, entry);
	free(ds->key);
	free(ds->name);
	free(ds->auth_user);
	free(ds->auth_password_file);
	free(ds->trust.ca_file);
	free(ds->trust.pins);
	free(ds->down_why);
	free(ds);
}

/* A destination marked down is kept while the mark holds: it remembers. */
static void
dest_gc(struct dest *ds)
{
	if (ds->nconn == 0 && TAILQ_EMPTY(&ds->queue) && !dest_is_down(ds))
		dest_free(ds);
}

/* How to talk to a next hop: from a remote domain or the outbound block. */
struct hop_opts {
	int		 esmtp;
	enum mr_tls_out	 tls;
	const struct mr_tls_trust *trust;
	enum mr_out_auth auth;
	const char	*user;
	const char	*pwfile;
	unsigned	 rate;		/* 0: no rate limit */
	unsigned	 rate_window;
	int		 dane;
};

/* A remote domain's own rate, else the outbound block's. */
static struct hop_opts
opts_of(const struct mr_outbound *ob, const struct mr_domain *dom)
{
	int own = dom != NULL && dom->rate != 0;
	unsigned rate = own ? dom->rate : ob->rate;
	unsigned win = own ? dom->rate_window : ob->rate_window;

	if (dom != NULL)
		return (struct hop_opts){ dom->esmtp, dom->tls, &dom->trust,
		    dom->auth, dom->auth_user, dom->auth_password_file, rate,
		    win, dom->dane };
	return (struct hop_opts){ ob->esmtp, ob->tls, &ob->trust, ob->auth,
	    ob->auth_user, ob->auth_password_file, rate, win, ob->dane };
}

/* The TLS trust of a destination: the CA file and the pinned digests. */
static void
trust_key(struct mr_buf *key, const struct mr_tls_trust *t)
{
	size_t i, k;

	mr_buf_printf(key, "|%s|", t->ca_file ? t->ca_file : "");
	for (i = 0; i < t->npins; i++)
		for (k = 0; k < MR_TLS_PIN_LEN; k++)
			mr_buf_printf(key, "%02x", t->pins[i].sha256[k]);
}

static void
trust_dup(struct mr_tls_trust *dst, const struct mr_tls_trust *src)
{
	dst->ca_file = src->ca_file ? mr_xstrdup(src->ca_file) : NULL;
	dst->npins = src->npins;
	dst->pins = NULL;
	if (src->npins > 0) {
		dst->pins = mr_xcalloc(src->npins, sizeof(*dst->pins));
		memcpy(dst->pins, src->pins, src->npins * sizeof(*dst->pins));
	}
}

static struct dest *
dest_get(size_t srvidx, enum dest_kind kind, const char *name,
    unsigned port, const struct hop_opts *o)
{
	struct dest *ds;
	struct mr_buf key;

	mr_buf_init(&key);
	mr_buf_printf(&key, "%zu|%d|%s|%u|%d|%d|%d|%s|%s|%u/%u|%d", srvidx,
	    (int)kind, name, port, o->esmtp, (int)o->tls, (int)o->auth,
	    o->user ? o->user : "", o->pwfile ? o->pwfile : "", o->rate,
	    o->rate_window, o->dane);
	trust_key(&key, o->trust);
	TAILQ_FOREACH(ds, &d.dests, entry)
		if (strcmp(ds->key, key.data) == 0) {
			mr_buf_free(&key);
			return ds;
		}
	ds = mr_xcalloc(1, sizeof(*ds));
	ds->key = key.data;
	ds->srv = &d.cfg->servers[srvidx];
	ds->srvidx = srvidx;
	ds->kind = kind;
	ds->name = mr_xstrdup(name);
	ds->port = port;
	ds->esmtp = o->esmtp;
	ds->tls = o->tls;
	trust_dup(&ds->trust, o->trust);
	ds->auth = o->auth;
	ds->auth_user = o->user ? mr_xstrdup(o->user) : NULL;
	ds->auth_password_file = o->pwfile ? mr_xstrdup(o->pwfile) : NULL;
	ds->rate = o->rate;
	ds->rate_window = o->rate_window;
	/* RFC 7672 on direct MX delivery; a configured tls none, verify or
	 * fingerprint is the administrator's choice and stays */
	ds->dane = kind == DEST_MX && o->dane &&
	    (o->tls == MR_TLS_OUT_OPPORTUNISTIC ||
	    o->tls == MR_TLS_OUT_REQUIRED);
	TAILQ_INIT(&ds->queue);
	TAILQ_INSERT_TAIL(&d.dests, ds, entry);
	return ds;
}

/*
 * A smart host or route: "[1.2.3.4]", "[IPv6:::1]:2525" (no DNS),
 * or "host[:port]" (A/AAAA of host, no MX: IIS semantics).
 */
static struct dest *
dest_host(size_t srvidx, const char *spec, const struct hop_opts *o,
    struct mr_buf *err)
{
	const struct mr_server *srv = &d.cfg->servers[srvidx];
	struct sockaddr_storage ss;
	struct dest *ds = NULL;
	socklen_t sslen;
	unsigned port;
	size_t len;
	char *host;

	if (mr_split_hostport(spec, srv->delivery.outbound.port, &host,
	    &port) == -1 || port == 0 || port > 65535) {
		mr_buf_printf(err, "4.3.5 bad next-hop \"%s\" in the "
		    "configuration", spec);
		return NULL;
	}
	len = strlen(host);
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host[len - 1] = '\0';
		if (mx_parse_ip(host + 1, port, &ss, &sslen) == -1)
			mr_buf_printf(err, "4.3.5 bad address literal \"%s\" "
			    "in the configuration", spec);
		else
			ds = dest_get(srvidx, DEST_LITERAL, host + 1, port,
			    o);
	} else
		ds = dest_get(srvidx, DEST_HOST, host, port, o);
	free(host);
	return ds;
}

/* Direct delivery: the domain's MX hosts, or an address literal. */
static struct dest *
dest_direct(size_t srvidx, const struct mr_domain *dom, const char *domain,
    struct mr_buf *err)
{
	const struct mr_outbound *ob = &d.cfg->servers[srvidx].delivery.outbound;
	struct hop_opts o = opts_of(ob, dom), oo = opts_of(ob, NULL);
	struct sockaddr_storage ss;
	socklen_t sslen;
	size_t len;
	char lit[MR_DOMAIN_MAX + 1];

	/* the outbound block's auth is for smart hosts, not every MX */
	oo.auth = MR_AUTH_OUT_NONE;
	oo.user = oo.pwfile = NULL;
	if (dom == NULL)
		o = oo;
	if (domain[0] != '[')
		return dest_get(srvidx, DEST_MX, domain, ob->port, &o);
	len = strlen(domain);
	if (len < 3 || len - 2 >= sizeof(lit) || domain[len - 1] != ']')
		goto bad;
	memcpy(lit, domain + 1, len - 2);
	lit[len - 2] = '\0';
	if (mx_parse_ip(lit, ob->port, &ss, &sslen) == -1)
		goto bad;
	return dest_get(srvidx, DEST_LITERAL, lit, ob->port, &oo);
bad:
	mr_buf_printf(err, "5.1.2 bad address literal %s", domain);
	return NULL;
}

/* 1 if s holds a non-ASCII (UTF-8) byte. */
static int
non_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/*
 * Where mail for domain goes on its try number hop (0 first): a remote
 * domain's route; else the smart hosts in order, after direct delivery
 * with smart-host-first-direct (IIS SmartHostType 1); else the domain's
 * MX hosts.  NULL with err empty: no further hop.
 */
static struct dest *
dest_route(size_t srvidx, const char *domain, unsigned hop,
    struct mr_buf *err)
{
	const struct mr_server *srv = &d.cfg->servers[srvidx];
	const struct mr_delivery *dl = &srv->delivery;
	const struct mr_outbound *ob = &dl->outbound;
	const struct mr_domain *dom = mr_config_domain(srv, domain);
	struct hop_opts o;
	const char *sh;

	if (dom != NULL && dom->kind != MR_DOMAIN_REMOTE)
		dom = NULL;
	if (dom != NULL && dom->route != NULL &&
	    strcasecmp(dom->route, "dns") != 0) {
		o = opts_of(ob, dom);
		return hop == 0 ? dest_host(srvidx, dom->route, &o, err) :
		    NULL;
	}
	if (dl->smart_host == NULL || (dl->smart_host_first_direct &&
	    hop == 0)) {
		/* a U-label domain (SMTPUTF8) is never converted to an
		 * A-label: only a route or a smart host can take it */
		if (hop == 0 && non_ascii(domain)) {
			mr_buf_printf(err, "5.1.2 no MX lookup for the UTF-8 "
			    "domain \"%s\" (mailroot does no IDNA conversion)",
			    domain);
			return NULL;
		}
		return hop == 0 ? dest_direct(srvidx, dom, domain, err) :
		    NULL;
	}
	if (dl->smart_host_first_direct)
		hop--;
	if (hop > dl->nsmart_host_next)
		return NULL;
	sh = hop == 0 ? dl->smart_host : dl->smart_host_next[hop - 1];
	o = opts_of(ob, NULL);
	return dest_host(srvidx, sh, &o, err);
}

static int
srv_room(size_t srvidx)
{
	unsigned max = d.cfg->servers[srvidx].delivery.outbound.connections;

	return max == 0 || d.srvconns[srvidx] < max;
}

static void	delivery_fail(struct delivery *, int, const char *);

/*
 * May dl start now under its destination's rate limit?  It counts, and
 * 1; or it goes back to queued untried (MR_DS_AGAIN, no attempt counted:
 * it waits in the queue), its next parts with it, and 0.  The parts of a
 * message count once.
 */
static int
dlv_rate_ok(struct delivery *dl)
{
	const struct dest *ds = dl->dest;
	struct delivery *nx;
	struct mr_buf why;
	size_t i;

	if (dl->cont || rate_take(ds->key, ds->rate, ds->rate_window) == 0)
		return 1;
	mr_buf_init(&why);
	mr_buf_printf(&why, "4.4.5 rate limit of %u messages per %u s to %s "
	    "reached; waiting in the queue", ds->rate, ds->rate_window,
	    ds->name);
	for (nx = dl->next_part; nx != NULL; nx = nx->next_part) {
		for (i = 0; i < nx->n; i++)
			deliverd_set(nx, i, MR_DS_AGAIN, why.data);
		nx->done = 1;
		dl->job->pending--;	/* dl's own count keeps it above 0 */
	}
	dl->next_part = NULL;
	delivery_fail(dl, MR_DS_AGAIN, why.data);
	mr_buf_free(&why);
	return 0;
}

/* ds is down: its waiting deliveries are deferred, no connection made. */
static void
dest_suspend(struct dest *ds)
{
	struct delivery *dl;
	struct mr_buf why;

	mr_buf_init(&why);
	dest_down_text(ds, &why);
	/* a next part of a message joins the queue as its part ends */
	while ((dl = TAILQ_FIRST(&ds->queue)) != NULL)
		delivery_fail(dl, MR_DS_TEMP, why.data);
	mr_buf_free(&why);
}

/* Starts sessions for waiting deliveries, within the limits. */
static void
dest_kick(struct dest *ds)
{
	unsigned per = ds->srv->delivery.outbound.per_domain;
	struct delivery *dl;

	if (!d.abandoning && !TAILQ_EMPTY(&ds->queue) && dest_is_down(ds)) {
		dest_suspend(ds);
		return;
	}
	/* connections kept idle first, then new ones within the limits */
	while (!d.abandoning && (dl = TAILQ_FIRST(&ds->queue)) != NULL) {
		TAILQ_REMOVE(&ds->queue, dl, entry);
		dl->queued = 0;
		if (!dlv_rate_ok(dl))
			continue;
		if (smtp_reuse(ds, dl) == 0)
			continue;
		if ((per != 0 && ds->nconn >= per) || !srv_room(ds->srvidx)) {
			/* an idle connection elsewhere makes room when
			 * it has said goodbye (deliverd_sess_end kicks) */
			if (per == 0 || ds->nconn < per)
				(void)smtp_evict_idle(ds->srvidx);
			if (!dl->cont)
				rate_untake(ds->key);	/* not sent after all */
			TAILQ_INSERT_HEAD(&ds->queue, dl, entry);
			dl->queued = 1;
			break;
		}
		ds->nconn++;
		d.srvconns[ds->srvidx]++;
		(void)smtp_start(ds, dl);
	}
}

static void
kick_all(void)
{
	struct dest *ds, *next;

	TAILQ_FOREACH(ds, &d.dests, entry)
		dest_kick(ds);
	for (ds = TAILQ_FIRST(&d.dests); ds != NULL; ds = next) {
		next = TAILQ_NEXT(ds, entry);
		dest_gc(ds);
	}
}

/* ---- results ---- */

void
deliverd_set(struct delivery *dl, size_t i, int status, const char *text)
{
	struct rcpt *r = &dl->job->rcpts[dl->idx[i]];

	free(r->text);
	r->status = status;
	r->text = mr_xstrdup(text ? text : "");
}

/* Fails a delivery that never reached a session. */
static void
delivery_fail(struct delivery *dl, int status, const char *why)
{
	size_t i;

	if (dl->queued)
		TAILQ_REMOVE(&dl->dest->queue, dl, entry);
	dl->queued = 0;
	for (i = 0; i < dl->n; i++)
		deliverd_set(dl, i, status, why);
	deliverd_done(dl, "none");
}

static void
kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	kick_all();
}

/* The job's new delivery to ds at try hop, or the one made already. */
static struct delivery *
job_hop_dlv(struct job *j, struct dest *ds, unsigned hop, size_t first,
    size_t cap)
{
	struct delivery *dl;
	size_t k;

	for (k = first; k < j->ndlv; k++)
		if (j->dlv[k]->dest == ds)
			return j->dlv[k];
	dl = mr_xcalloc(1, sizeof(*dl));
	dl->job = j;
	dl->dest = ds;
	dl->hop = hop;
	dl->idx = mr_xcalloc(cap, sizeof(*dl->idx));
	j->dlv = mr_xreallocarray(j->dlv, j->ndlv + 1,
	    sizeof(*j->dlv));	/* NOLINT(bugprone-sizeof-expression) */
	j->dlv[j->ndlv++] = dl;
	j->pending++;
	TAILQ_INSERT_TAIL(&ds->queue, dl, entry);
	dl->queued = 1;
	return dl;
}

/*
 * Recipients deferred at this try go on to the next one, if their domain
 * has one: the next smart host, or the smart host after direct delivery
 * (smart-host-first-direct).  A permanent answer is final; the last
 * try's temporary one goes back to queued for a later retry.
 */
static void
delivery_next_hop(struct delivery *dl)
{
	struct job *j = dl->job;
	struct delivery *nx;
	struct dest *ds;
	struct mr_buf err;
	struct rcpt *r;
	size_t i, first = j->ndlv;

	if (d.stopping || d.abandoning || d.kick == NULL)
		return;
	for (i = 0; i < dl->n; i++) {
		r = &j->rcpts[dl->idx[i]];
		if (r->status != MR_DS_TEMP)
			continue;
		mr_buf_init(&err);
		ds = dest_route(j->srvidx, r->domain, dl->hop + 1, &err);
		mr_buf_free(&err);
		if (ds == NULL)
			continue;
		nx = job_hop_dlv(j, ds, dl->hop + 1, first, dl->n);
		nx->idx[nx->n++] = dl->idx[i];
		r->status = 0;
		mr_info("%s: to=<%s>: trying the next hop, %s", j->qid,
		    r->addr, ds->name);
	}
	if (j->ndlv > first)
		event_active(d.kick, 0, 0);
}

/*
 * The next part of a message split at recipients-per-message goes first
 * in its destination's queue: the session that sent this part takes it
 * at once (deliverd_next), as the next transaction on the connection.
 * When deliverd is stopping, the parts left are not tried.
 */
static void
part_next(struct delivery *dl)
{
	struct delivery *nx = dl->next_part;
	size_t i;

	if (nx == NULL)
		return;
	if (!d.stopping && !d.abandoning) {
		TAILQ_INSERT_HEAD(&nx->dest->queue, nx, entry);
		nx->queued = 1;
		return;
	}
	/* the job holds dl's own count in pending: it never reaches 0 here */
	for (; nx != NULL; nx = nx->next_part) {
		for (i = 0; i < nx->n; i++)
			deliverd_set(nx, i, MR_DS_AGAIN,
			    "4.3.2 mail system shutting down");
		nx->done = 1;
		dl->job->pending--;
	}
}

void
deliverd_done(struct delivery *dl, const char *relay)
{
	struct job *j = dl->job;
	struct rcpt *r;
	size_t i;
	int got_through = 0;

	if (dl->done)
		mr_panic("delivery of %s finished twice", j->qid);
	dl->done = 1;
	dl->sess = NULL;
	for (i = 0; i < dl->n; i++) {
		r = &j->rcpts[dl->idx[i]];
		if (r->status == 0)
			deliverd_set(dl, i, MR_DS_TEMP, "4.3.0 internal error: "
			    "no result");
		mr_info("%s: to=<%s>, relay=%s, status=%s (%s)", j->qid,
		    r->addr, relay, status_word(r->status), r->text);
		if (r->status == MR_DS_OK || r->status == MR_DS_RELAYED)
			got_through = 1;
	}
	if (got_through) {
		/* the next hop took a message: it is up */
		dl->dest->nsent++;
		dest_lift(dl->dest, "a message got through");
	}
	delivery_next_hop(dl);
	part_next(dl);
	if (--j->pending == 0)
		job_finish(j);
}

/* May a session that sent `sent' messages send another? */
int
deliverd_may_keep(const struct dest *ds, unsigned sent)
{
	unsigned max = ds->srv->limits.messages_per_connection;

	if (max == 0)
		max = MSGS_PER_CONN_CAP;
	return !d.stopping && !d.abandoning && sent < max;
}

struct delivery *
deliverd_next(struct dest *ds, unsigned sent)
{
	struct delivery *dl;

	/* the next part of the same message comes whatever the count */
	while ((dl = TAILQ_FIRST(&ds->queue)) != NULL &&
	    (dl->cont || deliverd_may_keep(ds, sent))) {
		TAILQ_REMOVE(&ds->queue, dl, entry);
		dl->queued = 0;
		if (dlv_rate_ok(dl))
			return dl;
	}
	return NULL;
}

void
deliverd_requeue(struct delivery *dl)
{
	TAILQ_INSERT_HEAD(&dl->dest->queue, dl, entry);
	dl->queued = 1;
}

/*
 * The rule for "down": one session that failed at every address, while
 * no message got through to the destination on any other session.  Its
 * concurrent sessions were started before the mark and run their course.
 */
void
deliverd_dest_failed(struct dest *ds, uint64_t sent_at_start,
    const char *why)
{
	if (ds->nsent == sent_at_start)
		dest_mark_down(ds, why);
}

void
deliverd_sess_end(struct dest *ds, int status, const char *why)
{
	struct delivery *dl;

	ds->nconn--;
	d.srvconns[ds->srvidx]--;
	/* every address failed or the name does not resolve: the deliveries
	 * waiting for the same destination share that fate now */
	if (status != 0 && dest_is_down(ds))
		dest_suspend(ds);
	while (status != 0 && (dl = TAILQ_FIRST(&ds->queue)) != NULL)
		delivery_fail(dl, status, why);
	kick_all();
}

/* ---- jobs ---- */

static void
job_free(struct job *j)
{
	size_t i;

	for (i = 0; i < j->nrcpt; i++) {
		free(j->rcpts[i].addr);
		free(j->rcpts[i].domain);
		free(j->rcpts[i].text);
		free(j->rcpts[i].orcpt);
	}
	free(j->envid);
	free(j->head);
	for (i = 0; i < j->ndlv; i++) {
		free(j->dlv[i]->idx);
		free(j->dlv[i]);
	}
	free(j->dlv);
	free(j->rcpts);
	if (j->fd >= 0 && close(j->fd) == -1)
		mr_warn("%s: close: %s", j->qid, strerror(errno));
	free(j->qid);
	free(j->sender);
	free(j->auth);
	free(j);
}

static void	maybe_exit(void);

/* Tells the current queued what was delivered for its predecessor. */
static void
replay_now(void)
{
	d.replay_due = 0;
	if (d.replay_timer != NULL)
		evtimer_del(d.replay_timer);
	if (d.queued != NULL)
		replay_send(d.queued);
}

static void
replay_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	if (d.replay_due) {
		mr_warn("%zu deliveries for the previous queued still "
		    "running; replaying without them", d.norphans);
		replay_now();
	}
}

/* MR_D_RESULT: u64 job, u32 n, n x (u32 status, str text). */
static void
job_finish(struct job *j)
{
	struct mr_buf b;
	size_t i, cap = MR_TEXT_MAX, total = 16;

	for (i = 0; i < j->nrcpt; i++)
		total += 9 + strlen(j->rcpts[i].text);
	/* keep the frame within MR_IPC_MAX: shorten the texts if needed */
	if (total > MR_IPC_MAX)
		cap = (MR_IPC_MAX - 16) / j->nrcpt - 9;
	mr_buf_init(&b);
	mr_buf_put_u64(&b, j->id);
	mr_buf_put_u32(&b, (uint32_t)j->nrcpt);
	for (i = 0; i < j->nrcpt; i++) {
		const char *t = j->rcpts[i].text;
		size_t n = strlen(t);

		mr_buf_put_u32(&b, (uint32_t)j->rcpts[i].status);
		mr_buf_put_strn(&b, t, n > cap ? cap : n);
		replay_record(j->qid, j->rcpts[i].addr, j->rcpts[i].status,
		    t, cap);
	}
	if (j->orphan) {
		/* only the replay log reports it, to the next queued */
		if (--d.norphans == 0 && d.replay_due)
			replay_now();
	} else if (d.queued == NULL ||
	    mr_ipc_sendb(d.queued, MR_D_RESULT, -1, &b) == -1)
		mr_warn("%s: result for job %llu not sent: queued is gone",
		    j->qid, (unsigned long long)j->id);
	mr_buf_free(&b);
	TAILQ_REMOVE(&d.jobs, j, entry);
	d.njobs--;
	job_free(j);
	maybe_exit();
}

static int
domain_ok(const char *dom)
{
	size_t i, n = strlen(dom);

	if (n == 0 || n > MR_DOMAIN_MAX || dom[0] == '.' || dom[n - 1] == '.')
		return 0;
	if (dom[0] == '[')
		return dom[n - 1] == ']';
	for (i = 0; i < n; i++)	/* UTF-8 as the decoders checked it */
		if (!isalnum((unsigned char)dom[i]) && dom[i] != '-' &&
		    dom[i] != '.' && dom[i] != '_' &&
		    (unsigned char)dom[i] < 0x80)
			return 0;
	return strstr(dom, "..") == NULL;
}

static void
rcpt_init(struct rcpt *r, const char *addr)
{
	const char *at = strrchr(addr, '@');
	char *p;

	r->addr = mr_xstrdup(addr);
	r->domain = mr_xstrdup(at ? at + 1 : "");
	for (p = r->domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
}


/* 1 if the sender or a recipient of the job holds a non-ASCII byte: the
 * message then needs a next hop with SMTPUTF8 (RFC 6531 3.2). */
static int
job_non_ascii(const struct mr_m_job *mj)
{
	size_t i;

	if (non_ascii(mj->sender))
		return 1;
	for (i = 0; i < mj->nrcpts; i++)
		if (non_ascii(mj->rcpts[i]))
			return 1;
	return 0;
}

/*
 * MR_D_JOB (decoded by mr_msg_job: no control byte in the envelope);
 * fd = the message.  Returns the job or NULL with *err.
 */
static struct job *
job_decode(const struct mr_ipc_msg *m, const char **err)
{
	struct mr_m_job mj;
	struct job *j;
	struct stat st;
	size_t i;

	if (mr_msg_job(m->data, m->len, &mj, err) == -1)
		return NULL;
	j = mr_xcalloc(1, sizeof(*j));
	j->fd = -1;
	j->id = mj.job;
	j->qid = mr_xstrdup(mj.id);
	j->sender = mr_xstrdup(mj.sender);
	j->body = mj.body;
	j->smtputf8 = mj.smtputf8 != 0;
	j->needs_utf8 = j->smtputf8 && job_non_ascii(&mj);
	j->auth = mj.auth[0] != '\0' ? mr_xstrdup(mj.auth) : NULL;
	j->ret = mj.dsn.ret;
	j->envid = mr_xstrdup(mj.dsn.envid);
	j->rcpts = mr_xcalloc(mj.nrcpts, sizeof(*j->rcpts));
	for (i = 0; i < mj.nrcpts; i++) {
		j->rcpts[i].notify = mj.dsn.notify[i];
		j->rcpts[i].orcpt = mr_xstrdup(mj.dsn.orcpt[i]);
		rcpt_init(&j->rcpts[j->nrcpt++], mj.rcpts[i]);
	}
	mr_msg_job_free(&mj);
	if (mj.server >= d.cfg->nservers) {
		*err = "server index out of range";
		goto fail;
	}
	if (m->fd < 0) {
		*err = "job without message descriptor";
		goto fail;
	}
	j->fd = m->fd;
	if (fstat(j->fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		*err = "message descriptor is not a regular file";
		j->fd = -1;	/* the caller closes m->fd */
		goto fail;
	}
	j->size = st.st_size;
	j->srv = &d.cfg->servers[mj.server];
	j->srvidx = mj.server;
	masquerade(j);
	return j;
fail:
	job_free(j);
	return NULL;
}

/*
 * Adds recipient i to the job's delivery for ds: one per destination,
 * with at most recipients-per-message recipients (IIS MaxRecipients);
 * beyond it a next part, sent as a further transaction.
 */
static void
job_add(struct job *j, struct dest *ds, size_t i)
{
	size_t max = j->srv->limits.recipients_per_message, k;
	struct delivery *dl = NULL, *nx;

	if (max == 0 || max > j->nrcpt)
		max = j->nrcpt;
	for (k = 0; k < j->ndlv; k++)
		if (j->dlv[k]->dest == ds)
			dl = j->dlv[k];		/* the last part */
	if (dl == NULL || dl->n >= max) {
		nx = mr_xcalloc(1, sizeof(*nx));
		nx->job = j;
		nx->dest = ds;
		nx->idx = mr_xcalloc(max, sizeof(*nx->idx));
		j->dlv = mr_xreallocarray(j->dlv, j->ndlv + 1,
		    sizeof(*j->dlv));	/* NOLINT(bugprone-sizeof-expression) */
		j->dlv[j->ndlv++] = nx;
		if (dl != NULL) {
			dl->next_part = nx;
			nx->cont = 1;
		}
		dl = nx;
	}
	dl->idx[dl->n++] = i;
}

/* Groups the recipients by destination and queues the deliveries.
 * Recipients that cannot be routed get their result at once. */
static void
job_route(struct job *j)
{
	struct mr_buf err;
	struct dest *ds;
	size_t i, k;

	for (i = 0; i < j->nrcpt; i++) {
		struct rcpt *r = &j->rcpts[i];

		mr_buf_init(&err);
		ds = NULL;
		if (!domain_ok(r->domain))
			mr_buf_printf(&err, "5.1.2 bad destination domain "
			    "\"%s\"", r->domain);
		else
			ds = dest_route(j->srvidx, r->domain, 0, &err);
		if (ds != NULL)
			job_add(j, ds, i);
		else {
			r->status = err.data[0] == '5' ? MR_DS_PERM :
			    MR_DS_TEMP;
			r->text = mr_xstrdup(err.data);
			mr_info("%s: to=<%s>, relay=none, status=%s (%s)",
			    j->qid, r->addr, status_word(r->status), r->text);
		}
		mr_buf_free(&err);
	}
	j->pending = j->ndlv;
	for (k = 0; k < j->ndlv; k++) {
		/* a next part waits for the one before it (part_next) */
		if (j->dlv[k]->cont)
			continue;
		TAILQ_INSERT_TAIL(&j->dlv[k]->dest->queue, j->dlv[k], entry);
		j->dlv[k]->queued = 1;
	}
}

/* Answers a job we will not take now: every recipient deferred. */
static void
job_refuse(struct job *j, const char *why)
{
	size_t i;

	for (i = 0; i < j->nrcpt; i++) {
		j->rcpts[i].status = MR_DS_AGAIN;
		j->rcpts[i].text = mr_xstrdup(why);
		mr_info("%s: to=<%s>, relay=none, status=not tried (%s)",
		    j->qid, j->rcpts[i].addr, why);
	}
}

static void	queued_drop(const char *why);

static void
on_job(struct mr_ipc_msg *m)
{
	const char *err;
	struct job *j;

	if ((j = job_decode(m, &err)) == NULL) {
		if (m->fd >= 0)
			(void)close(m->fd);
		queued_drop(err);
		return;
	}
	TAILQ_INSERT_TAIL(&d.jobs, j, entry);
	d.njobs++;
	if (d.stopping)
		job_refuse(j, "4.3.2 mail system shutting down");
	else if (d.njobs - d.norphans > MR_JOBS_MAX)
		job_refuse(j, "4.3.2 too many deliveries in progress");
	else
		job_route(j);
	if (j->pending == 0)
		job_finish(j);
	else
		kick_all();
}

/* ---- channels ---- */

/* queued is gone: it re-offers these jobs from its durable queue. */
static void
jobs_abandon(void)
{
	struct job *j;
	size_t k;

	d.abandoning = 1;
	TAILQ_FOREACH(j, &d.jobs, entry)
		for (k = 0; k < j->ndlv; k++)
			if (j->dlv[k]->queued) {
				TAILQ_REMOVE(&j->dlv[k]->dest->queue,
				    j->dlv[k], entry);
				j->dlv[k]->queued = 0;
			}
	TAILQ_FOREACH(j, &d.jobs, entry)
		for (k = 0; k < j->ndlv; k++)
			if (j->dlv[k]->sess != NULL)
				smtp_abort(j->dlv[k]->sess);
	while ((j = TAILQ_FIRST(&d.jobs)) != NULL) {
		TAILQ_REMOVE(&d.jobs, j, entry);
		job_free(j);
	}
	d.njobs = 0;
	d.abandoning = 0;
	kick_all();
}

/*
 * queued went away (killed, restarted): its jobs run to the end, so that
 * a message half sent is not cut off, and their results are replayed to
 * the next queued instead of being delivered again by it.
 */
static void
jobs_orphan(void)
{
	struct job *j;

	TAILQ_FOREACH(j, &d.jobs, entry)
		if (!j->orphan) {
			j->orphan = 1;
			d.norphans++;
		}
}

static void
queued_drop(const char *why)
{
	if (why != NULL) {
		mr_warn("queued: %s; dropping the channel", why);
		mr_ipc_report_bad(mr_child_master(), MR_PROC_QUEUED);
	}
	if (d.queued != NULL)
		mr_ipc_free(d.queued);
	d.queued = NULL;
	if (why != NULL) {
		jobs_abandon();		/* a misbehaving queued: trust none */
		d.norphans = 0;
	} else
		jobs_orphan();
	maybe_exit();
}

/* MR_D_FLUSH: the administrator wants the queue tried now. */
static void
on_flush(const struct mr_ipc_msg *m)
{
	struct mr_m_flush f;
	struct dest *ds;
	const char *err;

	if (mr_msg_flush(m->data, m->len, &f, &err) == -1) {
		queued_drop(err);
		return;
	}
	TAILQ_FOREACH(ds, &d.dests, entry)
		if (dest_flush_match(ds, f.server, f.domain))
			dest_lift(ds, "flushed");
}

static void
queued_cb(struct mr_ipc *c, struct mr_ipc_msg *m, void *arg)
{
	(void)arg;
	if (m == NULL) {
		if (mr_ipc_was_bad(c)) {
			queued_drop("malformed frame");
			return;
		}
		mr_info("queued channel closed; waiting for a new one");
		queued_drop(NULL);
		return;
	}
	if (m->type == MR_R_PTR && m->fd < 0) {
		if (ptr_request(m->data, m->len) == -1)
			queued_drop("malformed PTR request");
		return;
	}
	if (m->type == MR_D_FLUSH && m->fd < 0) {
		on_flush(m);
		return;
	}
	if (m->type != MR_D_JOB) {
		if (m->fd >= 0)
			(void)close(m->fd);
		queued_drop("unexpected message type");
		return;
	}
	on_job(m);
}

static void
queued_attach(int fd)
{
	struct timeval tv = { ORPHAN_WAIT, 0 };

	if (d.queued != NULL) {
		mr_info("new queued channel replaces the old one");
		queued_drop(NULL);
	}
	d.queued = mr_ipc_new(d.base, fd, "queued", MR_MSG_MAX, queued_cb,
	    NULL);
	smtp_report_all();	/* mailrootctl sessions, as smtpd does */
	if (d.norphans == 0) {
		replay_send(d.queued);
		return;
	}
	/* the replay waits (bounded) for the previous queued's jobs */
	d.replay_due = 1;
	if (d.replay_timer == NULL)
		d.replay_timer = evtimer_new(d.base, replay_timeout, NULL);
	evtimer_add(d.replay_timer, &tv);
}

static void
maybe_exit(void)
{
	if (d.stopping && d.njobs == 0)
		event_base_loopbreak(d.base);
}

static void
grace_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	mr_warn("shutdown: %zu deliveries still running after %d s; "
	    "leaving them to queued", d.njobs, SHUTDOWN_GRACE);
	event_base_loopbreak(d.base);
}

static void
shutdown_start(void)
{
	struct timeval tv = { .tv_sec = SHUTDOWN_GRACE };
	struct dest *ds;
	struct delivery *dl;

	if (d.stopping)
		return;
	d.stopping = 1;
	mr_ipc_stopping();
	mr_info("shutting down");
	/* deliveries not started yet go back to queued at once */
	TAILQ_FOREACH(ds, &d.dests, entry)
		while ((dl = TAILQ_FIRST(&ds->queue)) != NULL)
			delivery_fail(dl, MR_DS_AGAIN,
			    "4.3.2 mail system shutting down");
	d.grace = evtimer_new(d.base, grace_cb, NULL);
	if (d.grace == NULL || evtimer_add(d.grace, &tv) == -1)
		mr_panic("shutdown: cannot arm the timer");
	maybe_exit();
}

/* mailrootd is gone: nobody supervises us any more */
static void
orphaned(void)
{
	mr_info("mailrootd is gone; exiting");
	event_base_loopbreak(d.base);
}

/* MR_M_PEER: a new channel to queued. */
static int
on_peer(uint32_t kind, int fd)
{
	if (kind != MR_PROC_QUEUED)
		return -1;
	queued_attach(fd);
	return 0;
}

/*
 * MR_M_CONFIG: jobs and destinations take the new settings in place
 * (limits, timeouts, the HELO name); new jobs are routed by the new
 * configuration, sessions already open finish.  The server list and the
 * resolver must be the ones deliverd started with: mailrootd restarts
 * deliverd when they change.
 */
static int
reload(struct mr_config *cfg, int *fds, size_t nfds)
{
	struct dest *ds;
	struct job *j;

	(void)fds;
	if (nfds != 0 || cfg->nservers != d.cfg->nservers ||
	    strcmp(cfg->resolver, d.cfg->resolver) != 0 ||
	    strcmp(cfg->trust_anchor, d.cfg->trust_anchor) != 0) {
		mr_err("reload: the list of servers or the resolver changed; "
		    "deliverd keeps the running configuration until it is "
		    "restarted");
		return -1;
	}
	TAILQ_FOREACH(ds, &d.dests, entry) {
		ds->srv = &cfg->servers[ds->srvidx];
		dest_lift(ds, "reloaded");
	}
	TAILQ_FOREACH(j, &d.jobs, entry)
		j->srv = &cfg->servers[j->srvidx];
	mr_config_free(d.cfg);
	d.cfg = cfg;
	return 0;
}

static const struct mr_child_ops child_ops = {
	.stop = shutdown_start,
	.orphaned = orphaned,
	.peer = on_peer,
	.reload = reload,
};

/* ---- start and stop ---- */

static void
teardown(void)
{
	struct job *j;
	struct dest *ds;
	int i;

	/* counters not sent yet, then every result still waiting for room
	 * in the channel: queued may be behind on a backlog's results, and
	 * one lost here leaves a delivered message queued, to be sent again
	 * at the next start (queued reads on until this end closes) */
	report_flush();
	for (i = 0; i < 4 && d.queued != NULL; i++)
		(void)event_base_loop(d.base, EVLOOP_NONBLOCK);
	if (d.queued != NULL && mr_ipc_drain(d.queued, DRAIN_WAIT * 1000) == -1)
		mr_warn("shutdown: queued did not take every result within %d "
		    "s; those messages may be delivered again", DRAIN_WAIT);
	smtp_fini();
	report_fini();
	mta_sts_fini();
	rate_fini();
	while ((j = TAILQ_FIRST(&d.jobs)) != NULL) {
		TAILQ_REMOVE(&d.jobs, j, entry);
		job_free(j);
	}
	while ((ds = TAILQ_FIRST(&d.dests)) != NULL)
		dest_free(ds);	/* NOLINT(clang-analyzer-unix.Malloc) */
	if (d.queued != NULL)
		mr_ipc_free(d.queued);
	mr_child_end();
	if (d.grace != NULL)
		event_free(d.grace);
	mx_fini();
	ptr_fini();
	replay_free();
	if (d.replay_timer != NULL)
		event_free(d.replay_timer);
	if (d.kick != NULL)
		event_free(d.kick);
	d.kick = NULL;
	event_base_free(d.base);
	free(d.srvconns);
	mr_config_free(d.cfg);
}

static void
add_dir_of(char **ro, size_t *n, size_t max, const char *file)
{
	char *dir, *slash;

	if (file == NULL || *n >= max)
		return;
	dir = mr_xstrdup(file);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir)
		*slash = '\0';
	ro[(*n)++] = dir;
}

/* Read-write: the MTA-STS cache, if mailrootd could make it (not as
 * root, a demo may have none: the policies are kept in memory only). */
static const char *const *
sts_rw(void)
{
	static const char *rw[2];
	struct stat st;

	rw[0] = NULL;
	if (stat(d.cfg->mta_sts_cache, &st) == 0 && S_ISDIR(st.st_mode))
		rw[0] = d.cfg->mta_sts_cache;
	return rw;
}

/*
 * Read-only: the resolver and CA certificates, and the directories of
 * the AUTH password files (read at each AUTH; Landlock cannot allow a
 * single file with directory rights) and of the tls-ca-files (read at
 * first use and when they change).  No mailroot.  A file in a directory
 * a reload adds is readable after deliverd restarts.
 */
static void
sandbox(void)
{
	static const char *const base[] = { "/etc", "/usr/share",
	    "/usr/lib/ssl", "/usr/local/share/ca-certificates" };
	const struct mr_server *srv;
	size_t i, k, n = 0, nb = sizeof(base) / sizeof(base[0]), max;
	char **ro;

	max = nb + 2;
	for (i = 0; i < d.cfg->nservers; i++)
		max += 2 * (1 + d.cfg->servers[i].ndomains);
	ro = mr_xcalloc(max, sizeof(*ro));
	for (i = 0; i < nb; i++)
		ro[n++] = mr_xstrdup(base[i]);
	for (i = 0; i < d.cfg->nservers; i++) {
		srv = &d.cfg->servers[i];
		add_dir_of(ro, &n, max - 1,
		    srv->delivery.outbound.auth_password_file);
		add_dir_of(ro, &n, max - 1, srv->delivery.outbound.trust.ca_file);
		for (k = 0; k < srv->ndomains; k++) {
			add_dir_of(ro, &n, max - 1,
			    srv->domains[k].auth_password_file);
			add_dir_of(ro, &n, max - 1,
			    srv->domains[k].trust.ca_file);
		}
	}
	/* the tests' clock (dest_down.c), where the environment names it */
	add_dir_of(ro, &n, max - 1, dest_clock_file());
	mr_sandbox_files("deliverd", (const char *const *)ro, sts_rw());
	mr_sandbox_syscalls("deliverd", MR_PROC_DELIVERD);
	for (i = 0; i < n; i++)
		free(ro[i]);
	free(ro);
}

int
main(int argc, char *argv[])
{
	TAILQ_INIT(&d.jobs);
	TAILQ_INIT(&d.dests);
	d.cfg = mr_child_start("deliverd", argc, argv);
	if (d.cfg->nservers == 0)
		mr_fatal("deliverd: the configuration has no server");
	d.srvconns = mr_xcalloc(d.cfg->nservers, sizeof(*d.srvconns));
	d.base = mr_child_loop();
	if ((d.kick = event_new(d.base, -1, 0, kick_cb, NULL)) == NULL)
		mr_fatal("deliverd: event_new failed");
	/* before the drop: the resolver reads /etc/resolv.conf */
	if (mx_init(d.base, d.cfg->resolver, d.cfg->trust_anchor) == -1)
		mr_fatal("cannot set up the resolver");
	if (ptr_init(d.base, d.cfg->resolver) == -1)
		mr_fatal("cannot set up the reverse resolver");
	if (smtp_init() == -1)
		mr_fatal("cannot set up TLS");
	if (mta_sts_init(d.cfg) == -1)
		mr_fatal("cannot set up MTA-STS");
	(void)mr_privdrop("deliverd", d.cfg->deliver_user, NULL);
	sandbox();
	mr_child_serve(d.base, &child_ops);
	if (mr_ipc_is_channel(MR_FD_PEER1))
		queued_attach(MR_FD_PEER1);
	else
		close(MR_FD_PEER1);	/* queued is down: MR_M_PEER follows */
	mr_info("started");
	if (event_base_dispatch(d.base) == -1)
		mr_err("event loop failed");
	teardown();
	return 0;
}
