"""
PROXY protocol listeners (smtpd/proxy.c, common/proxy_hdr.c) behind a real
HAProxy, and raw headers for what HAProxy never sends.

A private haproxy (Debian package haproxy) runs from the test's temp
directory with its own configuration: two frontends on loopback, one
forwarding to mailroot's proxy-protocol listener with send-proxy (version
1), one with send-proxy-v2.  Clients connect to haproxy from 127.0.0.2 or
127.0.0.3; mailroot sees every connection come from haproxy's 127.0.0.1
and must decide on the address in the header: relay is allowed for
127.0.0.3 only.

Every wait is bounded (socket timeouts, wait_until, the per-test alarm).
"""

import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess

import pytest

import mailroot_harness as mh
from test_smtp_session import Client, logged

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
RELAYER = "127.0.0.3"           # in relay allow
STRANGER = "127.0.0.2"          # not
TIMEOUT = 30.0

HAPROXY_CONF = """\
global
    maxconn 200
defaults
    mode tcp
    timeout connect 10s
    timeout client 120s
    timeout server 120s
listen v1
    bind 127.0.0.1:{v1}
    server mailroot 127.0.0.1:{backend} send-proxy
listen v2
    bind 127.0.0.1:{v2}
    server mailroot 127.0.0.1:{backend} send-proxy-v2
"""


class HAProxy:
    """A private haproxy in the foreground, stopped at teardown."""

    def __init__(self, workdir, backend):
        assert shutil.which(HAPROXY), \
            "%s not found: contrib/setup installs haproxy" % HAPROXY
        self.ports = {"v1": mh.free_port(), "v2": mh.free_port()}
        self.conf = workdir / "haproxy.cfg"
        self.logfile = workdir / "haproxy.log"
        self.conf.write_text(HAPROXY_CONF.format(backend=backend,
                                                 **self.ports))
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.conf)],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(self.conf)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)

    def listening(self):
        """True once both frontends are bound (read from /proc, so that
        no probe connection reaches mailroot)."""
        want = {"%04X" % p for p in self.ports.values()}
        with open("/proc/net/tcp") as f:
            bound = {line.split()[1].split(":")[1] for line in f
                     if line.split()[3] == "0A"}
        return self.proc.poll() is None and want <= bound

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def proxied(start_mailroot, sink, workdir):
    """mailrootd with a proxy-protocol listener behind haproxy; relay
    allowed for 127.0.0.3 only.  Returns (mailroot, haproxy, the proxy
    listener's port)."""
    pport = mh.free_port()
    mr = start_mailroot(sink=sink, relay_allow=(RELAYER,), server_extra=(
        "    listen 127.0.0.1:%d proxy-protocol" % pport))
    assert mh.wait_until(lambda: mh.port_accepts(pport), 30)
    hap = HAProxy(workdir, pport)
    try:
        assert mh.wait_until(hap.listening, 30, 0.1), \
            hap.logfile.read_text()
        yield mr, hap, pport
    finally:
        hap.stop()


def via(hap, version, source):
    """An smtplib client through haproxy's frontend for version, from
    source."""
    return smtplib.SMTP("127.0.0.1", hap.ports[version], timeout=TIMEOUT,
                        source_address=(source, 0))


def message(subject):
    return mh.crlf("From: <a@client.test>\nTo: <far@remote.test>\n"
                   "Subject: %s\n\nbody\n" % subject)


# ---------------------------------------------------------------------------
# Through haproxy: the address in the header decides.

@pytest.mark.parametrize("version", ["v1", "v2"])
def test_relay_decided_on_the_address_in_the_header(proxied, sink, version):
    mr, hap, _ = proxied
    with via(hap, version, RELAYER) as s:
        code, text = s.ehlo("client.test")
        assert code == 250 and b"[%s]" % RELAYER.encode() in text, text
        s.sendmail("a@client.test", ["far@remote.test"],
                   message("relayed " + version))
    (got,) = sink.wait_for(1, 60)
    assert got.rcpt_tos == ["far@remote.test"]
    received = mh.split_received(got.data)[0]
    assert b"([%s])" % RELAYER.encode() in received, received
    with via(hap, version, STRANGER) as s:
        s.ehlo("client.test")
        s.mail("a@client.test")
        code, text = s.rcpt("far@remote.test")
        assert code == 550 and b"5.7.1" in text, (code, text)
        # served all the same: local mail is taken from anyone
        assert s.rcpt("user@local.test")[0] == 250
    logged(mr, r"session \d+ \[%s\]: relay denied: from=<a@client\.test> "
           r"to=<far@remote\.test>" % STRANGER.replace(".", r"\."))
    logged(mr, r"proxy \[127\.0\.0\.1\] on 127\.0\.0\.1:\d+: PROXY v%s: "
           r"client \[%s\]" % (version[1], STRANGER.replace(".", r"\.")))
    mr.wait_queue_empty()
    assert len(sink.messages) == 1


def test_connection_rules_see_the_client(start_mailroot, sink, workdir):
    pport = mh.free_port()
    mr = start_mailroot(sink=sink, server_extra=(
        "    listen 127.0.0.1:%d proxy-protocol\n"
        "    connection deny %s" % (pport, STRANGER)))
    hap = HAProxy(workdir, pport)
    try:
        assert mh.wait_until(hap.listening, 30, 0.1)
        for version in ("v1", "v2"):
            with pytest.raises(smtplib.SMTPConnectError) as e:
                via(hap, version, STRANGER)
            assert e.value.smtp_code == 554, e.value
            with via(hap, version, RELAYER) as s:
                assert s.noop()[0] == 250
    finally:
        hap.stop()
    logged(mr, r"session \d+ \[127\.0\.0\.2\]: connection denied by rule")


def test_client_limit_counts_the_client_not_the_balancer(
        start_mailroot, sink, workdir):
    pport = mh.free_port()
    mr = start_mailroot(sink=sink, server_extra=(
        "    listen 127.0.0.1:%d proxy-protocol\n"
        "    limits { client-connections 1 }" % pport))
    hap = HAProxy(workdir, pport)
    try:
        assert mh.wait_until(hap.listening, 30, 0.1)
        with via(hap, "v2", STRANGER) as first:
            assert first.noop()[0] == 250
            with pytest.raises(smtplib.SMTPConnectError) as e:
                via(hap, "v1", STRANGER)
            assert e.value.smtp_code == 421, e.value
            assert b"4.7.0" in e.value.smtp_error
            # another client through the same balancer is served
            with via(hap, "v1", RELAYER) as other:
                assert other.noop()[0] == 250
    finally:
        hap.stop()
    logged(mr, r"session \d+ \[127\.0\.0\.2\]: refused: 421 4\.7\.0 .*"
           r"Too many connections from your address")


# ---------------------------------------------------------------------------
# Raw headers: what a broken or hostile peer sends.

PROXY_LOG = r"proxy \[127\.0\.0\.1\] on 127\.0\.0\.1:%d: "
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_tcp4(src, dst="127.0.0.1", sport=40000, dport=25):
    return (V2_SIG + b"\x21\x11\x00\x0c" + socket.inet_aton(src) +
            socket.inet_aton(dst) + sport.to_bytes(2, "big") +
            dport.to_bytes(2, "big"))


def raw(port, source=None):
    return Client(port, source, timeout=TIMEOUT)


@pytest.mark.parametrize("data,why", [
    (b"EHLO client.test\r\n", "not a PROXY header"),
    (b"PROXY TCP4 999.0.0.1 127.0.0.1 1 25\r\n", "bad address"),
    (b"PROXY TCP4 127.0.0.3 127.0.0.1 1 25\n", "not ended by CRLF"),
    (V2_SIG + b"\x21\x12\x00\x0c" + bytes(12), "not TCP"),
    (V2_SIG[:8] + b"JUNK", "not a PROXY header"),
], ids=["smtp", "v1-address", "v1-bare-lf", "v2-udp", "v2-signature"])
def test_malformed_header_closed_and_logged(proxied, data, why):
    mr, _, pport = proxied
    with raw(pport) as c:
        c.send(data)
        assert c.closed(), "a malformed header got an answer"
    logged(mr, (PROXY_LOG % pport) + "malformed PROXY header: .*%s.*; "
           "connection closed" % why)


def test_missing_and_slow_headers_closed_others_served(proxied):
    """A client that sends nothing and one that stops inside the header
    are closed after the header timeout (5 s), each with a log line;
    meanwhile the others are served."""
    mr, hap, pport = proxied
    with raw(pport) as silent, raw(pport) as slow:
        slow.send(b"PROXY TCP4 127.0.")
        with via(hap, "v1", RELAYER) as s:
            assert s.noop()[0] == 250
        with via(hap, "v2", STRANGER) as s:
            assert s.noop()[0] == 250
        assert silent.closed(TIMEOUT)
        assert slow.closed(TIMEOUT)
    logged(mr, (PROXY_LOG % pport) + r"no PROXY header within 5 seconds; "
           r"connection closed")
    logged(mr, (PROXY_LOG % pport) + r"PROXY header incomplete after 5 "
           r"seconds \(17 bytes\); connection closed")


def test_header_in_pieces_and_pipelined_command(proxied):
    """The header may come a byte at a time; the bytes after it, in the
    same packet, are the session's."""
    mr, _, pport = proxied
    hdr = b"PROXY TCP4 127.0.0.3 127.0.0.1 40000 25\r\n"
    with raw(pport) as c:
        for i in range(len(hdr)):
            c.send(hdr[i:i + 1])
        c.expect(220)
        c.expect(250, None, "EHLO client.test")
    with raw(pport) as c:
        c.send(v2_tcp4(RELAYER) + b"EHLO client.test\r\n")
        c.expect(220)
        text = c.expect(250)
        assert text[0].endswith("Hello [%s]" % RELAYER), text
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<far@remote.test>")


def test_local_header_keeps_the_connection_address(proxied):
    """A version 2 LOCAL header (the balancer's health check) and a
    version 1 UNKNOWN one: the connection's own address stands."""
    mr, _, pport = proxied
    for hdr in (V2_SIG + b"\x20\x00\x00\x00", b"PROXY UNKNOWN\r\n"):
        with raw(pport, RELAYER) as c:
            c.send(hdr)
            c.expect(220)
            text = c.expect(250, None, "EHLO client.test")
            assert text[0].endswith("Hello [%s]" % RELAYER), text
    logged(mr, (PROXY_LOG.replace("127\\.0\\.0\\.1", "127\\.0\\.0\\.3", 1)
                % pport) + r"PROXY v2 \(local\): client \[127\.0\.0\.3\]")


def test_reload_while_a_header_is_pending(proxied):
    """A connection waiting for its header keeps the listener's
    configuration across a reload and is served when the header ends."""
    mr, _, pport = proxied
    with raw(pport) as c:
        c.send(b"PROXY TCP4 127.0.0.3")
        since = len(mr.log_text())
        os.kill(mr.pid, signal.SIGHUP)
        assert mh.wait_until(lambda: re.search(
            r"smtpd\[\d+\]: .*configuration reloaded",
            mr.log_text()[since:]), 60), mr.log_text()[since:]
        if "PROXY header incomplete" in mr.log_text()[since:]:
            pytest.skip("the reload took longer than the header timeout")
        c.send(b" 127.0.0.1 40000 25\r\n")
        c.expect(220)
        text = c.expect(250, None, "EHLO client.test")
        assert text[0].endswith("Hello [%s]" % RELAYER), text


def test_stop_while_a_header_is_pending(proxied):
    """mailrootd stops cleanly (and the sanitizers find nothing) with a
    connection still waiting for its header."""
    mr, _, pport = proxied
    with raw(pport) as c:
        c.send(b"\r\n\r\n\x00\r\n")
        assert mr.stop() == []
        assert c.closed()
