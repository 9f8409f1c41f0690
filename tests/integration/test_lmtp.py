"""
Local delivery over LMTP (RFC 2033) into a real Dovecot (dovecot-lmtpd),
a private instance with its own base_dir, configuration, passwd-file
userdb and Maildir store in the test's directory (`deliver lmtp PATH` for
a UNIX socket, `deliver lmtp [IP]:PORT` for TCP).  One message to three
recipients gets three answers after DATA: alice is delivered (read back
from Dovecot's Maildir), nobody is refused at RCPT (550: a DSN to the
sender), carol is over quota (452: stays queued for the retry schedule).
"""

import mailbox
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

import mailroot_harness as mh
from test_schedule import start_with_clock

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
QUEUE_USER = "mailroot"

pytestmark = pytest.mark.skipif(
    not os.path.exists(DOVECOT) or os.geteuid() != 0,
    reason="needs Debian's dovecot-core and dovecot-lmtpd, and root")

CONF = """\
base_dir = {run}
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
quota_full_tempfail = yes
mail_location = maildir:{d}/mail/%n
mail_plugins = quota
auth_username_format = %n
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
plugin {{
  quota = maildir:User quota
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    def __init__(self, workdir):
        self.dir = workdir / "dovecot"
        self.dir.mkdir()
        for sub in ("state", "mail"):
            (self.dir / sub).mkdir()
        # socket paths are short (108 bytes): base_dir outside pytest's
        self.run = Path(tempfile.mkdtemp(prefix="dv", dir="/tmp"))
        os.chmod(self.run, 0o755)
        pw = pwd.getpwnam(QUEUE_USER)
        os.chown(self.dir / "mail", pw.pw_uid, pw.pw_gid)
        ids = "%d:%d" % (pw.pw_uid, pw.pw_gid)
        self.users = self.dir / "users"
        self.users.write_text(
            "alice:{PLAIN}x:%s::%s/mail/alice\n"
            "carol:{PLAIN}x:%s::%s/mail/carol::userdb_quota_rule=*:storage=1\n"
            % (ids, self.dir, ids, self.dir))
        self.port = mh.free_port()
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(CONF.format(d=self.dir, run=self.run,
                                         port=self.port))
        self.socket = self.run / "lmtp"

    def start(self):
        subprocess.run([DOVECOT, "-c", str(self.conf)], check=True,
                       timeout=30)
        assert mh.wait_until(lambda: self.socket.exists()
                             and mh.port_accepts(self.port), 30.0, 0.05), \
            self.log()
        return self

    def log(self):
        try:
            return (self.dir / "dovecot.log").read_text()
        except FileNotFoundError:
            return ""

    def stop(self):
        try:
            pid = int((self.run / "master.pid").read_text())
        except (FileNotFoundError, ValueError):
            pid = None
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            mh.wait_until(lambda: not os.path.exists("/proc/%d" % pid),
                          30.0, 0.05)
        shutil.rmtree(self.run, ignore_errors=True)

    def inbox(self, user):
        return mailbox.Maildir(str(self.dir / "mail" / user), create=False)


@pytest.fixture
def dovecot(workdir):
    d = Dovecot(workdir).start()
    yield d
    d.stop()


def lmtp_conf(dest):
    return '    domain "store.test" local { deliver lmtp "%s" }\n' % dest


# over carol's quota of 1 KiB, under alice's (none)
BODY = "Hello.\n.A leading dot.\n" + ("%s\n" % ("x" * 70)) * 30


def message(subject):
    return mh.crlf("From: <sender@client.test>\nTo: alice@store.test\n"
                   "Subject: %s\n\n%s" % (subject, BODY))


def queued_env(mr):
    return [mr.dir("Queue") / f for f in mr.queue_files()
            if f.suffix == ".env" and str(f.parent) == "."]


def mixed_results(start_mailroot, workdir, dovecot, sink, dest):
    mr, clock = start_with_clock(start_mailroot, sink, workdir,
                                 local_domains=(),
                                 server_extra=lmtp_conf(dest))
    rcpts = ["alice@store.test", "nobody@store.test", "carol@store.test"]
    assert mh.send(mr.port, "sender@client.test", rcpts,
                   message("three answers")) == {}
    # alice: 250 after DATA, in Dovecot's store
    new = dovecot.dir / "mail" / "alice" / "new"
    assert mh.wait_until(lambda: new.exists() and len(os.listdir(new)) == 1,
                         60.0, 0.05), dovecot.log()
    got = list(dovecot.inbox("alice"))[0]
    assert got["Subject"] == "three answers"
    assert got.get_payload() == BODY
    # nobody refused at RCPT (550), carol over quota after DATA (452):
    # one failed, one still queued with the reason
    # its own envelope is written after the attempt
    assert mh.wait_until(lambda: len(queued_env(mr)) == 1, 60.0, 0.05)
    env = queued_env(mr)

    def states():
        text = env[0].read_bytes()
        return (b"rcpt S alice@store.test" in text and
                b"rcpt F nobody@store.test" in text and
                b"rcpt P carol@store.test 452" in text)
    assert mh.wait_until(states, 60.0, 0.05), env[0].read_bytes()
    assert sink.messages == []      # the report waits for carol's outcome
    # carol's mailbox grows; a retry delivers her copy (Dovecot notices
    # the changed userdb at its own pace: one retry every 4 hours of the
    # test clock until it does)
    dovecot.users.write_text(dovecot.users.read_text().replace(
        "storage=1\n", "storage=100M\n"))
    carol = dovecot.dir / "mail" / "carol" / "new"

    def carol_has_it():
        return carol.exists() and len(os.listdir(carol)) == 1
    for step in range(1, 11):
        tries = mr.log_text().count("to=<carol@store.test>")
        clock.set(step * 14401)
        assert mh.wait_until(lambda: carol_has_it() or
                             mr.log_text().count("to=<carol@store.test>")
                             > tries, 60.0, 0.05), mr.log_text()
        if mh.wait_until(carol_has_it, 1.0, 0.05):
            break
    assert carol_has_it(), mr.log_text()
    # and now the sender hears about nobody, and only nobody
    dsn = sink.wait_for(1)[0]
    assert dsn.rcpt_tos == ["sender@client.test"]
    assert b"nobody@store.test" in dsn.data and b"5.1.1" in dsn.data
    assert b"Final-Recipient: rfc822; carol" not in dsn.data
    mr.wait_queue_empty()
    assert "relay=lmtp:" in mr.log_text()


def test_lmtp_unix_socket_per_recipient(start_mailroot, workdir, dovecot,
                                        sink):
    mixed_results(start_mailroot, workdir, dovecot, sink, dovecot.socket)


def test_lmtp_tcp_per_recipient(start_mailroot, workdir, dovecot, sink):
    mixed_results(start_mailroot, workdir, dovecot, sink,
                  "[127.0.0.1]:%d" % dovecot.port)


def test_lmtp_server_down_is_retried(start_mailroot, workdir, sink):
    mr = start_mailroot(sink=sink, local_domains=(),
                        server_extra=lmtp_conf(workdir / "no-such-socket"))
    assert mh.send(mr.port, "sender@client.test", ["alice@store.test"],
                   message("nobody listens")) == {}
    assert mh.wait_until(lambda: "cannot connect" in mr.log_text(), 60.0,
                         0.05), mr.log_text()
    # its own envelope is written after the attempt
    assert mh.wait_until(lambda: len(queued_env(mr)) == 1, 60.0, 0.05)
    env = queued_env(mr)
    assert mh.wait_until(lambda: b"4.4.1" in env[0].read_bytes(), 60.0,
                         0.05)
    assert sink.messages == []


def test_config_lmtp_host_must_be_an_address(workdir):
    conf = workdir / "bad.conf"
    conf.write_text(mh.config_text(mh.free_port(), workdir / "mr",
                                   local_domains=(),
                                   server_extra=lmtp_conf("store.example:24")))
    r = mh.run_mailrootd("-n", "-f", str(conf))
    assert r.returncode != 0
    assert "UNIX socket path or an IP address" in r.stderr + r.stdout
