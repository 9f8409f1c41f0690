"""
One file per message: a new message is Queue/ID.eml and a record in the
Queue's journal (Queue/journal/*.jnl); it gets its own Queue/ID.env only when
its state must be kept after an attempt.  queued is killed with SIGKILL
at the points that format makes new: between the commit and the first
attempt (the envelope only in the journal), and while the next hop holds
the first attempt (before the envelope is updated).  Every acknowledged
message reaches the next hop exactly once, each recipient once.
"""

import os
import signal
import socket
import subprocess
import threading

import mailroot_harness as mh

CTL = mh.BUILDDIR / "tools" / "mailrootctl"
DEFER = "451 4.3.0 Try again later (sink)"


def names(d, suffix):
    where = d.dir("Queue") / ("journal" if suffix == ".jnl" else "")
    return sorted(p.name for p in where.iterdir() if p.suffix == suffix)


def kill_queued(d):
    """SIGKILL queued; returns once mailrootd has started a new one."""
    old = mh.children(d.pid)["queued"]
    os.kill(old, signal.SIGKILL)
    assert mh.wait_until(lambda: mh.children(d.pid).get("queued")
                         not in (None, old), 60), d.log_text()[-3000:]
    assert mh.wait_until(lambda: "recovered 1 queued message" in
                         d.log_text(), 60), d.log_text()[-3000:]


def ctl(sock, *args):
    proc = subprocess.run([str(CTL), "-s", str(sock), *args],
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def arrivals(sink, rcpt):
    return sum(m.rcpt_tos.count(rcpt) for m in sink.messages)


def tried_or_gone(d):
    """The message's envelope records an attempt, or it is gone."""
    envs = names(d, ".env")
    if not envs:
        return True
    try:
        return b"attempts 1" in (d.dir("Queue") / envs[0]).read_bytes()
    except FileNotFoundError:       # replaced or removed meanwhile
        return False


def test_killed_between_commit_and_first_attempt(start_mailroot, workdir):
    # the next hop takes the connection and never greets: the first
    # attempt has no result, the envelope is only in the journal
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755)
    sock = rundir / "control"
    d = start_mailroot(sink_port=port, global_extra='control-socket "%s"\n'
                       'control-group "mailroot"' % sock)
    assert mh.send(d.port, "a@client.test", ["x@remote.test"],
                   mh.crlf("Subject: waits\n\nbody\n")) == {}
    emls = names(d, ".eml")
    assert len(emls) == 1
    # one file for the message; its envelope is in the journal
    assert names(d, ".env") == [], names(d, ".env")
    assert len(names(d, ".jnl")) == 1
    kill_queued(d)
    # recovery gave it its own envelope and removed the journal
    assert names(d, ".env") == [emls[0][:-4] + ".env"]
    assert names(d, ".jnl") == []
    # the next hop comes up where the silent one was
    silent.close()
    sink = mh.Sink(port=port).start()
    try:
        # queued's attempt after the restart may meet the silent socket
        # closed (a retry is then due) or the sink already up (delivered)
        assert mh.wait_until(lambda: tried_or_gone(d), 60)
        ctl(sock, "flush")
        sink.wait_for(1)
        d.wait_queue_empty()
        assert arrivals(sink, "x@remote.test") == 1
    finally:
        sink.stop()


def test_killed_during_first_attempt(start_mailroot, sink, workdir):
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755)
    sock = rundir / "control"
    sink.reject_rcpt("later@remote.test", DEFER)
    sink.hold = threading.Event()       # the sink's 250 waits
    d = start_mailroot(sink=sink, global_extra='control-socket "%s"\n'
                       'control-group "mailroot"' % sock)
    assert mh.send(d.port, "a@client.test",
                   ["now@remote.test", "later@remote.test"],
                   mh.crlf("Subject: in flight\n\nbody\n")) == {}
    assert names(d, ".env") == []
    # the attempt is at the sink, its result not yet in the envelope
    assert mh.wait_until(lambda: "later@remote.test" in sink.rejected,
                         60), d.log_text()[-3000:]
    kill_queued(d)
    sink.hold.set()
    sink.wait_for(1)
    # deliverd's result reached the new queued: one recipient done, the
    # other kept in the message's own envelope, the journal gone
    env = mh.wait_until(lambda: names(d, ".env"), 60)
    assert env, d.log_text()[-3000:]
    path = d.dir("Queue") / env[0]
    assert mh.wait_until(lambda: b"rcpt S now@remote.test" in
                         path.read_bytes(), 60), path.read_bytes()
    assert mh.wait_until(lambda: names(d, ".jnl") == [], 60)
    sink.reject.clear()
    ctl(sock, "flush")
    assert mh.wait_until(lambda: arrivals(sink, "later@remote.test"), 60)
    d.wait_queue_empty()
    assert arrivals(sink, "now@remote.test") == 1
    assert arrivals(sink, "later@remote.test") == 1


def test_stop_right_after_delivery_leaves_no_journal(start_mailroot, sink):
    # the journal of a queue whose messages are all finished is removed
    # at the stop, not only after a second of idleness
    d = start_mailroot(sink=sink)
    for i in range(5):
        assert mh.send(d.port, "a@client.test", ["x%d@remote.test" % i],
                       mh.crlf("Subject: %d\n\nbody\n" % i)) == {}
    assert len(sink.wait_for(5)) == 5
    # every result is in: the messages' files are gone
    assert mh.wait_until(lambda: not names(d, ".eml"), 60)
    assert d.stop() == []
    assert names(d, ".jnl") == []
    assert names(d, ".eml") == []
