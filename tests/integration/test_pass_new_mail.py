"""
A retry pass does not stall new mail (issue 17).

Every deferral of a retry pass rewrites the message's envelope (attempts,
next try, the reply); queued hands those rewrites to a thread of their
own (queue_commit.c), which writes them in batches.  A new message's
commit is made by the commit worker, never behind those batches: on a
slow disk the rewrites of a pass over a big queue can be minutes behind
the pass, and new mail must not wait for them.

MAILROOT_TEST_ENVW_GATE (tests only) holds every batch of rewrites while
the file it names exists, as a disk that never finishes would: here the
new message is accepted and delivered while not one rewrite of the pass
has landed, and once the gate opens every deferred envelope is rewritten
(attempts 2), so nothing of the pass is lost either.

The pass itself goes at the pace its rewrites land: while 1024 of them
wait (queue_commit.c ENV_BEHIND), retries wait in line as for room at
deliverd, and new mail goes past them.  With the gate closed a pass over
2 500 messages stops short of its end (at most one batch of 64 out,
1024 waiting and the results of the 1000 jobs deliverd held then,
MR_JOBS_MAX); once it opens the
pass goes on to every message.
"""

import os
import re
import smtplib
import subprocess
import sys

import mailroot_harness as mh

sys.path.insert(0, str(mh.SRCDIR / "contrib" / "bench"))
import qfiles  # noqa: E402

CTL = mh.BUILDDIR / "tools" / "mailrootctl"
N = 150                 # deferred messages, user0..user149@remote.test
DEFERRED = re.compile(r"to=<user\d+@remote\.test>.*status=deferred")


def attempts(queue):
    """How many envelopes in queue say attempts 1, and attempts 2."""
    one = two = 0
    for p in queue.glob("*.env"):
        text = p.read_text()
        one += "\nattempts 1\n" in text
        two += "\nattempts 2\n" in text
    return one, two


def deferred(d):
    return len(DEFERRED.findall(d.log_text()))


def test_new_mail_is_not_held_behind_the_pass_rewrites(start_mailroot,
                                                       sink, workdir):
    gated_pass(start_mailroot, sink, workdir, N, N)


def test_the_pass_waits_for_its_rewrites(start_mailroot, sink, workdir):
    # the pass waits once 1024 rewrites wait behind the batch held at
    # the gate (one at least): 1025 deferrals at least, fewer than all
    gated_pass(start_mailroot, sink, workdir, 2500, 1 + 1024)


def gated_pass(start_mailroot, sink, workdir, n, before):
    """n deferred messages flushed with the rewrites gated; new mail once
    `before` of them were deferred."""
    hop = mh.Sink().start()     # remote.test's next hop: 451 to RCPT
    for i in range(min(n, 1000)):   # qfiles: user0..user999
        hop.reject_rcpt("user%d@remote.test" % i,
                        "451 4.3.0 Try again later (hop)")
    gate = workdir / "envw-gate"
    sock = workdir / "ctl.sock"
    try:
        d = start_mailroot(sink, env=dict(
            os.environ, MAILROOT_TEST_ENVW_GATE=str(gate)),
            global_extra='control-socket "%s"' % sock,
            server_extra='    domain "remote.test" remote { route '
            '"[127.0.0.1]:%d" }' % hop.port)
        assert d.stop() == []
        d.returncode = None
        qfiles.fill(d.dir("Queue"), n, mh.USERS["queued"])
        gate.write_text("closed\n")
        d.start()
        assert "test rewrite gate in use" in d.log_text()
        # once the queue is read (a flush meanwhile is refused)
        assert mh.wait_until(lambda: subprocess.run(
            [str(CTL), "-s", str(sock), "flush"], capture_output=True,
            timeout=60).returncode == 0, 60, 0.2)
        # the pass tried and deferred so far, none of it rewritten yet
        assert mh.wait_until(lambda: deferred(d) >= before, 120, 0.1), \
            d.log_text()[-3000:]
        assert attempts(d.dir("Queue")) == (n, 0)

        with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as s:
            s.sendmail("new@client.test", ["fresh@probe.test"],
                       b"Subject: new\r\n\r\narrived during the pass\r\n")
        got = sink.wait_for(1, timeout=60)
        assert [r.lower() for m in got for r in m.rcpt_tos] == \
            ["fresh@probe.test"]
        # accepted and delivered while every rewrite still waited
        assert attempts(d.dir("Queue")) == (n, 0)
        # and the pass, paced by them, short of its end (bounded: at
        # most one batch out, 1024 waiting, deliverd's 1000 jobs)
        assert deferred(d) < n or n <= 64 + 1024 + 1000, deferred(d)

        gate.unlink()
        assert mh.wait_until(lambda: attempts(d.dir("Queue")) == (0, n),
                             180, 0.2), attempts(d.dir("Queue"))
        assert deferred(d) == n, d.log_text()[-3000:]
        assert not list(d.dir("Queue").glob("tmp/*.envw"))
    finally:
        if gate.exists():
            gate.unlink()
        hop.stop()
