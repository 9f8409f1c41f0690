"""
mailrootctl against a running mailrootd: every verb, in columns and in
JSON, on real queued mail that the next hop (the sink) defers with 451;
the socket's owner, mode and SO_PEERCRED check; malformed requests.

The control socket is bound by mailrootd (root) in a directory of the
test's, served by queued (queued/control.c), and reached by the real
mailrootctl binary.
"""

import json
import os
import socket
import stat
import struct
import subprocess
import time

import pytest

import mailroot_harness as mh

CTL = mh.BUILDDIR / "tools" / "mailrootctl"
HELD = "held@remote.test"
SENDER = "app@local.test"
DEFER = "451 4.3.0 Try again later (sink)"


def message(subject, body="Hello from the control test.\n"):
    return mh.crlf("From: %s\nTo: %s\nSubject: %s\n\n%s" % (
        SENDER, HELD, subject, body))


class Ctl:
    def __init__(self, path):
        self.path = str(path)

    def run(self, *args, user=None, check=True):
        cmd = [str(CTL), "-s", self.path, *args]
        if user is not None:
            cmd = ["runuser", "-u", user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        if check:
            assert proc.returncode == 0, "%s: %s%s" % (
                " ".join(args), proc.stdout, proc.stderr)
        return proc

    def json(self, *args):
        return json.loads(self.run("-j", *args).stdout)

    def messages(self, *args):
        return {m["id"]: m for m in self.json("queue", *args)["messages"]}


def wait_deferred(ctl, count):
    """The messages once each was tried and deferred by the sink."""
    def ready():
        msgs = ctl.messages()
        done = [m for m in msgs.values() if m["state"] == "deferred"]
        return msgs if len(done) >= count else None
    msgs = mh.wait_until(ready, 90.0, 0.1)
    assert msgs, "not deferred: %s" % ctl.run("queue").stdout
    return msgs


@pytest.fixture
def env(start_mailroot, sink, workdir):
    sink.reject_rcpt(HELD, DEFER)
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755)
    sock = rundir / "control"
    d = start_mailroot(sink=sink, global_extra='control-socket "%s"\n'
                       'control-group "mailroot"' % sock)
    ctl = Ctl(sock)
    for i in range(2):
        mh.send(d.port, SENDER, [HELD], message("queued %d" % i))
    msgs = wait_deferred(ctl, 2)
    return d, ctl, sorted(msgs), sink


def test_queue_columns_and_json(env):
    d, ctl, ids, _ = env
    out = ctl.run("queue").stdout.splitlines()
    assert out[0].split() == ["ID", "SERVER", "AGE", "SIZE", "STATE",
                              "NEXT-TRY", "SENDER"]
    # aligned: every message line starts its columns where the header does
    cols = [out[0].index(h) for h in ("SERVER", "SIZE", "STATE")]
    lines = [l for l in out[1:] if l[:1] not in (" ", "") and
             not l.endswith("messages")]
    assert sorted(l.split()[0] for l in lines) == ids
    for l in lines:
        assert l[cols[0]:].startswith("test")
        assert l[cols[2]:].startswith("deferred")
        assert l.rstrip().endswith("<%s>" % SENDER)
    rcpt = [l for l in out if l.startswith("    ")]
    assert len(rcpt) == 2 and all("pending" in l and "<%s>" % HELD in l
                                  and "451" in l for l in rcpt)
    assert out[-1] == "2 messages"
    js = ctl.json("queue")
    assert js["count"] == 2
    m = js["messages"][0]
    assert set(m) == {"id", "server", "state", "created", "age", "size",
                      "attempts", "next_try", "sender", "hold",
                      "recipients"}
    assert m["hold"] == []
    assert m["server"] == "test" and m["sender"] == SENDER
    assert m["attempts"] == 1 and m["size"] > 0
    assert m["recipients"] == [{"address": HELD, "state": "pending",
                                "last_error": m["recipients"][0]
                                ["last_error"]}]
    assert "451 4.3.0" in m["recipients"][0]["last_error"]


def test_queue_filters(env):
    _, ctl, ids, _ = env
    assert len(ctl.messages("--domain", "remote.test")) == 2
    assert len(ctl.messages("--domain", "elsewhere.test")) == 0
    assert len(ctl.messages("--sender", SENDER)) == 2
    assert len(ctl.messages("--sender", "x@local.test")) == 0
    assert len(ctl.messages("--server", "test")) == 2
    assert len(ctl.messages("--server", "other")) == 0
    assert len(ctl.messages("--state", "deferred")) == 2
    assert len(ctl.messages("--state", "held")) == 0
    bad = ctl.run("queue", "--state", "bogus", check=False)
    assert bad.returncode != 0


def test_show(env):
    _, ctl, ids, _ = env
    out = ctl.run("show", ids[0]).stdout
    assert "Subject: queued" in out and "<%s>" % HELD in out
    assert "Hello from the control test." not in out
    full = ctl.run("show", ids[0], "--body").stdout
    assert "Hello from the control test." in full
    js = ctl.json("show", ids[0])
    assert js["message"]["id"] == ids[0]
    assert "Subject: queued" in js["headers"] and js["client"] == "127.0.0.1"
    assert "Hello" in ctl.json("show", ids[0], "--body")["data"]
    missing = ctl.run("show", "0123456789ABCDEF", check=False)
    assert missing.returncode == 1 and "no such message" in missing.stderr


def attempts(ctl, mid):
    return ctl.messages()[mid]["attempts"]


def test_retry_and_flush(env):
    _, ctl, ids, sink = env
    before = len(sink.rejected)
    assert ctl.run("retry", ids[0]).stdout.strip() == \
        "%s: to be tried now" % ids[0]
    assert mh.wait_until(lambda: attempts(ctl, ids[0]) == 2, 60.0, 0.1)
    assert attempts(ctl, ids[1]) == 1
    js = ctl.json("flush", "remote.test")
    assert js == {"flushed": 2}
    assert mh.wait_until(lambda: attempts(ctl, ids[1]) == 2 and
                         attempts(ctl, ids[0]) == 3, 60.0, 0.1)
    assert len(sink.rejected) >= before + 3
    assert ctl.run("flush").stdout.strip() == "2 messages to be tried now"
    assert ctl.json("flush", "nowhere.test") == {"flushed": 0}


def test_hold_survives_restart_and_release(env, workdir):
    d, ctl, ids, _ = env
    assert ctl.json("hold", ids[0]) == {"id": ids[0], "result": "held"}
    assert ctl.messages()[ids[0]]["state"] == "held"
    assert ctl.messages()[ids[0]]["hold"] == ["control"]
    assert "control-hold yes" in (d.dir("Queue") / (ids[0] + ".env")) \
        .read_text()
    # a held message is not tried, even when flushed
    assert ctl.json("flush") == {"flushed": 1}
    assert mh.wait_until(lambda: attempts(ctl, ids[1]) == 2, 60.0, 0.1)
    assert attempts(ctl, ids[0]) == 1
    assert ctl.run("retry", ids[0], check=False).returncode == 1
    # the hold is in the envelope: a restarted queue keeps it
    assert d.stop() == []
    d.returncode = None
    d.start()
    held = ctl.messages("--state", "held")
    assert list(held) == [ids[0]]
    out = ctl.run("release", ids[0]).stdout
    assert out.strip() == "%s: released" % ids[0]
    assert "control-hold" not in (d.dir("Queue") / (ids[0] + ".env")) \
        .read_text()
    assert ctl.messages()[ids[0]]["state"] != "held"
    assert "%s: held by uid 0" % ids[0] in d.log_text()


def test_hold_and_release_by_domain(env):
    d, ctl, ids, _ = env
    assert ctl.run("hold", "remote.test").stdout.strip() == \
        "remote.test: 2 messages held"
    msgs = ctl.messages("--state", "held")
    assert sorted(msgs) == ids
    assert all(m["hold"] == ["control"] for m in msgs.values())
    assert all("control-hold yes" in (d.dir("Queue") / (i + ".env"))
               .read_text() for i in ids)
    assert ctl.json("hold", "elsewhere.test") == {
        "domain": "elsewhere.test", "held": 0}
    assert ctl.json("release", "remote.test") == {
        "domain": "remote.test", "released": 2}
    assert ctl.messages("--state", "held") == {}
    assert ctl.json("flush") == {"flushed": 2}
    assert "%s: held by uid 0 (mailrootctl, domain remote.test)" % ids[0] \
        in d.log_text()


def test_delete_logs_recipients(env):
    d, ctl, ids, _ = env
    assert ctl.run("delete", ids[0]).stdout.strip() == \
        "%s: deleted" % ids[0]
    assert list(ctl.messages()) == [ids[1]]
    # the files go by queued's unlink thread
    assert mh.wait_until(lambda: not any(
        (d.dir("Queue") / (ids[0] + ext)).exists()
        for ext in (".eml", ".env")), 60.0, 0.1)
    log = d.log_text()
    assert "%s: to=<%s> status=deleted by uid 0" % (ids[0], HELD) in log
    assert ctl.json("delete", ids[1]) == {"id": ids[1], "result": "deleted"}
    d.wait_queue_empty()


def test_bounce_sends_dsn_to_sender(env):
    d, ctl, ids, _ = env
    out = ctl.run("bounce", ids[0], "--reason", "spam run").stdout
    assert out.strip() == "%s: returned to the sender" % ids[0]
    (dsn,) = d.wait_drop(1)
    text = dsn.read_text(errors="replace")
    assert "x-receiver: <%s>" % SENDER in text.lower() or \
        SENDER in text
    assert "returned to the sender by the mail administrator: spam run" \
        in text
    assert "Status: 5.0.0" in text
    assert ids[0] not in ctl.messages()


def test_stats(env):
    _, ctl, ids, _ = env
    out = ctl.run("stats").stdout.splitlines()
    assert out[0].split() == ["SERVER", "MESSAGES", "RECIPIENTS",
                              "DEFERRED", "HELD", "ACTIVE"]
    assert out[1].split() == ["test", "2", "2", "2", "0", "0"]
    assert out[2].split()[:2] == ["_Total", "2"]
    ctl.run("hold", ids[0])
    js = ctl.json("stats")
    assert js["total"] == {"server": "_Total", "messages": 2,
                           "recipients_pending": 2, "deferred": 1,
                           "held": 1, "active": 0}
    assert js["servers"][0]["server"] == "test"


def test_reload_and_stop(env):
    d, ctl, _, _ = env
    assert ctl.run("reload").stdout.strip() == "reload requested"
    assert mh.wait_until(lambda: "reloaded " in d.log_text(), 60.0, 0.1)
    assert "control socket: uid 0 asks to reload" in d.log_text()
    assert ctl.json("stop") == {"requested": "stop"}
    d.proc.wait(60)
    assert d.proc.returncode == 0
    d.returncode = 0
    assert "control socket: uid 0 asks to stop" in d.log_text()
    assert not os.path.exists(ctl.path)


@pytest.mark.skipif(not mh.IS_ROOT, reason="needs root to switch users")
def test_socket_rights(env):
    _, ctl, ids, _ = env
    st = os.stat(ctl.path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_uid == 0
    import grp
    assert st.st_gid == grp.getgrnam("mailroot").gr_gid
    # a member of control-group may; another user may not connect at all
    ok = ctl.run("queue", user="mailroot")
    assert ids[0] in ok.stdout
    out = ctl.run("queue", user="mailroot-deliver", check=False)
    assert out.returncode == 1 and "Permission denied" in out.stderr
    out = ctl.run("hold", ids[0], user="mailroot-deliver", check=False)
    assert out.returncode == 1
    assert ctl.messages()[ids[0]]["state"] == "deferred"


def raw(path, payload, framed=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    s.sendall((struct.pack(">I", len(payload)) if framed else b"") + payload)
    s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def test_malformed_requests(env):
    d, ctl, ids, _ = env
    for payload in (b"nonsense\0", b"queue", b"queue\0bogus=1\0",
                    b"show\0", b"show\0id=../../etc\0", b"delete\0id=A\0id=B\0",
                    b"queue\0json\0json\0", b"\0" * 100, b"queue\0\x01\0",
                    b"stats\0id=ABC\0", b"x" * 4096):
        assert raw(ctl.path, payload).startswith(b"error "), payload
    # a length over the bound, and a bare length with nothing after it
    assert raw(ctl.path, struct.pack(">I", 1 << 20), framed=False) \
        .startswith(b"error ")
    assert raw(ctl.path, b"\0\0\0\x10", framed=False) == b""
    # queued still serves, and nothing was changed
    assert sorted(ctl.messages()) == ids
    assert "sent a malformed" not in d.log_text()


def test_queue_json_escapes(start_mailroot, sink, workdir):
    """A next hop's reply with quotes and backslashes comes out of
    mailrootctl queue --json as the same text (the JSON strings are
    written a run of plain bytes at a time, the rest escaped)."""
    text = '451 4.3.0 say "again" \\ later\\n (sink)'
    sink.reject_rcpt(HELD, text)
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755)
    sock = rundir / "control"
    d = start_mailroot(sink=sink, global_extra='control-socket "%s"\n'
                       'control-group "mailroot"' % sock)
    ctl = Ctl(sock)
    mh.send(d.port, SENDER, [HELD], message("escapes"))
    (m,) = wait_deferred(ctl, 1).values()
    assert m["recipients"][0]["last_error"].endswith(text), m
    assert m["sender"] == SENDER and m["server"] == "test"
