/*
 * w3clog.c - each virtual server's transaction log, in the format IIS
 * let the administrator choose (IIS-MODEL.md section 7): W3C Extended
 * (the default), NCSA Common or the Microsoft IIS Log File Format
 * (logfmt.c writes the last two).  The files are in the server's log
 * directory and named as IIS named them: exYYMMDD.log daily (exYYMMDDHH
 * hourly, exYYMMWW weekly, exYYMM monthly), "nc" and "in" instead of
 * "ex" for NCSA and IIS; by size extendNN.log, ncsaNN.log, inetsvNN.log,
 * NN counting on from the highest number in the directory, a new file
 * when the next line would take the file past the size.  A W3C file
 * opens with the directives #Software, #Version: 1.0, #Date and #Fields,
 * then one line per SMTP command.  Times are UTC, by queued's clock
 * (q_now: a test may shift it).
 *
 * smtpd, which has no files, sends each answered command (MR_Q_LOG);
 * lines wait in memory and are written once a second or per 64 KB, so no
 * SMTP session waits on the disk.  A write that fails (full disk, a
 * directory gone) loses those lines with a warning at most once a minute,
 * never mail.
 *
 * Security: every value comes from smtpd, already decoded and free of
 * control bytes (ipc_msg.c); here a space or any byte outside printable
 * ASCII becomes '+', as IIS wrote spaces, so no value can split a field
 * or a line, and an empty value is "-".  The directory is opened before
 * the sandbox and the files with openat and O_NOFOLLOW.
 *
 * Rotation by others (logrotate): the current file is compared with the
 * name it was opened under at most once a second; once that name is gone
 * or is another file, the next line goes to a new file of that name,
 * opening with the directives.  So renaming a log away needs no signal.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "ipc_msg.h"
#include "log.h"
#include "logfmt.h"
#include "queued.h"
#include "util.h"

#define FLUSH_AT	(64 * 1024)
#define PENDING_MAX	(4 * 1024 * 1024)	/* then lines are lost */
#define WARN_EVERY	60

struct wlog {
	int		 dfd;		/* the directory, or -1: no log */
	char		*dir;
	int		 fd;		/* the current file, or -1 */
	char		 name[32];	/* its name */
	uint64_t	 size;		/* its size, pending lines included */
	unsigned	 seq;		/* rotate size: NN of the file, or 0 */
	enum mr_log_format seq_format;	/* the format seq was found for */
	time_t		 checked;	/* when moved() last looked */
	struct mr_buf	 pending;
};

static struct {
	struct wlog	*logs;
	size_t		 n;
	struct event	*timer;
	struct mr_buf	 line;		/* the line being made */
	uint64_t	 lost;
	time_t		 warned;
} w;

static void	flush_all(void);

/* The directory is made if missing and opened, before the sandbox. */
void
w3clog_init(void)
{
	size_t i;

	w.n = q->nservers;
	w.logs = mr_xcalloc(w.n, sizeof(*w.logs));
	for (i = 0; i < w.n; i++) {
		const struct mr_logcfg *lc = &q->servers[i].srv->log;
		struct wlog *l = &w.logs[i];

		l->dfd = l->fd = -1;
		mr_buf_init(&l->pending);
		if (lc->directory == NULL || lc->format == MR_LOG_NONE)
			continue;
		if (mkdir(lc->directory, 0750) == -1 && errno != EEXIST)
			mr_warn("log directory %s: %s", lc->directory,
			    strerror(errno));
		l->dfd = open(lc->directory, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC);
		if (l->dfd == -1) {
			mr_err("server \"%s\": no transaction log: %s: %s",
			    q->servers[i].srv->name, lc->directory,
			    strerror(errno));
			continue;
		}
		l->dir = mr_xstrdup(lc->directory);
	}
}

/* The directory the sandbox must let queued write in, or NULL. */
const char *
w3clog_dir(size_t server)
{
	return server < w.n ? w.logs[server].dir : NULL;
}

/* The prefixes of IIS's file names, by format (enum mr_log_format). */
static const char *const time_prefix[] = { "ex", "nc", "in" };
static const char *const size_prefix[] = { "extend", "ncsa", "inetsv" };

/* The file a line at t belongs in, by the rotation of IIS. */
static void
file_name(const struct mr_logcfg *lc, unsigned seq, const struct tm *tm,
    char *buf, size_t len)
{
	const char *p = time_prefix[lc->format];
	int yy = tm->tm_year % 100, mm = tm->tm_mon + 1;
	int first_wday = (tm->tm_wday - (tm->tm_mday - 1) % 7 + 7) % 7;

	switch (lc->rotate) {
	case MR_ROTATE_HOURLY:
		snprintf(buf, len, "%s%02d%02d%02d%02d.log", p, yy, mm,
		    tm->tm_mday, tm->tm_hour);
		break;
	case MR_ROTATE_WEEKLY:	/* week of the month, from Sunday */
		snprintf(buf, len, "%s%02d%02d%02d.log", p, yy, mm,
		    (tm->tm_mday - 1 + first_wday) / 7 + 1);
		break;
	case MR_ROTATE_MONTHLY:
		snprintf(buf, len, "%s%02d%02d.log", p, yy, mm);
		break;
	case MR_ROTATE_SIZE:
		snprintf(buf, len, "%s%02u.log", size_prefix[lc->format], seq);
		break;
	default:
		snprintf(buf, len, "%s%02d%02d%02d.log", p, yy, mm,
		    tm->tm_mday);
		break;
	}
}

/* NN of name if it is prefixNN.log, else 0. */
static unsigned
seq_of(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	unsigned long v = 0;
	const char *s;

	if (strncmp(name, prefix, n) != 0)
		return 0;
	for (s = name + n; *s >= '0' && *s <= '9' && v < 1000000; s++)
		v = v * 10 + (unsigned long)(*s - '0');
	if (s == name + n || strcmp(s, ".log") != 0 || v >= 1000000)
		return 0;
	return (unsigned)v;
}

/* The highest NN in the directory, as IIS went on after a restart; 1
 * when there is none. */
static unsigned
last_seq(struct wlog *l, enum mr_log_format f)
{
	struct dirent *de;
	unsigned best = 1, v;
	DIR *d;
	int fd;

	fd = openat(l->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return best;
	}
	while ((de = readdir(d)) != NULL)
		if ((v = seq_of(de->d_name, size_prefix[f])) > best)
			best = v;
	closedir(d);
	return best;
}

static void
lose(struct wlog *l, const char *why)
{
	time_t now = time(NULL);

	w.lost += l->pending.len ? 1 : 0;
	if (now - w.warned >= WARN_EVERY) {
		mr_warn("transaction log %s/%s: %s; log lines are lost",
		    l->dir, l->name, why);
		w.warned = now;
	}
	mr_buf_reset(&l->pending);
}

static void
write_pending(struct wlog *l)
{
	if (l->pending.len == 0)
		return;
	if (l->fd == -1) {
		lose(l, "cannot open it");
		return;
	}
	if (mr_write_all(l->fd, l->pending.data, l->pending.len) == -1) {
		lose(l, strerror(errno));
		return;
	}
	mr_buf_reset(&l->pending);
}

static void
put_field_name(struct mr_buf *b, const char *name)
{
	mr_buf_adds(b, " ");
	mr_buf_adds(b, name);
}

/* The directives: whenever queued opens the file, as IIS did after a
 * restart (a reload may have changed the fields). */
static void
directives(struct wlog *l, const struct mr_logcfg *lc, const struct tm *tm)
{
	char date[32];
	size_t i, start = l->pending.len;

	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", tm);
	mr_buf_printf(&l->pending, "#Software: mailroot %s\r\n#Version: 1.0"
	    "\r\n#Date: %s\r\n#Fields:", PACKAGE_VERSION, date);
	for (i = 0; i < lc->nfields; i++)
		put_field_name(&l->pending, lc->fields[i]);
	mr_buf_adds(&l->pending, "\r\n");
	l->size += l->pending.len - start;
}

/* Switches l to the file name, writing what is pending to the old one;
 * size is what the file already holds. */
static void
switch_file(struct wlog *l, const char *name)
{
	struct stat st;

	write_pending(l);
	if (l->fd != -1)
		close(l->fd);
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->size = 0;
	l->fd = openat(l->dfd, name, O_WRONLY | O_APPEND | O_CREAT |
	    O_NOFOLLOW | O_CLOEXEC, 0640);
	if (l->fd == -1)
		lose(l, strerror(errno));
	else if (fstat(l->fd, &st) == 0)
		l->size = (uint64_t)st.st_size;
}

/* l's file was renamed or removed since it was opened (logrotate);
 * looked at once a second at most. */
static int
moved(struct wlog *l, time_t now)
{
	struct stat open_st, name_st;

	if (l->fd == -1 || now == l->checked)
		return 0;
	l->checked = now;
	if (fstat(l->fd, &open_st) == -1 ||
	    fstatat(l->dfd, l->name, &name_st, AT_SYMLINK_NOFOLLOW) == -1)
		return 1;
	return open_st.st_ino != name_st.st_ino ||
	    open_st.st_dev != name_st.st_dev;
}

/* The file the next line (len bytes) goes in: a new name by the time,
 * or by size the next number when the line would not fit, or the same
 * name again when the file was renamed away.  1 when a file was opened. */
static int
choose_file(struct wlog *l, const struct mr_logcfg *lc, const struct tm *tm,
    size_t len, time_t now)
{
	char name[32];
	int opened = 0;

	if (lc->rotate == MR_ROTATE_SIZE && (l->seq == 0 ||
	    l->seq_format != lc->format)) {
		l->seq = last_seq(l, lc->format);
		l->seq_format = lc->format;
	}
	file_name(lc, l->seq, tm, name, sizeof(name));
	if (l->fd == -1 || strcmp(name, l->name) != 0 || moved(l, now)) {
		switch_file(l, name);
		opened = 1;
	}
	if (lc->rotate == MR_ROTATE_SIZE && l->size > 0 &&
	    l->size + len > lc->rotate_size) {
		l->seq++;
		file_name(lc, l->seq, tm, name, sizeof(name));
		switch_file(l, name);
		opened = 1;
	}
	return opened;
}

/* One value: '-' when empty; a space or a byte a W3C reader could
 * mistake becomes '+'. */
static void
put_value(struct mr_buf *b, const char *s)
{
	if (s == NULL || *s == '\0') {
		mr_buf_adds(b, " -");
		return;
	}
	mr_buf_adds(b, " ");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		mr_buf_add(b, c <= 0x20 || c >= 0x7f ? "+" : s, 1);
	}
}

static void
put_num(struct mr_buf *b, unsigned long long v)
{
	mr_buf_printf(b, " %llu", v);
}

/* The value of one field, IIS's SMTP meaning (IIS-MODEL.md 7): the
 * method is the verb, the query its arguments, cs-username the name the
 * client gave in HELO/EHLO, s-sitename SMTPSVC and the server's number. */
static void
put_field(struct mr_buf *b, const char *f, const struct mr_m_log *m,
    const struct tm *tm)
{
	char v[64];

	if (strcasecmp(f, "date") == 0 || strcasecmp(f, "time") == 0) {
		strftime(v, sizeof(v), f[0] == 'd' || f[0] == 'D' ?
		    "%Y-%m-%d" : "%H:%M:%S", tm);
		put_value(b, v);
	} else if (strcasecmp(f, "c-ip") == 0)
		put_value(b, m->client_ip);
	else if (strcasecmp(f, "cs-username") == 0)
		put_value(b, m->user[0] ? m->user : m->helo);
	else if (strcasecmp(f, "s-sitename") == 0) {
		snprintf(v, sizeof(v), "SMTPSVC%u", m->server + 1);
		put_value(b, v);
	} else if (strcasecmp(f, "s-computername") == 0)
		put_value(b, q->cfg->hostname);
	else if (strcasecmp(f, "s-ip") == 0)
		put_value(b, m->server_ip);
	else if (strcasecmp(f, "s-port") == 0)
		put_num(b, m->server_port);
	else if (strcasecmp(f, "cs-method") == 0)
		put_value(b, m->method);
	else if (strcasecmp(f, "cs-uri-query") == 0)
		put_value(b, m->args);
	else if (strcasecmp(f, "sc-status") == 0)
		put_num(b, m->status);
	else if (strcasecmp(f, "sc-win32-status") == 0)
		put_num(b, 0);
	else if (strcasecmp(f, "sc-bytes") == 0)
		put_num(b, m->sc_bytes);
	else if (strcasecmp(f, "cs-bytes") == 0)
		put_num(b, m->cs_bytes);
	else if (strcasecmp(f, "time-taken") == 0)
		put_num(b, m->time_taken);
	else if (strcasecmp(f, "cs-version") == 0)
		put_value(b, "SMTP");
	else
		put_value(b, NULL);	/* cs-uri-stem, cs-host, cs(...) */
}

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	flush_all();
}

static void
flush_all(void)
{
	size_t i;

	for (i = 0; i < w.n; i++)
		write_pending(&w.logs[i]);
}

/* The line of m in the server's format, in w.line. */
static void
make_line(const struct mr_logcfg *lc, const struct mr_m_log *m,
    const struct tm *tm)
{
	size_t i;

	mr_buf_reset(&w.line);
	if (lc->format == MR_LOG_NCSA) {
		logfmt_ncsa(&w.line, m, tm);
		return;
	}
	if (lc->format == MR_LOG_IIS) {
		logfmt_iis(&w.line, m, tm, q->cfg->hostname);
		return;
	}
	for (i = 0; i < lc->nfields; i++)
		put_field(&w.line, lc->fields[i], m, tm);
	mr_buf_adds(&w.line, "\r\n");
}

static void
arm_timer(void)
{
	struct timeval tv = { 1, 0 };

	if (w.timer == NULL)
		w.timer = evtimer_new(q->base, timer_cb, NULL);
	if (w.timer != NULL && !evtimer_pending(w.timer, NULL))
		evtimer_add(w.timer, &tv);
}

/* MR_Q_LOG from smtpd: -1 if malformed (the caller drops smtpd). */
int
w3clog_add(const unsigned char *data, size_t len)
{
	const struct mr_logcfg *lc;
	struct mr_m_log m;
	struct wlog *l;
	const char *err, *line;
	struct tm tm;
	time_t now = q_now();
	size_t n;

	if (mr_msg_log(data, len, &m, &err) == -1 || m.server >= w.n) {
		mr_warn("smtpd sent a %s", m.server >= w.n ? "LOG for no "
		    "server" : err);
		return -1;
	}
	l = &w.logs[m.server];
	lc = &q->servers[m.server].srv->log;
	if (l->dfd == -1 || lc->format == MR_LOG_NONE || gmtime_r(&now, &tm)
	    == NULL)
		return 0;	/* logging off, or a reload turned it off */
	if (l->pending.len > PENDING_MAX) {
		lose(l, "the disk is too slow");
		return 0;
	}
	make_line(lc, &m, &tm);
	/* a W3C value went out after a space: the line starts without */
	line = w.line.data + (lc->format == MR_LOG_W3C);
	n = w.line.len - (lc->format == MR_LOG_W3C);
	if (choose_file(l, lc, &tm, n, now) && lc->format == MR_LOG_W3C)
		directives(l, lc, &tm);
	mr_buf_add(&l->pending, line, n);
	l->size += n;
	if (l->pending.len >= FLUSH_AT)
		write_pending(l);
	arm_timer();
	return 0;
}

/* At exit: what is pending is written. */
void
w3clog_shutdown(void)
{
	size_t i;

	flush_all();
	for (i = 0; w.logs != NULL && i < w.n; i++) {
		if (w.logs[i].fd != -1)
			close(w.logs[i].fd);
		if (w.logs[i].dfd != -1)
			close(w.logs[i].dfd);
		mr_buf_free(&w.logs[i].pending);
		free(w.logs[i].dir);
	}
	mr_buf_free(&w.line);
	free(w.logs);
	if (w.timer != NULL)
		event_free(w.timer);
	memset(&w, 0, sizeof(w));
}
