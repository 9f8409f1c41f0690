/*
 * smtp_cmd.h - parsing one SMTP command line into a typed command.
 *
 * Parse, then act: smtpd calls mr_smtp_parse on every line a client sends
 * and uses only the resulting structure.  On a syntax error the structure
 * carries the reply code, enhanced status and text to send.
 */
#ifndef MR_SMTP_CMD_H
#define MR_SMTP_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "bdat_frame.h"
#include "dsn_param.h"
#include "proto.h"		/* enum mr_body */

enum mr_verb {
	MR_V_UNKNOWN = 0,
	MR_V_EHLO, MR_V_HELO, MR_V_MAIL, MR_V_RCPT, MR_V_DATA, MR_V_RSET,
	MR_V_NOOP, MR_V_QUIT, MR_V_VRFY, MR_V_HELP, MR_V_STARTTLS,
	MR_V_AUTH, MR_V_ETRN, MR_V_EXPN, MR_V_TURN,
	MR_V_BDAT
};


#define MR_SMTP_LINE_MAX	2048	/* command line incl. parameters */

struct mr_smtp_cmd {
	enum mr_verb	 verb;
	const char	*arg;		/* text after the verb (HELO name..) */
	struct mr_path	 path;		/* MAIL / RCPT */
	int		 has_size;
	uint64_t	 size;		/* MAIL SIZE= (RFC 1870) */
	enum mr_body	 body;		/* MAIL BODY= (RFC 6152) */
	int		 smtputf8;	/* MAIL SMTPUTF8 (RFC 6531) */
	struct mr_bdat	 bdat;		/* BDAT (RFC 3030) */
	/* DSN (RFC 3461): MAIL RET, ENVID; RCPT NOTIFY, ORCPT */
	int		 has_dsn;	/* one of them was given */
	struct mr_dsn_mail dsn_mail;
	struct mr_dsn_rcpt dsn_rcpt;
	/* set when the line is not valid: the reply to send */
	int		 code;		/* 0 = valid */
	const char	*status;	/* "5.5.4" */
	const char	*text;
};

/*
 * Parses line (len bytes, CRLF removed; must be NUL-terminated at len).
 * esmtp says whether EHLO was used (parameters need it).  Returns 0 for a
 * valid command, else the reply code also stored in cmd->code.
 */
int	mr_smtp_parse(const char *line, size_t len, int esmtp,
	    struct mr_smtp_cmd *cmd);

#endif
