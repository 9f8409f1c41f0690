"""
What every child shares (common/child.c): SIGTERM makes any of the
three finish its work and exit cleanly; mailrootd starts it again and
mail keeps flowing.
"""

import os
import re
import signal

import pytest

import mailroot_harness as mh

WAIT = 15.0


@pytest.mark.parametrize("name", ["smtpd", "queued", "deliverd"])
def test_sigterm_stops_child_cleanly(start_mailroot, sink, name):
    d = start_mailroot(sink=sink)
    pid = mh.started_children(d.pid, WAIT)[name]
    assert pid and mh.catches_sigterm(pid), \
        "%s never set up its SIGTERM handler" % name
    os.kill(pid, signal.SIGTERM)
    # its own words, not its exit status: a sanitizer build's leak check
    # at exit cannot read /proc in the sandbox and ends it by signal
    clean = re.compile(r"%s\[%d\]: .*(exiting|shutting down)" % (name, pid))
    ended = re.compile(r"%s \(pid %d\) (exited|killed)" % (name, pid))
    assert mh.wait_until(lambda: ended.search(d.log_text()), WAIT), \
        "%s did not end on SIGTERM" % name
    assert clean.search(d.log_text()), \
        "%s ended without stopping cleanly" % name
    assert mh.wait_until(lambda: mh.children(d.pid).get(name) not in
                         (None, pid), WAIT), "%s not restarted" % name
    mh.send(d.port, "a@client.test", ["rcpt@remote.test"],
            mh.crlf("Subject: after\n\nhello\n"))
    assert len(sink.wait_for(1, WAIT)) == 1


def test_orderly_stop_is_not_a_loss(start_mailroot, sink):
    """mailrootd stops smtpd and deliverd before queued and tells queued
    so first (MR_M_STOPPING): their channels closing is then part of the
    stop, logged as such, not the warning of a lost peer."""
    d = start_mailroot(sink=sink)
    mh.send(d.port, "a@client.test", ["rcpt@remote.test"],
            mh.crlf("Subject: before the stop\n\nhello\n"))
    assert len(sink.wait_for(1, WAIT)) == 1
    assert d.stop() == []
    log = d.log_text()
    # MR_M_STOPPING and a peer's close come on two channels, in either
    # order: the stop is noted when it came first, the close is never a
    # warning of a lost peer
    assert "smtpd closed its channel" in log
    assert "deliverd closed its channel" in log
    assert "lost the channel" not in log, log
