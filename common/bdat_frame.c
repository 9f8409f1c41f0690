/*
 * bdat_frame.c - BDAT command arguments and chunk byte counting (see
 * bdat_frame.h).
 *
 * Security: the argument comes from a network client.  Only digits, one
 * optional " LAST" and nothing else are accepted; more than
 * MR_BDAT_DIGITS digits is refused before any arithmetic can overflow.
 * A chunk's length is a count the client chose: the caller must read
 * (or discard) exactly that many bytes, whatever it replies, or the
 * chunk's contents would be read as commands.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "bdat_frame.h"

int
mr_bdat_parse(const char *arg, struct mr_bdat *b)
{
	size_t n = 0;

	memset(b, 0, sizeof(*b));
	while (isdigit((unsigned char)arg[n])) {
		if (n == MR_BDAT_DIGITS)
			return -1;
		b->size = b->size * 10 + (uint64_t)(arg[n] - '0');
		n++;
	}
	if (n == 0)
		return -1;
	if (arg[n] == '\0')
		return 0;
	if (strcasecmp(arg + n, " LAST") != 0)
		return -1;
	b->last = 1;
	return 0;
}

void
mr_chunk_init(struct mr_chunk *c, const struct mr_bdat *b)
{
	c->left = b->size;
}

size_t
mr_chunk_take(struct mr_chunk *c, size_t n)
{
	if ((uint64_t)n > c->left)
		n = (size_t)c->left;
	c->left -= n;
	return n;
}

int
mr_chunk_done(const struct mr_chunk *c)
{
	return c->left == 0;
}
