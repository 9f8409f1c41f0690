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
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "log.h"
#include "master.h"
#include "util.h"

#define CONFIG_MAX	(4 << 20)

static const char *mailroot_dirs[] = { "Queue", "Pickup", "Drop", "Badmail" };

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

/* mkdir -p for a mailroot's parents (root-owned, like any spool path). */
static int
make_parents(const char *path)
{
	char buf[4096];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST) {
			mr_err("mkdir %s: %s", buf, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	return 0;
}

static int
make_dir(const char *path, mode_t mode, uid_t uid, gid_t gid, int chown_it)
{
	if (mkdir(path, mode) == -1 && errno != EEXIST) {
		mr_err("mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	if (chown_it && chown(path, uid, gid) == -1) {
		mr_err("chown %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Every mailroot gets Queue, Pickup, Drop and Badmail, owned by the queue
 * user; the chroot directory for smtpd exists, is owned by root and empty.
 * Returns 0, or -1 with the reason logged.
 */
static int
prepare_dirs(const struct mr_config *cfg)
{
	struct passwd *pw = NULL;
	char path[4096];
	size_t s, i;
	int root = geteuid() == 0;
	uid_t uid = 0;
	gid_t gid = 0;

	if (root) {
		if ((pw = getpwnam(cfg->user)) == NULL) {
			mr_err("user \"%s\" does not exist (create it: "
			    "useradd --system --no-create-home --shell "
			    "/usr/sbin/nologin %s)", cfg->user, cfg->user);
			return -1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	for (s = 0; s < cfg->nservers; s++) {
		const char *mr = cfg->servers[s].mailroot;

		if (make_parents(mr) == -1 ||
		    make_dir(mr, 0755, uid, gid, root) == -1)
			return -1;
		for (i = 0; i < sizeof(mailroot_dirs) / sizeof(*mailroot_dirs);
		    i++) {
			snprintf(path, sizeof(path), "%s/%s", mr,
			    mailroot_dirs[i]);
			if (make_dir(path, 0750, uid, gid, root) == -1)
				return -1;
		}
		snprintf(path, sizeof(path), "%s/Queue/tmp", mr);
		if (make_dir(path, 0700, uid, gid, root) == -1)
			return -1;
	}
	if (root) {
		struct stat st;

		if (make_parents(cfg->chroot) == -1 ||
		    (mkdir(cfg->chroot, 0755) == -1 && errno != EEXIST)) {
			mr_err("mkdir %s: %s (the chroot directory for smtpd)",
			    cfg->chroot, strerror(errno));
			return -1;
		}
		if (stat(cfg->chroot, &st) == -1 || st.st_uid != 0 ||
		    (st.st_mode & 022)) {
			mr_err("%s: the chroot directory must be owned by "
			    "root and not writable by others", cfg->chroot);
			return -1;
		}
	}
	return 0;
}

static void
write_pidfile(const char *path)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (fd == -1 || mr_write_all(fd, buf, (size_t)n) == -1)
		mr_fatal("pid file %s: %s", path, strerror(errno));
	close(fd);
}

static void
on_sigterm(evutil_socket_t sig, short ev, void *arg)
{
	struct mr_master *m = arg;

	(void)ev;
	if (m->stopping)
		return;
	mr_info("signal %d: stopping", (int)sig);
	mr_supervise_stop(m);
}

static void
on_sighup(evutil_socket_t sig, short ev, void *arg)
{
	struct mr_master *m = arg;
	struct mr_config *cfg, *old;
	char *text;
	size_t len;
	int *oldfds;
	size_t nold;

	(void)sig;
	(void)ev;
	if (m->stopping)
		return;
	mr_info("SIGHUP: reloading %s", m->cfgpath);
	cfg = load_config(m->cfgpath, &text, &len, 1);
	if (cfg == NULL) {
		mr_err("reload failed: %s has errors; the running "
		    "configuration stays in force", m->cfgpath);
		return;
	}
	if (prepare_dirs(cfg) == -1) {
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
	if (print)
		mr_config_print(m.cfg, stdout);
	if (check || print) {
		mr_config_free(m.cfg);
		free(m.cfgtext);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	if (prepare_dirs(m.cfg) == -1)
		mr_fatal("cannot prepare the mailroots; not starting");
	if ((m.base = event_base_new()) == NULL)
		mr_fatal("event_base_new failed");
	if (mr_listen_all(&m, NULL, 0, NULL) == -1)
		mr_fatal("cannot bind every listener; not starting");
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
	event_base_dispatch(m.base);
	mr_info("mailrootd: stopped");
	for (i = 0; evs[i] != NULL; i++)
		event_free(evs[i]);
	mr_listen_close(m.lfds, m.nlfds);
	free(m.lfds);
	mr_config_free(m.cfg);
	free(m.cfgtext);
	event_base_free(m.base);
	if (pidfile != NULL)
		unlink(pidfile);
	return 0;
}
