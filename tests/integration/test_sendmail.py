"""
mailroot-sendmail, the sendmail-compatible injector: PHP's mail() through
it, a shell's -t with Bcc, -f, -bs, -bv, exit codes from sysexits.h, and
who may submit (submit-users, submit-sender-users), checked by queued from
the socket's peer credentials.  Each message is followed to the harness
Sink, which must see the right envelope and the fields queued adds.
"""

import email
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import mailroot_harness as mh

SENDMAIL = mh.BUILDDIR / "tools" / "mailroot-sendmail"
WAIT = 120
FQDN = "mx.test.example"        # the harness's hostname

# sysexits.h
EX_USAGE, EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE = 64, 65, 67, 69
EX_NOPERM = 77

needs_root = pytest.mark.skipif(not mh.IS_ROOT,
                                reason="runs the injector as other users")


def start(start_mailroot, sink, workdir, extra=""):
    sock = Path(workdir) / "run" / "submit"
    d = start_mailroot(sink=sink, global_extra='submit-socket "%s"\n%s'
                       % (sock, extra))
    d.sock = sock
    assert mh.wait_until(lambda: sock.exists(), WAIT, 0.05), d.log_text()
    return d


def inject(d, args, data, user=None, env_socket=False):
    """Runs mailroot-sendmail (as user, through runuser) with data on
    standard input; the CompletedProcess."""
    cmd = [str(SENDMAIL)]
    env = dict(os.environ)
    if env_socket:
        env["MAILROOT_SUBMIT_SOCKET"] = str(d.sock)
    else:
        cmd += ["-C", str(d.conf)]
    cmd += list(args)
    if user is not None:
        cmd = ["runuser", "-u", user, "--"] + cmd
    return subprocess.run(cmd, input=data, capture_output=True,
                          timeout=WAIT, env=env)


def one(sink, count):
    got = sink.wait_for(count, WAIT)
    assert len(got) >= count, "only %d message(s) reached the sink" % len(
        got)
    return got[count - 1]


def headers(msg):
    return email.message_from_bytes(msg.data)


def test_arguments_and_added_fields(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    p = inject(d, ["-i", "rcpt@remote.example"],
               b"Subject: plain\n\nline one\n.\n..two dots\n")
    assert p.returncode == 0, p.stderr
    m = one(sink, 1)
    assert m.rcpt_tos == ["rcpt@remote.example"]
    assert m.mail_from == "root@" + FQDN
    h = headers(m)
    assert h["From"] == "root@" + FQDN
    assert h["Date"] and h["Message-ID"].endswith("@%s>" % FQDN)
    assert "local user root (uid 0)" in h["Received"]
    # -i: a lone "." is text; dots come back as they went in
    body = m.data.split(b"\r\n\r\n", 1)[1]
    assert body == b"line one\r\n.\r\n..two dots\r\n"


def test_dot_ends_message_without_i(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    p = inject(d, ["-F", "Cron Daemon", "rcpt@remote.example"],
               b"Subject: cut\n\nkept\n.\nnot sent\n")
    assert p.returncode == 0, p.stderr
    m = one(sink, 1)
    assert m.data.split(b"\r\n\r\n", 1)[1] == b"kept\r\n"
    assert headers(m)["From"] == '"Cron Daemon" <root@%s>' % FQDN


def test_t_with_bcc_and_f(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    msg = (b"From: App <app@remote.example>\nTo: a@remote.example\n"
           b"Cc: Bee <b@remote.example>\nBcc: hidden@remote.example\n"
           b"Subject: t\nDate: Mon, 30 Nov 2026 10:00:00 +0000\n"
           b"Message-ID: <own@app>\n\nhello\n")
    p = inject(d, ["-t", "-i", "-f", "bounces@remote.example"], msg)
    assert p.returncode == 0, p.stderr
    m = one(sink, 1)
    assert sorted(m.rcpt_tos) == ["a@remote.example", "b@remote.example",
                                  "hidden@remote.example"]
    assert m.mail_from == "bounces@remote.example"
    h = headers(m)
    assert h["Bcc"] is None and b"hidden" not in m.data
    # present fields are kept, not doubled
    assert h.get_all("Message-ID") == ["<own@app>"]
    assert h.get_all("From") == ["App <app@remote.example>"]


def test_bs_smtp_session(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    session = (b"EHLO me\r\nMAIL FROM:<>\r\nRCPT TO:<x@remote.example>\r\n"
               b"DATA\r\nSubject: bs\r\n\r\n..stuffed\r\n.\r\nQUIT\r\n")
    p = inject(d, ["-bs"], session)
    assert p.returncode == 0
    out = p.stdout.decode()
    assert out.startswith("220 ") and "250 2.0.0 queued as" in out, out
    m = one(sink, 1)
    assert m.mail_from == "<>" and m.rcpt_tos == ["x@remote.example"]
    assert m.data.split(b"\r\n\r\n", 1)[1] == b".stuffed\r\n"


def test_exit_codes(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    assert inject(d, ["-X"], b"").returncode == EX_USAGE
    assert inject(d, [], b"x\n").returncode == EX_USAGE   # no recipient
    assert inject(d, ["bad address"], b"x\n").returncode == EX_DATAERR
    # -t, and no address in the header
    assert inject(d, ["-t"], b"Subject: x\n\nx\n").returncode == EX_DATAERR
    p = inject(d, ["-bv", "ok@remote.example", "not ok"], b"")
    assert p.returncode == EX_NOUSER
    assert b"ok@remote.example... syntax ok" in p.stdout
    # -bp and -q need the control-socket, which this configuration lacks
    p = inject(d, ["-bp"], b"")
    assert p.returncode == EX_UNAVAILABLE and b"control-socket" in p.stderr
    assert inject(d, ["-qSsomeone"], b"").returncode == EX_USAGE
    env = dict(os.environ,
               MAILROOT_SUBMIT_SOCKET=str(Path(workdir) / "nothing"))
    p = subprocess.run([str(SENDMAIL), "a@remote.example"], input=b"x\n",
                       capture_output=True, timeout=WAIT, env=env)
    assert p.returncode == EX_UNAVAILABLE and b"cannot reach" in p.stderr
    assert sink.messages == []


@needs_root
def test_other_user_sender_rules(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    # nobody may send as itself ...
    p = inject(d, ["a@remote.example"], b"Subject: n\n\nx\n", user="nobody",
               env_socket=True)
    assert p.returncode == 0, p.stderr
    m = one(sink, 1)
    assert m.mail_from == "nobody@" + FQDN
    assert "local user nobody (uid 65534)" in headers(m)["Received"]
    # ... and with its own -f, qualified ...
    p = inject(d, ["-f", "nobody", "a@remote.example"], b"x\n",
               user="nobody", env_socket=True)
    assert p.returncode == 0, p.stderr
    assert one(sink, 2).mail_from == "nobody@" + FQDN
    # ... but not as another: refused, not rewritten
    p = inject(d, ["-f", "boss@remote.example", "a@remote.example"],
               b"x\n", user="nobody", env_socket=True)
    assert p.returncode == EX_NOPERM
    assert b"submit-sender-users" in p.stderr
    assert "may not set the envelope sender" in d.log_text()
    assert len(sink.messages) == 2


@needs_root
def test_submit_users_restricts(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir,
              extra="submit-users mailroot-deliver\n"
                    "submit-sender-users @nogroup")
    p = inject(d, ["a@remote.example"], b"x\n", user="mailroot-smtpd",
               env_socket=True)
    assert p.returncode == EX_NOPERM, p.stderr
    assert b"may not submit" in p.stderr
    p = inject(d, ["-f", "any@remote.example", "a@remote.example"],
               b"Subject: ok\n\nx\n", user="mailroot-deliver",
               env_socket=True)
    assert p.returncode == EX_NOPERM    # not in @nogroup
    p = inject(d, ["a@remote.example"], b"Subject: ok\n\nx\n",
               user="mailroot-deliver", env_socket=True)
    assert p.returncode == 0, p.stderr
    assert one(sink, 1).mail_from == "mailroot-deliver@" + FQDN
    # root may always, and with any sender
    p = inject(d, ["-f", "boss@remote.example", "a@remote.example"],
               b"x\n")
    assert p.returncode == 0, p.stderr
    assert one(sink, 2).mail_from == "boss@remote.example"


@pytest.mark.skipif(shutil.which("php") is None,
                    reason="php-cli is not installed (contrib/setup)")
def test_php_mail(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    path = "%s -t -i -C %s" % (SENDMAIL, d.conf)
    code = ('exit(mail("dest@remote.example", "From PHP", "Hello\\n.\\nend",'
            ' "From: web@remote.example", "-fweb@remote.example")'
            ' ? 0 : 1);')
    p = subprocess.run(["php", "-n", "-d", "sendmail_path=" + path, "-r",
                        code], capture_output=True, timeout=WAIT)
    assert p.returncode == 0, p.stdout + p.stderr
    m = one(sink, 1)
    assert m.rcpt_tos == ["dest@remote.example"]
    assert m.mail_from == "web@remote.example"
    h = headers(m)
    assert h["Subject"] == "From PHP" and h["To"] == "dest@remote.example"
    assert h["Date"] and h["Message-ID"]
    assert m.data.split(b"\r\n\r\n", 1)[1] == b"Hello\r\n.\r\nend\r\n"
