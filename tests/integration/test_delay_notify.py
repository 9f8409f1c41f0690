"""
Delay notifications (`delay-notify`, IIS "Delay notification"): once a
message has waited longer than the setting with recipients pending, its
sender gets one RFC 3464 report with "Action: delayed", at most once per
message (also across a restart: the envelope records it), never for the
null sender.  The queue runs on the test clock (test_schedule.py).
"""

import re
import smtplib

import mailroot_harness as mh
from test_schedule import envelope, start_with_clock

HELD = "held@remote.test"
CONF = "    delivery { delay-notify outbound 1h\n expire outbound 1d }"


def queued_envs(d):
    return [p for p in d.dir("Queue").iterdir() if p.suffix == ".env"]


def attempts(d, k):
    """Waits until queued has recorded k attempts in the envelope: only
    then is the next try scheduled, so the clock may move past it."""
    assert mh.wait_until(lambda: (lambda e: e is not None and
                                  int(e["attempts"]) >= k)(envelope(d)),
                         60), (k, envelope(d), d.log_text())


def created(d):
    # a deferral's envelope is written in the commit worker's next batch
    assert mh.wait_until(lambda: len(queued_envs(d)) == 1, 60), \
        queued_envs(d)
    env = queued_envs(d)
    return int(re.search(r"(?m)^created (\d+)$", env[0].read_text())[1])


def test_one_delay_report_survives_restart(start_mailroot, sink, workdir):
    sink.reject_rcpt(HELD, "451 4.3.0 try later (sink)")
    d, clock = start_with_clock(start_mailroot, sink, workdir,
                                server_extra=CONF)
    assert mh.send(d.port, "a@client.test", [HELD, "ok@remote.test"],
                   mh.crlf("Subject: slow one\n\nbody\n")) == {}
    delivered = sink.wait_for(1)
    assert delivered[0].rcpt_tos == ["ok@remote.test"]
    assert mh.wait_until(lambda: sink.rejected.count(HELD) >= 1, 30)
    attempts(d, 1)
    born = created(d)
    clock.reach(born + 1800)            # half an hour: nothing yet
    assert mh.wait_until(lambda: sink.rejected.count(HELD) >= 2, 30), \
        d.log_text()
    assert len(sink.messages) == 1
    attempts(d, 2)
    clock.reach(born + 3600)            # one hour: the report
    got = sink.wait_for(2)
    report = got[1]
    assert report.mail_from in ("", "<>")
    assert report.rcpt_tos == ["a@client.test"]
    data = report.data.decode()
    assert "Subject: Delivery Status Notification (Delay)" in data
    assert "report-type=delivery-status" in data
    assert "Action: delayed" in data
    assert "Final-Recipient: rfc822; %s" % HELD in data
    assert "Status: 4.3.0" in data
    assert "Will-Retry-Until:" in data
    assert "ok@remote.test" not in data.split("text/rfc822-headers")[0]
    assert "Subject: slow one" in data
    env = [e for e in queued_envs(d) if "delay-notified 1" in e.read_text()]
    assert len(env) == 1
    # more attempts, then a restart: no second report
    attempts(d, 3)
    clock.reach(born + 3 * 3600)
    assert mh.wait_until(lambda: sink.rejected.count(HELD) >= 4, 30), \
        d.log_text()
    assert d.stop() == []
    d2, clock2 = start_with_clock(start_mailroot, sink, workdir,
                                  name="sched", server_extra=CONF)
    clock2.reach(born + 8 * 3600)
    n = sink.rejected.count(HELD)
    assert mh.wait_until(lambda: sink.rejected.count(HELD) > n, 60), \
        d2.log_text()
    assert len(sink.messages) == 2
    assert d2.log_text().count("sender delay notification") == 1


def test_no_delay_report_to_null_sender(start_mailroot, sink, workdir):
    sink.reject_rcpt(HELD, "451 4.3.0 try later (sink)")
    d, clock = start_with_clock(start_mailroot, sink, workdir,
                                server_extra=CONF)
    assert mh.send(d.port, "", [HELD],
                   mh.crlf("Subject: a bounce\n\nbody\n")) == {}
    assert mh.wait_until(lambda: sink.rejected.count(HELD) >= 1, 30)
    born = created(d)
    clock.reach(born + 2 * 3600)
    assert mh.wait_until(lambda: sink.rejected.count(HELD) >= 2, 30), \
        d.log_text()
    assert sink.messages == []
    assert "delay notification" not in d.log_text()
    assert "delay-notified" not in queued_envs(d)[0].read_text()


def send_notify(port, sender, rcpts, subject):
    """One message whose recipients carry NOTIFY values: rcpts is a list
    of (address, NOTIFY value)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        s.ehlo("client.test")
        assert s.mail(sender)[0] == 250
        for addr, notify in rcpts:
            assert s.rcpt(addr, ["NOTIFY=" + notify])[0] == 250
        assert s.data(mh.crlf("Subject: %s\n\nbody\n" % subject))[0] == 250


def test_notify_decides_the_delay_report(start_mailroot, sink, workdir):
    """RFC 3461 4.1: NOTIFY=NEVER, or a NOTIFY list without DELAY, gets no
    delay report; NOTIFY=DELAY gets one, naming only the recipients that
    asked for it."""
    held2 = "held2@remote.test"
    sink.reject_rcpt(HELD, "451 4.3.0 try later (sink)")
    sink.reject_rcpt(held2, "451 4.3.1 try later too (sink)")
    d, clock = start_with_clock(start_mailroot, sink, workdir,
                                server_extra=CONF)
    send_notify(d.port, "quiet@client.test",
                [(HELD, "NEVER"), (held2, "FAILURE,SUCCESS")], "quiet")
    send_notify(d.port, "asks@client.test",
                [(HELD, "DELAY"), (held2, "FAILURE")], "asks")
    assert mh.wait_until(lambda: sink.rejected.count(held2) >= 2, 30), \
        d.log_text()
    envs = queued_envs(d)
    assert len(envs) == 2
    born = max(int(re.search(r"(?m)^created (\d+)$", e.read_text())[1])
               for e in envs)
    # both messages pass the delay time at the same step of the clock,
    # so their timers fire in the same turn of queued's loop
    clock.reach(born + 3600)
    got = sink.wait_for(1)
    report = got[0]
    assert report.rcpt_tos == ["asks@client.test"]
    data = report.data.decode()
    status = data.split("text/rfc822-headers")[0]
    assert "Action: delayed" in status
    assert "Final-Recipient: rfc822; %s" % HELD in status
    assert held2 not in status              # NOTIFY=FAILURE: not told
    assert "Subject: asks" in data
    notified = [e for e in queued_envs(d)
                if "delay-notified 1" in e.read_text()]
    assert len(notified) == 1, [e.read_text() for e in queued_envs(d)]
    assert "asks@client.test" in notified[0].read_text()
    assert d.log_text().count("sender delay notification") == 1
    assert len(sink.messages) == 1
