/*
 * notify.c - tells the service manager how mailrootd is doing, with the
 * datagram protocol of sd_notify(3), written out here rather than linking
 * libsystemd for one sendto: "READY=1" once the listeners accept (so that
 * "systemctl start" of a Type=notify unit returns when mail can be
 * sent), "RELOADING=1" and "READY=1" around a reload, "STOPPING=1" when
 * stopping.  The address is $NOTIFY_SOCKET: an AF_UNIX datagram socket,
 * a path, or an abstract name written with a leading '@'.  Without the
 * variable nothing is sent.
 *
 * Security: the variable comes from mailrootd's own environment, set by
 * whoever started it (trusted like its command line).  It is read once,
 * bounded by sun_path, and removed from the environment, so that no
 * child inherits it: only mailrootd, root, speaks for the service.
 * Nothing is ever read from the socket, and a send that fails is logged
 * and otherwise ignored (the service manager's problem, not the mail's).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

static struct sockaddr_un notify_sun;
static socklen_t notify_len;	/* 0: no service manager to tell */

void
mr_notify_init(void)
{
	const char *env = getenv("NOTIFY_SOCKET");
	size_t n;

	if (env == NULL)
		return;
	n = strlen(env);
	if ((env[0] != '/' && env[0] != '@') || n < 2 ||
	    n >= sizeof(notify_sun.sun_path)) {
		mr_warn("NOTIFY_SOCKET is not a socket path or an abstract "
		    "name: the service manager is not told when mailrootd "
		    "is ready");
	} else {
		memset(&notify_sun, 0, sizeof(notify_sun));
		notify_sun.sun_family = AF_UNIX;
		memcpy(notify_sun.sun_path, env, n);
		if (env[0] == '@')	/* abstract: a NUL, not a '@' */
			notify_sun.sun_path[0] = '\0';
		/* an abstract name is exactly n bytes long, no NUL after */
		notify_len = (socklen_t)(offsetof(struct sockaddr_un,
		    sun_path) + n + (env[0] == '/'));
	}
	if (unsetenv("NOTIFY_SOCKET") == -1)
		mr_warn("unsetenv NOTIFY_SOCKET: %s", strerror(errno));
}

void
mr_notify(const char *state)
{
	size_t len = strlen(state);
	ssize_t n;
	int fd;

	if (notify_len == 0)
		return;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		mr_warn("NOTIFY_SOCKET: socket: %s", strerror(errno));
		return;
	}
	n = sendto(fd, state, len, MSG_NOSIGNAL,
	    (const struct sockaddr *)&notify_sun, notify_len);
	if (n == -1)
		mr_warn("NOTIFY_SOCKET: telling \"%s\": %s", state,
		    strerror(errno));
	else if ((size_t)n != len)
		mr_warn("NOTIFY_SOCKET: \"%s\" sent short", state);
	if (close(fd) == -1)
		mr_warn("NOTIFY_SOCKET: close: %s", strerror(errno));
}
