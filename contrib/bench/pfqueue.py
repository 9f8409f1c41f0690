"""
contrib/bench/pfqueue.py - the Postfix side of contrib/bench/queue-scale:
a private Postfix instance (its own config_directory and queue_directory
under a temporary directory, smtpd on a loopback port) whose deferred
queue holds N messages of the same shape as the mailroot queue of
contrib/bench/qfiles.py, made Postfix's way and without SMTP for all but
two of them:

- two real messages go through the instance over SMTP, user000@remote.test
  and due0@due.test, both to a next hop that answers 4xx to RCPT
  (smtp-sink -r RCPT): each ends as a deferred queue file (deferred/H/ID)
  with its defer log (defer/H/ID, the reason postqueue -p shows), tried
  once; Postfix is then stopped;
- the first is cloned N - 2 times into deferred/: each clone is written
  under a temporary name, then renamed to the queue ID Postfix would give
  it (short IDs, the default: five hex digits of microseconds and the file's
  inode number in hex, so that "postsuper -s" has nothing to rename) in
  the hash directory of hash_queue_depth 1 (the ID's first character), with
  its defer log beside it; the recipient's local part gets the same number
  as mailroot's (user000 ... user999, written in place: same length, so
  that no record offset moves);
- every deferred file's time stamps (atime and mtime, which qmgr sets
  to the time of the next attempt and compares with the clock on a
  deferred scan) are a day ahead, except the due message's, a minute
  ago; due.test is then routed (transport_maps) to the sink that accepts.
"""

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"
                       / "integration"))
import postfix_instance  # noqa: E402

RCPT = "user000@remote.test"
DUE = "due0@due.test"


def _ids(spool):
    """{queue ID: path} of the deferred queue files."""
    out = {}
    for p in (spool / "deferred").glob("*/*"):
        out[p.name] = p
    return out


class Postfix:
    """A private Postfix for queue-scale: smtpd on 127.0.0.1:port,
    remote.test routed to the 451 hop, due.test and probe.test to the
    sink."""

    def __init__(self, base, port, hop_port, sink_port, wait_until):
        self.dir = Path(base) / "postfix"
        self.port, self.hop_port, self.sink_port = port, hop_port, sink_port
        self.wait_until = wait_until
        self.etc, self.spool, self.maillog = postfix_instance.write_config(
            self.dir, "bench-postfix.invalid", port, hop_port,
            "transport_maps = hash:%s/transport\n" % (self.dir / "etc"))
        # the files chrooted daemons need, as Debian copies them
        (self.spool / "etc").mkdir(exist_ok=True)
        for f in ("localtime", "host.conf", "hosts", "nsswitch.conf",
                  "resolv.conf", "services"):
            if os.path.exists("/etc/" + f):
                shutil.copy("/etc/" + f, self.spool / "etc" / f)
        self.route(due_to_sink=False)
        for args in (("set-permissions",), ("check",)):
            self.postfix(*args)

    def postfix(self, *args, check=True):
        r = subprocess.run(["postfix", "-c", str(self.etc)] + list(args),
                           capture_output=True, text=True, timeout=600)
        if check and r.returncode != 0:
            raise SystemExit("postfix %s: %s%s" % (args[0], r.stdout,
                                                   r.stderr))
        return r

    def postconf(self, name):
        return subprocess.run(["postconf", "-c", str(self.etc), "-h", name],
                              capture_output=True, text=True,
                              check=True).stdout.strip()

    def route(self, due_to_sink):
        hop = "smtp:[127.0.0.1]:%d" % self.hop_port
        sink = "smtp:[127.0.0.1]:%d" % self.sink_port
        (self.etc / "transport").write_text(
            "remote.test %s\ndue.test %s\nprobe.test %s\n" % (
                hop, sink if due_to_sink else hop, sink))
        subprocess.run(["postmap", "-c", str(self.etc),
                        "hash:%s/transport" % self.etc], check=True)

    def master_pid(self):
        try:
            return int((self.spool / "pid" / "master.pid").read_text())
        except (OSError, ValueError):
            return None

    def start(self):
        self.postfix("start")

    def stop(self):
        master = self.master_pid()
        self.postfix("stop", check=False)
        if master is not None and not self.wait_until(
                lambda: not os.path.exists("/proc/%d" % master), 60):
            self.postfix("abort", check=False)
        # every child gone too (they exit once master has)
        self.wait_until(lambda: not self.procs(master), 30)

    def procs(self, master=None):
        """{pid: name} of master and its children."""
        master = master or self.master_pid()
        out = {}
        if master is None:
            return out
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if int(p.name) == master or ppid == master:
                out[int(p.name)] = name
        return out

    def cpu(self):
        """CPU seconds of every Postfix process so far: master's own and
        its reaped children's, plus the living children's."""
        hz = os.sysconf("SC_CLK_TCK")
        total = 0
        master = self.master_pid()
        for pid in self.procs(master):
            try:
                f = Path("/proc/%d/stat" % pid).read_text().rsplit(
                    ")", 1)[1].split()
            except OSError:
                continue
            total += int(f[11]) + int(f[12])
            if pid == master:
                total += int(f[13]) + int(f[14])
        return total / hz

    def cpu_by_name(self):
        """{pid: (name, CPU seconds)} of the living processes."""
        hz = os.sysconf("SC_CLK_TCK")
        out = {}
        for pid, name in self.procs().items():
            try:
                f = Path("/proc/%d/stat" % pid).read_text().rsplit(
                    ")", 1)[1].split()
            except OSError:
                continue
            out[pid] = (name, (int(f[11]) + int(f[12])) / hz)
        return out

    def pid_of(self, name):
        for pid, n in self.procs().items():
            if n == name:
                return pid
        return None

    def maillog_text(self):
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def make_templates(self, send):
        """The two real deferred messages, through smtpd; Postfix must
        run.  Returns {recipient: queue ID}."""
        before = set(_ids(self.spool))
        for rcpt in (RCPT, DUE):
            send(self.port, rcpt)
        def both():
            new = set(_ids(self.spool)) - before
            return len(new) == 2 and all(
                (self.spool / "defer" / q[0] / q).exists() for q in new)
        if not self.wait_until(both, 120, 0.2):
            raise SystemExit("postfix: the two messages were not deferred\n"
                             + self.maillog_text()[-3000:])
        out = {}
        for q in set(_ids(self.spool)) - before:
            text = (self.spool / "defer" / q[0] / q).read_text()
            out[RCPT if RCPT in text else DUE] = q
        return out

    def clone(self, tmpl, n):
        """n - 1 deferred messages to remote.test (the template and n - 2
        clones) a day ahead, the due one a minute ago; Postfix stopped."""
        pw = pwd.getpwnam("postfix")
        now = time.time()
        later, due = now + 86400, now - 60
        q = tmpl[RCPT]
        qf = self.spool / "deferred" / q[0] / q
        data = qf.read_bytes()
        dlog = (self.spool / "defer" / q[0] / q).read_bytes()
        old = RCPT.encode()
        assert old in data and old in dlog
        os.utime(qf, (later, later))
        d = tmpl[DUE]
        os.utime(self.spool / "deferred" / d[0] / d, (due, due))
        tmpdir = self.spool / "deferred"
        for top in ("deferred", "defer"):
            for h in "0123456789ABCDEF":
                hd = self.spool / top / h
                if not hd.exists():
                    hd.mkdir(0o700)
                    os.chown(hd, pw.pw_uid, pw.pw_gid)
        for i in range(1, n - 1):
            new = b"user%03d@remote.test" % (i % 1000)
            qdata, ddata = data.replace(old, new), dlog.replace(old, new)
            tmp = tmpdir / ("tmp%s" % secrets.token_hex(6))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
            os.write(fd, qdata)
            os.fchown(fd, pw.pw_uid, pw.pw_gid)
            os.fchmod(fd, 0o700)
            os.utime(fd, (later, later))
            ino = os.fstat(fd).st_ino
            os.close(fd)
            qid = "%05X%X" % (secrets.randbelow(1000000), ino)
            os.rename(tmp, tmpdir / qid[0] / qid)
            fd = os.open(self.spool / "defer" / qid[0] / qid,
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, ddata)
            os.fchown(fd, pw.pw_uid, pw.pw_gid)
            os.close(fd)

    def queue_count(self):
        """The count of postqueue -p's last line (works with Postfix down:
        postqueue then runs showq itself), and the wall time it took."""
        t0 = time.monotonic()
        p = subprocess.run(["postqueue", "-c", str(self.etc), "-p"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=3600)
        wall = time.monotonic() - t0
        last = p.stdout.rstrip().rsplit(b"\n", 1)[-1].decode()
        words = last.split()
        count = int(words[-2]) if len(words) > 2 and words[-1] in (
            "Request.", "Requests.") else 0
        return count, wall, len(p.stdout), last
