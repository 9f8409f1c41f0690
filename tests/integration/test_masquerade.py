"""
masquerade-domain (IIS "Masquerade domain"): deliverd replaces the domain
of the envelope sender of outgoing mail at MAIL FROM; the local part, the
null sender and the message's header fields stay as they are, unless
masquerade-from asks for the From fields too (not in IIS).
"""

import mailroot_harness as mh

MASQ = '    masquerade-domain "masq.test"'


def test_sender_domain_rewritten(start_mailroot, sink):
    d = start_mailroot(sink=sink, server_extra=MASQ)
    data = mh.crlf("From: Alice <alice@inside.test>\nSubject: out\n\nb\n")
    assert mh.send(d.port, "alice@inside.test", ["bob@remote.test"],
                   data) == {}
    got = sink.wait_for(1)[0]
    assert got.mail_from == "alice@masq.test"
    assert got.rcpt_tos == ["bob@remote.test"]
    assert b"From: Alice <alice@inside.test>" in got.data
    d.wait_queue_empty()


def test_null_sender_stays_null(start_mailroot, sink):
    d = start_mailroot(sink=sink, server_extra=MASQ)
    assert mh.send(d.port, "", ["bob@remote.test"],
                   mh.crlf("Subject: a report\n\nb\n")) == {}
    got = sink.wait_for(1)[0]
    assert got.mail_from in ("", "<>")
    d.wait_queue_empty()


def test_no_masquerade_by_default(mailroot, sink):
    assert mh.send(mailroot.port, "alice@inside.test", ["bob@remote.test"],
                   mh.crlf("Subject: plain\n\nb\n")) == {}
    assert sink.wait_for(1)[0].mail_from == "alice@inside.test"


MASQ_FROM = MASQ + "\n    masquerade-from yes"


def header_of(data):
    return data.split(b"\r\n\r\n", 1)[0].decode()


def test_from_fields_rewritten_when_asked(start_mailroot, sink):
    """masquerade-from yes: every address of the From fields gets the
    masquerade domain, an "@" in a display name, a comment or a route
    does not; other fields and the body stay as they were."""
    d = start_mailroot(sink=sink, server_extra=MASQ_FROM)
    head = ('From: "alice@home.test" <alice@inside.test> (via x@y.test),\n'
            '\tbob@inside.test, Carol <@relay.test:carol@[10.0.0.1]>\n'
            'Sender: alice@inside.test\nReply-To: alice@inside.test\n'
            'Subject: out\n')
    body = "From: kept@inside.test\n" + "x" * 100 + "\n"
    small = mh.crlf(head + "\n" + body)
    # one big enough to go out by sendfile, from the file's offsets
    big = mh.crlf(head + "\n" + body * 1200)
    assert len(big) > 128 * 1024
    for data in (small, big):
        assert mh.send(d.port, "alice@inside.test", ["bob@remote.test"],
                       data) == {}
    got = sink.wait_for(2)
    for msg, sent in zip(sorted(got, key=lambda m: len(m.data)),
                         (small, big)):
        assert msg.mail_from == "alice@masq.test"
        h = header_of(msg.data)
        assert ("\r\n" + h).count(
            '\r\nFrom: "alice@home.test" <alice@masq.test> (via x@y.test),\r\n'
            '\tbob@masq.test, Carol <@relay.test:carol@masq.test>\r\n'
            'Sender: alice@inside.test\r\nReply-To: alice@inside.test\r\n'
            'Subject: out\r\n') == 1, h
        # the body, byte for byte (the sink undoes the dot-stuffing)
        assert msg.data.split(b"\r\n\r\n", 1)[1] == \
            sent.split(b"\r\n\r\n", 1)[1]
    d.wait_queue_empty()


def test_from_kept_for_null_sender_and_by_default(start_mailroot, sink):
    d = start_mailroot(sink=sink, server_extra=MASQ_FROM)
    assert mh.send(d.port, "", ["bob@remote.test"],
                   mh.crlf("From: postmaster@inside.test\n\nb\n")) == {}
    got = sink.wait_for(1)[0]
    assert "From: postmaster@inside.test\r\n" in header_of(got.data)
    d.wait_queue_empty()


def test_masquerade_from_needs_domain(tmp_path):
    conf = tmp_path / "m.conf"
    conf.write_text('hostname "mx.test.example"\nserver "s" {\n'
                    '    listen 127.0.0.1:2525\n'
                    '    mailroot "/var/spool/mailroot/s"\n'
                    '    masquerade-from yes\n}\n')
    proc = mh.run_mailrootd("-n", "-f", conf)
    assert proc.returncode != 0
    assert "masquerade-from needs a masquerade-domain" in proc.stderr
