"""
dns_server - a real DNS server on loopback for the integration tests.

A private unbound (Debian's `unbound`) answers from local-data only: it is
started in the foreground with a configuration in the test's directory,
listens on 127.0.0.1 (and ::1 when asked) at a port of its own, never
recurses to the Internet and does no DNSSEC.  Every name in a zone the
test declared and gave no record is NXDOMAIN; a name with records of
other types is NODATA (an implicit MX for a domain with only an A).

    dns = DNSServer(workdir)
    dns.mx("example.test", 10, "mx1.example.test")
    dns.a("mx1.example.test", "127.0.0.2")
    dns.aaaa("v6.example.test", "::1")
    dns.null_mx("nomail.test")          # MX 0 . (RFC 7505)
    dns.ptr("127.0.0.2", "mx1.example.test")
    dns.txt("_mta-sts.example.test", "v=STSv1; id=1")
    dns.servfail("broken.test")         # every query under it: SERVFAIL
    dns.start()                         # records are fixed from here on
    conf = "resolver %s" % dns.resolver # "127.0.0.1@PORT"
    dns.query("example.test", "MX")     # -> (rcode, [rdata bytes])
    dns.set_txt("_mta-sts.example.test", "v=STSv1; id=2")
    dns.restart()                       # the same port, the new records
    dns.stop()

Names under `test.` (RFC 6761) that the test did not declare are
NXDOMAIN too; other top-level names are refused: nothing leaves the host.
A SERVFAIL zone is delegated (stub-zone) to a small responder in this
module that answers SERVFAIL to everything, so unbound, as a resolver
whose authoritative server fails, answers SERVFAIL too.
"""

import ipaddress
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import mailroot_harness

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
START_TIMEOUT = 30.0

_NODEFAULT = ("localhost.", "127.in-addr.arpa.",
              "1." + "0." * 31 + "ip6.arpa.")

TYPES = {"A": 1, "NS": 2, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}


def _free_udp_tcp_port(host):
    """A port free for both UDP and TCP on host, below the ephemeral
    range."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(1000):
        port = random.randrange(*mailroot_harness.port_range())
        socks = []
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(fam, kind)
                socks.append(s)
                s.bind((host, port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return port
    raise AssertionError("no free UDP+TCP port on %s" % host)


def _fqdn(name):
    return name.rstrip(".").lower() + "."


def _wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


class _Failing(threading.Thread):
    """A UDP DNS server that answers SERVFAIL to every query."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def run(self):
        while True:
            try:
                q, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if len(q) < 12:
                continue
            qid, flags = struct.unpack_from(">HH", q)
            hdr = struct.pack(">HHHHHH", qid, 0x8000 | (flags & 0x0100) | 2,
                              0, 0, 0, 0)
            try:
                self.sock.sendto(hdr, peer)
            except OSError:
                return

    def stop(self):
        self.sock.close()


class DNSServer:
    """One private unbound serving the test's zones."""

    def __init__(self, workdir, host="127.0.0.1", ipv6=False):
        self.dir = Path(workdir) / ("dns-%d" % random.randrange(1 << 30))
        self.dir.mkdir(parents=True)
        self.host = host
        self.ipv6 = ipv6
        self.port = None
        self.proc = None
        self.zones = set()          # static zones (answers from records)
        self.records = []           # "name TTL IN TYPE data"
        self.ptrs = []              # (ip, name)
        self.failing = []           # zones answered with SERVFAIL
        self._failer = None

    # -- declaring records (before start) ---------------------------------

    def zone(self, name):
        """Makes name a zone of ours: every name under it without records
        is NXDOMAIN."""
        self.zones.add(_fqdn(name))
        return self

    def _zone_of(self, name):
        labels = _fqdn(name).rstrip(".").split(".")
        # the registrable part: the last two labels ("example.test.")
        self.zone(".".join(labels[-2:]) if len(labels) > 1 else labels[0])

    def record(self, name, rtype, data, ttl=60):
        assert self.proc is None, "records are fixed once started"
        self._zone_of(name)
        self.records.append("%s %d IN %s %s" % (_fqdn(name), ttl, rtype,
                                                data))
        return self

    def mx(self, domain, pref, host):
        return self.record(domain, "MX", "%d %s" % (pref, _fqdn(host)))

    def null_mx(self, domain):
        return self.record(domain, "MX", "0 .")

    def a(self, name, ip):
        assert ipaddress.ip_address(ip).version == 4
        return self.record(name, "A", ip)

    def aaaa(self, name, ip):
        assert ipaddress.ip_address(ip).version == 6
        return self.record(name, "AAAA", ip)

    def txt(self, name, text, ttl=0):
        """One TXT record of one string (no double quote in text); TTL 0
        by default, so that a changed record is seen at once."""
        assert '"' not in text and len(text) < 256
        return self.record(name, "TXT", '"%s"' % text, ttl=ttl)

    def set_txt(self, name, text, ttl=0):
        """Replaces name's TXT records (takes effect at restart())."""
        prefix = "%s " % _fqdn(name)
        self.records = [r for r in self.records
                        if not (r.startswith(prefix) and " IN TXT " in r)]
        saved, self.proc = self.proc, None
        self.txt(name, text, ttl)
        self.proc = saved
        return self

    def ptr(self, ip, name):
        ipaddress.ip_address(ip)
        assert self.proc is None, "records are fixed once started"
        self.ptrs.append((ip, _fqdn(name)))
        return self

    def nxdomain(self, name):
        """name (and all under it) does not exist."""
        self.zone(name)
        return self

    def servfail(self, zone):
        self.failing.append(_fqdn(zone))
        return self

    # -- running ------------------------------------------------------------

    @property
    def resolver(self):
        """The value of mailroot.conf's `resolver` setting."""
        return "%s@%d" % (self.host, self.port)

    def _config(self, failing_port):
        q = lambda s: '"%s"' % s  # noqa: E731
        lines = ["server:",
                 "  port: %d" % self.port,
                 "  interface: %s" % self.host,
                 "  do-daemonize: no",
                 '  username: ""',
                 '  chroot: ""',
                 "  directory: %s" % q(self.dir),
                 "  pidfile: %s" % q(self.dir / "unbound.pid"),
                 '  logfile: ""',
                 "  use-syslog: no",
                 "  verbosity: 1",
                 "  num-threads: 1",
                 "  so-reuseport: no",
                 "  do-ip6: %s" % ("yes" if self.ipv6 or ":" in self.host
                                    else "no"),
                 '  module-config: "iterator"',
                 "  access-control: 127.0.0.0/8 allow",
                 "  access-control: ::1/128 allow",
                 "  do-not-query-localhost: no",
                 # nothing is looked up outside our zones
                 '  local-zone: "." refuse']
        # unbound's own answers for localhost and the loopback reverse
        # names would hide the test's records for 127.0.0.x and ::1
        lines += ['  local-zone: "%s" nodefault' % z for z in _NODEFAULT]
        if self.ipv6 and ":" not in self.host:
            lines.append("  interface: ::1")
        for z in sorted(self.zones):
            lines.append('  local-zone: %s static' % q(z))
        for r in self.records:
            # a TXT record's string is in double quotes: single outside
            lines.append("  local-data: %s" % ("'%s'" % r if '"' in r
                                                else q(r)))
        for ip, name in self.ptrs:
            lines.append("  local-data-ptr: %s" % q("%s %s" % (ip, name)))
        for z in self.failing:
            lines.append("  local-zone: %s transparent" % q(z))
        for z in self.failing:
            lines += ["stub-zone:", "  name: %s" % q(z),
                      "  stub-addr: 127.0.0.1@%d" % failing_port]
        return "\n".join(lines) + "\n"

    def restart(self):
        """Stops unbound and starts it again on the same port, with the
        records as they are now (set_txt)."""
        port = self.port
        self.stop()
        return self.start(port=port)

    def start(self, port=None):
        assert Path(UNBOUND).exists(), \
            "unbound is not installed (contrib/setup installs it)"
        for _ in range(5):
            self.port = port or _free_udp_tcp_port(self.host)
            if self._failer is None:
                self._failer = _Failing()
                self._failer.start()
            conf = self.dir / "unbound.conf"
            conf.write_text(self._config(self._failer.port))
            self.log = open(self.dir / "unbound.log", "ab")
            self.proc = subprocess.Popen(
                [UNBOUND, "-d", "-c", str(conf)], stdin=subprocess.DEVNULL,
                stdout=self.log, stderr=self.log, start_new_session=True)
            if self._wait_ready():
                return self
            self.stop()
        raise AssertionError("unbound did not start:\n%s" % self.log_text())

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        for _ in range(int(START_TIMEOUT / 0.05) + 1):
            if self.proc.poll() is not None:
                return False
            try:
                self.query("localhost", "A", timeout=0.5)
                return True
            except OSError:
                pass
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return False

    def log_text(self):
        try:
            return (self.dir / "unbound.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self._failer is not None:
            self._failer.stop()
            self._failer = None
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- asking it ------------------------------------------------------------

    def query(self, name, rtype="A", timeout=5.0):
        """One UDP query; returns (rcode, [rdata bytes of the answers])."""
        qtype = TYPES[rtype]
        qid = random.randrange(1 << 16)
        pkt = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + \
            _wire(name) + struct.pack(">HH", qtype, 1)
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(pkt, (self.host, self.port))
            for _ in range(10):
                data = s.recv(4096)
                if struct.unpack_from(">H", data)[0] == qid:
                    break
            else:
                raise OSError("no matching DNS answer")
        return self._parse(data, qtype)

    @staticmethod
    def _skip_name(data, off):
        for _ in range(128):
            n = data[off]
            if n == 0:
                return off + 1
            if n & 0xC0 == 0xC0:
                return off + 2
            off += 1 + n
        raise ValueError("bad name in DNS answer")

    def _parse(self, data, qtype):
        _, flags, qd, an = struct.unpack_from(">HHHH", data)
        off = 12
        for _ in range(qd):
            off = self._skip_name(data, off) + 4
        out = []
        for _ in range(an):
            off = self._skip_name(data, off)
            rtype, _, _, rdlen = struct.unpack_from(">HHIH", data, off)
            off += 10
            if rtype == qtype:
                out.append(data[off:off + rdlen])
            off += rdlen
        return flags & 0xF, out


class DnsServer(DNSServer):
    """The same server fed with zone-file lines ("owner TTL IN TYPE
    data"), as test_rdns.py writes its PTR, A and AAAA records:

        dns = DnsServer(workdir).start([
            "4.0.0.127.in-addr.arpa. 60 IN PTR good.example.",
            "good.example. 60 IN A 127.0.0.4"])
    """

    def start(self, records=()):
        for line in records:
            name, ttl, _cls, rtype, data = line.split(None, 4)
            self.record(name, rtype, data, int(ttl))
        return super().start()
