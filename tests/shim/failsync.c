/*
 * failsync.c - an LD_PRELOAD shim for the tests: a disk whose writeback
 * fails, with the error reporting of Linux (errseq, since 4.13).
 *
 * MAILROOT_FAILSYNC_PREFIX is a directory; MAILROOT_FAILSYNC_TOGGLE a file
 * whose presence means "writeback under the prefix failed" and whose text
 * is the time of that failure in nanoseconds (CLOCK_REALTIME).  As the
 * kernel does, the failure is reported
 *   - by fsync/fdatasync, and by sync_file_range when it waits
 *     (SYNC_FILE_RANGE_WAIT_AFTER), once to each descriptor opened
 *     before it;
 *   - by syncfs only through a descriptor opened before it;
 * and never to a descriptor opened after it.  Removing the toggle clears
 * the fault.  Descriptors are known by the open/openat calls that made
 * them (a descriptor received or duplicated is never failed).
 *
 * Test code only: built by tests/integration/test_commit_errors.py, never
 * installed.
 */
#define _GNU_SOURCE 1

#include <sys/stat.h>
#include <sys/syscall.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXFD	65536

struct fdrec {
	int64_t	opened;		/* ns; 0 = not under the prefix */
	int64_t	reported;	/* failure time already reported */
};

static struct fdrec fds[MAXFD];

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The time of the failure, 0 if there is none. */
static int64_t
failure(void)
{
	const char *t = getenv("MAILROOT_FAILSYNC_TOGGLE");
	char buf[32];
	ssize_t n;
	int fd;

	if (t == NULL)
		return 0;
	fd = (int)syscall(SYS_openat, AT_FDCWD, t, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

static void
track(int fd, const char *path)
{
	const char *pre = getenv("MAILROOT_FAILSYNC_PREFIX");

	if (fd < 0 || fd >= MAXFD)
		return;
	fds[fd].reported = 0;
	fds[fd].opened = pre != NULL && path[0] == '/' &&
	    strncmp(path, pre, strlen(pre)) == 0 ? now_ns() : 0;
}

/* Reports the failure to fd once (fsync) or as often as asked (syncfs). */
static int
failed(int fd, int once)
{
	int64_t f;

	if (fd < 0 || fd >= MAXFD || fds[fd].opened == 0)
		return 0;
	if ((f = failure()) == 0 || fds[fd].opened >= f)
		return 0;
	if (once && fds[fd].reported == f)
		return 0;
	fds[fd].reported = f;
	errno = EIO;
	return 1;
}

typedef int (*open_fn)(const char *, int, ...);
typedef int (*sync_fn)(int);
typedef int (*range_fn)(int, off_t, off_t, unsigned int);

#define REAL(name, type) \
	static type real; \
	if (real == NULL) \
		real = (type)dlsym(RTLD_NEXT, name)

static mode_t
mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int
open(const char *path, int flags, ...)
{
	REAL("open", open_fn);
	va_list ap;
	int fd;

	va_start(ap, flags);
	fd = real(path, flags, mode_arg(flags, ap));
	va_end(ap);
	track(fd, path);
	return fd;
}

int
open64(const char *path, int flags, ...)
{
	REAL("open64", open_fn);
	va_list ap;
	int fd;

	va_start(ap, flags);
	fd = real(path, flags, mode_arg(flags, ap));
	va_end(ap);
	track(fd, path);
	return fd;
}

int
fsync(int fd)
{
	REAL("fsync", sync_fn);

	return failed(fd, 1) ? -1 : real(fd);
}

int
fdatasync(int fd)
{
	REAL("fdatasync", sync_fn);

	return failed(fd, 1) ? -1 : real(fd);
}

int
syncfs(int fd)
{
	REAL("syncfs", sync_fn);

	return failed(fd, 0) ? -1 : real(fd);
}

int
sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	REAL("sync_file_range", range_fn);

	if ((flags & SYNC_FILE_RANGE_WAIT_AFTER) && failed(fd, 1))
		return -1;
	return real(fd, off, n, flags);
}
