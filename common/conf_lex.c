/*
 * conf_lex.c - the lexer and statement reader of mailroot.conf(5).
 *
 * Security: the file is written by root, but we still treat it as
 * untrusted text: every read is bounded by the end pointer, control
 * characters (NUL included) are refused so no string is cut short, and
 * block nesting is bounded so a hostile file cannot exhaust the stack.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf_lex.h"

/* server { delivery { outbound { } } } is 3 deep */
#define MAX_DEPTH	8

static void
diag(struct mr_cf_diag *d, int line, int col, const char *kind,
    const char *fmt, va_list ap)
{
	if (d->errs == NULL)
		return;
	fprintf(d->errs, "%s:%d:%d: %s", d->file, line, col, kind);
	vfprintf(d->errs, fmt, ap);
	fputc('\n', d->errs);
}

void
mr_cf_error(struct mr_cf_diag *d, int line, int col, const char *fmt, ...)
{
	va_list ap;

	d->nerrors++;
	va_start(ap, fmt);
	diag(d, line, col, "", fmt, ap);
	va_end(ap);
}

void
mr_cf_warn(struct mr_cf_diag *d, int line, int col, const char *fmt, ...)
{
	va_list ap;

	d->nwarnings++;
	va_start(ap, fmt);
	diag(d, line, col, "warning: ", fmt, ap);
	va_end(ap);
}

void
mr_lex_init(struct mr_lex *lx, const char *text, size_t len,
    struct mr_cf_diag *d)
{
	lx->p = text;
	lx->end = text + len;
	lx->line = 1;
	lx->col = 1;
	lx->diag = d;
}

static void
advance(struct mr_lex *lx)
{
	if (*lx->p == '\n') {
		lx->line++;
		lx->col = 1;
	} else
		lx->col++;
	lx->p++;
}

static int
is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f;
}

static int
is_word(unsigned char c)
{
	return c > ' ' && c != 0x7f && strchr("{};\"#", c) == NULL;
}

/* Skips blanks (CR too: files edited on Windows end lines in CRLF). */
static void
skip_blanks(struct mr_lex *lx)
{
	while (lx->p < lx->end) {
		if (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r')
			advance(lx);
		else if (*lx->p == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				advance(lx);
		} else
			break;
	}
}

/* A string ends at its closing quote; it never spans lines. */
static void
lex_string(struct mr_lex *lx, struct mr_token *tok)
{
	struct mr_buf b;
	int bad = 0;

	mr_buf_init(&b);
	mr_buf_add(&b, "", 0);
	advance(lx);
	for (;;) {
		if (lx->p >= lx->end || *lx->p == '\n') {
			mr_cf_error(lx->diag, tok->line, tok->col,
			    "unterminated string");
			goto fail;
		}
		if (*lx->p == '"')
			break;
		if (is_ctl((unsigned char)*lx->p))
			bad = 1;
		if (*lx->p == '\\' && lx->p + 1 < lx->end &&
		    (lx->p[1] == '"' || lx->p[1] == '\\'))
			advance(lx);
		mr_buf_add(&b, lx->p, 1);
		advance(lx);
	}
	advance(lx);
	if (bad) {
		mr_cf_error(lx->diag, tok->line, tok->col,
		    "control character in string");
		goto fail;
	}
	tok->type = MR_TOK_STRING;
	tok->text = b.data;
	return;
fail:
	mr_buf_free(&b);
	tok->type = MR_TOK_ERROR;
}

static void
lex_word(struct mr_lex *lx, struct mr_token *tok)
{
	const char *start = lx->p;

	while (lx->p < lx->end && is_word((unsigned char)*lx->p))
		advance(lx);
	tok->type = MR_TOK_WORD;
	tok->text = mr_xstrndup(start, (size_t)(lx->p - start));
}

void
mr_lex_next(struct mr_lex *lx, struct mr_token *tok)
{
	unsigned char c;

	skip_blanks(lx);
	tok->text = NULL;
	tok->line = lx->line;
	tok->col = lx->col;
	if (lx->p >= lx->end) {
		tok->type = MR_TOK_EOF;
		return;
	}
	c = (unsigned char)*lx->p;
	switch (c) {
	case '\n':
		tok->type = MR_TOK_NL;
		break;
	case '{':
		tok->type = MR_TOK_LBRACE;
		break;
	case '}':
		tok->type = MR_TOK_RBRACE;
		break;
	case ';':
		tok->type = MR_TOK_SEMI;
		break;
	case '"':
		lex_string(lx, tok);
		return;
	default:
		if (is_word(c)) {
			lex_word(lx, tok);
			return;
		}
		mr_cf_error(lx->diag, tok->line, tok->col,
		    "invalid character 0x%02x", c);
		tok->type = MR_TOK_ERROR;
		break;
	}
	advance(lx);
}

/* ---- statement reader ---- */

struct reader {
	struct mr_lex	 lx;
	int		 bad;	/* the statement had a bad token */
};

static void
stmt_add_arg(struct mr_cf_stmt *st, struct mr_token *tok)
{
	struct mr_cf_arg *a;

	st->args = mr_xreallocarray(st->args, st->nargs + 1,
	    sizeof(*st->args));
	a = &st->args[st->nargs++];
	a->text = tok->text;
	a->quoted = tok->type == MR_TOK_STRING;
	a->line = tok->line;
	a->col = tok->col;
	tok->text = NULL;
	if (st->nargs == 1) {
		st->line = tok->line;
		st->col = tok->col;
	}
}

static int	read_block(struct reader *, struct mr_cf_stmt *, int);
static int	open_block(struct reader *, struct mr_cf_stmt *,
		    struct mr_token *, int);

/* Moves a finished statement into parent, or drops it when empty/bad. */
static void
stmt_finish(struct reader *r, struct mr_cf_stmt *parent,
    struct mr_cf_stmt *st)
{
	if (st->nargs == 0 || r->bad)
		mr_cf_stmt_free(st);
	else {
		parent->kids = mr_xreallocarray(parent->kids,
		    parent->nkids + 1, sizeof(*parent->kids));
		parent->kids[parent->nkids++] = *st;
	}
	memset(st, 0, sizeof(*st));
	r->bad = 0;
}

/* NOLINTBEGIN(misc-no-recursion): open_block stops it at MAX_DEPTH */

/*
 * Reads statements into parent until the closing "}" (depth > 0) or the
 * end of the text.  Returns 0 once the end of the text was reached.
 * A "{" on the line after its keyword still opens that keyword's block.
 */
static int
read_block(struct reader *r, struct mr_cf_stmt *parent, int depth)
{
	struct mr_cf_stmt st;
	struct mr_token tok;
	int more, pending = 0;

	memset(&st, 0, sizeof(st));
	for (;;) {
		mr_lex_next(&r->lx, &tok);
		if (pending && tok.type != MR_TOK_NL &&
		    tok.type != MR_TOK_LBRACE) {
			stmt_finish(r, parent, &st);
			pending = 0;
		}
		switch (tok.type) {
		case MR_TOK_WORD:
		case MR_TOK_STRING:
			stmt_add_arg(&st, &tok);
			break;
		case MR_TOK_ERROR:
			r->bad = 1;
			break;
		case MR_TOK_NL:
			pending = st.nargs > 0 || r->bad;
			if (!pending)
				stmt_finish(r, parent, &st);
			break;
		case MR_TOK_SEMI:
			stmt_finish(r, parent, &st);
			break;
		case MR_TOK_LBRACE:
			pending = 0;
			more = open_block(r, &st, &tok, depth);
			stmt_finish(r, parent, &st);
			if (!more)
				return 0;
			break;
		case MR_TOK_RBRACE:
			stmt_finish(r, parent, &st);
			if (depth > 0)
				return 1;
			mr_cf_error(r->lx.diag, tok.line, tok.col,
			    "unexpected \"}\"");
			break;
		case MR_TOK_EOF:
			stmt_finish(r, parent, &st);
			if (depth > 0)
				mr_cf_error(r->lx.diag, tok.line, tok.col,
				    "missing \"}\" at end of file");
			return 0;
		}
	}
}

/*
 * Skips a block nested too deeply, up to its closing "}", by counting
 * braces: recursing would make the file's depth our stack's depth.
 * Returns 0 once the end of the text was reached.
 */
static int
skip_block(struct reader *r)
{
	struct mr_token tok;
	size_t open = 1;

	for (;;) {
		mr_lex_next(&r->lx, &tok);
		free(tok.text);
		switch (tok.type) {
		case MR_TOK_LBRACE:
			open++;
			break;
		case MR_TOK_RBRACE:
			if (--open == 0)
				return 1;
			break;
		case MR_TOK_EOF:
			mr_cf_error(r->lx.diag, tok.line, tok.col,
			    "missing \"}\" at end of file");
			return 0;
		default:
			break;
		}
	}
}

/*
 * Reads the block that tok opens into st; keeps st's own error state.
 * Recursion with read_block stops at MAX_DEPTH: a deeper block is
 * skipped, not read.
 */
static int
open_block(struct reader *r, struct mr_cf_stmt *st, struct mr_token *tok,
    int depth)
{
	int bad = r->bad, more;

	if (depth + 1 >= MAX_DEPTH) {
		mr_cf_error(r->lx.diag, tok->line, tok->col,
		    "blocks nested too deeply");
		st->block = 1;
		r->bad = 1;
		return skip_block(r);
	}
	if (st->nargs == 0) {
		mr_cf_error(r->lx.diag, tok->line, tok->col,
		    "block without a keyword");
		bad = 1;
	} else if (st->block) {
		mr_cf_error(r->lx.diag, tok->line, tok->col,
		    "second block for one statement");
		bad = 1;
	}
	st->block = 1;
	r->bad = 0;
	more = read_block(r, st, depth + 1);
	r->bad = bad;
	return more;
}

/* NOLINTEND(misc-no-recursion) */

void
mr_cf_read(struct mr_cf_diag *d, const char *text, size_t len,
    struct mr_cf_stmt *root)
{
	struct reader r;

	memset(root, 0, sizeof(*root));
	memset(&r, 0, sizeof(r));
	mr_lex_init(&r.lx, text, len, d);
	read_block(&r, root, 0);
}

/* NOLINTBEGIN(misc-no-recursion): trees from mr_cf_read are at most
 * MAX_DEPTH deep */
void
mr_cf_stmt_free(struct mr_cf_stmt *st)
{
	size_t i;

	for (i = 0; i < st->nargs; i++)
		free(st->args[i].text);
	free(st->args);
	for (i = 0; i < st->nkids; i++)
		mr_cf_stmt_free(&st->kids[i]);
	free(st->kids);
	memset(st, 0, sizeof(*st));
}
/* NOLINTEND(misc-no-recursion) */
