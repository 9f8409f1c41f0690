/*
 * test_sandbox.c - the seccomp and Landlock limits, applied in a forked
 * child so the test runner itself stays free.  A call outside a
 * process's allow-list kills it with SIGSYS.
 */
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/landlock.h>

#include <cmocka.h>

#include "sandbox.h"

/* x86_64's x32 numbering: the same calls with this bit set */
#define X32_SYSCALL_BIT	0x40000000

/* Runs fn in a child; returns its wait status. */
static int
child_status(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg));
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/* Runs fn in a child; returns its exit status (0 = all checks held). */
static int
in_child(int (*fn)(void *), void *arg)
{
	int status = child_status(fn, arg);

	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* fn must be killed by the filter (SIGSYS) */
static void
assert_killed(int (*fn)(void *), void *arg)
{
	int status = child_status(fn, arg);

	if (!WIFSIGNALED(status))
		fail_msg("not killed: exit status %d", WEXITSTATUS(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

static int
landlock_available(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION) > 0;
}

static int
child_exec_denied(void *arg)
{
	char *argv[] = { "/bin/true", NULL };

	(void)arg;
	mr_sandbox_syscalls("test", MR_PROC_SMTPD);
	execv("/bin/true", argv);
	return 1;
}

static void
t_exec_denied(void **state)
{
	(void)state;
	if (mr_sandbox_relaxed())
		skip();
	assert_killed(child_exec_denied, NULL);
}

static int
child_ptrace_denied(void *arg)
{
	(void)arg;
	mr_sandbox_syscalls("test", MR_PROC_DELIVERD);
	(void)syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
	return 1;
}

static void
t_ptrace_denied(void **state)
{
	(void)state;
	if (mr_sandbox_relaxed())
		skip();
	assert_killed(child_ptrace_denied, NULL);
}

/* ordinary work goes on under every process's list */
static int
child_ordinary(void *arg)
{
	mr_sandbox_syscalls("test", *(enum mr_proc *)arg);
	return getpid() > 0 && write(-1, "", 0) == -1 && errno == EBADF ?
	    0 : 1;
}

static void
t_ordinary_work(void **state)
{
	enum mr_proc p;

	(void)state;
	for (p = MR_PROC_SMTPD; p < MR_PROC_COUNT; p++)
		assert_int_equal(in_child(child_ordinary, &p), 0);
}

/*
 * A call in x86_64's x32 numbering (the number with bit 30 set) used to
 * pass a filter that compared numbers only; unshare(0) does nothing, so
 * only the filter can stop it.
 */
static int
child_x32(void *arg)
{
	(void)arg;
	mr_sandbox_syscalls("test", MR_PROC_QUEUED);
	(void)syscall(SYS_unshare | X32_SYSCALL_BIT, 0);
	return 1;
}

static void
t_x32_denied(void **state)
{
	(void)state;
#if defined(__x86_64__)
	if (mr_sandbox_relaxed())
		skip();
	assert_killed(child_x32, NULL);
#else
	skip();
#endif
}

/* smtpd opens nothing: an open fails with EACCES, not a death */
static int
child_smtpd_open(void *arg)
{
	(void)arg;
	mr_sandbox_syscalls("test", MR_PROC_SMTPD);
	if (open("/etc/passwd", O_RDONLY) != -1)
		return 1;
	return errno == EACCES ? 0 : 2;
}

static void
t_smtpd_open(void **state)
{
	(void)state;
	if (mr_sandbox_relaxed())
		skip();
	assert_int_equal(in_child(child_smtpd_open, NULL), 0);
}

static void *
thread_main(void *arg)
{
	return arg;
}

/* queued starts threads (clone3 says ENOSYS, glibc falls back to clone
 * with CLONE_THREAD) but cannot fork */
static int
child_threads(void *arg)
{
	static int marker;
	pthread_t t;
	void *out = NULL;

	(void)arg;
	mr_sandbox_syscalls("test", MR_PROC_QUEUED);
	if (pthread_create(&t, NULL, thread_main, &marker) != 0 ||
	    pthread_join(t, &out) != 0 || out != &marker)
		return 1;
	(void)fork();
	return 2;
}

static void
t_threads_not_fork(void **state)
{
	(void)state;
	if (mr_sandbox_relaxed())
		skip();
	assert_killed(child_threads, NULL);
}

static int
child_no_files(void *arg)
{
	int fd;

	(void)arg;
	fd = open("/etc/passwd", O_RDONLY);	/* before: allowed */
	if (fd == -1)
		return 1;
	if (mr_sandbox_files("test", NULL, NULL) != 1)
		return 2;
	if (open("/etc/passwd", O_RDONLY) != -1 || errno != EACCES)
		return 3;
	/* a descriptor opened before still works */
	return read(fd, (char[1]){ 0 }, 1) == 1 ? 0 : 4;
}

static void
t_no_files(void **state)
{
	(void)state;
	if (!landlock_available() || mr_sandbox_relaxed())
		skip();
	assert_int_equal(in_child(child_no_files, NULL), 0);
}

static int
child_rw_dir(void *arg)
{
	const char *dir = arg;
	const char *const rw[] = { dir, NULL };
	const char *const ro[] = { "/etc", NULL };
	char path[512];
	int fd;

	if (mr_sandbox_files("test", ro, rw) != 1)
		return 1;
	snprintf(path, sizeof(path), "%s/inside", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT, 0600)) == -1)
		return 2;
	close(fd);
	if (open("/etc/passwd", O_RDONLY) == -1)
		return 3;
	if (open("/etc/mailroot-test-write", O_WRONLY | O_CREAT, 0600) != -1)
		return 4;
	if (open("/usr/bin/env", O_RDONLY) != -1 || errno != EACCES)
		return 5;
	return 0;
}

static void
t_rw_dir(void **state)
{
	char dir[] = "/tmp/mailroot-sandbox-XXXXXX";
	char path[600];

	(void)state;
	if (!landlock_available() || mr_sandbox_relaxed())
		skip();
	assert_non_null(mkdtemp(dir));
	assert_int_equal(in_child(child_rw_dir, dir), 0);
	snprintf(path, sizeof(path), "%s/inside", dir);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_exec_denied),
		cmocka_unit_test(t_ptrace_denied),
		cmocka_unit_test(t_ordinary_work),
		cmocka_unit_test(t_x32_denied),
		cmocka_unit_test(t_smtpd_open),
		cmocka_unit_test(t_threads_not_fork),
		cmocka_unit_test(t_no_files),
		cmocka_unit_test(t_rw_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
