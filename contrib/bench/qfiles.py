"""
contrib/bench/qfiles.py - queue files written straight into a mailroot's
Queue/, in the on-disk format queued recovers at start (Queue/ID.eml, the
message, and Queue/ID.env, the envelope of queued/queue_env.c:
"mailroot-envelope 1" ... "end"), without SMTP: shared by
contrib/bench/ctl-queue and contrib/bench/queue-scale.

Each message has one recipient already tried once and deferred, its next
try a day away so that nothing is delivered meanwhile; the first `due`
messages are due now instead (next try a minute ago), each to its own
recipient at due_domain.
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


def fill(queue, n, user, due=0, due_domain="due.test",
         domain="remote.test"):
    """n messages in queue, owned by user (the queue user); the first
    `due` of them due now."""
    pw = pwd.getpwnam(user)
    now = int(time.time())
    stamp = "%011X" % (int(time.time() * 1e6) & (16 ** 11 - 1))
    queue.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        qid = stamp + secrets.token_hex(7)[:7].upper() + "%06X" % i
        if i < due:
            env = envelope(qid, now, "due%d@%s" % (i, due_domain), now - 60)
        else:
            env = envelope(qid, now, "user%d@%s" % (i % 1000, domain),
                           now + 86400)
        for ext, data in (("eml", BODY), ("env", env)):
            path = queue / ("%s.%s" % (qid, ext))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            os.write(fd, data)
            os.fchown(fd, pw.pw_uid, pw.pw_gid)
            os.close(fd)
