"""
masquerade-domain (IIS "Masquerade domain"): deliverd replaces the domain
of the envelope sender of outgoing mail at MAIL FROM; the local part, the
null sender and the message's header fields stay as they are.
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
