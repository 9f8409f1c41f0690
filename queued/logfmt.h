/*
 * logfmt.h - a transaction-log line in NCSA Common or the Microsoft IIS
 * Log File Format (queued/logfmt.c), CRLF included.
 */
#ifndef MR_LOGFMT_H
#define MR_LOGFMT_H

struct mr_buf;
struct mr_m_log;
struct tm;

void	logfmt_ncsa(struct mr_buf *, const struct mr_m_log *,
	    const struct tm *);
void	logfmt_iis(struct mr_buf *, const struct mr_m_log *,
	    const struct tm *, const char *computer);

#endif
