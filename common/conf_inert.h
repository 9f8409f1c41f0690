/*
 * conf_inert.h - warnings for settings that are parsed but not yet
 * implemented, and errors for those whose inertness opens access
 * (conf_inert.c).
 */
#ifndef MR_CONF_INERT_H
#define MR_CONF_INERT_H

#include "conf_lex.h"

/* Reports, through d, every inert setting in the statement tree. */
void	mr_cf_inert(struct mr_cf_diag *, const struct mr_cf_stmt *root);

#endif
