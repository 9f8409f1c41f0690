"""
Outbound limits and timeouts (the IIS Delivery tab, RFC 5321 4.5.3.2):
connections in total and per destination, kept while many messages wait;
recipients per transaction (the rest in a further transaction on the same
connection); a step timeout for the greeting, a command and the end of
data; a reply trickled or flooded without end; a per-destination rate
limit.  The receivers are small scripted SMTP servers on loopback that
count connections and note when each transaction arrives.
"""

import threading
import time

import pytest

import mailroot_harness as mh
from peer_server import PeerServer

SENDER = "sender@local.test"
WAIT = 120.0


def message(subject):
    return mh.crlf("From: %s\nTo: someone\nSubject: %s\n\nbody\n"
                   % (SENDER, subject))


class Gate:
    """Holds every session at its greeting until `want' sessions are open
    at once, across the receivers sharing it (bounded), then lets all
    through: the limits are reached before anyone finishes."""

    def __init__(self, want):
        self.want = want
        self.lock = threading.Lock()
        self.now = 0
        self.max = 0
        self.open = threading.Event()

    def enter(self):
        with self.lock:
            self.now += 1
            self.max = max(self.max, self.now)
            if self.now >= self.want:
                self.open.set()
        self.open.wait(30.0)

    def leave(self):
        with self.lock:
            self.now -= 1


class Receiver(PeerServer):
    """A scripted SMTP server.  mode: "ok" (takes everything), "mute"
    (never says a word), "mute-dot" (no reply to the end of data),
    "trickle" (a multi-line greeting sent a byte at a time, forever),
    "flood" (a multi-line greeting without end, as fast as it goes)."""

    def __init__(self, mode="ok", gate=None):
        self.mode = mode
        self.gate = gate
        self.lock = threading.Lock()
        self.now = 0            # sessions open
        self.max = 0
        self.connections = 0
        self.closed = 0         # sessions the client ended
        self.transactions = []  # (connection number, [rcpts], time)
        self.mails = []         # monotonic time of each MAIL FROM
        super().__init__("127.0.0.1", 0, 64)
        self.start()

    def accepted(self, c):
        with self.lock:
            self.connections += 1
            self.now += 1
            self.max = max(self.max, self.now)
            n = self.connections
        threading.Thread(target=self._serve, args=(c, n),
                         daemon=True).start()

    def _serve(self, c, n):
        c.settimeout(60.0)
        f = c.makefile("rb")
        left = []
        try:
            if self.gate is not None:
                self.gate.enter()
            self._talk(c, f, n, left)
        except OSError:
            pass
        finally:
            self._leave(left)
            f.close()
            c.close()

    def _leave(self, left):
        """The session no longer counts as open.  At QUIT this comes
        before the 221, after which the client may open the next
        connection; at the end, for sessions that ended otherwise."""
        if left:
            return
        left.append(True)
        if self.gate is not None:
            self.gate.leave()
        with self.lock:
            self.now -= 1
            self.closed += 1

    def _quiet(self, c):
        """Says nothing until the client hangs up (or 60 s)."""
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass

    def _endless(self, c):
        if self.mode == "trickle":
            c.sendall(b"220-")
        while not self.stopping:
            if self.mode == "trickle":
                c.sendall(b"x")
                time.sleep(0.05)
            else:
                c.sendall(b"220-and more\r\n" * 64)

    def _talk(self, c, f, n, left):
        if self.mode == "mute":
            return self._quiet(c)
        if self.mode in ("trickle", "flood"):
            return self._endless(c)
        c.sendall(b"220 receiver ready\r\n")
        rcpts = []
        while True:
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                c.sendall(b"250 receiver\r\n")
            elif verb == b"MAIL":
                rcpts = []
                with self.lock:
                    self.mails.append(time.monotonic())
                c.sendall(b"250 ok\r\n")
            elif verb == b"RCPT":
                rcpts.append(line.split(b"<", 1)[1].split(b">", 1)[0]
                             .decode())
                c.sendall(b"250 ok\r\n")
            elif verb == b"DATA":
                c.sendall(b"354 go on\r\n")
                while f.readline() not in (b".\r\n", b""):
                    pass
                if self.mode == "mute-dot":
                    return self._quiet(c)
                with self.lock:
                    self.transactions.append((n, rcpts, time.monotonic()))
                c.sendall(b"250 queued\r\n")
            elif verb == b"QUIT":
                self._leave(left)
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"250 ok\r\n")

    def wait_transactions(self, count, timeout=WAIT / 2):
        ok = mh.wait_until(lambda: len(self.transactions) >= count,
                           timeout, 0.05)
        assert ok, "%d of %d transactions arrived" % (
            len(self.transactions), count)
        return self.transactions


@pytest.fixture
def receivers():
    made = []

    def make(*args, **kw):
        r = Receiver(*args, **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


def routes(**domains):
    return "".join('    domain "%s" remote { route "[127.0.0.1]:%d" }\n'
                   % (d.replace("_", "."), r.port)
                   for d, r in domains.items())


def log_lines(mr, *words):
    return [line for line in mr.log_text().splitlines()
            if all(w in line for w in words)]


def wait_log(mr, *words, timeout=WAIT):
    assert mh.wait_until(lambda: log_lines(mr, *words), timeout, 0.1), \
        "no log line with %r\n%s" % (words, mr.log_text()[-3000:])
    return log_lines(mr, *words)


# ---- connections ----

def test_connection_limits_total_and_per_domain(start_mailroot, receivers):
    # 3 connections in all, 2 per destination, one message per
    # connection: 20 messages for two domains never open more, and the
    # receivers hold every session until 3 are open at once
    gate = Gate(3)
    a, b = receivers(gate=gate), receivers(gate=gate)
    mr = start_mailroot(server_extra=(
        "    limits { messages-per-connection 1 }\n"
        "    delivery { outbound { connections 3\n per-domain 2 } }\n"
        + routes(a_test=a, b_test=b)))
    for k in range(10):
        mh.send(mr.port, SENDER, ["u%d@a.test" % k], message("a%d" % k))
        mh.send(mr.port, SENDER, ["u%d@b.test" % k], message("b%d" % k))
    a.wait_transactions(10)
    b.wait_transactions(10)
    mr.wait_queue_empty()
    assert gate.open.is_set(), "never 3 connections at once"
    assert gate.max == 3, gate.max
    assert a.max <= 2 and b.max <= 2, (a.max, b.max)
    assert a.connections == 10 and b.connections == 10


def test_recipients_split_on_one_connection(start_mailroot, receivers):
    # recipients-per-message 3: 7 recipients go as 3 + 3 + 1 in three
    # transactions on one connection (messages-per-connection 1 counts
    # the message, not its parts)
    r = receivers()
    mr = start_mailroot(server_extra=(
        "    limits {\n recipients-per-message 3\n"
        "        messages-per-connection 1\n    }\n"
        + routes(split_test=r)))
    rcpts = ["r%d@split.test" % k for k in range(7)]
    wait_log(mr, "Pickup: watching")    # else only a scan takes the file
    pick = mr.dir("Pickup")
    data = ("x-sender: %s\n" % SENDER
            + "".join("x-receiver: %s\n" % x for x in rcpts)
            + "From: %s\nTo: many\nSubject: split\n\nbody\n" % SENDER)
    tmp = pick / ".split.eml"
    tmp.write_bytes(mh.crlf(data))
    tmp.rename(pick / "split.eml")
    assert mh.wait_until(lambda: sum(len(t[1]) for t in r.transactions)
                         >= 7, WAIT / 2, 0.05), r.transactions
    mr.wait_queue_empty()
    got = r.transactions
    assert [len(t[1]) for t in got] == [3, 3, 1], got
    assert sorted(x for t in got for x in t[1]) == sorted(rcpts)
    assert {t[0] for t in got} == {1} and r.connections == 1, got


# ---- timeouts ----

TIMEOUTS = ("    delivery { outbound {\n"
            "        greeting-timeout 2s\n        command-timeout 2s\n"
            "        data-timeout 2s\n        dot-timeout 2s\n    } }\n")


@pytest.fixture
def slow_peers(start_mailroot, receivers):
    peers = {name: receivers(mode) for name, mode in (
        ("mute", "mute"), ("dot", "mute-dot"), ("trickle", "trickle"),
        ("flood", "flood"), ("good", "ok"))}
    mr = start_mailroot(server_extra=TIMEOUTS + routes(
        **{"%s_test" % k: v for k, v in peers.items()}))
    return mr, peers


def deferred_for(mr, rcpt, text):
    """The log line saying rcpt was deferred for text (waits for it)."""
    return wait_log(mr, "to=<%s>" % rcpt, "status=deferred", text)


@pytest.mark.parametrize("peer,text", [
    ("mute", "timed out while receiving the initial server greeting"),
    ("dot", "timed out while waiting for the end of data reply"),
    ("trickle", "timed out while receiving the initial server greeting"),
    ("flood", "malformed reply"),
])
def test_unanswering_peer_costs_one_session(slow_peers, peer, text):
    # each ends within the step timeout (2 s; the default would be 5 or
    # 10 minutes, and a trickle never ends on an idle timer), the mail
    # stays queued for the next retry, and other mail goes on meanwhile
    mr, peers = slow_peers
    mh.send(mr.port, SENDER, ["u@%s.test" % peer], message(peer))
    mh.send(mr.port, SENDER, ["u@good.test"], message("good"))
    peers["good"].wait_transactions(1)
    deferred_for(mr, "u@%s.test" % peer, text)
    assert mh.wait_until(lambda: peers[peer].closed >= 1, WAIT, 0.05), \
        "deliverd did not hang up"
    assert len(mr.queue_files()) > 0, "the message left the queue"
    assert not log_lines(mr, "to=<u@%s.test>" % peer, "status=bounced")
    assert mr.drop_files() == [], "a DSN was sent"


# ---- rate ----

def test_rate_limit_per_destination(start_mailroot, receivers):
    # rate 2 per 3s for rate.test: the third message cannot start before
    # 3 s after the first was handed over, whatever the machine's speed;
    # it waits in the queue ("not tried"), and is neither bounced nor
    # delivered twice
    r, free = receivers(), receivers()
    mr = start_mailroot(server_extra=(
        '    domain "rate.test" remote {\n'
        '        route "[127.0.0.1]:%d"\n        rate 2 per 3s\n    }\n'
        % r.port + routes(free_test=free)))
    t0 = time.monotonic()
    for k in range(4):
        mh.send(mr.port, SENDER, ["u%d@rate.test" % k], message("r%d" % k))
    for k in range(4):
        mh.send(mr.port, SENDER, ["u%d@free.test" % k], message("f%d" % k))
    free.wait_transactions(4)
    r.wait_transactions(4)
    mr.wait_queue_empty()
    mails = sorted(r.mails)
    assert len(mails) == 4, mails
    assert mails[2] - t0 >= 3.0, [m - t0 for m in mails]
    assert log_lines(mr, "status=not tried", "rate limit of 2 messages "
                     "per 3 s to 127.0.0.1")
    assert not log_lines(mr, "free.test", "rate limit")
    assert mr.drop_files() == [], "a DSN was sent"
