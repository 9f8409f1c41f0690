/*
 * privdrop.c - a child gives up root: chroot, one group, one user, no new
 * privileges, and proof that root cannot come back.
 *
 * Security: called before a child reads any untrusted input.  Any failure
 * is fatal: a child must never run with more privilege than intended.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"

int
mr_privdrop(const char *proc, const char *user, const char *root_dir)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	/* the time zone is read now: neither a chroot nor the sandbox
	 * lets a child open /etc/localtime later */
	tzset();
	if (geteuid() != 0) {
		mr_info("%s: not started as root: running as uid %ld "
		    "without chroot (no privilege separation)", proc,
		    (long)geteuid());
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
			mr_fatal("%s: PR_SET_NO_NEW_PRIVS: %s", proc,
			    strerror(errno));
		return 0;
	}
	if ((pw = getpwnam(user)) == NULL)
		mr_fatal("%s: user \"%s\" does not exist (create it: "
		    "useradd --system --no-create-home --shell "
		    "/usr/sbin/nologin %s)", proc, user, user);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0)
		mr_fatal("%s: user \"%s\" is root; refusing", proc, user);
	if (root_dir != NULL) {
		if (chroot(root_dir) == -1)
			mr_fatal("%s: chroot %s: %s", proc, root_dir,
			    strerror(errno));
		if (chdir("/") == -1)
			mr_fatal("%s: chdir /: %s", proc, strerror(errno));
	}
	if (setgroups(0, NULL) == -1)
		mr_fatal("%s: setgroups: %s", proc, strerror(errno));
	if (setresgid(gid, gid, gid) == -1)
		mr_fatal("%s: setresgid: %s", proc, strerror(errno));
	if (setresuid(uid, uid, uid) == -1)
		mr_fatal("%s: setresuid: %s", proc, strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		mr_fatal("%s: PR_SET_NO_NEW_PRIVS: %s", proc, strerror(errno));
	/* The kernel must refuse the way back. */
	if (setuid(0) != -1 || seteuid(0) != -1)
		mr_panic("%s: regained root after dropping it", proc);
	return 1;
}
