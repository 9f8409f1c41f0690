"""
TLS session resumption, both ways, and where it must not happen.

Inbound: smtpd gives a TLS 1.3 session ticket with each handshake; a client
that offers it back resumes (Python's ssl as the client, on the implicit
TLS port and after STARTTLS), also after a reload; a ticket one server gave
does not resume at another server with another certificate (SNI on a
shared address).

Outbound: a scripted TLS peer (Python's ssl server, which issues tickets)
sees deliverd resume the session of its last handshake with it under the
same policy, and not one made under another policy (tls required, then
tls fingerprint pinning the peer's certificate, to the same address).
"""

import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess

import pytest

import mailroot_harness as mh
from peer_server import PeerServer
from test_tls import make_cert, pki

WAIT = 90.0
FQDN = "mx.test.example"


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def reply(f):
    lines = []
    for _ in range(100):
        line = f.readline()
        assert line, "connection closed after %r" % lines
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)
    raise AssertionError("reply too long: %r" % lines)


def implicit(port, ctx, session=None, name=None):
    """One session on an implicit TLS port: (reused, its session).  The
    greeting is read so that the ticket sent before it has arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        with ctx.wrap_socket(raw, server_hostname=name,
                             session=session) as t:
            f = t.makefile("rb")
            assert reply(f).startswith(b"220 ")
            t.sendall(b"QUIT\r\n")
            assert reply(f).startswith(b"221 ")
            return t.session_reused, t.session


def starttls(port, ctx, session=None):
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        f = raw.makefile("rb")
        assert reply(f).startswith(b"220 ")
        raw.sendall(b"EHLO client.test\r\n")
        assert b"STARTTLS" in reply(f)
        raw.sendall(b"STARTTLS\r\n")
        assert reply(f).startswith(b"220 ")
        with ctx.wrap_socket(raw, session=session) as t:
            tf = t.makefile("rb")
            t.sendall(b"EHLO client.test\r\n")
            assert reply(tf).startswith(b"250")
            t.sendall(b"QUIT\r\n")
            assert reply(tf).startswith(b"221 ")
            return t.session_reused, t.session


# ---- inbound ----

@pytest.fixture(scope="module")
def inbound(tmp_path_factory):
    wd = tmp_path_factory.mktemp("tlsresume")
    mh.make_traversable(wd)
    crt, key = make_cert(wd, "mx")
    ocrt, okey = make_cert(wd, "other", cn="other.test.example")
    tls_port, shared = mh.free_port(), mh.free_port()
    other = ('server "other" {\n    listen 127.0.0.1:%d tls\n'
             '    mailroot "%s"\n    fqdn "other.test.example"\n'
             '    pki "other"\n}\n' % (shared, wd / "other"))
    d = mh.Mailroot(wd, global_extra=pki(crt, key) + pki(ocrt, okey, "other")
                    + other,
                    server_extra='    pki "mx"\n    tls optional\n'
                    '    listen 127.0.0.1:%d tls\n'
                    '    listen 127.0.0.1:%d tls\n' % (tls_port, shared))
    d.start()
    d.tls_port, d.shared = tls_port, shared
    assert mh.wait_until(lambda: mh.port_accepts(tls_port), WAIT)
    yield d
    d.stop()


def test_inbound_ticket_resumes(inbound):
    ctx = client_ctx()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    reused, sess = implicit(inbound.tls_port, ctx)
    assert not reused
    assert sess is not None and sess.has_ticket
    reused, sess2 = implicit(inbound.tls_port, ctx, sess)
    assert reused
    # the resumed handshake gave a new ticket, which resumes too
    assert sess2.has_ticket
    assert implicit(inbound.tls_port, ctx, sess2)[0]
    assert mh.wait_until(lambda: "(session resumed)" in
                         inbound.log_text(), WAIT)


def test_inbound_ticket_resumes_after_starttls(inbound):
    ctx = client_ctx()
    reused, sess = starttls(inbound.port, ctx)
    assert not reused
    assert starttls(inbound.port, ctx, sess)[0]


def test_inbound_ticket_not_across_certificates(inbound):
    """On the shared address SNI chooses the server: a ticket of "other"
    (its own certificate) does not resume at "test" (another one)."""
    ctx = client_ctx()
    reused, sess = implicit(inbound.shared, ctx, name="other.test.example")
    assert not reused
    assert implicit(inbound.shared, ctx, sess, name="other.test.example")[0]
    reused, _ = implicit(inbound.tls_port, ctx, sess)
    assert not reused
    reused, _ = implicit(inbound.shared, ctx, sess, name=FQDN)
    assert not reused


def test_inbound_ticket_survives_reload(inbound):
    ctx = client_ctx()
    _, sess = implicit(inbound.tls_port, ctx)
    since = len(inbound.log_text())
    os.kill(inbound.pid, signal.SIGHUP)
    assert mh.wait_until(lambda: re.search(
        r"smtpd.*(configuration|reload)", inbound.log_text()[since:]), WAIT)
    assert mh.wait_until(lambda: implicit(inbound.tls_port, ctx, sess)[0],
                         WAIT, interval=0.2)


# ---- outbound ----

class TLSPeer(PeerServer):
    """SMTP with STARTTLS on 127.0.0.1; records (subject, reused) per
    message received over TLS."""

    def __init__(self, crt, key):
        super().__init__("127.0.0.1", 0)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(crt), str(key))
        self.messages = []

    def serve(self, c):
        c.settimeout(60)
        try:
            self._session(c)
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()

    def _session(self, c):
        f, reused = c.makefile("rb"), None
        c.sendall(b"220 peer ESMTP\r\n")
        for _ in range(100):
            line = f.readline()
            if not line:
                return
            verb = line.split(b" ")[0].split(b":")[0].strip().upper()
            if verb == b"EHLO":
                c.sendall(b"250-peer\r\n" + (b"250-STARTTLS\r\n" if reused
                          is None else b"") + b"250 8BITMIME\r\n")
            elif verb == b"STARTTLS":
                c.sendall(b"220 2.0.0 go ahead\r\n")
                c = self.ctx.wrap_socket(c, server_side=True)
                f, reused = c.makefile("rb"), c.session_reused
            elif verb == b"DATA":
                c.sendall(b"354 go\r\n")
                data = b""
                while not data.endswith(b"\r\n.\r\n"):
                    line = f.readline()
                    if not line:
                        return
                    data += line
                m = re.search(rb"^Subject: (\S+)", data, re.M)
                self.messages.append((m.group(1).decode(), reused))
                c.sendall(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                c.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                c.sendall(b"250 2.0.0 Ok\r\n")


def cert_pin(crt):
    out = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout",
                          "-fingerprint", "-sha256"], check=True,
                         capture_output=True, text=True).stdout
    return "sha256:" + out.strip().split("=", 1)[1]


def test_outbound_resumes_per_policy(start_mailroot, workdir):
    crt, key = make_cert(workdir, "peer", cn="peer.test")
    peer = TLSPeer(crt, key)
    peer.start()
    try:
        route = 'route "[127.0.0.1]:%d"' % peer.port
        d = start_mailroot(server_extra=(
            '    limits { messages-per-connection 1 }\n'
            '    domain "req.test" remote { %s; tls required }\n'
            '    domain "pin.test" remote { %s; tls fingerprint; '
            'tls-fingerprint %s }\n' % (route, route, cert_pin(crt))))

        def relay(n, domain):
            subject = "m%d-%s" % (n, domain)
            with smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT) as c:
                c.sendmail("a@client.test", ["u@%s" % domain],
                           mh.crlf("From: a@client.test\nSubject: %s\n\n"
                                   "hello\n" % subject))
            assert mh.wait_until(lambda: any(
                m[0] == subject for m in peer.messages), WAIT), peer.messages
            return [m[1] for m in peer.messages if m[0] == subject][0]

        assert relay(1, "req.test") is False
        assert relay(2, "req.test") is True
        # required's session does not satisfy the fingerprint policy
        assert relay(3, "pin.test") is False
        assert relay(4, "pin.test") is True
        assert relay(5, "req.test") is True
    finally:
        peer.stop()
