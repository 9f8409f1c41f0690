"""
Connection and relay rules by reverse DNS name, and reverse-dns-lookup
(issue 11, "Who may connect and relay"; smtpd/rdns.c, queued/ptr_relay.c,
deliverd/ptr_resolve.c; mailroot.conf(5), Connection control).

A real DNS server (unbound, dns_server.py) on loopback holds the PTR and
A/AAAA records; mailroot's `resolver` points at it.  Clients connect from
different loopback addresses (127.0.0.x, ::1), so each has its own name:

    127.0.0.4  PTR good.example       good.example A 127.0.0.4     confirmed
    127.0.0.5  PTR good.example                                 not confirmed
    127.0.0.6  PTR host.corp.example  host.corp.example A ...6     confirmed
    127.0.0.7  PTR corp.example       corp.example A ...7          confirmed
    127.0.0.9  PTR other.example      other.example A ...9         confirmed
    127.0.0.8, 127.0.0.1           no PTR record
    ::1        PTR six.example        six.example AAAA ::1         confirmed
"""

import re
import smtplib
import socket
import threading

import pytest

import mailroot_harness as mh
from dns_server import DnsServer

V6_PTR = "1." + "0." * 31 + "ip6.arpa."
RECORDS = [
    "4.0.0.127.in-addr.arpa. 60 IN PTR good.example.",
    "good.example. 60 IN A 127.0.0.4",
    "5.0.0.127.in-addr.arpa. 60 IN PTR good.example.",
    "6.0.0.127.in-addr.arpa. 60 IN PTR host.corp.example.",
    "host.corp.example. 60 IN A 127.0.0.6",
    "7.0.0.127.in-addr.arpa. 60 IN PTR corp.example.",
    "corp.example. 60 IN A 127.0.0.7",
    "9.0.0.127.in-addr.arpa. 60 IN PTR other.example.",
    "other.example. 60 IN A 127.0.0.9",
    V6_PTR + " 60 IN PTR six.example.",
    "six.example. 60 IN AAAA ::1",
]
# the burst: 127.0.0.100..129, every other one named badN.example
BURST = [("127.0.0.%d" % i, i % 2 == 0) for i in range(100, 130)]
for _ip, _bad in BURST:
    if _bad:
        RECORDS += ["%s.0.0.127.in-addr.arpa. 60 IN PTR bad%s.example." %
                    (_ip.split(".")[3], _ip.split(".")[3]),
                    "bad%s.example. 60 IN A %s" % (_ip.split(".")[3], _ip)]

WAIT = 60.0     # every greeting, however slow the machine


@pytest.fixture
def dns(workdir):
    d = DnsServer(workdir).start(RECORDS)
    yield d
    d.stop()


def start(start_mailroot, port, rules="", **conf):
    return start_mailroot(global_extra="resolver 127.0.0.1@%d" % port,
                          server_extra=rules, **conf)


def connect(port, src, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(WAIT)
    s.bind((src, 0))
    s.connect((host, port))
    return s


def read_all(s):
    """Everything the server sends until it closes (bounded)."""
    data = b""
    for _ in range(100):
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk
    raise AssertionError("server never closed: %r" % data)


def greeting(port, src, host="127.0.0.1"):
    """The first reply line a client at src gets."""
    with connect(port, src, host) as s:
        f = s.makefile("rb")
        line = f.readline().decode()
        s.sendall(b"QUIT\r\n")
        return line


def logged(mr, pattern):
    assert mh.wait_until(lambda: re.search(pattern, mr.log_text(), re.M),
                         30), "no log line /%s/:\n%s" % (pattern,
                                                         mr.log_text())


def test_deny_domain_refuses_confirmed_name(start_mailroot, dns):
    mr = start(start_mailroot, dns.port,
               '    connection deny domain "good.example"')
    with connect(mr.port, "127.0.0.4") as s:
        line = s.makefile("rb").readline()
        assert re.fullmatch(rb"554 5\.7\.1 \S+ Access denied\r\n", line), \
            line
        # closed: what the client says now is never answered
        try:
            s.sendall(b"EHLO good.example\r\n")
            rest = read_all(s)
        except (ConnectionResetError, BrokenPipeError):
            rest = b""
        assert rest == b"", rest
    logged(mr, r"\[127\.0\.0\.4\]: client name good\.example \(confirmed\)")
    logged(mr, r"\[127\.0\.0\.4\]: connection denied by rule")
    # the same PTR name, not confirmed by its A record: no match
    assert greeting(mr.port, "127.0.0.5").startswith("220 ")
    logged(mr, r"\[127\.0\.0\.5\]: no confirmed client name: PTR says "
           r"good\.example")
    # no PTR at all: no match
    assert greeting(mr.port, "127.0.0.8").startswith("220 ")


def test_allow_domain_with_default_deny(start_mailroot, dns):
    mr = start(start_mailroot, dns.port,
               '    connection allow domain ".corp.example"\n'
               '    connection default deny')
    assert greeting(mr.port, "127.0.0.6").startswith("220 ")
    # ".corp.example" is below corp.example, not corp.example itself
    assert greeting(mr.port, "127.0.0.7").startswith("554 5.7.1 ")
    assert greeting(mr.port, "127.0.0.4").startswith("554 5.7.1 ")
    assert greeting(mr.port, "127.0.0.8").startswith("554 5.7.1 ")


def test_exact_and_suffix_rules_first_match_wins(start_mailroot, dns):
    mr = start(start_mailroot, dns.port,
               '    connection deny domain "host.corp.example"\n'
               '    connection allow domain ".corp.example"\n'
               '    connection allow domain "corp.example"\n'
               '    connection default deny')
    assert greeting(mr.port, "127.0.0.6").startswith("554 5.7.1 ")
    assert greeting(mr.port, "127.0.0.7").startswith("220 ")


def rcpt_reply(port, src, rcpt):
    with smtplib.SMTP("127.0.0.1", port, timeout=WAIT,
                      source_address=(src, 0)) as c:
        c.ehlo("client.test")
        assert c.mail("a@client.test")[0] == 250
        code, text = c.rcpt(rcpt)
        if code == 250:
            assert c.data(b"Subject: relayed\r\n\r\nhello\r\n")[0] == 250
        return code, text.decode()


def test_relay_allow_domain(start_mailroot, dns, sink):
    mr = start(start_mailroot, dns.port,
               '    relay allow domain "good.example"', sink=sink,
               relay_allow=())
    assert rcpt_reply(mr.port, "127.0.0.4", "x@remote.example")[0] == 250
    got = sink.wait_for(1)
    assert got[0].rcpt_tos == ["x@remote.example"]
    # the unconfirmed claim to the same name may not relay
    code, text = rcpt_reply(mr.port, "127.0.0.5", "y@remote.example")
    assert code == 550 and text.startswith("5.7.1"), (code, text)
    code, _ = rcpt_reply(mr.port, "127.0.0.1", "z@remote.example")
    assert code == 550


def test_ipv6_client(start_mailroot, dns):
    port6 = mh.free_port()
    mr = start(start_mailroot, dns.port,
               '    listen [::1]:%d\n'
               '    connection deny domain "six.example"' % port6)
    assert mh.wait_until(lambda: mh.port_accepts(port6, "::1"), 30)
    assert greeting(port6, "::1", "::1").startswith("554 5.7.1 ")
    logged(mr, r"\[::1\]: client name six\.example \(confirmed\)")
    assert greeting(mr.port, "127.0.0.1").startswith("220 ")


def test_resolver_down_rules_do_not_match(start_mailroot, workdir):
    """A DNS server that never answers: the client waits a bounded time,
    the deny rule does not match, the log says why, and sessions on a
    server without domain rules are greeted at once meanwhile."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))     # receives queries, answers none
    plain_port = mh.free_port()
    other = workdir / "plain"
    other.mkdir()
    mh.make_traversable(other)
    try:
        mr = start_mailroot(
            global_extra='resolver 127.0.0.1@%d\n'
            'server "plain" {\n    listen 127.0.0.1:%d\n'
            '    mailroot "%s"\n}' % (hole.getsockname()[1], plain_port,
                                      other),
            server_extra='    connection deny domain "good.example"')
        slow = connect(mr.port, "127.0.0.4")
        with slow:
            # the other server's client is served while slow waits
            assert greeting(plain_port, "127.0.0.4").startswith("220 ")
            slow.setblocking(False)
            try:
                early = slow.recv(100)
            except BlockingIOError:
                early = None
            slow.setblocking(True)
            slow.settimeout(WAIT)
            line = early or slow.makefile("rb").readline()
            assert line.startswith(b"220 "), line
        logged(mr, r"\[127\.0\.0\.4\]: reverse DNS lookup failed: no "
               r"domain rule matches this client")
    finally:
        hole.close()


def test_received_header(start_mailroot, dns):
    mr = start(start_mailroot, dns.port, "    reverse-dns-lookup yes")
    cases = [("127.0.0.4", "good.example",
              "from good.example ([127.0.0.4])"),
             ("127.0.0.4", "GOOD.example.",
              "from GOOD.example. ([127.0.0.4])"),
             ("127.0.0.9", "liar.test",
              "from liar.test (other.example [127.0.0.9] unverified)"),
             ("127.0.0.5", "good.example",
              "from good.example ([127.0.0.5] unverified)"),
             ("127.0.0.8", "nobody.test",
              "from nobody.test ([127.0.0.8] RDNS failed)")]
    for i, (src, helo, _want) in enumerate(cases):
        with smtplib.SMTP("127.0.0.1", mr.port, timeout=WAIT,
                          source_address=(src, 0)) as c:
            c.ehlo(helo)
            c.sendmail("a@client.test", ["u@local.test"],
                       b"Subject: case %d\r\n\r\nhello\r\n" % i)
    emls = mr.wait_drop(len(cases))
    got = {}
    for f in emls:
        data = (mr.dir("Drop") / f).read_bytes()
        subject = re.search(rb"\r\nSubject: case (\d+)\r\n", data)
        start_at = data.find(b"Received:")
        received = data[start_at:data.find(b"\r\n", start_at)].decode()
        got[int(subject.group(1))] = received
    for i, (_src, _helo, want) in enumerate(cases):
        assert got[i] == "Received: " + want, (i, got[i])


def test_burst_of_clients(start_mailroot, dns):
    """Thirty clients at once, each from its own address: every one gets
    its own verdict, none waits for the others."""
    mr = start(start_mailroot, dns.port,
               '    connection deny domain ".example"')
    results = {}

    def client(ip):
        try:
            results[ip] = greeting(mr.port, ip)
        except OSError as e:
            results[ip] = "error %s" % e

    threads = [threading.Thread(target=client, args=(ip,))
               for ip, _ in BURST]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert all(not t.is_alive() for t in threads)
    for ip, bad in BURST:
        want = "554 5.7.1 " if bad else "220 "
        assert results[ip].startswith(want), (ip, results[ip])
    # the cache: a second round answers without asking again
    for ip, bad in BURST[:4]:
        assert greeting(mr.port, ip).startswith(
            "554 5.7.1 " if bad else "220 ")


# -- hostile frames: a malformed lookup or answer drops its sender ---------

from test_boundaries import all_children, channel_to, pstr, relay_one  # noqa: E402,E501
from test_peer_bad import msg_type  # noqa: E402


def u32(v):
    return v.to_bytes(4, "little")


def u64(v):
    return v.to_bytes(8, "little")


HOSTILE = {
    # a name that would end the Received field's clause and add a header
    "answer-injection": ("deliverd", "queued", "MR_R_PTR_ANSWER",
                         u64(1) + u32(0) + u32(60) +
                         pstr(b"x\r\nX-Injected: 1")),
    "answer-status": ("queued", "smtpd", "MR_R_PTR_ANSWER",
                      u64(1) + u32(9) + u32(60) + pstr(b"")),
    "answer-name-with-failure": ("queued", "smtpd", "MR_R_PTR_ANSWER",
                                 u64(1) + u32(3) + u32(0) +
                                 pstr(b"good.example")),
    "request-not-an-address": ("smtpd", "queued", "MR_R_PTR",
                               u64(1) + pstr(b"../etc/passwd")),
    "request-trailing-bytes": ("queued", "deliverd", "MR_R_PTR",
                               u64(1) + pstr(b"127.0.0.1") + u32(0)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_malformed_frame_drops_sender(start_mailroot, sink, case):
    """The receiver lives on, the sender is reported and restarted, and
    mail still flows."""
    sender, receiver, mtype, payload = HOSTILE[case]
    d = start_mailroot(sink=sink)
    before = all_children(d.pid)
    chan = channel_to(before[sender], before[receiver])
    try:
        chan.send(u32(msg_type(mtype)) + u32(len(payload)) + payload)
    finally:
        chan.close()

    def restarted():
        now = mh.children(d.pid)
        return sender in now and now[sender] != before[sender]

    assert mh.wait_until(restarted, 30), d.log_text()
    log = d.log_text()
    assert "%s reports that %s misbehaved" % (receiver, sender) in log, log
    for end in ("killed", "exited"):
        assert "%s (pid %d) %s" % (receiver, before[receiver], end) \
            not in log, log
    assert "killed by signal 11" not in log, log
    assert mh.children(d.pid).get(receiver) == before[receiver], log
    assert mh.wait_until(lambda: d.log_text().count("connected to") >= 3,
                         30), d.log_text()
    relay_one(d, sink, "after %s" % case)
