/*
 * mta_sts_parse.h - MTA-STS (RFC 8461) records and policies as text:
 * the _mta-sts TXT record, the policy file and the MX patterns.
 */
#ifndef MR_MTA_STS_PARSE_H
#define MR_MTA_STS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define MTA_STS_ID_MAX		32		/* RFC 8461 3.1: 1*32 */
#define MTA_STS_MX_MAX		32		/* patterns kept per policy */
#define MTA_STS_NAME_MAX	253		/* a host name, no root dot */
#define MTA_STS_MAX_AGE_MAX	31557600	/* RFC 8461 3.2: a year */
#define MTA_STS_BODY_MAX	(64 * 1024)	/* RFC 8461 3.3 */

enum mta_sts_mode {
	MTA_STS_NONE,
	MTA_STS_TESTING,
	MTA_STS_ENFORCE
};

struct mta_sts_policy {
	enum mta_sts_mode	 mode;
	uint32_t		 max_age;	/* seconds */
	size_t			 nmx;
	char			 mx[MTA_STS_MX_MAX][MTA_STS_NAME_MAX + 1];
};

/*
 * The text of one TXT record (its strings joined).  1: a valid STSv1
 * record, its id in id; 0: not an STSv1 record (RFC 8461 3.1: discarded);
 * -1: starts as STSv1 but is malformed.
 */
int		 mta_sts_txt_parse(const char *txt, size_t len,
		    char id[MTA_STS_ID_MAX + 1]);
/* A policy body: 0 and *out filled, or -1 with *err saying why. */
int		 mta_sts_policy_parse(const char *text, size_t len,
		    struct mta_sts_policy *out, const char **err);
/* Does host (an MX name, any case, a root dot allowed) match a pattern
 * of the policy (RFC 8461 4.1)? */
int		 mta_sts_mx_match(const struct mta_sts_policy *,
		    const char *host);
const char	*mta_sts_mode_name(enum mta_sts_mode);

#endif
