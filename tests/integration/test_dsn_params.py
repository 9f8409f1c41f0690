"""
DSN parameters (RFC 3461) end to end: MAIL RET and ENVID, RCPT NOTIFY and
ORCPT, validated by smtpd, kept in the queue envelope, honoured by the
reports queued writes, and passed on to a next hop that offers DSN (the
harness's Sink with dsn=True records every MAIL and RCPT argument).  A
next hop without DSN gets no DSN parameter, and a recipient that asked
for NOTIFY=SUCCESS gets a "relayed" report.

The sender's domain is local, so every report lands in Drop.
"""

import pytest

import mailroot_harness as mh
from test_smtp_session import session

MSG = mh.crlf("Subject: dsn params\nMessage-ID: <dsn@client.test>\n\n"
              "the body line\n")


@pytest.fixture
def dsn_sink():
    s = mh.Sink(dsn=True).start()
    yield s
    s.stop()


def reports(mr, count):
    """The Drop files (reports), as bytes, once count are there."""
    files = mr.wait_drop(count)
    assert len(files) == count, files
    return [(mr.dir("Drop") / f).read_bytes() for f in files]


def test_ehlo_offers_dsn(mailroot):
    with session(mailroot, ehlo=None) as c:
        text = c.expect(250, None, "EHLO client.test")
    assert "DSN" in [t.upper() for t in text[1:]], text


@pytest.mark.parametrize("line", [
    "MAIL FROM:<a@local.test> RET=ALL",
    "MAIL FROM:<a@local.test> RET=FULL RET=HDRS",
    "MAIL FROM:<a@local.test> ENVID=a=b",
    "MAIL FROM:<a@local.test> ENVID=",
    "MAIL FROM:<a@local.test> ENVID=" + "x" * 101,
])
def test_bad_mail_values(mailroot, line):
    with session(mailroot) as c:
        c.expect(501, "5.5.4", line)
        c.expect(250, "2.1.0", "MAIL FROM:<a@local.test> RET=HDRS "
                 "ENVID=QQ+2B1")


@pytest.mark.parametrize("param", [
    "NOTIFY=NEVER,SUCCESS", "NOTIFY=ALWAYS", "NOTIFY=", "NOTIFY=DELAY,DELAY",
    "ORCPT=user@local.test", "ORCPT=rfc822;", "ORCPT=rfc822;a=b",
])
def test_bad_rcpt_values(mailroot, param):
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@local.test>")
        c.expect(501, "5.5.4", "RCPT TO:<u@local.test> " + param)
        c.expect(250, "2.1.5", "RCPT TO:<u@local.test> "
                 "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u@local.test")


def test_dsn_switched_off(start_mailroot, sink):
    mr = start_mailroot(sink=sink, server_extra="    extensions { dsn no }")
    with session(mr, ehlo=None) as c:
        text = c.expect(250, None, "EHLO client.test")
        assert "DSN" not in [t.upper() for t in text[1:]], text
        c.expect(555, "5.5.4", "MAIL FROM:<a@local.test> RET=HDRS")
        c.expect(250, "2.1.0", "MAIL FROM:<a@local.test>")
        c.expect(555, "5.5.4", "RCPT TO:<u@local.test> NOTIFY=NEVER")


def test_passed_on_to_next_hop_with_dsn(start_mailroot, dsn_sink):
    mr = start_mailroot(sink=dsn_sink)
    with session(mr) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<writer@local.test> RET=HDRS "
                 "ENVID=QQ+2B1")
        c.expect(250, "2.1.5", "RCPT TO:<x@remote.test> "
                 "NOTIFY=failure,SUCCESS ORCPT=rfc822;x+40remote.test")
        c.expect(250, "2.1.5", "RCPT TO:<y@remote.test>")
        c.expect(354, None, "DATA")
        c.send(MSG + b".\r\n")
        c.expect(250, "2.0.0")
    assert len(dsn_sink.wait_for(1)) == 1
    mail = dsn_sink.mail_args[0]
    assert mail.startswith("FROM:<writer@local.test> SIZE="), mail
    assert mail.endswith(" RET=HDRS ENVID=QQ+2B1"), mail
    assert dsn_sink.rcpt_args == [
        "TO:<x@remote.test> NOTIFY=SUCCESS,FAILURE "
        "ORCPT=rfc822;x+40remote.test",
        "TO:<y@remote.test>"]
    mr.wait_queue_empty()
    # the next hop reports success itself: nothing from us
    assert mr.drop_files() == []


def test_relayed_report_from_next_hop_without_dsn(mailroot, sink):
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<writer@local.test> "
                 "ENVID=env-1")
        c.expect(250, "2.1.5", "RCPT TO:<x@remote.test> NOTIFY=SUCCESS "
                 "ORCPT=rfc822;x@remote.test")
        c.expect(250, "2.1.5", "RCPT TO:<quiet@remote.test>")
        c.expect(354, None, "DATA")
        c.send(MSG + b".\r\n")
        c.expect(250, "2.0.0")
    assert len(sink.wait_for(1)) == 1
    assert sink.mail_args[0].startswith("FROM:<writer@local.test>")
    assert "ENVID" not in sink.mail_args[0]
    assert sink.rcpt_args == ["TO:<x@remote.test>", "TO:<quiet@remote.test>"]
    (dsn,) = reports(mailroot, 1)
    assert dsn.startswith(b"x-sender: <>\r\nx-receiver: writer@local.test")
    assert b"Subject: Delivery Status Notification (Success)" in dsn
    assert b"Original-Envelope-Id: env-1\r\n" in dsn
    assert (b"\r\nOriginal-Recipient: rfc822;x@remote.test\r\n"
            b"Final-Recipient: rfc822; x@remote.test\r\n"
            b"Action: relayed\r\nStatus: 2.0.0\r\n") in dsn
    assert b"quiet@remote.test" not in dsn      # asked for nothing
    assert b"Content-Type: text/rfc822-headers" in dsn
    mailroot.wait_queue_empty()


def test_notify_never_means_no_bounce(mailroot, sink):
    sink.reject_rcpt("gone@remote.test")
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<writer@local.test>")
        c.expect(250, "2.1.5", "RCPT TO:<gone@remote.test> NOTIFY=NEVER")
        c.expect(354, None, "DATA")
        c.send(MSG + b".\r\n")
        c.expect(250, "2.0.0")
    mailroot.wait_queue_empty()
    assert mh.wait_until(lambda: "NOTIFY=NEVER" in mailroot.log_text(), 30)
    assert mailroot.drop_files() == []
    assert sink.rejected == ["gone@remote.test"]


def test_ret_full_returns_the_message(mailroot, sink):
    sink.reject_rcpt("gone@remote.test")
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<writer@local.test> RET=FULL")
        c.expect(250, "2.1.5", "RCPT TO:<gone@remote.test> NOTIFY=FAILURE")
        c.expect(354, None, "DATA")
        c.send(MSG + b".\r\n")
        c.expect(250, "2.0.0")
    (dsn,) = reports(mailroot, 1)
    assert b"Action: failed\r\nStatus: 5.1.1" in dsn
    assert b"Content-Type: message/rfc822\r\n\r\n" in dsn
    assert b"\r\n\r\nthe body line\r\n" in dsn          # the whole message
    mailroot.wait_queue_empty()


def test_success_report_for_local_delivery(mailroot):
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<writer@local.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test> NOTIFY=SUCCESS")
        c.expect(354, None, "DATA")
        c.send(MSG + b".\r\n")
        c.expect(250, "2.0.0")
    got = reports(mailroot, 2)
    dsn = [d for d in got if d.startswith(b"x-sender: <>")]
    assert len(dsn) == 1, got
    assert (b"Final-Recipient: rfc822; user@local.test\r\n"
            b"Action: delivered\r\nStatus: 2.0.0\r\n") in dsn[0]
    mailroot.wait_queue_empty()
