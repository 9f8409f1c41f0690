/*
 * sandbox_seccomp.c - each child's seccomp allow-list, built with
 * libseccomp.
 *
 * Security: a child may make only the system calls listed here for it,
 * found by running each process under strace through the integration
 * tests (contrib/syscalls prints them), plus what glibc, libevent,
 * OpenSSL, libunbound, PCRE2 and Berkeley DB make on paths the tests do
 * not reach (signals, a syslog reconnect, DNS over TCP, lock waits).
 * Anything else kills the whole process (SIGSYS): a call outside the
 * list is either an attack or a gap in the list, and in both cases a
 * loud death, which mailrootd logs and answers with a restart, is safer
 * than an error the code might step around.  A few calls a library
 * merely probes fail with an errno instead.  libseccomp checks the
 * architecture and rejects the x32 and i386 numbering on x86_64 (a
 * number with the x32 bit set used to slip past a hand-written filter);
 * a call from a foreign architecture also kills.  A sanitizer build,
 * whose runtime forks, traces and executes its helpers, keeps a
 * deny-list of what no mailroot process may do instead
 * (mr_sandbox_relaxed).
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <termios.h>

#include <seccomp.h>

#include "log.h"
#include "sandbox.h"

/* glibc, libevent, our IPC and log: every child. */
static const char *const base_calls[] = {
	"brk", "mmap", "munmap", "mprotect", "mremap", "madvise",
	"read", "write", "readv", "writev", "pread64", "pwrite64",
	"close", "lseek", "fcntl", "fstat", "newfstatat", "statx",
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	"epoll_pwait2", "poll", "ppoll", "select", "pselect6",
	"eventfd2", "pipe2", "socketpair",
	"sendmsg", "recvmsg", "sendto", "recvfrom", "shutdown",
	"getsockopt", "setsockopt", "getsockname", "getpeername",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"getpid", "gettid", "tgkill", "getuid", "geteuid", "getgid",
	"getegid", "clock_gettime", "clock_getres", "clock_nanosleep",
	"nanosleep", "gettimeofday", "time", "futex", "getrandom",
	"sched_yield", "sched_getaffinity", "uname", "sysinfo", "prlimit64",
	"restart_syscall", "exit", "exit_group",
	NULL
};

/* smtpd: accepts and talks on its listeners and the descriptors queued
 * hands it; opens nothing, starts nothing. */
static const char *const smtpd_calls[] = {
	"accept", "accept4", "listen",
	NULL
};

/* queued: the mailroots (Landlock keeps it inside them), Berkeley DB
 * tables, its commit and trash threads, and the control socket. */
static const char *const queued_calls[] = {
	"openat", "open", "mkdir", "mkdirat", "rename", "renameat",
	"renameat2", "unlink", "unlinkat", "link", "linkat", "rmdir",
	"fsync", "fdatasync", "syncfs", "sync_file_range", "ftruncate",
	"fallocate",
	"getdents64", "flock", "fchmod", "fstatfs", "statfs", "access",
	"faccessat", "faccessat2", "readlink", "umask", "getcwd",
	"set_robust_list", "rseq", "membarrier",
	"inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	"accept", "accept4",	/* submit-socket (submit.c), control socket */
	"fadvise64",		/* recovery's reads ahead (queue_sched.c) */
	"utimensat",		/* an envelope's mtime: its next try */
	NULL
};

/* deliverd: outbound SMTP and DNS (libunbound's thread: UDP and TCP on
 * random ports), reading certificates and resolver files, writing its
 * MTA-STS cache (write, fsync, rename). */
static const char *const deliverd_calls[] = {
	"connect", "bind", "sendmmsg", "recvmmsg", "sendfile",
	"openat", "open", "getdents64", "fstatfs", "statfs", "access",
	"faccessat", "faccessat2", "readlink",
	"fsync", "rename", "renameat", "renameat2", "unlink", "unlinkat",
	"set_robust_list", "rseq", "membarrier",
	NULL
};

/* What no mailroot process may do, in a sanitizer build. */
static const char *const relaxed_denied[] = {
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
	"init_module", "finit_module", "delete_module", "bpf",
	"perf_event_open", "keyctl", "add_key", "request_key", "reboot",
	"kexec_load", "kexec_file_load", "open_tree", "move_mount",
	"fsopen", "fsmount", "userfaultfd", "swapon", "swapoff", "acct",
	NULL
};

/* Adds rules for names this architecture has; unknown ones are skipped. */
static int
add_all(scmp_filter_ctx ctx, uint32_t action, const char *const *names)
{
	size_t i;
	int nr, rc;

	for (i = 0; names[i] != NULL; i++) {
		if ((nr = seccomp_syscall_resolve_name(names[i])) ==
		    __NR_SCMP_ERROR)
			continue;
		if ((rc = seccomp_rule_add(ctx, action, nr, 0)) != 0) {
			mr_err("seccomp rule for %s: %s", names[i],
			    strerror(-rc));
			return -1;
		}
	}
	return 0;
}

static int
add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name,
    unsigned n, const struct scmp_arg_cmp *cmp)
{
	int nr, rc;

	if ((nr = seccomp_syscall_resolve_name(name)) == __NR_SCMP_ERROR)
		return 0;
	if ((rc = seccomp_rule_add_array(ctx, action, nr, n, cmp)) != 0) {
		mr_err("seccomp rule for %s: %s", name, strerror(-rc));
		return -1;
	}
	return 0;
}

/*
 * Calls allowed only with some arguments: ioctl for what libevent and
 * stdio ask; threads (clone with CLONE_THREAD; clone3, whose flags a
 * filter cannot see, says ENOSYS and glibc falls back to clone) for the
 * processes that start them; sockets of the families each one uses.
 */
static int
add_narrow(scmp_filter_ctx ctx, enum mr_proc p)
{
	static const unsigned long ioctls[] = { FIONREAD, FIONBIO, TCGETS };
	struct scmp_arg_cmp c;
	size_t i;

	for (i = 0; i < sizeof(ioctls) / sizeof(*ioctls); i++) {
		c = SCMP_A1(SCMP_CMP_EQ, ioctls[i]);
		if (add_rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &c) == -1)
			return -1;
	}
	if (p != MR_PROC_SMTPD) {
		c = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
		if (add_rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &c) == -1 ||
		    add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0,
		    NULL) == -1)
			return -1;
	}
	/* syslog reconnects over AF_UNIX; deliverd goes out, queued talks
	 * LMTP to a mail store (queued/lmtp.c) */
	c = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
	if (p != MR_PROC_SMTPD &&
	    add_rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &c) == -1)
		return -1;
	if (p == MR_PROC_QUEUED &&
	    add_rule(ctx, SCMP_ACT_ALLOW, "connect", 0, NULL) == -1)
		return -1;
	if (p != MR_PROC_SMTPD) {
		c = SCMP_A0(SCMP_CMP_EQ, AF_INET);
		if (add_rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &c) == -1)
			return -1;
		c = SCMP_A0(SCMP_CMP_EQ, AF_INET6);
		if (add_rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &c) == -1)
			return -1;
	}
	/* smtpd opens no file: say so rather than die (tz, locale probes) */
	if (p == MR_PROC_SMTPD &&
	    (add_rule(ctx, SCMP_ACT_ERRNO(EACCES), "openat", 0, NULL) == -1 ||
	    add_rule(ctx, SCMP_ACT_ERRNO(EACCES), "open", 0, NULL) == -1 ||
	    add_rule(ctx, SCMP_ACT_ERRNO(EACCES), "socket", 0, NULL) == -1))
		return -1;
	return 0;
}

static const char *const *
calls_of(enum mr_proc p)
{
	switch (p) {
	case MR_PROC_SMTPD:
		return smtpd_calls;
	case MR_PROC_QUEUED:
		return queued_calls;
	case MR_PROC_DELIVERD:
		return deliverd_calls;
	default:
		mr_panic("mr_sandbox_syscalls: bad process %d", (int)p);
	}
}

static scmp_filter_ctx
build(enum mr_proc p)
{
	scmp_filter_ctx ctx;
	int relaxed = mr_sandbox_relaxed();

	ctx = seccomp_init(relaxed ? SCMP_ACT_ALLOW : SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		mr_err("seccomp_init failed");
		return NULL;
	}
	/* a foreign architecture's numbering (x32, i386) kills as well */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SCMP_ACT_KILL_PROCESS) != 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) != 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0)
		goto fail;
	/* the kernel logs what it kills, naming the call (auditd, dmesg) */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
	if (relaxed) {
		if (add_all(ctx, SCMP_ACT_ERRNO(EPERM), relaxed_denied) == -1)
			goto fail;
		return ctx;
	}
	if (add_all(ctx, SCMP_ACT_ALLOW, base_calls) == -1 ||
	    add_all(ctx, SCMP_ACT_ALLOW, calls_of(p)) == -1 ||
	    add_narrow(ctx, p) == -1)
		goto fail;
	return ctx;
fail:
	seccomp_release(ctx);
	return NULL;
}

void
mr_sandbox_syscalls(const char *proc, enum mr_proc p)
{
	scmp_filter_ctx ctx;
	int rc;

	if ((ctx = build(p)) == NULL)
		mr_fatal("%s: cannot build the seccomp filter", proc);
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc == -EINVAL) {
		mr_warn("%s: seccomp not available in this kernel", proc);
		return;
	}
	if (rc != 0)
		mr_fatal("%s: seccomp: %s", proc, strerror(-rc));
}
