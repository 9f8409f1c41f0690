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


def test_new_mail_is_not_held_behind_the_pass_rewrites(start_mailroot,
                                                       sink, workdir):
    hop = mh.Sink().start()     # remote.test's next hop: 451 to RCPT
    for i in range(N):
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
        qfiles.fill(d.dir("Queue"), N, mh.USERS["queued"])
        gate.write_text("closed\n")
        d.start()
        assert "test rewrite gate in use" in d.log_text()
        subprocess.run([str(CTL), "-s", str(sock), "flush"], check=True,
                       capture_output=True, timeout=60)
        # the whole pass tried and deferred, none of it rewritten yet
        assert mh.wait_until(lambda: len(DEFERRED.findall(d.log_text()))
                             >= N, 120, 0.1), d.log_text()[-3000:]
        assert attempts(d.dir("Queue")) == (N, 0)

        with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as s:
            s.sendmail("new@client.test", ["fresh@probe.test"],
                       b"Subject: new\r\n\r\narrived during the pass\r\n")
        got = sink.wait_for(1, timeout=60)
        assert [r.lower() for m in got for r in m.rcpt_tos] == \
            ["fresh@probe.test"]
        # accepted and delivered while every rewrite still waited
        assert attempts(d.dir("Queue")) == (N, 0)

        gate.unlink()
        assert mh.wait_until(lambda: attempts(d.dir("Queue")) == (0, N),
                             120, 0.1), attempts(d.dir("Queue"))
        assert not list(d.dir("Queue").glob("tmp/*.envw"))
    finally:
        if gate.exists():
            gate.unlink()
        hop.stop()
