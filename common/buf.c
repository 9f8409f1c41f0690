/*
 * buf.c - growable buffers and the bounds-checked payload reader.
 *
 * Security: mr_rd_* are the only way IPC payloads are decoded; they check
 * every length against what is left before touching a byte.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

void *
mr_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		mr_panic("out of memory (%zu bytes)", n);
	return p;
}

void *
mr_xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (p == NULL)
		mr_panic("out of memory (%zu x %zu bytes)", n, sz);
	return p;
}

void *
mr_xreallocarray(void *old, size_t n, size_t sz)
{
	size_t bytes;
	void *p;

	if (sz && n > SIZE_MAX / sz)
		mr_panic("allocation overflow (%zu x %zu)", n, sz);
	bytes = n * sz;
	p = realloc(old, bytes ? bytes : 1);
	if (p == NULL)
		mr_panic("out of memory (%zu x %zu bytes)", n, sz);
	return p;
}

char *
mr_xstrdup(const char *s)
{
	return mr_xstrndup(s, strlen(s));
}

char *
mr_xstrndup(const char *s, size_t n)
{
	char *p = mr_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
mr_buf_init(struct mr_buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void
mr_buf_free(struct mr_buf *b)
{
	free(b->data);
	mr_buf_init(b);
}

void
mr_buf_reset(struct mr_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
mr_buf_reserve(struct mr_buf *b, size_t more)
{
	size_t need, cap;

	if (more > SIZE_MAX - b->len - 1)
		mr_panic("buffer overflow");
	need = b->len + more + 1;
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	b->data = mr_xreallocarray(b->data, cap, 1);
	b->cap = cap;
}

void
mr_buf_add(struct mr_buf *b, const void *p, size_t n)
{
	mr_buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
mr_buf_adds(struct mr_buf *b, const char *s)
{
	mr_buf_add(b, s, strlen(s));
}

void
mr_buf_printf(struct mr_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* one pass when it fits in the room left (the common case: a
	 * buffer that grows by doubling), a second one when it does not */
	va_start(ap, fmt);
	n = vsnprintf(b->data ? b->data + b->len : NULL,
	    b->data ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		mr_panic("mr_buf_printf: bad format");
	if (b->data == NULL || (size_t)n >= b->cap - b->len) {
		mr_buf_reserve(b, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void
mr_buf_put_u32(struct mr_buf *b, uint32_t v)
{
	unsigned char x[4];

	x[0] = v & 0xff;
	x[1] = (v >> 8) & 0xff;
	x[2] = (v >> 16) & 0xff;
	x[3] = (v >> 24) & 0xff;
	mr_buf_add(b, x, 4);
}

void
mr_buf_put_u64(struct mr_buf *b, uint64_t v)
{
	mr_buf_put_u32(b, (uint32_t)(v & 0xffffffffu));
	mr_buf_put_u32(b, (uint32_t)(v >> 32));
}

void
mr_buf_put_strn(struct mr_buf *b, const char *s, size_t n)
{
	if (n > UINT32_MAX - 1)
		mr_panic("string too long for encoding");
	mr_buf_put_u32(b, (uint32_t)n);
	mr_buf_add(b, s, n);
	mr_buf_add(b, "", 1);
}

void
mr_buf_put_str(struct mr_buf *b, const char *s)
{
	if (s == NULL)
		s = "";
	mr_buf_put_strn(b, s, strlen(s));
}

void
mr_rd_init(struct mr_rd *r, const void *p, size_t n)
{
	r->p = p;
	r->left = n;
	r->err = 0;
}

uint32_t
mr_rd_u32(struct mr_rd *r)
{
	uint32_t v;

	if (r->err || r->left < 4) {
		r->err = 1;
		return 0;
	}
	v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 |
	    (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
	r->p += 4;
	r->left -= 4;
	return v;
}

uint64_t
mr_rd_u64(struct mr_rd *r)
{
	uint64_t lo = mr_rd_u32(r);
	uint64_t hi = mr_rd_u32(r);

	return r->err ? 0 : (lo | hi << 32);
}

const char *
mr_rd_str(struct mr_rd *r, size_t maxlen, size_t *lenp)
{
	const char *s;
	uint32_t n = mr_rd_u32(r);

	if (r->err || n > maxlen || (size_t)n >= r->left ||
	    r->p[n] != '\0' || memchr(r->p, '\0', n) != NULL) {
		r->err = 1;
		return NULL;
	}
	s = (const char *)r->p;
	r->p += (size_t)n + 1;
	r->left -= (size_t)n + 1;
	if (lenp)
		*lenp = n;
	return s;
}

int
mr_rd_done(const struct mr_rd *r)
{
	return !r->err && r->left == 0;
}
