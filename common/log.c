/*
 * log.c - stderr or syslog output with a process identity.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_ident = "mailroot";
static int log_foreground = 1;

void
mr_log_init(const char *ident, int foreground)
{
	log_ident = ident;
	log_foreground = foreground;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
mr_vlog(int prio, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_foreground) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s[%ld]: %s\n", when,
		    ts.tv_nsec / 1000000, log_ident, (long)getpid(), msg);
	} else
		syslog(prio, "%s", msg);
}

void
mr_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mr_vlog(prio, fmt, ap);
	va_end(ap);
}

void
mr_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mr_vlog(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}

void
mr_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mr_vlog(LOG_CRIT, fmt, ap);
	va_end(ap);
	abort();
}
