"""
Start-up recovery of the queue: what queued finds in Queue after a crash.

A commit writes Queue/ID.eml (smtpd) and Queue/ID.env (queued), then one
syncfs; only then does the client get 250.  A crash before the flush can
leave an envelope cut short: never acknowledged, so removed.  A complete
message is delivered; an envelope that is complete but malformed goes to
Badmail (ID.BAD, ID.BDP, ID.BDR), never lost, and so does data shorter
than its envelope records (which may have been acknowledged); data
longer than recorded is cut back to the accepted size.
"""

import os
import time

import mailroot_harness as mh

SENDER = "a@client.test"


def qid(n):
    return "0F30%020X" % n


def envelope(mid, size, rcpt="r@remote.test", extra="", end=True):
    text = ("mailroot-envelope 1\nid %s\ncreated %d\nnext-try 0\n"
            "attempts 0\nsize %d\nclient 127.0.0.1\nhelo test\n"
            "sender %s\nrcpt P %s\n%s" % (mid, int(time.time()), size,
                                          SENDER, rcpt, extra))
    return text + ("end\n" if end else "")


def message(tag):
    return mh.crlf("Subject: recovered %s\nX-Rec-Id: %s\n\nbody %s\n"
                   % (tag, tag, tag))


def put(d, name, data, sub="Queue"):
    """Writes a file as the queue user would have (owner of Queue)."""
    path = d.dir(sub) / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    st = os.stat(d.dir("Queue"))
    os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, 0o640)
    return path


def restart(d):
    assert d.stop() == []
    d.returncode = None
    return d.start()


def test_recovery_keeps_complete_drops_unacknowledged(start_mailroot, sink):
    d = start_mailroot(sink=sink)
    assert d.stop() == []
    good, torn, empty, short, bad, noenv, noeml, long_ = (
        qid(n) for n in range(1, 9))
    body = message("good")
    put(d, good + ".eml", body)
    put(d, good + ".env", envelope(good, len(body)))
    # cut short before the flush: no "end" line, or nothing at all
    put(d, torn + ".eml", message("torn"))
    put(d, torn + ".env", envelope(torn, len(message("torn")), end=False))
    put(d, empty + ".eml", message("empty"))
    put(d, empty + ".env", "")
    # data shorter than the envelope says (its blocks never reached disk,
    # or smtpd cut it): kept for the administrator
    put(d, short + ".eml", message("short")[:10])
    put(d, short + ".env", envelope(short, len(message("short"))))
    # data longer (written after its commit): sent as accepted
    put(d, long_ + ".eml", message("long") + b"X-Added: later\r\n")
    put(d, long_ + ".env", envelope(long_, len(message("long"))))
    # complete but malformed: kept for the administrator
    put(d, bad + ".eml", message("bad"))
    put(d, bad + ".env", envelope(bad, len(message("bad")),
                                   extra="bogus line\n"))
    put(d, noenv + ".eml", message("noenv"))
    put(d, noeml + ".env", envelope(noeml, 10))
    put(d, "leftover.env", "x", sub="Queue/tmp")
    d.returncode = None
    d.start()

    sink.wait_for(2)
    d.wait_queue_empty()
    got = sorted(m.data for m in sink.messages)
    assert got == sorted([message("good"), message("long")]), got
    time.sleep(0.5)     # nothing else is on its way
    assert len(sink.messages) == 2, sink.messages
    assert sorted(os.listdir(d.dir("Badmail"))) == sorted(
        [bad + ".BAD", bad + ".BDP", bad + ".BDR",
         short + ".BAD", short + ".BDP", short + ".BDR"])
    assert (d.dir("Badmail") / (short + ".BAD")).read_bytes() == \
        message("short")[:10]
    assert os.listdir(d.dir("Queue/tmp")) == []
    log = d.log_text()
    assert "%s: envelope cut short: removed, never acknowledged" % torn \
        in log, log
    assert "%s: envelope cut short" % empty in log, log
    assert "%s: data is 10 bytes" % short in log, log
    assert "%s: 16 bytes were added" % long_ in log, log
    assert "%s: malformed envelope; moved to Badmail" % bad in log, log
    assert "recovered 3 queued messages" in log, log


def test_commit_leaves_data_and_envelope_in_queue(start_mailroot, sink):
    # a message held by a refusing smart host stays in Queue as the
    # administrator expects: ID.eml (as received) beside ID.env
    sink.reject_rcpt("held@remote.test", "451 4.3.0 try later (sink)")
    d = start_mailroot(sink=sink)
    mh.send(d.port, SENDER, ["held@remote.test"], message("held"))
    assert mh.wait_until(lambda: "held@remote.test" in sink.rejected, 60)
    files = mh.wait_until(lambda: [f for f in d.queue_files()
                                   if f.suffix == ".env"], 60, 0.1)
    assert files, d.queue_files()
    mid = files[0].stem
    eml = d.dir("Queue") / (mid + ".eml")
    env = (d.dir("Queue") / (mid + ".env")).read_text()
    assert env.endswith("\nend\n")
    assert "size %d\n" % eml.stat().st_size in env
    assert b"X-Rec-Id: held" in eml.read_bytes()
    # and it survives a restart as a complete message
    restart(d)
    assert mh.wait_until(
        lambda: "recovered 1 queued message" in d.log_text(), 60), \
        d.log_text()
    assert (d.dir("Queue") / (mid + ".eml")).exists()
