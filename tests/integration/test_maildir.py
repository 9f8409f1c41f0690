"""
Local delivery into Maildir folders (`deliver maildir PATH`, issue 12):
tmp/ then new/ with a unique name, %d and %u expanded per recipient,
read back with Python's mailbox module; files belong to the queue user
with mode 0600; a local part that cannot name a folder is bounced, an
unwritable tree is retried.
"""

import mailbox
import os
import pwd
import stat

import mailroot_harness as mh

QUEUE_USER = "mailroot"


def maildir_conf(base, extra=""):
    return ('    domain "mail.test" local { deliver maildir "%s/%%d/%%u" }\n'
            '    domain "alias.test" alias-of "mail.test"\n%s'
            % (base, extra))


def make_base(workdir):
    base = workdir / "maildirs"
    base.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam(QUEUE_USER)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    return base


def message(subject, body="Body line.\n.Leading dot.\n"):
    return mh.crlf("From: <sender@client.test>\nTo: alice@mail.test\n"
                   "Subject: %s\n\n%s" % (subject, body))


def wait_new(path, count, timeout=60.0):
    def ready():
        new = path / "new"
        return new.is_dir() and len(os.listdir(new)) >= count
    assert mh.wait_until(ready, timeout, 0.05), \
        "no %d message(s) in %s/new" % (count, path)


def test_maildir_delivery_read_back(start_mailroot, workdir, sink):
    base = make_base(workdir)
    mr = start_mailroot(sink=sink, local_domains=(),
                        server_extra=maildir_conf(base))
    assert mh.send(mr.port, "sender@client.test",
                   ["alice@mail.test", "Bob@alias.test"],
                   message("to maildir")) == {}
    alice = base / "mail.test" / "alice"
    bob = base / "mail.test" / "Bob"
    wait_new(alice, 1)
    wait_new(bob, 1)
    mr.wait_queue_empty()
    for path, rcpt in ((alice, "alice@mail.test"), (bob, "Bob@alias.test")):
        box = mailbox.Maildir(str(path), create=False)
        msgs = list(box)
        assert len(msgs) == 1
        msg = msgs[0]
        assert msg["Subject"] == "to maildir"
        assert msg["Return-Path"] == "<sender@client.test>"
        assert msg["Delivered-To"] == rcpt
        assert msg.get_payload() == "Body line.\n.Leading dot.\n"
        assert os.listdir(path / "tmp") == []
        name = os.listdir(path / "new")[0]
        assert name.count(".") >= 2 and "mx.test.example" in name
        st = os.stat(path / "new" / name)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_nlink == 1
        if os.geteuid() == 0:
            assert st.st_uid == pwd.getpwnam(QUEUE_USER).pw_uid
        for sub in ("tmp", "new", "cur"):
            assert stat.S_IMODE(os.stat(path / sub).st_mode) == 0o700
    assert mr.drop_files() == []
    assert sink.messages == []


def test_maildir_bad_local_part_bounced(start_mailroot, workdir, sink):
    base = make_base(workdir)
    mr = start_mailroot(sink=sink, local_domains=(),
                        server_extra=maildir_conf(base))
    assert mh.send(mr.port, "sender@client.test",
                   ['".hidden"@mail.test', "carol@mail.test"],
                   message("bad local part")) == {}
    wait_new(base / "mail.test" / "carol", 1)
    got = sink.wait_for(1)
    dsn = got[0]
    assert dsn.rcpt_tos == ["sender@client.test"]
    assert b"5.1.3" in dsn.data
    mr.wait_queue_empty()
    assert sorted(os.listdir(base / "mail.test")) == ["carol"]


def test_maildir_unwritable_is_retried(start_mailroot, workdir, sink):
    base = workdir / "maildirs"
    base.mkdir(mode=0o755)      # root's: the queue user cannot write
    if os.geteuid() != 0:
        os.chmod(base, 0o555)
    mr = start_mailroot(sink=sink, local_domains=(),
                        server_extra=maildir_conf(base))
    assert mh.send(mr.port, "sender@client.test", ["dave@mail.test"],
                   message("retry")) == {}
    assert mh.wait_until(lambda: "Maildir delivery to" in mr.log_text(),
                         60.0, 0.1), mr.log_text()

    def envelopes():
        return [mr.dir("Queue") / f for f in mr.queue_files()
                if f.suffix == ".env" and str(f.parent) == "."]
    # its own envelope is written after the attempt
    assert mh.wait_until(lambda: len(envelopes()) == 1, 60.0, 0.1)
    env = envelopes()
    assert mh.wait_until(lambda: b"4.3.0" in env[0].read_bytes(), 60.0, 0.1)
    assert sink.messages == []
    if os.geteuid() != 0:
        os.chmod(base, 0o755)


def test_config_check_maildir_template(workdir):
    conf = workdir / "bad.conf"
    conf.write_text(mh.config_text(mh.free_port(), workdir / "mr",
                                   local_domains=(),
                                   server_extra='    domain "m.test" local '
                                   '{ deliver maildir "/x/%h" }'))
    r = mh.run_mailrootd("-n", "-f", str(conf))
    assert r.returncode != 0
    assert "%d, %u and %% only" in r.stderr + r.stdout
