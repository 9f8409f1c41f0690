"""
Per-client connection limits (smtpd/client_limit.c; limits
client-connections and client-connection-rate in mailroot.conf(5)):
simultaneous connections and connections per minute from one client
address, per virtual server, off by default; the connection over a limit
gets 421 4.7.0 and is closed, the others go on.

Clients connect from 127.0.0.2 and 127.0.0.3 so that the limits can tell
them apart (the harness's own readiness probe comes from 127.0.0.1).
Through a PROXY header the address counted is the client's: see
test_proxy_protocol.py.
"""

import pytest

import mailroot_harness as mh
from test_smtp_session import Client, logged

A = "127.0.0.2"
B = "127.0.0.3"


def greeted(mr, source, port=None):
    """A client past a 220 greeting, or None if it got a 421 (asserted
    to be 4.7.0 and followed by the close)."""
    c = Client(port or mr.port, source)
    code, text = c.reply()
    if code == 220:
        return c
    assert code == 421 and text[-1].startswith("4.7.0 "), (code, text)
    assert c.closed()
    c.close()
    return None


def test_off_by_default(mailroot):
    clients = [greeted(mailroot, A) for _ in range(12)]
    try:
        assert all(clients), "a client was refused with no limit set"
    finally:
        for c in clients:
            if c:
                c.close()


def test_client_connections(start_mailroot):
    mr = start_mailroot(server_extra="    limits { client-connections 2 }")
    c1, c2 = greeted(mr, A), greeted(mr, A)
    assert c1 and c2
    with c1, c2:
        assert greeted(mr, A) is None
        # the others go on, and another address is not counted with A
        c1.expect(250, "2.0.0", "NOOP")
        c2.expect(250, "2.0.0", "NOOP")
        other = greeted(mr, B)
        assert other
        other.close()
        c1.expect(221, "2.0.0", "QUIT")
        assert c1.closed()

        # once smtpd has counted c1 out, A gets a place again
        def again():
            c = greeted(mr, A)
            if c:
                c.close()
            return c is not None
        assert mh.wait_until(again, 30, 0.2)
    logged(mr, r"session \d+ \[127\.0\.0\.2\]: refused: 421 4\.7\.0 .*"
           r"Too many connections from your address")


def test_client_connection_rate(start_mailroot):
    mr = start_mailroot(
        server_extra="    limits { client-connection-rate 3 }")
    for _ in range(3):
        c = greeted(mr, A)
        assert c, "refused within the rate"
        with c:
            c.expect(221, "2.0.0", "QUIT")
            assert c.closed()
    assert greeted(mr, A) is None
    # refused ones count too
    assert greeted(mr, A) is None
    other = greeted(mr, B)
    assert other
    other.close()
    logged(mr, r"session \d+ \[127\.0\.0\.2\]: refused: 421 4\.7\.0 .*"
           r"Too many connections per minute from your address")


def test_client_limits_are_per_server(start_mailroot, workdir):
    """Two servers, each with client-connections 1: A holds one session
    on each, and is refused a second on either."""
    port2 = mh.free_port()
    (workdir / "two").mkdir(mode=0o755)
    mh.make_traversable(workdir / "two")
    mr = start_mailroot(
        server_extra="    limits { client-connections 1 }",
        global_extra=('server "two" {\n'
                      "    listen 127.0.0.1:%d\n"
                      '    mailroot "%s"\n'
                      '    domain "two.test" local\n'
                      "    limits { client-connections 1 }\n"
                      "}") % (port2, workdir / "two"))
    assert mh.wait_until(lambda: mh.port_accepts(port2), 30)
    one, two = greeted(mr, A), greeted(mr, A, port2)
    assert one and two
    with one, two:
        assert greeted(mr, A) is None
        assert greeted(mr, A, port2) is None
        one.expect(250, "2.0.0", "NOOP")
        two.expect(250, "2.0.0", "NOOP")


@pytest.mark.parametrize("limit", ["client-connections",
                                   "client-connection-rate"])
def test_zero_is_off(start_mailroot, limit):
    mr = start_mailroot(server_extra="    limits { %s 0 }" % limit)
    clients = [greeted(mr, A) for _ in range(5)]
    try:
        assert all(clients)
    finally:
        for c in clients:
            if c:
                c.close()
