/*
 * maildir.c - local delivery into Maildir folders (`deliver maildir PATH').
 *
 * PATH is expanded per recipient: %d is the domain (lower case; for an
 * alias-of domain, the domain it aliases), %u the local part, %% a "%".
 * The message is written to PATH/tmp/NAME, fsynced, renamed to
 * PATH/new/NAME (never over another file) and new/ is fsynced, so a
 * reader of new/ never sees a partial message, and only then does the
 * recipient count as delivered (its state is written to the envelope
 * after this returns): a crash before that delivers it again, never
 * loses it.  A directory made on the way is fsynced into its parent too.
 *
 * Cost: this runs on queued's event loop, synchronously, so the two
 * fsyncs of each delivery (the file, new/) hold up everything else
 * queued does (SMTP commits, the control socket) for as long as the disk
 * takes; on a slow disk with many Maildir recipients that is what
 * limits throughput.  LMTP to a mail store (lmtp.c) does not wait so.  NAME is
 * the usual unique name "SECS.MUSECPPIDQN.HOST".  The file begins with
 * Return-Path and Delivered-To fields, then the message with LF line
 * ends (the Maildir convention).  PATH and its tmp/, new/ and cur/ are
 * made (mode 0700) when missing, as is every directory of PATH below
 * the part before its first "%" (which must exist).
 *
 * Who writes: queued, as the queue user (`user', default mailroot); files
 * are 0600.  The folders must therefore belong to that user (or be
 * writable by it), and a mail store reading them must run as that user
 * (Dovecot: mail_uid).  Delivery as each mailbox's own user is not done:
 * it would need a privileged helper, and queued holds no privilege.
 *
 * Security: the local part comes from the network.  It is used in a path
 * only when it is made of atext characters and does not begin with "."
 * (so no "/", "..", NUL or control byte); other recipients fail with
 * 5.1.3.  Directories are opened with O_NOFOLLOW | O_DIRECTORY below
 * PATH's parent, so a link planted in a mailbox tree is not followed
 * there.  Landlock confines queued to the directory above the first %.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/time.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "queued.h"
#include "util.h"

/* RFC 5322 atext, and "." (not leading): safe as one path component */
static int
safe_local(const char *s, size_t n)
{
	static const char extra[] = "!#$%&'*+-=?^_`{|}~.";	/* not "/" */
	size_t i;

	if (n == 0 || s[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(extra, c) != NULL))
			return 0;
	}
	return 1;
}

/* PATH with %d (dom), %u (addr's local part) and %% replaced; -1 if
 * addr cannot be used. */
int
maildir_expand(const char *tmpl, const char *addr, const char *dom,
    struct mr_buf *out)
{
	const char *at = strrchr(addr, '@'), *p;
	size_t i, ulen;

	if (at == NULL || !safe_local(addr, (size_t)(at - addr)))
		return -1;
	ulen = (size_t)(at - addr);
	mr_buf_reset(out);
	for (p = tmpl; *p != '\0'; p++) {
		if (*p != '%') {
			mr_buf_add(out, p, 1);
			continue;
		}
		p++;
		if (*p == 'u')
			mr_buf_add(out, addr, ulen);
		else if (*p == 'd')
			for (i = 0; dom[i] != '\0'; i++) {
				char c = (char)tolower((unsigned char)dom[i]);

				if (c == '/')
					return -1;
				mr_buf_add(out, &c, 1);
			}
		else if (*p == '%')
			mr_buf_add(out, "%", 1);
		else
			return -1;	/* conf_parse.c allows no other */
	}
	mr_buf_add(out, "", 0);
	return 0;
}

/*
 * Opens the directory name below at, making it first when missing; a
 * directory made here is fsynced into at (its entry is at's data), so a
 * crash cannot leave the message in new/ of a folder whose name was lost.
 */
static int
mkdir_open(int at, const char *name)
{
	if (mkdirat(at, name, 0700) == -1) {
		if (errno != EEXIST)
			return -1;
	} else if (fsync(at) == -1)
		return -1;
	return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
}

/*
 * Opens the directory at path, making every component below root (and
 * following no link there), and the maildir's tmp/, new/ and cur/.
 */
static int
open_maildir(const char *root, const char *path, int *tmpfd, int *newfd)
{
	char *rest = mr_xstrdup(path + strlen(root)), *p, *comp;
	int dir, next, cur = -1, rc = -1;

	*tmpfd = *newfd = -1;
	if ((dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		goto fail;
	for (p = rest; (comp = strsep(&p, "/")) != NULL; ) {
		if (comp[0] == '\0' || strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			errno = EINVAL;
			goto fail;
		}
		next = mkdir_open(dir, comp);
		close(dir);
		if ((dir = next) == -1)
			goto fail;
	}
	if ((*tmpfd = mkdir_open(dir, "tmp")) == -1 ||
	    (*newfd = mkdir_open(dir, "new")) == -1 ||
	    (cur = mkdir_open(dir, "cur")) == -1)
		goto fail;
	rc = 0;
fail:
	if (rc == -1) {
		int saved = errno;

		if (*tmpfd != -1)
			close(*tmpfd);
		if (*newfd != -1)
			close(*newfd);
		*tmpfd = *newfd = -1;
		errno = saved;
	}
	if (cur != -1)
		close(cur);
	if (dir != -1)
		close(dir);
	free(rest);
	return rc;
}

/* "SECS.MUSECPPIDQN.HOST", with "/" and ":" in HOST escaped. */
static void
unique_name(char *buf, size_t len)
{
	static unsigned seq;
	struct timeval tv;
	const char *h = q->cfg->hostname ? q->cfg->hostname : "localhost";
	size_t n;

	gettimeofday(&tv, NULL);
	n = (size_t)snprintf(buf, len, "%lld.M%ldP%ldQ%u.",
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), ++seq);
	for (; *h != '\0' && n + 5 < len; h++) {
		if (*h == '/' || *h == ':')
			n += (size_t)snprintf(buf + n, len - n, "\\%03o",
			    (unsigned char)*h);
		else
			buf[n++] = *h;
	}
	buf[n] = '\0';
}

/* The message with CRLF turned into LF. */
static int
copy_lf(int from, int to)
{
	char in[65536], out[65536];
	off_t off = 0;
	ssize_t n, i;
	size_t o;
	int cr = 0;

	for (;;) {
		n = pread(from, in, sizeof(in), off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
		for (i = 0, o = 0; i < n; i++) {
			if (cr && in[i] != '\n')
				out[o++] = '\r';
			cr = in[i] == '\r';
			if (!cr)
				out[o++] = in[i];
			if (o >= sizeof(out) - 1) {
				if (mr_write_all(to, out, o) == -1)
					return -1;
				o = 0;
			}
		}
		if (mr_write_all(to, out, o) == -1)
			return -1;
	}
	if (n == -1)
		return -1;
	return cr ? mr_write_all(to, "\r", 1) : 0;
}

static int
write_file(int tmpfd, const char *name, const struct mr_buf *head,
    int datafd)
{
	int fd, rc = -1;

	fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (mr_write_all(fd, head->data, head->len) == 0 &&
	    copy_lf(datafd, fd) == 0 && fsync(fd) == 0)
		rc = 0;
	if (close(fd) == -1)
		rc = -1;
	if (rc == -1)
		unlinkat(tmpfd, name, 0);
	return rc;
}

/*
 * Delivers m to recipient i: 0 delivered, 1 failed for good (err says
 * why), -1 failed for now.
 */
int
maildir_deliver(struct qmsg *m, size_t i, const struct mr_domain *d,
    int datafd, char *err, size_t errlen)
{
	const char *tmpl = d->deliver_arg;
	struct mr_buf path, head;
	char name[256], *root = NULL;
	int tmpfd = -1, newfd = -1, rc = -1;

	mr_buf_init(&path);
	mr_buf_init(&head);
	if (maildir_expand(tmpl, m->rcpts[i].addr, d->name, &path) == -1) {
		snprintf(err, errlen, "550 5.1.3 the local part cannot name "
		    "a Maildir folder");
		rc = 1;
		goto out;
	}
	root = maildir_root(tmpl);
	if (open_maildir(root, path.data, &tmpfd, &newfd) == -1)
		goto fail;
	mr_buf_printf(&head, "Return-Path: <%s>\nDelivered-To: %s\n",
	    m->sender, m->rcpts[i].addr);
	unique_name(name, sizeof(name));
	if (write_file(tmpfd, name, &head, datafd) == -1)
		goto fail;
	if (renameat2(tmpfd, name, newfd, name, RENAME_NOREPLACE) == -1) {
		unlinkat(tmpfd, name, 0);
		goto fail;
	}
	if (fsync(newfd) == -1)
		goto fail;
	mr_info("%s: to=<%s> relay=local status=sent (delivered to Maildir "
	    "%s/new/%s)", m->id, m->rcpts[i].addr, path.data, name);
	rc = 0;
	goto out;
fail:
	snprintf(err, errlen, "451 4.3.0 Maildir delivery to %s failed: %s",
	    path.data ? path.data : "?", strerror(errno));
out:
	if (tmpfd != -1)
		close(tmpfd);
	if (newfd != -1)
		close(newfd);
	free(root);
	mr_buf_free(&path);
	mr_buf_free(&head);
	return rc;
}

/* The directory Landlock must open to queued for tmpl: the part before
 * the first "%", up to its last "/". */
char *
maildir_root(const char *tmpl)
{
	char *r = mr_xstrdup(tmpl), *pc = strchr(r, '%'), *slash;

	if (pc != NULL)
		*pc = '\0';
	if ((slash = strrchr(r, '/')) != NULL)
		slash[slash == r ? 1 : 0] = '\0';
	return r;
}
