"""
Root never follows a link the queue user planted.

A mailroot and its folders belong to the queue user (mailroot), so that
user, or whoever takes over queued, can replace any of them with a symbolic
link.  mailrootd prepares the folders as root at start and on SIGHUP; if it
followed such a link it would hand a file of root's to the queue user.
These tests plant the links as a real root mailrootd runs and check that
the files they point at keep their owner and that mailrootd refuses, says
so and keeps running.
"""

import os
import pwd
import signal
from pathlib import Path

import pytest

import mailroot_harness as mh

pytestmark = pytest.mark.skipif(not mh.IS_ROOT, reason="needs root")


def as_user(user, fn):
    """Runs fn() in a child process as user; True if it returned."""
    pw = pwd.getpwnam(user)
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            fn()
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def root_file(workdir, name="victim"):
    """A file of root's outside every mailroot (mode 0600)."""
    p = Path(workdir, name)
    p.write_text("root's own\n")
    os.chown(p, 0, 0)
    os.chmod(p, 0o600)
    return p


def root_dir(workdir, name="victimdir"):
    p = Path(workdir, name)
    p.mkdir(mode=0o700)
    os.chown(p, 0, 0)
    return p


def owner(path):
    st = os.lstat(path)
    return (st.st_uid, st.st_gid, st.st_mode & 0o7777)


def all_children(pid):
    """The three children by name, once each has exec'd."""
    kids = {}

    def ready():
        kids.clear()
        kids.update(mh.children(pid))
        return all(k in kids for k in ("smtpd", "queued", "deliverd"))

    assert mh.wait_until(ready, 10), kids
    return dict(kids)


def reload_and_wait(d, since):
    d.proc.send_signal(signal.SIGHUP)
    assert mh.wait_until(lambda: "reload failed" in d.log_text()[since:],
                         10), d.log_text()[since:]


@pytest.mark.parametrize("folder", ["Badmail", "Pickup", "Drop"])
@pytest.mark.parametrize("kind", ["file", "dir"])
def test_queue_user_link_refused_on_reload(start_mailroot, sink, workdir,
                                           folder, kind):
    d = start_mailroot(sink=sink)
    victim = root_file(workdir) if kind == "file" else root_dir(workdir)
    before = owner(victim)
    kids = all_children(d.pid)
    link = d.dir(folder)

    def plant():
        os.rmdir(link)
        os.symlink(victim, link)

    # the queue user itself can do this: the folder and its parent are its
    assert as_user("mailroot", plant), "the queue user could not plant"
    assert link.is_symlink()
    since = len(d.log_text())
    reload_and_wait(d, since)
    log = d.log_text()[since:]
    assert "%s: refused" % link in log, log
    assert owner(victim) == before, "root followed the link"
    # mailrootd and its children keep running on the old configuration
    assert d.proc.poll() is None
    assert mh.port_accepts(d.port)
    assert mh.children(d.pid) == kids
    # undo, so that the daemon stops cleanly
    os.unlink(link)
    link.mkdir(mode=0o750)


def test_mailroot_itself_a_link_refused(start_mailroot, sink, workdir):
    """The mailroot folder replaced by a link (its parent is root's, so
    only a mistake makes this): neither reload nor start follows it."""
    d = start_mailroot(sink=sink)
    victim = root_dir(workdir)
    before = owner(victim)
    real = Path(workdir, "real-mailroot")
    os.rename(d.mailroot, real)
    os.symlink(victim, d.mailroot)
    since = len(d.log_text())
    reload_and_wait(d, since)
    assert "%s: refused" % d.mailroot in d.log_text()[since:]
    assert owner(victim) == before
    assert d.proc.poll() is None and mh.port_accepts(d.port)
    os.unlink(d.mailroot)
    os.rename(real, d.mailroot)


def start_fails(d):
    try:
        d.start()
    except AssertionError:
        return d.log_text()
    d.stop()
    pytest.fail("mailrootd started:\n" + d.log_text())


def test_start_refuses_mailroot_link(workdir):
    victim = root_dir(workdir)
    before = owner(victim)
    d = mh.Mailroot(workdir, name="linked")
    os.rmdir(d.mailroot)
    os.symlink(victim, d.mailroot)
    log = start_fails(d)
    assert "%s: refused" % d.mailroot in log, log
    assert owner(victim) == before


def test_start_refuses_parent_of_queue_user(workdir):
    """A parent the queue user owns lets it swap the mailroot for a link:
    refused at start, before anything in it is touched."""
    victim = root_file(workdir)
    before = owner(victim)
    parent = Path(workdir, "spool")
    parent.mkdir(mode=0o755)
    pw = pwd.getpwnam("mailroot")
    os.chown(parent, pw.pw_uid, pw.pw_gid)
    d = mh.Mailroot(workdir, name="spool/inner")
    os.rmdir(d.mailroot)
    assert as_user("mailroot", lambda: os.symlink(victim, d.mailroot))
    log = start_fails(d)
    assert "%s: refused" % d.mailroot in log, log
    assert "must be owned by root" in log, log
    assert owner(victim) == before


def test_start_refuses_chroot_link(workdir):
    victim = root_dir(workdir)
    d = mh.Mailroot(workdir, name="chrootlink")
    os.rmdir(d.chroot)
    os.symlink(victim, d.chroot)
    log = start_fails(d)
    assert "%s: refused" % d.chroot in log, log


def test_start_fixes_owner_reload_does_not(start_mailroot, sink, workdir):
    """At start a folder with the wrong owner is given to the queue user
    (through its descriptor); a reload leaves existing folders alone and
    gives only a folder it makes."""
    d = mh.Mailroot(workdir, name="owners")
    d.dir("Drop").mkdir(mode=0o750)
    os.chown(d.dir("Drop"), 0, 0)
    try:
        d.start()
        pw = pwd.getpwnam("mailroot")
        assert owner(d.dir("Drop"))[:2] == (pw.pw_uid, pw.pw_gid)
        os.chown(d.dir("Drop"), 0, 0)
        as_user("mailroot", lambda: os.rmdir(d.dir("Badmail")))
        since = len(d.log_text())
        d.proc.send_signal(signal.SIGHUP)
        assert mh.wait_until(lambda: "reloaded" in d.log_text()[since:],
                             10), d.log_text()[since:]
        assert owner(d.dir("Drop"))[:2] == (0, 0)
        assert owner(d.dir("Badmail"))[:2] == (pw.pw_uid, pw.pw_gid)
        os.chown(d.dir("Drop"), pw.pw_uid, pw.pw_gid)
    finally:
        problems = d.stop()
    assert not problems, problems


def test_start_refuses_link_among_parents(workdir):
    """A link on the way to a mailroot is not followed either: whoever
    can change it could point root at another directory."""
    real = root_dir(workdir, "realparent")
    os.chmod(real, 0o755)
    os.symlink(real, Path(workdir, "linkparent"))
    d = mh.Mailroot(workdir, name="linkparent/inner")
    log = start_fails(d)
    assert "%s: refused" % d.mailroot in log, log
