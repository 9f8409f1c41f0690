"""
SMTPUTF8 (RFC 6531): UTF-8 in the local part and domain of MAIL and RCPT
addresses of a transaction that gave MAIL ... SMTPUTF8; such an address
without it is 553 5.6.7; invalid UTF-8 is a syntax error; the flag goes
with the message to a next hop that offers SMTPUTF8, and a message with a
non-ASCII address fails with a 5.6.7 DSN where the next hop does not.
"""

import smtplib
import socket

import mailroot_harness as mh

UMLAUT = "j\u00f6rg"                        # jörg
CJK = "\u7528\u6237"                        # two CJK characters
BODY = mh.crlf("Subject: utf8\n\nbody\n")


def chat(port, lines):
    """One raw session: EHLO, then each line; the replies (bytes) in
    order, EHLO's last line first."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
        f = c.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                assert line, "connection closed"
                if line[3:4] != b"-":
                    return line

        reply()                                 # greeting
        c.sendall(b"EHLO client.test\r\n")
        out = [reply()]
        for line in lines:
            c.sendall(line + b"\r\n")
            out.append(reply())
        c.sendall(b"QUIT\r\n")
        return out


def ehlo_keywords(port):
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        s.ehlo("client.test")
        return s.esmtp_features


def test_ehlo_offers_smtputf8_and_drop_keeps_bytes(mailroot):
    assert "smtputf8" in ehlo_keywords(mailroot.port)
    sender = UMLAUT + "@local.test"
    rcpt = CJK + "@local.test"
    with smtplib.SMTP("127.0.0.1", mailroot.port, timeout=60) as s:
        s.ehlo("client.test")
        assert s.sendmail(sender, [rcpt], BODY,
                          mail_options=["SMTPUTF8"]) == {}
    (path,) = mailroot.wait_drop(1)
    eml = (mailroot.dir("Drop") / path).read_bytes()
    head = eml.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"x-sender: " + sender.encode() +
                           b"\r\nx-receiver: " + rcpt.encode() + b"\r\n")
    mailroot.wait_queue_empty()


def test_utf8_without_parameter_refused(mailroot):
    u = UMLAUT.encode()
    r = chat(mailroot.port, [
        b"MAIL FROM:<" + u + b"@local.test>",
        b"MAIL FROM:<a@local.test>",
        b"RCPT TO:<" + u + b"@local.test>",
        b"RSET",
        # strictly valid UTF-8 only, even with the parameter
        b"MAIL FROM:<j\xc0\xafrg@local.test> SMTPUTF8",          # overlong
        b"MAIL FROM:<j\xed\xa0\x80@local.test> SMTPUTF8",        # surrogate
        b"MAIL FROM:<j\xc2\x85@local.test> SMTPUTF8",            # C1
        b"MAIL FROM:<j\xff@local.test> SMTPUTF8",
        b"MAIL FROM:<a@local.test> SMTPUTF8",
        b"RCPT TO:<x\xc3@local.test>",                           # truncated
        b"RCPT TO:<" + u + b"@local.test>",
    ])
    assert r[1].startswith(b"553 5.6.7 "), r[1]
    assert r[2].startswith(b"250 "), r[2]
    assert r[3].startswith(b"553 5.6.7 "), r[3]
    for i in (5, 6, 7, 8):
        assert r[i].startswith(b"501 "), (i, r[i])
    assert r[9].startswith(b"250 "), r[9]
    assert r[10].startswith(b"501 "), r[10]
    assert r[11].startswith(b"250 "), r[11]


def test_switch_off(start_mailroot, sink):
    m = start_mailroot(sink=sink,
                       server_extra="    extensions { smtputf8 no }")
    assert "smtputf8" not in ehlo_keywords(m.port)
    r = chat(m.port, [b"MAIL FROM:<a@local.test> SMTPUTF8",
                      b"MAIL FROM:<" + UMLAUT.encode() + b"@local.test>"])
    assert r[1].startswith(b"555 5.5.4 "), r[1]
    assert r[2].startswith(b"553 5.6.7 "), r[2]


def test_next_hop_with_smtputf8(start_mailroot):
    hop = mh.Sink(smtputf8=True).start()
    try:
        m = start_mailroot(sink=hop)
        rcpt = UMLAUT + "@b\u00fccher.test"      # a UTF-8 domain too
        with smtplib.SMTP("127.0.0.1", m.port, timeout=60) as s:
            s.ehlo("client.test")
            s.sendmail("writer@local.test", [rcpt, "plain@remote.test"],
                       BODY, mail_options=["SMTPUTF8"])
        (got,) = hop.wait_for(1)
        assert sorted(got.rcpt_tos) == sorted([rcpt, "plain@remote.test"])
        assert "SMTPUTF8" in hop.mail_args[0].split()
        m.wait_queue_empty()
    finally:
        hop.stop()


def test_next_hop_without_smtputf8_bounces(mailroot, sink):
    rcpt = CJK + "@remote.test"
    with smtplib.SMTP("127.0.0.1", mailroot.port, timeout=60) as s:
        s.ehlo("client.test")
        s.sendmail("writer@local.test", [rcpt], BODY,
                   mail_options=["SMTPUTF8"])
    (path,) = mailroot.wait_drop(1)
    dsn = (mailroot.dir("Drop") / path).read_bytes()
    assert b"x-receiver: writer@local.test" in dsn
    assert b"Status: 5.6.7" in dsn
    assert b"does not support SMTPUTF8" in dsn
    assert sink.messages == []
    mailroot.wait_queue_empty()
    # flagged but all ASCII: goes as usual, without the parameter
    with smtplib.SMTP("127.0.0.1", mailroot.port, timeout=60) as s:
        s.ehlo("client.test")
        s.sendmail("writer@local.test", ["plain@remote.test"], BODY,
                   mail_options=["SMTPUTF8"])
    (got,) = sink.wait_for(1)
    assert got.rcpt_tos == ["plain@remote.test"]
    assert "SMTPUTF8" not in sink.mail_args[-1]
    mailroot.wait_queue_empty()


def test_utf8_local_domain_matches_by_bytes(start_mailroot, sink):
    # no IDNA: the configured U-label matches itself after ASCII
    # lower-casing, and nothing else
    m = start_mailroot(sink=sink,
                       local_domains=("local.test", "b\u00fccher.test"))
    rcpt = UMLAUT + "@B\u00fcCHER.test"
    with smtplib.SMTP("127.0.0.1", m.port, timeout=60) as s:
        s.ehlo("client.test")
        s.sendmail("writer@local.test", [rcpt], BODY,
                   mail_options=["SMTPUTF8"])
    (path,) = m.wait_drop(1)
    eml = (m.dir("Drop") / path).read_bytes()
    assert b"x-receiver: " + (UMLAUT + "@b\u00fccher.test").encode() in eml
    # not local, and not relayed for a client outside "relay allow"
    m2 = start_mailroot(sink=sink, name="norelay", relay_allow=(),
                        local_domains=("local.test", "b\u00fccher.test"))
    r = chat(m2.port, [b"MAIL FROM:<a@local.test> SMTPUTF8",
                       "RCPT TO:<a@xn--bcher-kva.test>".encode(),
                       "RCPT TO:<a@B\u00dcCHER.test>".encode()])
    assert r[2].startswith(b"550 5.7.1 "), r[2]
    assert r[3].startswith(b"550 5.7.1 "), r[3]
