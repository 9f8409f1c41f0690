/*
 * util.c - small system helpers: full writes, directory fsync, queue ids,
 * bounded file reads, host:port splitting.
 */
#include "config.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "util.h"

int
mr_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, s, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int
mr_fsync_dir(const char *path)
{
	int fd, rc, saved;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
mr_syncfs_dir(const char *path)
{
	int fd, rc, saved;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
#ifdef HAVE_SYNCFS
	rc = syncfs(fd);
#else
	sync();
	rc = 0;
#endif
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/*
 * Linux reports a file's writeback errors to every descriptor opened
 * before them, through fsync, fdatasync and the waiting half of
 * sync_file_range alike; only the last leaves the device's write cache
 * alone.  An fdatasync on a file the flush of its file system left
 * clean still flushes that cache (ext4 does so on every call), which
 * costs as much as the flush itself, once per file.
 */
int
mr_write_errors(int fd)
{
#ifdef HAVE_SYNC_FILE_RANGE
	return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE |
	    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
#else
	return fdatasync(fd);
#endif
}

/*
 * The bytes go to ".NAME.tmp" beside path (made anew, never through a
 * link), are flushed and renamed over path: a reader sees no file or the
 * whole one, never a part.
 */
int
mr_write_file_atomic(const char *path, const void *data, size_t len,
    mode_t mode)
{
	const char *slash = strrchr(path, '/');
	char tmp[4096];
	int fd, n, saved;

	if (slash != NULL)
		n = snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp",
		    (int)(slash - path), path, slash + 1);
	else
		n = snprintf(tmp, sizeof(tmp), ".%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	(void)unlink(tmp);	/* left by a crash */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd == -1)
		return -1;
	if (mr_write_all(fd, data, len) == -1 || fsync(fd) == -1)
		goto fail;
	n = close(fd);
	fd = -1;
	if (n == -1 || rename(tmp, path) == -1)
		goto fail;
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	(void)unlink(tmp);
	errno = saved;
	return -1;
}

int
mr_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1)
		return -1;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int
mr_set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl == -1)
		return -1;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	return fcntl(fd, F_SETFD, fl);
}

uint64_t
mr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * 11 hex digits of microseconds since the epoch keep ids sortable by
 * arrival; 13 more of randomness keep them unique across hosts and
 * within one microsecond.
 */
void
mr_queue_id(char *buf)
{
	static const char hex[] = "0123456789ABCDEF";
	struct timespec ts;
	unsigned char rnd[7];
	uint64_t us;
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	for (i = 10; i >= 0; i--) {
		buf[i] = hex[us & 0xf];
		us >>= 4;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		/* never expected on Linux; fall back to the clock */
		memset(rnd, 0, sizeof(rnd));
		memcpy(rnd, &ts.tv_nsec, sizeof(rnd) < sizeof(ts.tv_nsec) ?
		    sizeof(rnd) : sizeof(ts.tv_nsec));
	}
	for (i = 0; i < 13; i++)
		buf[11 + i] = hex[(rnd[i / 2] >> ((i & 1) * 4)) & 0xf];
	buf[MR_QID_LEN] = '\0';
}

char *
mr_read_fd(int fd, size_t max, size_t *lenp)
{
	struct mr_buf b;
	char chunk[8192];
	off_t off = 0;
	ssize_t n;

	mr_buf_init(&b);
	mr_buf_reserve(&b, 0);
	for (;;) {
		n = pread(fd, chunk, sizeof(chunk), off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			mr_buf_free(&b);
			return NULL;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			mr_buf_free(&b);
			errno = EFBIG;
			return NULL;
		}
		mr_buf_add(&b, chunk, (size_t)n);
		off += n;
	}
	if (lenp)
		*lenp = b.len;
	return b.data;
}

char *
mr_read_file(const char *path, size_t max, size_t *lenp)
{
	char *p;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return NULL;
	p = mr_read_fd(fd, max, lenp);
	saved = errno;
	close(fd);
	errno = saved;
	return p;
}

static int
parse_port(const char *s, unsigned *port)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

int
mr_split_hostport(const char *s, unsigned def_port, char **host,
    unsigned *port)
{
	const char *colon;

	*port = def_port;
	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || end == s + 1)
			return -1;
		if (end[1] == ':') {
			if (parse_port(end + 2, port) == -1)
				return -1;
		} else if (end[1] != '\0')
			return -1;
		*host = mr_xstrndup(s, (size_t)(end - s + 1));
		return 0;
	}
	colon = strchr(s, ':');
	if (colon != NULL) {
		if (colon == s || parse_port(colon + 1, port) == -1)
			return -1;
		*host = mr_xstrndup(s, (size_t)(colon - s));
	} else {
		if (*s == '\0')
			return -1;
		*host = mr_xstrdup(s);
	}
	return 0;
}

uint32_t
mr_hash_str(const char *s)
{
	uint32_t h = 2166136261U;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619U;
	return h;
}
