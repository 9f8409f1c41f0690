"""
hold-for-etrn and ETRN (RFC 1985): mail for a remote domain held for
ETRN stays queued until an allowed client sends ETRN for it; then it goes
to the next hop (the harness Sink, as smart host).  smtpd answers 250,
459 (not held, or client not allowed), 458 (a #queue name), 501 (syntax).
"""

import subprocess
import smtplib

import mailroot_harness as mh

CTL = mh.BUILDDIR / "tools" / "mailrootctl"

DOMAINS = (
    '    domain "held.test" remote { hold-for-etrn yes\n'
    '        etrn-allow 127.0.0.1 }\n'
    '    domain "closed.test" remote { hold-for-etrn yes\n'
    '        etrn-allow 192.0.2.0/24 }\n'
    '    domain "open.test" remote { relay yes }\n')


def etrn(port, arg, ehlo=True):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        if ehlo:
            c.ehlo("client.test")
            assert c.has_extn("etrn")
        return c.docmd("ETRN", arg) if arg is not None else c.docmd("ETRN")


def envelopes(d):
    return [d.dir("Queue") / f for f in d.queue_files()
            if f.suffix == ".env" and str(f.parent) == "."]


def test_held_until_etrn(start_mailroot, sink):
    d = start_mailroot(sink=sink, server_extra=DOMAINS)
    assert mh.send(d.port, "a@client.test",
                   ["x@held.test", "y@open.test"],
                   mh.crlf("Subject: for later\n\nbody\n")) == {}
    got = sink.wait_for(1)
    assert got[0].rcpt_tos == ["y@open.test"]
    # the message's own envelope is written after its first attempt
    assert mh.wait_until(lambda: len(envelopes(d)) == 1, 30, 0.05)
    env = envelopes(d)
    assert mh.wait_until(lambda: b"rcpt S y@open.test" in
                         env[0].read_bytes(), 30, 0.05)
    assert b"rcpt P x@held.test\n" in env[0].read_bytes()
    # a second message, and still nothing for held.test
    assert mh.send(d.port, "b@client.test", ["z@held.test"],
                   mh.crlf("Subject: also later\n\nbody\n")) == {}
    assert mh.wait_until(lambda: len(envelopes(d)) == 2, 30, 0.05)
    assert len(sink.messages) == 1
    code, text = etrn(d.port, "held.test")
    assert code == 250 and text.startswith(b"2.0.0"), (code, text)
    got = sink.wait_for(3)
    assert sorted(m.rcpt_tos[0] for m in got[1:]) == \
        ["x@held.test", "z@held.test"]
    d.wait_queue_empty()
    assert "ETRN held.test: 2 messages released" in d.log_text()


def test_etrn_refusals(start_mailroot, sink):
    d = start_mailroot(sink=sink, server_extra=DOMAINS)
    assert mh.send(d.port, "a@client.test", ["x@closed.test"],
                   mh.crlf("Subject: held\n\nbody\n")) == {}
    assert mh.wait_until(lambda: len(envelopes(d)) == 1, 30, 0.05)
    # not allowed from this client, not held, no named queues, syntax
    code, text = etrn(d.port, "closed.test")
    assert code == 459, (code, text)
    code, text = etrn(d.port, "open.test")
    assert code == 459, (code, text)
    code, text = etrn(d.port, "nowhere.test")
    assert code == 459, (code, text)
    code, text = etrn(d.port, "#queue")
    assert code == 458, (code, text)
    code, text = etrn(d.port, None)
    assert code == 501, (code, text)
    code, text = etrn(d.port, "bad/domain")
    assert code == 501, (code, text)
    code, text = etrn(d.port, "held.test", ehlo=False)
    assert code == 503, (code, text)
    assert len(envelopes(d)) == 1
    assert sink.messages == []
    assert "released" not in d.log_text()


def test_no_etrn_offered_without_held_domain(mailroot):
    with smtplib.SMTP("127.0.0.1", mailroot.port, timeout=30) as c:
        c.ehlo("client.test")
        assert not c.has_extn("etrn")


def test_mailrootctl_etrn(start_mailroot, sink, workdir):
    """mailrootctl etrn DOMAIN releases as an ETRN from a client does."""
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755, exist_ok=True)
    sock = rundir / "control"
    d = start_mailroot(sink=sink, server_extra=DOMAINS,
                       global_extra='control-socket "%s"' % sock)

    def ctl(*args):
        return subprocess.run([str(CTL), "-s", str(sock), *args],
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    assert mh.send(d.port, "a@client.test", ["x@held.test"],
                   mh.crlf("Subject: for later\n\nbody\n")) == {}
    assert mh.wait_until(lambda: len(envelopes(d)) == 1, 30, 0.05)
    no = ctl("etrn", "open.test")
    assert no.returncode == 1 and "not held for ETRN" in no.stderr
    assert sink.messages == []
    p = ctl("-j", "etrn", "held.test")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == '{"domain":"held.test","released":1}'
    got = sink.wait_for(1)
    assert got[0].rcpt_tos == ["x@held.test"]
    d.wait_queue_empty()
    assert "control: uid 0: etrn held.test: 1 message released" in \
        d.log_text()
