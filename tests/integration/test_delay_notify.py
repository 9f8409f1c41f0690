"""
Delay notifications (`delay-notify`, IIS "Delay notification"): once a
message has waited longer than the setting with recipients pending, its
sender gets one RFC 3464 report with "Action: delayed", at most once per
message (also across a restart: the envelope records it), never for the
null sender.  The queue runs on the test clock (test_schedule.py).
"""

import re

import mailroot_harness as mh
from test_schedule import start_with_clock

HELD = "held@remote.test"
CONF = "    delivery { delay-notify outbound 1h\n expire outbound 1d }"


def queued_envs(d):
    return [p for p in d.dir("Queue").iterdir() if p.suffix == ".env"]


def created(d):
    env = queued_envs(d)
    assert len(env) == 1, env
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
    born = created(d)
    clock.reach(born + 1800)            # half an hour: nothing yet
    assert mh.wait_until(lambda: sink.rejected.count(HELD) >= 2, 30), \
        d.log_text()
    assert len(sink.messages) == 1
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
