/*
 * pki.c - the certificates smtpd gets on a reload: each pki's chain and
 * key read by mailrootd (root) into one sealed memfd.
 *
 * Security: the key files may be readable by root alone; smtpd, chrooted
 * into an empty directory, cannot open them after its start, so on a
 * reload mailrootd reads them and hands smtpd the bytes.  mailrootd does
 * not parse them: smtpd's OpenSSL does, and refuses the reload if they
 * do not load.  The memfd is sealed, so smtpd reads what was written.
 * At start and on every reload mailrootd first checks that it can read
 * every pki's files, so that a missing key is an error in the file.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "util.h"

#define PEM_MAX		(512 * 1024)	/* each file */

static int
add_file(int fd, const struct mr_pki *p, const char *path, size_t *len)
{
	char *text;
	int rc = 0;

	if ((text = mr_read_file(path, PEM_MAX, len)) == NULL) {
		mr_err("pki \"%s\": %s: %s", p->name, path,
		    strerror(errno));
		return -1;
	}
	if (mr_write_all(fd, text, *len) == -1) {
		mr_err("pki \"%s\": memfd: %s", p->name,
		    strerror(errno));
		rc = -1;
	}
	explicit_bzero(text, *len);
	free(text);
	return rc;
}

int
mr_pki_memfd(const struct mr_pki *p, uint32_t *certlen)
{
	size_t clen, klen;
	int fd;

	fd = memfd_create("mailroot.pki", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1) {
		mr_err("memfd_create: %s", strerror(errno));
		return -1;
	}
	if (add_file(fd, p, p->certificate, &clen) == -1 ||
	    add_file(fd, p, p->key, &klen) == -1)
		goto fail;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) == -1) {
		mr_err("sealing pki \"%s\": %s", p->name,
		    strerror(errno));
		goto fail;
	}
	*certlen = (uint32_t)clen;
	return fd;
fail:
	close(fd);
	return -1;
}

int
mr_pki_check(const struct mr_config *cfg)
{
	uint32_t certlen;
	size_t i;
	int fd, rc = 0;

	for (i = 0; i < cfg->npkis; i++) {
		if ((fd = mr_pki_memfd(&cfg->pkis[i], &certlen)) == -1)
			rc = -1;
		else
			close(fd);
	}
	return rc;
}
