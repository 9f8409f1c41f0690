"""
mailroot next to a real Postfix (Debian's package, a private instance with
its own config_directory and queue_directory under the test's directory,
on loopback ports), both ways:

- downstream: a web application's mail goes client -> mailroot -> Postfix
  (the smart host) -> sink.  Postfix offers PIPELINING, so mailroot's
  deliverd pipelines MAIL/RCPT/DATA and keeps its connection for the next
  message; Postfix must see neither a protocol error nor a warning.
- upstream: a LAN's Postfix relays through mailroot: client -> Postfix ->
  mailroot -> sink, with Postfix's own pipelining client.

Needs root (Postfix's set-permissions and start); skipped when Postfix is
not installed (.ci/run installs it).
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import mailroot_harness as mh
import postfix_instance

pytestmark = [
    pytest.mark.skipif(shutil.which("postfix") is None,
                       reason="postfix is not installed"),
    pytest.mark.skipif(not mh.IS_ROOT, reason="needs root"),
    # starting a private Postfix took over 120 s once under ASan and a
    # loaded host, nearly all of it in "postfix set-permissions"
    pytest.mark.call_timeout(400),
]


class Postfix:
    """A private Postfix listening on 127.0.0.1:port, relaying to
    [127.0.0.1]:relay_port."""

    def __init__(self, workdir, relay_port):
        # Postfix's sockets live under its queue directory and a socket's
        # path has at most 107 bytes: pytest's directories (deeper still
        # under pytest-xdist) are too long, so a short one under /tmp,
        # linked from the test's directory for whoever reads a failure
        self.dir = Path(tempfile.mkdtemp(prefix="mr-pf-", dir="/tmp"))
        try:
            (Path(workdir) / "postfix").symlink_to(self.dir)
        except OSError:
            pass
        self.port = mh.free_port()
        self.etc, self.spool, self.maillog = postfix_instance.write_config(
            self.dir, "peer-postfix.test", self.port, relay_port)

    def postfix(self, *args):
        return subprocess.run(["postfix", "-c", str(self.etc)] + list(args),
                              capture_output=True, text=True, timeout=180)

    def start(self):
        for args in (("set-permissions",), ("check",), ("start",)):
            r = self.postfix(*args)
            assert r.returncode == 0, "postfix %s: %s%s" % (
                args[0], r.stdout, r.stderr)
        assert mh.wait_until(lambda: mh.port_accepts(self.port), 60), \
            "postfix does not listen on %d\n%s" % (self.port, self.log())
        return self

    def stop(self):
        try:
            master = int((self.spool / "pid" / "master.pid").read_text())
        except (OSError, ValueError):
            master = None
        self.postfix("stop")
        if master is not None and not mh.wait_until(
                lambda: not os.path.exists("/proc/%d" % master), 20):
            self.postfix("abort")
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@pytest.fixture
def postfix_factory(workdir):
    started = []

    def start(relay_port):
        p = Postfix(workdir, relay_port).start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def body(tag, i):
    # a dot at the start of a line and a long line: the hops must
    # dot-stuff and unstuff alike
    return mh.crlf("Subject: %s %d\nX-Peer-Id: %s-%d\n"
                   "Date: Mon, 30 Nov 2026 10:00:00 +0000\n"
                   "Message-ID: <%s.%d@client.test>\n\n.leading dot\n"
                   "%s\nend %d\n" % (tag, i, tag, i, tag, i, "x" * 900, i))


def arrived(sink, tag):
    got = {}
    for m in sink.messages:
        for line in m.data.split(b"\r\n"):
            if line.startswith(b"X-Peer-Id: %s-" % tag.encode()):
                got[int(line.split(b"-")[-1])] = m
    return got


def text_after_headers(data):
    return data.split(b"\r\n\r\n", 1)[1]


def test_postfix_as_smart_host(start_mailroot, postfix_factory, sink):
    pf = postfix_factory(sink.port)
    # per-domain 1: a message that arrives while the connection is busy
    # waits for it instead of opening a second one (which deliverd may do,
    # and does on a loaded machine), so "one connection" does not depend
    # on how fast the messages come
    d = start_mailroot(server_extra=(
        '    delivery {\n        smart-host "[127.0.0.1]:%d"\n'
        '        outbound { per-domain 1 }\n    }' % pf.port))
    n = 6
    for i in range(n):
        # one at a time, as a web application does
        mh.send(d.port, "app@client.test",
                ["a%d@remote.test" % i, "b%d@remote.test" % i],
                body("down", i))
    assert mh.wait_until(lambda: len(arrived(sink, "down")) == n, 120), \
        "%s\n--- postfix ---\n%s" % (d.log_text()[-3000:], pf.log()[-3000:])
    got = arrived(sink, "down")
    for i in range(n):
        m = got[i]
        assert sorted(m.rcpt_tos) == ["a%d@remote.test" % i,
                                      "b%d@remote.test" % i]
        assert text_after_headers(m.data) == text_after_headers(
            body("down", i)), m.data
    log = pf.log()
    # every message on the connection deliverd kept open (the start-up
    # probe's connection said nothing)
    assert log.count("]: connect from localhost[127.0.0.1]") - log.count(
        "lost connection after CONNECT") == 1, log
    assert "improper command pipelining" not in log, log
    assert "warning" not in log, log
    d.wait_queue_empty(60)


def test_postfix_relays_through_mailroot(start_mailroot, postfix_factory,
                                         sink):
    d = start_mailroot(sink=sink)
    pf = postfix_factory(d.port)
    n = 4
    for i in range(n):
        mh.send(pf.port, "lan@client.test", ["r%d@remote.test" % i],
                body("up", i))
    assert mh.wait_until(lambda: len(arrived(sink, "up")) == n, 120), \
        "%s\n--- postfix ---\n%s" % (d.log_text()[-3000:], pf.log()[-3000:])
    for i, m in arrived(sink, "up").items():
        assert m.rcpt_tos == ["r%d@remote.test" % i]
        assert text_after_headers(m.data) == text_after_headers(
            body("up", i))
        # both hops left their trace: Postfix's Received, then ours
        received = [h for h in m.data.split(b"\r\n\r\n")[0].split(b"\r\n")
                    if h.startswith(b"Received:")]
        assert len(received) >= 2, m.data
    assert "status=sent" in pf.log() and "warning" not in pf.log(), \
        pf.log()
    d.wait_queue_empty(60)
