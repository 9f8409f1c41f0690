/*
 * submit_sock.c - the listening Unix socket of mailroot-sendmail (global
 * "submit-socket", default /run/mailroot/submit), made by mailrootd and
 * handed to queued at descriptor MR_FD_SUBMIT, which accepts on it.
 *
 * Security: root makes the socket, so queued needs no right to create
 * anything outside its mailroots.  The directories on the path are
 * opened and made as dirs.c does for a mailroot's parents: as root no
 * symbolic link is followed and each must be root's and writable by
 * nobody else, so no other user can swap the path between the checks
 * and the bind.  An old socket at the path is removed; anything else
 * there (a file, a link) is refused, never removed.  The socket is
 * 0666: connecting is open to every local user, and queued decides who
 * may submit from the peer's credentials (SO_PEERCRED), not from the
 * file's mode.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

/* Removes an old socket at dir/name; -1 if something else is there. */
static int
clear_old(int dir, const char *name, const char *path)
{
	struct stat st;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		mr_err("%s: refused: exists and is not a socket; remove it or "
		    "name another submit-socket", path);
		return -1;
	}
	if (unlinkat(dir, name, 0) == -1) {
		mr_err("unlink %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
mr_submit_open(const struct mr_config *cf)
{
	const char *path = cf->submit_socket, *last;
	struct sockaddr_un sun;
	char buf[4096];
	int dir, fd = -1;
	mode_t old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >=
	    (int)sizeof(sun.sun_path)) {
		mr_err("submit-socket %s: path too long", path);
		return -1;
	}
	if ((dir = mr_open_parent(path, buf, sizeof(buf), &last)) == -1)
		goto fail;
	if (clear_old(dir, last, path) == -1)
		goto fail;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		mr_err("socket: %s", strerror(errno));
		goto fail;
	}
	old = umask(0111);	/* srw-rw-rw- */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 64) == -1) {
		umask(old);
		mr_err("submit-socket %s: %s", path, strerror(errno));
		goto fail;
	}
	umask(old);
	close(dir);
	return fd;
fail:
	mr_warn("mailroot-sendmail cannot submit: no socket at %s", path);
	if (fd != -1)
		close(fd);
	if (dir != -1)
		close(dir);
	return -1;
}
