"""
deliverd's "system" resolver without /etc/hosts or /etc/resolv.conf, as
in a container or a freshly made Debian root: delivery goes on, and the
missing file is said once.  mailrootd runs in a mount namespace of its
own where an overlay over /etc hides the files (root only).
"""

import os
import shutil
import stat

import pytest

import mailroot_harness as mh

pytestmark = pytest.mark.skipif(
    not mh.IS_ROOT or shutil.which("unshare") is None,
    reason="needs root and unshare(1) for a private /etc")

# Runs mailrootd with /etc overlaid by a tmpfs whose whiteouts (0/0
# character devices) hide the named files; gone with the namespace.
WRAPPER = """#!/bin/sh
exec unshare --mount --propagation private sh -c '
set -e
d=$1 real=$2; shift 2
mount -t tmpfs tmpfs "$d"
mkdir "$d/upper" "$d/work"
for f in %(hide)s; do mknod "$d/upper/$f" c 0 0; done
mount -t overlay overlay \\
    -o "lowerdir=/etc,upperdir=$d/upper,workdir=$d/work" /etc
for f in %(hide)s; do ! test -e "/etc/$f"; done
exec "$real" "$@"' sh %(ovdir)s %(real)s "$@"
"""

SAID = {"hosts": "resolver: no /etc/hosts: host names come from DNS alone",
        "resolv.conf": "resolver: no /etc/resolv.conf: asking a nameserver "
                       "on 127.0.0.1"}


@pytest.mark.parametrize("hide", [("hosts",), ("hosts", "resolv.conf")],
                         ids=["no-hosts", "no-hosts-no-resolv.conf"])
def test_delivery_without_resolver_files(start_mailroot, sink, workdir,
                                         monkeypatch, hide):
    ovdir = workdir / "etc-overlay"
    ovdir.mkdir()
    wrapper = workdir / "mailrootd-private-etc"
    wrapper.write_text(WRAPPER % {"hide": " ".join(hide), "ovdir": ovdir,
                                  "real": mh.MAILROOTD})
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(mh, "MAILROOTD", wrapper)
    d = start_mailroot(sink=sink)
    data = mh.crlf("From: <app@client.test>\nTo: <rcpt@remote.test>\n"
                   "Subject: no %s\n\nstill delivered\n" % " ".join(hide))
    assert mh.send(d.port, "app@client.test", ["rcpt@remote.test"],
                   data) == {}
    got = sink.wait_for(1)
    assert len(got) == 1, "sink got %s" % got
    assert got[0].rcpt_tos == ["rcpt@remote.test"]
    d.wait_queue_empty()
    log = d.log_text()
    assert "cannot set up the resolver" not in log
    for f in hide:
        # once per deliverd, though its two resolver contexts read it
        assert log.count(SAID[f]) == 1, log
    assert os.path.exists("/etc/hosts")     # the host's own is untouched
