/*
 * control.h - between the control socket (control.c) and its verbs
 * (control_verbs.c).
 */
#ifndef MR_CONTROL_H
#define MR_CONTROL_H

#include <sys/types.h>

struct conn;
struct mr_buf;
struct mr_ctl_req;

/* Answers a request: err NULL for "ok" followed by out. */
void	control_answer(struct conn *, const char *err, const struct mr_buf *);
/* Answers "ok" and out, whose memory it takes (out is left empty). */
void	control_answer_take(struct conn *, struct mr_buf *);
/* Carries out a parsed request from uid and answers it. */
void	control_do(struct conn *, uid_t, const struct mr_ctl_req *);

/* For the verbs outside control_verbs.c: a JSON string, with quotes; a
 * time as ISO 8601 UTC ("-" for none). */
void	control_json_str(struct mr_buf *, const char *);
void	control_iso_time(time_t, char *, size_t);

/* sessions.c: mailrootctl sessions */
void	sessions_verb(struct conn *, const struct mr_ctl_req *);

#endif
