/*
 * util.h - small system helpers shared by the daemons.
 */
#ifndef MR_UTIL_H
#define MR_UTIL_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

int	 mr_write_all(int fd, const void *, size_t);	/* 0 or -1 */
int	 mr_fsync_dir(const char *path);		/* 0 or -1 */
/* everything written on path's filesystem flushed (syncfs; sync where
 * there is none): 0, or -1 with errno */
int	 mr_syncfs_dir(const char *path);
/* The write errors of fd's data since it was last asked, without
 * flushing the device's cache (fdatasync where the system has no other
 * way): 0, or -1 with errno */
int	 mr_write_errors(int fd);
/* path whole or not at all (a temporary name, flushed, renamed); the
 * directory is the caller's to flush.  0, or -1 with errno. */
int	 mr_write_file_atomic(const char *path, const void *, size_t,
	    mode_t mode);
int	 mr_set_nonblock(int fd);
int	 mr_set_cloexec(int fd, int on);
/* A queue id unique across hosts and restarts: 20 hex chars of time
 * (µs) and randomness. buf must hold MR_QID_LEN + 1 bytes. */
#define MR_QID_LEN	24
void	 mr_queue_id(char *buf);
uint64_t mr_now_ms(void);		/* CLOCK_MONOTONIC */
/* FNV-1a of a NUL-terminated string, for the daemons' hash tables */
uint32_t mr_hash_str(const char *);
/* Reads a whole file (<= max bytes) into a malloc'd NUL-terminated
 * buffer; NULL with errno on failure. */
char	*mr_read_file(const char *path, size_t max, size_t *lenp);
/* Reads all of fd from offset 0 (<= max bytes). */
char	*mr_read_fd(int fd, size_t max, size_t *lenp);
/* "host", "host:port", "[1.2.3.4]:port", "[IPv6:..]": splits into a
 * malloc'd host (brackets kept, so callers know "no MX lookup") and port
 * (def_port when absent).  -1 on syntax error. */
int	 mr_split_hostport(const char *s, unsigned def_port, char **host,
	    unsigned *port);

#endif
