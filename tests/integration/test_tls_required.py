"""
"tls required" (IIS "Require secure channel") fails closed while inbound
STARTTLS is not implemented: every MAIL is refused with 530 5.7.0, and
mailrootd -n says why.
"""

import socket

import mailroot_harness as mh

PKI = ('pki "mx" {\n    certificate "/nonexistent/mx.crt"\n'
       '    key "/nonexistent/mx.key"\n}\n')


def reply(f):
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed"
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)


def test_tls_required_refuses_plain_mail(start_mailroot, sink):
    d = start_mailroot(sink=sink, global_extra=PKI,
                       server_extra='    pki "mx"\n    tls required')
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as c:
        f = c.makefile("rb")
        assert reply(f).startswith(b"220 ")
        c.sendall(b"EHLO client.test\r\n")
        assert reply(f).startswith(b"250")
        c.sendall(b"MAIL FROM:<a@client.test>\r\n")
        assert reply(f).startswith(b"530 5.7.0 ")
        c.sendall(b"RCPT TO:<x@local.test>\r\n")
        assert reply(f).startswith(b"503 ")


def test_check_warns_about_tls_required(tmp_path):
    conf = tmp_path / "tls.conf"
    conf.write_text(PKI + 'server "s" {\n    listen 127.0.0.1:2599\n'
                    '    mailroot "%s"\n    pki "mx"\n    tls required\n}\n'
                    % (tmp_path / "mr"))
    r = mh.run_mailrootd("-n", "-f", str(conf))
    assert r.returncode == 0, r.stderr
    assert "warning: inbound STARTTLS is not implemented yet" in r.stderr
    assert "%s:9:9:" % conf in r.stderr, r.stderr
