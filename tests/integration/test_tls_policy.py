"""
Outbound TLS policies (mailroot.conf(5) outbound and remote-domain `tls`,
`tls-ca-file`, `tls-fingerprint`) against real receivers on loopback:

    good        a certificate from a test CA, for its name (and 127.0.0.2)
    expired     from the test CA, for its name, valid until yesterday
    wrongname   from the test CA, for another name
    selfsigned  self-signed, for its name
    plain       no STARTTLS at all
    broken      answers STARTTLS with 220 and then no TLS
    inject      sends a second reply with its 220 to STARTTLS (a response
                injected on the path), then does TLS properly

Every policy (none, opportunistic, required, verify, fingerprint) meets
each, through a remote domain's route by name (and by address, by MX, and
through a smart host for verify).  One mailrootd takes one message per
case at the start; each test then waits for its outcome: delivered (what
the receiver saw: TLS on or off, the SNI name) or deferred with the log
line saying why and the message still in the queue.

The certificates are made here with python3-cryptography; a fingerprint
is given both as the manual says to compute it with the openssl command
and from Python's digest of the DER.
"""

import datetime
import hashlib
import ipaddress
import re
import ssl
import subprocess
import threading

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import mailroot_harness as mh
from peer_server import PeerServer
from dns_server import DNSServer

SENDER = "sender@local.test"
WAIT = 90.0

# receiver -> its loopback address (all on one port, the outbound port)
ADDR = {"good": "127.0.0.2", "expired": "127.0.0.3", "wrongname": "127.0.0.4",
        "selfsigned": "127.0.0.5", "plain": "127.0.0.6", "broken": "127.0.0.7",
        "inject": "127.0.0.8"}


def host(receiver):
    return "%s.tls.test" % receiver


# ---- certificates ----

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(directory, stem, cert, key):
    crt = directory / ("%s.crt" % stem)
    keyf = directory / ("%s.key" % stem)
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyf.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    crt.chmod(0o644)
    return crt, keyf


def make_certs(directory):
    """{name: (crt, key, cert)} and the CA file's path."""
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("mailroot test CA"))
          .issuer_name(_name("mailroot test CA"))
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - 30 * day).not_valid_after(now + 30 * day)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                         critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=False, content_commitment=False,
              key_encipherment=False, data_encipherment=False,
              key_agreement=False, key_cert_sign=True, crl_sign=True,
              encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_file, _ = _write(directory, "ca", ca, ca_key)

    def leaf(stem, names, start, end, ips=(), self_signed=False):
        key = ec.generate_private_key(ec.SECP256R1())
        alt = [x509.DNSName(n) for n in names] + [
            x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        b = (x509.CertificateBuilder().subject_name(_name(names[0]))
             .issuer_name(_name(names[0]) if self_signed else ca.subject)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now + start * day)
             .not_valid_after(now + end * day)
             .add_extension(x509.SubjectAlternativeName(alt), critical=False))
        cert = b.sign(key if self_signed else ca_key, hashes.SHA256())
        return _write(directory, stem, cert, key) + (cert,)

    certs = {
        "good": leaf("good", [host("good")], -1, 30, ips=[ADDR["good"]]),
        "expired": leaf("expired", [host("expired")], -30, -1),
        "wrongname": leaf("wrongname", ["other.tls.test"], -1, 30),
        "selfsigned": leaf("selfsigned", [host("selfsigned")], -1, 30,
                           self_signed=True),
        "inject": leaf("inject", [host("inject")], -1, 30),
    }
    return certs, ca_file


def cert_pin(cert):
    """sha256: and the digest of the certificate, from Python."""
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


def openssl_cert_pin(crt):
    """As mailroot.conf(5) says: openssl x509 -fingerprint -sha256, whose
    "sha256 Fingerprint=AB:CD:..." is taken as it is printed."""
    out = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout",
                          "-fingerprint", "-sha256"], check=True,
                         capture_output=True, text=True).stdout
    return "sha256:" + out.strip().split("=", 1)[1]


def openssl_key_pin(crt):
    """The public key's digest, with the manual's openssl pipeline."""
    out = subprocess.run(
        "openssl x509 -in '%s' -noout -pubkey | openssl pkey -pubin "
        "-outform DER | openssl dgst -sha256" % crt, shell=True, check=True,
        capture_output=True, text=True).stdout
    return "sha256:" + out.strip().split("= ", 1)[1]


def key_pin(cert):
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


# ---- receivers ----

def subject_of(data):
    m = re.search(rb"^Subject: (\S+)", data, re.M)
    return m.group(1).decode() if m else None


class Receiver:
    """aiosmtpd on ADDR[name]:port, offering STARTTLS with crt/key (none
    without).  messages: (subject, tls on, SNI name the client sent)."""

    def __init__(self, name, port, crt=None, key=None):
        self.name = name
        self.messages = []
        self._cond = threading.Condition()
        ctx = None
        if crt is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(crt), str(key))
            ctx.sni_callback = self._sni
        rec = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sni = None
                if session.ssl is not None:
                    obj = session.ssl.get("ssl_object")
                    sni = getattr(obj, "mr_sni", None)
                rec._record((subject_of(envelope.original_content),
                             session.ssl is not None, sni))
                return "250 2.0.0 Ok"

        kw = dict(tls_context=ctx, require_starttls=False) if ctx else {}
        self._c = Controller(Handler(), hostname=ADDR[name], port=port,
                             decode_data=False, ready_timeout=10.0, **kw)

    @staticmethod
    def _sni(sslobj, name, ctx):
        sslobj.mr_sni = name

    def _record(self, m):
        with self._cond:
            self.messages.append(m)
            self._cond.notify_all()

    def start(self):
        self._c.start()
        return self

    def stop(self):
        self._c.stop()

    def got(self, subject):
        return [m for m in self.messages if m[0] == subject]


class LineReader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def readline(self):
        for _ in range(10000):
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            more = self.sock.recv(4096)
            if not more:
                return b""
            self.buf += more
        return b""


class Scripted(PeerServer):
    """STARTTLS done wrong, on ADDR[name]:port.  "broken": a 220, then
    bytes that are no TLS in answer to the client's hello.  "inject": the
    220 and a second reply in one write, then TLS with ctx.  log: (tls on,
    command) in order; messages: (subject, tls on)."""

    def __init__(self, name, port, ctx=None):
        super().__init__(ADDR[name], port)
        self.name = name
        self.ctx = ctx
        self.log = []
        self.messages = []

    def got(self, subject):
        return [m for m in self.messages if m[0] == subject]

    def serve(self, c):
        c.settimeout(60)
        try:
            self._session(c)
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()

    def _starttls(self, c, f):
        if self.name == "broken":
            c.sendall(b"220 2.0.0 go ahead\r\n")
            c.recv(4096)                      # the client's hello
            c.sendall(b"this is not TLS\r\n")
            return None
        c.sendall(b"220 2.0.0 go ahead\r\n250 2.0.0 injected\r\n")
        assert f.buf == b"", "the client pipelined after STARTTLS"
        return self.ctx.wrap_socket(c, server_side=True)

    def _session(self, c):
        f = LineReader(c)
        tls = False
        c.sendall(b"220 scripted ESMTP\r\n")
        for _ in range(100):
            line = f.readline()
            if not line:
                return
            cmd = line.decode(errors="replace").rstrip("\r\n")
            self.log.append((tls, cmd))
            verb = cmd.split(" ")[0].split(":")[0].upper()
            if verb == "EHLO":
                c.sendall(b"250-scripted\r\n" + (b"" if tls else
                          b"250-STARTTLS\r\n") + b"250 8BITMIME\r\n")
            elif verb == "STARTTLS":
                c = self._starttls(c, f)
                if c is None:
                    return
                f, tls = LineReader(c), True
            elif verb == "DATA":
                c.sendall(b"354 go\r\n")
                data = b""
                while not data.endswith(b"\r\n.\r\n"):
                    line = f.readline()
                    if not line:
                        return
                    data += line
                self.messages.append((subject_of(data), tls))
                c.sendall(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                c.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                c.sendall(b"250 2.0.0 Ok\r\n")


# ---- the cases ----

def _cases(certs, ca_file):
    """(case, conf lines of its remote domain, receiver, expectation);
    expectation ("sent", tls on, SNI) or ("deferred", log text)."""
    c = {k: v[2] for k, v in certs.items()}
    notls = ("deferred", "TLS required but not offered by plain.tls.test")
    cases = []
    for r in ("good", "expired", "wrongname", "selfsigned", "plain"):
        tls = r != "plain"
        sni = host(r) if tls else None
        cases += [
            ("none-" + r, "tls none", r, ("sent", False, None)),
            ("opp-" + r, "tls opportunistic", r, ("sent", tls, sni)),
            ("req-" + r, "tls required", r,
             ("sent", True, sni) if tls else notls),
        ]
    cases += [
        ("opp-broken", "tls opportunistic", "broken", ("sent", False, None)),
        ("req-broken", "tls required", "broken",
         ("deferred", "TLS with broken.tls.test[127.0.0.7]:")),
        ("req-inject", "tls required", "inject",
         ("sent", True, host("inject"))),
    ]
    ca = 'tls verify; tls-ca-file "%s"' % ca_file
    cases += [
        ("ver-good", ca, "good", ("sent", True, host("good"))),
        ("ver-expired", ca, "expired",
         ("deferred", "certificate has expired")),
        ("ver-wrongname", ca, "wrongname", ("deferred", "hostname mismatch")),
        ("ver-selfsigned", ca, "selfsigned",
         ("deferred", "self-signed certificate")),
        ("ver-plain", ca, "plain", notls),
        # the system's store does not know the test CA
        ("ver-system", "tls verify; tls-ca-file system", "good",
         ("deferred", "unable to get local issuer certificate")),
    ]
    pins = {
        "good": cert_pin(c["good"]),
        "expired": openssl_key_pin(certs["expired"][0]),
        "wrongname": openssl_cert_pin(certs["wrongname"][0]),
        "selfsigned": "%s %s" % (cert_pin(c["good"]),
                                 key_pin(c["selfsigned"])),
        "plain": cert_pin(c["good"]),
    }
    for r, pin in pins.items():
        cases.append(("fp-" + r, "tls fingerprint; tls-fingerprint " + pin, r,
                      ("sent", True, host(r)) if r != "plain" else notls))
    cases.append(("fp-mismatch", "tls fingerprint; tls-fingerprint "
                  + key_pin(c["good"]), "selfsigned",
                  ("deferred", "certificate fingerprint mismatch: the "
                   "certificate is " + cert_pin(c["selfsigned"]))))
    return cases


# by route "[127.0.0.2]", by MX, through the smart host of server "smart"
EXTRA_CASES = [
    ("ver-literal", "good", ("sent", True, None)),
    ("ver-mx-good", "good", ("sent", True, host("good"))),
    ("ver-mx-wrong", "wrongname", ("deferred", "hostname mismatch")),
    ("smart", "good", ("sent", True, host("good"))),
]


class Env:
    pass


def _domains(cases, ca_file):
    out = []
    for case, conf, r, _ in cases:
        out.append('    domain "%s.test" remote { route "%s"; %s }'
                   % (case, host(r), conf))
    ca = 'tls verify; tls-ca-file "%s"' % ca_file
    out.append('    domain "ver-literal.test" remote { route "[%s]"; %s }'
               % (ADDR["good"], ca))
    out.append('    domain "ver-mx-good.test" remote { %s }' % ca)
    out.append('    domain "ver-mx-wrong.test" remote { %s }' % ca)
    return "\n".join(out)


def _smart_server(wd, port, ca_file):
    mr = wd / "smart-mailroot"
    mr.mkdir()
    mh.make_traversable(mr)
    return ('server "smart" {\n    listen 127.0.0.1:%d\n    mailroot "%s"\n'
            '    relay allow 127.0.0.1\n    delivery {\n'
            '        smart-host "%s"\n'
            '        outbound { port %d; tls verify; tls-ca-file "%s" }\n'
            '    }\n}' % (port, mr, host("good"), PORT[0], ca_file))


PORT = [None]


def message(case):
    return mh.crlf("From: %s\nTo: u@%s.test\nSubject: %s\n\nbody\n"
                   % (SENDER, case, case))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env()
    wd = tmp_path_factory.mktemp("tlspolicy")
    mh.make_traversable(wd)
    certs, ca_file = make_certs(wd)
    port = PORT[0] = mh.free_port()
    e.stop = []
    e.receivers = {}
    for r in ("good", "expired", "wrongname", "selfsigned"):
        e.receivers[r] = Receiver(r, port, *certs[r][:2]).start()
        e.stop.append(e.receivers[r])
    e.receivers["plain"] = Receiver("plain", port).start()
    e.stop.append(e.receivers["plain"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*map(str, certs["inject"][:2]))
    for r in ("broken", "inject"):
        e.receivers[r] = Scripted(r, port, ctx)
        e.receivers[r].start()
        e.stop.append(e.receivers[r])
    dns = DNSServer(wd)
    for r, a in ADDR.items():
        dns.a(host(r), a)
    dns.mx("ver-mx-good.test", 10, host("good"))
    dns.mx("ver-mx-wrong.test", 10, host("wrongname"))
    dns.start()
    e.cases = _cases(certs, ca_file)
    smart_port = mh.free_port()
    e.mr = mh.Mailroot(
        wd, name="tlspolicy",
        global_extra="resolver %s\n%s" % (dns.resolver,
                                        _smart_server(wd, smart_port,
                                                      ca_file)),
        server_extra="    limits { messages-per-connection 1 }\n"
                     "    delivery { outbound { port %d } }\n%s"
                     % (port, _domains(e.cases, ca_file)))
    try:
        e.mr.start()
        for case, *_ in e.cases + EXTRA_CASES:
            if case != "smart":
                mh.send(e.mr.port, SENDER, ["u@%s.test" % case],
                        message(case))
        mh.send(smart_port, SENDER, ["u@smart.test"], message("smart"))
        yield e
    finally:
        problems = e.mr.stop()
        for s in e.stop:
            s.stop()
        dns.stop()
    assert not problems, "%s\n%s" % (problems, e.mr.log_text()[-20000:])


def status_line(mr, case):
    for line in mr.log_text().splitlines():
        if "to=<u@%s.test>" % case in line and "status=" in line:
            return line
    return None


def check(env, case, receiver, expect):
    r = env.receivers[receiver]
    mr = env.mr
    if expect[0] == "sent":
        got = mh.wait_until(lambda: r.got(case), WAIT, 0.1)
        assert got, "%s: not delivered; %s\n%s" % (
            case, status_line(mr, case), mr.log_text()[-5000:])
        assert len(got) == 1, got
        assert got[0][1] == expect[1], "%s: TLS %s" % (case, got[0])
        if len(got[0]) > 2:
            assert got[0][2] == expect[2], "%s: SNI %r" % (case, got[0])
        assert mh.wait_until(lambda: status_line(mr, case), WAIT, 0.1)
        assert "status=sent" in status_line(mr, case)
        return
    line = mh.wait_until(lambda: status_line(mr, case), WAIT, 0.1)
    assert line, "%s: no status line\n%s" % (case, mr.log_text()[-5000:])
    assert "status=deferred" in line and expect[1] in line, line
    assert r.got(case) == [], "%s reached %s" % (case, receiver)
    # kept for the next attempt: its queue file is still there
    qid = re.search(r"(\w+): to=<", line).group(1)
    assert any(qid in str(f) for f in mr.queue_files()), (
        qid, mr.queue_files())


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        names = []
        for r in ("good", "expired", "wrongname", "selfsigned", "plain"):
            names += ["none-" + r, "opp-" + r, "req-" + r, "fp-" + r]
            if r != "plain":
                names.append("ver-" + r)
        names += ["ver-plain", "ver-system", "fp-mismatch", "opp-broken",
                  "req-broken", "req-inject"]
        names += [c for c, _, _ in EXTRA_CASES]
        metafunc.parametrize("case", names)


def test_policy(env, case):
    table = {c: (r, x) for c, _, r, x in env.cases}
    table.update({c: (r, x) for c, r, x in EXTRA_CASES})
    receiver, expect = table[case]
    check(env, case, receiver, expect)


def test_no_plain_text_after_failed_handshake(env):
    """required: the handshake failed, the mail was not sent in plain text
    on that connection or another; opportunistic: sent in plain on a new
    connection."""
    check(env, "req-broken", "broken", next(
        x for c, _, _, x in env.cases if c == "req-broken"))
    check(env, "opp-broken", "broken", ("sent", False, None))
    mails = [cmd for tls, cmd in env.receivers["broken"].log
             if cmd.startswith("RCPT")]
    assert mails == ["RCPT TO:<u@opp-broken.test>"], \
        env.receivers["broken"].log


def test_injected_reply_discarded(env):
    """The reply sent with the 220 to STARTTLS was thrown away: after the
    handshake the client said EHLO again and the session went on over
    TLS; the log says what was discarded."""
    check(env, "req-inject", "inject", ("sent", True, host("inject")))
    log = env.receivers["inject"].log
    verbs = [(tls, cmd.split(" ")[0].split(":")[0]) for tls, cmd in log]
    assert verbs[:4] == [(False, "EHLO"), (False, "STARTTLS"),
                         (True, "EHLO"), (True, "MAIL")], log
    assert "sent %d bytes after 220 to STARTTLS, before the TLS " \
        "handshake: discarded" % len(b"250 2.0.0 injected\r\n") \
        in env.mr.log_text()
