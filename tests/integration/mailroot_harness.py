"""
mailroot_harness - drive a real mailrootd from the integration tests.

Standard library plus Debian's python3-aiosmtpd only.  Everything that
waits is bounded in time; every daemon started is stopped, and its log is
checked for sanitizer reports before the test may pass.
"""

import asyncio
import os
import pwd
import random
import signal
import smtplib
import socket
import subprocess
import threading
import time
from pathlib import Path

SRCDIR = Path(__file__).resolve().parents[2]
BUILDDIR = Path(os.environ.get("MAILROOT_BUILDDIR") or SRCDIR / "build").resolve()
MAILROOTD = BUILDDIR / "master" / "mailrootd"

IS_ROOT = os.geteuid() == 0
# The users a root mailrootd runs its children as (mailroot.conf defaults).
USERS = {"queued": "mailroot", "smtpd": "mailroot-smtpd",
         "deliverd": "mailroot-deliver"}

READY_LINE = "mailrootd: ready"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer")


def wait_until(pred, timeout, interval=0.05):
    """Calls pred until it returns a true value or timeout seconds pass.
    Returns the last value of pred."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
    return pred()


_handed_out = set()


def port_range():
    """The ports this test process picks from: below the kernel's
    ephemeral range (32768 and up); with pytest-xdist, each worker (gw0,
    gw1, ...) has a slice of its own, so two workers never pick one port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit():
        return 10000, 32000
    n = int(worker[2:]) % 8
    return 10000 + n * 2750, 10000 + (n + 1) * 2750


def free_port():
    """A loopback TCP port that was free a moment ago and that this test
    run has not handed out before.  Ports come from below the kernel's
    ephemeral range (32768 and up), so neither an earlier call nor a
    client's source port can take the same one."""
    for _ in range(1000):
        port = random.randrange(*port_range())
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise AssertionError("no free loopback port in 1000 tries")


def port_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def sanitizer_reports(text):
    return [m for m in SANITIZER_MARKS if m in text]


def child_pids(pid):
    """{comm: [pid, ...]} of pid's direct children."""
    out = {}
    for task in Path("/proc", str(pid), "task").iterdir():
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            try:
                comm = Path("/proc", kid, "comm").read_text().strip()
            except OSError:
                continue
            out.setdefault(comm, []).append(int(kid))
    return out


def children(pid):
    """{comm: pid} of pid's direct children (the last of each name)."""
    return {comm: pids[-1] for comm, pids in child_pids(pid).items()}


def catches_sigterm(pid):
    """pid has a SIGTERM handler: a child of mailrootd has finished its
    start (its comm alone says only that it has called exec)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) &
                                (1 << (signal.SIGTERM - 1)))
    except OSError:
        pass
    return False


def started_children(pid, timeout=START_TIMEOUT):
    """{comm: pid} of smtpd, queued and deliverd once all three have
    started (bounded wait); None for one that did not."""
    names = ("smtpd", "queued", "deliverd")

    def ready():
        kids = children(pid)
        if all(n in kids and catches_sigterm(kids[n]) for n in names):
            return kids
        return None
    kids = wait_until(ready, timeout) or children(pid)
    return {n: kids.get(n) for n in names}


def _has_user(name):
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def ensure_users():
    """As root, create the system users mailrootd drops its children to."""
    if not IS_ROOT:
        return
    for name in sorted(set(USERS.values())):
        try:
            pwd.getpwnam(name)
        except KeyError:
            # another test process may be adding it at the same moment
            r = subprocess.run(["useradd", "--system", "--no-create-home",
                                "--shell", "/usr/sbin/nologin", name],
                               timeout=30, check=False)
            if r.returncode != 0:
                wait_until(lambda n=name: _has_user(n), 30)
                pwd.getpwnam(name)


def make_traversable(path):
    """A root mailrootd's children (other users) must reach paths under
    pytest's private 0700 temporary directories: open them for search."""
    if not IS_ROOT:
        return
    path = Path(path).resolve()
    for p in [path, *path.parents]:
        if str(p) in ("/", "/tmp"):
            break
        st = p.stat()
        if st.st_uid == 0 and (st.st_mode & 0o005) != 0o005:
            os.chmod(p, (st.st_mode & 0o7777) | 0o755)


def run_mailrootd(*args, timeout=30):
    """Runs mailrootd to completion (-n, -P); fails on sanitizer output."""
    proc = subprocess.run([str(MAILROOTD), *map(str, args)],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=timeout)
    found = sanitizer_reports(proc.stderr)
    assert not found, "sanitizer report from mailrootd %s:\n%s" % (
        " ".join(map(str, args)), proc.stderr)
    return proc


# ---------------------------------------------------------------------------
# The sink: an SMTP server on loopback that records what reaches it.

class Received:
    def __init__(self, mail_from, rcpt_tos, data):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.data = data

    def __repr__(self):
        return "Received(%r, %r, %d bytes)" % (self.mail_from, self.rcpt_tos,
                                               len(self.data))


class _SinkHandler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        reply = self.sink.reject.get(address.lower())
        if reply:
            self.sink.rejected.append(address.lower())
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        self.sink._record(Received(envelope.mail_from, envelope.rcpt_tos,
                                   bytes(envelope.original_content)))
        hold = self.sink.hold
        if hold is not None:
            # the reply waits (bounded) until the test lets it go
            await asyncio.get_running_loop().run_in_executor(
                None, hold.wait, 120.0)
        return "250 2.0.0 Ok: stored by sink"


DSN_PARAMS = ("RET", "ENVID", "NOTIFY", "ORCPT")


class _DsnSinkHandler(_SinkHandler):
    """Adds DSN (RFC 3461) to the EHLO reply."""

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        return responses[:-1] + ["250-DSN"] + responses[-1:]


def _recording_smtp():
    """An aiosmtpd SMTP that records each MAIL and RCPT argument as sent
    (sink.mail_args, sink.rcpt_args) and, where the sink offers DSN,
    takes DSN's parameters (aiosmtpd itself knows none)."""
    from aiosmtpd.smtp import SMTP

    class RecordingSMTP(SMTP):
        def _take(self, arg, kept):
            sink = self.event_handler.sink
            kept.append(arg)
            if not sink.dsn or arg is None:
                return arg
            words = [w for w in arg.split(" ")
                     if w.split("=", 1)[0].upper() not in DSN_PARAMS]
            return " ".join(words)

        async def smtp_MAIL(self, arg):
            sink = self.event_handler.sink
            await super().smtp_MAIL(self._take(arg, sink.mail_args))

        async def smtp_RCPT(self, arg):
            sink = self.event_handler.sink
            await super().smtp_RCPT(self._take(arg, sink.rcpt_args))

    for name in ("smtp_MAIL", "smtp_RCPT"):     # keep aiosmtpd's @syntax
        getattr(RecordingSMTP, name).__dict__.update(
            getattr(SMTP, name).__dict__)
    return RecordingSMTP


class Sink:
    """aiosmtpd on 127.0.0.1:port (or host:port as given; "::1" for
    IPv6).  reject maps a lower-case recipient to the reply its RCPT gets
    (default "550 5.1.1 ...").  dsn=True offers DSN; every MAIL and RCPT
    argument is recorded as it came (mail_args, rcpt_args).  smtputf8=True
    offers SMTPUTF8 (RFC 6531, aiosmtpd's enable_SMTPUTF8)."""

    def __init__(self, dsn=False, host="127.0.0.1", port=None,
                 smtputf8=False):
        from aiosmtpd.controller import Controller
        self.host = host
        self.port = port or free_port()
        self.messages = []
        self.reject = {}
        self.rejected = []      # recipients refused so far, in order
        self.hold = None        # a threading.Event: the reply to DATA
                                # waits until it is set
        self.dsn = dsn
        self.mail_args = []
        self.rcpt_args = []
        self._cond = threading.Condition()
        smtp_class = _recording_smtp()

        class _Controller(Controller):
            def factory(self):
                return smtp_class(self.handler, **self.SMTP_kwargs)

        handler = _DsnSinkHandler(self) if dsn else _SinkHandler(self)
        self._controller = _Controller(handler,
                                       hostname=host, port=self.port,
                                       decode_data=False,
                                       enable_SMTPUTF8=smtputf8,
                                       ready_timeout=10.0)

    def start(self):
        self._controller.start()
        return self

    def stop(self):
        self._controller.stop()

    def reject_rcpt(self, address, reply="550 5.1.1 No such user (sink)"):
        self.reject[address.lower()] = reply

    def _record(self, msg):
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def wait_for(self, count, timeout=60.0):
        """Waits until at least count messages arrived; returns a copy."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.messages)


# ---------------------------------------------------------------------------
# Messages.

def crlf(text):
    """Test messages are written with \\n; SMTP carries CRLF."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def split_received(data):
    """Splits off the first header field, which must be the Received:
    header mailroot added (with its folded continuation lines).
    Returns (received_bytes, rest)."""
    assert data[:9].lower() == b"received:", \
        "message does not begin with a Received: header: %r" % data[:200]
    end = data.find(b"\r\n")
    assert end >= 0, "unterminated Received header: %r" % data[:200]
    end += 2
    for _ in range(1000):
        if data[end:end + 1] not in (b" ", b"\t"):
            break
        nxt = data.find(b"\r\n", end)
        assert nxt >= 0, "unterminated folded Received header"
        end = nxt + 2
    return data[:end], data[end:]


def send(port, sender, rcpts, data, timeout=60.0):
    """One SMTP session, one message; returns the refused-recipient dict
    smtplib reports (raises on total refusal)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as s:
        s.ehlo("client.test")
        return s.sendmail(sender, rcpts, data)


def files_under(directory):
    """Regular files below directory, recursively (hashed sub-directories
    count), as paths relative to it."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    out = []
    for root, _dirs, files in os.walk(directory):
        for f in files:
            p = Path(root, f)
            if p.is_file():
                out.append(p.relative_to(directory))
    return sorted(out)


# ---------------------------------------------------------------------------
# The daemon.

def config_text(port, mailroot, sink_port=None, relay_allow=("127.0.0.1",),
                local_domains=("local.test",), chroot=None, server_extra="",
                global_extra="", submit_socket=None, mta_sts_cache=None):
    lines = ['hostname "mx.test.example"']
    if chroot:
        lines.append('chroot "%s"' % chroot)
    # deliverd's MTA-STS policies: beside the mailroot, so that every
    # configuration written for one daemon (a reload's too) names the same
    if "mta-sts-cache" not in global_extra:
        lines.append('mta-sts-cache "%s"' % (mta_sts_cache or
                                            "%s.mta-sts" % mailroot))
    if submit_socket and "submit-socket" not in global_extra:
        lines.append('submit-socket "%s"' % submit_socket)
    if global_extra:
        lines.append(global_extra)
    # the tests' DNS servers are unsigned: no DNSSEC validation (and so
    # no DANE) unless a test names its own trust anchor
    if "dnssec-trust-anchor" not in global_extra:
        lines.append("dnssec-trust-anchor none")
    lines += ['server "test" {',
              "    listen 127.0.0.1:%d" % port,
              '    mailroot "%s"' % mailroot]
    lines += ["    relay allow %s" % a for a in relay_allow]
    if sink_port:
        lines.append('    delivery { smart-host "[127.0.0.1]:%d" }'
                     % sink_port)
    lines += ['    domain "%s" local' % d for d in local_domains]
    if server_extra:
        lines.append(server_extra)
    lines.append("}")
    return "\n".join(lines) + "\n"


class Mailroot:
    """One mailrootd -d under test, in its own process group."""

    def __init__(self, workdir, name="mailroot", env=None, **conf):
        self.workdir = Path(workdir)
        self.env = env          # None: the test's own environment
        self.name = name
        self.port = free_port()
        self.mailroot = self.workdir / name
        self.mta_sts_cache = Path("%s.mta-sts" % self.mailroot)
        self.chroot = self.workdir / "empty"
        self.conf = self.workdir / ("%s.conf" % name)
        self.logfile = self.workdir / ("%s.log" % name)
        self.proc = None
        self.returncode = None
        self.problems = []
        self.chroot.mkdir(mode=0o755, exist_ok=True)
        os.chmod(self.chroot, 0o755)
        self.mailroot.mkdir(mode=0o755, exist_ok=True)
        make_traversable(self.mailroot)
        # each daemon its own injector socket, never the system's
        self.submit_socket = self.workdir / ("%s.submit" % name)
        if len(str(self.submit_socket)) >= 100:     # sun_path
            self.submit_socket = Path("/tmp/mr-submit-%d" % self.port,
                                      "submit")
        self.conf.write_text(config_text(self.port, self.mailroot,
                                         chroot=self.chroot,
                                         submit_socket=self.submit_socket,
                                         **conf))

    @property
    def pid(self):
        return self.proc.pid

    def dir(self, sub):
        return self.mailroot / sub

    def log_text(self):
        try:
            return self.logfile.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def start(self):
        assert MAILROOTD.exists(), "%s not built (MAILROOT_BUILDDIR=%s)" % (
            MAILROOTD, BUILDDIR)
        # a restart appends to the log: only what this start wrote counts
        since = len(self.log_text())
        self.returncode = None     # a restart is stopped again at teardown
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                [str(MAILROOTD), "-d", "-f", str(self.conf)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=str(self.workdir), start_new_session=True, env=self.env)

        def up():
            if self.proc.poll() is not None:
                return "exited"
            return READY_LINE in self.log_text()[since:] and \
                port_accepts(self.port)

        state = wait_until(up, START_TIMEOUT, 0.1)
        if state is not True:
            why = ("exited with status %s" % self.proc.returncode
                   if state == "exited" else
                   "not ready within %.0f s (no '%s' line or port %d closed)"
                   % (START_TIMEOUT, READY_LINE, self.port))
            self.stop()
            # The failure below says it all; keep only what it cannot.
            self.problems[:] = [p for p in self.problems if "sanitizer" in p]
            raise AssertionError("mailrootd %s\n--- %s ---\n%s" % (
                why, self.logfile, self.log_text()))
        # ready means forked: a child may not have exec'd yet and still be
        # called mailrootd.  Tests look children up by name, so wait until
        # all three have set up (bounded; a test that keeps one from
        # starting sees that in its own assertions)
        started_children(self.proc.pid, 10.0)
        return self

    def group_members(self):
        """Pids still in the daemon's process group."""
        if self.proc is None:
            return []
        pgid = self.proc.pid
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 2 and fields[2] == str(pgid) \
                    and fields[0] != "Z":
                out.append(int(entry))
        return out

    def stop(self):
        """SIGTERM, bounded wait, SIGKILL the group if needed.  Returns
        the problems seen (unclean exit, leftovers, sanitizer reports);
        they are kept in .problems for the fixture to report."""
        problems = self.problems
        if self.proc is None or self.returncode is not None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append("mailrootd did not exit within %.0f s of "
                                "SIGTERM" % STOP_TIMEOUT)
        else:
            problems.append("mailrootd exited before the test ended "
                            "(status %s)" % self.proc.returncode)
        left = wait_until(lambda: not self.group_members(), 30.0, 0.1)
        if not left:
            problems.append("processes left running after mailrootd "
                            "stopped: %s" % self.group_members())
        if self.proc.poll() is None or self.group_members():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append("mailrootd survived SIGKILL")
        self.returncode = self.proc.returncode
        if not problems and self.returncode != 0:
            problems.append("mailrootd exited with status %s after SIGTERM"
                            % self.returncode)
        for mark in sanitizer_reports(self.log_text()):
            problems.append("sanitizer report in the log: %r" % mark)
        return problems

    # -- the queue ----------------------------------------------------------

    def queue_files(self):
        return files_under(self.dir("Queue"))

    def wait_queue_empty(self, timeout=60.0):
        files = wait_until(lambda: not self.queue_files(), timeout, 0.1)
        assert files, "Queue not empty after %.0f s: %s" % (
            timeout, self.queue_files())

    def drop_files(self):
        return files_under(self.dir("Drop"))

    def wait_drop(self, count, timeout=60.0):
        """Waits for count .eml files directly in Drop; returns them."""
        def ready():
            emls = [f for f in self.drop_files()
                    if f.parent == Path(".") and f.suffix == ".eml"]
            return emls if len(emls) >= count else None
        emls = wait_until(ready, timeout, 0.1)
        assert emls, "expected %d .eml file(s) in Drop within %.0f s, " \
            "found %s" % (count, timeout, self.drop_files())
        return [self.dir("Drop") / f for f in emls]
