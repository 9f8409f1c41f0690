"""
Local delivery to the Drop directory (IIS-MODEL.md section 5, Drop): one
.eml per message, beginning with x-sender and one x-receiver per local
recipient, then the message with mailroot's Received header.  Files are
written elsewhere and renamed, so a reader of Drop never sees a partial
or temporary file.
"""

import re
import time

import mailroot_harness as mh

ENVELOPE_LINE = re.compile(rb"(x-sender|x-receiver): <?([^<>\r\n]*)>?\r\n")


def parse_drop(data):
    """Returns (sender, [receivers], message) of a Drop file."""
    sender, receivers, pos = None, [], 0
    for _ in range(1000):
        m = ENVELOPE_LINE.match(data, pos)
        if not m:
            break
        name, addr = m.group(1), m.group(2).decode()
        if name == b"x-sender":
            assert sender is None and not receivers, \
                "x-sender must come first, once: %r" % data[:pos + 100]
            sender = addr
        else:
            assert sender is not None, "x-receiver before x-sender"
            receivers.append(addr)
        pos = m.end()
    assert sender is not None, "no x-sender line: %r" % data[:200]
    return sender, receivers, data[pos:]


def assert_drop_clean(mr):
    """Only finished .eml files are visible in Drop."""
    for f in mr.drop_files():
        assert f.parent.name == "" and f.suffix == ".eml" \
            and not f.name.startswith("."), \
            "unexpected file in Drop: %s (all: %s)" % (f, mr.drop_files())


def local_message(subject):
    return mh.crlf("From: <sender@client.test>\n"
                   "To: user@local.test\n"
                   "Subject: %s\n"
                   "Date: Mon, 30 Nov 2026 10:00:00 +0000\n"
                   "Message-ID: <%s@client.test>\n"
                   "\n"
                   "Body line one.\n"
                   ".A line with a leading dot.\n"
                   "Last line.\n" % (subject, subject.replace(" ", ".")))


def test_drop_one_recipient(mailroot, sink):
    data = local_message("to Drop")
    assert mh.send(mailroot.port, "sender@client.test",
                   ["user@local.test"], data) == {}
    drops = mailroot.wait_drop(1)
    time.sleep(0.5)             # a second file would show up by now
    assert len(mailroot.drop_files()) == 1, mailroot.drop_files()
    sender, receivers, msg = parse_drop(drops[0].read_bytes())
    assert sender == "sender@client.test"
    assert receivers == ["user@local.test"]
    received, rest = mh.split_received(msg)
    assert received.startswith(b"Received: from"), received
    assert rest == data
    assert_drop_clean(mailroot)
    mailroot.wait_queue_empty()
    assert sink.messages == []


def test_drop_two_recipients_one_file(mailroot, sink):
    data = local_message("two local recipients")
    rcpts = ["alice@local.test", "bob@local.test"]
    assert mh.send(mailroot.port, "sender@client.test", rcpts, data) == {}
    drops = mailroot.wait_drop(1)
    time.sleep(0.5)
    assert len(mailroot.drop_files()) == 1, mailroot.drop_files()
    sender, receivers, msg = parse_drop(drops[0].read_bytes())
    assert sender == "sender@client.test"
    assert receivers == rcpts
    _, rest = mh.split_received(msg)
    assert rest == data
    assert_drop_clean(mailroot)
    mailroot.wait_queue_empty()


def test_drop_local_and_remote(mailroot, sink):
    """Local recipients go to Drop, the others to the smart host; neither
    sees the other's recipients in its envelope."""
    data = local_message("split")
    assert mh.send(mailroot.port, "sender@client.test",
                   ["user@local.test", "rcpt@remote.test"], data) == {}
    drops = mailroot.wait_drop(1)
    got = sink.wait_for(1)
    assert len(got) == 1
    assert got[0].rcpt_tos == ["rcpt@remote.test"]
    _, receivers, _ = parse_drop(drops[0].read_bytes())
    assert receivers == ["user@local.test"]
    assert_drop_clean(mailroot)
    mailroot.wait_queue_empty()


def test_drop_many_messages(mailroot, sink):
    """Unique names: ten messages, ten files, all complete."""
    sent = []
    for i in range(10):
        data = local_message("message %d" % i)
        sent.append(data)
        mh.send(mailroot.port, "sender@client.test", ["user@local.test"],
                data)
    drops = mailroot.wait_drop(10, timeout=60)
    bodies = sorted(mh.split_received(parse_drop(p.read_bytes())[2])[1]
                    for p in drops)
    assert bodies == sorted(sent)
    assert_drop_clean(mailroot)
