/*
 * sandbox.h - kernel-enforced limits a child sets on itself after it has
 * dropped privileges (Linux: seccomp and Landlock).
 */
#ifndef MR_SANDBOX_H
#define MR_SANDBOX_H

#include <stddef.h>

#include "proto.h"

/*
 * Allows, by seccomp filter, only the system calls process p makes (its
 * allow-list in sandbox_seccomp.c); any other call, or one in a foreign
 * architecture's numbering (x32 included), kills the process with
 * SIGSYS.  In a sanitizer build only calls no process needs (mount,
 * chroot, unshare, module loading, bpf, keyrings, reboot, ...) are
 * refused, with EPERM.  Applies to every thread (TSYNC) and the threads
 * started later.  Fatal if the filter cannot be installed (a kernel
 * without seccomp is reported and tolerated).
 */
void	mr_sandbox_syscalls(const char *proc, enum mr_proc p);

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
