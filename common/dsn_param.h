/*
 * dsn_param.h - the DSN parameters of MAIL and RCPT (RFC 3461 section 4):
 * RET and ENVID, NOTIFY and ORCPT, parsed and validated into a typed
 * structure.  Values stay xtext-encoded, as they are passed on to a next
 * hop and quoted in a report.
 */
#ifndef MR_DSN_PARAM_H
#define MR_DSN_PARAM_H

#include <stddef.h>

#define MR_ENVID_MAX	100	/* RFC 3461 4.4 */
#define MR_ORCPT_MAX	500	/* RFC 3461 4.2 */

enum mr_dsn_ret { MR_RET_NONE = 0, MR_RET_FULL, MR_RET_HDRS };

#define MR_NOTIFY_SUCCESS	0x1
#define MR_NOTIFY_FAILURE	0x2
#define MR_NOTIFY_DELAY		0x4
#define MR_NOTIFY_NEVER		0x8

struct mr_dsn_mail {
	enum mr_dsn_ret	 ret;
	int		 has_envid;
	char		 envid[MR_ENVID_MAX + 1];	/* xtext */
};

struct mr_dsn_rcpt {
	unsigned	 notify;	/* 0: not given */
	char		 orcpt[MR_ORCPT_MAX + 1];	/* "type;xtext" or "" */
};

/* 1 when bits are a NOTIFY value (0: not given). */
int	mr_dsn_notify_valid(unsigned bits);
/* 1 when p (n bytes) is an ORCPT value "addr-type;xtext". */
int	mr_dsn_orcpt_valid(const char *p, size_t n);
/* 1 when p is an ENVID value (xtext, 1..MR_ENVID_MAX bytes). */
int	mr_dsn_envid_valid(const char *p, size_t n);
/* 1 when p (n bytes) is xtext (RFC 3461 4: "!".."~" but "+" and "=", or
 * "+" and two upper-case hex digits). */
int	mr_xtext_valid(const char *p, size_t n);
/*
 * One parameter "KEY=VALUE" (n bytes) of MAIL or RCPT: 1 when it is a DSN
 * parameter and valid (stored), 0 when it is none of them, -1 when it is
 * malformed or given twice (*err says why, for a 501 5.5.4).
 */
int	mr_dsn_mail_param(const char *p, size_t n, struct mr_dsn_mail *,
	    const char **err);
int	mr_dsn_rcpt_param(const char *p, size_t n, struct mr_dsn_rcpt *,
	    const char **err);

#endif
