"""
The queue's schedule on a test clock: retries follow the configured
waits, and a message expires when its time is up, not at its next
attempt.

queued adds the number of seconds in the file named by MAILROOT_TEST_CLOCK
to the system time and re-arms its timers when the file changes
(queued/queue_clock.c), so the tests below live through hours in
seconds.  The file sits in the mailroot, the only place queued may read.
"""

import os
import re
import time

import mailroot_harness as mh

HELD = "held@remote.test"


class Clock:
    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.set(0)

    def set(self, offset):
        self.offset = int(offset)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("%d\n" % self.offset)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)

    def now(self):
        return time.time() + self.offset

    def reach(self, when):
        """Moves queued's time to when (or just past it)."""
        self.set(max(self.offset, when - int(time.time()) + 1))


def start_with_clock(start_mailroot, sink, workdir, name="sched", **conf):
    (workdir / name).mkdir(exist_ok=True)
    clock = Clock(workdir / name / "test-clock")
    env = dict(os.environ, MAILROOT_TEST_CLOCK=str(clock.path))
    d = start_mailroot(sink=sink, name=name, env=env, **conf)
    assert mh.wait_until(lambda: "test clock in use" in d.log_text(), 10)
    return d, clock


def envelope(d):
    """The only envelope in Queue, as a dict of its first fields."""
    envs = [p for p in d.dir("Queue").iterdir() if p.suffix == ".env"]
    if len(envs) != 1:
        return None
    text = envs[0].read_text()
    return dict(re.findall(r"(?m)^(attempts|next-try|created) (\d+)$", text))


def wait_attempts(d, sink, k):
    assert mh.wait_until(lambda: sink.rejected.count(HELD) >= k, 15), \
        d.log_text()
    env = mh.wait_until(lambda: (lambda e: e if e and
                                 int(e["attempts"]) == k else None)(
                                     envelope(d)), 15)
    assert env, (k, envelope(d), d.log_text())
    assert sink.rejected.count(HELD) == k
    return int(env["next-try"])


def test_retry_schedule_is_followed(start_mailroot, sink, workdir):
    sink.reject_rcpt(HELD, "451 4.3.0 try later (sink)")
    d, clock = start_with_clock(start_mailroot, sink, workdir)
    mh.send(d.port, "a@client.test", [HELD],
            mh.crlf("Subject: held\n\nbody\n"))
    # the defaults: 15, 30, 60 minutes, then every 4 hours
    for k, wait in enumerate([900, 1800, 3600, 14400, 14400], start=1):
        next_try = wait_attempts(d, sink, k)
        ahead = next_try - clock.now()
        assert wait - 10 <= ahead <= wait, (k, wait, ahead)
        clock.reach(next_try)
    wait_attempts(d, sink, 6)


def test_expiry_comes_without_an_attempt(start_mailroot, sink, workdir):
    """Retries every 4 hours, expiry after one: the message expires an
    hour after it arrived and the sender gets the report then."""
    sink.reject_rcpt(HELD, "451 4.3.0 try later (sink)")
    d, clock = start_with_clock(
        start_mailroot, sink, workdir,
        server_extra="    delivery { retry 4h\n expire outbound 1h }")
    mh.send(d.port, "a@client.test", [HELD],
            mh.crlf("Subject: will expire\n\nbody\n"))
    wait_attempts(d, sink, 1)
    created = int(envelope(d)["created"])
    clock.reach(created + 3600)
    # the report to the sender reaches the sink; no second attempt
    got = sink.wait_for(1, timeout=15)
    assert len(got) == 1, d.log_text()
    assert got[0].rcpt_tos == ["a@client.test"]
    assert b"will expire" in got[0].data
    d.wait_queue_empty()
    assert sink.rejected.count(HELD) == 1
    assert "to=<%s> status=expired" % HELD in d.log_text()


def put_message(d, mid, body):
    """A committed message, as queued leaves it in Queue."""
    st = os.stat(d.dir("Queue"))
    env = ("mailroot-envelope 1\nid %s\ncreated %d\nnext-try 0\n"
           "attempts 0\nsize %d\nclient 127.0.0.1\nhelo test\n"
           "sender a@client.test\nrcpt P r@remote.test\nend\n"
           % (mid, int(time.time()), len(body)))
    for name, data in ((mid + ".eml", body), (mid + ".env", env.encode())):
        path = d.dir("Queue") / name
        path.write_bytes(data)
        os.chown(path, st.st_uid, st.st_gid)
        os.chmod(path, 0o640)


DEEP = 2000


def test_deep_queue_is_tried_before_any_retry(start_mailroot, sink):
    """More messages due at once than deliverd takes (MR_JOBS_MAX, 1000):
    queued feeds deliverd as results make room, so every message is
    delivered on its first attempt and none is deferred unseen."""
    d = start_mailroot(sink=sink)
    assert d.stop() == []
    for n in range(DEEP):
        put_message(d, "0F31%020X" % n,
                    mh.crlf("Subject: deep %d\n\nbody\n" % n))
    d.returncode = None
    d.start()
    got = sink.wait_for(DEEP, timeout=100)
    log = d.log_text()
    assert "status=deferred" not in log, \
        [line for line in log.splitlines() if "deferred" in line][:5]
    assert len(got) == DEEP, (len(got), log[-3000:])
    d.wait_queue_empty(timeout=30)
