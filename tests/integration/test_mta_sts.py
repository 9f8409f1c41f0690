"""
MTA-STS (RFC 8461) for direct MX delivery, against real components on
loopback: the test DNS server (unbound, dns_server.py) serves the MX, the
`_mta-sts` TXT records and the policy host; a Python HTTPS server
(http.server + ssl) serves the policies with a certificate from a test CA;
aiosmtpd receivers offer STARTTLS with certificates from the same CA.
mailroot trusts the CA through `outbound tls-ca-file` and is told the
policy port by MAILROOT_TEST_MTA_STS_PORT (443 otherwise).

    enf    enforce, MX good.enf (valid certificate)        delivered, TLS
    rogue  enforce, MX not in the policy                   deferred, no
                                                           connection
    cert   enforce, MX certificate for another name       deferred, nothing
                                                           in plain text
    tst    testing, MX not listed, certificate for another
           name                                            logged, delivered
    idc    id 1 testing, then id 2 enforce with no MX      refetched, deferred
    cache  enforce, MX a (preferred, not listed), good;
           restart with the HTTPS server down              cached policy
                                                           still used

Addresses 127.0.0.160-169 are this file's alone.
"""

import datetime
import http.server
import ipaddress
import os
import re
import ssl
import threading

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import mailroot_harness as mh
from dns_server import DNSServer

SENDER = "sender@local.test"
WAIT = 90.0
HTTPS_ADDR = "127.0.0.160"
ADDR = {"good.enf.sts.test": "127.0.0.161",
        "mx.rogue.sts.test": "127.0.0.162",
        "mx.cert.sts.test": "127.0.0.163",
        "mx.tst.sts.test": "127.0.0.164",
        "a.cache.sts.test": "127.0.0.165",
        "good.cache.sts.test": "127.0.0.166",
        "mx.idc.sts.test": "127.0.0.167"}
DOMAINS = ("enf", "rogue", "cert", "tst", "idc", "cache")


def policy(mode, *mx, max_age=86400):
    return "version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n" % (
        mode, "".join("mx: %s\r\n" % m for m in mx), max_age)


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
    """The CA file, and a leaf (crt, key) per list of names."""
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("mta-sts test CA"))
          .issuer_name(_name("mta-sts test CA"))
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - day).not_valid_after(now + 30 * day)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_file, _ = _write(directory, "ca", ca, ca_key)

    def leaf(stem, names):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(names[0]))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - day).not_valid_after(now + 30 * day)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.DNSName(n) for n in names]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return _write(directory, stem, cert, key)

    leaves = {h: leaf(h, [h]) for h in ADDR}
    # certificates for a name other than the MX host's
    leaves["mx.cert.sts.test"] = leaf("wrong1", ["other.sts.test"])
    leaves["mx.tst.sts.test"] = leaf("wrong2", ["other.sts.test"])
    web = leaf("web", ["mta-sts.%s.sts.test" % d for d in DOMAINS])
    return ca_file, leaves, web


# ---- the policy server ----

class PolicyServer:
    """HTTPS on HTTPS_ADDR: policies[domain] at mta-sts.DOMAIN, each GET
    counted in hits[domain]."""

    def __init__(self, port, crt, key):
        self.policies = {}
        self.hits = {}
        self.lock = threading.Lock()
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0]
                dom = host[len("mta-sts."):] if host.startswith(
                    "mta-sts.") else host
                with srv.lock:
                    srv.hits[dom] = srv.hits.get(dom, 0) + 1
                    body = srv.policies.get(dom)
                if self.path != "/.well-known/mta-sts.txt" or body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.port = port
        self.httpd = http.server.ThreadingHTTPServer((HTTPS_ADDR, port),
                                                     Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(crt), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        if self.httpd is None:
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd = None

    def count(self, dom):
        with self.lock:
            return self.hits.get(dom, 0)


# ---- receivers ----

def subject_of(data):
    m = re.search(rb"^Subject: (\S+)", data, re.M)
    return m.group(1).decode() if m else None


class Receiver:
    """aiosmtpd on ADDR[host] offering STARTTLS; messages: (subject, tls)."""

    def __init__(self, host, port, crt, key):
        self.messages = []
        self.quits = 0
        self._cond = threading.Condition()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(crt), str(key))
        rec = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with rec._cond:
                    rec.messages.append(
                        (subject_of(envelope.original_content),
                         session.ssl is not None))
                    rec._cond.notify_all()
                return "250 2.0.0 Ok"

            async def handle_QUIT(self, server, session, envelope):
                with rec._cond:
                    rec.quits += 1
                return "221 Bye"

        self._c = Controller(Handler(), hostname=ADDR[host], port=port,
                             decode_data=False, ready_timeout=10.0,
                             tls_context=ctx, require_starttls=False)

    def start(self):
        self._c.start()
        return self

    def stop(self):
        self._c.stop()

    def got(self, subject):
        return [m for m in self.messages if m[0] == subject]


def message(subject):
    return mh.crlf("From: %s\nTo: u@x\nSubject: %s\n\nbody\n"
                   % (SENDER, subject))


def deferred(mr, rcpt, text, timeout=WAIT):
    def seen():
        return any("to=<%s>" % rcpt in line and "status=deferred" in line
                   and text in line for line in mr.log_text().splitlines())
    assert mh.wait_until(seen, timeout, 0.1), \
        "no deferred line with %r for %s:\n%s" % (text, rcpt,
                                                  mr.log_text()[-4000:])


def in_log(mr, text, timeout=WAIT):
    assert mh.wait_until(lambda: text in mr.log_text(), timeout, 0.1), \
        "%r not in the log:\n%s" % (text, mr.log_text()[-4000:])


# ---- the world ----

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("mta-sts")
    mh.make_traversable(d)
    ca_file, leaves, web = make_certs(d)
    smtp_port = mh.free_port()
    https = PolicyServer(mh.free_port(), *web).start()
    dns = DNSServer(d)
    for dom in DOMAINS:
        dns.a("mta-sts.%s.sts.test" % dom, HTTPS_ADDR)
    for h, a in ADDR.items():
        dns.a(h, a)
    dns.mx("enf.sts.test", 10, "good.enf.sts.test")
    dns.txt("_mta-sts.enf.sts.test", "v=STSv1; id=e1")
    https.policies["enf.sts.test"] = policy("enforce", "*.enf.sts.test")
    dns.mx("rogue.sts.test", 10, "mx.rogue.sts.test")
    dns.txt("_mta-sts.rogue.sts.test", "v=STSv1; id=r1")
    https.policies["rogue.sts.test"] = policy("enforce", "mail.rogue.sts.test")
    dns.mx("cert.sts.test", 10, "mx.cert.sts.test")
    dns.txt("_mta-sts.cert.sts.test", "v=STSv1; id=c1")
    https.policies["cert.sts.test"] = policy("enforce", "mx.cert.sts.test")
    dns.mx("tst.sts.test", 10, "mx.tst.sts.test")
    dns.txt("_mta-sts.tst.sts.test", "v=STSv1; id=t1")
    https.policies["tst.sts.test"] = policy("testing", "other.tst.sts.test")
    dns.mx("idc.sts.test", 10, "mx.idc.sts.test")
    dns.txt("_mta-sts.idc.sts.test", "v=STSv1; id=1")
    https.policies["idc.sts.test"] = policy("testing", "*.idc.sts.test")
    dns.mx("cache.sts.test", 5, "a.cache.sts.test")
    dns.mx("cache.sts.test", 10, "good.cache.sts.test")
    dns.txt("_mta-sts.cache.sts.test", "v=STSv1; id=k1")
    https.policies["cache.sts.test"] = policy("enforce",
                                              "good.cache.sts.test")
    dns.start()
    receivers = {h: Receiver(h, smtp_port, *leaves[h]).start()
                 for h in ADDR}
    env = dict(os.environ, MAILROOT_TEST_MTA_STS_PORT=str(https.port))
    mr = mh.Mailroot(
        d, name="sts", env=env,
        global_extra="resolver %s" % dns.resolver,
        server_extra='    delivery { outbound { port %d\n'
                     '        tls-ca-file "%s" } }' % (smtp_port, ca_file))
    mr.start()
    w = type("World", (), dict(mr=mr, dns=dns, https=https,
                               rcv=receivers))
    yield w
    problems = mr.stop()
    for r in receivers.values():
        r.stop()
    https.stop()
    dns.stop()
    assert not problems, problems


def send(w, rcpt, subject):
    mh.send(w.mr.port, SENDER, [rcpt], message(subject))


def wait_got(rcv, subject):
    ok = mh.wait_until(lambda: rcv.got(subject), WAIT, 0.1)
    assert ok, "%s not received" % subject
    return ok


def test_enforce_delivers_to_listed_mx_with_valid_certificate(world):
    send(world, "u@enf.sts.test", "enf1")
    (got,) = wait_got(world.rcv["good.enf.sts.test"], "enf1")
    assert got[1], "delivered without TLS"
    in_log(world.mr, "MTA-STS policy of enf.sts.test: mode enforce, id e1")


def test_enforce_defers_mx_not_in_policy(world):
    send(world, "u@rogue.sts.test", "rogue1")
    deferred(world.mr, "u@rogue.sts.test",
             "MTA-STS policy of rogue.sts.test (enforce, id r1): "
             "MX mx.rogue.sts.test not in the policy")
    assert not world.rcv["mx.rogue.sts.test"].messages
    assert world.mr.queue_files()


def test_enforce_defers_certificate_for_another_name(world):
    send(world, "u@cert.sts.test", "cert1")
    deferred(world.mr, "u@cert.sts.test",
             "MTA-STS policy of cert.sts.test (enforce, id c1): TLS with "
             "mx.cert.sts.test")
    # never in plain text after the refused handshake
    assert not world.rcv["mx.cert.sts.test"].messages
    assert world.mr.queue_files()


def test_testing_logs_and_delivers(world):
    send(world, "u@tst.sts.test", "tst1")
    wait_got(world.rcv["mx.tst.sts.test"], "tst1")
    log = world.mr.log_text()
    assert "MTA-STS policy of tst.sts.test (testing, id t1): MX " \
        "mx.tst.sts.test not in the policy" in log
    assert re.search(r"MTA-STS policy of tst\.sts\.test \(testing, id t1\): "
                     r"TLS with mx\.tst\.sts\.test\S+: .*would not deliver "
                     r"under enforce", log), log[-4000:]


def closed(rcv, n):
    """Waits for the n-th QUIT: deliverd's idle connection is gone, and
    the next message makes a new session (with its own policy lookup)."""
    assert mh.wait_until(lambda: rcv.quits >= n, WAIT, 0.1), \
        "the connection was not closed"


def test_id_change_refetches(world):
    rcv = world.rcv["mx.idc.sts.test"]
    send(world, "u@idc.sts.test", "idc1")
    wait_got(rcv, "idc1")
    assert world.https.count("idc.sts.test") == 1
    closed(rcv, 1)
    # the same id: the cached policy, no second fetch
    send(world, "u@idc.sts.test", "idc2")
    wait_got(rcv, "idc2")
    assert world.https.count("idc.sts.test") == 1
    closed(rcv, 2)
    # a new id: fetched again, and the new policy (enforce, another MX)
    # is the one that counts
    world.https.policies["idc.sts.test"] = policy("enforce",
                                                  "nomx.idc.sts.test")
    world.dns.set_txt("_mta-sts.idc.sts.test", "v=STSv1; id=2").restart()
    send(world, "u@idc.sts.test", "idc3")
    deferred(world.mr, "u@idc.sts.test",
             "MTA-STS policy of idc.sts.test (enforce, id 2): MX "
             "mx.idc.sts.test not in the policy")
    assert world.https.count("idc.sts.test") == 2
    assert not world.rcv["mx.idc.sts.test"].got("idc3")


def test_cached_policy_survives_restart_with_https_down(world):
    w = world
    send(w, "u@cache.sts.test", "cache1")
    wait_got(w.rcv["good.cache.sts.test"], "cache1")
    assert not w.rcv["a.cache.sts.test"].messages
    cached = w.mr.mta_sts_cache / "cache.sts.test"
    assert cached.exists()
    assert oct(w.mr.mta_sts_cache.stat().st_mode & 0o777) == "0o700"
    problems = w.mr.stop()
    assert not problems, problems
    # the policy server is down: only the cache on disk knows the policy
    # (without it, a.cache.sts.test, preferred, would get the message)
    w.https.stop()
    w.mr.start()
    send(w, "u@cache.sts.test", "cache2")
    wait_got(w.rcv["good.cache.sts.test"], "cache2")
    assert not w.rcv["a.cache.sts.test"].messages
    assert w.https.count("cache.sts.test") == 1
