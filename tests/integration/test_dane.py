"""
DANE for direct MX delivery (RFC 7672; mailroot.conf(5) `dane`,
`dnssec-trust-anchor`) against a DNSSEC-signed zone served by a real DNS
server (Debian's nsd) on loopback, signed here with ldnsutils
(ldns-keygen, ldns-signzone); mailroot's resolver forwards to it and
validates from the test's trust anchor.  Receivers are aiosmtpd servers
with STARTTLS on 127.0.0.150-155, all on one port (the outbound port):

    ee.dane.test        TLSA 3 1 1 of the receiver's key: delivered
    ta.dane.test        TLSA 2 0 1 of the test CA that issued the
                        receiver's certificate: delivered
    bad.dane.test       TLSA 3 1 1 of another key: deferred, one log line,
                        the message still queued, nothing sent in plain
    plain.dane.test     TLSA present, the receiver offers no STARTTLS:
                        deferred, nothing sent in plain
    insecure.test       an unsigned zone (with a TLSA that matches
                        nothing, which must be ignored): delivered with
                        opportunistic TLS
    bogus.test          signed, then its MX changed after signing:
                        deferred (bogus)
    nodane.dane.test    like bad, in a remote domain with `dane no`: the
                        configured (opportunistic) policy, delivered
    pkix.dane.test      only a PKIX-EE(1) record, which SMTP cannot use:
                        TLS mandatory but unauthenticated, delivered
    pkixplain.dane.test only a PKIX-TA(0) record, no STARTTLS: deferred

The keys, the zone and the TLSA records (from the receivers'
certificates) are made when the module starts.
"""

import datetime
import hashlib
import re
import shutil
import socket
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

SENDER = "sender@local.test"
WAIT = 90.0
NSD_BIN = shutil.which("nsd") or "/usr/sbin/nsd"
DNS_ADDR = "127.0.0.149"
ADDR = {"ee": "127.0.0.150", "ta": "127.0.0.151", "bad": "127.0.0.152",
        "plain": "127.0.0.153", "insecure": "127.0.0.154",
        "bogus": "127.0.0.155", "nodane": "127.0.0.156",
        "pkix": "127.0.0.157", "pkixplain": "127.0.0.158"}
DOMAIN = {"ee": "ee.dane.test", "ta": "ta.dane.test",
          "bad": "bad.dane.test", "plain": "plain.dane.test",
          "insecure": "insecure.test", "bogus": "bogus.test",
          "nodane": "nodane.dane.test", "pkix": "pkix.dane.test",
          "pkixplain": "pkixplain.dane.test"}


def mxhost(case):
    return "mx." + DOMAIN[case]


# ---- certificates ----

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, key, issuer, issuer_key, names=(), ca=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    b = (x509.CertificateBuilder().subject_name(_name(subject))
         .issuer_name(_name(issuer)).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - day).not_valid_after(now + 30 * day))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                            critical=True)
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in names]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_chain(directory, stem, certs, key):
    crt, keyf = directory / (stem + ".crt"), directory / (stem + ".key")
    crt.write_bytes(b"".join(_pem(c) for c in certs))
    keyf.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return crt, keyf


def spki_sha256(cert):
    return hashlib.sha256(cert.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def cert_sha256(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


def make_certs(directory):
    """{case: (crt, key)} and the TLSA data {case: "u s m hex"}."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("mailroot DANE test CA", ca_key, "mailroot DANE test CA",
               ca_key, ca=True)
    files, tlsa = {}, {}
    for case in ADDR:
        key = ec.generate_private_key(ec.SECP256R1())
        if case == "ta":
            cert = _cert(mxhost(case), key, "mailroot DANE test CA", ca_key,
                         names=[mxhost(case)])
            files[case] = _write_chain(directory, case, [cert, ca], key)
            tlsa[case] = "2 0 1 " + cert_sha256(ca)
            continue
        cert = _cert(mxhost(case), key, mxhost(case), key,
                     names=[mxhost(case)])
        files[case] = _write_chain(directory, case, [cert], key)
        tlsa[case] = "3 1 1 " + spki_sha256(cert)
    other = ec.generate_private_key(ec.SECP256R1())
    wrong = "3 1 1 " + spki_sha256(_cert("x", other, "x", other))
    for case in ("bad", "insecure", "nodane"):
        tlsa[case] = wrong
    # PKIX-EE and PKIX-TA: unusable for SMTP (RFC 7672 3.1.3)
    tlsa["pkix"] = "1" + tlsa["pkix"][1:]
    tlsa["pkixplain"] = "0 0 1 " + "00" * 32
    return files, tlsa


# ---- the DNS server ----

def _free_udp_tcp_port(host):
    for _ in range(1000):
        port = mh.free_port()
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, port))
            s.close()
        except OSError:
            continue
        return port
    raise AssertionError("no free port on %s" % host)


def _zone_text(origin, records):
    head = ["$ORIGIN %s." % origin, "$TTL 60",
            "@ IN SOA ns.%s. admin.%s. 1 3600 600 86400 60" % (origin,
                                                               origin),
            "@ IN NS ns.%s." % origin, "ns IN A %s" % DNS_ADDR]
    return "\n".join(head + records) + "\n"


def _case_records(case, port, tlsa, origin):
    label = DOMAIN[case][:-len(origin)].rstrip(".")
    mx = "mx." + label if label else "mx"
    return ["%s IN MX 10 %s" % (label or "@", mx),
            "%s IN A %s" % (mx, ADDR[case]),
            "_%d._tcp.%s IN TLSA %s" % (port, mx, tlsa[case])]


def _sign(d, origin, text):
    """Signs the zone with a new KSK and ZSK: the signed file and the KSK
    (the trust anchor)."""
    (d / origin).write_text(text)
    keys = []
    for extra in (["-k"], []):
        out = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256"] + extra
                             + [origin], cwd=d, check=True,
                             capture_output=True, text=True).stdout.strip()
        keys.append(out)
    subprocess.run(["ldns-signzone", "-f", origin + ".signed", origin]
                   + keys, cwd=d, check=True, capture_output=True)
    anchor = (d / (keys[0] + ".key")).read_text()
    return origin + ".signed", anchor


def _tamper(path):
    """Changes the MX record's preference after signing: its signature no
    longer verifies."""
    text = path.read_text()
    new = re.sub(r"(\tMX\t)10 ", r"\g<1>20 ", text, count=1)
    assert new != text, text
    path.write_text(new)


class NSDServer:
    def __init__(self, directory, zones):
        self.dir = directory
        self.port = _free_udp_tcp_port(DNS_ADDR)
        d = str(directory)
        lines = ["server:", "  ip-address: %s@%d" % (DNS_ADDR, self.port),
                 '  username: ""', '  chroot: ""', '  zonesdir: "%s"' % d,
                 '  pidfile: "%s/nsd.pid"' % d, '  database: ""',
                 '  zonelistfile: "%s/zone.list"' % d,
                 '  xfrdfile: "%s/xfrd.state"' % d,
                 '  xfrdir: "%s"' % d, '  logfile: "%s/nsd.log"' % d,
                 "  server-count: 1", "  do-ip6: no", "  verbosity: 1",
                 "remote-control:", "  control-enable: no"]
        for name, zonefile in zones:
            lines += ["zone:", "  name: %s" % name,
                      "  zonefile: %s" % zonefile]
        (directory / "nsd.conf").write_text("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [NSD_BIN, "-d", "-c", str(self.dir / "nsd.conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        ok = mh.wait_until(lambda: self._answers() or
                           self.proc.poll() is not None, 30.0, 0.05)
        assert ok and self.proc.poll() is None, "nsd did not start: %s" % (
            (self.dir / "nsd.log").read_text()
            if (self.dir / "nsd.log").exists() else "")

    def _answers(self):
        q = (b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             b"\x04dane\x04test\x00\x00\x06\x00\x01")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            s.sendto(q, (DNS_ADDR, self.port))
            return s.recv(4096)[:2] == b"\x12\x34"
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# ---- receivers ----

def subject_of(data):
    m = re.search(rb"^Subject: (\S+)", data, re.M)
    return m.group(1).decode() if m else None


class Receiver:
    """aiosmtpd on ADDR[case]:port with STARTTLS (crt/key), or without.
    messages: (subject, TLS on, SNI).  Plain text is accepted: a case
    that must not send in plain text shows it by receiving nothing."""

    def __init__(self, case, port, crt=None, key=None):
        self.messages = []
        self._lock = threading.Lock()
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
                    sni = getattr(session.ssl.get("ssl_object"), "mr_sni",
                                  None)
                with rec._lock:
                    rec.messages.append((subject_of(
                        envelope.original_content), session.ssl is not None,
                        sni))
                return "250 2.0.0 Ok"

        kw = dict(tls_context=ctx, require_starttls=False) if ctx else {}
        self._c = Controller(Handler(), hostname=ADDR[case], port=port,
                             decode_data=False, ready_timeout=10.0, **kw)

    @staticmethod
    def _sni(sslobj, name, ctx):
        sslobj.mr_sni = name

    def start(self):
        self._c.start()
        return self

    def stop(self):
        self._c.stop()

    def got(self, subject):
        with self._lock:
            return [m for m in self.messages if m[0] == subject]


# ---- the module's mailroot ----

class Env:
    pass


def _zones(wd, port, tlsa):
    """Writes and signs the zones; (nsd zone list, trust anchor text)."""
    signed = ["ee", "ta", "bad", "plain", "nodane", "pkix", "pkixplain"]
    recs = []
    for case in signed:
        recs += _case_records(case, port, tlsa, "dane.test")
    dane_file, dane_ta = _sign(wd, "dane.test", _zone_text("dane.test",
                                                           recs))
    bogus_file, bogus_ta = _sign(wd, "bogus.test", _zone_text(
        "bogus.test", _case_records("bogus", port, tlsa, "bogus.test")))
    _tamper(wd / bogus_file)
    (wd / "insecure.test").write_text(_zone_text(
        "insecure.test", _case_records("insecure", port, tlsa,
                                       "insecure.test")))
    zones = [("dane.test", dane_file), ("bogus.test", bogus_file),
             ("insecure.test", "insecure.test")]
    return zones, dane_ta + bogus_ta


def message(case):
    return mh.crlf("From: %s\nTo: u@%s\nSubject: %s\n\nbody\n"
                   % (SENDER, DOMAIN[case], case))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    for tool in (NSD_BIN, "ldns-keygen", "ldns-signzone"):
        assert shutil.which(tool), "%s missing (contrib/setup)" % tool
    e = Env()
    wd = tmp_path_factory.mktemp("dane")
    mh.make_traversable(wd)
    port = e.port = mh.free_port()
    files, tlsa = make_certs(wd)
    e.receivers = {}
    for case in ADDR:
        tls = files[case] if "plain" not in case else (None, None)
        e.receivers[case] = Receiver(case, port, *tls).start()
    zones, anchor = _zones(wd, port, tlsa)
    (wd / "anchor.key").write_text(anchor)
    (wd / "anchor.key").chmod(0o644)
    dns = NSDServer(wd, zones)
    try:
        dns.start()
        e.mr = mh.Mailroot(
            wd, name="dane",
            global_extra='resolver %s@%d\ndnssec-trust-anchor "%s"'
                         % (DNS_ADDR, dns.port, wd / "anchor.key"),
            server_extra='    delivery { outbound { port %d } }\n'
                         '    domain "nodane.dane.test" remote { dane no }'
                         % port)
        e.mr.start()
        for case in ADDR:
            mh.send(e.mr.port, SENDER, ["u@%s" % DOMAIN[case]],
                    message(case))
        yield e
    finally:
        problems = e.mr.stop() if hasattr(e, "mr") else None
        for r in e.receivers.values():
            r.stop()
        dns.stop()
    assert not problems, "%s\n%s" % (problems, e.mr.log_text()[-20000:])


def status_line(mr, case):
    for line in mr.log_text().splitlines():
        if "to=<u@%s>" % DOMAIN[case] in line and "status=" in line:
            return line
    return None


def delivered(env, case, tls=True):
    r, mr = env.receivers[case], env.mr
    got = mh.wait_until(lambda: r.got(case), WAIT, 0.1)
    assert got, "%s: not delivered; %s\n%s" % (
        case, status_line(mr, case), mr.log_text()[-5000:])
    assert got == [(case, tls, mxhost(case) if tls else None)], got
    assert mh.wait_until(lambda: status_line(mr, case), WAIT, 0.1)
    assert "status=sent" in status_line(mr, case)


def deferred(env, case, why):
    """Deferred with why in the status line, nothing received (so nothing
    in plain text either), the message still queued."""
    mr = env.mr
    line = mh.wait_until(lambda: status_line(mr, case), WAIT, 0.1)
    assert line, "%s: no status line\n%s" % (case, mr.log_text()[-5000:])
    assert "status=deferred" in line and why in line, line
    assert env.receivers[case].got(case) == []
    qid = re.search(r"(\w+): to=<", line).group(1)
    assert any(qid in str(f) for f in mr.queue_files()), (
        qid, mr.queue_files())
    return line


def test_dane_ee_matches(env):
    """TLSA 3 1 1 of the receiver's key: delivered over TLS, SNI the MX
    host (a self-signed certificate: DANE-EE checks neither chain nor
    name)."""
    delivered(env, "ee")


def test_dane_ta_matches(env):
    """TLSA 2 0 1 of the test CA, which the receiver sends in its chain:
    delivered."""
    delivered(env, "ta")


def test_mismatch_defers_with_one_clear_line(env):
    """TLSA 3 1 1 of another key: deferred (4.7.5), kept in the queue,
    never sent in plain text; the log says which TLSA RRset failed."""
    want = "4.7.5 DANE: no TLSA record of _%d._tcp.%s matches" % (
        env.port, mxhost("bad"))
    deferred(env, "bad", want)
    assert want in env.mr.log_text()


def test_no_starttls_defers(env):
    deferred(env, "plain", "4.7.5 DANE: %s[%s]" % (mxhost("plain"),
                                                   ADDR["plain"]))


def test_insecure_zone_is_opportunistic(env):
    """Unsigned: its TLSA record (which matches nothing) is ignored, the
    self-signed certificate is taken as opportunistic TLS takes it."""
    delivered(env, "insecure")


def test_bogus_mx_defers(env):
    deferred(env, "bogus", "DNSSEC validation failed (bogus answer)")


def test_dane_no_keeps_the_configured_policy(env):
    """dane no: the mismatching TLSA is not consulted."""
    delivered(env, "nodane")



def test_unusable_tlsa_still_needs_tls(env):
    """RFC 7672 2.2: secure TLSA records that are all unusable make TLS
    mandatory without authentication: the self-signed receiver gets the
    mail over TLS, the one without STARTTLS gets nothing."""
    delivered(env, "pkix")
    deferred(env, "pkixplain", "4.7.5 DANE: %s[%s]:%d has TLSA records"
             % (mxhost("pkixplain"), ADDR["pkixplain"], env.port))
