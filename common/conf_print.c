/*
 * conf_print.c - the effective configuration (mailrootd -P), every
 * default written out, in the syntax mailroot.conf(5) reads back.
 *
 * Security: output only.  Every string is printed quoted with '"' and
 * '\' escaped, so a value can never end its statement early; reading
 * the output back gives an equal configuration (tests/unit/test_conf.c).
 */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>

#include <stdio.h>

#include "conf.h"

static const char *const tls_in_names[] = { "none", "optional",
    "required" };
static const char *const tls_out_names[] = { "none", "opportunistic",
    "required", "verify", "fingerprint" };
static const char *const format_names[] = { "w3c", "ncsa", "iis", "none" };
static const char *const rotate_names[] = { "hourly", "daily", "weekly",
    "monthly", "size" };
static const char *const deliver_names[] = { "drop", "lmtp", "maildir" };
static const char *const auth_names[] = { "none", "login", "plain",
    "xoauth2" };
static const char *const add_headers_names[] = { "local", "all", "none" };

static void
pr_esc(FILE *fp, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', fp);
		fputc(*s, fp);
	}
}

static void
pr_str(FILE *fp, const char *s)
{
	fputc('"', fp);
	pr_esc(fp, s);
	fputc('"', fp);
}

static void
pr_ind(FILE *fp, int ind)
{
	while (ind-- > 0)
		fputc('\t', fp);
}

/* Bytes, in K when that is exact (2048K, as the IIS dialogs show). */
static void
pr_size(FILE *fp, uint64_t v)
{
	if (v != 0 && v % 1024 == 0)
		fprintf(fp, "%lluK", (unsigned long long)(v / 1024));
	else
		fprintf(fp, "%llu", (unsigned long long)v);
}

/* Seconds, in the largest exact unit: 10m, 12h, 2d. */
static void
pr_dur(FILE *fp, unsigned v)
{
	if (v != 0 && v % 86400 == 0)
		fprintf(fp, "%ud", v / 86400);
	else if (v != 0 && v % 3600 == 0)
		fprintf(fp, "%uh", v / 3600);
	else if (v != 0 && v % 60 == 0)
		fprintf(fp, "%um", v / 60);
	else
		fprintf(fp, "%us", v);
}

static void
pr_kv(FILE *fp, int ind, const char *k, const char *v)
{
	pr_ind(fp, ind);
	fprintf(fp, "%s ", k);
	pr_str(fp, v);
	fputc('\n', fp);
}

static void
pr_word(FILE *fp, int ind, const char *k, const char *w)
{
	pr_ind(fp, ind);
	fprintf(fp, "%s %s\n", k, w);
}

static void
pr_bool(FILE *fp, int ind, const char *k, int v)
{
	pr_word(fp, ind, k, v ? "yes" : "no");
}

static void
pr_uint(FILE *fp, int ind, const char *k, unsigned v)
{
	pr_ind(fp, ind);
	fprintf(fp, "%s %u\n", k, v);
}

/* "k a b c", or "k none_word" for an empty list */
static void
pr_names(FILE *fp, const char *k, char *const *v, size_t n,
    const char *none_word)
{
	size_t i;

	fputs(k, fp);
	if (n == 0)
		fprintf(fp, " %s", none_word);
	for (i = 0; i < n; i++) {
		fputc(' ', fp);
		pr_str(fp, v[i]);
	}
	fputc('\n', fp);
}

static void
pr_net(FILE *fp, const struct mr_rule *r)
{
	char ip[INET6_ADDRSTRLEN];

	if (inet_ntop(r->family, r->addr, ip, sizeof(ip)) == NULL)
		ip[0] = '\0';
	fputs(ip, fp);
	if (r->prefix != (r->family == AF_INET ? 32 : 128))
		fprintf(fp, "/%d", r->prefix);
}

static void
pr_access(FILE *fp, const char *k, const struct mr_access *a)
{
	const struct mr_rule *r;
	size_t i;

	for (i = 0; i < a->nrules; i++) {
		r = &a->rules[i];
		fprintf(fp, "\t%s %s ", k, r->allow ? "allow" : "deny");
		if (r->kind == MR_RULE_DOMAIN) {
			fputs("domain ", fp);
			pr_str(fp, r->domain);
		} else
			pr_net(fp, r);
		fputc('\n', fp);
	}
	fprintf(fp, "\t%s default %s\n", k, a->default_allow ? "allow" :
	    "deny");
}

/* tls, tls-ca-file, and tls-fingerprint when there are digests */
static void
pr_out_tls(FILE *fp, int ind, enum mr_tls_out tls,
    const struct mr_tls_trust *t)
{
	size_t i, k;

	pr_word(fp, ind, "tls", tls_out_names[tls]);
	if (t->ca_file != NULL)
		pr_kv(fp, ind, "tls-ca-file", t->ca_file);
	else
		pr_word(fp, ind, "tls-ca-file", "system");
	if (t->npins == 0)
		return;
	pr_ind(fp, ind);
	fputs("tls-fingerprint", fp);
	for (i = 0; i < t->npins; i++) {
		fputs(" sha256:", fp);
		for (k = 0; k < MR_TLS_PIN_LEN; k++)
			fprintf(fp, "%02x", t->pins[i].sha256[k]);
	}
	fputc('\n', fp);
}

static void
pr_out_auth(FILE *fp, int ind, enum mr_out_auth auth, const char *user,
    const char *pwfile)
{
	pr_ind(fp, ind);
	fprintf(fp, "auth %s", auth_names[auth]);
	if (auth != MR_AUTH_OUT_NONE) {
		fputc(' ', fp);
		pr_str(fp, user ? user : "");
		fputs(auth == MR_AUTH_OUT_XOAUTH2 ? " token-file " :
		    " password-file ", fp);
		pr_str(fp, pwfile ? pwfile : "");
	}
	fputc('\n', fp);
}

static void
pr_auth_in(FILE *fp, const struct mr_auth *a)
{
	fputs("\tauth {\n", fp);
	if (a->plain || a->login)
		fprintf(fp, "\t\tmechanisms%s%s\n", a->plain ? " plain" : "",
		    a->login ? " login" : "");
	if (a->users != NULL)
		pr_kv(fp, 2, "users", a->users);
	if (a->dovecot != NULL)
		pr_kv(fp, 2, "dovecot", a->dovecot);
	pr_bool(fp, 2, "require-tls", a->require_tls);
	pr_bool(fp, 2, "received-auth", a->received_auth);
	fputs("\t}\n", fp);
}

static void
pr_limits(FILE *fp, const struct mr_limits *l)
{
	fputs("\tlimits {\n", fp);
	pr_uint(fp, 2, "connections", l->connections);
	fputs("\t\tidle-timeout ", fp);
	pr_dur(fp, l->idle_timeout);
	fputs("\n\t\tmessage-size ", fp);
	pr_size(fp, l->message_size);
	fputs("\n\t\tsession-size ", fp);
	pr_size(fp, l->session_size);
	fputc('\n', fp);
	pr_uint(fp, 2, "messages-per-connection", l->messages_per_connection);
	pr_uint(fp, 2, "recipients-per-message", l->recipients_per_message);
	pr_uint(fp, 2, "client-connections", l->client_connections);
	pr_uint(fp, 2, "client-connection-rate", l->client_connection_rate);
	fputs("\t}\n", fp);
}

static void
pr_extensions(FILE *fp, const struct mr_extensions *e)
{
	fputs("\textensions {\n", fp);
	pr_bool(fp, 2, "size", e->size);
	pr_bool(fp, 2, "pipelining", e->pipelining);
	pr_bool(fp, 2, "8bitmime", e->eightbitmime);
	pr_bool(fp, 2, "chunking", e->chunking);
	pr_bool(fp, 2, "dsn", e->dsn);
	pr_bool(fp, 2, "smtputf8", e->smtputf8);
	fputs("\t}\n", fp);
}

static void
pr_timeout(FILE *fp, const char *name, unsigned v)
{
	fprintf(fp, "\t\t\t%s ", name);
	pr_dur(fp, v);
	fputc('\n', fp);
}

/* rate N per D; nothing for no rate */
static void
pr_rate(FILE *fp, int depth, unsigned rate, unsigned window)
{
	if (rate == 0)
		return;
	while (depth-- > 0)
		fputc('\t', fp);
	fprintf(fp, "rate %u per ", rate);
	pr_dur(fp, window);
	fputc('\n', fp);
}

static void
pr_outbound(FILE *fp, const struct mr_outbound *o)
{
	fputs("\t\toutbound {\n", fp);
	pr_uint(fp, 3, "connections", o->connections);
	pr_uint(fp, 3, "per-domain", o->per_domain);
	pr_uint(fp, 3, "port", o->port);
	pr_timeout(fp, "timeout", o->timeout);
	pr_timeout(fp, "connect-timeout", o->connect_timeout);
	pr_timeout(fp, "greeting-timeout", o->greeting_timeout);
	pr_timeout(fp, "command-timeout", o->command_timeout);
	pr_timeout(fp, "data-timeout", o->data_timeout);
	pr_timeout(fp, "block-timeout", o->block_timeout);
	pr_timeout(fp, "dot-timeout", o->dot_timeout);
	pr_rate(fp, 3, o->rate, o->rate_window);
	pr_out_tls(fp, 3, o->tls, &o->trust);
	pr_bool(fp, 3, "dane", o->dane);
	pr_out_auth(fp, 3, o->auth, o->auth_user, o->auth_password_file);
	pr_bool(fp, 3, "esmtp", o->esmtp);
	pr_bool(fp, 3, "mta-sts", o->mta_sts);
	fputs("\t\t}\n", fp);
}

static void
pr_delivery(FILE *fp, const struct mr_delivery *dl)
{
	size_t i;

	fputs("\tdelivery {\n\t\tretry", fp);
	for (i = 0; i < dl->nretry; i++) {
		fputc(' ', fp);
		pr_dur(fp, dl->retry[i]);
	}
	fputs("\n\t\tdelay-notify outbound ", fp);
	pr_dur(fp, dl->delay_notify_outbound);
	fputs(" local ", fp);
	pr_dur(fp, dl->delay_notify_local);
	fputs("\n\t\texpire outbound ", fp);
	pr_dur(fp, dl->expire_outbound);
	fputs(" local ", fp);
	pr_dur(fp, dl->expire_local);
	fputc('\n', fp);
	if (dl->smart_host != NULL) {
		pr_ind(fp, 2);
		fputs("smart-host ", fp);
		pr_str(fp, dl->smart_host);
		for (i = 0; i < dl->nsmart_host_next; i++) {
			fputc(' ', fp);
			pr_str(fp, dl->smart_host_next[i]);
		}
		fputc('\n', fp);
	} else
		pr_word(fp, 2, "smart-host", "none");
	pr_bool(fp, 2, "smart-host-first-direct", dl->smart_host_first_direct);
	pr_outbound(fp, &dl->outbound);
	fputs("\t}\n", fp);
}

static void
pr_log(FILE *fp, const struct mr_logcfg *lg)
{
	size_t i;

	fputs("\tlog {\n", fp);
	pr_word(fp, 2, "format", format_names[lg->format]);
	fputs("\t\tfields", fp);
	for (i = 0; i < lg->nfields; i++)
		fprintf(fp, " %s", lg->fields[i]);
	fputc('\n', fp);
	if (lg->directory != NULL)
		pr_kv(fp, 2, "directory", lg->directory);
	fprintf(fp, "\t\trotate %s", rotate_names[lg->rotate]);
	if (lg->rotate == MR_ROTATE_SIZE) {
		fputc(' ', fp);
		pr_size(fp, lg->rotate_size);
	}
	fputs("\n\t}\n", fp);
}

static void
pr_remote(FILE *fp, const struct mr_domain *d)
{
	size_t i;

	fputs(" remote {\n", fp);
	pr_bool(fp, 2, "relay", d->relay);
	if (d->route != NULL)
		pr_kv(fp, 2, "route", d->route);
	else
		pr_word(fp, 2, "route", "dns");
	pr_bool(fp, 2, "esmtp", d->esmtp);
	pr_out_tls(fp, 2, d->tls, &d->trust);
	pr_bool(fp, 2, "dane", d->dane);
	pr_out_auth(fp, 2, d->auth, d->auth_user, d->auth_password_file);
	pr_bool(fp, 2, "hold-for-etrn", d->hold_for_etrn);
	pr_rate(fp, 2, d->rate, d->rate_window);
	if (d->etrn_allow.nrules > 0) {
		fputs("\t\tetrn-allow", fp);
		for (i = 0; i < d->etrn_allow.nrules; i++) {
			fputc(' ', fp);
			pr_net(fp, &d->etrn_allow.rules[i]);
		}
		fputc('\n', fp);
	}
	fputs("\t}\n", fp);
}

/*
 * An implicit domain is printed as a comment: reading the output back
 * creates it again, implicit, so the two configurations stay equal.
 */
static void
pr_domain(FILE *fp, const struct mr_domain *d)
{
	if (d->implicit) {
		fputs("\t# implicit: IIS default domain\n\t# ", fp);
		fputs("domain ", fp);
		pr_str(fp, d->name);
		fputs(" local { deliver drop }\n", fp);
		return;
	}
	fputs("\tdomain ", fp);
	pr_str(fp, d->name);
	switch (d->kind) {
	case MR_DOMAIN_ALIAS:
		fputs(" alias-of ", fp);
		pr_str(fp, d->alias_of);
		fputc('\n', fp);
		break;
	case MR_DOMAIN_REMOTE:
		pr_remote(fp, d);
		break;
	case MR_DOMAIN_LOCAL:
		fprintf(fp, " local {\n\t\tdeliver %s",
		    deliver_names[d->deliver]);
		if (d->deliver_arg != NULL) {
			fputc(' ', fp);
			pr_str(fp, d->deliver_arg);
		}
		fputc('\n', fp);
		if (d->aliases != NULL)
			pr_kv(fp, 2, "aliases", d->aliases);
		if (d->recipients != NULL)
			pr_kv(fp, 2, "recipients", d->recipients);
		fputs("\t}\n", fp);
		break;
	}
}

static void
pr_dkim(FILE *fp, const struct mr_dkim *d)
{
	static const char *const canon[] = { "relaxed", "simple" };

	fputs("\tdkim ", fp);
	pr_str(fp, d->domain);
	fputs(" {\n", fp);
	pr_kv(fp, 2, "selector", d->selector);
	pr_kv(fp, 2, "key", d->key);
	fprintf(fp, "\t\tcanonicalization %s/%s\n", canon[d->hcanon],
	    canon[d->bcanon]);
	if (d->headers != NULL) {
		fputs("\t\t", fp);
		pr_names(fp, "headers", d->headers, d->nheaders, "from");
	}
	fputs("\t}\n", fp);
}

static void
pr_server(FILE *fp, const struct mr_server *s)
{
	const struct mr_listen *l;
	size_t i;

	fputs("\nserver ", fp);
	pr_str(fp, s->name);
	fputs(" {\n", fp);
	for (i = 0; i < s->nlistens; i++) {
		l = &s->listens[i];
		fprintf(fp, "\tlisten %s%s%s\n", l->text, l->tls ? " tls" : "",
		    l->proxy ? " proxy-protocol" : "");
	}
	pr_kv(fp, 1, "mailroot", s->mailroot);
	pr_kv(fp, 1, "fqdn", s->fqdn);
	if (s->pki != NULL)
		pr_kv(fp, 1, "pki", s->pki);
	pr_access(fp, "connection", &s->connection);
	pr_access(fp, "relay", &s->relay);
	pr_bool(fp, 1, "relay authenticated", s->relay_authenticated);
	pr_auth_in(fp, &s->auth);
	pr_word(fp, 1, "tls", tls_in_names[s->tls]);
	pr_limits(fp, &s->limits);
	pr_extensions(fp, &s->extensions);
	pr_bool(fp, 1, "reverse-dns-lookup", s->reverse_dns_lookup);
	pr_uint(fp, 1, "hop-count", s->hop_count);
	if (s->masquerade_domain != NULL)
		pr_kv(fp, 1, "masquerade-domain", s->masquerade_domain);
	if (s->masquerade_from)
		pr_bool(fp, 1, "masquerade-from", s->masquerade_from);
	if (s->ndr_copy_to != NULL)
		pr_kv(fp, 1, "ndr-copy-to", s->ndr_copy_to);
	if (s->header_checks != NULL)
		pr_kv(fp, 1, "header-checks", s->header_checks);
	pr_bool(fp, 1, "badmail", s->badmail);
	pr_word(fp, 1, "add-missing-headers",
	    add_headers_names[s->add_missing_headers]);
	pr_delivery(fp, &s->delivery);
	pr_log(fp, &s->log);
	for (i = 0; i < s->ndomains; i++)
		pr_domain(fp, &s->domains[i]);
	for (i = 0; i < s->ndkims; i++)
		pr_dkim(fp, &s->dkims[i]);
	fputs("}\n", fp);
}

void
mr_config_print(const struct mr_config *cf, FILE *fp)
{
	size_t i;

	pr_kv(fp, 0, "hostname", cf->hostname);
	pr_kv(fp, 0, "user", cf->user);
	pr_kv(fp, 0, "smtpd-user", cf->smtpd_user);
	pr_kv(fp, 0, "deliver-user", cf->deliver_user);
	pr_kv(fp, 0, "chroot", cf->chroot);
	pr_kv(fp, 0, "resolver", cf->resolver);
	pr_kv(fp, 0, "dnssec-trust-anchor", cf->trust_anchor);
	pr_kv(fp, 0, "mta-sts-cache", cf->mta_sts_cache);
	if (cf->control_group != NULL)
		pr_kv(fp, 0, "control-group", cf->control_group);
	if (cf->control_socket != NULL)
		pr_kv(fp, 0, "control-socket", cf->control_socket);
	if (cf->metrics_listen != NULL)
		fprintf(fp, "metrics listen %s\n", cf->metrics_listen);
	pr_kv(fp, 0, "submit-socket", cf->submit_socket);
	pr_names(fp, "submit-users", cf->submit_users, cf->nsubmit_users,
	    "any");
	if (cf->nsender_users > 0)
		pr_names(fp, "submit-sender-users", cf->sender_users,
		    cf->nsender_users, NULL);
	for (i = 0; i < cf->npkis; i++) {
		fputs("\npki ", fp);
		pr_str(fp, cf->pkis[i].name);
		fputs(" {\n", fp);
		pr_kv(fp, 1, "certificate", cf->pkis[i].certificate);
		pr_kv(fp, 1, "key", cf->pkis[i].key);
		fputs("}\n", fp);
	}
	if (cf->ntables > 0)
		fputc('\n', fp);
	for (i = 0; i < cf->ntables; i++) {
		fputs("table ", fp);
		pr_str(fp, cf->tables[i].name);
		fprintf(fp, " \"%s:", cf->tables[i].type);
		pr_esc(fp, cf->tables[i].path);
		fputs("\"\n", fp);
	}
	for (i = 0; i < cf->nservers; i++)
		pr_server(fp, &cf->servers[i]);
}
