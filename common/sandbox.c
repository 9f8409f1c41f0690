/*
 * sandbox.c - Landlock file rules for the children (their seccomp
 * allow-lists are in sandbox_seccomp.c).
 *
 * Security: defence in depth below the user/chroot separation: even code
 * execution inside smtpd cannot open a file, queued reaches only its
 * mailroots, deliverd only what it reads.  Applied after mr_privdrop,
 * with PR_SET_NO_NEW_PRIVS already set.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <linux/landlock.h>

#include "log.h"
#include "sandbox.h"

/* What a Landlock rule on a file (not a directory) may grant. */
#define LL_FILE_ACCESS	(LANDLOCK_ACCESS_FS_READ_FILE |			\
	LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_EXECUTE)

/*
 * Under AddressSanitizer the leak checker stops the process with ptrace
 * and the symbolizer is a program it executes, and reports read
 * /proc/self/maps: a sanitizer build keeps those working (and says so).
 */
#if defined(__SANITIZE_ADDRESS__)
#define MR_SANITIZED	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MR_SANITIZED	1
#endif
#endif

int
mr_sandbox_relaxed(void)
{
#ifdef MR_SANITIZED
	return 1;
#else
	return 0;
#endif
}

static int
ll_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? 0 : (int)v;
}

static uint64_t
ll_handled(int abi)
{
	uint64_t a = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
	    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
	    LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
	    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
	    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
	    LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
	    LANDLOCK_ACCESS_FS_MAKE_SYM;

#ifdef LANDLOCK_ACCESS_FS_REFER
	if (abi >= 2)
		a |= LANDLOCK_ACCESS_FS_REFER;
#endif
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
	if (abi >= 3)
		a |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
	return a;
}

static int
ll_allow(int ruleset, const char *path, uint64_t access)
{
	struct landlock_path_beneath_attr pb;
	struct stat st;
	int fd, rc, saved;

	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;	/* nothing to allow */
	/* a rule on a file may grant only what applies to files */
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		access &= LL_FILE_ACCESS;
	pb.allowed_access = access;
	pb.parent_fd = fd;
	rc = (int)syscall(SYS_landlock_add_rule, ruleset,
	    LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
mr_sandbox_files(const char *proc, const char *const *ro,
    const char *const *rw)
{
	struct landlock_ruleset_attr attr;
	uint64_t read_access;
	int abi, ruleset;
	size_t i;

	if (mr_sandbox_relaxed()) {
		mr_info("%s: sanitizer build: no Landlock rules", proc);
		return 0;
	}
	if ((abi = ll_abi()) <= 0) {
		mr_info("%s: Landlock not available in this kernel; file "
		    "access is limited by user and chroot only", proc);
		return 0;
	}
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = ll_handled(abi);
	read_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr,
	    sizeof(attr), 0);
	if (ruleset == -1)
		mr_fatal("%s: landlock_create_ruleset: %s", proc,
		    strerror(errno));
	for (i = 0; ro != NULL && ro[i] != NULL; i++)
		if (ll_allow(ruleset, ro[i], read_access) == -1)
			mr_fatal("%s: landlock rule for %s: %s", proc, ro[i],
			    strerror(errno));
	for (i = 0; rw != NULL && rw[i] != NULL; i++)
		if (ll_allow(ruleset, rw[i], attr.handled_access_fs &
		    ~(uint64_t)(LANDLOCK_ACCESS_FS_EXECUTE |
		    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK)) == -1)
			mr_fatal("%s: landlock rule for %s: %s", proc, rw[i],
			    strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    syscall(SYS_landlock_restrict_self, ruleset, 0) == -1)
		mr_fatal("%s: landlock_restrict_self: %s", proc,
		    strerror(errno));
	close(ruleset);
	return 1;
}
