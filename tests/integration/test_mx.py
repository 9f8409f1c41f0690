"""
Direct delivery by MX against a real DNS server (a private unbound from
dns_server.py) and receivers on several loopback addresses, all on one
port (mailroot's `outbound { port }`): preference and fallback, random
order among equal preferences, implicit MX, null MX, NXDOMAIN, SERVFAIL,
an IPv6-only MX, and a domain whose MX is mailroot itself.
"""


import pytest

import mailroot_harness as mh
from peer_server import PeerServer
from dns_server import DNSServer

SENDER = "sender@local.test"


def message(subject):
    return mh.crlf("From: %s\nTo: someone\nSubject: %s\n\nbody\n"
                   % (SENDER, subject))


class Busy(PeerServer):
    """Answers every connection with a 421 greeting and hangs up."""

    def __init__(self, host, port):
        super().__init__(host, port, 8)
        self.connections = 0

    def accepted(self, c):
        self.connections += 1
        try:
            c.sendall(b"421 4.3.2 busy, try the next MX\r\n")
        except OSError:
            pass
        c.close()


@pytest.fixture
def net(workdir):
    """The DNS server (not yet started), the common port, and a list to
    which started peers are added (stopped at teardown)."""
    port = mh.free_port()
    dns = DNSServer(workdir, ipv6=True)
    peers = []
    yield dns, port, peers
    for p in peers:
        p.stop()
    dns.stop()


def sink_at(peers, host, port):
    s = mh.Sink(host=host, port=port).start()
    peers.append(s)
    return s


def start(start_mailroot, dns, port, extra=""):
    dns.start()
    return start_mailroot(
        global_extra="resolver %s" % dns.resolver,
        server_extra="    limits { messages-per-connection 1 }\n"
                     "    delivery { outbound { port %d } }\n%s"
                     % (port, extra))


def deferred(mr, rcpt, text, timeout=60.0):
    """Waits for deliverd's log line saying rcpt was deferred for text."""
    def seen():
        return any("to=<%s>" % rcpt in line and "status=deferred" in line
                   and text in line for line in mr.log_text().splitlines())
    assert mh.wait_until(seen, timeout, 0.1), \
        "no 'deferred (... %s ...)' line for %s" % (text, rcpt)


def bounce_text(mr, timeout=60.0):
    """The one DSN that reached Drop (the sender is local), as text."""
    (dsn,) = mr.wait_drop(1, timeout)
    return dsn.read_text(errors="replace")


def test_preference_and_fallback(start_mailroot, net):
    dns, port, peers = net
    # 5: 421 at greeting, 10: nothing listens, 20: takes it, 30: unused
    busy = Busy("127.0.0.4", port)
    busy.start()
    peers.append(busy)
    ok = sink_at(peers, "127.0.0.3", port)
    last = sink_at(peers, "127.0.0.6", port)
    dns.mx("pref.test", 5, "busy.pref.test").a("busy.pref.test", "127.0.0.4")
    dns.mx("pref.test", 10, "down.pref.test").a("down.pref.test",
                                                "127.0.0.2")
    dns.mx("pref.test", 20, "ok.pref.test").a("ok.pref.test", "127.0.0.3")
    dns.mx("pref.test", 30, "last.pref.test").a("last.pref.test",
                                                "127.0.0.6")
    mr = start(start_mailroot, dns, port)
    mh.send(mr.port, SENDER, ["u@pref.test"], message("fallback"))
    got = ok.wait_for(1)
    assert [m.rcpt_tos for m in got] == [["u@pref.test"]]
    mr.wait_queue_empty()
    assert busy.connections >= 1, "the preference-5 MX was not tried first"
    assert last.messages == []
    assert "relay=ok.pref.test[127.0.0.3]" in mr.log_text()


def test_lowest_preference_wins(start_mailroot, net):
    dns, port, peers = net
    best = sink_at(peers, "127.0.0.7", port)
    worse = sink_at(peers, "127.0.0.8", port)
    dns.mx("two.test", 20, "worse.two.test").a("worse.two.test", "127.0.0.8")
    dns.mx("two.test", 10, "best.two.test").a("best.two.test", "127.0.0.7")
    mr = start(start_mailroot, dns, port)
    for i in range(3):
        mh.send(mr.port, SENDER, ["u%d@two.test" % i], message("best"))
    assert len(best.wait_for(3)) == 3
    mr.wait_queue_empty()
    assert worse.messages == []


def test_equal_preferences_both_used(start_mailroot, net):
    dns, port, peers = net
    a = sink_at(peers, "127.0.0.2", port)
    b = sink_at(peers, "127.0.0.3", port)
    dns.mx("eq.test", 10, "a.eq.test").a("a.eq.test", "127.0.0.2")
    dns.mx("eq.test", 10, "b.eq.test").a("b.eq.test", "127.0.0.3")
    mr = start(start_mailroot, dns, port)
    # one message per connection; with a fair shuffle the chance that 40
    # messages all pick the same MX is 2 * 2**-40
    n = 40
    for i in range(n):
        mh.send(mr.port, SENDER, ["u%d@eq.test" % i], message("eq %d" % i))
    assert mh.wait_until(lambda: len(a.messages) + len(b.messages) >= n,
                         120.0, 0.1), (len(a.messages), len(b.messages))
    mr.wait_queue_empty()
    assert a.messages and b.messages, \
        "equal-preference MX hosts not both used: %d / %d" % (
            len(a.messages), len(b.messages))


def test_implicit_mx_a_and_aaaa(start_mailroot, net):
    dns, port, peers = net
    v4 = sink_at(peers, "127.0.0.9", port)
    v6 = sink_at(peers, "::1", port)
    dns.a("implicit4.test", "127.0.0.9")
    dns.aaaa("implicit6.test", "::1")
    mr = start(start_mailroot, dns, port)
    mh.send(mr.port, SENDER, ["u@implicit4.test"], message("a"))
    mh.send(mr.port, SENDER, ["u@implicit6.test"], message("aaaa"))
    assert [m.rcpt_tos for m in v4.wait_for(1)] == [["u@implicit4.test"]]
    assert [m.rcpt_tos for m in v6.wait_for(1)] == [["u@implicit6.test"]]
    mr.wait_queue_empty()


def test_ipv6_only_mx(start_mailroot, net):
    dns, port, peers = net
    v6 = sink_at(peers, "::1", port)
    dns.mx("six.test", 10, "mx.six.test").aaaa("mx.six.test", "::1")
    mr = start(start_mailroot, dns, port)
    mh.send(mr.port, SENDER, ["u@six.test"], message("v6"))
    assert [m.rcpt_tos for m in v6.wait_for(1)] == [["u@six.test"]]
    mr.wait_queue_empty()
    assert "relay=mx.six.test[::1]" in mr.log_text()


def test_null_mx_bounces(start_mailroot, net):
    dns, port, _ = net
    dns.null_mx("nomail.test")
    mr = start(start_mailroot, dns, port)
    mh.send(mr.port, SENDER, ["u@nomail.test"], message("null mx"))
    text = bounce_text(mr)
    assert "u@nomail.test" in text
    assert "5.1.10" in text and "null MX" in text, text
    mr.wait_queue_empty()


def test_nxdomain_bounces(start_mailroot, net):
    dns, port, _ = net
    dns.nxdomain("gone.test")
    mr = start(start_mailroot, dns, port)
    mh.send(mr.port, SENDER, ["u@nx.gone.test"], message("nxdomain"))
    text = bounce_text(mr)
    assert "u@nx.gone.test" in text
    assert "5.1.2" in text and "NXDOMAIN" in text, text
    mr.wait_queue_empty()


def test_servfail_stays_queued(start_mailroot, net):
    dns, port, _ = net
    dns.servfail("broken.test")
    mr = start(start_mailroot, dns, port)
    mh.send(mr.port, SENDER, ["u@broken.test"], message("servfail"))
    deferred(mr, "u@broken.test", "DNS lookup")
    assert mr.queue_files(), "the message left the queue"
    assert mr.drop_files() == [], "a DSN was sent for a temporary failure"


def test_mx_host_servfail_stays_queued(start_mailroot, net):
    dns, port, _ = net
    dns.servfail("broken.test")
    dns.mx("half.test", 10, "mx.broken.test")
    mr = start(start_mailroot, dns, port)
    mh.send(mr.port, SENDER, ["u@half.test"], message("servfail host"))
    deferred(mr, "u@half.test", "server failure")
    assert mr.queue_files(), "the message left the queue"
    assert mr.drop_files() == []


def test_mx_is_ourselves_bounces(start_mailroot, net):
    dns, port, peers = net
    # mailroot also listens on 127.0.0.5:port, the best MX of loop.test;
    # the preference-20 MX must not be used (RFC 5321 5.1)
    other = sink_at(peers, "127.0.0.10", port)
    dns.mx("loop.test", 10, "us.loop.test").a("us.loop.test", "127.0.0.5")
    dns.mx("loop.test", 20, "other.loop.test").a("other.loop.test",
                                                 "127.0.0.10")
    mr = start(start_mailroot, dns, port,
               "    listen 127.0.0.5:%d\n" % port)
    mh.send(mr.port, SENDER, ["u@loop.test"], message("loop"))
    text = bounce_text(mr)
    assert "u@loop.test" in text
    assert "5.4.6" in text and "loops back to myself" in text, text
    mr.wait_queue_empty()
    assert other.messages == []


def test_mx_after_ourselves_not_used(start_mailroot, net):
    dns, port, peers = net
    # we are the preference-20 MX of backup.test: when the preference-10
    # one is down the mail waits for it; it neither comes back to us nor
    # goes to the preference-30 host
    worse = sink_at(peers, "127.0.0.11", port)
    dns.mx("backup.test", 10, "best.backup.test").a("best.backup.test",
                                                    "127.0.0.12")
    dns.mx("backup.test", 20, "us.backup.test").a("us.backup.test",
                                                  "127.0.0.5")
    dns.mx("backup.test", 30, "worse.backup.test").a("worse.backup.test",
                                                     "127.0.0.11")
    mr = start(start_mailroot, dns, port,
               "    listen 127.0.0.5:%d\n" % port)
    mh.send(mr.port, SENDER, ["u@backup.test"], message("backup"))
    deferred(mr, "u@backup.test", "best.backup.test[127.0.0.12]")
    assert mr.queue_files(), "the message left the queue"
    assert worse.messages == []
    assert mr.drop_files() == []
    assert "relay=us.backup.test" not in mr.log_text()
