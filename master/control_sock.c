/*
 * control_sock.c - mailrootd binds the control socket (control-socket) for
 * queued, which serves it (queued/control.c, mailrootctl(8)).
 *
 * Security: root binds, so that the socket can belong to control-group
 * (queued keeps no supplementary group and could not chown it).  The
 * socket's directory must be a directory (the last component is not
 * followed if it is a link) owned by root and writable by nobody else,
 * so that no child can swap what root creates in it; root works in it
 * only through its descriptor (bind through /proc/self/fd, fchownat and
 * unlinkat without following links), and removes only a socket.  The
 * socket is created with mode 0660 (0600 without control-group) by the
 * umask in force at bind, so it is never briefly open to others.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "buf.h"
#include "util.h"

#define DIR_OPEN	(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

static int
dir_ok(int dfd, const char *dir)
{
	struct stat st;

	if (fstat(dfd, &st) == -1) {
		mr_err("%s: %s", dir, strerror(errno));
		return 0;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		mr_err("control-socket: %s must be owned by %s and writable "
		    "by nobody else", dir, geteuid() == 0 ? "root" : "us");
		return 0;
	}
	return 1;
}

/* Opens (and makes, if missing) the socket's directory. */
static int
open_dir(const char *dir)
{
	int dfd;

	if ((dfd = open(dir, DIR_OPEN)) == -1 && errno == ENOENT) {
		if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
			mr_err("control-socket: mkdir %s: %s", dir,
			    strerror(errno));
			return -1;
		}
		dfd = open(dir, DIR_OPEN);
	}
	if (dfd == -1) {
		mr_err("control-socket: %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!dir_ok(dfd, dir)) {
		close(dfd);
		return -1;
	}
	return dfd;
}

/* A socket left by an earlier run is removed; anything else refused. */
static int
clear_old(int dfd, const char *name, const char *path)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		mr_err("control-socket: %s exists and is not a socket", path);
		return -1;
	}
	return unlinkat(dfd, name, 0);
}

static int
bind_at(int dfd, const char *name, mode_t mask)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path),
	    "/proc/self/fd/%d/%s", dfd, name) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	old = umask(mask);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc == -1 || listen(fd, 16) == -1) {
		rc = errno;
		close(fd);
		errno = rc;
		return -1;
	}
	return fd;
}

/* The group of the socket: control-group when root, else none. */
static int
group_of(const struct mr_config *cfg, gid_t *gid)
{
	struct group *gr;

	if (cfg->control_group == NULL || geteuid() != 0)
		return 0;
	/* mailrootd has no threads: getgrnam is safe here */
	// cppcheck-suppress getgrnamCalled
	if ((gr = getgrnam(cfg->control_group)) == NULL) {
		mr_warn("control-group \"%s\" does not exist: the control "
		    "socket is root's only", cfg->control_group);
		return 0;
	}
	*gid = gr->gr_gid;
	return 1;
}

int
mr_control_open(const struct mr_config *cfg)
{
	const char *path = cfg->control_socket;
	char *dir = NULL;
	const char *name;
	gid_t gid = 0;
	int dfd = -1, fd = -1, grp;

	if (path == NULL)
		return -1;
	dir = mr_xstrdup(path);
	*strrchr(dir, '/') = '\0';	/* the parser wants an absolute path */
	name = strrchr(path, '/') + 1;
	if ((dfd = open_dir(dir[0] ? dir : "/")) == -1)
		goto fail;
	grp = group_of(cfg, &gid);
	if (clear_old(dfd, name, path) == -1 ||
	    (fd = bind_at(dfd, name, grp ? 0117 : 0177)) == -1) {
		mr_err("control-socket %s: %s", path, strerror(errno));
		goto fail;
	}
	if (grp && fchownat(dfd, name, 0, gid, AT_SYMLINK_NOFOLLOW) == -1) {
		mr_err("control-socket %s: chown: %s", path, strerror(errno));
		close(fd);
		fd = -1;
		goto fail;
	}
	mr_info("control socket %s (mode %s)", path, grp ? "0660" : "0600");
fail:
	if (dfd != -1)
		close(dfd);
	free(dir);
	return fd;
}

/* At exit: the socket goes, if it is still a socket. */
void
mr_control_close(const struct mr_config *cfg, int fd)
{
	char *dir;
	int dfd;

	if (fd == -1 || cfg->control_socket == NULL)
		return;
	close(fd);
	dir = mr_xstrdup(cfg->control_socket);
	*strrchr(dir, '/') = '\0';
	if ((dfd = open(dir[0] ? dir : "/", DIR_OPEN)) != -1) {
		(void)clear_old(dfd, strrchr(cfg->control_socket, '/') + 1,
		    cfg->control_socket);
		close(dfd);
	}
	free(dir);
}
