"""
Readiness for systemd (Type=notify): mailrootd speaks sd_notify's
datagram protocol itself.  Given NOTIFY_SOCKET (a path, or an abstract
name written "@name"), it sends READY=1 once its listeners accept, so a
client that connects right after READY=1 is greeted without retrying;
RELOADING=1 then READY=1 around a SIGHUP; STOPPING=1 on SIGTERM.  No
child inherits the variable.
"""

import os
import signal
import socket
import subprocess
import time

import pytest

import mailroot_harness as mh

WAIT = 60.0


def next_state(sock, proc, deadline):
    """The next datagram, waiting while mailrootd runs (bounded)."""
    while time.monotonic() < deadline:
        sock.settimeout(0.5)
        try:
            return sock.recv(4096).decode()
        except socket.timeout:
            assert proc.poll() is None, "mailrootd exited (%s)" % \
                proc.returncode
    raise AssertionError("no notification within %.0f s" % WAIT)


@pytest.fixture(params=["path", "abstract"])
def notify(request, workdir):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        where = str(workdir / "notify")
        s.bind(where)
    else:
        name = "mailroot-test-notify-%d-%d" % (os.getpid(), time.time_ns())
        s.bind("\0" + name)
        where = "@" + name
    yield s, where
    s.close()


def test_ready_reloading_stopping(notify, workdir, sink):
    sock, where = notify
    d = mh.Mailroot(workdir, name="notified", sink_port=sink.port)
    env = dict(os.environ, NOTIFY_SOCKET=where)
    with open(d.logfile, "ab") as log:
        d.proc = subprocess.Popen(
            [str(mh.MAILROOTD), "-d", "-f", str(d.conf)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            cwd=str(workdir), start_new_session=True, env=env)
    try:
        assert next_state(sock, d.proc, time.monotonic() + WAIT) == \
            "READY=1", d.log_text()
        # one connection, no retry: the listener accepts and smtpd greets
        with socket.create_connection(("127.0.0.1", d.port),
                                      timeout=WAIT) as c:
            assert c.recv(512).startswith(b"220 "), d.log_text()
        kids = mh.started_children(d.pid)
        assert all(kids.values()), (kids, d.log_text())
        for name, pid in kids.items():
            with open("/proc/%d/environ" % pid, "rb") as f:
                assert b"NOTIFY_SOCKET=" not in f.read(), name

        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + WAIT
        assert next_state(sock, d.proc, deadline) == "RELOADING=1"
        assert next_state(sock, d.proc, deadline) == "READY=1"
        assert "reloaded" in d.log_text()

        # the harness's stop sends the SIGTERM and sees a clean exit; the
        # STOPPING=1 sent before it waits on our socket.  (Signalled here,
        # mailrootd could be gone before stop() and count as a crash.)
        problems = d.stop()
        assert not problems, problems
        assert next_state(sock, d.proc, time.monotonic() + WAIT) == \
            "STOPPING=1"
    finally:
        problems = d.stop()
    assert not problems, problems


def test_bad_notify_socket_is_logged_not_fatal(workdir, sink):
    d = mh.Mailroot(workdir, name="badnotify", sink_port=sink.port,
                    env=dict(os.environ, NOTIFY_SOCKET="relative/path"))
    try:
        d.start()
        assert "NOTIFY_SOCKET is not a socket path" in d.log_text()
    finally:
        problems = d.stop()
    assert not problems, problems
