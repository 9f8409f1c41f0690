/*
 * logfmt.c - one transaction-log line in the two fixed formats IIS
 * offered beside W3C Extended (IIS-MODEL.md section 7; the W3C line is
 * w3clog.c's): NCSA Common and the Microsoft IIS Log File Format.
 *
 *   NCSA: c-ip - user [18/Aug/2006:13:17:37 +0000] "MAIL -?FROM:<a@b> SMTP"
 *         250 42
 *   IIS:  c-ip, user, 8/18/06, 13:17:37, SMTPSVC1, host, s-ip,
 *         time-taken, cs-bytes, sc-bytes, status, 0, MAIL FROM, -,
 *         FROM:<a@b>,
 *
 * user is the authenticated name, else the name given in HELO/EHLO (the
 * "client domain name" IIS wrote).  Times are UTC.  The IIS request type
 * of MAIL and RCPT is "MAIL FROM" and "RCPT TO", as Microsoft's examples
 * of the format show.
 *
 * Security: the values come from smtpd, decoded by ipc_msg.c (no control
 * bytes).  Here every byte that could end a field -- a space in NCSA's
 * unquoted fields, a '"' in its quoted request, a ',' in the IIS format,
 * anything outside printable ASCII -- becomes '+', so no value can add
 * a field or a line.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "ipc_msg.h"
#include "logfmt.h"

static const char *const months[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
	"Oct", "Nov", "Dec"
};

/* s with each byte in bad (and each byte outside printable ASCII) as
 * '+'; "-" when empty. */
static void
put_clean(struct mr_buf *b, const char *s, const char *bad)
{
	if (s == NULL || *s == '\0') {
		mr_buf_adds(b, "-");
		return;
	}
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		mr_buf_add(b, c < 0x20 || c >= 0x7f || strchr(bad, c) != NULL ?
		    "+" : s, 1);
	}
}

/* The arguments as the client wrote them: smtpd sends them as IIS's
 * W3C query, the separating space already a '+'. */
static const char *
args_of(const struct mr_m_log *m)
{
	return m->args[0] == '+' ? m->args + 1 : m->args;
}

static const char *
user_of(const struct mr_m_log *m)
{
	return m->user[0] != '\0' ? m->user : m->helo;
}

void
logfmt_ncsa(struct mr_buf *b, const struct mr_m_log *m, const struct tm *tm)
{
	put_clean(b, m->client_ip, " ");
	mr_buf_adds(b, " - ");
	put_clean(b, user_of(m), " ");
	mr_buf_printf(b, " [%02d/%s/%04d:%02d:%02d:%02d +0000] \"",
	    tm->tm_mday, months[tm->tm_mon % 12], tm->tm_year + 1900,
	    tm->tm_hour, tm->tm_min, tm->tm_sec);
	put_clean(b, m->method, " \"");
	if (*args_of(m) != '\0') {
		mr_buf_adds(b, " -?");
		put_clean(b, args_of(m), " \"");
	} else
		mr_buf_adds(b, " -");
	mr_buf_printf(b, " SMTP\" %u %llu\r\n", m->status,
	    (unsigned long long)m->sc_bytes);
}

static void
put_iis(struct mr_buf *b, const char *s)
{
	put_clean(b, s, ",");
	mr_buf_adds(b, ", ");
}

void
logfmt_iis(struct mr_buf *b, const struct mr_m_log *m, const struct tm *tm,
    const char *computer)
{
	char v[64];

	put_iis(b, m->client_ip);
	put_iis(b, user_of(m));
	mr_buf_printf(b, "%d/%d/%02d, %d:%02d:%02d, SMTPSVC%u, ",
	    tm->tm_mon + 1, tm->tm_mday, tm->tm_year % 100, tm->tm_hour,
	    tm->tm_min, tm->tm_sec, m->server + 1);
	put_iis(b, computer);
	put_iis(b, m->server_ip);
	mr_buf_printf(b, "%u, %llu, %llu, %u, 0, ", m->time_taken,
	    (unsigned long long)m->cs_bytes, (unsigned long long)m->sc_bytes,
	    m->status);
	if (strcasecmp(m->method, "MAIL") == 0 ||
	    strcasecmp(m->method, "RCPT") == 0) {
		snprintf(v, sizeof(v), "%s %s", m->method,
		    m->method[0] == 'M' || m->method[0] == 'm' ? "FROM" : "TO");
		put_iis(b, v);
	} else
		put_iis(b, m->method);
	put_iis(b, NULL);	/* target of operation */
	put_clean(b, args_of(m), ",");
	mr_buf_adds(b, ",\r\n");
}
