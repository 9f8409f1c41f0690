"""
mailrootctl sessions lists deliverd's outbound sessions: deliverd reports
each to queued (MR_D_SESSION) as smtpd reports the inbound ones.

The next hop is a receiver of the test's that holds the session where
the test wants it: it waits (bounded) before it answers DATA, then before
it answers QUIT, so the session is listed in state "data" with nothing
sent yet, then "closing" with one message sent, in columns and in JSON;
once it ends it leaves the list.  A queued restarted meanwhile hears of
the session again from deliverd.
"""

import datetime
import json
import os
import signal
import socket
import threading

import mailroot_harness as mh
from test_mailrootctl import Ctl

WAIT = 60.0
SENDER = "app@local.test"
RCPT = "someone@remote.test"


class Staller(threading.Thread):
    """An SMTP receiver without PIPELINING that answers DATA only once
    `data' is set, and QUIT only once `quit' is set (each wait bounded)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.data = threading.Event()
        self.quit = threading.Event()
        self.received = []

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                self.serve(c)
            except OSError:
                pass
            c.close()

    def serve(self, c):
        c.settimeout(WAIT)
        f = c.makefile("rb")
        c.sendall(b"220 staller.test ESMTP\r\n")
        for _ in range(100):
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                c.sendall(b"250-staller.test\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                self.data.wait(WAIT)
                c.sendall(b"354 go ahead\r\n")
                body = b""
                while not body.endswith(b"\r\n.\r\n"):
                    chunk = f.readline()
                    if not chunk:
                        return
                    body += chunk
                self.received.append(body)
                c.sendall(b"250 2.0.0 taken\r\n")
            elif verb == b"QUIT":
                self.quit.wait(WAIT)
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"250 ok\r\n")

    def stop(self):
        self.data.set()
        self.quit.set()
        self.sock.close()


def outbound(ctl, pred, what):
    """The JSON answer once its outbound list satisfies pred."""
    def ready():
        proc = ctl.run("-j", "sessions", check=False)
        if proc.returncode != 0:
            return None         # a new queued is not serving yet
        js = json.loads(proc.stdout)
        return js if pred(js["outbound"]) else None
    js = mh.wait_until(ready, WAIT, 0.1)
    assert js, "%s: %s" % (what, ctl.run("sessions", check=False).stdout)
    return js


def columns(ctl):
    """The outbound table of the column output: header, lines, count."""
    out = ctl.run("sessions").stdout.splitlines()
    head = [i for i, l in enumerate(out) if l.startswith("OUT-ID")]
    assert len(head) == 1, out
    return out[head[0]], out[head[0] + 1:-1], out[-1]


def test_outbound_session_listed(start_mailroot, workdir):
    staller = Staller()
    staller.start()
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755)
    try:
        d = start_mailroot(
            sink_port=staller.port,
            global_extra='control-socket "%s"\ncontrol-group "mailroot"'
            % (rundir / "control"))
        ctl = Ctl(rundir / "control")
        js = ctl.json("sessions")
        assert js["outbound"] == [] and js["outbound_count"] == 0
        before = datetime.datetime.now(datetime.timezone.utc).replace(
            microsecond=0)
        mh.send(d.port, SENDER, [RCPT], mh.crlf(
            "From: %s\nSubject: held\n\nheld at DATA\n" % SENDER))

        js = outbound(ctl, lambda o: [s["state"] for s in o] == ["data"],
                      "held at DATA")
        after = datetime.datetime.now(datetime.timezone.utc)
        (s,) = js["outbound"]
        assert js["outbound_count"] == 1
        assert set(s) == {"id", "server", "remote_host", "remote_address",
                          "remote_port", "state", "command", "sent",
                          "started", "seconds"}
        assert s["server"] == "test" and s["command"] == "DATA"
        assert s["remote_host"] == s["remote_address"] == "127.0.0.1"
        assert s["remote_port"] == staller.port and s["sent"] == 0
        started = datetime.datetime.strptime(
            s["started"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        assert before <= started <= after
        assert 0 <= s["seconds"] <= (after - before).total_seconds() + 1
        assert ctl.json("sessions", "--server", "other")["outbound"] == []

        head, lines, count = columns(ctl)
        assert head.split() == ["OUT-ID", "SERVER", "REMOTE", "STATE",
                                "STARTED", "COMMAND", "SENT", "HOST"]
        assert count == "1 outbound session"
        (line,) = lines
        for col, want in (("SERVER", "test"), ("REMOTE", "127.0.0.1"),
                          ("STATE", "data"), ("COMMAND", "DATA"),
                          ("SENT", "0"), ("HOST", "127.0.0.1")):
            assert line[head.index(col):].split()[0] == want, (col, line)
        assert line.split()[0] == str(s["id"])

        # a new queued hears of the session from deliverd
        old = mh.children(d.pid)["queued"]
        os.kill(old, signal.SIGKILL)
        assert mh.wait_until(lambda: mh.children(d.pid).get("queued") not in
                             (None, old), WAIT), d.log_text()
        js = outbound(ctl, lambda o: [(x["id"], x["state"]) for x in o] ==
                      [(s["id"], "data")], "listed by the new queued")

        # the message goes; the session is held at QUIT with one sent
        staller.data.set()
        js = outbound(ctl, lambda o: [(x["state"], x["sent"]) for x in o]
                      == [("closing", 1)], "held at QUIT")
        assert js["outbound"][0]["command"] == "QUIT"
        assert len(staller.received) == 1
        head, lines, count = columns(ctl)
        assert lines[0][head.index("STATE"):].split()[0] == "closing"
        assert lines[0][head.index("SENT"):].split()[0] == "1"

        staller.quit.set()
        outbound(ctl, lambda o: o == [], "ended")
        assert columns(ctl)[1:] == ([], "0 outbound sessions")
    finally:
        staller.stop()
