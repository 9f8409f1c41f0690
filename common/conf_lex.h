/*
 * conf_lex.h - tokens and the statement tree of mailroot.conf(5).
 *
 * The lexer turns bytes into words, quoted strings, braces, ";" and
 * newlines; the reader groups them into statements (a keyword, its
 * arguments, an optional { block }).  Neither knows any keyword: meaning
 * is conf_parse.c's business.
 */
#ifndef MR_CONF_LEX_H
#define MR_CONF_LEX_H

#include <stddef.h>
#include <stdio.h>

/* Where diagnostics go, and how many there were. */
struct mr_cf_diag {
	const char	*file;
	FILE		*errs;
	int		 nerrors;
	int		 nwarnings;
};

/* line, col, then a printf format */
void	mr_cf_error(struct mr_cf_diag *, int, int, const char *, ...)
	    __attribute__((format(printf, 4, 5)));
void	mr_cf_warn(struct mr_cf_diag *, int, int, const char *, ...)
	    __attribute__((format(printf, 4, 5)));

enum mr_tok_type {
	MR_TOK_EOF,
	MR_TOK_WORD,
	MR_TOK_STRING,
	MR_TOK_LBRACE,
	MR_TOK_RBRACE,
	MR_TOK_SEMI,
	MR_TOK_NL,
	MR_TOK_ERROR		/* already reported */
};

struct mr_token {
	enum mr_tok_type	 type;
	char			*text;	/* WORD, STRING: malloc'd */
	int			 line;	/* 1-based */
	int			 col;	/* 1-based, in bytes */
};

struct mr_lex {
	const char		*p;
	const char		*end;
	int			 line;
	int			 col;
	struct mr_cf_diag	*diag;
};

void	mr_lex_init(struct mr_lex *, const char *text, size_t len,
	    struct mr_cf_diag *);
/* Fills tok; the caller frees tok->text. */
void	mr_lex_next(struct mr_lex *, struct mr_token *);

struct mr_cf_arg {
	char	*text;
	int	 quoted;
	int	 line;
	int	 col;
};

struct mr_cf_stmt {
	struct mr_cf_arg	*args;	/* args[0] is the keyword */
	size_t			 nargs;
	int			 block;	/* followed by { ... } */
	struct mr_cf_stmt	*kids;	/* the block's statements */
	size_t			 nkids;
	int			 line;	/* of the keyword */
	int			 col;
};

/*
 * Reads the whole text into root->kids.  Syntax errors (unterminated
 * string, unbalanced braces) are reported and the offending statement
 * dropped; reading goes on.
 */
void	mr_cf_read(struct mr_cf_diag *, const char *text, size_t len,
	    struct mr_cf_stmt *root);
void	mr_cf_stmt_free(struct mr_cf_stmt *);

#endif
