"""
What leaves mailroot, byte for byte: a client's DATA through the real
mailrootd (smtpd, queued, deliverd) to a next hop that records the raw
bytes it receives, without any SMTP library in between.

SMTP smuggling (SEC Consult, 2023; smtpsmug): a message whose content
holds a line end that some server honours as the end of data, followed by
a second transaction.  mailroot stores bare CR and bare LF as CRLF,
refuses NUL and dot-stuffs what it sends, so the next hop sees one
message whatever it counts as a line end.  Also here: the MAIL FROM
parameters the next hop is given (BODY=8BITMIME, RFC 6152).
"""

import socketserver
import threading

import pytest

import mailroot_harness as mh
from test_smtp_session import session

TIMEOUT = 15.0


class _RawHandler(socketserver.StreamRequestHandler):
    def handle(self):
        hop = self.server.hop
        self.wfile.write(b"220 rawhop ESMTP\r\n")
        for _ in range(10000):
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            hop.commands.append(line.rstrip(b"\r\n").decode("latin-1"))
            if verb == b"EHLO":
                self.wfile.write(hop.ehlo)
            elif verb == b"DATA":
                self.wfile.write(b"354 go\r\n")
                hop.messages.append(self.read_data())
                self.wfile.write(b"250 2.0.0 ok\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")

    def read_data(self):
        raw = b""
        for _ in range(1000000):
            line = self.rfile.readline()
            raw += line
            if not line or raw == b".\r\n" or raw.endswith(b"\r\n.\r\n"):
                break
        return raw


class RawHop:
    """A next hop that records the exact bytes of every DATA."""

    def __init__(self, eightbitmime=True):
        self.messages = []
        self.commands = []
        self.ehlo = (b"250-rawhop\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
                     if eightbitmime else b"250-rawhop\r\n250 PIPELINING\r\n")
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0),
                                                   _RawHandler)
        self.srv.daemon_threads = True
        self.srv.hop = self
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=TIMEOUT):
        got = mh.wait_until(lambda: len(self.messages) >= count, timeout)
        assert got, "%d message(s) at the next hop, expected %d" % (
            len(self.messages), count)
        return self.messages

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def hop():
    h = RawHop()
    yield h
    h.stop()


@pytest.fixture
def relay(start_mailroot, hop):
    class _Port:
        port = hop.port
    return start_mailroot(sink=_Port)


def wire_ok(raw):
    """RFC 5321 on the wire: CRLF line ends only, no NUL, no line over 998
    octets (a stuffed dot apart), and the only CRLF "." CRLF is the end."""
    assert raw.endswith(b"\r\n.\r\n"), raw[-20:]
    assert b"\0" not in raw, "NUL sent"
    rest = raw.replace(b"\r\n", b"")
    assert b"\r" not in rest, "bare CR sent: %r" % raw
    assert b"\n" not in rest, "bare LF sent: %r" % raw
    assert raw.find(b"\r\n.\r\n") == len(raw) - 5, "an early end of data"
    for line in raw.split(b"\r\n"):
        assert len(line) - line.startswith(b"..") <= 998, len(line)


def relay_one(mr, data, rcpt="z@remote.example", code=250, status="2.0.0",
              mail="MAIL FROM:<a@client.test>"):
    with session(mr) as c:
        c.expect(250, "2.1.0", mail)
        c.expect(250, "2.1.5", "RCPT TO:<%s>" % rcpt)
        c.expect(354, None, "DATA")
        c.send(data + (b".\r\n" if data.endswith(b"\r\n") else
                       b"\r\n.\r\n"))
        c.expect(code, status)
        c.expect(221, "2.0.0", "QUIT")


SMUGGLED = (b"MAIL FROM:<x@y>\r\nRCPT TO:<victim@remote.example>\r\n"
            b"DATA\r\nFrom: ceo@remote.example\r\n\r\nsmuggled\r\n")

PAYLOADS = {
    "CR.CRLF": b"\r.\r\n",
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CR": b"\r.\r",
    "CRLF.CR": b"\r\n.\r",
}


@pytest.mark.parametrize("end", list(PAYLOADS.values()),
                         ids=list(PAYLOADS.keys()))
def test_smuggling_never_leaves(relay, hop, end):
    """A fake end of data reaches the next hop as a stuffed dot between
    CRLFs: one message, with the smuggled text as its content."""
    relay_one(relay, b"Subject: s\r\n\r\nhello" + end + SMUGGLED)
    raw, = hop.wait_for(1)
    wire_ok(raw)
    assert b"smuggled\r\n" in raw
    # the fake end arrives stuffed or as an empty line, never as "."
    assert b"\r\n.\r\n" not in raw[:-5]
    mails = [c for c in hop.commands if c.startswith("MAIL")]
    assert len(mails) == 1 and "<a@client.test>" in mails[0], mails


def test_bare_cr_stored_as_crlf(relay, hop):
    relay_one(relay, b"Subject: s\r\n\r\nhello\r.\r\nMAIL FROM:<x@y>\r\n")
    raw, = hop.wait_for(1)
    assert raw.endswith(b"\r\n\r\nhello\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n")


def test_nul_refused(relay, hop):
    """CRLF NUL "." CRLF: a hop that drops NUL would see the end there.
    The message is refused (RFC 5321 2.3.8: no NUL without BINARYMIME),
    and the refusal is logged."""
    relay_one(relay, b"Subject: s\r\n\r\nhello\r\n\x00.\r\n" + SMUGGLED,
              code=554, status="5.6.0")
    ok = mh.wait_until(lambda: "refused: 554 5.6.0" in relay.log_text(), 10)
    assert ok, relay.log_text()
    relay.wait_queue_empty()        # the file given up is removed
    assert hop.messages == []


def test_overlong_line_folded(relay, hop):
    """RFC 5321 4.5.3.1.6: no line over 998 octets leaves mailroot; a long
    line is folded with CRLF SPACE."""
    relay_one(relay, b"Subject: s\r\n\r\n" + b"x" * (1024 * 1024))
    raw, = hop.wait_for(1)
    wire_ok(raw)
    body = raw.split(b"\r\n\r\n", 1)[1][:-5]
    assert body.replace(b"\r\n ", b"") == b"x" * (1024 * 1024)


def test_8bitmime_passed_on(relay, hop):
    """BODY=8BITMIME is kept with the message and given to the next hop."""
    data = "Subject: s\r\n\r\ncaf\u00e9\r\n".encode()
    relay_one(relay, data, mail="MAIL FROM:<a@client.test> BODY=8BITMIME")
    raw, = hop.wait_for(1)
    assert raw.endswith("\r\n\r\ncaf\u00e9\r\n.\r\n".encode())
    mails = [c for c in hop.commands if c.startswith("MAIL")]
    assert mails[0].endswith(" BODY=8BITMIME"), mails


def test_8bitmime_declared_but_7bit(relay, hop):
    """A client that declares 8BITMIME for plain ASCII: labelled 7BIT."""
    relay_one(relay, b"Subject: s\r\n\r\nascii\r\n",
              mail="MAIL FROM:<a@client.test> BODY=8BITMIME")
    hop.wait_for(1)
    mails = [c for c in hop.commands if c.startswith("MAIL")]
    assert mails[0].endswith(" BODY=7BIT"), mails


def test_8bitmime_to_hop_without_it_returned(start_mailroot, workdir):
    """A next hop without 8BITMIME: the message is not sent unlabelled;
    the sender gets a DSN (RFC 6152 section 3)."""
    hop = RawHop(eightbitmime=False)
    try:
        class _Port:
            port = hop.port
        mr = start_mailroot(sink=_Port)
        data = "Subject: s\r\n\r\ncaf\u00e9\r\n".encode()
        relay_one(mr, data, mail="MAIL FROM:<a@local.test> BODY=8BITMIME")
        drops = mr.wait_drop(1)
        dsn = drops[0].read_bytes()
        assert b"5.6.3" in dsn and b"8BITMIME" in dsn, dsn
        assert hop.messages == []
    finally:
        hop.stop()


def test_8bitmime_kept_in_envelope(start_mailroot, hop):
    """The label survives in Queue/ID.env ("body 8BITMIME") and a restart;
    an envelope written before it existed (no body line) still parses."""
    from test_recovery import envelope, put, qid

    class _Port:
        port = hop.port
    d = start_mailroot(sink=_Port)
    assert d.stop() == []
    data = "Subject: s\r\n\r\ncaf\u00e9\r\n".encode()
    new, old = qid(1), qid(2)
    put(d, new + ".eml", data)
    put(d, new + ".env", envelope(new, len(data), rcpt="n@remote.test",
                                  extra="body 8BITMIME\n"))
    put(d, old + ".eml", data)
    put(d, old + ".env", envelope(old, len(data), rcpt="o@remote.test"))
    d.returncode = None
    d.start()
    hop.wait_for(2)
    d.wait_queue_empty()
    mails = [c for c in hop.commands if c.startswith("MAIL")]
    assert sorted(m.endswith(" BODY=8BITMIME") for m in mails) == \
        [False, True], mails
