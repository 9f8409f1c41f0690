"""
A child's report that a peer misbehaved (MR_M_PEER_BAD) makes mailrootd
kill and restart that peer.  A compromised child must not be able to use
this to kill whatever it likes: mailrootd believes a report only about a
child the reporter holds a channel to (smtpd and deliverd talk to queued;
smtpd never talks to deliverd), acts on at most one report per child in
a while, and logs every report.

The forged reports are written on the reporter's real channel to
mailrootd (descriptor 3), taken with pidfd_getfd(2), exactly as a
compromised child could.
"""

import ctypes
import os
import re
import socket
import struct
from pathlib import Path

import pytest

import mailroot_harness as mh

SYS_PIDFD_GETFD = 438          # x86_64 and arm64 share this number
MASTER_FD = 3                  # MR_FD_MASTER
PROC = {"smtpd": 1, "queued": 2, "deliverd": 3}    # enum mr_proc

libc = ctypes.CDLL(None, use_errno=True)


def msg_type(name):
    """The number of a message type, read from common/proto.h."""
    text = (mh.SRCDIR / "common" / "proto.h").read_text()
    body = text[text.index("enum mr_msgtype"):]
    body = re.sub(r"/\*.*?\*/", "", body[:body.index("};")], flags=re.S)
    value = -1
    for m in re.finditer(r"\b(MR_\w+)\s*(?:=\s*(\w+))?\s*,", body):
        if m.group(2) is not None and m.group(2).isdigit():
            value = int(m.group(2))
        elif m.group(2) is not None:
            continue            # an alias such as MR_MSG_MAX
        else:
            value += 1
        if m.group(1) == name:
            return value
    raise LookupError(name)


def master_channel(pid):
    pidfd = os.pidfd_open(pid)
    try:
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, MASTER_FD, 0)
        if fd < 0:
            pytest.skip("pidfd_getfd: %s" % os.strerror(ctypes.get_errno()))
    finally:
        os.close(pidfd)
    s = socket.socket(fileno=fd)
    assert s.type == socket.SOCK_SEQPACKET
    return s


def frame(mtype, payload):
    return struct.pack("<II", mtype, len(payload)) + payload


def forge_reports(reporter_pid, kinds):
    """Writes one PEER_BAD per kind as reporter_pid, then a malformed one
    as a barrier: once mailrootd has logged the barrier, it has acted on
    every report before it."""
    t = msg_type("MR_M_PEER_BAD")
    s = master_channel(reporter_pid)
    try:
        for k in kinds:
            s.send(frame(t, struct.pack("<I", PROC[k])))
        s.send(frame(t, b""))
    finally:
        s.close()


def killed(pid):
    """True once pid is gone, a zombie, or has SIGKILL pending: after
    mailrootd returned from kill(2), one of these holds at once."""
    try:
        status = Path("/proc/%d/status" % pid).read_text()
    except OSError:
        return True
    f = dict(line.split(":", 1) for line in status.splitlines())
    pending = int(f["SigPnd"], 16) | int(f["ShdPnd"], 16)
    return f["State"].split()[0] in ("Z", "X") or bool(pending & (1 << 8))


def all_children(pid):
    kids = {}

    def ready():
        kids.clear()
        kids.update(mh.children(pid))
        return all(k in kids for k in PROC)

    assert mh.wait_until(ready, 10), kids
    return dict(kids)


def wait_barrier(d, reporter, since, count=1):
    mark = "%s sent a malformed PEER_BAD" % reporter
    assert mh.wait_until(
        lambda: d.log_text()[since:].count(mark) >= count, 10), \
        d.log_text()[since:]
    return d.log_text()[since:]


@pytest.mark.parametrize("reporter,target", [("smtpd", "deliverd"),
                                             ("deliverd", "smtpd")])
def test_report_without_channel_ignored(start_mailroot, sink, reporter,
                                        target):
    d = start_mailroot(sink=sink)
    kids = all_children(d.pid)
    since = len(d.log_text())
    forge_reports(kids[reporter], [target])
    log = wait_barrier(d, reporter, since)
    assert "%s reports that %s misbehaved, but has no channel to it" % (
        reporter, target) in log, log
    assert not killed(kids[target]), log
    assert mh.children(d.pid) == kids


def test_reports_rate_limited(start_mailroot, sink):
    """queued may report smtpd (it holds a channel to it): the first
    report restarts smtpd, another one soon after about the new smtpd
    is logged and not acted on."""
    d = start_mailroot(sink=sink)
    kids = all_children(d.pid)
    since = len(d.log_text())
    forge_reports(kids["queued"], ["smtpd"])
    log = wait_barrier(d, "queued", since)
    assert "queued reports that smtpd misbehaved; restarting smtpd" in log
    assert mh.wait_until(
        lambda: mh.children(d.pid).get("smtpd", kids["smtpd"])
        != kids["smtpd"] and mh.port_accepts(d.port), 10), d.log_text()
    new = all_children(d.pid)
    forge_reports(new["queued"], ["smtpd"])
    log = wait_barrier(d, "queued", since, count=2)
    assert "smtpd was restarted on such a report less than" in log, log
    assert not killed(new["smtpd"]), log
    assert mh.children(d.pid) == new
