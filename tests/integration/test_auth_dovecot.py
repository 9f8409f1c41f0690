"""
Inbound SMTP AUTH against a real Dovecot (Debian dovecot-core) through its
auth-client socket (`auth { dovecot PATH }`), the protocol Postfix speaks
with smtpd_sasl_type = dovecot.  A private Dovecot runs in the test's
directory with its own base_dir, configuration and passwd-file passdb
({PLAIN} and {SHA512-CRYPT} passwords).  smtplib authenticates with PLAIN
and LOGIN after STARTTLS: the right password is 235 and opens relay, a
wrong one or an unknown user 535, and with Dovecot stopped the answer is
454 (a temporary failure, logged), never a success.
"""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

import mailroot_harness as mh
from test_auth import REMOTE, hash_pw, tls_smtp, try_auth
from test_tls import make_cert, pki

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

pytestmark = pytest.mark.skipif(
    not os.path.exists(DOVECOT) or os.geteuid() != 0,
    reason="needs Debian's dovecot-core, and root")

CONF = """\
base_dir = {run}
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = lmtp
ssl = no
first_valid_uid = 1
auth_verbose = yes
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0600
  }}
}}
service auth {{
  unix_listener auth-client {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
"""

USERS = {"alice": "pw-plain", "sha@client.test": "p@ss w0rd!"}


class Dovecot:
    def __init__(self, workdir):
        self.dir = workdir / "dovecot"
        self.dir.mkdir()
        (self.dir / "state").mkdir()
        # socket paths are short (108 bytes): base_dir outside pytest's
        self.run = Path(tempfile.mkdtemp(prefix="dva", dir="/tmp"))
        os.chmod(self.run, 0o755)
        (self.dir / "users").write_text(
            "alice:{PLAIN}pw-plain:65534:65534::/nonexistent\n"
            "sha@client.test:{SHA512-CRYPT}%s:65534:65534::/nonexistent\n"
            % hash_pw(USERS["sha@client.test"], "$6$"))
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(CONF.format(d=self.dir, run=self.run))
        self.socket = self.run / "auth-client"

    def start(self):
        subprocess.run([DOVECOT, "-c", str(self.conf)], check=True,
                       timeout=30)
        assert mh.wait_until(self.socket.exists, 30.0, 0.05), self.log()
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
            return
        os.kill(pid, signal.SIGTERM)
        assert mh.wait_until(lambda: not os.path.exists("/proc/%d" % pid),
                             30.0, 0.05)

    def remove(self):
        self.stop()
        shutil.rmtree(self.run, ignore_errors=True)


@pytest.fixture
def dovecot(workdir):
    d = Dovecot(workdir).start()
    yield d
    d.remove()


def start(start_mailroot, sink, workdir, dovecot):
    crt, key = make_cert(workdir, "mx")
    return start_mailroot(
        sink=sink, relay_allow=(), global_extra=pki(crt, key),
        server_extra='    pki "mx"\n    tls optional\n'
        '    auth { dovecot "%s" }\n' % dovecot.socket)


@pytest.mark.parametrize("user", sorted(USERS))
def test_right_and_wrong(start_mailroot, sink, workdir, dovecot, user):
    d = start(start_mailroot, sink, workdir, dovecot)
    password = USERS[user]
    for mech in ("PLAIN", "LOGIN"):
        with tls_smtp(d) as c:
            assert c.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
            code, text = try_auth(c, mech, user, password + "x")
            assert (code, text[:5]) == (535, b"5.7.8"), (mech, code, text)
        with tls_smtp(d) as c:
            code, text = try_auth(c, mech, user, password)
            assert (code, text[:5]) == (235, b"2.7.0"), \
                (mech, code, text, dovecot.log(), d.log_text())
    with tls_smtp(d) as c:
        assert try_auth(c, "PLAIN", "nobody", password)[0] == 535
    # Dovecot saw mailroot's requests as service smtp, over TLS
    assert "auth(%s" % user in dovecot.log() or \
        "passwd-file(%s" % user in dovecot.log(), dovecot.log()


def test_relay_after_dovecot_auth(start_mailroot, sink, workdir, dovecot):
    d = start(start_mailroot, sink, workdir, dovecot)
    msg = mh.crlf("From: a@client.test\nSubject: relayed\n\nhello\n")
    with tls_smtp(d) as c:
        c.mail("a@client.test")
        code, text = c.rcpt(REMOTE)
        assert (code, text[:5]) == (550, b"5.7.1"), (code, text)
        c.rset()
        c.login("alice", "pw-plain")
        c.sendmail("a@client.test", [REMOTE], msg)
    got = sink.wait_for(1)
    assert got[0].rcpt_tos == [REMOTE]
    head = got[0].data.split(b"\r\n\r\n")[0]
    assert b"with ESMTPSA id" in head, head


def test_dovecot_stopped_is_temporary(start_mailroot, sink, workdir,
                                      dovecot):
    d = start(start_mailroot, sink, workdir, dovecot)
    dovecot.stop()  # its master has exited: nobody listens
    for mech in ("PLAIN", "LOGIN"):
        with tls_smtp(d) as c:
            code, text = try_auth(c, mech, "alice", "pw-plain")
            assert (code, text[:5]) == (454, b"4.7.0"), (mech, code, text)
            c.mail("a@client.test")
            assert c.rcpt(REMOTE)[0] == 550
    assert mh.wait_until(
        lambda: 'auth: dovecot "%s"' % dovecot.socket in d.log_text(),
        30.0, 0.05), d.log_text()
    # and back: the next AUTH connects afresh
    dovecot.start()
    with tls_smtp(d) as c:
        assert try_auth(c, "PLAIN", "alice", "pw-plain")[0] == 235
