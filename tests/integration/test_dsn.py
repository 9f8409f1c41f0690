"""
Delivery status notifications (RFC 3464) and Badmail: a recipient the
next hop refuses for good is reported to the envelope sender; a report
that itself cannot be delivered goes to Badmail (.BAD and .BDR), never
round again.
"""

import mailroot_harness as mh


def test_refused_recipient_bounces_to_sender(mailroot, sink):
    sink.reject_rcpt("gone@remote.test", "550 5.1.1 No such user (sink)")
    mh.send(mailroot.port, "writer@local.test", ["gone@remote.test"],
            mh.crlf("Subject: will bounce\nMessage-ID: <b1@client>\n\n"
                    "body\n"))
    # the sender's domain is local: the report lands in Drop
    (path,) = mailroot.wait_drop(1)
    dsn = (mailroot.dir("Drop") / path).read_bytes()
    head, _, _ = dsn.partition(b"\r\n\r\n")
    assert head.startswith(b"x-sender: <>\r\nx-receiver: writer@local.test")
    assert b"Content-Type: multipart/report; report-type=delivery-status" \
        in dsn
    assert b"Final-Recipient: rfc822; gone@remote.test" in dsn
    assert b"Action: failed" in dsn
    assert b"Status: 5.1.1" in dsn
    assert b"Subject: will bounce" in dsn          # original headers
    mailroot.wait_queue_empty()


def test_undeliverable_report_goes_to_badmail(mailroot, sink):
    sink.reject_rcpt("gone@remote.test", "550 5.1.1 No such user (sink)")
    # a null sender: this is itself a report, so it is never bounced
    mh.send(mailroot.port, "", ["gone@remote.test"],
            mh.crlf("Subject: a report\n\nbody\n"))
    bad = mailroot.dir("Badmail")
    assert mh.wait_until(lambda: len(list(bad.iterdir())) >= 2, 60), \
        mailroot.log_text()
    names = sorted(p.suffix for p in bad.iterdir())
    assert names == [".BAD", ".BDR"], names
    bdr = next(bad.glob("*.BDR")).read_bytes()
    assert b"gone@remote.test" in bdr and b"5.1.1" in bdr
    assert b"Subject: a report" in next(bad.glob("*.BAD")).read_bytes()
    assert mailroot.drop_files() == []
    mailroot.wait_queue_empty()
