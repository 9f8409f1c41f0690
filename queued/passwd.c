/*
 * passwd.c - who a local peer is: its login name from /etc/passwd and
 * its groups from /etc/group, for the submit-users and
 * submit-sender-users settings (queued/submit.c).
 *
 * The files are read directly, not through NSS: queued runs under
 * seccomp and Landlock, where an NSS module that opens a socket or
 * loads a library would be killed or refused.  So only users and
 * groups in the local files are known (system users are); a uid the
 * files do not name has no name, may submit only where submit-users
 * is "any", and gets no group membership.
 *
 * Security: the files are root's and trusted for content, but each line
 * is still bounded and split field by field without writing past a
 * buffer; a line too long or malformed is skipped.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queued.h"

#define PW_LINE_MAX	4096

/* Splits line at ':' into at most n fields; the number found. */
static size_t
split(char *line, char **f, size_t n)
{
	size_t i = 0;
	char *c;

	line[strcspn(line, "\n")] = '\0';
	while (i < n) {
		f[i++] = line;
		if ((c = strchr(line, ':')) == NULL)
			break;
		*c = '\0';
		line = c + 1;
	}
	return i;
}

static int
num_is(const char *s, unsigned long want)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	return *s != '\0' && *end == '\0' && errno == 0 && v == want;
}

int
pw_name_of(uid_t uid, char *name, size_t len)
{
	char line[PW_LINE_MAX], *f[4];
	FILE *fp;
	int rc = -1;

	if ((fp = fopen("/etc/passwd", "re")) == NULL)
		return -1;
	while (rc == -1 && fgets(line, sizeof(line), fp) != NULL)
		if (split(line, f, 4) == 4 && num_is(f[2], uid) &&
		    strlen(f[0]) < len && f[0][0] != '\0') {
			memcpy(name, f[0], strlen(f[0]) + 1);
			rc = 0;
		}
	(void)fclose(fp);	/* read only: nothing to lose */
	return rc;
}

/* 1 if user (primary group gid) is a member of group gname. */
static int
in_group(const char *gname, const char *user, gid_t gid)
{
	char line[PW_LINE_MAX], *f[4], *m, *rest;
	FILE *fp;
	int found = 0;

	if ((fp = fopen("/etc/group", "re")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		if (split(line, f, 4) != 4 || strcmp(f[0], gname) != 0)
			continue;
		if (num_is(f[2], gid))
			found = 1;
		rest = f[3];
		while (!found && user[0] != '\0' &&
		    (m = strsep(&rest, ",")) != NULL)
			found = strcmp(m, user) == 0;
		break;
	}
	(void)fclose(fp);
	return found;
}

int
pw_listed(const char *user, gid_t gid, char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (list[i][0] == '@') {
			if (in_group(list[i] + 1, user, gid))
				return 1;
		} else if (user[0] != '\0' && strcmp(list[i], user) == 0)
			return 1;
	}
	return 0;
}
