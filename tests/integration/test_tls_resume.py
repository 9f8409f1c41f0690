"""
TLS session resumption and where it must not happen.

Inbound: smtpd gives a TLS 1.3 session ticket with each handshake; a client
that offers it back resumes (Python's ssl as the client, on the implicit
TLS port and after STARTTLS), also after a reload; a ticket one server gave
does not resume at another server with another certificate (SNI on a
shared address).
"""

import os
import re
import signal
import socket
import ssl
import subprocess

import pytest

import mailroot_harness as mh

WAIT = 90.0
FQDN = "mx.test.example"


def make_cert(directory, name, cn=FQDN):
    crt = directory / ("%s.crt" % name)
    key = directory / ("%s.key" % name)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-days", "2",
                    "-subj", "/CN=%s" % cn], check=True,
                   capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return crt, key


def pki(crt, key, name="mx"):
    return 'pki "%s" {\n    certificate "%s"\n    key "%s"\n}\n' % (
        name, crt, key)


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
