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


def catches_sigterm(pid):
    """The process has a SIGTERM handler (it has finished starting)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1))
    return 0


@pytest.mark.parametrize("name", ["smtpd", "queued", "deliverd"])
def test_sigterm_stops_child_cleanly(start_mailroot, sink, name):
    d = start_mailroot(sink=sink)
    pid = mh.children(d.pid)[name]
    assert mh.wait_until(lambda: catches_sigterm(pid), WAIT), \
        "%s never set up its SIGTERM handler" % name
    os.kill(pid, signal.SIGTERM)
    ended = re.compile(r"%s \(pid %d\) (exited with status|killed by "
                       r"signal) (\d+)" % (name, pid))
    found = mh.wait_until(lambda: ended.search(d.log_text()), WAIT)
    assert found, "%s did not end on SIGTERM" % name
    assert found.group(1) == "exited with status" and \
        found.group(2) == "0", found.group(0)
    assert mh.wait_until(lambda: mh.children(d.pid).get(name) not in
                         (None, pid), WAIT), "%s not restarted" % name
    mh.send(d.port, "a@client.test", ["rcpt@remote.test"],
            mh.crlf("Subject: after\n\nhello\n"))
    assert len(sink.wait_for(1, WAIT)) == 1
