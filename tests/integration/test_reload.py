"""
Reloads (SIGHUP): the running children take the new configuration without
refusing a client or cutting off a transaction; a bad file changes
nothing; a new server list restarts the children and loses no mail.

Every test drives a real mailrootd relaying to the sink.
"""

import os
import re
import signal
import smtplib
import socket
import threading

import mailroot_harness as mh

RCPT = "rcpt@remote.test"
WAIT = 15.0


def conf(d, sink, size="10K", port=None, extra="", global_extra=""):
    """d's configuration with message-size size and more server lines."""
    return mh.config_text(port or d.port, d.mailroot, sink_port=sink.port,
                          chroot=d.chroot, global_extra=global_extra,
                          server_extra="""
    limits { message-size %s }
%s""" % (size, extra))


def hup(d, text=None, children=3):
    """Writes text (if given) as d's file, sends SIGHUP and waits until
    mailrootd has dealt with it and, when it was taken, until each child
    said so (bounded; the callers check behaviour, not these lines).
    Returns what mailrootd logged: "reloaded" or "reload failed"."""
    if text is not None:
        d.conf.write_text(text)
    since = len(d.log_text())
    os.kill(d.pid, signal.SIGHUP)
    done = re.compile(r"mailrootd\[\d+\]: (reloaded|reload failed)")

    def outcome():
        m = done.search(d.log_text()[since:])
        return m.group(1) if m else None
    result = mh.wait_until(outcome, WAIT)
    assert result, "mailrootd did not finish the reload:\n" + \
        d.log_text()[since:]
    if result == "reloaded" and children:
        mh.wait_until(lambda: d.log_text()[since:].count(
            "configuration reloaded") >= children, WAIT)
    return result


def message(n, size=0):
    body = "x" * 70 + "\n"
    return mh.crlf("Subject: reload %d\n\n%s" % (
        n, body * (size // 72 + 1) if size else "hello\n"))


def subjects(msgs):
    out = []
    for m in msgs:
        found = re.search(rb"Subject: (reload \d+)", m.data)
        out.append(found.group(1).decode() if found else None)
    return sorted(out)


def ehlo_size(port):
    with smtplib.SMTP("127.0.0.1", port, timeout=WAIT) as s:
        s.ehlo("client.test")
        return int(s.esmtp_features["size"])


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def pids(d):
    return mh.started_children(d.pid, WAIT)


def test_stream_of_mail_across_reloads(start_mailroot, sink):
    """(a) a client sends without pause while mailrootd reloads four
    times: every message is accepted and reaches the sink once."""
    d = start_mailroot(sink=sink)
    d.conf.write_text(conf(d, sink, "1M"))
    assert hup(d) == "reloaded"
    count, sent, errors = 60, [], []

    def client():
        for n in range(count):
            try:
                mh.send(d.port, "a@client.test", [RCPT], message(n))
                sent.append(n)
            except (OSError, smtplib.SMTPException) as e:
                errors.append((n, repr(e)))

    before = pids(d)
    fds = open_fds(before["smtpd"])
    t = threading.Thread(target=client, daemon=True)
    t.start()
    for k in range(4):
        mh.wait_until(lambda: len(sent) + len(errors) >= 10 * (k + 1), WAIT)
        assert hup(d, conf(d, sink, "2M" if k % 2 == 0 else "1M")) == \
            "reloaded"
    t.join(WAIT * 4)
    assert not t.is_alive(), "the client did not finish"
    assert errors == [], "refused or cut off during reloads: %s" % errors
    assert len(sent) == count
    got = sink.wait_for(count, WAIT * 2)
    assert subjects(got) == sorted("reload %d" % n for n in range(count))
    assert pids(d) == before, "a reload restarted a child"
    # the listeners of each reload replace the previous ones (the last
    # session may still be closing: wait, bounded)
    assert mh.wait_until(lambda: open_fds(before["smtpd"]) == fds, WAIT), \
        "smtpd holds %d descriptors, %d before the reloads" % (
            open_fds(before["smtpd"]), fds)


def test_transaction_in_data_survives_reload(start_mailroot, sink):
    """(b) a session in the middle of DATA when SIGHUP comes finishes
    with 250 and its message is delivered."""
    d = start_mailroot(sink=sink)
    d.conf.write_text(conf(d, sink, "1M"))
    with smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT) as s:
        s.ehlo("client.test")
        assert s.mail("a@client.test")[0] == 250
        assert s.rcpt(RCPT)[0] == 250
        assert s.docmd("DATA")[0] == 354
        s.send(b"Subject: reload 1\r\n\r\nfirst half\r\n")
        assert hup(d) == "reloaded"
        # the reload is through: a new session works meanwhile
        mh.send(d.port, "b@client.test", [RCPT], message(2))
        s.send(b"second half\r\n.\r\n")
        code, text = s.getreply()
        assert code == 250, (code, text)
    assert subjects(sink.wait_for(2, WAIT)) == ["reload 1", "reload 2"]


def test_new_setting_for_new_sessions(start_mailroot, sink):
    """(c) a larger message-size takes effect for new sessions; a session
    open across the reload keeps the one it started with; (e) no child
    was restarted."""
    d = start_mailroot(sink=sink)
    d.conf.write_text(conf(d, sink, "10K"))
    assert hup(d) == "reloaded"
    assert ehlo_size(d.port) == 10240
    big = message(1, 20000)
    try:
        mh.send(d.port, "a@client.test", [RCPT], big)
        raise AssertionError("a 20K message passed a 10K limit")
    except smtplib.SMTPSenderRefused as e:
        assert e.smtp_code == 552, e
    before = pids(d)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT) as old:
        old.ehlo("client.test")
        assert hup(d, conf(d, sink, "100K")) == "reloaded"
        assert mh.wait_until(lambda: ehlo_size(d.port) == 102400, WAIT)
        old.ehlo("client.test")
        assert int(old.esmtp_features["size"]) == 10240
    mh.send(d.port, "a@client.test", [RCPT], big)
    got = sink.wait_for(1, WAIT)
    assert subjects(got) == ["reload 1"]
    assert pids(d) == before, "a reload restarted a child"


def test_bad_file_keeps_running_configuration(start_mailroot, sink):
    """(d) a file with an error changes nothing: same children, same
    limit, mail still accepted."""
    d = start_mailroot(sink=sink)
    assert hup(d, conf(d, sink, "10K")) == "reloaded"
    before = pids(d)
    assert hup(d, conf(d, sink, "10K") + "server {\n") == "reload failed"
    assert "the running configuration stays in force" in d.log_text()
    assert ehlo_size(d.port) == 10240
    mh.send(d.port, "a@client.test", [RCPT], message(1))
    assert subjects(sink.wait_for(1, WAIT)) == ["reload 1"]
    assert pids(d) == before


def test_listeners_added_and_removed(start_mailroot, sink):
    """(f) a listener added by a reload accepts mail; one removed stops
    accepting; no child restarts."""
    d = start_mailroot(sink=sink)
    before = pids(d)
    second = mh.free_port()
    assert hup(d, conf(d, sink, "1M",
                       extra="    listen 127.0.0.1:%d" % second)) == \
        "reloaded"
    mh.send(second, "a@client.test", [RCPT], message(1))
    mh.send(d.port, "a@client.test", [RCPT], message(2))
    # the first listener goes
    assert hup(d, conf(d, sink, "1M", port=second)) == "reloaded"

    def refused():
        try:
            with socket.create_connection(("127.0.0.1", d.port), 1.0):
                return False
        except ConnectionRefusedError:
            return True
    assert mh.wait_until(refused, WAIT), "the removed listener still open"
    mh.send(second, "a@client.test", [RCPT], message(3))
    assert subjects(sink.wait_for(3, WAIT)) == \
        ["reload 1", "reload 2", "reload 3"]
    assert pids(d) == before


def test_new_server_restarts_children(start_mailroot, sink, workdir):
    """A second virtual server restarts all three children (IPC names
    servers by index); both servers then take mail, none is lost."""
    d = start_mailroot(sink=sink)
    before = pids(d)
    other = workdir / "other"
    other.mkdir(mode=0o755)
    mh.make_traversable(other)
    port2 = mh.free_port()
    text = conf(d, sink, "1M") + """server "other" {
    listen 127.0.0.1:%d
    mailroot "%s"
    relay allow 127.0.0.1
    delivery { smart-host "[127.0.0.1]:%d" }
}
""" % (port2, other, sink.port)
    assert hup(d, text, children=0) == "reloaded"
    mh.send(d.port, "a@client.test", [RCPT], message(1))
    mh.send(port2, "a@client.test", [RCPT], message(2))
    assert subjects(sink.wait_for(2, WAIT)) == ["reload 1", "reload 2"]
    after = pids(d)
    for name in before:
        assert after[name] != before[name], "%s was not restarted" % name


def test_new_smart_host_for_new_messages(start_mailroot, sink):
    """deliverd routes messages after the reload by the new
    configuration: a new smart host gets them."""
    d = start_mailroot(sink=sink)
    mh.send(d.port, "a@client.test", [RCPT], message(1))
    assert subjects(sink.wait_for(1, WAIT)) == ["reload 1"]
    before = pids(d)
    other = mh.Sink().start()
    try:
        assert hup(d, mh.config_text(d.port, d.mailroot,
                                     sink_port=other.port,
                                     chroot=d.chroot)) == "reloaded"
        mh.send(d.port, "a@client.test", [RCPT], message(2))
        assert subjects(other.wait_for(1, WAIT)) == ["reload 2"]
    finally:
        other.stop()
    assert subjects(sink.messages) == ["reload 1"]
    assert pids(d) == before


def test_resolver_change_restarts_deliverd_only(start_mailroot, sink):
    """deliverd sets its resolver up before it drops privileges: a new
    resolver restarts deliverd, and only deliverd."""
    d = start_mailroot(sink=sink)
    before = pids(d)
    assert hup(d, conf(d, sink, "1M", global_extra="resolver 127.0.0.1@53"),
               children=2) == "reloaded"
    assert mh.wait_until(lambda: pids(d)["deliverd"] not in
                         (None, before["deliverd"]), WAIT)
    after = pids(d)
    assert after["smtpd"] == before["smtpd"]
    assert after["queued"] == before["queued"]
    mh.send(d.port, "a@client.test", [RCPT], message(1))
    assert subjects(sink.wait_for(1, WAIT)) == ["reload 1"]


def test_new_server_waits_for_open_transaction(start_mailroot, sink,
                                               workdir):
    """A server list change restarts smtpd only after its open sessions
    end: a transaction in DATA completes; a client that connects
    meanwhile waits and is served by the new smtpd."""
    d = start_mailroot(sink=sink)
    other = workdir / "other"
    other.mkdir(mode=0o755)
    mh.make_traversable(other)
    conf_text = conf(d, sink, "1M") + """server "other" {
    listen 127.0.0.1:%d
    mailroot "%s"
}
""" % (mh.free_port(), other)
    late = []

    def client():
        try:
            mh.send(d.port, "b@client.test", [RCPT], message(2),
                    timeout=WAIT * 2)
            late.append("sent")
        except (OSError, smtplib.SMTPException) as e:
            late.append(repr(e))

    with smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT) as s:
        s.ehlo("client.test")
        assert s.mail("a@client.test")[0] == 250
        assert s.rcpt(RCPT)[0] == 250
        assert s.docmd("DATA")[0] == 354
        s.send(b"Subject: reload 1\r\n\r\nfirst half\r\n")
        assert hup(d, conf_text, children=0) == "reloaded"
        t = threading.Thread(target=client, daemon=True)
        t.start()
        s.send(b"second half\r\n.\r\n")
        code, reply = s.getreply()
        assert code == 250, (code, reply)
    t.join(WAIT * 3)
    assert late == ["sent"]
    assert subjects(sink.wait_for(2, WAIT)) == ["reload 1", "reload 2"]


def test_delivery_in_flight_across_full_restart(start_mailroot, sink,
                                                workdir):
    """A full restart (the server list changed) while deliverd waits for
    the next hop's reply: queued stops only after deliverd reported the
    delivery, so the new queued recovers nothing and the message is not
    sent twice."""
    sink.hold = threading.Event()
    d = start_mailroot(sink=sink)
    mh.send(d.port, "a@client.test", [RCPT], message(1))
    assert len(sink.wait_for(1, WAIT)) == 1      # reply to DATA held
    other = workdir / "other"
    other.mkdir(mode=0o755)
    mh.make_traversable(other)
    since = len(d.log_text())
    assert hup(d, conf(d, sink) + """server "other" {
    listen 127.0.0.1:%d
    mailroot "%s"
}
""" % (mh.free_port(), other), children=0) == "reloaded"
    assert mh.wait_until(lambda: "deliverd" in d.log_text()[since:] and
                         "shutting down" in d.log_text()[since:], WAIT)
    sink.hold.set()
    assert mh.wait_until(
        lambda: d.log_text()[since:].count("started queued") == 1 and
        "connected to deliverd" in d.log_text()[since:], WAIT * 4)
    assert "recovered" not in d.log_text()[since:]
    assert not list(d.dir("Queue").glob("*.env"))
    mh.send(d.port, "a@client.test", [RCPT], message(2))
    assert subjects(sink.wait_for(2, WAIT)) == ["reload 1", "reload 2"]


def test_delivery_in_flight_across_stop(start_mailroot, sink):
    """mailrootd's own stop, likewise: deliverd finishes and reports
    before queued goes, and the next start sends nothing again."""
    sink.hold = threading.Event()
    d = start_mailroot(sink=sink)
    mh.send(d.port, "a@client.test", [RCPT], message(1))
    assert len(sink.wait_for(1, WAIT)) == 1      # reply to DATA held
    since = len(d.log_text())
    os.kill(d.pid, signal.SIGTERM)
    assert mh.wait_until(lambda: "shutting down" in d.log_text()[since:],
                         WAIT)
    sink.hold.set()
    d.proc.wait(WAIT * 4)
    d.start()
    assert "recovered" not in d.log_text()[since:]
    assert not list(d.dir("Queue").glob("*.env"))
    mh.send(d.port, "a@client.test", [RCPT], message(2))
    assert subjects(sink.wait_for(2, WAIT)) == ["reload 1", "reload 2"]


def test_job_refused_by_stopping_deliverd_is_not_deferred(start_mailroot,
                                                          sink):
    """A message handed to a deliverd that is stopping (here, restarted
    for a new resolver while a delivery is under way) is not tried; it
    counts no attempt and goes out with the next deliverd, not after the
    first retry interval (15 minutes)."""
    sink.hold = threading.Event()
    d = start_mailroot(sink=sink)
    mh.send(d.port, "a@client.test", [RCPT], message(1))
    assert len(sink.wait_for(1, WAIT)) == 1      # reply to DATA held
    since = len(d.log_text())
    assert hup(d, conf(d, sink, "1M", global_extra="resolver 127.0.0.1@53"),
               children=2) == "reloaded"
    assert mh.wait_until(lambda: "shutting down" in d.log_text()[since:],
                         WAIT)
    mh.send(d.port, "a@client.test", [RCPT], message(2))
    assert mh.wait_until(lambda: "status=not tried" in d.log_text()[since:],
                         WAIT)
    sink.hold.set()
    assert mh.wait_until(lambda: "reload 2" in subjects(sink.messages),
                         WAIT * 2), d.log_text()[since:]
    assert "status=deferred" not in d.log_text()[since:]
