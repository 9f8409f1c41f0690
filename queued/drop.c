/*
 * drop.c - local delivery into the Drop directory, in the IIS form.
 *
 * Each delivery is one file <ID>.eml that begins with the envelope,
 * "x-sender: ADDR" and one "x-receiver: ADDR" per local recipient, then
 * the message as queued (with our Received header).  The file is written
 * and fsynced in Queue/tmp and renamed into Drop without replacing any
 * file, so a reader of Drop never sees a partial or overwritten message.
 *
 * Security: the addresses were parsed by mr_mailbox_parse and contain no
 * CR or LF, so the envelope lines cannot be forged by their content.
 */
#include "config.h"

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

static int
copy_data(int from, int to)
{
	char buf[65536];
	off_t off = 0;
	ssize_t n;

	for (;;) {
		n = pread(from, buf, sizeof(buf), off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return (int)n;
		if (mr_write_all(to, buf, (size_t)n) == -1)
			return -1;
		off += n;
	}
}

/*
 * Renames into Drop as ID.eml, never over another file.  If ID.eml is
 * there already, a queued was killed after this rename but before it
 * recorded the delivery: every local recipient pending then is in that
 * file, so it is not delivered twice.
 */
static int
publish(const struct qmsg *m, const char *tmp)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s.eml", m->qs->drop, m->id);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return mr_fsync_dir(m->qs->drop);
	if (errno != EEXIST)
		return -1;
	unlink(tmp);
	return 0;
}

int
drop_deliver(struct qmsg *m, int datafd, char *err, size_t errlen)
{
	char tmp[4096];
	struct mr_buf b;
	size_t i;
	int fd = -1, rc = -1;

	mr_buf_init(&b);
	mr_buf_printf(&b, "x-sender: %s\r\n", m->sender[0] ? m->sender : "<>");
	for (i = 0; i < m->nrcpts; i++)
		if (drop_rcpt(m, i))
			mr_buf_printf(&b, "x-receiver: %s\r\n",
			    m->rcpts[i].addr);
	snprintf(tmp, sizeof(tmp), "%s/%s.drop", m->qs->tmp, m->id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1)
		goto fail;
	if (mr_write_all(fd, b.data, b.len) == -1 ||
	    copy_data(datafd, fd) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (publish(m, tmp) == -1)
		goto fail;
	rc = 0;
	goto out;
fail:
	snprintf(err, errlen, "local delivery to Drop failed: %s",
	    strerror(errno));
	if (fd != -1)
		close(fd);
	unlink(tmp);
out:
	mr_buf_free(&b);
	return rc;
}
