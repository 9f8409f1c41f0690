"""
End to end through a real mailrootd: smtplib -> mailroot -> smart host
(the sink).  What reaches the sink must be the client's message byte for
byte, after the one Received: header mailroot adds.
"""

import smtplib

import pytest

import mailroot_harness as mh


def message(subject, body="Hello from the mailroot tests.\n"):
    return mh.crlf("From: Sender <sender@client.test>\n"
                   "To: rcpt@remote.test\n"
                   "Date: Mon, 30 Nov 2026 10:00:00 +0000\n"
                   "Subject: %s\n"
                   "Message-ID: <%s@client.test>\n"
                   "\n%s" % (subject, subject.replace(" ", "."), body))


def assert_relayed(got, sender, rcpts, data):
    assert got.mail_from == sender
    assert sorted(got.rcpt_tos) == sorted(rcpts)
    received, rest = mh.split_received(got.data)
    assert received.startswith(b"Received: from"), received
    assert rest == data


def test_relay_one_message(mailroot, sink):
    data = message("one message")
    refused = mh.send(mailroot.port, "sender@client.test",
                      ["rcpt@remote.test"], data)
    assert refused == {}
    got = sink.wait_for(1)
    assert len(got) == 1, "sink got %s" % got
    assert_relayed(got[0], "sender@client.test", ["rcpt@remote.test"], data)
    mailroot.wait_queue_empty()


def test_queued_as_reply(mailroot, sink):
    data = message("queued as")
    with smtplib.SMTP("127.0.0.1", mailroot.port, timeout=15) as s:
        s.ehlo("client.test")
        s.mail("sender@client.test")
        s.rcpt("rcpt@remote.test")
        code, text = s.data(data)
    assert code == 250
    assert text.startswith(b"2.0.0 Ok: queued as "), text
    sink.wait_for(1)
    mailroot.wait_queue_empty()


def test_dots_and_long_body(mailroot, sink):
    lines = [".", "..", ".leading dot", "..two leading dots", "a . b",
             ". space after dot", ""]
    # About 300 KB: many lines of 998 characters (the RFC 5322 limit)
    # and some short ones.
    for i in range(300):
        lines.append(("%05d " % i) + "x" * 992)
        lines.append(".%d" % i)
    lines.append(".")
    data = message("dots and a long body", "\n".join(lines) + "\n")
    mh.send(mailroot.port, "sender@client.test", ["rcpt@remote.test"], data)
    got = sink.wait_for(1, timeout=30)
    assert len(got) == 1
    assert_relayed(got[0], "sender@client.test", ["rcpt@remote.test"], data)
    mailroot.wait_queue_empty()


def test_several_recipients(mailroot, sink):
    rcpts = ["a@remote.test", "b@remote.test", "c@other.test"]
    data = message("several recipients")
    assert mh.send(mailroot.port, "sender@client.test", rcpts, data) == {}
    # One transaction per destination is allowed; every recipient must get
    # the message exactly once.
    def all_arrived():
        got = sink.wait_for(1, timeout=0.1)
        return sorted(r for m in got for r in m.rcpt_tos) == sorted(rcpts)
    assert mh.wait_until(all_arrived, 60.0, 0.1), \
        "sink got %s" % sink.messages
    for got in sink.messages:
        assert got.mail_from == "sender@client.test"
        _, rest = mh.split_received(got.data)
        assert rest == data
    mailroot.wait_queue_empty()


def test_two_messages_one_session(mailroot, sink):
    first = message("first of two")
    second = message("second of two", "Another body.\n")
    with smtplib.SMTP("127.0.0.1", mailroot.port, timeout=15) as s:
        s.ehlo("client.test")
        assert s.sendmail("one@client.test", ["x@remote.test"], first) == {}
        assert s.sendmail("two@client.test", ["y@remote.test"], second) == {}
    got = sink.wait_for(2)
    assert len(got) == 2, "sink got %s" % got
    by_sender = {m.mail_from: m for m in got}
    assert set(by_sender) == {"one@client.test", "two@client.test"}
    assert_relayed(by_sender["one@client.test"], "one@client.test",
                   ["x@remote.test"], first)
    assert_relayed(by_sender["two@client.test"], "two@client.test",
                   ["y@remote.test"], second)
    mailroot.wait_queue_empty()


def test_recipient_refused_by_smart_host(mailroot, sink):
    """A recipient the next hop refuses does not hold up the others."""
    sink.reject_rcpt("nobody@remote.test")
    data = message("partly refused")
    mh.send(mailroot.port, "sender@client.test",
            ["nobody@remote.test", "rcpt@remote.test"], data)

    def delivered():
        return [m for m in sink.wait_for(1, timeout=0.1)
                if "rcpt@remote.test" in m.rcpt_tos]
    got = mh.wait_until(delivered, 60.0, 0.1)
    assert len(got) == 1, "sink got %s" % sink.messages
    assert_relayed(got[0], "sender@client.test", ["rcpt@remote.test"], data)
    assert not [m for m in sink.messages
                if "nobody@remote.test" in m.rcpt_tos]


@pytest.fixture
def closed(start_mailroot, sink):
    """A server whose relay list does not include the loopback client."""
    return start_mailroot(sink=sink, relay_allow=("192.0.2.1",))


def test_relay_denied(closed, sink):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as exc:
        mh.send(closed.port, "sender@client.test", ["rcpt@remote.test"],
                message("relay denied"))
    code, text = exc.value.recipients["rcpt@remote.test"]
    assert code in (550, 554), (code, text)
    assert text.startswith(b"5.7.1"), text
    # The file queued opened at MAIL goes when the transaction is reset.
    closed.wait_queue_empty()
    assert sink.wait_for(1, timeout=1.0) == []


def test_relay_denied_does_not_end_session(closed, sink):
    """One refused recipient leaves the transaction usable."""
    data = message("mixed")
    with smtplib.SMTP("127.0.0.1", closed.port, timeout=15) as s:
        s.ehlo("client.test")
        refused = s.sendmail("sender@client.test",
                             ["rcpt@remote.test", "user@local.test"], data)
    assert set(refused) == {"rcpt@remote.test"}
    assert refused["rcpt@remote.test"][0] in (550, 554)
    drops = closed.wait_drop(1)
    assert len(drops) == 1
    assert sink.wait_for(1, timeout=1.0) == []


def test_local_domain_from_anyone(closed, sink):
    """Relay rules apply to remote recipients only (IIS-MODEL.md section 1)."""
    data = message("local from anyone")
    assert mh.send(closed.port, "sender@client.test",
                   ["user@local.test"], data) == {}
    drops = closed.wait_drop(1)
    assert len(drops) == 1
    assert drops[0].read_bytes().endswith(data)
    closed.wait_queue_empty()
