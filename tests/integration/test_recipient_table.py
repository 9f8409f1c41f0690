"""
A local domain with a recipient table rejects unknown recipients at RCPT
with 550 5.1.1; users in the table and in the domain's aliases are
accepted; a domain without a table accepts everyone (IIS); a table that
cannot be read answers 451 4.3.0, never an open door.  smtpd has no files:
it asks queued (MR_Q_RCPT_CHECK) and the session waits for the verdict.
"""

import smtplib
import socket
import subprocess

import mailroot_harness as mh

MAKEMAP = mh.BUILDDIR / "tools" / "mailroot-makemap"


def tables(workdir):
    d = workdir / "tables"
    d.mkdir(exist_ok=True)
    mh.make_traversable(d)
    (d / "users").write_text("alice x\nbob@local.test x\n")
    (d / "aliases").write_text("sales alice\n")
    for name in ("users", "aliases"):
        p = subprocess.run([str(MAKEMAP), str(d / name)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    return d


def start(start_mailroot, sink, workdir, users_path=None):
    d = tables(workdir)
    users = users_path or d / "users.db"
    return start_mailroot(
        sink=sink, local_domains=("open.test",),
        global_extra="table users db:%s\ntable al db:%s" % (
            users, d / "aliases.db"),
        server_extra='    domain "local.test" local { recipients users; '
                     'aliases al }\n    domain "alias.test" alias-of '
                     '"local.test"')


def rcpt_codes(port, rcpts):
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.ehlo("client.test")
        c.mail("s@client.test")
        codes = [c.rcpt(r) for r in rcpts]
        c.rset()
        return codes


def test_unknown_rejected_known_and_alias_accepted(start_mailroot, sink,
                                                   workdir):
    d = start(start_mailroot, sink, workdir)
    got = rcpt_codes(d.port, ["alice@local.test", "Bob@Local.Test",
                              "sales@local.test", "mallory@local.test",
                              "alice@alias.test", "eve@alias.test",
                              "anyone@open.test", "postmaster"])
    codes = [c for c, _ in got]
    assert codes == [250, 250, 250, 550, 250, 550, 250, 250], got
    assert got[3][1].startswith(b"5.1.1 <mallory@local.test>")
    assert "not in the recipient table" in d.log_text()


def test_pipelined_rcpts_keep_their_order(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    with socket.create_connection(("127.0.0.1", d.port), timeout=60) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220")
        s.sendall(b"EHLO c\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        s.sendall(b"MAIL FROM:<s@client.test>\r\n"
                  b"RCPT TO:<x@local.test>\r\nRCPT TO:<alice@local.test>\r\n"
                  b"RCPT TO:<y@open.test>\r\nDATA\r\n")
        replies = [f.readline()[:3] for _ in range(5)]
        assert replies == [b"250", b"550", b"250", b"250", b"354"], replies
        s.sendall(b"Subject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        assert f.readline().startswith(b"250")
    assert len(d.wait_drop(1)) == 1


def test_missing_table_is_a_temporary_failure(start_mailroot, sink,
                                              workdir):
    d = start(start_mailroot, sink, workdir)
    (workdir / "tables" / "users.db").unlink()
    got = rcpt_codes(d.port, ["alice@local.test", "anyone@open.test"])
    assert [c for c, _ in got] == [451, 250], got
    assert got[0][1].startswith(b"4.3.0")
