/*
 * log.h - logging for every mailroot process.
 *
 * Messages go to stderr (foreground, -d) or syslog. Three failure levels
 * (STYLE.md): mr_panic for our own broken invariant (abort), mr_fatal for
 * a broken environment at start-up (exit 1), and plain logging for a
 * misbehaving peer, which the caller then drops.
 */
#ifndef MR_LOG_H
#define MR_LOG_H

#include <stdarg.h>
#include <syslog.h>

void	mr_log_init(const char *ident, int foreground);
void	mr_log(int prio, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	mr_vlog(int prio, const char *fmt, va_list ap);
void	mr_fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	mr_panic(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#define mr_info(...)	mr_log(LOG_INFO, __VA_ARGS__)
#define mr_warn(...)	mr_log(LOG_WARNING, __VA_ARGS__)
#define mr_err(...)	mr_log(LOG_ERR, __VA_ARGS__)
#define mr_debug(...)	mr_log(LOG_DEBUG, __VA_ARGS__)

#endif
