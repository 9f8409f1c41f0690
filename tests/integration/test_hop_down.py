"""
A next hop that is down (deliverd/dest_down.c): after one session failed
at every address while nothing got through, deliverd marks the
destination down and defers its mail at once, "delivery temporarily
suspended", without connecting, until a flush (mailrootctl flush), the
end of the first retry interval (on the test clock, test_schedule.py) or
a message that gets through.  The next hops are scripted peers on
loopback that count the connections they are offered.
"""

import re
import socket
import threading

import mailroot_harness as mh
from peer_server import PeerServer
from test_mailrootctl import Ctl
from test_schedule import start_with_clock

SENDER = "app@local.test"
RCPT = "user@remote.test"
OTHER = "user@other.test"
N = 50
WAIT = 120.0


class Hop(PeerServer):
    """A next hop: while down it greets with 421 and hangs up; when up it
    takes every message.  Counts the connections and records the mail
    by Subject."""

    def __init__(self, down=True):
        self.down = down
        self.lock = threading.Lock()
        self.connections = 0
        self.down_connections = 0
        self.subjects = []
        super().__init__("127.0.0.1", 0, 64)
        self.start()

    def accepted(self, c):
        with self.lock:
            self.connections += 1
            down = self.down
            if down:
                self.down_connections += 1
        if down:
            try:
                c.sendall(b"421 4.3.2 down for maintenance (peer)\r\n")
            except OSError:
                pass
            c.close()
            return
        threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(60.0)
        f = c.makefile("rb")
        try:
            self._talk(c, f)
        except OSError:
            pass
        finally:
            f.close()
            c.close()

    def _talk(self, c, f):
        c.sendall(b"220 hop.test ESMTP\r\n")
        for _ in range(100000):
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"DATA":
                c.sendall(b"354 go ahead\r\n")
                self._data(f)
                c.sendall(b"250 2.0.0 taken\r\n")
            elif verb == b"QUIT":
                c.sendall(b"221 bye\r\n")
                return
            elif verb in (b"EHLO", b"HELO"):
                c.sendall(b"250 hop.test\r\n")
            else:
                c.sendall(b"250 ok\r\n")

    def _data(self, f):
        subject = None
        for _ in range(100000):
            line = f.readline()
            if not line or line == b".\r\n":
                break
            if subject is None and line.lower().startswith(b"subject:"):
                subject = line[8:].strip().decode()
        with self.lock:
            self.subjects.append(subject)


def message(subject, rcpt=RCPT):
    return mh.crlf("From: %s\nTo: %s\nSubject: %s\n\nbody\n"
                   % (SENDER, rcpt, subject))


def send_many(port, n, prefix, rcpt=RCPT):
    import smtplib
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        for i in range(n):
            refused = s.sendmail(SENDER, [rcpt],
                                 message("%s %d" % (prefix, i), rcpt))
            assert refused == {}


def all_deferred(ctl, n):
    def ready():
        msgs = ctl.json("queue")["messages"]
        done = [m for m in msgs if m["attempts"] >= 1 and
                m["state"] == "deferred"]
        return msgs if len(done) >= n else None
    msgs = mh.wait_until(ready, WAIT, 0.1)
    assert msgs, ctl.run("queue").stdout
    return msgs


def next_tries(d):
    """Each queued message's next try, on queued's clock."""
    envs = [p for p in d.dir("Queue").iterdir() if p.suffix == ".env"]
    return [int(re.search(r"(?m)^next-try (\d+)$", p.read_text())[1])
            for p in envs]


def start(start_mailroot, workdir, hop, other=None, **kw):
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755, exist_ok=True)
    sock = rundir / "control"
    extra = ""
    if other is not None:
        extra = ('    domain "other.test" remote { route "[127.0.0.1]:%d" }'
                 % other.port)
    d = start_mailroot(sink=hop, server_extra=extra,
                       global_extra='control-socket "%s"' % sock, **kw)
    return d, Ctl(sock)


def test_421_hop_suspended_then_flushed(start_mailroot, workdir):
    hop, other = Hop(down=True), Hop(down=False)
    try:
        d, ctl = start(start_mailroot, workdir, hop, other)
        send_many(d.port, N, "outage")
        msgs = all_deferred(ctl, N)
        # a few sessions at most found it down, not one per message
        assert 1 <= hop.connections <= 5, (hop.connections, d.log_text())
        errors = [r["last_error"] for m in msgs for r in m["recipients"]]
        suspended = [e for e in errors if "temporarily suspended" in e]
        assert len(suspended) >= N - 5, errors
        assert all("421" in e for e in suspended), suspended
        assert "next hop 127.0.0.1 is down" in d.log_text()
        # another destination is not affected
        send_many(d.port, 1, "elsewhere", OTHER)
        assert mh.wait_until(lambda: other.subjects == ["elsewhere 0"],
                             WAIT), d.log_text()
        # up again: one flush delivers every message, exactly once
        seen = hop.connections
        hop.down = False
        assert ctl.json("flush") == {"flushed": N}
        assert mh.wait_until(lambda: len(hop.subjects) >= N, WAIT), \
            (len(hop.subjects), d.log_text())
        d.wait_queue_empty(WAIT)
        assert sorted(hop.subjects) == sorted("outage %d" % i
                                              for i in range(N))
        assert hop.down_connections == seen
        assert "no longer suspended (flushed)" in d.log_text()
    finally:
        hop.stop()
        other.stop()


def test_refused_hop_marked_down(start_mailroot, workdir):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))   # bound, never listening: refused
    port = closed.getsockname()[1]

    class Port:
        pass
    hop = Port()
    hop.port = port
    try:
        d, ctl = start(start_mailroot, workdir, hop)
        send_many(d.port, 20, "refused")
        msgs = all_deferred(ctl, 20)
        # one line per connection tried: "ID: connect to ...: refused"
        tries = len(re.findall(r"(?m)deliverd\[\d+\]: \w+: connect to "
                               r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % port,
                               d.log_text()))
        assert 1 <= tries <= 5, d.log_text()
        errors = [r["last_error"] for m in msgs for r in m["recipients"]]
        assert sum("temporarily suspended" in e and "refused" in e
                   for e in errors) >= 15, errors
    finally:
        closed.close()


def test_mark_ends_after_the_first_retry_interval(start_mailroot, workdir):
    hop = Hop(down=True)
    try:
        rundir = workdir / "run"
        rundir.mkdir(mode=0o755)
        sock = rundir / "control"
        d, clock = start_with_clock(
            start_mailroot, hop, workdir,
            global_extra='control-socket "%s"' % sock)
        ctl = Ctl(sock)
        send_many(d.port, 1, "first")
        all_deferred(ctl, 1)
        assert hop.connections == 1
        send_many(d.port, 1, "second")
        all_deferred(ctl, 2)
        assert hop.connections == 1, d.log_text()
        hop.down = False
        # the first retry (15 min) comes when the mark has run out
        clock.reach(max(next_tries(d)))
        assert mh.wait_until(lambda: len(hop.subjects) == 2, WAIT), \
            d.log_text()
        d.wait_queue_empty(WAIT)
        assert sorted(hop.subjects) == ["first 0", "second 0"]
        assert "no longer suspended (its suspension is over)" in \
            d.log_text()
    finally:
        hop.stop()


def test_reload_lifts_the_mark(start_mailroot, workdir):
    from test_reload import hup
    hop = Hop(down=True)
    try:
        d, ctl = start(start_mailroot, workdir, hop)
        send_many(d.port, 1, "first")
        all_deferred(ctl, 1)
        send_many(d.port, 1, "second")
        all_deferred(ctl, 2)
        assert hop.connections == 1, d.log_text()
        hop.down = False
        assert hup(d) == "reloaded"
        assert mh.wait_until(lambda: "no longer suspended (reloaded)" in
                             d.log_text(), WAIT), d.log_text()
        # new mail goes out at once; the deferred waits for its retry
        send_many(d.port, 1, "third")
        assert mh.wait_until(lambda: hop.subjects == ["third 0"], WAIT), \
            d.log_text()
        assert hop.connections == 2
    finally:
        hop.stop()


def test_retry_of_one_message_tries_the_hop(start_mailroot, workdir):
    """mailrootctl retry ID lifts the mark of the message's next hop."""
    hop = Hop(down=True)
    try:
        d, ctl = start(start_mailroot, workdir, hop)
        send_many(d.port, 1, "first")
        msgs = all_deferred(ctl, 1)
        hop.down = False
        ctl.run("retry", msgs[0]["id"])
        assert mh.wait_until(lambda: hop.subjects == ["first 0"], WAIT), \
            d.log_text()
        assert "no longer suspended (flushed)" in d.log_text()
        assert hop.connections == 2
    finally:
        hop.stop()
