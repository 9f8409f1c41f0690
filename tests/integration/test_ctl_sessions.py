"""
mailrootctl sessions against a running mailrootd with real SMTP sessions
open in different states (connected, greeted, in a transaction,
authenticated, in DATA): smtpd reports each to queued, which lists them
on the control socket in columns and in JSON; a session that ends leaves
the list, and a restarted smtpd's sessions are listed again.
"""

import base64
import datetime
import json
import os
import signal
import socket

import mailroot_harness as mh
from test_auth import build_users
from test_mailrootctl import Ctl

WAIT = 60.0


class Raw:
    """An SMTP client that stops wherever the test wants."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("rb")
        self.local_port = self.s.getsockname()[1]
        self.reply()

    def reply(self):
        out = b""
        while True:
            line = self.f.readline()
            assert line, "connection closed"
            out += line
            if line[3:4] == b" ":
                return out

    def cmd(self, line, code=b"2"):
        self.s.sendall(line.encode() + b"\r\n")
        r = self.reply()
        assert r.startswith(code), (line, r)
        return r

    def close(self):
        self.f.close()
        self.s.close()


def start(start_mailroot, workdir):
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755)
    sock = rundir / "control"
    users = build_users(workdir)
    d = start_mailroot(
        global_extra='control-socket "%s"\ncontrol-group "mailroot"\n'
        'table users db:%s' % (sock, users),
        server_extra="    auth { users users\n        require-tls no }")
    return d, Ctl(sock)


def wait_sessions(ctl, pred, what):
    got = mh.wait_until(lambda: (lambda js: js if pred(js["sessions"])
                                 else None)(ctl.json("sessions")), WAIT, 0.1)
    assert got, "%s: %s" % (what, ctl.run("sessions").stdout)
    return got


def test_sessions_in_progress(start_mailroot, workdir):
    d, ctl = start(start_mailroot, workdir)
    before = datetime.datetime.now(datetime.timezone.utc).replace(
        microsecond=0)
    plain = Raw(d.port)                       # greeted by us, no HELO
    greeted = Raw(d.port)
    greeted.cmd("EHLO greeted.example")
    mail = Raw(d.port)
    mail.cmd("EHLO mail.example")
    mail.cmd("MAIL FROM:<app@local.test>")
    mail.cmd("RCPT TO:<user@local.test>")
    auth = Raw(d.port)
    auth.cmd("EHLO auth.example")
    token = base64.b64encode(b"\0bob\0pw-bcrypt").decode()
    auth.cmd("AUTH PLAIN " + token, b"235")
    auth.cmd("NOOP")
    data = Raw(d.port)
    data.cmd("HELO data.example")
    data.cmd("MAIL FROM:<app@local.test>")
    data.cmd("RCPT TO:<user@local.test>")
    data.cmd("DATA", b"354")
    data.s.sendall(b"Subject: half\r\n\r\nnot yet")

    want = [("connected", "", "", ""),
            ("greeted", "greeted.example", "", "EHLO"),
            ("mail", "mail.example", "", "RCPT"),
            ("greeted", "auth.example", "bob", "NOOP"),
            ("data", "data.example", "", "DATA")]

    def seen(sessions):
        return sorted((s["state"], s["helo"], s["user"], s["command"])
                      for s in sessions) == sorted(want)
    js = wait_sessions(ctl, seen, "five sessions")
    after = datetime.datetime.now(datetime.timezone.utc)
    assert js["count"] == 5
    for s in js["sessions"]:
        assert set(s) == {"id", "server", "client", "local_address",
                          "local_port", "state", "user", "helo", "command",
                          "started", "seconds"}
        assert s["server"] == "test"
        assert s["client"] == s["local_address"] == "127.0.0.1"
        assert s["local_port"] == d.port
        started = datetime.datetime.strptime(
            s["started"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        assert before <= started <= after
        assert 0 <= s["seconds"] <= (after - before).total_seconds() + 1
    # oldest first: the order they were opened in
    assert [s["helo"] for s in js["sessions"]] == \
        ["", "greeted.example", "mail.example", "auth.example",
         "data.example"]
    ids = [s["id"] for s in js["sessions"]]
    assert ids == sorted(ids) and len(set(ids)) == 5

    # columns: a header, a line per session aligned under it, a count
    # (the outbound table follows: test_ctl_outbound.py)
    out = ctl.run("sessions").stdout.splitlines()
    out = out[:out.index("")]
    assert out[0].split() == ["ID", "SERVER", "CLIENT", "STATE", "USER",
                              "STARTED", "COMMAND", "HELO"]
    assert out[-1] == "5 inbound sessions"
    col = out[0].index("STATE")
    states = [l[col:].split()[0] for l in out[1:-1]]
    assert states == ["connected", "greeted", "mail", "greeted", "data"]
    user_col = out[0].index("USER")
    assert [l[user_col:].split()[0] for l in out[1:-1]] == \
        ["-", "-", "-", "bob", "-"]
    assert ctl.json("sessions", "--server", "test")["count"] == 5
    assert ctl.json("sessions", "--server", "other")["count"] == 0

    # ended sessions leave the list; the rest stay as they are
    data.s.sendall(b"\r\n.\r\n")
    assert data.reply().startswith(b"250")
    data.cmd("QUIT")
    plain.close()
    mail.cmd("QUIT")
    js = wait_sessions(ctl, lambda ss: sorted(s["helo"] for s in ss) ==
                       ["auth.example", "greeted.example"], "two left")
    assert {s["helo"]: s["state"] for s in js["sessions"]} == \
        {"auth.example": "greeted", "greeted.example": "greeted"}
    for c in (greeted, auth, data, mail):
        c.close()
    wait_sessions(ctl, lambda ss: ss == [], "none left")
    assert "0 inbound sessions" in ctl.run("sessions").stdout.splitlines()


def test_sessions_survive_a_queued_restart(start_mailroot, workdir):
    """queued keeps the table from smtpd's reports: a new queued hears
    of every session in progress when smtpd reconnects to it."""
    d, ctl = start(start_mailroot, workdir)
    one = Raw(d.port)
    one.cmd("EHLO one.example")
    two = Raw(d.port)
    two.cmd("EHLO two.example")
    two.cmd("MAIL FROM:<app@local.test>")
    helos = ["one.example", "two.example"]
    wait_sessions(ctl, lambda ss: [s["helo"] for s in ss] == helos, "two")
    old = mh.children(d.pid)["queued"]
    os.kill(old, signal.SIGKILL)
    assert mh.wait_until(lambda: mh.children(d.pid).get("queued") not in
                         (None, old), WAIT), d.log_text()

    def listed():
        proc = ctl.run("-j", "sessions", check=False)
        if proc.returncode != 0:
            return None         # the new queued is not serving yet
        js = json.loads(proc.stdout)
        got = [(s["helo"], s["state"]) for s in js["sessions"]]
        return js if got == [("one.example", "greeted"),
                             ("two.example", "mail")] else None
    assert mh.wait_until(listed, WAIT, 0.1), (ctl.run(
        "sessions", check=False).stdout, d.log_text()[-3000:])
    # the sessions went on through it
    one.cmd("NOOP")
    two.cmd("RSET")
    wait_sessions(ctl, lambda ss: [s["state"] for s in ss] ==
                  ["greeted", "greeted"], "after RSET")
    one.close()
    two.close()
    wait_sessions(ctl, lambda ss: ss == [], "none left")
