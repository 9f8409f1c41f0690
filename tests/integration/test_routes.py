"""
Smart hosts and routes against a real DNS server (dns_server.py) and
receivers on several loopback addresses: several smart hosts tried in
order, smart-host-first-direct both ways, a route to `[IP]:port` (no DNS
at all) and to a host name with a port.
"""

import pytest

import mailroot_harness as mh
from dns_server import DNSServer
from test_mx import Busy, message, SENDER


@pytest.fixture
def net(workdir):
    port = mh.free_port()
    dns = DNSServer(workdir)
    peers = []
    yield dns, port, peers
    for p in peers:
        p.stop()
    dns.stop()


def sink_at(peers, host, port):
    s = mh.Sink(host=host, port=port).start()
    peers.append(s)
    return s


def start(start_mailroot, dns, port, delivery="", extra=""):
    dns.start()
    return start_mailroot(
        global_extra="resolver %s" % dns.resolver,
        server_extra="    delivery { outbound { port %d }\n%s\n    }\n%s"
                     % (port, delivery, extra))


def test_smart_hosts_in_order(start_mailroot, net):
    dns, port, peers = net
    # first: nothing listens; second: 421 at greeting; third takes it
    busy = Busy("127.0.0.3", port)
    busy.start()
    peers.append(busy)
    third = sink_at(peers, "127.0.0.4", port)
    dns.a("third.relay.test", "127.0.0.4")
    mr = start(start_mailroot, dns, port,
               '        smart-host "[127.0.0.2]" "[127.0.0.3]:%d" '
               '"third.relay.test"' % port)
    mh.send(mr.port, SENDER, ["u@anywhere.test"], message("smart hosts"))
    assert [m.rcpt_tos for m in third.wait_for(1)] == [["u@anywhere.test"]]
    mr.wait_queue_empty()
    assert busy.connections >= 1, "the second smart host was not tried"
    log = mr.log_text()
    assert "relay=third.relay.test[127.0.0.4]:%d" % port in log


def test_first_smart_host_used_when_up(start_mailroot, net):
    dns, port, peers = net
    first = sink_at(peers, "127.0.0.5", port)
    second = sink_at(peers, "127.0.0.6", port)
    mr = start(start_mailroot, dns, port,
               '        smart-host "[127.0.0.5]" "[127.0.0.6]"')
    mh.send(mr.port, SENDER, ["u@anywhere.test"], message("first"))
    assert len(first.wait_for(1)) == 1
    mr.wait_queue_empty()
    assert second.messages == []


def test_all_smart_hosts_down_stays_queued(start_mailroot, net):
    dns, port, _ = net
    mr = start(start_mailroot, dns, port,
               '        smart-host "[127.0.0.2]" "[127.0.0.7]"')
    mh.send(mr.port, SENDER, ["u@anywhere.test"], message("down"))

    def deferred_last():
        return any("to=<u@anywhere.test>" in line and "status=deferred"
                   in line and "127.0.0.7" in line
                   for line in mr.log_text().splitlines())
    assert mh.wait_until(deferred_last, 60.0, 0.1), mr.log_text()
    assert mr.queue_files() and mr.drop_files() == []


def test_first_direct_goes_direct(start_mailroot, net):
    dns, port, peers = net
    direct = sink_at(peers, "127.0.0.8", port)
    smart = sink_at(peers, "127.0.0.9", port)
    dns.mx("direct.test", 10, "mx.direct.test").a("mx.direct.test",
                                                  "127.0.0.8")
    mr = start(start_mailroot, dns, port,
               '        smart-host "[127.0.0.9]"\n'
               '        smart-host-first-direct yes')
    mh.send(mr.port, SENDER, ["u@direct.test"], message("direct"))
    assert len(direct.wait_for(1)) == 1
    mr.wait_queue_empty()
    assert smart.messages == []


def test_first_direct_falls_back_to_smart_host(start_mailroot, net):
    dns, port, peers = net
    smart = sink_at(peers, "127.0.0.9", port)
    # the MX is down, and another domain cannot be resolved (SERVFAIL)
    dns.mx("downmx.test", 10, "mx.downmx.test").a("mx.downmx.test",
                                                  "127.0.0.10")
    dns.servfail("broken.test")
    mr = start(start_mailroot, dns, port,
               '        smart-host "[127.0.0.9]"\n'
               '        smart-host-first-direct yes')
    mh.send(mr.port, SENDER, ["u@downmx.test"], message("fallback"))
    mh.send(mr.port, SENDER, ["v@broken.test"], message("fallback 2"))
    got = smart.wait_for(2)
    assert sorted(r for m in got for r in m.rcpt_tos) == \
        ["u@downmx.test", "v@broken.test"]
    mr.wait_queue_empty()


def test_without_first_direct_smart_host_only(start_mailroot, net):
    dns, port, peers = net
    direct = sink_at(peers, "127.0.0.8", port)
    smart = sink_at(peers, "127.0.0.9", port)
    dns.mx("direct.test", 10, "mx.direct.test").a("mx.direct.test",
                                                  "127.0.0.8")
    mr = start(start_mailroot, dns, port,
               '        smart-host "[127.0.0.9]"\n'
               '        smart-host-first-direct no')
    mh.send(mr.port, SENDER, ["u@direct.test"], message("smart"))
    assert len(smart.wait_for(1)) == 1
    mr.wait_queue_empty()
    assert direct.messages == []


def test_route_literal_and_by_name_with_port(start_mailroot, net):
    dns, port, peers = net
    other = mh.free_port()
    lit = sink_at(peers, "127.0.0.11", other)
    named = sink_at(peers, "127.0.0.12", other)
    mx = sink_at(peers, "127.0.0.13", port)
    # lit.test has no DNS at all: the route needs none
    dns.nxdomain("lit.test")
    dns.mx("named.test", 10, "mx.named.test").a("mx.named.test",
                                                "127.0.0.13")
    dns.a("relay.named.test", "127.0.0.12")
    mr = start(start_mailroot, dns, port, "",
               '    domain "lit.test" remote { route "[127.0.0.11]:%d" }\n'
               '    domain "named.test" remote { route "relay.named.test:%d" }'
               % (other, other))
    mh.send(mr.port, SENDER, ["u@lit.test"], message("literal"))
    mh.send(mr.port, SENDER, ["u@named.test"], message("named"))
    assert [m.rcpt_tos for m in lit.wait_for(1)] == [["u@lit.test"]]
    assert [m.rcpt_tos for m in named.wait_for(1)] == [["u@named.test"]]
    mr.wait_queue_empty()
    assert mx.messages == []
