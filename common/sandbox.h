/*
 * sandbox.h - kernel-enforced limits a child sets on itself after it has
 * dropped privileges (Linux: seccomp and Landlock).
 */
#ifndef MR_SANDBOX_H
#define MR_SANDBOX_H

#include <stddef.h>

/*
 * Forbids, by seccomp filter, system calls no mailroot child needs and an
 * attacker would want: execve/execveat, ptrace and process_vm_*, mount,
 * chroot, pivot_root, unshare/setns, module loading, bpf, perf, keyrings,
 * reboot and kexec.  They fail with EPERM.  Fatal if the filter cannot be
 * installed (a kernel without seccomp is reported and tolerated).
 */
void	mr_sandbox_syscalls(const char *proc);

/*
 * Restricts file system access with Landlock (the calling thread and the
 * threads it starts later: call it before starting any) to read-only paths ro[] and
 * read-write paths rw[] (NULL-terminated lists; either may be NULL, and
 * both NULL means no file may be opened at all).  Already open files keep
 * working.  A kernel without Landlock is reported and tolerated.
 * Returns 1 if enforced, 0 if not available.
 */
int	mr_sandbox_files(const char *proc, const char *const *ro,
	    const char *const *rw);

/* 1 in a sanitizer build, where exec, ptrace and file access stay open
 * for the sanitizer's own use. */
int	mr_sandbox_relaxed(void);

#endif
