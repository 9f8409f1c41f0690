"""
A stop loses no delivery's result.  mailrootd stops deliverd before
queued (master/supervise.c stop_step); deliverd finishes the deliveries
that are running (for up to 10 seconds) and reports each to queued before
it exits, and queued reads every report deliverd sent before it went,
so that a message delivered during the stop leaves Queue.  A report lost
there would leave a delivered message queued, to be delivered again at
the next start.  The second test stops queued (SIGSTOP) while deliverd
finishes hundreds of deliveries, so that their results wait in the
channel when deliverd exits and queued is told to stop.
"""

import json
import os
import re
import signal
import smtplib
import threading

import pytest

import mailroot_harness as mh
from test_recover_slices import control_conf, ctl

N = 3
STOPPING = re.compile(r"deliverd\[\d+\]: shutting down")


def test_deliveries_finished_during_a_stop_leave_the_queue(start_mailroot,
                                                          sink):
    d = start_mailroot(sink=sink)
    sink.hold = threading.Event()
    rcpts = ["r%d@remote.test" % i for i in range(N)]
    assert mh.send(d.port, "a@client.test", rcpts,
                   mh.crlf("Subject: stop\n\nstop\n")) == {}
    # the message is at the sink, its reply to DATA held
    assert len(sink.wait_for(1, 60)) == 1, d.log_text()[-3000:]
    d.proc.send_signal(signal.SIGTERM)
    assert mh.wait_until(lambda: STOPPING.search(d.log_text()), 60, 0.05), \
        d.log_text()[-3000:]
    sink.hold.set()
    assert d.stop() == [], d.log_text()[-3000:]
    assert not [f for f in d.queue_files() if f.suffix in (".eml", ".env")], \
        (d.queue_files(), d.log_text()[-3000:])
    # and the next start sends nothing again
    d.returncode = None
    d.start()
    assert mh.wait_until(lambda: d.log_text().count("Pickup: watching") >= 2,
                         60, 0.05), d.log_text()[-3000:]
    d.wait_queue_empty()
    assert len(sink.messages) == 1
    assert sorted(sink.messages[0].rcpt_tos) == rcpts


def active(sock):
    p = ctl(sock, "stats", "--json")
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)["total"]["active"]


# queued let go on once deliverd has exited (200 results: the channel
# holds them all; queued must read them before it exits), or once it is
# stopping (1000: more than the channel holds; deliverd must wait for
# room to write the rest before it exits)
EXITED = re.compile(r"deliverd \(pid \d+\) exited")


@pytest.mark.parametrize("k, cont_after", [(200, EXITED), (1000, STOPPING)],
                         ids=["read-to-the-end", "deliverd-drains"])
def test_results_waiting_in_the_channel_are_read(start_mailroot, sink,
                                                 workdir, k, cont_after):
    sock, extra = control_conf(workdir)
    d = start_mailroot(sink=sink, global_extra=extra)
    sink.hold = threading.Event()
    with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as c:
        c.ehlo("client.test")
        for i in range(k):
            assert c.sendmail("a@client.test", ["w%d@remote.test" % i],
                              mh.crlf("Subject: w %d\n\nw %d\n" % (i, i))) \
                == {}
    # every message is at deliverd
    assert mh.wait_until(lambda: active(sock) == k, 60, 0.1), \
        (active(sock), d.log_text()[-3000:])
    queued = mh.children(d.pid)["queued"]
    os.kill(queued, signal.SIGSTOP)
    try:
        sink.hold.set()
        assert mh.wait_until(lambda: d.log_text().count("status=sent") >= k,
                             120, 0.1), d.log_text()[-3000:]
        d.proc.send_signal(signal.SIGTERM)
        assert mh.wait_until(lambda: cont_after.search(d.log_text()), 60,
                             0.05), d.log_text()[-3000:]
    finally:
        os.kill(queued, signal.SIGCONT)
    assert d.stop() == [], d.log_text()[-3000:]
    left = [f for f in d.queue_files() if f.suffix in (".eml", ".env")]
    assert left == [], (len(left), d.log_text()[-3000:])
    d.returncode = None
    d.start()
    assert mh.wait_until(lambda: d.log_text().count("Pickup: watching") >= 2,
                         60, 0.05), d.log_text()[-3000:]
    d.wait_queue_empty()
    got = sorted(r for m in sink.messages for r in m.rcpt_tos)
    assert got == sorted("w%d@remote.test" % i for i in range(k))
