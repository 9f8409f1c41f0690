/*
 * test_sandbox.c - the seccomp and Landlock limits, applied in a forked
 * child so the test runner itself stays free.
 */
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
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

/* Runs fn in a child; returns its exit status (0 = all checks held). */
static int
in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg));
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
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
	mr_sandbox_syscalls("test");
	execv("/bin/true", argv);
	return errno == EPERM ? 0 : 1;
}

static void
t_exec_denied(void **state)
{
	(void)state;
	if (mr_sandbox_relaxed())
		skip();
	assert_int_equal(in_child(child_exec_denied, NULL), 0);
}

static int
child_ptrace_denied(void *arg)
{
	(void)arg;
	mr_sandbox_syscalls("test");
	if (syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0) != -1)
		return 1;
	if (errno != EPERM)
		return 2;
	/* ordinary work goes on */
	return getpid() > 0 && write(-1, "", 0) == -1 ? 0 : 3;
}

static void
t_ptrace_denied(void **state)
{
	(void)state;
	if (mr_sandbox_relaxed())
		skip();
	assert_int_equal(in_child(child_ptrace_denied, NULL), 0);
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
		cmocka_unit_test(t_no_files),
		cmocka_unit_test(t_rw_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
