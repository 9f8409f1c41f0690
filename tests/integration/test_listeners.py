"""
Many listeners: every listen address of every virtual server is bound by
mailrootd and handed to smtpd, which greets on each with its server's
name.
"""

import resource
import socket

import pytest

import mailroot_harness as mh

N = 40


@pytest.fixture
def usual_fd_limit():
    """The common default soft limit of 1024 descriptors, for mailrootd
    and its children (they inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_forty_listeners_all_greet(usual_fd_limit, start_mailroot, sink):
    ports = [mh.free_port() for _ in range(N)]
    extra = "\n".join("    listen 127.0.0.1:%d" % p for p in ports)
    d = start_mailroot(sink=sink, server_extra=extra)
    for p in ports + [d.port]:
        with socket.create_connection(("127.0.0.1", p), timeout=10) as c:
            assert c.recv(512).startswith(b"220 mx.test.example "), p
