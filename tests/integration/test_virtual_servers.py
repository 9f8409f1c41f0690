"""
End to end through a real mailrootd with more than one virtual server and
the domain kinds of mailroot.conf(5):

- two servers on 127.0.0.1 and 127.0.0.2 with different limits, relay
  lists and smart hosts: each is enforced on its own listener only;
- an alias domain (alias-of) and route domains (route, relay yes) through
  smtpd and queued;
- a listener on ::1 (skipped when the host has no IPv6 loopback);
- ndr-copy-to: a copy of a non-delivery report reaches that address;
- masquerade-domain: the sender of non-delivery reports (the rewriting of
  outgoing envelope senders: test_masquerade.py).

Clients pick their source address (127.0.0.1 or 127.0.0.3) so that the
relay lists can tell them apart.
"""

import smtplib
import socket

import pytest

import mailroot_harness as mh

CLIENT_A = "127.0.0.1"      # may relay through "one" only
CLIENT_B = "127.0.0.3"      # may relay through "two" only


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def start_conf(request, workdir):
    """start_conf(make_text) -> a started Mailroot whose configuration is
    make_text(daemon); daemon.port is the listener the start waits for."""
    daemons = []
    request.node.mailroot_daemons = daemons

    def start(make_text, name="vs"):
        d = mh.Mailroot(workdir, name=name)
        d.conf.write_text(make_text(d))
        daemons.append(d)
        return d.start()

    yield start
    problems = []
    for d in daemons:
        problems += ["%s: %s" % (d.name, p) for p in d.stop()]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def sink2():
    s = mh.Sink().start()
    yield s
    s.stop()


def session(host, port, source, ehlo=True):
    s = smtplib.SMTP(host, port, timeout=30,
                     source_address=(source, 0) if source else None)
    if ehlo:
        s.ehlo("client.test")
    return s


def msg(subject, size=0):
    return mh.crlf("From: a@client.test\nSubject: %s\n\n%s\n"
                   % (subject, "x" * size))


def rcpt_code(s, addr):
    s.rset()
    assert s.mail("a@client.test")[0] == 250
    return s.rcpt(addr)


def greeting(host, port, source):
    """The first reply line a new connection gets."""
    with socket.create_connection((host, port), timeout=30,
                                  source_address=(source, 0)) as c:
        return c.makefile("rb").readline()


def drop_in(d, server):
    return sorted((d.workdir / server / "Drop").glob("*.eml"))


def wait_drop_in(d, server, count, timeout=60):
    got = mh.wait_until(lambda: len(drop_in(d, server)) >= count and
                        drop_in(d, server), timeout, 0.1)
    assert got, "expected %d message(s) in %s/Drop: %s" % (
        count, server, drop_in(d, server))
    return got


def wait_queue_empty(d, server, timeout=60):
    q = d.workdir / server / "Queue"
    assert mh.wait_until(lambda: not mh.files_under(q), timeout, 0.1), \
        mh.files_under(q)


# ---------------------------------------------------------------------------
# Two virtual servers.

TWO = """\
hostname "mx.test.example"
chroot "{chroot}"
server "one" {{
    listen 127.0.0.1:{p1}
    mailroot "{w}/one"
    fqdn "one.test"
    relay allow 127.0.0.1
    limits {{
        message-size 10K
        recipients-per-message 2
    }}
    delivery {{ smart-host "[127.0.0.1]:{s1}" }}
    domain "one.test" local
}}
server "two" {{
    listen 127.0.0.2:{p2}
    mailroot "{w}/two"
    fqdn "two.test"
    relay allow 127.0.0.3
    limits {{
        connections 3
        recipients-per-message 5
    }}
    delivery {{ smart-host "[127.0.0.1]:{s2}" }}
    domain "two.test" local
}}
"""


@pytest.fixture
def two(start_conf, sink, sink2):
    ports = {}

    def text(d):
        ports["p2"] = mh.free_port()
        return TWO.format(chroot=d.chroot, w=d.workdir, p1=d.port,
                          p2=ports["p2"], s1=sink.port, s2=sink2.port)

    d = start_conf(text)
    d.port2 = ports["p2"]
    assert mh.wait_until(lambda: mh.port_accepts(d.port2, "127.0.0.2"), 30)
    return d


def test_relay_lists_are_per_server(two, sink, sink2):
    # A relays through one, not through two; B the other way round
    with session("127.0.0.1", two.port, CLIENT_A) as s:
        assert rcpt_code(s, "r1@remote.test")[0] == 250
    with session("127.0.0.2", two.port2, CLIENT_A) as s:
        code, text = rcpt_code(s, "r1@remote.test")
        assert code == 550 and b"5.7.1" in text, (code, text)
    with session("127.0.0.2", two.port2, CLIENT_B) as s:
        assert rcpt_code(s, "r2@remote.test")[0] == 250
    with session("127.0.0.1", two.port, CLIENT_B) as s:
        code, text = rcpt_code(s, "r2@remote.test")
        assert code == 550 and b"5.7.1" in text, (code, text)
    # each server takes mail for its own local domain only
    with session("127.0.0.2", two.port2, CLIENT_A) as s:
        assert rcpt_code(s, "u@two.test")[0] == 250
        assert rcpt_code(s, "u@one.test")[0] == 550
    # and each relays to its own smart host
    with session("127.0.0.1", two.port, CLIENT_A) as s:
        s.sendmail("a@client.test", ["via1@remote.test"], msg("via one"))
    with session("127.0.0.2", two.port2, CLIENT_B) as s:
        s.sendmail("a@client.test", ["via2@remote.test"], msg("via two"))
    assert [m.rcpt_tos for m in sink.wait_for(1, 60)] == \
        [["via1@remote.test"]]
    assert [m.rcpt_tos for m in sink2.wait_for(1, 60)] == \
        [["via2@remote.test"]]
    wait_queue_empty(two, "one")
    wait_queue_empty(two, "two")
    assert len(sink.messages) == 1 and len(sink2.messages) == 1


def test_limits_are_per_server(two):
    with session("127.0.0.1", two.port, CLIENT_A) as s:
        assert s.esmtp_features["size"] == "10240"
        s.mail("a@client.test")
        assert s.rcpt("u1@one.test")[0] == 250
        assert s.rcpt("u2@one.test")[0] == 250
        code, text = s.rcpt("u3@one.test")
        assert code == 452 and b"4.5.3" in text, (code, text)
        s.rset()
        code, text = s.mail("a@client.test", ["SIZE=20000"])
        assert code == 552, (code, text)
        # no connection limit here: two more clients at once are greeted
        assert greeting("127.0.0.1", two.port, CLIENT_A).startswith(b"220")
        assert greeting("127.0.0.1", two.port, CLIENT_A).startswith(b"220")
    # the other server: its own limits, the defaults for the rest (its
    # connection limit is 3, not 2, so that in test_relay_lists a session
    # just ended that smtpd has not yet counted out cannot turn the next
    # one away)
    with session("127.0.0.2", two.port2, CLIENT_B) as s, \
            session("127.0.0.2", two.port2, CLIENT_B) as s2, \
            session("127.0.0.2", two.port2, CLIENT_B) as s3:
        assert s.esmtp_features["size"] == str(2048 * 1024)
        assert s2.noop()[0] == 250 and s3.noop()[0] == 250
        line = greeting("127.0.0.2", two.port2, CLIENT_B)
        assert line.startswith(b"421 4.7.0"), line
        s.mail("a@client.test", ["SIZE=20000"])
        for i in range(5):
            assert s.rcpt("u%d@two.test" % i)[0] == 250
        assert s.rcpt("u5@two.test")[0] == 452
        assert s.data(msg("big for one, small for two", 20000))[0] == 250
    (path,) = wait_drop_in(two, "two", 1)
    assert b"big for one, small for two" in path.read_bytes()
    assert drop_in(two, "one") == []


# ---------------------------------------------------------------------------
# Alias and route domains.

ROUTES = """\
    domain "alias.test" alias-of "local.test"
    domain "routed.test" remote {{ route "[127.0.0.1]:{r}" }}
    domain "gateway.test" remote {{
        relay yes
        route "[127.0.0.1]:{r}"
    }}"""


def test_alias_and_route_domains(start_mailroot, sink, sink2):
    d = start_mailroot(sink=sink, server_extra=ROUTES.format(r=sink2.port))
    with session("127.0.0.1", d.port, CLIENT_B) as s:
        # B may not relay, but an alias of a local domain is local
        assert rcpt_code(s, "u@alias.test")[0] == 250
        assert s.data(msg("to the alias"))[0] == 250
        # a routed domain is still relay ...
        assert rcpt_code(s, "x@routed.test")[0] == 550
        assert rcpt_code(s, "x@elsewhere.test")[0] == 550
        # ... unless it is marked "relay yes"
        assert rcpt_code(s, "y@gateway.test")[0] == 250
        assert s.data(msg("to the gateway"))[0] == 250
    with session("127.0.0.1", d.port, CLIENT_A) as s:
        s.sendmail("a@client.test", ["x@routed.test"], msg("routed"))
    (path,) = d.wait_drop(1, 60)
    head, _, body = path.read_bytes().partition(b"\r\n\r\n")
    assert b"x-receiver: u@alias.test" in head, head
    assert b"to the alias" in path.read_bytes()
    got = sink2.wait_for(2, 60)
    assert sorted(m.rcpt_tos[0] for m in got) == ["x@routed.test",
                                                  "y@gateway.test"], got
    d.wait_queue_empty(60)
    assert sink.messages == [], "the smart host got routed mail"


# ---------------------------------------------------------------------------
# IPv6.

IPV6 = """\
hostname "mx.test.example"
chroot "{chroot}"
server "v6" {{
    listen 127.0.0.1:{p}
    listen [::1]:{p6}
    mailroot "{w}/v6"
    relay allow ::1
    delivery {{ smart-host "[127.0.0.1]:{s}" }}
    domain "local.test" local
}}
"""


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_listener_and_relay_rule(start_conf, sink):
    p6 = {}

    def text(d):
        p6["p"] = mh.free_port()
        return IPV6.format(chroot=d.chroot, w=d.workdir, p=d.port,
                           p6=p6["p"], s=sink.port)

    d = start_conf(text)
    # the rule names ::1: an IPv4 client may not relay, an IPv6 one may
    with session("127.0.0.1", d.port, CLIENT_A) as s:
        assert rcpt_code(s, "r@remote.test")[0] == 550
    with session("::1", p6["p"], "::1") as s:
        assert s.sock.family == socket.AF_INET6
        s.sendmail("a@client.test", ["r@remote.test"], msg("over IPv6"))
        s.sendmail("a@client.test", ["u@local.test"], msg("local over v6"))
    (got,) = sink.wait_for(1, 60)
    assert got.rcpt_tos == ["r@remote.test"]
    received, rest = mh.split_received(got.data)
    assert b"::1" in received, received
    assert b"over IPv6" in rest
    (path,) = wait_drop_in(d, "v6", 1)
    assert b"local over v6" in path.read_bytes()
    wait_queue_empty(d, "v6")


# ---------------------------------------------------------------------------
# Non-delivery reports: ndr-copy-to and masquerade-domain.

def test_ndr_copy_and_masquerade_domain(start_mailroot, sink):
    d = start_mailroot(sink=sink, server_extra=(
        '    ndr-copy-to "ndr-admin@remote.test"\n'
        '    masquerade-domain "masq.test"'))
    sink.reject_rcpt("gone@remote.test", "550 5.1.1 No such user (sink)")
    mh.send(d.port, "writer@local.test", ["gone@remote.test"],
            msg("will bounce"))
    # the report to the sender (a local domain: Drop) ...
    (path,) = d.wait_drop(1, 60)
    ndr = path.read_bytes()
    assert b"x-receiver: writer@local.test" in ndr
    assert b"Final-Recipient: rfc822; gone@remote.test" in ndr
    assert b"From: Mail Delivery System <postmaster@masq.test>" in ndr, ndr
    # ... and its copy, to the configured address by the smart host
    (copy,) = sink.wait_for(1, 60)
    assert copy.rcpt_tos == ["ndr-admin@remote.test"], copy
    assert copy.mail_from in ("", "<>"), copy.mail_from
    assert b"Final-Recipient: rfc822; gone@remote.test" in copy.data
    assert b"From: Mail Delivery System <postmaster@masq.test>" in copy.data
    d.wait_queue_empty(60)
