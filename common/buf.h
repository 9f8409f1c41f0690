/*
 * buf.h - growable, length-carrying byte buffers and a bounds-checked
 * reader over untrusted bytes (IPC payloads, envelope fields).
 *
 * A reader never reads past its end: the first short read sets err and
 * every later read returns zero/NULL, so a decoder checks err once.
 */
#ifndef MR_BUF_H
#define MR_BUF_H

#include <stddef.h>
#include <stdint.h>

struct mr_buf {
	char	*data;		/* always NUL-terminated when non-NULL */
	size_t	 len;
	size_t	 cap;
};

void	 mr_buf_init(struct mr_buf *);
void	 mr_buf_free(struct mr_buf *);
void	 mr_buf_reset(struct mr_buf *);
void	 mr_buf_reserve(struct mr_buf *, size_t more);	/* aborts on ENOMEM */
void	 mr_buf_add(struct mr_buf *, const void *, size_t);
void	 mr_buf_adds(struct mr_buf *, const char *);
void	 mr_buf_printf(struct mr_buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* binary encoding used by IPC payloads: little-endian integers,
 * strings as u32 length + bytes + NUL */
void	 mr_buf_put_u32(struct mr_buf *, uint32_t);
void	 mr_buf_put_u64(struct mr_buf *, uint64_t);
void	 mr_buf_put_str(struct mr_buf *, const char *);	/* NULL = "" */
void	 mr_buf_put_strn(struct mr_buf *, const char *, size_t);

struct mr_rd {
	const unsigned char	*p;
	size_t			 left;
	int			 err;
};

void		 mr_rd_init(struct mr_rd *, const void *, size_t);
uint32_t	 mr_rd_u32(struct mr_rd *);
uint64_t	 mr_rd_u64(struct mr_rd *);
/* returns a pointer into the payload (NUL-terminated, no embedded NUL,
 * at most maxlen bytes) or NULL with err set */
const char	*mr_rd_str(struct mr_rd *, size_t maxlen, size_t *lenp);
/* nonzero when the whole payload was consumed without error */
int		 mr_rd_done(const struct mr_rd *);

void	*mr_xmalloc(size_t);
void	*mr_xcalloc(size_t, size_t);
void	*mr_xreallocarray(void *, size_t, size_t);
char	*mr_xstrdup(const char *);
char	*mr_xstrndup(const char *, size_t);

#endif
