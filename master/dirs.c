/*
 * dirs.c - the folders mailrootd prepares as root: each mailroot with its
 * Queue, Queue/tmp, Pickup, Drop and Badmail, smtpd's empty chroot, and
 * deliverd's MTA-STS policy cache (its user's alone, mode 0700).
 *
 * Security: a mailroot belongs to the queue user, so anything in it may
 * have been replaced by that user (or by whoever took over queued) with a
 * symbolic link to a file of root's.  Root therefore never operates on a
 * path inside a mailroot: the path to the mailroot is walked one component
 * at a time from a descriptor of "/" with O_NOFOLLOW | O_DIRECTORY, each
 * parent must be a directory only root can change, and every folder below
 * is made and opened relative to its parent's descriptor.  Ownership is
 * only ever changed with fchown on a descriptor that fstat says is a
 * directory; on a reload only a folder root has just made is chowned.
 * Anything unexpected (a link, a file, a parent someone else can write)
 * is refused with a message; nothing is followed, moved or removed.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

#define DIR_OPEN	(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct owner {
	int	 root;		/* running as root: owners are enforced */
	int	 at_start;	/* may correct the owner of an existing folder */
	uid_t	 uid;
	gid_t	 gid;
};

static const char *mailroot_dirs[] = { "Queue", "Pickup", "Drop", "Badmail" };

/*
 * A parent of a mailroot or of the chroot must be a directory nobody but
 * root (or, not started as root, ourselves) can change: else its entries
 * could be swapped under us.  A sticky directory of root's (/tmp) is
 * accepted: others cannot rename or remove what root made in it.
 */
static int
parent_ok(int fd, const char *path)
{
	struct stat st;

	if (geteuid() != 0)
		return 1;	/* demo mode: no privilege to guard */
	if (fstat(fd, &st) == -1) {
		mr_err("%s: fstat: %s", path, strerror(errno));
		return 0;
	}
	if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
	    ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))) {
		mr_err("%s: refused: a parent of a mailroot or of the chroot "
		    "must be owned by root and writable by nobody else", path);
		return 0;
	}
	return 1;
}

/*
 * Makes (if missing) and opens dir/name without following a link.
 * *created says whether this call made it.  Returns the descriptor or -1
 * with the reason logged (path is for messages only).
 */
static int
open_sub(int dir, const char *name, mode_t mode, const char *path,
    int *created, int follow)
{
	int fd;

	*created = 0;
	if (mkdirat(dir, name, mode) == 0)
		*created = 1;
	else if (errno != EEXIST) {
		mr_err("mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	if ((fd = openat(dir, name, follow ? DIR_OPEN & ~O_NOFOLLOW :
	    DIR_OPEN)) == -1) {
		if (errno == ELOOP || errno == ENOTDIR)
			mr_err("%s: refused: not a directory (a symbolic link "
			    "or a file); root does not follow it", path);
		else
			mr_err("open %s: %s", path, strerror(errno));
	}
	return fd;
}

/*
 * Opens every directory on the absolute path up to (not including) its
 * last component, making the missing ones (root-owned, 0755).  As root a
 * link on the way is refused (name the real directory); not started as
 * root, links are followed.  Returns a descriptor of the parent and
 * points *last at the last component.
 */
static int
open_parent(const char *abspath, char *buf, size_t size, const char **last)
{
	char *p, *next;
	int fd, sub, created;

	if (abspath[0] != '/' || snprintf(buf, size, "%s", abspath) >=
	    (int)size) {
		mr_err("%s: not an absolute path of a sane length", abspath);
		return -1;
	}
	if ((fd = open("/", DIR_OPEN)) == -1) {
		mr_err("open /: %s", strerror(errno));
		return -1;
	}
	for (p = buf + 1;; p = next) {
		while (*p == '/')
			p++;
		if ((next = strchr(p, '/')) == NULL || next[strspn(next,
		    "/")] == '\0') {
			if (next != NULL)
				*next = '\0';	/* trailing slashes */
			break;
		}
		*next++ = '\0';
		sub = open_sub(fd, p, 0755, abspath, &created,
		    geteuid() != 0);
		close(fd);
		if (sub == -1 || !parent_ok(sub, abspath)) {
			if (sub != -1)
				close(sub);
			return -1;
		}
		fd = sub;
	}
	if (*p == '\0' || strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
		mr_err("%s: names no directory", abspath);
		close(fd);
		return -1;
	}
	*last = p;
	return fd;
}

int
mr_open_parent(const char *abspath, char *buf, size_t size, const char **last)
{
	return open_parent(abspath, buf, size, last);
}

/*
 * Opens (making it if missing) a folder of the queue user's below dir and
 * sets its owner through the descriptor: always when root made it, at
 * start also when the owner is wrong.  A folder root made that is not
 * root's by the time it is opened was swapped: refused.
 */
static int
queue_dir(int dir, const char *name, mode_t mode, const struct owner *o,
    const char *path)
{
	struct stat st;
	int fd, created;

	if ((fd = open_sub(dir, name, mode, path, &created, 0)) == -1)
		return -1;
	if (!o->root)
		return fd;
	if (fstat(fd, &st) == -1) {
		mr_err("%s: fstat: %s", path, strerror(errno));
		goto fail;
	}
	if (created && st.st_uid != 0) {
		mr_err("%s: refused: replaced while it was being made", path);
		goto fail;
	}
	if (!created && (!o->at_start ||
	    (st.st_uid == o->uid && st.st_gid == o->gid)))
		return fd;
	if (fchown(fd, o->uid, o->gid) == -1) {
		mr_err("chown %s: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static int
prepare_mailroot(const char *mr, const struct owner *o)
{
	char buf[4096], path[4200];
	const char *last;
	int parent, top, sub, tmp = 0;
	size_t i;

	if ((parent = open_parent(mr, buf, sizeof(buf), &last)) == -1)
		return -1;
	top = queue_dir(parent, last, 0755, o, mr);
	close(parent);
	if (top == -1)
		return -1;
	for (i = 0; i < sizeof(mailroot_dirs) / sizeof(*mailroot_dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", mr, mailroot_dirs[i]);
		if ((sub = queue_dir(top, mailroot_dirs[i], 0750, o,
		    path)) == -1)
			goto fail;
		if (i == 0) {
			snprintf(path, sizeof(path), "%s/Queue/tmp", mr);
			tmp = queue_dir(sub, "tmp", 0700, o, path);
			if (tmp != -1)
				close(tmp);
		}
		close(sub);
		if (i == 0 && tmp == -1)
			goto fail;
	}
	close(top);
	return 0;
fail:
	close(top);
	return -1;
}

/* smtpd's chroot: a directory of root's that nobody else can write. */
static int
prepare_chroot(const char *dir)
{
	char buf[4096];
	const char *last;
	struct stat st;
	int parent, fd, created, rc = -1;

	if ((parent = open_parent(dir, buf, sizeof(buf), &last)) == -1)
		return -1;
	fd = open_sub(parent, last, 0755, dir, &created, 0);
	close(parent);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		mr_err("%s: fstat: %s", dir, strerror(errno));
	else if (st.st_uid != 0 || (st.st_mode & 022))
		mr_err("%s: the chroot directory must be owned by root and "
		    "not writable by others", dir);
	else
		rc = 0;
	close(fd);
	return rc;
}

/*
 * deliverd's MTA-STS cache: a folder of the deliver user's that nobody
 * else can read or write, below parents only root can change (the same
 * walk as a mailroot's).
 */
static int
prepare_sts_cache(const struct mr_config *cfg, const struct owner *q)
{
	struct owner o = *q;
	struct passwd *pw;
	char buf[4096];
	const char *last;
	int parent, fd;

	if (o.root) {
		// cppcheck-suppress getpwnamCalled
		if ((pw = getpwnam(cfg->deliver_user)) == NULL) {
			mr_err("user \"%s\" does not exist",
			    cfg->deliver_user);
			return -1;
		}
		o.uid = pw->pw_uid;
		o.gid = pw->pw_gid;
	}
	if ((parent = open_parent(cfg->mta_sts_cache, buf, sizeof(buf),
	    &last)) == -1)
		return -1;
	fd = queue_dir(parent, last, 0700, &o, cfg->mta_sts_cache);
	close(parent);
	if (fd == -1)
		return -1;
	if (o.root && fchmod(fd, 0700) == -1) {
		mr_err("chmod %s: %s", cfg->mta_sts_cache, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
mr_prepare_dirs(const struct mr_config *cfg, int at_start)
{
	struct owner o;
	struct passwd *pw;
	size_t s;

	memset(&o, 0, sizeof(o));
	o.root = geteuid() == 0;
	o.at_start = at_start;
	if (o.root) {
		/* mailrootd has no threads: getpwnam is safe here */
		// cppcheck-suppress getpwnamCalled
		if ((pw = getpwnam(cfg->user)) == NULL) {
			mr_err("user \"%s\" does not exist (create it: "
			    "useradd --system --no-create-home --shell "
			    "/usr/sbin/nologin %s)", cfg->user, cfg->user);
			return -1;
		}
		o.uid = pw->pw_uid;
		o.gid = pw->pw_gid;
	}
	for (s = 0; s < cfg->nservers; s++)
		if (prepare_mailroot(cfg->servers[s].mailroot, &o) == -1)
			return -1;
	if (o.root && prepare_chroot(cfg->chroot) == -1)
		return -1;
	if (prepare_sts_cache(cfg, &o) == -1)
		return -1;
	return 0;
}
