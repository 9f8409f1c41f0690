"""
contrib/bench/qfiles.py - queue files written straight into a mailroot's
Queue/, in the on-disk format queued recovers at start (Queue/ID.eml, the
message, and Queue/ID.env, the envelope of queued/queue_env.c:
"mailroot-envelope 1" ... "end"), without SMTP: shared by
contrib/bench/ctl-queue and contrib/bench/queue-scale.

Each message has one recipient already tried once and deferred, its next
try a day away so that nothing is delivered meanwhile; `due` messages are
due now instead (next try a minute ago), each to its own recipient at
due_domain.  Where the due ones sit among the files written (so among the
inode numbers, the order queued reads the queue in at start): `due_at`,
"last" (written last, read last: the honest case), "first" or "middle";
by default BENCH_QSCALE_DUE_AT, else "last".

Each ID.env's mtime is its next try, as queued sets it (queue_env.c): a
hint recovery uses to read the due envelopes first.
"""

import os
import pwd
import secrets
import time

BODY = ("Received: from bench.example (localhost [127.0.0.1])\r\n"
        "\tby mx.test.example with ESMTP; Mon, 30 Nov 2026 12:00:00 +0000\r\n"
        "From: app@local.test\r\nTo: user@remote.test\r\n"
        "Subject: queued for the mailroot queue benchmarks\r\n\r\n"
        "A message that waits for its next try.\r\n").encode()
DEFER = "451 4.3.0 Try again later (bench)"


def xtext(s):
    """RFC 3461 xtext, as queue_env.c writes values."""
    return "".join(c if "!" <= c <= "~" and c not in "+=" else
                   "+%02X" % ord(c) for c in s)


def envelope(qid, now, rcpt, next_try):
    return ("mailroot-envelope 1\nid %s\ncreated %d\nnext-try %d\n"
            "attempts 1\nsize %d\nclient 127.0.0.1\nhelo bench.example\n"
            "sender app@local.test\nrcpt P %s %s\nend\n" % (
                qid, now - 600, next_try, len(BODY), xtext(rcpt),
                xtext(DEFER))).encode()


DUE_AT = ("first", "last", "middle")


def due_at_env():
    """BENCH_QSCALE_DUE_AT, checked; "last" when unset."""
    at = os.environ.get("BENCH_QSCALE_DUE_AT") or "last"
    if at not in DUE_AT:
        raise SystemExit("BENCH_QSCALE_DUE_AT is one of %s, not %r"
                         % ("|".join(DUE_AT), at))
    return at


def due_first_index(n, due, due_at):
    """Index among the n files written of the first of the `due` due
    messages (they are written one after the other)."""
    if due_at == "first":
        return 0
    if due_at == "last":
        return n - due
    return max(0, (n - due) // 2)


def fill(queue, n, user, due=0, due_domain="due.test",
         domain="remote.test", due_at=None):
    """n messages in queue, owned by user (the queue user); `due` of them
    due now, written first, last or in the middle (due_at)."""
    if due_at is None:
        due_at = due_at_env()
    lo = due_first_index(n, due, due_at)
    pw = pwd.getpwnam(user)
    now = int(time.time())
    stamp = "%011X" % (int(time.time() * 1e6) & (16 ** 11 - 1))
    queue.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        qid = stamp + secrets.token_hex(7)[:7].upper() + "%06X" % i
        if lo <= i < lo + due:
            next_try = now - 60
            env = envelope(qid, now, "due%d@%s" % (i - lo, due_domain),
                           next_try)
        else:
            next_try = now + 86400
            env = envelope(qid, now, "user%d@%s" % (i % 1000, domain),
                           next_try)
        for ext, data in (("eml", BODY), ("env", env)):
            path = queue / ("%s.%s" % (qid, ext))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            os.write(fd, data)
            os.fchown(fd, pw.pw_uid, pw.pw_gid)
            if ext == "env":
                os.utime(fd, (next_try, next_try))
            os.close(fd)
