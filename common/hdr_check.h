/*
 * hdr_check.h - header checks: each header field of a message, unfolded,
 * looked up in a table (a "regex" table, typically) whose result is an
 * action: REJECT, DISCARD, HOLD, or OK/DUNNO (no action), then an
 * optional text.  A pure function of the bytes and the lookup.
 */
#ifndef MR_HDR_CHECK_H
#define MR_HDR_CHECK_H

#include <stddef.h>

#include "table.h"

#define MR_HC_SCAN_MAX	(256 * 1024)	/* header bytes examined */
#define MR_HC_FIELD_MAX	4000		/* bytes of a field matched */
#define MR_HC_TEXT_MAX	200		/* the reason given */

enum mr_hc_action {
	MR_HC_NONE = 0,
	MR_HC_HOLD,		/* kept in the queue, not delivered */
	MR_HC_DISCARD,		/* accepted, then dropped */
	MR_HC_REJECT,		/* refused at the end of DATA (5xx) */
	MR_HC_TEMPFAIL		/* the table failed: refused for now (4xx) */
};

struct mr_hc_result {
	enum mr_hc_action action;
	char		 text[MR_HC_TEXT_MAX + 1];	/* printable ASCII */
	char		 field[64 + 1];	/* the start of the field, for logs */
	unsigned	 bad;		/* results with an unknown action */
};

/* lookup(arg, key, &val): as mr_tbl_lookup, *val malloc'd when found */
typedef enum mr_table_res (*mr_hc_lookup)(void *, const char *, char **);

/*
 * Checks the header section at the start of msg (len bytes, CRLF or LF
 * line ends): the first REJECT or DISCARD decides; a HOLD is kept while
 * later fields are checked; a failed lookup is MR_HC_TEMPFAIL.  Only the
 * first MR_HC_SCAN_MAX bytes are read.
 */
void	mr_hc_eval(const char *msg, size_t len, mr_hc_lookup, void *arg,
	    struct mr_hc_result *);
const char *mr_hc_name(enum mr_hc_action);

#endif
