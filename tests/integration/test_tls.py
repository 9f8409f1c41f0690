"""
Inbound TLS: STARTTLS (RFC 3207) and implicit TLS listeners, with
certificates made here by the openssl CLI and keys readable by root only.
Real peers: openssl s_client, Python's smtplib and ssl, raw sockets.
"""

import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess

import mailroot_harness as mh

WAIT = 60.0
FQDN = "mx.test.example"


def make_cert(directory, name, cn=FQDN):
    """A self-signed EC certificate and its key (mode 0600)."""
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


def start(start_mailroot, sink, workdir, tls="optional", extra=""):
    """A daemon with STARTTLS on its port and implicit TLS on .tls_port."""
    crt, key = make_cert(workdir, "mx")
    tls_port = mh.free_port()
    d = start_mailroot(sink=sink, global_extra=pki(crt, key),
                       server_extra='    pki "mx"\n    tls %s\n'
                       '    listen 127.0.0.1:%d tls\n%s'
                       % (tls, tls_port, extra))
    d.tls_port = tls_port
    d.crt, d.key = crt, key
    # smtpd reads the files when it starts, after mailrootd says ready:
    # once it has answered over TLS, the test may change them
    with smtplib.SMTP_SSL("127.0.0.1", tls_port, context=client_ctx(),
                          timeout=WAIT) as c:
        assert c.noop()[0] == 250
    return d


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def reply(f):
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed after %r" % lines
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)


def message(subject):
    return mh.crlf("From: a@client.test\nSubject: %s\n\nhello\n" % subject)


def wait_log(d, pattern, since=0):
    found = mh.wait_until(
        lambda: re.search(pattern, d.log_text()[since:]), WAIT)
    assert found, "no %r in the log:\n%s" % (pattern, d.log_text()[since:])


def test_openssl_s_client_starttls(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    script = ("EHLO client.test\nMAIL FROM:<a@client.test>\n"
              "RCPT TO:<b@remote.test>\nDATA\n"
              "Subject: via s_client\n\nhello\n.\nQUIT\n")
    r = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect",
         "127.0.0.1:%d" % d.port, "-crlf", "-ign_eof", "-brief",
         "-servername", FQDN],
        input=script.encode(), capture_output=True, timeout=WAIT)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    assert "CN = %s" % FQDN in err, err
    assert re.search(r"Protocol version: TLSv1\.[23]", err), err
    assert "250 2.0.0 Ok: queued as" in out, out + err
    assert "221 2.0.0" in out, out
    got = sink.wait_for(1)
    head = got[0].data.split(b"\r\n\r\n")[0]
    assert b"with ESMTPS id" in head, head
    assert re.search(rb"\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ "
                     rb"bits\)\)", head), head
    wait_log(d, r"TLS established: TLSv1\.[23] with cipher")


def test_implicit_tls(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    # openssl s_client, no STARTTLS: TLS from the first byte
    r = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.tls_port,
         "-crlf", "-ign_eof", "-brief"],
        input=b"EHLO client.test\nQUIT\n", capture_output=True,
        timeout=WAIT)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    assert "CN = %s" % FQDN in err, err
    assert out.startswith("220 %s ESMTP" % FQDN), out + err
    assert "250-STARTTLS" not in out, out
    assert "221 2.0.0" in out, out
    # smtplib over implicit TLS, and the certificate is the one made here
    with smtplib.SMTP_SSL("127.0.0.1", d.tls_port, context=client_ctx(),
                          timeout=WAIT) as c:
        der = c.sock.getpeercert(binary_form=True)
        assert ssl.DER_cert_to_PEM_cert(der).split() == \
            d.crt.read_text().split()
        c.sendmail("a@client.test", ["b@remote.test"], message("465"))
    got = sink.wait_for(1)
    assert b"with ESMTPS id" in got[0].data


def test_smtplib_starttls_and_required(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir, tls="required")
    with smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT) as c:
        c.ehlo("client.test")
        assert c.has_extn("starttls")
        code, text = c.mail("a@client.test")
        assert code == 530 and text.startswith(b"5.7.0"), (code, text)
        code, _ = c.starttls(context=client_ctx())
        assert code == 220
        # the session starts afresh: EHLO first, and no second STARTTLS
        code, _ = c.docmd("MAIL FROM:<a@client.test>")
        assert code == 503
        c.ehlo("client.test")
        assert not c.has_extn("starttls")
        code, text = c.docmd("STARTTLS")
        assert code == 503, (code, text)
        c.sendmail("a@client.test", ["b@remote.test"], message("required"))
    got = sink.wait_for(1)
    assert b"Subject: required" in got[0].data


def test_starttls_injection(start_mailroot, sink, workdir):
    """Commands pipelined after STARTTLS in plain text are discarded, not
    run inside the TLS session (CVE-2011-0411)."""
    d = start(start_mailroot, sink, workdir)
    since = len(d.log_text())
    with socket.create_connection(("127.0.0.1", d.port), timeout=WAIT) as c:
        f = c.makefile("rb")
        assert reply(f).startswith(b"220 ")
        c.sendall(b"EHLO client.test\r\n")
        assert b"250-STARTTLS" in reply(f)
        c.sendall(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@client.test>\r\n")
        assert reply(f).startswith(b"220 2.0.0")
        t = client_ctx().wrap_socket(c, server_hostname=FQDN)
        tf = t.makefile("rb")
        t.sendall(b"EHLO client.test\r\n")
        first = reply(tf)
        # an injected RSET would have answered "250 2.0.0 Ok" first
        assert first.startswith(b"250-%s Hello" % FQDN.encode()), first
        t.sendall(b"RCPT TO:<b@remote.test>\r\n")
        assert reply(tf).startswith(b"503 "), "the injected MAIL ran"
        t.sendall(b"QUIT\r\n")
        assert reply(tf).startswith(b"221 ")
    wait_log(d, r"\d+ bytes sent after STARTTLS before the handshake "
             r"discarded", since)


def test_plain_client_on_implicit_port(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    since = len(d.log_text())
    with socket.create_connection(("127.0.0.1", d.tls_port),
                                  timeout=WAIT) as c:
        c.sendall(b"EHLO client.test\r\n")
        data = b""
        try:
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        assert not data.startswith(b"220"), data
    wait_log(d, r"TLS handshake failed: ", since)
    # the server goes on serving
    with smtplib.SMTP_SSL("127.0.0.1", d.tls_port, context=client_ctx(),
                          timeout=WAIT) as c:
        assert c.noop()[0] == 250


def test_stalled_handshake_is_bounded(start_mailroot, sink, workdir):
    """A client that never finishes the handshake is dropped after the
    (short) idle timeout, with a log line; others are served meanwhile."""
    d = start(start_mailroot, sink, workdir,
              extra="    limits { idle-timeout 3s }\n")
    since = len(d.log_text())
    stalled = socket.create_connection(("127.0.0.1", d.tls_port),
                                       timeout=WAIT)
    half = socket.create_connection(("127.0.0.1", d.port), timeout=WAIT)
    try:
        f = half.makefile("rb")
        assert reply(f).startswith(b"220 ")
        half.sendall(b"STARTTLS\r\n")
        assert reply(f).startswith(b"220 2.0.0")
        half.sendall(b"\x16\x03\x01")      # a ClientHello begun, not sent
        with smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT) as c:
            c.starttls(context=client_ctx())
            c.sendmail("a@client.test", ["b@remote.test"], message("other"))
        assert sink.wait_for(1)
        for s in (stalled, half):
            try:
                assert s.recv(4096) == b""
            except ConnectionResetError:
                pass
    finally:
        stalled.close()
        half.close()
    wait_log(d, r"(TLS handshake timed out(.|\n)*){2}", since)


def test_reload_takes_renewed_certificate(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    old = d.crt.read_text()
    # a session in TLS when the certificate changes
    c = smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT)
    c.starttls(context=client_ctx())
    c.ehlo("client.test")
    new_crt, new_key = make_cert(workdir, "renewed")
    os.replace(new_crt, d.crt)
    os.replace(new_key, d.key)
    assert d.crt.read_text() != old
    since = len(d.log_text())
    os.kill(d.pid, signal.SIGHUP)
    wait_log(d, r"smtpd\[\d+\]: configuration reloaded", since)

    def served():
        with smtplib.SMTP_SSL("127.0.0.1", d.tls_port,
                              context=client_ctx(), timeout=WAIT) as n:
            return ssl.DER_cert_to_PEM_cert(
                n.sock.getpeercert(binary_form=True)).split()
    assert served() == d.crt.read_text().split()
    # the old session goes on
    c.sendmail("a@client.test", ["b@remote.test"], message("across"))
    c.quit()
    assert b"Subject: across" in sink.wait_for(1)[0].data


def test_reload_with_unreadable_key_keeps_running(start_mailroot, sink,
                                                   workdir):
    d = start(start_mailroot, sink, workdir)
    old = d.crt.read_text()
    d.key.write_text("not a key\n")
    new_crt, _ = make_cert(workdir, "other")
    os.replace(new_crt, d.crt)
    since = len(d.log_text())
    os.kill(d.pid, signal.SIGHUP)
    wait_log(d, r"smtpd\[\d+\]: reload: the running configuration "
             r"stays in force", since)
    with smtplib.SMTP_SSL("127.0.0.1", d.tls_port, context=client_ctx(),
                          timeout=WAIT) as n:
        pem = ssl.DER_cert_to_PEM_cert(n.sock.getpeercert(binary_form=True))
    assert pem.split() == old.split()


def test_missing_key_stops_start(workdir):
    crt, _ = make_cert(workdir, "mx")
    conf = workdir / "nokey.conf"
    conf.write_text(pki(crt, workdir / "missing.key") + mh.config_text(
        mh.free_port(), workdir / "mr", chroot=workdir / "empty",
        server_extra='    pki "mx"'))
    r = mh.run_mailrootd("-d", "-f", str(conf))
    assert r.returncode == 1, r.stderr
    assert "a certificate or key cannot be read; not starting" in r.stderr


def test_reload_with_missing_key_keeps_running(start_mailroot, sink,
                                               workdir):
    d = start(start_mailroot, sink, workdir)
    os.unlink(d.key)
    since = len(d.log_text())
    os.kill(d.pid, signal.SIGHUP)
    wait_log(d, r"reload failed: a certificate or key cannot be read",
             since)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT) as c:
        assert c.starttls(context=client_ctx())[0] == 220


def test_sni_chooses_between_servers_on_one_address(start_mailroot, sink,
                                                     workdir):
    """Two servers share an implicit TLS address; the first in the file is
    the default, the client's SNI name chooses the other."""
    crt, key = make_cert(workdir, "mx")
    ocrt, okey = make_cert(workdir, "other", cn="other.test.example")
    port = mh.free_port()
    other = ('server "other" {\n    listen 127.0.0.1:%d tls\n'
             '    mailroot "%s"\n    fqdn "other.test.example"\n'
             '    pki "other"\n    relay allow 127.0.0.1\n'
             '    delivery { smart-host "[127.0.0.1]:%d" }\n}\n'
             % (port, workdir / "other", sink.port))
    d = start_mailroot(sink=sink, global_extra=pki(crt, key) +
                       pki(ocrt, okey, "other") + other,
                       server_extra="    pki \"mx\"\n"
                       "    listen 127.0.0.1:%d tls\n" % port)

    def session(name, subject):
        ctx = client_ctx()
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=WAIT) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as t:
                pem = ssl.DER_cert_to_PEM_cert(
                    t.getpeercert(binary_form=True))
                f = t.makefile("rb")
                greeting = reply(f)
                for cmd in (b"EHLO client.test", b"MAIL FROM:<a@client.test>",
                            b"RCPT TO:<b@remote.test>", b"DATA"):
                    t.sendall(cmd + b"\r\n")
                    assert reply(f)[:1] in (b"2", b"3")
                t.sendall(message(subject) + b".\r\nQUIT\r\n")
                assert reply(f).startswith(b"250 ")
                return pem.split(), greeting
    pem, greeting = session(FQDN, "sni mx")
    assert pem == crt.read_text().split()
    assert greeting.startswith(b"220 %s " % FQDN.encode()), greeting
    pem, greeting = session("other.test.example", "sni other")
    assert pem == ocrt.read_text().split()
    assert greeting.startswith(b"220 other.test.example "), greeting
    pem, greeting = session(None, "no sni")          # the default
    assert pem == ocrt.read_text().split()
    got = {re.search(rb"Subject: ([^\r]+)", m.data).group(1):
           re.search(rb"by (\S+) \(mailroot\)", m.data).group(1)
           for m in sink.wait_for(3)}
    assert got == {b"sni mx": FQDN.encode(),
                   b"sni other": b"other.test.example",
                   b"no sni": b"other.test.example"}, got
    wait_log(d, r'server "test" chosen by SNI')
    # a reload keeps the shared socket and the choice
    since = len(d.log_text())
    os.kill(d.pid, signal.SIGHUP)
    wait_log(d, r"smtpd\[\d+\]: configuration reloaded", since)
    pem, greeting = session(FQDN, "after reload")
    assert pem == crt.read_text().split()
    assert greeting.startswith(b"220 %s " % FQDN.encode()), greeting


def test_proxy_header_then_implicit_tls(start_mailroot, sink, workdir):
    """A listener with both proxy-protocol and tls: the PROXY header
    comes first in plain text, then the TLS handshake; the address in
    the header is the client's in the Received header."""
    d = start(start_mailroot, sink, workdir)
    port = mh.free_port()
    hup_conf = d.conf.read_text().replace(
        "    listen 127.0.0.1:%d tls\n" % d.tls_port,
        "    listen 127.0.0.1:%d tls\n"
        "    listen 127.0.0.1:%d tls proxy-protocol\n" % (d.tls_port, port))
    assert hup_conf != d.conf.read_text()
    d.conf.write_text(hup_conf)
    since = len(d.log_text())
    os.kill(d.pid, signal.SIGHUP)
    wait_log(d, r"mailrootd\[\d+\]: reloaded", since)
    assert mh.wait_until(lambda: mh.port_accepts(port), WAIT)
    raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    raw.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 %d\r\n" % port)
    with client_ctx().wrap_socket(raw) as s:
        f = s.makefile("rb")
        assert reply(f).startswith(b"220 " + FQDN.encode())
        for cmd, want in ((b"EHLO client.test", b"250"),
                          (b"MAIL FROM:<a@client.test>", b"250"),
                          (b"RCPT TO:<b@local.test>", b"250"),
                          (b"DATA", b"354")):
            s.sendall(cmd + b"\r\n")
            assert reply(f).startswith(want), cmd
        s.sendall(message("proxy then tls") + b".\r\n")
        assert reply(f).startswith(b"250")
        s.sendall(b"QUIT\r\n")
        reply(f)
    got = d.wait_drop(1)
    assert b"192.0.2.7" in got[0].read_bytes()
    assert b"with ESMTPS" in got[0].read_bytes()
