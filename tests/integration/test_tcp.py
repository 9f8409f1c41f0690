"""
TCP options of mailroot's SMTP connections, read from the sockets
themselves (a copy of each taken with pidfd_getfd(2), as root).

Both ends disable Nagle's algorithm: mailroot writes each reply, or each
pipelined group of commands, whole, so Nagle could only delay it.  With
it, a client that pipelines MAIL, RCPT and DATA (RFC 2920) got "250 250"
and then waited about 40 ms per message for the 354: the client had
nothing to send, so its ACK was delayed, and the 354 waited for that ACK.
"""

import os
import socket
from pathlib import Path

import pytest

import mailroot_harness as mh
import test_boundaries as tb

pytestmark = pytest.mark.skipif(not mh.IS_ROOT, reason="needs root")


def tcp_inode(local_port=None, remote_port=None):
    """The inode of the established loopback socket with these ports."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            lport = int(f[1].rsplit(":", 1)[1], 16)
            rport = int(f[2].rsplit(":", 1)[1], 16)
            if f[3] == "01" and local_port in (None, lport) and \
                    remote_port in (None, rport):
                return f[9]
    return None


def nodelay(pid, inode):
    """TCP_NODELAY of pid's socket with that inode."""
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target == "socket:[%s]" % inode:
            copy = tb.steal_fd(pid, int(fd))
            s = socket.socket(fileno=copy)
            try:
                return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            finally:
                s.close()
    raise AssertionError("pid %d holds no socket %s" % (pid, inode))


def test_both_ends_disable_nagle(start_mailroot, sink):
    d = start_mailroot(sink=sink)
    kids = tb.all_children(d.pid)
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as c:
        assert c.recv(512).startswith(b"220 ")
        inode = tcp_inode(local_port=d.port,
                          remote_port=c.getsockname()[1])
        assert inode, "no established session on port %d" % d.port
        assert nodelay(kids["smtpd"], inode) != 0, "smtpd: Nagle is on"
    # deliverd keeps its connection to the sink for the next message
    mh.send(d.port, "a@client.test", ["r@remote.test"],
            mh.crlf("Subject: nodelay\n\nbody\n"))
    sink.wait_for(1)
    inode = mh.wait_until(lambda: tcp_inode(remote_port=sink.port), 5)
    assert inode, "deliverd holds no connection to the sink"
    assert nodelay(kids["deliverd"], inode) != 0, "deliverd: Nagle is on"
