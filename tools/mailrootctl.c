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

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "ctl_client.h"
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
			mr_ctl_token(b, "target", argv[i]);
			continue;
		}
		for (k = 0; valued[k] != NULL; k++)
			if (strcmp(argv[i] + 2, valued[k]) == 0)
				break;
		if (valued[k] == NULL)
			mr_ctl_token(b, argv[i] + 2, NULL);
		else if (i + 1 < argc)
			mr_ctl_token(b, valued[k], argv[++i]);
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

	mr_ctl_token(b, argv[0], NULL);
	if (json)
		mr_ctl_token(b, "json", NULL);
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
		mr_ctl_token(b, "id", argv[1]);
		argc--;
		argv++;
	}
	options(b, argc - 1, argv + 1);
}

/* Sends the request; prints the answer; the exit status. */
static int
exchange(const char *path, const struct mr_buf *req)
{
	struct mr_buf out;
	int rc = 1;

	mr_buf_init(&out);
	switch (mr_ctl_call(path, req, &out)) {
	case MR_CTL_ANSWER_OK:
		if (fwrite(out.data, 1, out.len, stdout) != out.len ||
		    fflush(stdout) != 0)
			fprintf(stderr, "mailrootctl: stdout: %s\n",
			    strerror(errno));
		else
			rc = 0;
		break;
	default:
		fprintf(stderr, "mailrootctl: %s\n", out.data);
		break;
	}
	mr_buf_free(&out);
	return rc;
}

int
main(int argc, char *argv[])
{
	const char *path = DEFAULT_SOCKET, *err;
	struct mr_ctl_req check;
	struct mr_buf req;
	int ch, json = 0, rc;

	/* queued answers a refusal and closes before reading the request */
	signal(SIGPIPE, SIG_IGN);
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
	rc = exchange(path, &req);
	mr_buf_free(&req);
	return rc;
}
