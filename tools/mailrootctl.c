/*
 * mailrootctl.c - the administrator's command line to a running mailroot
 * (mailrootctl(8)): sends one request over the control socket and prints
 * the answer.
 *
 * Security: runs with the caller's rights only (never set-id); the socket's
 * mode and queued's SO_PEERCRED check decide what the caller may do.  The
 * request is built from the command line within the bounds of
 * ctl_proto.h, and checked with the same parser queued uses before it is
 * sent, so a refusal is explained here.  The answer is printed as it is.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "ctl_proto.h"

#define DEFAULT_SOCKET	"/run/mailroot/control"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: mailrootctl [-j] [-s socket] command [arguments]\n"
	    "  queue [--server S] [--domain D] [--sender A] [--state ST]\n"
	    "  show ID [--body]     flush [SERVER|DOMAIN]    retry ID\n"
	    "  hold ID|DOMAIN       release ID|DOMAIN        delete ID\n"
	    "  bounce ID [--reason TEXT]    etrn DOMAIN\n"
	    "  sessions [--server S]    stats    reload    stop\n");
	exit(2);
}

static void
token(struct mr_buf *b, const char *name, const char *val)
{
	mr_buf_adds(b, name);
	if (val != NULL) {
		mr_buf_adds(b, "=");
		mr_buf_adds(b, val);
	}
	mr_buf_add(b, "", 1);
}

/* "--name VALUE" options of the verb become "name=VALUE" tokens. */
static void
options(struct mr_buf *b, int argc, char **argv)
{
	static const char *const valued[] = {
		"server", "domain", "sender", "state", "reason", NULL
	};
	int i, k;

	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) != 0) {
			token(b, "target", argv[i]);
			continue;
		}
		for (k = 0; valued[k] != NULL; k++)
			if (strcmp(argv[i] + 2, valued[k]) == 0)
				break;
		if (valued[k] == NULL)
			token(b, argv[i] + 2, NULL);
		else if (i + 1 < argc)
			token(b, valued[k], argv[++i]);
		else
			usage();
	}
}

static void
build(struct mr_buf *b, int json, int argc, char **argv)
{
	static const char *const with_id[] = {
		"show", "retry", "hold", "release", "delete", "bounce", NULL
	};
	int k;

	token(b, argv[0], NULL);
	if (json)
		token(b, "json", NULL);
	for (k = 0; with_id[k] != NULL; k++)
		if (strcmp(argv[0], with_id[k]) == 0)
			break;
	if (with_id[k] != NULL) {
		if (argc < 2 || argv[1][0] == '-')
			usage();
		/* hold/release DOMAIN: a domain has a dot, a queue id none */
		if ((strcmp(argv[0], "hold") == 0 ||
		    strcmp(argv[0], "release") == 0) &&
		    strchr(argv[1], '.') != NULL) {
			options(b, argc - 1, argv + 1);
			return;
		}
		token(b, "id", argv[1]);
		argc--;
		argv++;
	}
	options(b, argc - 1, argv + 1);
}

static int
connect_to(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "mailrootctl: %s: path too long\n", path);
		exit(1);
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "mailrootctl: %s: %s\n", path,
		    strerror(errno));
		exit(1);
	}
	return fd;
}

/* Sends the request; prints the answer; the exit status. */
static int
exchange(int fd, const struct mr_buf *req)
{
	unsigned char hdr[4];
	struct mr_buf ans;
	char buf[65536], *nl;
	ssize_t n;
	int rc;

	hdr[0] = (unsigned char)(req->len >> 24);
	hdr[1] = (unsigned char)(req->len >> 16);
	hdr[2] = (unsigned char)(req->len >> 8);
	hdr[3] = (unsigned char)req->len;
	if (write(fd, hdr, 4) != 4 ||
	    write(fd, req->data, req->len) != (ssize_t)req->len) {
		fprintf(stderr, "mailrootctl: write: %s\n", strerror(errno));
		return 1;
	}
	mr_buf_init(&ans);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		mr_buf_add(&ans, buf, (size_t)n);
	mr_buf_add(&ans, "", 1);
	if (n == -1 || (nl = strchr(ans.data, '\n')) == NULL) {
		fprintf(stderr, "mailrootctl: no answer\n");
		mr_buf_free(&ans);
		return 1;
	}
	*nl = '\0';
	rc = strcmp(ans.data, "ok") != 0;
	if (rc)
		fprintf(stderr, "mailrootctl: %s\n",
		    strncmp(ans.data, "error ", 6) == 0 ? ans.data + 6 :
		    ans.data);
	else {
		size_t out = ans.len - 1 - (size_t)(nl + 1 - ans.data);

		if (fwrite(nl + 1, 1, out, stdout) != out ||
		    fflush(stdout) != 0) {
			fprintf(stderr, "mailrootctl: stdout: %s\n",
			    strerror(errno));
			rc = 1;
		}
	}
	mr_buf_free(&ans);
	return rc;
}

int
main(int argc, char *argv[])
{
	const char *path = DEFAULT_SOCKET, *err;
	struct mr_ctl_req check;
	struct mr_buf req;
	int ch, json = 0, fd, rc;

	while ((ch = getopt(argc, argv, "+js:")) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 's':
			path = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	mr_buf_init(&req);
	build(&req, json, argc, argv);
	if (mr_ctl_parse((const unsigned char *)req.data, req.len, &check,
	    &err) == -1) {
		fprintf(stderr, "mailrootctl: %s: %s\n", argv[0], err);
		usage();
	}
	fd = connect_to(path);
	rc = exchange(fd, &req);
	close(fd);
	mr_buf_free(&req);
	return rc;
}
