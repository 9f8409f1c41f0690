"""
"tls required" (IIS "Require secure channel"): MAIL before STARTTLS is
refused with 530 5.7.0, and mailrootd -n checks the pki files instead of
warning that TLS is missing.  (mailrootd refusing to start without its key
is in test_tls.py.)
"""

import socket

import mailroot_harness as mh
from test_tls import make_cert, pki


def reply(f):
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed"
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)


def test_tls_required_refuses_plain_mail(start_mailroot, sink, workdir):
    crt, key = make_cert(workdir, "mx")
    d = start_mailroot(sink=sink, global_extra=pki(crt, key),
                       server_extra='    pki "mx"\n    tls required')
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as c:
        f = c.makefile("rb")
        assert reply(f).startswith(b"220 ")
        c.sendall(b"EHLO client.test\r\n")
        assert b"250-STARTTLS" in reply(f)
        c.sendall(b"MAIL FROM:<a@client.test>\r\n")
        assert reply(f).startswith(b"530 5.7.0 ")
        c.sendall(b"RCPT TO:<x@local.test>\r\n")
        assert reply(f).startswith(b"503 ")


def tls_conf(tmp_path, crt, key):
    conf = tmp_path / "tls.conf"
    conf.write_text(pki(crt, key) + 'server "s" {\n'
                    '    listen 127.0.0.1:2599\n'
                    '    listen 127.0.0.1:2465 tls\n'
                    '    mailroot "%s"\n    pki "mx"\n    tls required\n}\n'
                    % (tmp_path / "mr"))
    return conf


def test_check_accepts_tls_settings(tmp_path):
    crt, key = make_cert(tmp_path, "mx")
    conf = tls_conf(tmp_path, crt, key)
    r = mh.run_mailrootd("-n", "-f", str(conf))
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr


def test_check_warns_about_missing_key(tmp_path):
    """-n warns (it may run before the files are in place); mailrootd
    itself does not start."""
    crt, _ = make_cert(tmp_path, "mx")
    conf = tls_conf(tmp_path, crt, tmp_path / "missing.key")
    r = mh.run_mailrootd("-n", "-f", str(conf))
    assert r.returncode == 0, r.stderr
    assert "warning: a certificate or key cannot be read" in r.stderr
    assert 'pki "mx": %s: No such file or directory' % (
        tmp_path / "missing.key") in r.stderr, r.stderr
