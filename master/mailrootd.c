/*
 * mailrootd.c - the privileged parent: checks the configuration, prepares
 * each mailroot, binds the listeners and supervises smtpd, queued and
 * deliverd.
 *
 * Security: parses only its own configuration file; never reads a byte
 * from the network.  Runs as root when started as root; everything that
 * touches mail runs in the children under their own users.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "dkim.h"
#include "log.h"
#include "table.h"
#include "master.h"
#include "util.h"

#define CONFIG_MAX	(4 << 20)

static void
usage(void)
{
	fprintf(stderr, "usage: mailrootd [-dnP] [-f file] [-p pidfile]\n");
	exit(2);
}

/* Reads and checks a configuration; errors go to stderr or the log. */
static struct mr_config *
load_config(const char *path, char **textp, size_t *lenp, int to_log)
{
	struct mr_config *cfg;
	char *text, *errtext = NULL;
	size_t len, errlen = 0;
	FILE *errs;

	text = mr_read_file(path, CONFIG_MAX, &len);
	if (text == NULL) {
		if (to_log)
			mr_err("%s: cannot read: %s", path, strerror(errno));
		else
			fprintf(stderr, "%s: cannot read: %s\n", path,
			    strerror(errno));
		return NULL;
	}
	errs = to_log ? open_memstream(&errtext, &errlen) : stderr;
	if (errs == NULL)
		mr_fatal("open_memstream: %s", strerror(errno));
	cfg = mr_config_parse(path, text, len, errs);
	/* a DKIM key that does not load is an error in the file */
	if (cfg != NULL && mr_dkim_check(cfg, errs) == -1) {
		mr_config_free(cfg);
		cfg = NULL;
	}
	if (to_log) {
		char *line, *nl;

		/* fclose sets errtext; if it fails, errtext may be stale */
		if (fclose(errs) == EOF) {
			mr_err("%s: collecting the parser's messages: %s",
			    path, strerror(errno));
			errtext = NULL;
		}
		for (line = errtext; line != NULL && *line != '\0';
		    line = nl ? nl + 1 : NULL) {
			if ((nl = strchr(line, '\n')) != NULL)
				*nl = '\0';
			mr_log(cfg ? LOG_WARNING : LOG_ERR, "%s", line);
		}
		free(errtext);
	}
	if (cfg == NULL) {
		free(text);
		return NULL;
	}
	*textp = text;
	*lenp = len;
	return cfg;
}

/* Written once at start; a link in its place is not followed. */
static void
write_pidfile(const char *path)
{
	struct stat st;
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NOCTTY |
	    O_CLOEXEC, 0644);
	if (fd == -1 || fstat(fd, &st) == -1)
		mr_fatal("pid file %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		mr_fatal("pid file %s: not a regular file", path);
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || mr_write_all(fd, buf, (size_t)n) == -1 ||
	    close(fd) == -1)
		mr_fatal("pid file %s: %s", path, strerror(errno));
}

static void
on_sigterm(evutil_socket_t sig, short ev, void *arg)
{
	struct mr_master *m = arg;

	(void)ev;
	if (m->stopping)
		return;
	mr_info("signal %d: stopping", (int)sig);
	mr_notify("STOPPING=1");
	mr_supervise_stop(m);
}

/* Two optional strings are the same (both NULL, or equal). */
static int
same_str(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static void
reload(struct mr_master *m)
{
	struct mr_config *cfg, *old;
	char *text;
	size_t len;
	int *oldfds;
	size_t nold;

	mr_info("SIGHUP: reloading %s", m->cfgpath);
	cfg = load_config(m->cfgpath, &text, &len, 1);
	if (cfg == NULL) {
		mr_err("reload failed: %s has errors; the running "
		    "configuration stays in force", m->cfgpath);
		return;
	}
	if (mr_pki_check(cfg) == -1) {
		mr_err("reload failed: a certificate or key cannot be read; "
		    "the running configuration stays in force");
		mr_config_free(cfg);
		free(text);
		return;
	}
	if (mr_prepare_dirs(cfg, 0) == -1) {
		mr_err("reload failed: cannot prepare the mailroots; the "
		    "running configuration stays in force");
		mr_config_free(cfg);
		free(text);
		return;
	}
	old = m->cfg;
	oldfds = m->lfds;
	nold = m->nlfds;
	m->cfg = cfg;
	if (mr_listen_all(m, oldfds, nold, old) == -1) {
		mr_err("reload failed: cannot bind the new listeners; the "
		    "running configuration stays in force");
		m->cfg = old;
		mr_config_free(cfg);
		free(text);
		return;
	}
	if (!same_str(old->metrics_listen, cfg->metrics_listen))
		mr_warn("reload: a changed \"metrics listen\" takes effect "
		    "at the next start");
	free(m->cfgtext);
	m->cfgtext = text;
	m->cfglen = len;
	/* smtpd gets the new listeners before the old ones close here */
	mr_supervise_reload(m, old);
	mr_listen_close(oldfds, nold);
	free(oldfds);
	mr_config_free(old);
	mr_info("reloaded %s", m->cfgpath);
}

static void
on_sighup(evutil_socket_t sig, short ev, void *arg)
{
	struct mr_master *m = arg;

	(void)sig;
	(void)ev;
	if (m->stopping)
		return;
	/* the service manager sees the reload until it is done or refused */
	mr_notify("RELOADING=1");
	reload(m);
	mr_notify("READY=1");
}

static void
on_sigchld(evutil_socket_t sig, short ev, void *arg)
{
	(void)sig;
	(void)ev;
	mr_supervise_reap(arg);
}

int
main(int argc, char *argv[])
{
	struct mr_master m;
	struct event *evs[5];
	const char *pidfile = NULL;
	int ch, check = 0, print = 0, i;

	memset(&m, 0, sizeof(m));
	m.submit_fd = -1;
	m.ctlfd = -1;
	m.metricsfd = -1;
	m.cfgpath = MR_SYSCONFDIR "/mailroot.conf";
	while ((ch = getopt(argc, argv, "dnPf:p:")) != -1) {
		switch (ch) {
		case 'd':
			m.foreground = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'P':
			print = 1;
			break;
		case 'f':
			m.cfgpath = optarg;
			break;
		case 'p':
			pidfile = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	mr_log_init("mailrootd", m.foreground || check || print);
	m.cfg = load_config(m.cfgpath, &m.cfgtext, &m.cfglen, 0);
	if (m.cfg == NULL)
		return 1;
	/* a table that cannot be opened is an error, never an open door */
	if (mr_tables_check(m.cfg, stderr) == -1) {
		if (!check && !print)
			mr_err("a table cannot be opened; not starting");
		mr_config_free(m.cfg);
		free(m.cfgtext);
		return 1;
	}
	if (print)
		mr_config_print(m.cfg, stdout);
	/* a warning only: -n may run before the files are in place, or
	 * as a user who cannot read the key */
	if (check && mr_pki_check(m.cfg) == -1)
		fprintf(stderr, "%s: warning: a certificate or key cannot be "
		    "read: mailrootd would not start\n", m.cfgpath);
	if (check || print) {
		mr_config_free(m.cfg);
		free(m.cfgtext);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	mr_notify_init();	/* before any child: none inherits it */
	if (mr_pki_check(m.cfg) == -1)
		mr_fatal("a certificate or key cannot be read; not starting");
	if (mr_prepare_dirs(m.cfg, 1) == -1)
		mr_fatal("cannot prepare the mailroots; not starting");
	if ((m.base = event_base_new()) == NULL)
		mr_fatal("event_base_new failed");
	if (mr_listen_all(&m, NULL, 0, NULL) == -1)
		mr_fatal("cannot bind every listener; not starting");
	m.submit_fd = mr_submit_open(m.cfg);
	if (m.cfg->control_socket != NULL &&
	    (m.ctlfd = mr_control_open(m.cfg)) == -1)
		mr_fatal("cannot make the control socket; not starting");
	if (m.cfg->metrics_listen != NULL &&
	    (m.metricsfd = mr_metrics_open(m.cfg)) == -1)
		mr_fatal("cannot bind the metrics listener; not starting");
	if (geteuid() != 0)
		mr_info("not started as root: every process runs as uid %ld "
		    "without chroot (demo and test mode)", (long)geteuid());
	if (pidfile != NULL)
		write_pidfile(pidfile);
	evs[0] = evsignal_new(m.base, SIGTERM, on_sigterm, &m);
	evs[1] = evsignal_new(m.base, SIGINT, on_sigterm, &m);
	evs[2] = evsignal_new(m.base, SIGHUP, on_sighup, &m);
	evs[3] = evsignal_new(m.base, SIGCHLD, on_sigchld, &m);
	evs[4] = NULL;
	for (i = 0; evs[i] != NULL; i++)
		event_add(evs[i], NULL);
	mr_supervise_init(&m);
	mr_supervise_start(&m);
	mr_info("mailrootd: ready (%zu virtual server%s, %zu listener%s)",
	    m.cfg->nservers, m.cfg->nservers == 1 ? "" : "s", m.nlfds,
	    m.nlfds == 1 ? "" : "s");
	/* the listeners are listening: a client is accepted from now on */
	mr_notify("READY=1");
	event_base_dispatch(m.base);
	mr_info("mailrootd: stopped");
	for (i = 0; evs[i] != NULL; i++)
		event_free(evs[i]);
	mr_listen_close(m.lfds, m.nlfds);
	mr_control_close(m.cfg, m.ctlfd);
	if (m.metricsfd != -1)
		close(m.metricsfd);
	free(m.lfds);
	if (m.submit_fd != -1)
		close(m.submit_fd);
	mr_config_free(m.cfg);
	free(m.cfgtext);
	event_base_free(m.base);
	if (pidfile != NULL)
		unlink(pidfile);
	return 0;
}
