/*
 * test_conf.c - unit tests of the configuration lexer, parser, printer
 * and lookups (common/conf_*.c).
 *
 * Errors are tested by parsing strings and looking for the exact
 * "FILE:LINE:COL: message" line the parser writes.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "conf_lex.h"

#define ETC	MR_TESTDATA "/../../../etc"

/* A server that is valid on its own; tests add lines around it. */
#define SRV(body) "server \"s\" {\n\tlisten 127.0.0.1:25\n" \
	"\tmailroot /var/m\n" body "}\n"

static char *errbuf;
static size_t errlen;

static struct mr_config *
parse(const char *text)
{
	struct mr_config *cf;
	FILE *fp;

	free(errbuf);
	errbuf = NULL;
	fp = open_memstream(&errbuf, &errlen);
	assert_non_null(fp);
	cf = mr_config_parse("t.conf", text, strlen(text), fp);
	assert_int_equal(fclose(fp), 0);
	return cf;
}

static void
expect_error(const char *text, const char *msg)
{
	struct mr_config *cf = parse(text);

	if (strstr(errbuf, msg) == NULL)
		fail_msg("expected \"%s\" in:\n%s", msg, errbuf);
	assert_null(cf);
}

static void
expect_warning(const char *text, const char *msg)
{
	struct mr_config *cf = parse(text);

	if (strstr(errbuf, msg) == NULL)
		fail_msg("expected \"%s\" in:\n%s", msg, errbuf);
	assert_non_null(cf);
	mr_config_free(cf);
}

static int
has(const char *p, size_t n, const char *s)
{
	return memmem(p, n, s, strlen(s)) != NULL;
}

/* Whether every diagnostic in errbuf is a warning about a setting that is
 * not implemented yet (conf_inert.c): those are expected of any file
 * that uses such a setting, the printed defaults included. */
static int
only_inert_warnings(void)
{
	const char *p, *nl;
	size_t n;

	for (p = errbuf; p != NULL && *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			return 0;
		n = (size_t)(nl - p);
		if (!has(p, n, ": warning: \"") ||
		    (!has(p, n, "\" is not yet implemented") &&
		    !has(p, n, "\" is only partly implemented")))
			return 0;
	}
	return 1;
}

static struct mr_config *
parse_clean(const char *text)
{
	struct mr_config *cf = parse(text);

	if (cf == NULL || !only_inert_warnings())
		fail_msg("unexpected diagnostics:\n%s", errbuf);
	return cf;
}

static char *
print_conf(const struct mr_config *cf)
{
	char *out = NULL;
	size_t len;
	FILE *fp = open_memstream(&out, &len);

	assert_non_null(fp);
	mr_config_print(cf, fp);
	assert_int_equal(fclose(fp), 0);
	return out;
}

/* parse -> print -> parse -> print: the two prints are identical. */
static void
check_roundtrip(struct mr_config *cf)
{
	struct mr_config *cf2;
	char *p1, *p2;

	p1 = print_conf(cf);
	cf2 = parse(p1);
	if (cf2 == NULL || !only_inert_warnings())
		fail_msg("printed configuration does not parse:\n%s\n%s",
		    errbuf, p1);
	p2 = print_conf(cf2);
	assert_string_equal(p1, p2);
	free(p1);
	free(p2);
	mr_config_free(cf2);
}

static int
teardown(void **state)
{
	(void)state;
	free(errbuf);
	errbuf = NULL;
	return 0;
}

/* ---- lexer ---- */

static void
t_lex_tokens(void **state)
{
	static const char text[] = "a \"b \\\"q\\\\\" {\n ; } # c\n";
	struct mr_cf_diag d = { "t", NULL, 0, 0 };
	struct mr_lex lx;
	struct mr_token t;

	(void)state;
	mr_lex_init(&lx, text, strlen(text), &d);
	mr_lex_next(&lx, &t);
	assert_int_equal(t.type, MR_TOK_WORD);
	assert_string_equal(t.text, "a");
	assert_int_equal(t.col, 1);
	free(t.text);
	mr_lex_next(&lx, &t);
	assert_int_equal(t.type, MR_TOK_STRING);
	assert_string_equal(t.text, "b \"q\\");
	assert_int_equal(t.col, 3);
	free(t.text);
	mr_lex_next(&lx, &t);
	assert_int_equal(t.type, MR_TOK_LBRACE);
	assert_int_equal(t.col, 13);
	mr_lex_next(&lx, &t);
	assert_int_equal(t.type, MR_TOK_NL);
	mr_lex_next(&lx, &t);
	assert_int_equal(t.type, MR_TOK_SEMI);
	assert_int_equal(t.line, 2);
	assert_int_equal(t.col, 2);
	mr_lex_next(&lx, &t);
	assert_int_equal(t.type, MR_TOK_RBRACE);
	assert_int_equal(t.col, 4);
	mr_lex_next(&lx, &t);
	assert_int_equal(t.type, MR_TOK_NL);
	mr_lex_next(&lx, &t);
	assert_int_equal(t.type, MR_TOK_EOF);
	assert_int_equal(t.line, 3);
	assert_int_equal(d.nerrors, 0);
}

static void
t_lex_unterminated(void **state)
{
	(void)state;
	expect_error("hostname \"abc\nuser x\n",
	    "t.conf:1:10: unterminated string\n");
	/* the next line is still read */
	expect_error("hostname \"abc\nuser \"\"\n",
	    "t.conf:2:6: bad user name \"\"");
}

static void
t_lex_control_char(void **state)
{
	static const char text[] = "user a\001b\n";

	(void)state;
	expect_error(text, "t.conf:1:7: invalid character 0x01");
}

static void
t_one_line_blocks(void **state)
{
	struct mr_config *cf;

	(void)state;
	cf = parse_clean("server \"s\" { listen 127.0.0.1:25; mailroot /m\n"
	    "delivery { smart-host \"x.example\" } }\n"
	    "server \"t\"\n{\n listen [::1]:25 ; mailroot /n }\n");
	assert_int_equal(cf->nservers, 2);
	assert_string_equal(cf->servers[0].delivery.smart_host, "x.example");
	assert_string_equal(cf->servers[1].listens[0].text, "[::1]:25");
	assert_int_equal(cf->servers[1].index, 1);
	mr_config_free(cf);
}

/* Several smart hosts, tried in order; "none" clears them. */
static void
t_smart_hosts(void **state)
{
	struct mr_config *cf;
	const struct mr_delivery *dl;

	(void)state;
	cf = parse_clean("server \"s\" { listen 127.0.0.1:25; mailroot /m\n"
	    "delivery { smart-host \"[192.0.2.1]:587\" b.example "
	    "\"c.example:2525\"\nsmart-host-first-direct yes } }\n");
	dl = &cf->servers[0].delivery;
	assert_string_equal(dl->smart_host, "[192.0.2.1]:587");
	assert_int_equal(dl->nsmart_host_next, 2);
	assert_string_equal(dl->smart_host_next[0], "b.example");
	assert_string_equal(dl->smart_host_next[1], "c.example:2525");
	assert_int_equal(dl->smart_host_first_direct, 1);
	check_roundtrip(cf);
	mr_config_free(cf);
	cf = parse_clean("server \"s\" { listen 127.0.0.1:25; mailroot /m\n"
	    "delivery { smart-host a.example b.example\n"
	    "smart-host none } }\n");
	assert_null(cf->servers[0].delivery.smart_host);
	assert_int_equal(cf->servers[0].delivery.nsmart_host_next, 0);
	mr_config_free(cf);
	expect_error(SRV("\tdelivery { smart-host a.example \"[1.2.3]\" }\n"),
	    "t.conf:4:34: bad host \"[1.2.3]\"");
	expect_error(SRV("\tdelivery { smart-host none a.example }\n"),
	    "t.conf:4:29: too many arguments for \"smart-host none\"");
}

static void
t_crlf(void **state)
{
	struct mr_config *cf;

	(void)state;
	cf = parse_clean("hostname \"h.example\"\r\n"
	    "server \"s\" {\r\n listen 127.0.0.1:25\r\n mailroot /m\r\n}\r\n");
	assert_string_equal(cf->hostname, "h.example");
	mr_config_free(cf);
}

/* ---- shipped and example files ---- */

static void
t_example(void **state)
{
	struct mr_config *cf;
	const struct mr_server *s;
	const struct mr_domain *d;

	(void)state;
	cf = mr_config_load(MR_TESTDATA "/conf/example.conf", stderr);
	assert_non_null(cf);
	assert_string_equal(cf->hostname, "mail.example.com");
	assert_string_equal(cf->metrics_listen, "127.0.0.1:9325");
	assert_int_equal(cf->npkis, 1);
	assert_int_equal(cf->ntables, 3);
	assert_string_equal(cf->tables[2].type, "regex");
	assert_int_equal(cf->nservers, 2);
	s = &cf->servers[0];
	assert_int_equal(s->nlistens, 4);
	assert_int_equal(s->listens[2].tls, 1);
	assert_int_equal(s->listens[3].proxy, 1);
	assert_int_equal(s->listens[1].addr.ss_family, AF_INET6);
	assert_int_equal(s->connection.nrules, 3);
	assert_int_equal(s->connection.default_allow, 0);
	assert_int_equal(s->connection.rules[2].kind, MR_RULE_DOMAIN);
	assert_int_equal(s->auth.plain && s->auth.login, 1);
	assert_int_equal(s->limits.connections, 1000);
	assert_int_equal(s->limits.message_size, 2097152);
	assert_int_equal(s->delivery.retry[3], 14400);
	assert_string_equal(s->delivery.smart_host, "[192.0.2.25]:587");
	assert_int_equal(s->ndomains, 3);
	d = mr_config_domain(s, "PARTNER.example");
	assert_non_null(d);
	assert_int_equal(d->kind, MR_DOMAIN_REMOTE);
	assert_int_equal(d->esmtp, 0);
	assert_int_equal(d->tls, MR_TLS_OUT_NONE);
	assert_int_equal(d->hold_for_etrn, 1);
	assert_int_equal(d->etrn_allow.nrules, 1);
	assert_true(mr_domain_is_local(s, "example.net"));
	assert_false(mr_domain_is_local(s, "partner.example"));
	/* the second server gets the IIS default domain */
	s = &cf->servers[1];
	assert_int_equal(s->ndomains, 1);
	assert_int_equal(s->domains[0].implicit, 1);
	assert_string_equal(s->domains[0].name, "mail.example.com");
	assert_int_equal(s->tls, MR_TLS_IN_NONE);
	check_roundtrip(cf);
	mr_config_free(cf);
}

static void
t_shipped(void **state)
{
	struct mr_config *cf;
	FILE *fp;
	char *out = NULL;
	size_t len;

	(void)state;
	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	cf = mr_config_load(ETC "/mailroot.conf", fp);
	assert_non_null(cf);
	check_roundtrip(cf);
	mr_config_free(cf);
	cf = mr_config_load(ETC "/relay.conf", fp);
	assert_non_null(cf);
	assert_int_equal(fclose(fp), 0);
	/* the example shows settings not implemented yet, and says so */
	free(errbuf);
	errbuf = out;
	if (!only_inert_warnings())
		fail_msg("unexpected diagnostics:\n%s", errbuf);
	assert_string_equal(cf->servers[0].delivery.smart_host,
	    "[192.0.2.25]");
	assert_int_equal(cf->servers[0].relay.nrules, 1);
	assert_int_equal(cf->servers[0].relay.default_allow, 0);
	check_roundtrip(cf);
	mr_config_free(cf);
}

static void
t_relay_conf_short(void **state)
{
	FILE *fp;
	char line[256];
	int n = 0;

	(void)state;
	fp = fopen(ETC "/relay.conf", "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp) != NULL)
		n++;
	fclose(fp);
	assert_true(n < 10);
}

static void
t_load_missing(void **state)
{
	FILE *fp;
	char *out = NULL;
	size_t len;

	(void)state;
	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	assert_null(mr_config_load(MR_TESTDATA "/conf/nonexistent", fp));
	assert_int_equal(fclose(fp), 0);
	assert_non_null(strstr(out,
	    "/conf/nonexistent: cannot read: No such file or directory\n"));
	free(out);
}

/* ---- defaults and values ---- */

static void
t_defaults(void **state)
{
	struct mr_config *cf;
	const struct mr_server *s;

	(void)state;
	cf = parse_clean(SRV(""));
	assert_non_null(cf->hostname);
	assert_string_equal(cf->user, "mailroot");
	assert_string_equal(cf->smtpd_user, "mailroot-smtpd");
	assert_string_equal(cf->deliver_user, "mailroot-deliver");
	assert_string_equal(cf->resolver, "system");
	assert_non_null(strstr(cf->chroot, "/lib/mailroot/empty"));
	s = &cf->servers[0];
	assert_string_equal(s->fqdn, cf->hostname);
	assert_int_equal(s->connection.default_allow, 1);
	assert_int_equal(s->relay.default_allow, 0);
	assert_int_equal(s->relay.nrules, 0);
	assert_int_equal(s->relay_authenticated, 1);
	assert_int_equal(s->auth.require_tls, 1);
	assert_null(s->auth.users);
	assert_int_equal(s->tls, MR_TLS_IN_NONE);
	assert_int_equal(s->limits.connections, 0);
	assert_int_equal(s->limits.idle_timeout, 600);
	assert_int_equal(s->limits.message_size, 2097152);
	assert_int_equal(s->limits.session_size, 10485760);
	assert_int_equal(s->limits.messages_per_connection, 20);
	assert_int_equal(s->limits.recipients_per_message, 100);
	assert_int_equal(s->limits.client_connections, 0);
	assert_int_equal(s->limits.client_connection_rate, 0);
	assert_int_equal(s->extensions.size, 1);
	assert_int_equal(s->extensions.pipelining, 1);
	assert_int_equal(s->extensions.eightbitmime, 1);
	assert_int_equal(s->extensions.chunking, 1);
	assert_int_equal(s->extensions.dsn, 1);
	assert_int_equal(s->reverse_dns_lookup, 0);
	assert_int_equal(s->hop_count, 15);
	assert_int_equal(s->badmail, 1);
	assert_int_equal(s->add_missing_headers, MR_ADDHDR_LOCAL);
	assert_int_equal(s->delivery.nretry, 4);
	assert_int_equal(s->delivery.retry[0], 900);
	assert_int_equal(s->delivery.retry[3], 14400);
	assert_int_equal(s->delivery.delay_notify_outbound, 43200);
	assert_int_equal(s->delivery.expire_local, 172800);
	assert_null(s->delivery.smart_host);
	assert_int_equal(s->delivery.outbound.connections, 1000);
	assert_int_equal(s->delivery.outbound.per_domain, 100);
	assert_int_equal(s->delivery.outbound.port, 25);
	assert_int_equal(s->delivery.outbound.timeout, 600);
	assert_int_equal(s->delivery.outbound.connect_timeout, 30);
	assert_int_equal(s->delivery.outbound.greeting_timeout, 300);
	assert_int_equal(s->delivery.outbound.command_timeout, 300);
	assert_int_equal(s->delivery.outbound.data_timeout, 120);
	assert_int_equal(s->delivery.outbound.block_timeout, 180);
	assert_int_equal(s->delivery.outbound.dot_timeout, 600);
	assert_int_equal(s->delivery.outbound.rate, 0);
	assert_int_equal(s->delivery.outbound.tls, MR_TLS_OUT_OPPORTUNISTIC);
	assert_int_equal(s->delivery.outbound.auth, MR_AUTH_OUT_NONE);
	assert_int_equal(s->delivery.outbound.esmtp, 1);
	assert_int_equal(s->log.format, MR_LOG_W3C);
	assert_int_equal(s->log.rotate, MR_ROTATE_DAILY);
	assert_int_equal(s->log.nfields, 14);
	assert_string_equal(s->log.fields[13], "time-taken");
	assert_null(s->log.directory);
	/* IIS default domain, named after the FQDN */
	assert_int_equal(s->ndomains, 1);
	assert_int_equal(s->domains[0].implicit, 1);
	assert_string_equal(s->domains[0].name, s->fqdn);
	assert_true(mr_domain_is_local(s, s->fqdn));
	check_roundtrip(cf);
	mr_config_free(cf);
}

static void
t_add_missing_headers(void **state)
{
	static const char *const v[] = { "local", "all", "none" };
	char text[256];
	struct mr_config *cf;
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		snprintf(text, sizeof(text), SRV("\tadd-missing-headers %s\n"),
		    v[i]);
		cf = parse_clean(text);
		assert_int_equal(cf->servers[0].add_missing_headers, (int)i);
		check_roundtrip(cf);
		mr_config_free(cf);
	}
	expect_error(SRV("\tadd-missing-headers yes\n"),
	    "t.conf:4:22: bad value \"yes\" for \"add-missing-headers\": "
	    "expected local, all or none");
}

static void
t_tls_default_with_pki(void **state)
{
	struct mr_config *cf;

	(void)state;
	cf = parse_clean("pki p { certificate /c; key /k }\n"
	    SRV("\tpki p\n\tlisten 127.0.0.1:465 tls\n"));
	assert_int_equal(cf->servers[0].tls, MR_TLS_IN_OPTIONAL);
	mr_config_free(cf);
}

static void
t_sizes_durations(void **state)
{
	struct mr_config *cf;
	const struct mr_server *s;
	char *out;

	(void)state;
	cf = parse_clean(SRV("\tlimits { message-size 1M; session-size 1G\n"
	    "\t\tidle-timeout 90; client-connections 5\n"
	    "\t\tclient-connection-rate 30 }\n"
	    "\tdelivery { retry 1m 2h 3d 45s 100\n"
	    "\t\texpire local 7d }\n"
	    "\tlog { rotate size 1500 }\n"
	    "\textensions { chunking no; 8bitmime no; dsn no }\n"));
	s = &cf->servers[0];
	assert_int_equal(s->extensions.chunking, 0);
	assert_int_equal(s->extensions.eightbitmime, 0);
	assert_int_equal(s->extensions.size, 1);
	assert_int_equal(s->extensions.dsn, 0);
	assert_int_equal(s->limits.message_size, 1048576);
	assert_int_equal(s->limits.session_size, 1073741824);
	assert_int_equal(s->limits.idle_timeout, 90);
	assert_int_equal(s->limits.client_connections, 5);
	assert_int_equal(s->limits.client_connection_rate, 30);
	assert_int_equal(s->delivery.nretry, 5);
	assert_int_equal(s->delivery.retry[1], 7200);
	assert_int_equal(s->delivery.retry[2], 259200);
	assert_int_equal(s->delivery.expire_local, 604800);
	assert_int_equal(s->delivery.expire_outbound, 172800);
	assert_int_equal(s->log.rotate, MR_ROTATE_SIZE);
	assert_int_equal(s->log.rotate_size, 1500);
	out = print_conf(cf);
	assert_non_null(strstr(out, "message-size 1024K\n"));
	assert_non_null(strstr(out, "session-size 1048576K\n"));
	assert_non_null(strstr(out, "idle-timeout 90s\n"));
	assert_non_null(strstr(out, "retry 1m 2h 3d 45s 100s\n"));
	assert_non_null(strstr(out, "expire outbound 2d local 7d\n"));
	assert_non_null(strstr(out, "rotate size 1500\n"));
	assert_non_null(strstr(out, "# implicit: IIS default domain\n"));
	free(out);
	check_roundtrip(cf);
	mr_config_free(cf);
}

static void
t_remote_domain_inherits_tls(void **state)
{
	struct mr_config *cf;
	const struct mr_domain *d;

	(void)state;
	cf = parse_clean(SRV("\tdomain \"r.example\" remote { route dns }\n"
	    "\tdelivery { outbound { tls verify\n"
	    "\t\tauth plain \"u\" password-file \"/p\" } }\n"));
	d = mr_config_domain(&cf->servers[0], "r.example");
	assert_non_null(d);
	assert_int_equal(d->tls, MR_TLS_OUT_VERIFY);
	/* credentials for the smart host never go to another route */
	assert_int_equal(d->auth, MR_AUTH_OUT_NONE);
	assert_null(d->route);
	assert_int_equal(cf->servers[0].delivery.outbound.auth,
	    MR_AUTH_OUT_PLAIN);
	check_roundtrip(cf);
	mr_config_free(cf);
}

/* dane and dnssec-trust-anchor: defaults, inheritance, printed back */
static void
t_dane(void **state)
{
	struct mr_config *cf;

	(void)state;
	cf = parse_clean(SRV("\tdomain \"a.example\" remote { relay yes }\n"));
	assert_string_equal(cf->trust_anchor, MR_TRUST_ANCHOR_DEFAULT);
	assert_int_equal(cf->servers[0].delivery.outbound.dane, 1);
	assert_int_equal(mr_config_domain(&cf->servers[0],
	    "a.example")->dane, 1);
	mr_config_free(cf);
	cf = parse_clean("dnssec-trust-anchor \"/etc/ta.key\"\n"
	    SRV("\tdomain \"a.example\" remote { relay yes }\n"
	    "\tdomain \"b.example\" remote { dane yes }\n"
	    "\tdelivery { outbound { dane no } }\n"));
	assert_string_equal(cf->trust_anchor, "/etc/ta.key");
	assert_int_equal(cf->servers[0].delivery.outbound.dane, 0);
	assert_int_equal(mr_config_domain(&cf->servers[0],
	    "a.example")->dane, 0);
	assert_int_equal(mr_config_domain(&cf->servers[0],
	    "b.example")->dane, 1);
	check_roundtrip(cf);
	mr_config_free(cf);
	cf = parse_clean("dnssec-trust-anchor none\n" SRV(""));
	assert_string_equal(cf->trust_anchor, "none");
	mr_config_free(cf);
	expect_error("dnssec-trust-anchor ta.key\n" SRV(""),
	    "bad dnssec-trust-anchor \"ta.key\": expected an absolute path "
	    "or none");
	expect_error(SRV("\tdelivery { outbound { dane maybe } }\n"),
	    "maybe");
}

#define PIN_A	"sha256:" \
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define PIN_B	"SHA256:" \
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:" \
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

/* tls-ca-file and tls-fingerprint: parsed, inherited by remote domains
 * that set none of their own, printed back. */
static void
t_tls_trust(void **state)
{
	struct mr_config *cf;
	const struct mr_domain *d;
	const struct mr_outbound *o;
	char *out;

	(void)state;
	cf = parse_clean(SRV("\tdelivery { outbound { tls fingerprint\n"
	    "\t\ttls-ca-file \"/etc/ca.pem\"; tls-fingerprint " PIN_A " }"
	    " }\n"
	    "\tdomain \"inherit.example\" remote { route dns }\n"
	    "\tdomain \"own.example\" remote { tls verify\n"
	    "\t\ttls-ca-file system; tls-fingerprint " PIN_B " " PIN_A
	    " }\n"));
	o = &cf->servers[0].delivery.outbound;
	assert_int_equal(o->tls, MR_TLS_OUT_FINGERPRINT);
	assert_string_equal(o->trust.ca_file, "/etc/ca.pem");
	assert_int_equal(o->trust.npins, 1);
	assert_int_equal(o->trust.pins[0].sha256[0], 0x00);
	assert_int_equal(o->trust.pins[0].sha256[31], 0xff);
	d = mr_config_domain(&cf->servers[0], "inherit.example");
	assert_int_equal(d->tls, MR_TLS_OUT_FINGERPRINT);
	assert_string_equal(d->trust.ca_file, "/etc/ca.pem");
	assert_int_equal(d->trust.npins, 1);
	assert_memory_equal(d->trust.pins, o->trust.pins, MR_TLS_PIN_LEN);
	d = mr_config_domain(&cf->servers[0], "own.example");
	assert_int_equal(d->tls, MR_TLS_OUT_VERIFY);
	assert_null(d->trust.ca_file);
	assert_int_equal(d->trust.npins, 2);
	assert_int_equal(d->trust.pins[0].sha256[0], 0xab);
	assert_int_equal(d->trust.pins[0].sha256[31], 0x89);
	out = print_conf(cf);
	assert_non_null(strstr(out, "tls-ca-file \"/etc/ca.pem\"\n"));
	assert_non_null(strstr(out, "tls-ca-file system\n"));
	assert_non_null(strstr(out, "tls-fingerprint sha256:abcdef0123"));
	free(out);
	check_roundtrip(cf);
	mr_config_free(cf);
}

static void
t_err_tls_trust(void **state)
{
	(void)state;
	expect_error(SRV("\tdelivery { outbound { tls fingerprint } }\n"),
	    "t.conf:4:28: tls fingerprint needs tls-fingerprint in the "
	    "outbound block of server \"s\"");
	expect_error(SRV("\tdomain \"r.example\" remote { tls fingerprint }"
	    "\n"), "t.conf:4:34: tls fingerprint needs tls-fingerprint in "
	    "domain \"r.example\"");
	expect_error(SRV("\tdelivery { outbound { tls-fingerprint sha256:00 }"
	    " }\n"), "bad fingerprint \"sha256:00\": expected sha256: and 64 "
	    "hexadecimal digits");
	expect_error(SRV("\tdelivery { outbound { tls-fingerprint "
	    "md5:00112233445566778899aabbccddeeff } }\n"), "bad fingerprint");
	/* one digit too many, a colon at the end, a stray character */
	expect_error(SRV("\tdelivery { outbound { tls-fingerprint " PIN_A "0"
	    " } }\n"), "bad fingerprint");
	expect_error(SRV("\tdelivery { outbound { tls-fingerprint " PIN_A ":"
	    " } }\n"), "bad fingerprint");
	expect_error(SRV("\tdelivery { outbound { tls-fingerprint sha256:"
	    "0g112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	    " } }\n"), "bad fingerprint");
	expect_error(SRV("\tdelivery { outbound { tls-ca-file ca.pem } }\n"),
	    "tls-ca-file path \"ca.pem\" is not absolute");
	/* HELO cannot start TLS: said, but the file is taken */
	expect_warning(SRV("\tdomain \"r.example\" remote { tls required\n"
	    "\t\tesmtp no }\n"), "t.conf:4:1: warning: esmtp no sends HELO, "
	    "which cannot start TLS: with tls required no mail to this domain "
	    "is ever delivered");
	expect_warning(SRV("\tdelivery { outbound { esmtp no; tls verify } }"
	    "\n"), "t.conf:4:38: warning: esmtp no sends HELO, which cannot "
	    "start TLS: with tls verify no mail under these outbound settings "
	    "is ever delivered");
}

/* step timeouts and rate limits: outbound, and a remote domain's own */
static void
t_outbound_timeouts_and_rate(void **state)
{
	struct mr_config *cf;
	const struct mr_domain *d;
	char *out;

	(void)state;
	cf = parse_clean(SRV("\tdomain \"r.example\" remote { rate 3 }\n"
	    "\tdelivery { outbound { dot-timeout 90s; greeting-timeout 1m\n"
	    "\t\trate 50 per 10s } }\n"));
	assert_int_equal(cf->servers[0].delivery.outbound.dot_timeout, 90);
	assert_int_equal(cf->servers[0].delivery.outbound.greeting_timeout, 60);
	assert_int_equal(cf->servers[0].delivery.outbound.rate, 50);
	assert_int_equal(cf->servers[0].delivery.outbound.rate_window, 10);
	d = mr_config_domain(&cf->servers[0], "r.example");
	assert_non_null(d);
	assert_int_equal(d->rate, 3);
	assert_int_equal(d->rate_window, 60);
	out = print_conf(cf);
	assert_non_null(strstr(out, "dot-timeout 90s\n"));
	assert_non_null(strstr(out, "rate 50 per 10s\n"));
	assert_non_null(strstr(out, "rate 3 per 1m\n"));
	free(out);
	check_roundtrip(cf);
	mr_config_free(cf);
	expect_error(SRV("\tdelivery { outbound { rate 5 over 1m } }\n"),
	    "t.conf:4:31: expected \"per\" after \"rate 5\"\n");
	expect_error(SRV("\tdelivery { outbound { command-timeout 0 } }\n"),
	    "t.conf:4:40: \"command-timeout\" must be at least 1s\n");
}

static void
t_outbound_xoauth2(void **state)
{
	struct mr_config *cf;
	const struct mr_domain *d;

	(void)state;
	cf = parse_clean(SRV("\tdomain \"r.example\" remote {\n"
	    "\t\tauth xoauth2 \"u@r.example\" token-file \"/t\" }\n"));
	d = mr_config_domain(&cf->servers[0], "r.example");
	assert_non_null(d);
	assert_int_equal(d->auth, MR_AUTH_OUT_XOAUTH2);
	assert_string_equal(d->auth_user, "u@r.example");
	assert_string_equal(d->auth_password_file, "/t");
	check_roundtrip(cf);
	mr_config_free(cf);
	expect_error(SRV("\tdelivery { outbound {\n"
	    "\t\tauth xoauth2 u password-file /t } }\n"),
	    "\"auth xoauth2\" needs \"USER token-file PATH\"");
	expect_error(SRV("\tdelivery { outbound {\n"
	    "\t\tauth plain u token-file /t } }\n"),
	    "\"auth plain\" needs \"USER password-file PATH\"");
}

static void
t_escapes_roundtrip(void **state)
{
	struct mr_config *cf;

	(void)state;
	cf = parse_clean("server \"a \\\"b\\\" \\\\ c\" {\n"
	    "\tlisten 127.0.0.1:25\n\tmailroot \"/var/m # x\"\n}\n");
	assert_string_equal(cf->servers[0].name, "a \"b\" \\ c");
	assert_string_equal(cf->servers[0].mailroot, "/var/m # x");
	check_roundtrip(cf);
	mr_config_free(cf);
}

/* ---- errors ---- */

static void
t_err_unknown_keyword(void **state)
{
	(void)state;
	expect_error("hostnme x\n" SRV(""),
	    "t.conf:1:1: unknown keyword \"hostnme\" at top level\n");
	expect_error(SRV("\tlisen 1.2.3.4:25\n"),
	    "t.conf:4:2: unknown keyword \"lisen\" in server block\n");
	expect_error(SRV("\tauth { mechanism plain }\n"),
	    "t.conf:4:9: unknown keyword \"mechanism\" in auth block\n");
	expect_error(SRV("\tlimits { size 1 }\n"),
	    "t.conf:4:11: unknown keyword \"size\" in limits block\n");
	expect_error(SRV("\tdelivery { retries 1 }\n"),
	    "t.conf:4:13: unknown keyword \"retries\" in delivery block\n");
	expect_error(SRV("\tdelivery { outbound { ports 1 } }\n"),
	    "t.conf:4:24: unknown keyword \"ports\" in outbound block\n");
	expect_error(SRV("\tlog { dir /x }\n"),
	    "t.conf:4:8: unknown keyword \"dir\" in log block\n");
	expect_error("pki p { cert /c }\n" SRV(""),
	    "t.conf:1:9: unknown keyword \"cert\" in pki block\n");
	expect_error(SRV("\tdomain d.example local { drop }\n"),
	    "t.conf:4:27: unknown keyword \"drop\" in local domain block\n");
	expect_error(SRV("\tdomain d.example remote { smart-host x }\n"),
	    "t.conf:4:28: unknown keyword \"smart-host\" in remote domain "
	    "block\n");
}

static void
t_err_arguments(void **state)
{
	(void)state;
	expect_error("hostname\n" SRV(""),
	    "t.conf:1:1: missing argument for \"hostname\"\n");
	expect_error("hostname a.example b.example\n" SRV(""),
	    "t.conf:1:20: too many arguments for \"hostname\"\n");
	expect_error(SRV("\tlisten 1.2.3.4:25 tls proxy-protocol x\n"),
	    "t.conf:4:39: too many arguments for \"listen\" (at most 3)\n");
	expect_error(SRV("\tlisten 1.2.3.4:26 tsl\n"),
	    "t.conf:4:20: unknown listen option \"tsl\"");
	expect_error(SRV("\tlimits\n"),
	    "t.conf:4:2: \"limits\" needs a { block }\n");
	expect_error(SRV("\thop-count 5 { }\n"),
	    "t.conf:4:2: \"hop-count\" does not take a block\n");
}

static void
t_err_braces(void **state)
{
	(void)state;
	expect_error(SRV("") "}\n", "t.conf:5:1: unexpected \"}\"\n");
	expect_error("server \"s\" {\n\tlisten 127.0.0.1:25\n"
	    "\tmailroot /m\n\tlog {\n}\n",
	    "t.conf:6:1: missing \"}\" at end of file\n");
	expect_error("{ user x }\n" SRV(""),
	    "t.conf:1:1: block without a keyword\n");
}

static void
t_err_ip(void **state)
{
	(void)state;
	expect_error(SRV("\tlisten 1.2.3.999:25\n"),
	    "t.conf:4:9: bad IP address \"1.2.3.999\" in \"1.2.3.999:25\"\n");
	expect_error(SRV("\tlisten ::1:25\n"),
	    "t.conf:4:9: bad address \"::1:25\": expected ADDR:PORT or "
	    "[IPv6]:PORT\n");
	expect_error(SRV("\tconnection allow 10.0.0.300\n"),
	    "t.conf:4:19: bad IP address \"10.0.0.300\"\n");
	expect_error(SRV("\trelay allow 10.0.0.0/33\n"),
	    "t.conf:4:14: bad CIDR \"10.0.0.0/33\": prefix must be 0-32\n");
	expect_error(SRV("\trelay allow 2001:db8::/129\n"),
	    "t.conf:4:14: bad CIDR \"2001:db8::/129\": prefix must be "
	    "0-128\n");
	expect_error(SRV("\trelay allow 10.0.0.0/x\n"),
	    "t.conf:4:14: bad CIDR \"10.0.0.0/x\"");
}

static void
t_warn_host_bits(void **state)
{
	struct mr_config *cf;

	(void)state;
	expect_warning(SRV("\tconnection allow 10.1.2.3/8\n"),
	    "t.conf:4:19: warning: \"10.1.2.3/8\" has host bits set; it "
	    "means 10.0.0.0/8\n");
	cf = parse(SRV("\tconnection deny 10.1.2.3/8\n"));
	assert_non_null(cf);
	assert_int_equal(cf->servers[0].connection.rules[0].addr[1], 0);
	mr_config_free(cf);
}

static void
t_err_port(void **state)
{
	(void)state;
	expect_error(SRV("\tlisten 1.2.3.4:0\n"),
	    "t.conf:4:9: bad port \"0\" in \"1.2.3.4:0\": expected 1-65535\n");
	expect_error(SRV("\tlisten [::1]:65536\n"),
	    "t.conf:4:9: bad port \"65536\" in \"[::1]:65536\"");
	expect_error(SRV("\tlisten 1.2.3.4:smtp\n"),
	    "t.conf:4:9: bad port \"smtp\" in \"1.2.3.4:smtp\"");
	expect_error(SRV("\tdelivery { outbound { port 0 } }\n"),
	    "t.conf:4:29: \"port\" must be between 1 and 65535\n");
}

static void
t_err_dup_listen(void **state)
{
	(void)state;
	expect_error(SRV("\tlisten 127.0.0.1:25\n"),
	    "t.conf:4:9: duplicate listen address \"127.0.0.1:25\" (first at "
	    "line 2)\n");
	expect_error(SRV("") "server \"t\" {\n\tmailroot /n\n"
	    "\tlisten 127.000.0.1:25\n}\n",
	    "t.conf:7:9: bad IP address");
	expect_error(SRV("") "server \"t\" {\n\tmailroot /n\n"
	    "\tlisten 127.0.0.1:25\n}\n",
	    "t.conf:7:9: listen address \"127.0.0.1:25\" is already used by "
	    "server \"s\" (line 2)\n");
	expect_error(SRV("\tlisten [::]:25\n\tlisten [0::0]:25\n"),
	    "t.conf:5:9: duplicate listen address \"[::]:25\" (first at "
	    "line 4)\n");
}

/* Servers may share an implicit TLS address (SNI chooses), no other. */
static void
t_shared_tls_listen(void **state)
{
	struct mr_config *cf;

	(void)state;
	cf = parse("pki p { certificate /c; key /k }\n"
	    SRV("\tpki p\n\tlisten 127.0.0.1:465 tls\n")
	    "server \"t\" {\n\tmailroot /n\n\tpki p\n"
	    "\tlisten 127.0.0.1:465 tls\n}\n");
	assert_non_null(cf);
	assert_int_equal(cf->servers[1].listens[0].tls, 1);
	mr_config_free(cf);
	expect_error("pki p { certificate /c; key /k }\n"
	    SRV("\tpki p\n\tlisten 127.0.0.1:465 tls\n")
	    "server \"t\" {\n\tmailroot /n\n\tpki p\n"
	    "\tlisten 127.0.0.1:465\n}\n",
	    "t.conf:11:9: listen address \"127.0.0.1:465\" is already used "
	    "by server \"s\" (line 6)\n");
	expect_error("pki p { certificate /c; key /k }\n"
	    SRV("\tpki p\n\tlisten 127.0.0.1:465 tls\n"
	    "\tlisten 127.0.0.1:465 tls\n"),
	    "t.conf:7:9: duplicate listen address \"127.0.0.1:465\"");
}

static void
t_err_size(void **state)
{
	(void)state;
	expect_error(SRV("\tlimits { message-size 2048Q }\n"),
	    "t.conf:4:24: bad size \"2048Q\" for \"message-size\": use bytes "
	    "or a number with K, M or G\n");
	expect_error(SRV("\tlimits { message-size 99999999999999G }\n"),
	    "t.conf:4:24: size \"99999999999999G\" for \"message-size\" is "
	    "too large\n");
	expect_error(SRV("\tlimits { session-size 99999999999999999999 }\n"),
	    "is too large\n");
	expect_error(SRV("\tlimits { session-size K }\n"),
	    "t.conf:4:24: bad size \"K\"");
}

static void
t_err_duration(void **state)
{
	(void)state;
	expect_error(SRV("\tlimits { idle-timeout 10x }\n"),
	    "t.conf:4:24: bad duration \"10x\" for \"idle-timeout\": use "
	    "seconds or a number with s, m, h or d\n");
	expect_error(SRV("\tdelivery { retry 15m -1 }\n"),
	    "t.conf:4:23: bad duration \"-1\" for \"retry\"");
	expect_error(SRV("\tdelivery { expire outbound 100000d }\n"),
	    "t.conf:4:29: duration \"100000d\" for \"expire\" is too large\n");
	expect_error(SRV("\tdelivery { expire outbound }\n"),
	    "t.conf:4:13: missing argument for \"expire\"\n");
	expect_error(SRV("\tdelivery { expire outbound 1d local }\n"),
	    "t.conf:4:32: missing duration after \"local\"\n");
}

static void
t_err_bool(void **state)
{
	(void)state;
	expect_error(SRV("\tbadmail maybe\n"),
	    "t.conf:4:10: bad boolean \"maybe\" for \"badmail\": expected yes "
	    "or no\n");
	expect_error(SRV("\trelay authenticated 1\n"),
	    "t.conf:4:22: bad boolean \"1\" for \"relay\"");
}

static void
t_err_mailroot(void **state)
{
	(void)state;
	expect_error("server \"s\" {\n\tlisten 127.0.0.1:25\n}\n",
	    "t.conf:1:1: server \"s\" has no mailroot\n");
	expect_error("server \"s\" {\n\tlisten 127.0.0.1:25\n"
	    "\tmailroot var/m\n}\n",
	    "t.conf:3:11: mailroot \"var/m\" is not an absolute path\n");
	expect_error(SRV("") "server \"t\" {\n\tlisten 127.0.0.1:26\n"
	    "\tmailroot /var/m\n}\n",
	    "t.conf:7:11: mailroot \"/var/m\" is already used by server "
	    "\"s\"\n");
}

static void
t_err_server(void **state)
{
	(void)state;
	expect_error("server \"s\" {\n\tmailroot /m\n}\n",
	    "t.conf:1:1: server \"s\" has no listen address\n");
	expect_error(SRV("") "server \"s\" {\n\tlisten 127.0.0.1:26\n"
	    "\tmailroot /n\n}\n",
	    "t.conf:5:8: duplicate server name \"s\" (first at line 1)\n");
}

static void
t_err_alias(void **state)
{
	(void)state;
	expect_error(SRV("\tdomain a.example alias-of b.example\n"
	    "\tdomain c.example local\n"),
	    "t.conf:4:28: domain \"a.example\" is an alias of unknown domain "
	    "\"b.example\"\n");
	expect_error(SRV("\tdomain a.example alias-of b.example\n"
	    "\tdomain b.example remote\n"),
	    "t.conf:4:28: domain \"a.example\" is an alias of \"b.example\", "
	    "which is not a local domain\n");
	expect_error(SRV("\tdomain a.example alias-of\n"),
	    "t.conf:4:19: missing argument for \"alias-of\"\n");
}

static void
t_alias_of_implicit(void **state)
{
	struct mr_config *cf;

	(void)state;
	/* an alias with no local domain sits on the IIS default domain */
	cf = parse_clean("hostname h.example\n"
	    SRV("\tdomain A.Example alias-of H.EXAMPLE\n"));
	assert_int_equal(cf->servers[0].ndomains, 2);
	assert_string_equal(cf->servers[0].domains[0].name, "a.example");
	assert_true(mr_domain_is_local(&cf->servers[0], "a.example"));
	assert_true(mr_domain_is_local(&cf->servers[0], "h.example"));
	mr_config_free(cf);
}

static void
t_err_dup_domain(void **state)
{
	(void)state;
	expect_error(SRV("\tdomain a.example local\n"
	    "\tdomain A.EXAMPLE remote\n"),
	    "t.conf:5:9: duplicate domain \"a.example\" in server \"s\" "
	    "(first at line 4)\n");
}

static void
t_err_refs(void **state)
{
	(void)state;
	expect_error(SRV("\tpki nope\n"), "t.conf:4:6: unknown pki \"nope\"\n");
	expect_error(SRV("\tauth { users nope }\n"),
	    "t.conf:4:15: unknown table \"nope\"\n");
	expect_error(SRV("\tdomain a.example local { aliases al }\n"),
	    "t.conf:4:35: unknown table \"al\"\n");
	expect_error(SRV("\tauth { mechanisms plain }\n"),
	    "t.conf:4:2: auth mechanisms need a users table or a dovecot "
	    "socket\n");
	expect_error(SRV("\tauth { users nope\ndovecot \"/run/a\" }\n"),
	    "t.conf:4:2: auth: \"users\" and \"dovecot\" exclude each "
	    "other\n");
	expect_error(SRV("\tauth { dovecot \"run/a\" }\n"),
	    "t.conf:4:17: bad dovecot socket \"run/a\"");
}

/* auth { dovecot PATH } alone offers both mechanisms */
static void
t_auth_dovecot(void **state)
{
	struct mr_config *cf;

	(void)state;
	cf = parse(SRV("\tauth { dovecot \"/run/dovecot/auth-client\" }\n"));
	assert_non_null(cf);
	assert_string_equal(cf->servers[0].auth.dovecot,
	    "/run/dovecot/auth-client");
	assert_null(cf->servers[0].auth.users);
	assert_true(cf->servers[0].auth.plain && cf->servers[0].auth.login);
	mr_config_free(cf);
}

static void
t_err_limits(void **state)
{
	(void)state;
	expect_error(SRV("\tlimits {\n\t\tmessage-size 20M\n"
	    "\t\tsession-size 10M\n\t}\n"),
	    "t.conf:6:3: session-size (10485760 bytes) is smaller than "
	    "message-size (20971520 bytes)\n");
	expect_error(SRV("\tlimits { message-size 20M }\n"),
	    "t.conf:4:11: session-size (10485760 bytes) is smaller");
	expect_error(SRV("\tlimits { messages-per-connection 0 }\n"),
	    "t.conf:4:35: \"messages-per-connection\" must be between 1 and");
	expect_error(SRV("\tlimits { recipients-per-message 0 }\n"),
	    "t.conf:4:34: \"recipients-per-message\" must be between 1 and");
	expect_error(SRV("\tlimits { client-connections -1 }\n"),
	    "t.conf:4:30: bad number \"-1\" for \"client-connections\"");
	expect_error(SRV("\tlimits { client-connection-rate lots }\n"),
	    "t.conf:4:34: bad number \"lots\" for \"client-connection-rate\"");
	expect_error(SRV("\thop-count many\n"),
	    "t.conf:4:12: bad number \"many\" for \"hop-count\"\n");
}

static void
t_err_enum(void **state)
{
	(void)state;
	expect_error(SRV("\ttls sometimes\n"),
	    "t.conf:4:6: bad value \"sometimes\" for \"tls\": expected none, "
	    "optional or required\n");
	expect_error(SRV("\tlog { format xml }\n"),
	    "t.conf:4:15: bad value \"xml\" for \"format\": expected w3c, "
	    "ncsa, iis or none\n");
	expect_error(SRV("\tlog { rotate yearly }\n"),
	    "t.conf:4:15: bad value \"yearly\" for \"rotate\"");
	expect_error(SRV("\tdelivery { outbound { tls maybe } }\n"),
	    "t.conf:4:28: bad value \"maybe\" for \"tls\": expected none, "
	    "opportunistic, required, verify or fingerprint\n");
	expect_error(SRV("\tconnection permit 1.2.3.4\n"),
	    "t.conf:4:13: bad value \"permit\" for \"connection\"");
	expect_error(SRV("\tlog { fields date cs-bogus }\n"),
	    "t.conf:4:20: unknown log field \"cs-bogus\"\n");
}

static void
t_err_retry(void **state)
{
	(void)state;
	expect_error(SRV("\tdelivery { retry }\n"),
	    "t.conf:4:13: missing argument for \"retry\"\n");
	expect_error(SRV("\tdelivery { retry 1 2 3 4 5 6 7 8 9 }\n"),
	    "t.conf:4:35: too many arguments for \"retry\" (at most 8)\n");
}

static void
t_err_hostname(void **state)
{
	(void)state;
	expect_error("hostname \"bad_name.example\"\n" SRV(""),
	    "t.conf:1:10: bad hostname \"bad_name.example\"\n");
	expect_error(SRV("\tfqdn -a.example\n"),
	    "t.conf:4:7: bad hostname \"-a.example\"\n");
	expect_error(SRV("\tdomain \"a..example\" local\n"),
	    "t.conf:4:9: bad domain name \"a..example\"\n");
	expect_error(SRV("\tconnection allow domain \".bad name\"\n"),
	    "t.conf:4:26: bad domain name \".bad name\"\n");
	expect_error(SRV("\tdelivery { smart-host \"[1.2.3]\" }\n"),
	    "t.conf:4:24: bad host \"[1.2.3]\"");
	expect_error(SRV("\tndr-copy-to postmaster\n"),
	    "t.conf:4:14: bad address \"postmaster\" for \"ndr-copy-to\"");
}

static void
t_err_tls_pki(void **state)
{
	(void)state;
	expect_error(SRV("\tlisten 127.0.0.1:465 tls\n"),
	    "t.conf:4:2: listen with tls needs a pki in server \"s\"\n");
	expect_error(SRV("\ttls required\n"),
	    "t.conf:4:6: tls required needs a pki in server \"s\"\n");
}

static void
t_err_dup_pki_table(void **state)
{
	(void)state;
	expect_error("pki p { certificate /c; key /k }\n"
	    "pki p { certificate /c; key /k }\n" SRV(""),
	    "t.conf:2:5: duplicate pki \"p\" (first at line 1)\n");
	expect_error("table t db:/a\ntable t db:/b\n" SRV(""),
	    "t.conf:2:7: duplicate table \"t\" (first at line 1)\n");
	expect_error("pki p { key /k }\n" SRV(""),
	    "t.conf:1:1: pki \"p\" has no certificate\n");
}

static void
t_err_table_type(void **state)
{
	(void)state;
	expect_error("table t ldap:/a\n" SRV(""),
	    "t.conf:1:9: bad table type \"ldap\": expected db, regex or "
	    "file\n");
	expect_error("table t /a\n" SRV(""),
	    "t.conf:1:9: bad table \"/a\": expected TYPE:PATH\n");
}

static void
t_warn_open_relay(void **state)
{
	(void)state;
	expect_warning(SRV("\trelay allow 0.0.0.0/0\n"),
	    "t.conf:4:14: warning: \"relay allow 0.0.0.0/0\" makes an open "
	    "relay");
	expect_warning(SRV("\trelay allow ::/0\n"),
	    "t.conf:4:14: warning: \"relay allow ::/0\" makes an open relay");
	expect_warning(SRV("\trelay default allow\n"),
	    "t.conf:4:16: warning: \"relay default allow\" makes an open "
	    "relay");
}

/* Every setting that is parsed but not acted on yet is named, at its
 * position; a value that asks for what the daemons already do is not. */
static void
t_inert_warnings(void **state)
{
	(void)state;
	/* once inert, now written (queued/logfmt.c, w3clog.c) */
	mr_config_free(parse(SRV("\tlog { format ncsa; rotate size 10M }\n")));
	if (errlen != 0)
		fail_msg("the NCSA log format was warned about:\n%s", errbuf);
	mr_config_free(parse(SRV("\tlog { format iis }\n")));
	if (errlen != 0)
		fail_msg("the IIS log format was warned about:\n%s", errbuf);
	mr_config_free(parse(SRV("\treverse-dns-lookup no\n"
	    "\tlisten 127.0.0.1:26 proxy-protocol\n"
	    "\tdelivery { smart-host-first-direct yes; delay-notify local 1h\n"
	    "\t\toutbound { auth login u password-file /p } }\n"
	    "\tdomain r.example remote { hold-for-etrn no; auth none }\n"
	    "\tdomain s.example remote { auth plain u password-file /p }\n"
	    "\tdomain h.example remote { hold-for-etrn yes; "
	    "etrn-allow 127.0.0.1 }\n"
	    "\tdomain l.example local { deliver lmtp /run/lmtp }\n"
	    "\tdomain m.example local { deliver maildir /var/mail/%d/%u }\n"
	    "\tmasquerade-domain m.example\n"
	    "\tlog { format w3c; rotate hourly }\n")));
	if (errlen != 0)
		fail_msg("a value mailroot honours was warned about:\n%s",
		    errbuf);
	/* the control socket and its group are implemented */
	mr_config_free(parse("control-group wheel\n"
	    "control-socket /run/mailroot/control\n" SRV("")));
	if (errlen != 0)
		fail_msg("control-group was warned about:\n%s", errbuf);
}

/* Domain rules and reverse-dns-lookup are implemented (smtpd/rdns.c):
 * neither a warning nor an error. */
static void
t_domain_rules_implemented(void **state)
{
	(void)state;
	mr_config_free(parse(SRV("\tconnection deny domain \".bad.example\"\n"
	    "\tconnection allow domain x.example\n"
	    "\trelay deny domain bad.example\n"
	    "\trelay allow domain .good.example\n"
	    "\trelay allow 10.0.0.0/8\n"
	    "\treverse-dns-lookup yes\n")));
	if (errlen != 0)
		fail_msg("domain rules drew a message:\n%s", errbuf);
}

static void
t_err_recovery(void **state)
{
	struct mr_config *cf;

	(void)state;
	/* every error is reported, not just the first */
	cf = parse("hostnme x\n" SRV("\tlisen 1\n\thop-count 0\n"
	    "\tlog { format xml }\n") "user\n");
	assert_null(cf);
	assert_non_null(strstr(errbuf, "t.conf:1:1: unknown keyword"));
	assert_non_null(strstr(errbuf, "t.conf:5:2: unknown keyword"));
	assert_non_null(strstr(errbuf, "t.conf:6:12: \"hop-count\""));
	assert_non_null(strstr(errbuf, "t.conf:7:15: bad value \"xml\""));
	assert_non_null(strstr(errbuf, "t.conf:9:1: missing argument"));
}

/* ---- lookups ---- */

static void
sa4(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
}

static void
sa6(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
}

static void
t_access_check(void **state)
{
	struct mr_config *cf;
	const struct mr_access *c, *r;
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;

	(void)state;
	cf = parse_clean(SRV("\tconnection deny 192.168.1.0/24\n"
	    "\tconnection allow 192.168.0.0/16\n"
	    "\tconnection allow ::ffff:10.0.0.0/104\n"
	    "\tconnection allow 2001:db8::/32\n"
	    "\tconnection allow domain \".corp.example.com\"\n"
	    "\tconnection allow domain \"host.example.org\"\n"
	    "\tconnection default deny\n"
	    "\trelay allow 127.0.0.1\n"));
	c = &cf->servers[0].connection;
	r = &cf->servers[0].relay;
	sa4(&ss, "192.168.1.7");
	assert_int_equal(mr_access_check(c, sa, NULL), 0);
	sa4(&ss, "192.168.2.7");
	assert_int_equal(mr_access_check(c, sa, NULL), 1);
	sa6(&ss, "::ffff:192.168.2.7");
	assert_int_equal(mr_access_check(c, sa, NULL), 1);
	sa4(&ss, "10.9.9.9");
	assert_int_equal(mr_access_check(c, sa, NULL), 1);
	sa6(&ss, "2001:db8:1::5");
	assert_int_equal(mr_access_check(c, sa, NULL), 1);
	sa6(&ss, "2001:db9::5");
	assert_int_equal(mr_access_check(c, sa, NULL), 0);
	sa4(&ss, "8.8.8.8");
	assert_int_equal(mr_access_check(c, sa, NULL), 0);
	assert_int_equal(mr_access_check(c, sa, "a.CORP.example.com"), 1);
	assert_int_equal(mr_access_check(c, sa, "a.corp.example.com."), 1);
	assert_int_equal(mr_access_check(c, sa, "corp.example.com"), 0);
	assert_int_equal(mr_access_check(c, sa, "xcorp.example.com"), 0);
	assert_int_equal(mr_access_check(c, sa, "host.example.org"), 1);
	assert_int_equal(mr_access_check(c, sa, "a.host.example.org"), 0);
	sa4(&ss, "127.0.0.1");
	assert_int_equal(mr_access_check(r, sa, NULL), 1);
	sa6(&ss, "::ffff:127.0.0.1");
	assert_int_equal(mr_access_check(r, sa, NULL), 1);
	sa6(&ss, "::1");
	assert_int_equal(mr_access_check(r, sa, NULL), 0);
	sa4(&ss, "127.0.0.2");
	assert_int_equal(mr_access_check(r, sa, NULL), 0);
	mr_config_free(cf);
}

static void
t_domain_lookup(void **state)
{
	struct mr_config *cf;
	const struct mr_server *s;

	(void)state;
	cf = parse_clean(SRV("\tdomain Example.COM local { deliver maildir "
	    "\"/var/mail/%d/%u\" }\n"
	    "\tdomain example.net alias-of example.com\n"
	    "\tdomain partner.example remote { relay yes }\n"));
	s = &cf->servers[0];
	assert_int_equal(s->ndomains, 3);
	assert_string_equal(s->domains[0].name, "example.com");
	assert_int_equal(s->domains[0].deliver, MR_DELIVER_MAILDIR);
	assert_true(mr_domain_is_local(s, "EXAMPLE.com"));
	assert_true(mr_domain_is_local(s, "example.net"));
	assert_false(mr_domain_is_local(s, "partner.example"));
	assert_false(mr_domain_is_local(s, "other.example"));
	assert_null(mr_config_domain(s, "other.example"));
	assert_int_equal(mr_config_domain(s, "partner.example")->relay, 1);
	check_roundtrip(cf);
	mr_config_free(cf);
}

/* MTA-STS: on by default for MX delivery, its cache where deliverd may
 * write; both settable and printed back. */
static void
t_mta_sts(void **state)
{
	struct mr_config *cf;

	(void)state;
	cf = parse_clean("server \"s\" { listen 127.0.0.1:25; mailroot /m }\n");
	assert_int_equal(cf->servers[0].delivery.outbound.mta_sts, 1);
	assert_string_equal(cf->mta_sts_cache,
	    MR_LOCALSTATEDIR "/lib/mailroot/mta-sts");
	check_roundtrip(cf);
	mr_config_free(cf);
	cf = parse_clean("mta-sts-cache /var/cache/sts\n"
	    "server \"s\" { listen 127.0.0.1:25; mailroot /m\n"
	    "delivery { outbound { mta-sts no } } }\n");
	assert_int_equal(cf->servers[0].delivery.outbound.mta_sts, 0);
	assert_string_equal(cf->mta_sts_cache, "/var/cache/sts");
	check_roundtrip(cf);
	mr_config_free(cf);
	expect_error("mta-sts-cache sts\n" SRV(""),
	    "t.conf:1:15: mta-sts-cache path \"sts\" is not absolute\n");
}

int
main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_teardown(t_mta_sts, teardown),
		cmocka_unit_test_teardown(t_add_missing_headers, teardown),
		cmocka_unit_test_teardown(t_lex_tokens, teardown),
		cmocka_unit_test_teardown(t_lex_unterminated, teardown),
		cmocka_unit_test_teardown(t_lex_control_char, teardown),
		cmocka_unit_test_teardown(t_one_line_blocks, teardown),
		cmocka_unit_test_teardown(t_smart_hosts, teardown),
		cmocka_unit_test_teardown(t_crlf, teardown),
		cmocka_unit_test_teardown(t_example, teardown),
		cmocka_unit_test_teardown(t_shipped, teardown),
		cmocka_unit_test_teardown(t_relay_conf_short, teardown),
		cmocka_unit_test_teardown(t_load_missing, teardown),
		cmocka_unit_test_teardown(t_defaults, teardown),
		cmocka_unit_test_teardown(t_tls_default_with_pki, teardown),
		cmocka_unit_test_teardown(t_sizes_durations, teardown),
		cmocka_unit_test_teardown(t_outbound_xoauth2, teardown),
		cmocka_unit_test_teardown(t_tls_trust, teardown),
		cmocka_unit_test_teardown(t_err_tls_trust, teardown),
		cmocka_unit_test_teardown(t_dane, teardown),
		cmocka_unit_test_teardown(t_outbound_timeouts_and_rate,
		    teardown),
		cmocka_unit_test_teardown(t_remote_domain_inherits_tls,
		    teardown),
		cmocka_unit_test_teardown(t_escapes_roundtrip, teardown),
		cmocka_unit_test_teardown(t_err_unknown_keyword, teardown),
		cmocka_unit_test_teardown(t_err_arguments, teardown),
		cmocka_unit_test_teardown(t_err_braces, teardown),
		cmocka_unit_test_teardown(t_err_ip, teardown),
		cmocka_unit_test_teardown(t_warn_host_bits, teardown),
		cmocka_unit_test_teardown(t_err_port, teardown),
		cmocka_unit_test_teardown(t_err_dup_listen, teardown),
		cmocka_unit_test_teardown(t_shared_tls_listen, teardown),
		cmocka_unit_test_teardown(t_err_size, teardown),
		cmocka_unit_test_teardown(t_err_duration, teardown),
		cmocka_unit_test_teardown(t_err_bool, teardown),
		cmocka_unit_test_teardown(t_err_mailroot, teardown),
		cmocka_unit_test_teardown(t_err_server, teardown),
		cmocka_unit_test_teardown(t_err_alias, teardown),
		cmocka_unit_test_teardown(t_alias_of_implicit, teardown),
		cmocka_unit_test_teardown(t_err_dup_domain, teardown),
		cmocka_unit_test_teardown(t_err_refs, teardown),
		cmocka_unit_test_teardown(t_auth_dovecot, teardown),
		cmocka_unit_test_teardown(t_err_limits, teardown),
		cmocka_unit_test_teardown(t_err_enum, teardown),
		cmocka_unit_test_teardown(t_err_retry, teardown),
		cmocka_unit_test_teardown(t_err_hostname, teardown),
		cmocka_unit_test_teardown(t_err_tls_pki, teardown),
		cmocka_unit_test_teardown(t_err_dup_pki_table, teardown),
		cmocka_unit_test_teardown(t_err_table_type, teardown),
		cmocka_unit_test_teardown(t_warn_open_relay, teardown),
		cmocka_unit_test_teardown(t_inert_warnings, teardown),
		cmocka_unit_test_teardown(t_domain_rules_implemented, teardown),
		cmocka_unit_test_teardown(t_err_recovery, teardown),
		cmocka_unit_test_teardown(t_access_check, teardown),
		cmocka_unit_test_teardown(t_domain_lookup, teardown),
	};

	return cmocka_run_group_tests(t, NULL, NULL);
}
