/*
 * privdrop.h - dropping a child to its own user, chrooted where asked.
 */
#ifndef MR_PRIVDROP_H
#define MR_PRIVDROP_H

/*
 * As root: chroot to root_dir (if not NULL), set the user's gid with no
 * supplementary groups, set uid, forbid new privileges, and verify that
 * root cannot be regained.  Exits (mr_fatal) on any failure.
 * Not root: no change; logs once that privilege separation is off.
 * Returns 1 if privileges were dropped, 0 if we were not root.
 */
int	mr_privdrop(const char *proc, const char *user, const char *root_dir);

#endif
