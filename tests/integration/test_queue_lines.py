"""
New mail is not held up behind a retry pass (issue 17).

When more messages are due than deliverd takes at once (MR_JOBS_MAX,
1000), the rest wait for room.  Messages never tried wait in a line of
their own that goes first (with one place in four kept for retries), so a
flush or a restart over a big queue does not make what arrives meanwhile
wait until every deferred message was tried again.
"""

import os
import smtplib
import threading
import time

import mailroot_harness as mh

RETRIES = 1600          # MR_JOBS_MAX at deliverd, 600 waiting for room
BODY = b"Subject: deferred\r\n\r\nwaits for its next try\r\n"


def envelope(mid, rcpt):
    return ("mailroot-envelope 1\nid %s\ncreated %d\nnext-try 0\n"
            "attempts 1\nsize %d\nclient 127.0.0.1\nhelo test\n"
            "sender a@client.test\nrcpt P %s 451+20later\nend\n" % (
                mid, int(time.time()), len(BODY), rcpt)).encode()


def fill(d, n):
    q = d.dir("Queue")
    st = os.stat(q)
    for i in range(n):
        mid = "0F31%020X" % i
        for ext, data in (("eml", BODY),
                          ("env", envelope(mid, "r%d@remote.test" % i))):
            path = q / ("%s.%s" % (mid, ext))
            path.write_bytes(data)
            os.chown(path, st.st_uid, st.st_gid)
            os.chmod(path, 0o640)


def test_new_mail_goes_before_waiting_retries(start_mailroot, sink):
    d = start_mailroot(sink)
    assert d.stop() == []
    fill(d, RETRIES)
    sink.hold = threading.Event()       # every DATA waits: deliverd fills up
    try:
        d.returncode = None
        d.start()
        assert mh.wait_until(lambda: len(sink.messages) >= 1, 120, 0.05)
        with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as s:
            s.sendmail("new@client.test", ["fresh@remote.test"],
                       b"Subject: new\r\n\r\narrived during the pass\r\n")
    finally:
        sink.hold.set()
    got = sink.wait_for(RETRIES + 1, timeout=300)
    rcpts = [m.rcpt_tos[0].lower() for m in got]
    assert len(rcpts) == RETRIES + 1, d.log_text()[-3000:]
    pos = rcpts.index("fresh@remote.test")
    # the jobs deliverd already holds go first, then the new message:
    # not after the 600 retries that waited for room before it came
    assert pos < RETRIES - 300, pos
