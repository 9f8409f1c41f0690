"""
Process boundaries: a child that sends garbage over IPC is dropped by its
peer, reported to mailrootd and restarted while the others keep serving;
the unprivileged users cannot open a mailroot; mailrootd itself holds no
client connection.

The garbage comes from the real channel: the test takes a copy of a
child's IPC socket with pidfd_getfd(2) and writes a malformed frame on it,
exactly as a compromised child could.
"""

import ctypes
import os
import re
import smtplib
import socket
import struct
import subprocess
from pathlib import Path

import pytest

import mailroot_harness as mh

SYS_PIDFD_GETFD = 438          # x86_64 and arm64 share this number

libc = ctypes.CDLL(None, use_errno=True)



def all_children(pid):
    """The three children by name, waiting (bounded) until each has
    exec'd: between fork and exec a child is still called mailrootd."""
    kids = {}

    def ready():
        kids.clear()
        kids.update(mh.children(pid))
        return all(k in kids for k in ("smtpd", "queued", "deliverd"))

    assert mh.wait_until(ready, 60), kids
    return dict(kids)


def steal_fd(pid, fd):
    pidfd = os.pidfd_open(pid)
    try:
        new = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if new < 0:
            pytest.skip("pidfd_getfd: %s" % os.strerror(ctypes.get_errno()))
        return new
    finally:
        os.close(pidfd)


def peer_channel(pid):
    """A copy of one of pid's channels to a peer: a SOCK_SEQPACKET socket
    other than fd 3, the channel to mailrootd.  Waits (bounded) for one:
    a child started before its peers gets their channels from mailrootd
    a moment later."""
    found = []

    def look():
        for fd in sorted(int(f) for f in os.listdir("/proc/%d/fd" % pid)):
            try:
                link = os.readlink("/proc/%d/fd/%d" % (pid, fd))
            except OSError:
                continue
            if fd <= 3 or not link.startswith("socket:"):
                continue
            s = socket.socket(fileno=steal_fd(pid, fd))
            if s.type == socket.SOCK_SEQPACKET:
                found.append(s)
                return True
            s.close()       # our copy only
        return False

    if not mh.wait_until(look, 10):
        pytest.fail("no peer channel among %d's descriptors" % pid)
    return found[0]


def send_garbage(pid):
    s = peer_channel(pid)
    try:
        s.send(b"\xff\x00\x17")        # shorter than a frame header
    finally:
        s.close()


def relay_one(d, sink, subject):
    mh.send(d.port, "a@client.test", ["r@remote.test"],
            mh.crlf("Subject: %s\n\nbody\n" % subject))
    assert sink.wait_for(1), "nothing reached the sink"
    got = sink.messages[-1]
    assert ("Subject: %s" % subject).encode() in got.data


@pytest.mark.parametrize("victim", ["smtpd", "deliverd", "queued"])
def test_garbage_ipc_restarts_offender(start_mailroot, sink, victim):
    """Garbage written on one of the victim's peer channels reaches a
    well-behaved peer, which drops it and reports the victim; mailrootd
    restarts only the victim."""
    d = start_mailroot(sink=sink)
    before = all_children(d.pid)
    # the channels are up before the garbage goes (a queued without them
    # has no peer channel to write on): the first queued is handed both
    # with MR_M_PEER and logs "connected to" for each
    assert mh.wait_until(lambda: d.log_text().count("connected to") >= 2,
                         60), d.log_text()
    links = d.log_text().count("connected to")
    send_garbage(before[victim])

    def restarted():
        now = mh.children(d.pid)
        return victim in now and now[victim] != before[victim]

    assert mh.wait_until(restarted, 60), d.log_text()
    log = d.log_text()
    assert "reports that %s misbehaved" % victim in log, log
    now = all_children(d.pid)
    for comm, pid in before.items():
        if comm != victim:
            assert now.get(comm) == pid, (comm, before, now)
    # mail still flows end to end, once the surviving peer has the new
    # channel (the restarted child has its own from the start): smtpd logs
    # "connected to queued", queued "connected to" a new smtpd or deliverd
    assert mh.wait_until(lambda: d.log_text().count("connected to") >
                         links, 60), d.log_text()
    relay_one(d, sink, "after %s garbage" % victim)


# Message types (common/proto.h) and the payload encoding (common/buf.h).
MR_Q_COMMIT, MR_Q_NEW_OK, MR_D_JOB, MR_D_RESULT = 4, 6, 10, 11


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def pstr(s):
    return u32(len(s)) + s + b"\0"


def unix_peers():
    """{inode: peer inode} of every connected unix socket, from the
    kernel's sock_diag (NETLINK_SOCK_DIAG, UDIAG_SHOW_PEER)."""
    NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, UDIAG_SHOW_PEER = 4, 20, 4
    UNIX_DIAG_PEER, NLMSG_DONE, NLMSG_ERROR = 2, 3, 2
    req = struct.pack("=BBHIIIII", socket.AF_UNIX, 0, 0, 0xffffffff, 0,
                      UDIAG_SHOW_PEER, 0, 0)
    hdr = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                      0x301, 1, 0)         # NLM_F_REQUEST | NLM_F_DUMP
    peers = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM,
                       NETLINK_SOCK_DIAG) as nl:
        nl.send(hdr + req)
        for _ in range(100000):
            data = nl.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, mtype = struct.unpack_from("=IH", data, off)
                if mtype in (NLMSG_DONE, NLMSG_ERROR) or length < 16:
                    return peers
                ino = struct.unpack_from("=I", data, off + 20)[0]
                a = off + 16 + 16
                while a + 4 <= off + length:
                    alen, atype = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if atype == UNIX_DIAG_PEER:
                        peers[ino] = struct.unpack_from("=I", data, a + 4)[0]
                    a += (alen + 3) & ~3
                off += (length + 3) & ~3
    return peers


def socket_fds(pid):
    """{inode: fd} of pid's sockets."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            out[int(link[8:-1])] = int(fd)
    return out


def channel_to(pid, peer):
    """A copy of pid's channel to the process peer, waiting (bounded) for
    it: a child started before its peer gets that channel later, from
    mailrootd, at whatever descriptor is free."""
    found = []

    def look():
        mine, theirs = socket_fds(pid), socket_fds(peer)
        for ino, other in unix_peers().items():
            if ino in mine and other in theirs:
                found.append(mine[ino])
                return True
        return False

    assert mh.wait_until(look, 10), "%d has no channel to %d" % (pid, peer)
    return socket.socket(fileno=steal_fd(pid, found[0]))


# Well-framed frames whose payload is hostile: (sender, receiver, type,
# payload).  The first is the COMMIT that once
# crashed queued (a recipient count above MR_RCPT_MAX).
HOSTILE = {
    "commit-rcpt-count": ("smtpd", "queued", MR_Q_COMMIT,
                          u64(1) + pstr(b"x") + pstr(b"") + u32(10001)),
    "commit-count-beyond-payload": ("smtpd", "queued", MR_Q_COMMIT,
                                    u64(1) + pstr(b"x") + pstr(b"") +
                                    u32(9999) + pstr(b"a@b.test")),
    "result-rcpt-count": ("deliverd", "queued", MR_D_RESULT,
                          u64(1) + u32(0xffffffff)),
    "job-rcpt-count": ("queued", "deliverd", MR_D_JOB,
                       u64(1) + u32(0) + pstr(b"id") + pstr(b"") +
                       u32(10001)),
    "new-ok-control-id": ("queued", "smtpd", MR_Q_NEW_OK,
                          u64(1) + pstr(b"id\r\nX-Injected: 1")),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_payload_drops_sender(start_mailroot, sink, case):
    """A frame that is well framed but whose payload lies (counts beyond
    the limit or the payload, control bytes) is refused by the receiver's
    decoder: the receiver lives on, the sender is reported and restarted,
    and no process dies of a signal."""
    sender, receiver, mtype, payload = HOSTILE[case]
    d = start_mailroot(sink=sink)
    before = all_children(d.pid)
    chan = channel_to(before[sender], before[receiver])
    try:
        chan.send(u32(mtype) + u32(len(payload)) + payload)
    finally:
        chan.close()

    def restarted():
        now = mh.children(d.pid)
        return sender in now and now[sender] != before[sender]

    assert mh.wait_until(restarted, 10), d.log_text()
    log = d.log_text()
    assert "%s reports that %s misbehaved" % (receiver, sender) in log, log
    for end in ("killed", "exited"):
        assert "%s (pid %d) %s" % (receiver, before[receiver], end) \
            not in log, log
    assert "killed by signal 11" not in log, log
    assert mh.children(d.pid).get(receiver) == before[receiver], log
    assert mh.wait_until(lambda: d.log_text().count("connected to") >= 3,
                         10), d.log_text()
    relay_one(d, sink, "after %s" % case)


def data_fd(pid):
    """A copy of pid's descriptor to a message file in Queue."""
    for fd in sorted(int(f) for f in os.listdir("/proc/%d/fd" % pid)):
        try:
            target = os.readlink("/proc/%d/fd/%d" % (pid, fd))
        except OSError:
            continue
        if target.endswith(".eml"):
            return steal_fd(pid, fd), Path(target)
    pytest.fail("smtpd holds no message file")


@pytest.mark.parametrize("change", ["append", "truncate"])
def test_smtpd_cannot_change_accepted_data(start_mailroot, sink, change):
    """smtpd writes each message through a descriptor queued hands it; a
    compromised smtpd could keep a copy and write after the 250.  Bytes
    added are cut off before the message goes out; data cut short goes to
    Badmail.  Nothing accepted is removed or sent altered."""
    sink.reject_rcpt("held@remote.test", "451 4.3.0 try later (sink)")
    d = start_mailroot(sink=sink)
    smtpd = all_children(d.pid)["smtpd"]
    body = mh.crlf("Subject: accepted\n\nas accepted\n")
    c = smtplib.SMTP("127.0.0.1", d.port, timeout=15)
    try:
        c.ehlo("client.test")
        c.mail("a@client.test")
        c.rcpt("held@remote.test")
        assert c.docmd("DATA")[0] == 354
        fd, path = data_fd(smtpd)
        c.send(body + b".\r\n")
        assert c.getreply()[0] == 250
        c.quit()
    finally:
        c.close()
    mid = path.stem
    # tried once and deferred by the sink: the envelope says so
    assert mh.wait_until(lambda: "attempts 1" in (
        path.with_suffix(".env").read_text()
        if path.with_suffix(".env").exists() else ""), 15), d.log_text()
    try:
        if change == "append":
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, b"X-Added: after the 250\r\n")
        else:
            os.ftruncate(fd, 10)
    finally:
        os.close(fd)
    # the next attempt: its retry time brought forward while stopped
    sink.reject.clear()
    assert d.stop() == []
    env = path.with_suffix(".env")
    env.write_text(re.sub(r"(?m)^next-try \d+$", "next-try 0",
                          env.read_text()))
    d.returncode = None
    d.start()
    if change == "append":
        got = sink.wait_for(1)
        assert len(got) == 1, d.log_text()
        assert b"as accepted" in got[0].data
        assert b"X-Added" not in got[0].data, got[0].data
        assert "%s: %d bytes were added" % (
            mid, len(b"X-Added: after the 250\r\n")) in d.log_text()
    else:
        bad = d.dir("Badmail") / (mid + ".BAD")
        assert mh.wait_until(bad.exists, 15), d.log_text()
        assert bad.stat().st_size == 10
        assert mh.wait_until((d.dir("Badmail") / (mid + ".BDR")).exists,
                             15)
        assert sink.messages == []
    d.wait_queue_empty()


def run_as(user, argv):
    import pwd
    pw = pwd.getpwnam(user)

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    return subprocess.run(argv, preexec_fn=drop, capture_output=True,
                          timeout=10)


@pytest.mark.skipif(not mh.IS_ROOT, reason="needs root")
@pytest.mark.parametrize("user", ["mailroot-smtpd", "mailroot-deliver"])
def test_unprivileged_users_cannot_open_mailroot(start_mailroot, sink, user):
    d = start_mailroot(sink=sink)
    # a queued message to look at: the sink refuses, so it stays queued
    sink.reject_rcpt("held@remote.test", "451 4.3.0 try later")
    mh.send(d.port, "a@client.test", ["held@remote.test"],
            mh.crlf("Subject: held\n\nbody\n"))
    # tried once and deferred: nothing is in flight when the test ends
    assert mh.wait_until(lambda: "held@remote.test" in sink.rejected, 60)
    assert mh.wait_until(lambda: any(
        p.suffix == ".env" for p in d.dir("Queue").iterdir()), 60)
    target = next(p for p in d.dir("Queue").iterdir() if p.suffix == ".eml")
    for path in (target, d.dir("Queue"), d.dir("Drop"), d.dir("Pickup")):
        r = run_as(user, ["cat" if path.is_file() else "ls", str(path)])
        assert r.returncode != 0, "%s could read %s" % (user, path)
        assert b"Permission denied" in r.stderr, r.stderr
    # the queue owner can, so the check above is not vacuous
    r = run_as("mailroot", ["cat", str(target)])
    assert r.returncode == 0 and b"Subject: held" in r.stdout


@pytest.mark.skipif(not mh.IS_ROOT, reason="needs root")
def test_smtpd_root_is_empty(start_mailroot, sink):
    d = start_mailroot(sink=sink)
    smtpd = all_children(d.pid)["smtpd"]
    mh.wait_until(lambda: os.readlink("/proc/%d/root" % smtpd) != "/", 60)
    root = os.readlink("/proc/%d/root" % smtpd)
    assert root != "/" and list(Path(root).iterdir()) == []


def socket_inodes(pid):
    out = set()
    for fd in Path("/proc", str(pid), "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def established_inodes():
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "01":           # TCP_ESTABLISHED
                out.add(f[9])
    return out


def test_master_holds_no_client_connection(start_mailroot, sink):
    d = start_mailroot(sink=sink)
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as c:
        assert c.recv(512).startswith(b"220 ")
        est = established_inodes()
        kids = all_children(d.pid)
        assert socket_inodes(kids["smtpd"]) & est, "smtpd holds no session"
        assert not socket_inodes(d.pid) & est, \
            "mailrootd holds a client connection"


def test_children_are_sandboxed(start_mailroot, sink):
    """Every child runs under a seccomp filter with no new privileges."""
    d = start_mailroot(sink=sink)

    def status(path):
        return dict(line.split(":", 1) for line in
                    Path(path, "status").read_text().splitlines())

    for comm, pid in all_children(d.pid).items():
        # a child sets its limits once set up; wait (bounded) for that
        mh.wait_until(lambda: status("/proc/%d" % pid)["Seccomp"].strip()
                      == "2", 60)
        for task in Path("/proc/%d/task" % pid).iterdir():
            st = status(task)
            assert st["Seccomp"].strip() == "2", (comm, task.name)
            assert st["NoNewPrivs"].strip() == "1", (comm, task.name)
