"""
A big queue is read from the loop at start (queue_sched.c): only the
directory is listed before queued takes mail, and each message is
scheduled as its envelope is read, so a due message goes out while the
rest is still being read.  MAILROOT_TEST_RECOVER_PACE (milliseconds a
message, tests only) makes a small queue take seconds to read, so that
queued can be killed halfway.

Killed halfway, with deliveries at the next hop that queued never heard
the end of, the next queued reads the queue again: every message reaches
the next hop exactly once (deliverd's replays apply to a message read
after they came).  Meanwhile the control verbs over the whole queue say
that it is being recovered, and an ETRN is applied to the messages read
after it.

A Pickup claim (Queue/ID.pkp) whose message was committed before a crash
is removed when that message is read, before it can go out: matched
against the queue only once it is read whole, a claim whose message went
out meanwhile would be taken again and delivered twice.
"""

import collections
import os
import pwd
import signal
import smtplib
import subprocess
import sys
import threading

import pytest

import mailroot_harness as mh

sys.path.insert(0, str(mh.SRCDIR / "contrib" / "bench"))
import qfiles  # noqa: E402

CTL = mh.BUILDDIR / "tools" / "mailrootctl"
N = 150
PACE_MS = 40
DONE = "queue recovered:"


def paced():
    return dict(os.environ, MAILROOT_TEST_RECOVER_PACE=str(PACE_MS))


def fill(d, n, domain):
    """n messages due now, one recipient each (due<i>@domain)."""
    assert d.stop() == []
    d.returncode = None
    qfiles.fill(d.dir("Queue"), n, mh.USERS["queued"], due=n,
                due_domain=domain)


def arrivals(sink):
    return collections.Counter(r.lower() for m in sink.messages
                               for r in m.rcpt_tos)


def ctl(sock, *args):
    return subprocess.run([str(CTL), "-s", str(sock), *args],
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def control_conf(workdir):
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755, exist_ok=True)
    sock = rundir / "control"
    return sock, ('control-socket "%s"\ncontrol-group "mailroot"' % sock)


def test_killed_halfway_through_recovery(start_mailroot, sink, workdir):
    if not mh.IS_ROOT:
        pytest.skip("the queue files are written as the queue user")
    d = start_mailroot(sink=sink, env=paced())
    fill(d, N, "due.test")
    d.start()
    # deliveries run while the queue is read; then the next hop's replies
    # wait, so that the next ones are at the sink without their result:
    # the next queued reads the first of them at once, the others after
    # deliverd's replays came (kept until they are read)
    assert mh.wait_until(lambda: len(sink.messages) >= 10, 60), \
        d.log_text()[-3000:]
    sink.hold = threading.Event()
    seen = len(sink.messages)
    assert mh.wait_until(lambda: len(sink.messages) >= seen + 4, 60), \
        d.log_text()[-3000:]
    assert DONE not in d.log_text(), "recovery ended before the kill"
    old = mh.children(d.pid)["queued"]
    os.kill(old, signal.SIGKILL)
    assert mh.wait_until(lambda: mh.children(d.pid).get("queued")
                         not in (None, old), 60), d.log_text()[-3000:]
    sink.hold.set()
    assert mh.wait_until(lambda: len(arrivals(sink)) >= N, 120, 0.1), \
        (len(arrivals(sink)), d.log_text()[-3000:])
    assert mh.wait_until(lambda: DONE in d.log_text(), 60)
    d.wait_queue_empty()
    twice = {r: k for r, k in arrivals(sink).items() if k != 1}
    assert twice == {}, twice
    assert set(arrivals(sink)) == {"due%d@due.test" % i for i in range(N)}


def test_control_and_etrn_during_recovery(start_mailroot, sink, workdir):
    if not mh.IS_ROOT:
        pytest.skip("the queue files are written as the queue user")
    sock, extra = control_conf(workdir)
    d = start_mailroot(sink=sink, env=paced(), global_extra=extra,
                       server_extra='    domain "held.test" remote { '
                       'hold-for-etrn yes\n        etrn-allow 127.0.0.1 }\n')
    fill(d, N, "held.test")
    d.start()
    # the queue is being read: verbs over all of it say so
    p = ctl(sock, "queue")
    assert p.returncode != 0 and "being recovered" in p.stderr + p.stdout, \
        (p.returncode, p.stdout, p.stderr)
    p = ctl(sock, "flush")
    assert p.returncode != 0 and "being recovered" in p.stderr + p.stdout
    assert DONE not in d.log_text()
    # an ETRN now releases what is read and what is read after it
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as c:
        c.ehlo("client.test")
        code, text = c.docmd("ETRN", "held.test")
    assert code == 250, (code, text)
    assert mh.wait_until(lambda: len(arrivals(sink)) >= N, 120, 0.1), \
        (len(arrivals(sink)), d.log_text()[-3000:])
    assert mh.wait_until(lambda: DONE in d.log_text(), 60)
    p = ctl(sock, "queue")
    assert p.returncode == 0, p.stdout + p.stderr
    d.wait_queue_empty()
    assert all(k == 1 for k in arrivals(sink).values())
    assert set(arrivals(sink)) == {"due%d@held.test" % i for i in range(N)}


def test_claims_of_committed_messages_are_not_taken_again(start_mailroot,
                                                          sink, workdir):
    if not mh.IS_ROOT:
        pytest.skip("the queue files are written as the queue user")
    n = 40
    d = start_mailroot(sink=sink, env=paced())
    fill(d, n, "due.test")
    # each message's Pickup claim is still there, as after a crash
    # between the commit and the claim's removal
    pw = pwd.getpwnam(mh.USERS["queued"])
    ids = sorted(f.stem for f in d.queue_files() if f.suffix == ".env")
    assert len(ids) == n
    for k, qid in enumerate(ids):
        path = d.dir("Queue") / (qid + ".pkp")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.write(fd, mh.crlf("x-sender: claim@client.test\n"
                             "x-receiver: claim%d@claim.test\n\n"
                             "claim %d\n" % (k, k)))
        os.fchown(fd, pw.pw_uid, pw.pw_gid)
        os.close(fd)
    d.start()
    assert mh.wait_until(lambda: len(arrivals(sink)) >= n, 120, 0.1), \
        (len(arrivals(sink)), d.log_text()[-3000:])
    assert mh.wait_until(lambda: "Pickup: watching" in d.log_text(), 60), \
        d.log_text()[-3000:]
    d.wait_queue_empty()
    assert d.log_text().count("its claim is removed") == n, \
        d.log_text()[-3000:]
    assert "taking it again" not in d.log_text()
    assert not [f for f in d.queue_files() if f.suffix == ".pkp"]
    assert arrivals(sink) == {"due%d@due.test" % i: 1 for i in range(n)}
