"""
The Pickup folder (IIS-MODEL.md section 5): a file dropped into a
server's Pickup is queued under that server and removed.  CDO's form
(x-sender / x-receiver lines first) and a plain RFC 5322 message
(recipients from To, Cc and Bcc, Bcc removed) are both read, dot-stuffing
is removed, a file still being written is not taken, a bad file goes to
Badmail with a reason, a symbolic link or FIFO is moved aside unread, a
big folder drains while SMTP is served, and SIGKILL of queued during a
burst loses and doubles nothing.
"""

import os
import signal
import smtplib
import stat
import threading
import time

import mailroot_harness as mh

WAIT = 120
WATCHING = "Pickup: watching"


def start(start_mailroot, sink, **conf):
    """A daemon whose queued watches Pickup already: a file written before
    that is seen only by a scan, once untouched for 30 seconds."""
    d = start_mailroot(sink=sink, **conf)
    assert mh.wait_until(lambda: WATCHING in d.log_text(), WAIT, 0.05), \
        d.log_text()[-3000:]
    return d


def drop_in(d, name, data, old=False):
    """Writes data as Pickup/name the safe way: a dot-name, then a rename.
    old: the file's times are set an hour back, as a file copied in with
    its times kept, so that a scan may take it at once."""
    tmp = d.dir("Pickup") / ("." + name)
    tmp.write_bytes(data)
    if old:
        t = time.time() - 3600
        os.utime(tmp, (t, t))
    os.rename(tmp, d.dir("Pickup") / name)


def pickup_names(d):
    return sorted(os.listdir(d.dir("Pickup")))


def wait_pickup_empty(d, timeout=WAIT):
    assert mh.wait_until(lambda: not pickup_names(d), timeout, 0.1), \
        "Pickup not drained: %s\n%s" % (pickup_names(d)[:20],
                                        d.log_text()[-3000:])


def header_names(data):
    head = data.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].lower()
            for line in head.split(b"\r\n") if line[:1] not in (b" ", b"\t")]


def test_cdo_form(start_mailroot, sink):
    d = start(start_mailroot, sink)
    # as CDO writes it, but with Unix line ends and a stuffed dot
    (d.dir("Pickup") / "cdo.eml").write_bytes(
        b"x-sender: app@client.test\n"
        b"x-receiver: one@remote.test\n"
        b"X-Receiver: <two@remote.test>\n"
        b"From: Application <app@client.test>\n"
        b"To: Someone Else <someone@else.test>\n"
        b"Subject: from CDO\n"
        b"\n"
        b"first line\n"
        b"..a line that began with a dot\n"
        b"last line\n")
    got = sink.wait_for(1, WAIT)
    assert len(got) == 1, d.log_text()[-3000:]
    m = got[0]
    assert m.mail_from == "app@client.test"
    assert sorted(m.rcpt_tos) == ["one@remote.test", "two@remote.test"]
    assert b"x-sender" not in m.data.lower()
    assert b"x-receiver" not in m.data.lower()
    assert b"\r\n.a line that began with a dot\r\n" in m.data
    assert b"\n" not in m.data.replace(b"\r\n", b"")
    names = header_names(m.data)
    assert names[0] == b"received"
    assert b"from mail pickup service" in m.data.split(b"\r\n")[0]
    # local mail: Date and Message-ID added where missing
    assert b"date" in names and b"message-id" in names
    assert b"To: Someone Else <someone@else.test>\r\n" in m.data
    wait_pickup_empty(d)
    assert "origin=pickup" in d.log_text()


def test_plain_form_to_cc_bcc(start_mailroot, sink):
    d = start(start_mailroot, sink)
    drop_in(d, "plain.eml", mh.crlf(
        'From: "Web, App" <web@client.test>\n'
        "To: Alice <alice@remote.test>, bob@remote.test (Bob)\n"
        "Cc: Team: carol@remote.test, \"D. Dan\" <dan@remote.test>;\n"
        "Bcc: hidden@remote.test,\n"
        "\tsecret@remote.test\n"
        "Subject: plain\n"
        "Date: Mon, 30 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <plain@client.test>\n"
        "\n"
        "body\n"))
    got = sink.wait_for(1, WAIT)
    assert len(got) == 1, d.log_text()[-3000:]
    m = got[0]
    assert m.mail_from == "web@client.test"
    assert sorted(m.rcpt_tos) == sorted([
        "alice@remote.test", "bob@remote.test", "carol@remote.test",
        "dan@remote.test", "hidden@remote.test", "secret@remote.test"])
    assert b"bcc" not in header_names(m.data)
    assert b"hidden" not in m.data and b"secret" not in m.data
    assert b"Cc: Team: carol@remote.test" in m.data
    assert m.data.count(b"Message-ID:") == 1
    assert m.data.count(b"Date:") == 1
    wait_pickup_empty(d)


def test_slow_writer_is_not_taken_half_written(start_mailroot, sink):
    d = start(start_mailroot, sink)
    first = mh.crlf("x-sender: slow@client.test\n"
                    "x-receiver: slow@remote.test\n"
                    "Subject: slow\n\nfirst half\n")
    rest = mh.crlf("second half\n")
    with open(d.dir("Pickup") / "slow.eml", "wb") as f:
        f.write(first)
        f.flush()
        # another file, closed after the first half was written: once it
        # is delivered, queued has read every event up to here
        (d.dir("Pickup") / "marker.eml").write_bytes(mh.crlf(
            "x-sender: marker@client.test\n"
            "x-receiver: marker@remote.test\n\nmarker\n"))
        got = sink.wait_for(1, WAIT)
        assert [m.rcpt_tos for m in got] == [["marker@remote.test"]]
        assert "slow.eml" in pickup_names(d)
        f.write(rest)
    got = sink.wait_for(2, WAIT)
    assert len(got) == 2, d.log_text()[-3000:]
    slow = [m for m in got if m.rcpt_tos == ["slow@remote.test"]]
    assert len(slow) == 1
    assert slow[0].data.endswith(b"first half\r\nsecond half\r\n")
    wait_pickup_empty(d)


def bad_files(d, count):
    def ready():
        names = os.listdir(d.dir("Badmail"))
        bad = sorted(n for n in names if n.endswith(".BAD"))
        if len(bad) < count or any(n[:-4] + ".BDR" not in names
                                   for n in bad):
            return None
        return bad
    bad = mh.wait_until(ready, WAIT, 0.1)
    assert bad, "expected %d Badmail files: %s\n%s" % (
        count, os.listdir(d.dir("Badmail")), d.log_text()[-3000:])
    return bad


def reason_of(d, bad):
    return (d.dir("Badmail") / (bad[:-4] + ".BDR")).read_text()


def test_bad_files_go_to_badmail(start_mailroot, sink):
    d = start(start_mailroot, sink, server_extra=(
        "    limits { message-size 64K }"))
    drop_in(d, "garbage.bin", b"\x00\x01\x02binary\x00garbage\xff" * 50)
    drop_in(d, "norcpt.eml", mh.crlf("From: a@client.test\nSubject: x\n\n"
                                     "nobody to send to\n"))
    drop_in(d, "big.eml", mh.crlf("x-sender: a@client.test\n"
                                  "x-receiver: b@remote.test\n\n")
            + b"x" * (200 * 1024))
    drop_in(d, "badaddr.eml", mh.crlf("x-sender: a@client.test\n"
                                      "x-receiver: not an address\n\nx\n"))
    bad = bad_files(d, 4)
    wait_pickup_empty(d)
    reasons = {reason_of(d, b) for b in bad}
    text = " ".join(reasons)
    assert "NUL" in text
    assert "no recipient" in text
    assert "larger than the message size limit" in text
    assert "x-receiver: not an address" in text
    for b in bad:
        assert reason_of(d, b).startswith(
            "Unable to deliver this message because the pickup file")
    sizes = sorted(os.path.getsize(d.dir("Badmail") / b) for b in bad)
    assert sizes[-1] > 200 * 1024       # kept whole, not cut
    assert sink.messages == []
    # the log line follows the move: wait for it (bounded)
    assert mh.wait_until(
        lambda: d.log_text().count("moved to Badmail") == 4, 30), \
        d.log_text()


def test_symlink_and_fifo_are_moved_aside_unread(start_mailroot, sink,
                                                 workdir):
    d = start(start_mailroot, sink)
    target = workdir / "outside.eml"
    target.write_bytes(mh.crlf("x-sender: a@client.test\n"
                               "x-receiver: leak@remote.test\n\nleak\n"))
    os.symlink(target, d.dir("Pickup") / "link.eml")
    os.mkfifo(d.dir("Pickup") / "fifo.eml")
    bad = bad_files(d, 2)
    wait_pickup_empty(d)
    kinds = sorted(stat.S_IFMT(os.lstat(d.dir("Badmail") / b).st_mode)
                   for b in bad)
    assert kinds == sorted([stat.S_IFLNK, stat.S_IFIFO])
    text = " ".join(reason_of(d, b) for b in bad)
    assert "symbolic link; not followed" in text
    assert "not a regular file" in text
    assert target.exists()
    assert sink.messages == []
    # queued did not block on the FIFO: it still takes files
    (d.dir("Pickup") / "after.eml").write_bytes(mh.crlf(
        "x-sender: a@client.test\nx-receiver: ok@remote.test\n\nok\n"))
    got = sink.wait_for(1, WAIT)
    assert [m.rcpt_tos for m in got] == [["ok@remote.test"]]
    assert "killed by signal" not in d.log_text()


def smtp_loop(port, stop, results):
    """Sends one message after another until stop; records each outcome."""
    i = 0
    while not stop.is_set() and i < 1000:
        try:
            refused = mh.send(port, "live@client.test", ["live@local.test"],
                              mh.crlf("Subject: live %d\n\nlive\n" % i),
                              timeout=60)
            results.append(refused == {})
        except (smtplib.SMTPException, OSError) as e:
            results.append(repr(e))
        i += 1


def test_big_folder_drains_while_smtp_is_served(start_mailroot, sink):
    files = 2000
    d = start(start_mailroot, sink)
    body = mh.crlf("x-sender: bulk@client.test\n"
                   "x-receiver: bulk@local.test\n"
                   "Subject: bulk\n\nbulk\n")
    for i in range(files):
        (d.dir("Pickup") / ("bulk%05d.eml" % i)).write_bytes(body)
    stop = threading.Event()
    results = []
    t = threading.Thread(target=smtp_loop, args=(d.port, stop, results))
    t.start()
    try:
        wait_pickup_empty(d)
        # SMTP was served meanwhile: at least one message after the drain
        # began, every answer a 250
        assert mh.wait_until(lambda: len(results) >= 1, WAIT, 0.1)
    finally:
        stop.set()
        t.join(WAIT)
    assert not t.is_alive()
    assert results and all(r is True for r in results), results[:5]
    assert mh.wait_until(
        lambda: d.log_text().count("origin=pickup") >= files, WAIT, 0.2), \
        d.log_text()[-3000:]
    assert d.log_text().count("origin=pickup") == files
    assert "moved to Badmail" not in d.log_text()


def test_sigkill_of_queued_during_a_burst(start_mailroot, sink):
    files = 300
    d = start(start_mailroot, sink)
    kills = 0

    def writer():
        for i in range(files):
            drop_in(d, "burst%04d.eml" % i, mh.crlf(
                "x-sender: burst@client.test\n"
                "x-receiver: burst@remote.test\n"
                "X-Burst-Id: %d\n\nburst %d\n" % (i, i)), old=True)

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(4):
            kids = mh.children(d.pid)
            n = d.log_text().count(WATCHING) + 1
            if "queued" in kids:
                os.kill(kids["queued"], signal.SIGKILL)
                kills += 1
            # the next queued watches again before the next kill
            mh.wait_until(lambda: d.log_text().count(WATCHING) >= n, 60)
            mh.wait_until(lambda: "origin=pickup" in d.log_text(), 10, 0.05)
    finally:
        t.join(WAIT)
    assert kills > 0

    def arrived():
        got = {}
        for m in sink.messages:
            for line in m.data.split(b"\r\n"):
                if line.startswith(b"X-Burst-Id: "):
                    n = int(line[12:])
                    got[n] = got.get(n, 0) + 1
        return got

    assert mh.wait_until(lambda: len(arrived()) >= files, WAIT, 0.2), \
        "never delivered: %s\n%s" % (
            sorted(set(range(files)) - set(arrived()))[:20],
            d.log_text()[-3000:])
    wait_pickup_empty(d)
    dups = {n: c for n, c in arrived().items() if c > 1}
    assert dups == {}, dups
    assert not [f for f in d.queue_files() if f.suffix == ".pkp"]
    d.wait_queue_empty(WAIT)
