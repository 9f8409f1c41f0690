"""
dns_server - a real DNS server on loopback for the integration tests:
Debian's unbound, with a private configuration in the test's directory,
answering only the records the test gives it (every other name is
NXDOMAIN: nothing is asked of the Internet).

    dns = DnsServer(workdir).start([
        "4.0.0.127.in-addr.arpa. 60 IN PTR good.test.",
        "good.test. 60 IN A 127.0.0.4",
    ])
    ... resolver 127.0.0.1@<dns.port> in mailroot.conf ...
    dns.stop()

Records are zone-file lines (owner, TTL, class, type, data).  Every wait
is bounded; stop() is safe to call twice.
"""

import shutil
import socket
import struct
import subprocess
from pathlib import Path

import mailroot_harness as mh

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
START_TIMEOUT = 30.0

# unbound's own answers for localhost and its reverse names would hide
# the test's records for 127.0.0.x and ::1
_NODEFAULT = ("localhost.", "127.in-addr.arpa.",
              "1." + "0." * 31 + "ip6.arpa.")


def _udp_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _query(port, name, qtype=1, timeout=1.0):
    """One UDP query; the reply's rcode, or None without a reply."""
    labels = b"".join(bytes([len(p)]) + p.encode()
                      for p in name.rstrip(".").split(".")) + b"\0"
    msg = struct.pack(">HHHHHH", 0x4d52, 0x0100, 1, 0, 0, 0) + labels + \
        struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(msg, ("127.0.0.1", port))
            data = s.recv(4096)
        except OSError:
            return None
    if len(data) < 12 or data[:2] != b"\x4d\x52":
        return None
    return data[3] & 0x0f


class DnsServer:
    def __init__(self, workdir, name="dns"):
        self.dir = Path(workdir) / name
        self.dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.conf = self.dir / "unbound.conf"
        self.logfile = self.dir / "unbound.log"
        self.port = None
        self.proc = None

    def _config(self, records):
        lines = ["server:",
                 "  interface: 127.0.0.1",
                 "  port: %d" % self.port,
                 "  do-daemonize: no",
                 "  use-syslog: no",
                 '  logfile: ""',
                 '  chroot: ""',
                 '  username: ""',
                 '  pidfile: ""',
                 '  directory: "%s"' % self.dir,
                 "  do-ip6: no",
                 "  access-control: 127.0.0.0/8 allow",
                 '  module-config: "iterator"',
                 "  verbosity: 1",
                 '  local-zone: "." static']
        lines += ['  local-zone: "%s" nodefault' % z for z in _NODEFAULT]
        for r in records:
            assert '"' not in r and "\n" not in r, r
            lines.append('  local-data: "%s"' % r)
        lines += ["remote-control:", "  control-enable: no"]
        return "\n".join(lines) + "\n"

    def start(self, records):
        for _ in range(100):
            self.port = mh.free_port()
            if _udp_free(self.port):
                break
        self.conf.write_text(self._config(records))
        check = subprocess.run([UNBOUND + "-checkconf", str(self.conf)],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                [UNBOUND, "-d", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=str(self.dir), start_new_session=True)
        # up once it answers (NXDOMAIN for a name nobody gave it)
        up = mh.wait_until(
            lambda: self.proc.poll() is not None or
            _query(self.port, "up.invalid.") is not None,
            START_TIMEOUT, 0.1)
        if not up or self.proc.poll() is not None:
            self.stop()
            raise AssertionError("unbound did not start:\n%s" %
                                 self.logfile.read_text(errors="replace"))
        return self

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
