/*
 * ipc.h - framed messages between mailroot processes.
 *
 * Channels are SOCK_SEQPACKET socketpairs: one datagram is one frame,
 * an 8-byte header (u32 type, u32 payload length, little-endian) and the
 * payload, with at most one file descriptor attached by SCM_RIGHTS.
 * Every frame is checked (length matches, type known to the receiver,
 * size within MR_IPC_MAX, at most one fd) before the callback sees it; a
 * peer that sends a bad frame is dropped, never trusted.
 */
#ifndef MR_IPC_H
#define MR_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct event_base;

#define MR_IPC_HDR	8
#define MR_IPC_MAX	(256 * 1024)	/* largest payload */

struct mr_ipc_msg {
	uint32_t		 type;
	uint32_t		 len;
	const unsigned char	*data;
	int			 fd;	/* -1, or owned by the callback */
};

struct mr_ipc;

/* msg == NULL: the channel closed or the peer misbehaved (already logged);
 * the callback should mr_ipc_free() it. */
typedef void (*mr_ipc_cb)(struct mr_ipc *, struct mr_ipc_msg *msg, void *arg);

struct mr_ipc	*mr_ipc_new(struct event_base *, int fd, const char *peer,
		    uint32_t max_type, mr_ipc_cb, void *arg);
void		 mr_ipc_free(struct mr_ipc *);
const char	*mr_ipc_peer(const struct mr_ipc *);
/* In the msg == NULL callback: 1 if the peer sent a malformed frame
 * (misbehaved) rather than closing. */
int		 mr_ipc_was_bad(const struct mr_ipc *);
/* Queues a frame; fd (>= 0) is duplicated, the caller keeps its copy.
 * Returns 0, or -1 when the channel is already dead. */
int		 mr_ipc_send(struct mr_ipc *, uint32_t type, int fd,
		    const void *data, size_t len);
/* Before an exit: the frames waiting written, waiting up to timeout_ms
 * for room; 0 once none is left. */
int		 mr_ipc_drain(struct mr_ipc *, int timeout_ms);
int		 mr_ipc_sendb(struct mr_ipc *, uint32_t type, int fd,
		    const struct mr_buf *payload);
/* Blocking send on a bare descriptor (start-up, before a loop exists). */
int		 mr_ipc_send_fd(int sock, uint32_t type, int fd,
		    const void *data, size_t len);
/* Blocking receive with a timeout in ms (-1 = none): 1 frame, 0 closed,
 * -1 error/bad frame. data must hold MR_IPC_MAX bytes. */
int		 mr_ipc_recv_fd(int sock, uint32_t max_type,
		    struct mr_ipc_msg *out, unsigned char *data, int timeout_ms);
/* Decodes one received datagram (pure; used by the receive path, unit tests
 * and the fuzz target).  n is the datagram size, truncated is nonzero when
 * the kernel cut it (MSG_TRUNC/MSG_CTRUNC), nfds the number of fds that came
 * with it.  Returns 0 or -1 with *err set. */
int		 mr_ipc_decode(const unsigned char *buf, size_t n, int truncated,
		    int nfds, uint32_t max_type, struct mr_ipc_msg *out,
		    const char **err);
/* 1 if fd is a SOCK_SEQPACKET socket (a channel), else 0: a child whose
 * peer is not running yet finds /dev/null in that slot. */
int		 mr_ipc_is_channel(int fd);
/* The process is stopping, or mailrootd said that every child is
 * (MR_M_STOPPING): a peer that closes its channel is logged as part of
 * the stop. */
void		 mr_ipc_stopping(void);
/* 1 once mr_ipc_stopping was called. */
int		 mr_ipc_is_stopping(void);
/*
 * The end of a peer channel c, from its callback: msg is the unexpected
 * message (NULL when the channel closed or sent a malformed frame).  Logs
 * why, closes msg's descriptor, reports a misbehaving peer of the given
 * kind to the master channel (may be NULL), and frees c.
 */
void		 mr_ipc_peer_gone(struct mr_ipc *c, struct mr_ipc_msg *msg,
		    struct mr_ipc *master, uint32_t kind);
/* Decodes MR_M_PEER (u32 peer kind, with a descriptor): the kind, or 0
 * when the message is malformed. */
uint32_t	 mr_ipc_peer_kind(const struct mr_ipc_msg *);
/* Tells the master (channel m, may be NULL) that peer kind misbehaved. */
void		 mr_ipc_report_bad(struct mr_ipc *m, uint32_t kind);
/* Creates a SOCK_SEQPACKET socketpair with close-on-exec set. */
int		 mr_ipc_pair(int sv[2]);

#endif
