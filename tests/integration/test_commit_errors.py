"""
Write errors at commit: a message whose data the disk failed to write is
never acknowledged.

The disk is tests/shim/failsync.c, preloaded into mailrootd and so into
every child it execs: once its toggle file exists, writeback under the
Queue folder has failed, and the failure is reported the way Linux
reports it (fsync/fdatasync once to each descriptor opened before the
failure; syncfs only through a descriptor opened before it).  The failure
happens while the client sends DATA, after queued opened the data file
and before the commit: as when background writeback meets a bad sector.
"""

import os
import shutil
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

import mailroot_harness as mh

SHIM = Path(__file__).resolve().parent.parent / "shim" / "failsync.c"


def build_shim(workdir):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler for the failsync shim")
    out = workdir / "failsync.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(out),
                    str(SHIM), "-ldl"], check=True, timeout=60)
    mh.make_traversable(workdir)
    os.chmod(out, 0o755)
    return out


def shim_env(shim, mailroot, toggle):
    env = dict(os.environ)
    env["LD_PRELOAD"] = str(shim)
    env["MAILROOT_FAILSYNC_PREFIX"] = str(mailroot / "Queue") + "/"
    env["MAILROOT_FAILSYNC_TOGGLE"] = str(toggle)
    # an ASan build wants its runtime first; the shim comes first here
    asan = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + \
        "verify_asan_link_order=0"
    return env


def test_write_error_before_commit_is_not_acknowledged(start_mailroot, sink,
                                                       workdir):
    shim = build_shim(workdir)
    name = "failing"
    mailroot = workdir / name
    toggle = mailroot / "failsync-toggle"
    d = start_mailroot(sink=sink, name=name,
                       env=shim_env(shim, mailroot, toggle))
    queued = mh.children(d.pid)["queued"]
    assert str(shim) in Path("/proc/%d/maps" % queued).read_text(), \
        "the shim is not loaded into queued"

    c = smtplib.SMTP("127.0.0.1", d.port, timeout=15)
    try:
        c.ehlo("client.test")
        c.mail("a@client.test")
        c.rcpt("r@remote.test")
        code, _ = c.docmd("DATA")
        assert code == 354
        # queued opened the data file before the 354: the disk fails now
        toggle.write_text(str(time.time_ns()))
        c.send(mh.crlf("Subject: lost on disk\n\nbody\n") + b".\r\n")
        code, text = c.getreply()
        assert code in (451, 452), (code, text)
        c.quit()
    finally:
        c.close()
    # nothing kept, nothing delivered
    d.wait_queue_empty()
    assert "commit failed" in d.log_text()

    # the fault cleared, the client's retry is accepted and delivered
    toggle.unlink()
    mh.send(d.port, "a@client.test", ["r@remote.test"],
            mh.crlf("Subject: retried\n\nbody\n"))
    assert sink.wait_for(1, timeout=15), "the retry was not delivered"
    assert len(sink.messages) == 1
    assert b"Subject: retried" in sink.messages[0].data
    d.wait_queue_empty()
