"""
Inbound SMTP AUTH (RFC 4954) through a real mailrootd: PLAIN and LOGIN
against a users table built by mailroot-makemap with crypt(3) hashes
(yescrypt, bcrypt, SHA-512-crypt) made here by libxcrypt, verified by
queued, never by smtpd.  Peers: smtplib, swaks, raw sockets over TLS with
a certificate made in the test.  AUTH before STARTTLS is 538; relay is
open to an authenticated client only; repeated failures are slowed down
and end the session.
"""

import base64
import ctypes
import re
import shutil
import smtplib
import socket
import ssl
import subprocess

import pytest

import mailroot_harness as mh
from test_tables import makemap, table_dir
from test_tls import client_ctx, make_cert, pki

WAIT = 60.0
REMOTE = "dest@remote.example"
_libcrypt = ctypes.CDLL("libcrypt.so.1")
_libcrypt.crypt_gensalt.restype = ctypes.c_char_p
_libcrypt.crypt.restype = ctypes.c_char_p


def hash_pw(password, prefix, count=0):
    salt = _libcrypt.crypt_gensalt(prefix.encode(), count, None, 0)
    return _libcrypt.crypt(password.encode(), salt).decode()


USERS = {
    "yes@client.test": ("pw-yes", "$y$", 0),
    "bob": ("pw-bcrypt", "$2b$", 5),
    "sha": ("p@ss w0rd!", "$6$", 0),
}


def build_users(workdir):
    src = table_dir(workdir) / "users"
    src.write_text("".join("%s %s\n" % (u, hash_pw(p, pre, n))
                           for u, (p, pre, n) in USERS.items()))
    proc = makemap(src)
    assert proc.returncode == 0, proc.stderr
    return src.with_name("users.db")


def start(start_mailroot, sink, workdir, auth="    auth { users users }",
          extra=""):
    crt, key = make_cert(workdir, "mx")
    users = build_users(workdir)
    return start_mailroot(
        sink=sink, relay_allow=(),
        global_extra=pki(crt, key) + "table users db:%s" % users,
        server_extra='    pki "mx"\n    tls optional\n%s\n%s'
        % (auth, extra))


def tls_smtp(d):
    c = smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT)
    c.ehlo("client.test")
    c.starttls(context=client_ctx())
    c.ehlo("client.test")
    return c


def try_auth(c, mech, user, password):
    """smtplib's AUTH: (code, text) whether it succeeds or not."""
    c.user, c.password = user, password
    try:
        return c.auth(mech, getattr(c, "auth_" + mech.lower()),
                      initial_response_ok=(mech == "PLAIN"))
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code, e.smtp_error


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Raw:
    """A TLS session line by line: cmd() sends one line, returns the
    reply (code, text of the last line)."""

    def __init__(self, d):
        self.sock = socket.create_connection(("127.0.0.1", d.port),
                                             timeout=WAIT)
        self.f = self.sock.makefile("rb")
        assert self.reply()[0] == 220
        assert self.cmd("EHLO client.test")[0] == 250
        assert self.cmd("STARTTLS")[0] == 220
        self.sock = client_ctx().wrap_socket(self.sock)
        self.f = self.sock.makefile("rb")
        code, text = self.cmd("EHLO client.test")
        assert code == 250 and "AUTH PLAIN LOGIN" in text, text

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                return None, "".join(lines)
            lines.append(line.decode())
            if line[3:4] != b"-":
                return int(line[:3]), "".join(lines)

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.sock.close()


def test_auth_only_after_starttls(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT) as c:
        c.ehlo("client.test")
        assert not c.has_extn("auth")
        code, text = c.docmd("AUTH", "PLAIN " + b64("\0bob\0pw-bcrypt"))
        assert (code, text[:6]) == (538, b"5.7.11"), (code, text)
        c.starttls(context=client_ctx())
        c.ehlo("client.test")
        assert c.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]


@pytest.mark.parametrize("user", sorted(USERS))
def test_plain_and_login_right_and_wrong(start_mailroot, sink, workdir,
                                         user):
    d = start(start_mailroot, sink, workdir)
    password = USERS[user][0]
    for mech in ("PLAIN", "LOGIN"):
        with tls_smtp(d) as c:
            code, text = try_auth(c, mech, user, password + "x")
            assert (code, text[:5]) == (535, b"5.7.8"), (mech, code, text)
        with tls_smtp(d) as c:
            code, text = try_auth(c, mech, user, password)
            assert (code, text[:5]) == (235, b"2.7.0"), (mech, code, text)
    log = d.log_text()
    assert len(re.findall(r"authenticated as <%s>" % re.escape(user),
                          log)) == 2, log
    assert "authentication failed for user=<%s>" % user in log
    # an unknown user is refused the same way
    with tls_smtp(d) as c:
        assert try_auth(c, "PLAIN", "nobody", password)[0] == 535


def test_relay_only_after_auth(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    msg = mh.crlf("From: a@client.test\nSubject: relayed\n\nhello\n")
    with tls_smtp(d) as c:
        c.mail("a@client.test")
        code, text = c.rcpt(REMOTE)
        assert (code, text[:5]) == (550, b"5.7.1"), (code, text)
        c.rset()
        c.login("bob", "pw-bcrypt")
        c.sendmail("a@client.test", [REMOTE], msg)
    got = sink.wait_for(1)
    assert got[0].rcpt_tos == [REMOTE]
    head = got[0].data.split(b"\r\n\r\n")[0]
    assert b"with ESMTPSA id" in head, head
    # received-auth is off by default: the user is not named
    assert b"bob" not in head and b"Authenticated" not in head, head


def test_received_names_user_where_configured(start_mailroot, sink,
                                              workdir):
    d = start(start_mailroot, sink, workdir,
              auth="    auth { users users\n received-auth yes }")
    msg = mh.crlf("From: a@client.test\nSubject: named\n\nhello\n")
    with tls_smtp(d) as c:
        c.login("yes@client.test", "pw-yes")
        c.sendmail("a@client.test", [REMOTE], msg)
    head = sink.wait_for(1)[0].data.split(b"\r\n\r\n")[0]
    assert b"\t(Authenticated sender: yes@client.test)\r\n" in head, head
    assert b"with ESMTPSA id" in head, head


def test_relay_authenticated_no(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir,
              extra="    relay authenticated no")
    with tls_smtp(d) as c:
        c.login("bob", "pw-bcrypt")
        c.mail("a@client.test")
        code, text = c.rcpt(REMOTE)
        assert (code, text[:5]) == (550, b"5.7.1"), (code, text)
        # local mail is still taken, and its Received says ESMTPSA
        assert c.rcpt("x@local.test")[0] == 250


def test_exchange_errors(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    r = Raw(d)
    try:
        assert r.cmd("AUTH PLAIN")[0] == 334
        assert r.cmd("*")[1].startswith("501 5.0.0")
        assert r.cmd("AUTH LOGIN")[1] == "334 VXNlcm5hbWU6\r\n"
        assert r.cmd(b64("bob"))[1] == "334 UGFzc3dvcmQ6\r\n"
        assert r.cmd("*")[1].startswith("501 5.0.0")
        assert r.cmd("AUTH PLAIN !!!!")[1].startswith("501 5.5.2")
        assert r.cmd("AUTH PLAIN =")[1].startswith("501 5.5.2")
        assert r.cmd("AUTH PLAIN")[0] == 334
        assert r.cmd("Zm9v")[1].startswith("501 5.5.2")  # no NULs
        assert r.cmd("AUTH CRAM-MD5")[1].startswith("504 5.5.4")
        assert r.cmd("AUTH")[1].startswith("501 5.5.4")
        # proxy authorization: refused without asking queued
        code, _ = r.cmd("AUTH PLAIN " + b64("sha\0bob\0pw-bcrypt"))
        assert code == 535
        assert r.cmd("MAIL FROM:<a@client.test>")[0] == 250
        assert r.cmd("AUTH PLAIN " + b64("\0bob\0pw-bcrypt"))[1] \
            .startswith("503 5.5.1")
        assert r.cmd("RSET")[0] == 250
        # "=" with LOGIN: an empty user name
        assert r.cmd("AUTH LOGIN =")[1].startswith("501 5.5.2")
        assert r.cmd("AUTH LOGIN " + b64("bob"))[0] == 334
        assert r.cmd(b64("pw-bcrypt"))[1].startswith("235 2.7.0")
        assert r.cmd("AUTH PLAIN " + b64("\0bob\0pw-bcrypt"))[1] \
            .startswith("503 5.5.1")
        # AUTH= in MAIL is accepted (RFC 4954 5)
        assert r.cmd("MAIL FROM:<a@client.test> AUTH=<>")[0] == 250
        # a line longer than the command limit ends the session
        code, text = r.cmd("RSET")
        assert code == 250
        r.sock.sendall(b"AUTH PLAIN " + b"A" * 3000 + b"\r\n")
        code, text = r.reply()
        assert code == 500, text
    finally:
        r.close()


def test_swaks(start_mailroot, sink, workdir):
    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed (Debian package swaks)")
    d = start(start_mailroot, sink, workdir)
    base = ["swaks", "--server", "127.0.0.1:%d" % d.port, "--tls",
            "--from", "a@client.test", "--to", REMOTE,
            "--auth-user", "yes@client.test"]
    for i, mech in enumerate(("PLAIN", "LOGIN")):
        r = subprocess.run(base + ["--auth", mech, "--auth-password",
                                   "pw-yes"],
                           capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "235 2.7.0" in r.stdout, r.stdout
        assert len(sink.wait_for(i + 1)) == i + 1
        r = subprocess.run(base + ["--auth", mech, "--auth-password",
                                   "wrong"],
                           capture_output=True, text=True, timeout=WAIT)
        assert r.returncode != 0
        assert "535 5.7.8" in r.stdout, r.stdout


def test_failures_slow_down_and_close(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    bad = "AUTH PLAIN " + b64("\0bob\0wrong")
    r = Raw(d)
    try:
        assert r.cmd(bad)[1].startswith("535 5.7.8")
        assert r.cmd(bad)[1].startswith("535 5.7.8")
        code, text = r.cmd(bad)
        assert text.startswith("535 5.7.8"), text
        # the third failure of the session also ends it
        code, text = r.reply()
        assert code == 421 and text.startswith("421 4.7.0"), text
        assert r.reply()[0] is None
    finally:
        r.close()
    # a fourth failure from this address is held back longer; meanwhile
    # another session authenticates and is answered first
    slow = Raw(d)
    ok = Raw(d)
    try:
        slow.sock.sendall(bad.encode() + b"\r\n")
        mh.wait_until(lambda: "failure 4 from this address" in
                      d.log_text(), WAIT)
        assert ok.cmd("AUTH PLAIN " + b64("\0bob\0pw-bcrypt"))[0] == 235
        assert slow.reply()[1].startswith("535 5.7.8")
    finally:
        slow.close()
        ok.close()
    fails = re.findall(r"\[127\.0\.0\.1\]: authentication failed for "
                       r"user=<bob>: failure (\d+) from this address, 535 "
                       r"delayed (\d+) ms", d.log_text())
    assert [int(n) for n, _ in fails] == [1, 2, 3, 4], fails
    delays = [int(ms) for _, ms in fails]
    assert delays == sorted(delays) and delays[-1] <= 5000, delays
    assert delays[0] < delays[-1], delays


class AuthSink(mh.Sink):
    """A sink that advertises AUTH (without TLS) and records the AUTH=
    parameter of every MAIL, in order."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP, AuthResult

        super().__init__()
        self.auth_params = []
        sink = self

        class _SMTP(SMTP):
            async def smtp_MAIL(self, arg):
                words = (arg or "").split(" ")
                sink.auth_params.append(
                    [w for w in words if w.upper().startswith("AUTH=")])
                return await super().smtp_MAIL(" ".join(
                    w for w in words if not w.upper().startswith("AUTH=")))

        class _Controller(Controller):
            def factory(self):
                return _SMTP(self.handler, **self.SMTP_kwargs)

        self._controller = _Controller(
            mh._SinkHandler(self), hostname="127.0.0.1", port=self.port,
            decode_data=False, ready_timeout=10.0, auth_require_tls=False,
            authenticator=lambda *a: AuthResult(success=False))


def test_auth_name_reaches_next_hop(start_mailroot, workdir):
    sink = AuthSink().start()
    try:
        d = start(start_mailroot, sink, workdir)
        msg = mh.crlf("From: a@client.test\nSubject: auth=\n\nhello\n")
        with tls_smtp(d) as c:
            c.login("yes@client.test", "pw-yes")
            c.sendmail("a@client.test", [REMOTE], msg)
        with tls_smtp(d) as c:
            c.login("sha", "p@ss w0rd!")
            c.sendmail("a@client.test", [REMOTE], msg)
        got = sink.wait_for(2)
        assert len(got) == 2
        assert sink.auth_params == [["AUTH=yes@client.test"],
                                    ["AUTH=sha"]], sink.auth_params
    finally:
        sink.stop()


@pytest.mark.call_timeout(400)     # a private Postfix starts slowly
def test_postfix_authenticates_over_tls(start_mailroot, sink, workdir):
    """A private Postfix relays a LAN's mail through mailroot as an
    authenticated client (smtp_sasl_auth_enable, TLS required): mailroot
    relays for it only because it authenticated."""
    if shutil.which("postfix") is None or not mh.IS_ROOT:
        pytest.skip("needs root and postfix")
    from test_postfix_peer import Postfix
    d = start(start_mailroot, sink, workdir)
    pf = Postfix(workdir, d.port)
    passwords = pf.etc / "sasl_passwd"
    passwords.write_text("[127.0.0.1]:%d bob:pw-bcrypt\n" % d.port)
    with open(pf.etc / "main.cf", "a") as f:
        f.write("smtp_sasl_auth_enable = yes\n"
                "smtp_sasl_password_maps = texthash:%s\n"
                "smtp_sasl_security_options = noanonymous\n"
                "smtp_sasl_tls_security_options = noanonymous\n"
                "smtp_tls_security_level = encrypt\n" % passwords)
    pf.start()
    try:
        mh.send(pf.port, "lan@client.test", [REMOTE],
                mh.crlf("Subject: via postfix\n\nhello\n"))
        assert mh.wait_until(lambda: len(sink.messages) == 1, 120), \
            "%s\n--- postfix ---\n%s" % (d.log_text()[-3000:],
                                         pf.log()[-3000:])
        head = sink.messages[0].data.split(b"\r\n\r\n")[0]
        assert b"with ESMTPSA id" in head, head
        assert "authenticated as <bob>" in d.log_text()
        assert "status=sent" in pf.log(), pf.log()
    finally:
        pf.stop()
