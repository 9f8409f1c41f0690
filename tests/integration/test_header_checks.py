"""
Header checks: a server's header-checks table (PCRE2 patterns on each
unfolded header field) rejects (550 5.7.1 at the end of DATA), discards
(accepted, dropped, logged) or holds (kept in the queue with "hold" in
its envelope, offered to no delivery, across a restart, until
"mailrootctl release") a message; a table that cannot be read refuses
the message for now (451).  Checked on SMTP, on mailroot-sendmail and on
files dropped into Pickup (a rejected file goes to Badmail with the
rule's text, a discarded one is removed, a held one is queued held).
"""

import json
import os
import smtplib
import subprocess

import mailroot_harness as mh

SENDMAIL = mh.BUILDDIR / "tools" / "mailroot-sendmail"
CTL = mh.BUILDDIR / "tools" / "mailrootctl"
WAIT = 120
RULES = """\
# first match wins; keys are the unfolded field, in lower case
/^subject:.*harmless/       OK
/^subject:.*buy now/        REJECT Spam is not welcome here
/^subject:.*lottery/        DISCARD
/^x-review: *yes/           HOLD waiting for review
"""


def start(start_mailroot, sink, workdir):
    tdir = workdir / "tables"
    tdir.mkdir(exist_ok=True)
    mh.make_traversable(tdir)
    (tdir / "hc").write_text(RULES)
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755, exist_ok=True)
    sock = rundir / "submit"
    d = start_mailroot(sink=sink, global_extra='table hc regex:%s\n'
                       'submit-socket "%s"\ncontrol-socket "%s"' % (
                           tdir / "hc", sock, rundir / "control"),
                       server_extra="    header-checks hc")
    d.sock = sock
    d.ctl = rundir / "control"
    return d


def ctl(d, *args):
    """mailrootctl's output (it must succeed)."""
    p = subprocess.run([str(CTL), "-s", str(d.ctl), *args],
                       capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, "%s: %s%s" % (args, p.stdout, p.stderr)
    return p.stdout


def smtp(port, headers, rcpt="r@remote.example"):
    """Sends a message; (code, text) of the reply to its end of data."""
    data = mh.crlf("From: s@client.test\n%s\nbody\n" % headers)
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.ehlo("client.test")
        c.mail("s@client.test")
        c.rcpt(rcpt)
        return c.data(data)


def marker(d, sink, n):
    """A plain message after the others: when it arrived, the queue has
    handled everything sent before it."""
    assert smtp(d.port, "Subject: marker %d\n" % n)[0] == 250
    got = sink.wait_for(n, WAIT)
    assert any(b"marker %d" % n in m.data for m in got), got
    return got


def envelopes(d):
    return [p for p in d.dir("Queue").iterdir() if p.suffix == ".env"]


def test_reject_at_end_of_data(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    code, text = smtp(d.port, "Subject: BUY NOW, cheap\n")
    assert code == 550 and text == b"5.7.1 Spam is not welcome here"
    # a folded field is unfolded before it is matched
    code, _ = smtp(d.port, "Subject: hello and\n  buy now\n")
    assert code == 550
    assert smtp(d.port, "Subject: harmless buy now\n")[0] == 250
    got = marker(d, sink, 2)
    assert [m for m in got if b"BUY NOW" in m.data] == []
    assert "header check: reject" in d.log_text()


def test_discard_accepts_and_drops(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    assert smtp(d.port, "Subject: You won the lottery\n")[0] == 250
    got = marker(d, sink, 1)
    assert len(got) == 1
    assert "discarded by a header check" in d.log_text()
    assert mh.wait_until(lambda: not envelopes(d), WAIT, 0.1)


def test_hold_keeps_the_message_queued(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    assert smtp(d.port, "Subject: please\nX-Review: yes\n")[0] == 250
    got = marker(d, sink, 1)
    assert len(got) == 1
    assert mh.wait_until(lambda: len(envelopes(d)) == 1, WAIT, 0.1)
    env = envelopes(d)[0].read_text()
    assert "X-Review" not in env
    assert "\nhold 1\n" in env
    # held across a restart too
    assert d.stop() == []
    d.start()
    got = marker(d, sink, 2)
    assert len(got) == 2
    assert mh.wait_until(lambda: len(envelopes(d)) == 1, WAIT, 0.1)
    assert envelopes(d)[0].read_text() == env


def test_sendmail_is_checked(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    p = subprocess.run([str(SENDMAIL), "-C", str(d.conf), "-i",
                        "r@remote.example"],
                       input=b"Subject: buy now\n\nx\n", capture_output=True,
                       timeout=WAIT)
    assert p.returncode == 65, p.stderr
    assert b"Spam is not welcome here" in p.stderr
    got = marker(d, sink, 1)
    assert len(got) == 1


def test_unreadable_table_is_a_temporary_failure(start_mailroot, sink,
                                                 workdir):
    d = start(start_mailroot, sink, workdir)
    (workdir / "tables" / "hc").unlink()
    code, _ = smtp(d.port, "Subject: anything\n")
    assert code == 451
    assert sink.messages == []


def test_release_delivers_a_held_message(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    assert smtp(d.port, "Subject: review me\nX-Review: yes\n")[0] == 250
    marker(d, sink, 1)
    assert mh.wait_until(lambda: len(envelopes(d)) == 1, WAIT, 0.1)
    mid = envelopes(d)[0].stem
    (m,) = json.loads(ctl(d, "-j", "queue", "--state", "held"))["messages"]
    assert m["id"] == mid and m["state"] == "held"
    assert m["hold"] == ["header-check"]
    line = [l for l in ctl(d, "queue").splitlines() if l.startswith(mid)]
    assert line and line[0].split()[4] == "held:hdr"
    # still held after a restart, and a retry does not send it
    assert d.stop() == []
    d.returncode = None
    d.start()
    held = json.loads(ctl(d, "-j", "queue", "--state", "held"))
    assert [x["id"] for x in held["messages"]] == [mid]
    p = subprocess.run([str(CTL), "-s", str(d.ctl), "retry", mid],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert ctl(d, "release", mid).strip() == "%s: released" % mid
    got = sink.wait_for(2, WAIT)
    assert any(b"review me" in x.data for x in got), got
    assert mh.wait_until(lambda: not envelopes(d), WAIT, 0.1)
    assert "%s: released by uid 0 (mailrootctl): held by a header " \
        "check" % mid in d.log_text()


def drop_in(d, name, headers):
    """A plain pickup file, written as a dot-name and renamed in."""
    tmp = d.dir("Pickup") / ("." + name)
    tmp.write_bytes(b"From: app@client.test\nTo: r@remote.example\n" +
                    headers.encode() + b"\nbody of " + name.encode() +
                    b"\n")
    os.rename(tmp, d.dir("Pickup") / name)


def held_ids(d):
    """The queued messages a header check holds."""
    ids = []
    for p in envelopes(d):
        try:
            if "\nhold 1\n" in p.read_text():
                ids.append(p.stem)
        except FileNotFoundError:
            pass
    return ids


def test_pickup_files_are_checked(start_mailroot, sink, workdir):
    d = start(start_mailroot, sink, workdir)
    assert mh.wait_until(lambda: "Pickup: watching" in d.log_text(),
                         WAIT, 0.05)
    drop_in(d, "spam.eml", "Subject: buy now\n")
    drop_in(d, "junk.eml", "Subject: the lottery\n")
    drop_in(d, "review.eml", "Subject: check\nX-Review: yes\n")
    drop_in(d, "fine.eml", "Subject: fine\n")
    assert mh.wait_until(lambda: not os.listdir(d.dir("Pickup")) and
                         "junk.eml discarded" in d.log_text() and
                         len(held_ids(d)) == 1, WAIT, 0.1), \
        d.log_text()[-3000:]
    # REJECT: to Badmail with the rule's text
    bad = sorted(os.listdir(d.dir("Badmail")))
    assert len(bad) == 2, bad
    bdr = (d.dir("Badmail") / [b for b in bad if b.endswith(".BDR")][0])
    assert "spam.eml" in bdr.read_text()
    assert "refused by a header check: Spam is not welcome here" in \
        bdr.read_text()
    assert b"body of spam.eml" in (d.dir("Badmail") / (
        bdr.stem + ".BAD")).read_bytes()
    # DISCARD: logged, gone; HOLD: queued held
    assert "discarded by a header check" in d.log_text()
    (held,) = held_ids(d)
    got = marker(d, sink, 2)
    bodies = b"".join(m.data for m in got)
    assert b"body of fine.eml" in bodies
    for name in (b"spam", b"junk", b"review"):
        assert b"body of " + name not in bodies
    # released like any held message, and delivered
    assert ctl(d, "release", held).strip() == "%s: released" % held
    got = sink.wait_for(3, WAIT)
    assert any(b"body of review.eml" in m.data for m in got)
    assert mh.wait_until(lambda: not envelopes(d), WAIT, 0.1)
