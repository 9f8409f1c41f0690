"""
Recovery reads the due messages first, wherever they sit in the queue
(queue_sched.c): a scan stats every ID.env in inode order, whose mtime is
the message's next try (queue_env.c env_stamp), and reads the due ones
at once; the rest is read after.  The mtime is a hint only: the
envelope's next-try line decides.

A queue of deferred messages with one due message, the one whose ID.eml
has the highest inode (so the last one the second pass reads), read slowly
(MAILROOT_TEST_RECOVER_PACE): the due message reaches the sink while the
queue is still being recovered, and after a restart every deferred
message is still in the queue.  A deferral queued makes itself (a 451 at
the next hop) leaves an ID.env whose mtime is its next try.
"""

import json
import os
import re
import smtplib
import sys
import time

import pytest

import mailroot_harness as mh
from test_recover_slices import control_conf, ctl

sys.path.insert(0, str(mh.SRCDIR / "contrib" / "bench"))
import qfiles  # noqa: E402

CTL = mh.BUILDDIR / "tools" / "mailrootctl"
DEFERRED = 3000
PACE_MS = 20
DUE = "due0@due.test"


def queued_count(sock):
    p = ctl(sock, "queue", "--json")
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)["count"]


def test_due_message_written_last_goes_first(start_mailroot, sink, workdir):
    if not mh.IS_ROOT:
        pytest.skip("the queue files are written as the queue user")
    sock, extra = control_conf(workdir)
    d = start_mailroot(sink=sink, global_extra=extra,
                       env=dict(os.environ,
                                MAILROOT_TEST_RECOVER_PACE=str(PACE_MS)))
    assert d.stop() == []
    d.returncode = None
    queue = d.dir("Queue")
    qfiles.fill(queue, DEFERRED + 1, mh.USERS["queued"])
    # the message that recovery's inode order reads last becomes the due
    # one (written last is not enough: a file system reuses freed inodes)
    last = max(queue.glob("*.eml"), key=lambda p: p.stat().st_ino)
    env = last.with_suffix(".env")
    now = int(time.time())
    env.write_bytes(qfiles.envelope(last.stem, now, DUE, now - 60))
    os.utime(env, (now - 60, now - 60))
    d.start()
    assert mh.wait_until(lambda: any(DUE in (r.lower() for r in m.rcpt_tos)
                                     for m in sink.messages), 120, 0.1), \
        d.log_text()[-3000:]
    # delivered while most of the queue is still to be read
    p = ctl(sock, "queue")
    m = re.search(r"being recovered \((\d+) of (\d+)", p.stdout + p.stderr)
    assert p.returncode != 0 and m, (p.returncode, p.stdout, p.stderr)
    assert int(m.group(2)) == DEFERRED + 1
    assert int(m.group(1)) < DEFERRED, m.group(0)
    assert re.search(r"queue scanned: 1 of %d messages due" % (DEFERRED + 1),
                     d.log_text()), d.log_text()[-3000:]
    assert "queue recovered:" not in d.log_text()
    assert len(sink.messages) == 1
    # the rest is all there: read at full speed after a restart
    assert d.stop() == []
    d.returncode = None
    d.env.pop("MAILROOT_TEST_RECOVER_PACE", None)
    d.start()
    assert mh.wait_until(lambda: queued_count(sock) == DEFERRED, 60, 0.2), \
        (queued_count(sock), d.log_text()[-3000:])
    assert re.search(r"queue scanned: 0 of %d messages due" % DEFERRED,
                     d.log_text()), d.log_text()[-3000:]
    assert len(sink.messages) == 1


def test_deferral_sets_env_mtime(start_mailroot, sink, workdir):
    sink.reject_rcpt("later@remote.test", "451 4.3.0 Try again (sink)")
    sock, extra = control_conf(workdir)
    d = start_mailroot(sink=sink, global_extra=extra)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as c:
        c.sendmail("app@local.test", ["later@remote.test"],
                   b"Subject: deferred\r\n\r\nlater\r\n")
    queue = d.dir("Queue")

    def deferred_env():
        for p in queue.glob("*.env"):
            text = p.read_text()
            if "attempts 1\n" in text:
                return p, text
        return None
    assert mh.wait_until(deferred_env, 60, 0.1), d.log_text()[-3000:]
    path, text = deferred_env()
    next_try = int(re.search(r"^next-try (\d+)$", text, re.M).group(1))
    assert int(path.stat().st_mtime) == next_try
    assert next_try > path.stat().st_ctime
