"""
Scripted SMTP sessions against the real mailrootd (smtpd/smtp_session.c).

Raw sockets, so that every byte a client sends is exactly the byte under
test (bare LF, NUL, overlong lines, pipelined writes).  Each step asserts
the reply code and the RFC 3463 enhanced status.  Clients that must not be
trusted connect from 127.0.0.2 (all of 127/8 is loopback on Linux), the
daemon's relay list holds 127.0.0.1 only.

Every wait is bounded: socket timeouts, the harness's wait_until, and the
per-test alarm in conftest.py.
"""

import re
import smtplib
import socket
import time

import pytest

import mailroot_harness as mh

FQDN = "mx.test.example"        # the harness's hostname, fqdn by default
UNTRUSTED = "127.0.0.2"
TIMEOUT = 10.0
DEFAULT_MESSAGE_SIZE = 2048 * 1024


# ---------------------------------------------------------------------------
# A client with exact byte control.

class Client:
    def __init__(self, port, source=None, timeout=TIMEOUT):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        for _ in range(10000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line.decode("utf-8", "replace")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending %r" % self.buf)
            self.buf += chunk
        raise AssertionError("reply line never ended")

    def reply(self):
        """One complete reply, multi-line included: (code, [texts])."""
        lines = []
        for _ in range(1000):
            line = self._line()
            assert re.match(r"^[2-5][0-9][0-9][ -]", line + " "), \
                "malformed reply line %r" % line
            lines.append(line)
            if len(line) < 4 or line[3] == " ":
                codes = {ln[:3] for ln in lines}
                assert len(codes) == 1, "mixed codes in %r" % lines
                return int(line[:3]), [ln[4:] for ln in lines]
        raise AssertionError("reply never ended: %r" % lines)

    def cmd(self, line):
        self.send(line.encode() + b"\r\n" if isinstance(line, str)
                  else line + b"\r\n")
        return self.reply()

    def expect(self, code, status=None, line=None):
        """Sends line (if any), reads a reply, asserts code and status;
        returns the reply's text lines."""
        got = self.cmd(line) if line is not None else self.reply()
        expect_reply(got, code, status, line)
        return got[1]

    def closed(self, timeout=30.0):
        """True when the server closes the connection (EOF or reset)
        within timeout, with no further reply."""
        self.sock.settimeout(timeout)
        try:
            data = self.buf + self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        assert data == b"", "data after the last reply: %r" % data
        return True


def expect_reply(got, code, status=None, what=None):
    rcode, texts = got
    assert rcode == code, "%r: expected %d %s, got %d %r" % (
        what, code, status or "", rcode, texts)
    if status is not None:
        assert texts[-1].startswith(status + " "), \
            "%r: expected enhanced status %s in %r" % (what, status, texts)


def session(mr, source=None, ehlo="client.test"):
    """A client past the greeting and, unless ehlo is None, EHLO."""
    c = Client(mr.port, source)
    c.expect(220)
    if ehlo:
        c.expect(250, None, "EHLO " + ehlo)
    return c


def message(subject, body="Body line.\n", extra_headers=""):
    """A complete message: nothing is added to it."""
    return mh.crlf("%sFrom: <sender@client.test>\nTo: user@local.test\n"
                   "Subject: %s\nDate: Mon, 30 Nov 2026 10:00:00 +0000\n"
                   "Message-ID: <%s@client.test>\n\n%s"
                   % (extra_headers, subject, subject.replace(" ", "."), body))


def send_data(c, data, code=250, status="2.0.0"):
    """DATA, the message as given (already CRLF), the end, the reply."""
    c.expect(354, None, "DATA")
    c.send(data + b".\r\n")
    return c.expect(code, status)


ENVELOPE_LINE = re.compile(rb"(x-sender|x-receiver): <?([^<>\r\n]*)>?\r\n")


def parse_drop(data):
    """(sender, [receivers], message) of a Drop .eml file."""
    sender, receivers, pos = None, [], 0
    for _ in range(1000):
        m = ENVELOPE_LINE.match(data, pos)
        if not m:
            break
        if m.group(1) == b"x-sender":
            sender = m.group(2).decode()
        else:
            receivers.append(m.group(2).decode())
        pos = m.end()
    return sender, receivers, data[pos:]


def settle(mr, sink=None, drops=1, wait=1.0):
    """Waits for exactly `drops` Drop files, then a moment more to be sure
    no other message shows up (in Drop or at the sink)."""
    files = mr.wait_drop(drops) if drops else []
    time.sleep(wait)
    now = [f for f in mr.drop_files() if f.suffix == ".eml"]
    assert len(now) == drops, "Drop holds %s" % now
    if sink is not None:
        assert sink.messages == [], "relayed to the sink: %r" % sink.messages
    return [parse_drop(f.read_bytes()) for f in files]


@pytest.fixture
def limited(start_mailroot, sink):
    """A daemon with small limits: 10K messages, 3 recipients, 2 messages
    per connection."""
    return start_mailroot(sink=sink, server_extra="""
    limits {
        message-size 10K
        recipients-per-message 3
        messages-per-connection 2
    }""")


# ---------------------------------------------------------------------------
# Greeting and HELO/EHLO.

def test_greeting_names_fqdn(mailroot):
    with Client(mailroot.port) as c:
        text = c.expect(220)
        assert text[0].split()[0] == FQDN, text


def test_ehlo_extensions(mailroot):
    with Client(mailroot.port) as c:
        c.expect(220)
        text = c.expect(250, None, "EHLO client.test")
        assert text[0].startswith(FQDN), text
        ext = [t.upper() for t in text[1:]]
        assert "SIZE %d" % DEFAULT_MESSAGE_SIZE in ext, text
        for e in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"):
            assert e in ext, text
        c.expect(221, "2.0.0", "QUIT")


def test_ehlo_size_follows_config(limited):
    with session(limited, ehlo=None) as c:
        text = c.expect(250, None, "EHLO client.test")
        assert "SIZE 10240" in text, text


def test_helo_works(mailroot):
    with session(mailroot, ehlo=None) as c:
        text = c.expect(250, None, "HELO client.test")
        assert len(text) == 1 and text[0].startswith(FQDN), text
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        # parameters need EHLO
        c.expect(250, "2.0.0", "RSET")
        c.expect(555, "5.5.4", "MAIL FROM:<a@client.test> SIZE=10")


def test_helo_without_name(mailroot):
    with session(mailroot, ehlo=None) as c:
        c.expect(501, "5.5.4", "HELO")
        c.expect(501, "5.5.4", "EHLO")


# ---------------------------------------------------------------------------
# Command order.

def test_mail_before_helo(mailroot):
    with session(mailroot, ehlo=None) as c:
        c.expect(503, "5.5.1", "MAIL FROM:<a@client.test>")


def test_rcpt_before_mail(mailroot):
    with session(mailroot) as c:
        c.expect(503, "5.5.1", "RCPT TO:<user@local.test>")


def test_data_without_mail(mailroot):
    with session(mailroot) as c:
        c.expect(503, "5.5.1", "DATA")


def test_data_without_rcpt(mailroot):
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        code, text = c.cmd("DATA")
        assert code in (503, 554), text
        assert text[-1].startswith("5.5.1 "), text


def test_nested_mail(mailroot):
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(503, "5.5.1", "MAIL FROM:<b@client.test>")
        # the first transaction still stands
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")


def test_rset_then_data(mailroot):
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        c.expect(250, "2.0.0", "RSET")
        c.expect(503, "5.5.1", "DATA")
        c.expect(503, "5.5.1", "RCPT TO:<user@local.test>")


def test_quit_closes(mailroot):
    with session(mailroot) as c:
        text = c.expect(221, "2.0.0", "QUIT")
        assert FQDN in text[0]
        assert c.closed()


def test_noop_vrfy_help(mailroot):
    with session(mailroot) as c:
        c.expect(250, "2.0.0", "NOOP")
        c.expect(252, "2.5.2", "VRFY user")
        c.expect(214, "2.0.0", "HELP")


# ---------------------------------------------------------------------------
# Syntax.

def test_unknown_command(mailroot):
    with session(mailroot) as c:
        c.expect(500, "5.5.2", "FOO bar")
        c.expect(250, "2.0.0", "NOOP")


@pytest.mark.parametrize("line", ["DATA x", "RSET x", "QUIT x"])
def test_no_argument_commands(mailroot, line):
    with session(mailroot) as c:
        c.expect(501, "5.5.4", line)
        c.expect(250, "2.0.0", "NOOP")


def test_nul_in_command(mailroot):
    with session(mailroot) as c:
        c.expect(500, "5.5.2", b"NOOP\x00")
        c.expect(500, "5.5.2", b"MAIL FROM:<a\x00@client.test>")
        c.expect(500, "5.5.2", b"\x00")
        # the session is intact, no transaction was started
        c.expect(503, "5.5.1", "RCPT TO:<user@local.test>")
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")


def test_overlong_line_in_one_write(mailroot):
    with session(mailroot) as c:
        c.expect(500, "5.5.2", "NOOP " + "x" * 3000)
        # the daemon may go on or hang up; if it goes on it must work
        try:
            code, _ = c.cmd("NOOP")
        except (EOFError, ConnectionResetError):
            return
        assert code == 250


def test_overlong_line_without_end(mailroot):
    """A client that never ends its line is cut off at the limit, not
    buffered for ever."""
    with session(mailroot) as c:
        c.send(b"NOOP " + b"x" * 5000)
        c.expect(500, "5.5.2")
        assert c.closed()


def test_line_at_limit(mailroot):
    """2048 bytes before CRLF is the limit (MR_SMTP_LINE_MAX); one more is
    too long."""
    with session(mailroot) as c:
        c.expect(250, "2.0.0", "NOOP " + "x" * 2043)
        c.expect(500, "5.5.2", "NOOP " + "x" * 2044)


def test_line_at_limit_split_before_lf(mailroot):
    """A line of exactly the limit whose LF arrives in a later segment is
    still a line of the limit, not an overlong one."""
    with session(mailroot) as c:
        c.send(b"NOOP " + b"x" * 2043 + b"\r")
        time.sleep(0.5)
        c.send(b"\n")
        c.expect(250, "2.0.0")


def test_too_many_errors(mailroot):
    with session(mailroot) as c:
        for i in range(24):
            c.expect(500, "5.5.2", "BAD%d" % i)
        c.expect(250, "2.0.0", "NOOP")      # 24 errors: still there
        c.expect(500, "5.5.2", "BAD24")
        c.expect(421, "4.7.0")
        assert c.closed()


def test_too_many_errors_pipelined(mailroot):
    with session(mailroot) as c:
        c.send(b"".join(b"BAD%d\r\n" % i for i in range(30)))
        for i in range(25):
            c.expect(500, "5.5.2")
        c.expect(421, "4.7.0")
        assert c.closed()


# ---------------------------------------------------------------------------
# Limits.

def test_mail_size_over_limit(limited):
    with session(limited) as c:
        c.expect(552, "5.3.4", "MAIL FROM:<a@client.test> SIZE=10241")
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test> SIZE=10240")


def test_mail_size_huge(mailroot):
    with session(mailroot) as c:
        c.expect(552, "5.3.4",
                 "MAIL FROM:<a@client.test> SIZE=9999999999999999999")
        c.expect(501, "5.5.4",
                 "MAIL FROM:<a@client.test> SIZE=99999999999999999999")
        c.expect(555, "5.5.4", "MAIL FROM:<a@client.test> FOO=BAR")


def test_message_over_size_at_end_of_data(limited):
    with session(limited) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        data = message("big", ("x" * 70 + "\n") * 300)     # ~21 KB
        send_data(c, data, 552, "5.3.4")
        # the session goes on, the transaction is gone
        c.expect(503, "5.5.1", "RCPT TO:<user@local.test>")
        c.expect(221, "2.0.0", "QUIT")
    time.sleep(1.0)
    assert limited.drop_files() == []
    limited.wait_queue_empty()


def test_message_under_size_accepted(limited):
    with session(limited) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        data = message("small", ("x" * 70 + "\n") * 100)   # ~7 KB
        send_data(c, data)
    (sender, rcpts, msg), = settle(limited)
    assert rcpts == ["user@local.test"]
    assert mh.split_received(msg)[1] == data


def test_too_many_recipients(limited):
    with session(limited) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        for i in range(3):
            c.expect(250, "2.1.5", "RCPT TO:<u%d@local.test>" % i)
        c.expect(452, "4.5.3", "RCPT TO:<u3@local.test>")
        c.expect(452, "4.5.3", "RCPT TO:<u4@local.test>")
        send_data(c, message("three recipients"))
    (_, rcpts, _), = settle(limited)
    assert rcpts == ["u0@local.test", "u1@local.test", "u2@local.test"]


def test_messages_per_connection_is_outbound_only(limited):
    # IIS: "the maximum number of outbound messages per connection"; an
    # inbound session may send as many as it likes
    with session(limited) as c:
        for i in range(5):
            c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
            c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
            send_data(c, message("message %d" % i))
        c.expect(221, "2.0.0", "QUIT")
    settle(limited, drops=5)


def test_mass_mail_on_one_connection(mailroot, sink):
    # what Django's send_mass_mail does: 30 messages, one connection,
    # with the default limit of 20
    with smtplib.SMTP("127.0.0.1", mailroot.port, timeout=TIMEOUT) as s:
        s.ehlo("client.test")
        for i in range(30):
            s.sendmail("a@client.test", ["user%d@remote.example" % i],
                       message("mass %d" % i))
    assert len(sink.wait_for(30, timeout=60)) == 30


def test_session_size(start_mailroot, sink):
    mr = start_mailroot(sink=sink, server_extra="""
    limits {
        message-size 10K
        session-size 20K
    }""")
    data = message("8K", ("x" * 70 + "\n") * 110)
    with session(mr) as c:
        for i in range(2):
            c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
            c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
            send_data(c, data)
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        send_data(c, data, 552, "5.3.4")
    settle(mr, sink, drops=2)


def test_idle_timeout(start_mailroot):
    mr = start_mailroot(server_extra="    limits { idle-timeout 2s }")
    with session(mr) as c:
        t0 = time.monotonic()
        c.sock.settimeout(30.0)
        c.expect(421, "4.4.2")
        # a lower bound holds however loaded the machine is
        assert time.monotonic() - t0 >= 1.5
        assert c.closed()


def test_idle_timeout_in_data(start_mailroot):
    mr = start_mailroot(server_extra="    limits { idle-timeout 2s }")
    with session(mr) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        c.expect(354, None, "DATA")
        c.send(b"Subject: stalled\r\n\r\nhalf a message")
        c.sock.settimeout(30.0)
        c.expect(421, "4.4.2")
        assert c.closed()
    time.sleep(1.0)
    assert mr.drop_files() == []
    mr.wait_queue_empty()


def test_idle_timeout_reset_by_activity(start_mailroot):
    # 4 s of activity in steps of 1 s against a 3 s timeout: each step
    # has 2 s to spare on a loaded machine
    mr = start_mailroot(server_extra="    limits { idle-timeout 3s }")
    with session(mr) as c:
        for _ in range(4):
            time.sleep(1.0)
            c.expect(250, "2.0.0", "NOOP")


# ---------------------------------------------------------------------------
# Relay and connection control.

def test_relay_denied_to_untrusted_client(mailroot, sink):
    with session(mailroot, UNTRUSTED) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(550, "5.7.1", "RCPT TO:<rcpt@remote.example>")
        c.expect(550, "5.7.1", "RCPT TO:<rcpt@LOCAL.TEST.remote.example>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@LOCAL.Test>")
        c.expect(250, "2.1.5", "RCPT TO:<postmaster>")


def test_postmaster_always_accepted(mailroot, sink):
    """RFC 5321 4.5.1: <Postmaster> without a domain, from anyone, is
    delivered locally."""
    with session(mailroot, UNTRUSTED) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<>")
        c.expect(250, "2.1.5", "RCPT TO:<Postmaster>")
        send_data(c, message("to postmaster"))
    # the server's own postmaster: delivered to Drop, never sent on (here
    # the fqdn is not a local domain, local.test is)
    (_, rcpts, _), = settle(mailroot, sink)
    assert len(rcpts) == 1 and rcpts[0].lower() in (
        "postmaster@local.test", "postmaster@" + FQDN), rcpts


def test_relay_allowed_to_listed_client(mailroot, sink):
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<rcpt@remote.example>")
        send_data(c, message("relayed"))
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == ["rcpt@remote.example"]


REFUSED = (501, 550)


@pytest.mark.parametrize("rcpt,codes,status,local", [
    ("<user%remote.example@local.test>", (250,), "2.1.5",
     "user%remote.example@local.test"),
    ("<remote.example!user@local.test>", (250,), "2.1.5",
     "remote.example!user@local.test"),
    ('<"user@remote.example"@local.test>', (250,), "2.1.5",
     '"user@remote.example"@local.test'),
    ("<@local.test:user@remote.example>", (550,), "5.7.1", None),
    ("<@local.test,@other.example:user@remote.example>", (550,), "5.7.1",
     None),
    ('<"user@remote.example">', (501,), None, None),
    ("<user@remote.example@local.test>", (501,), None, None),
    ("<user@remote.example.>", REFUSED, None, None),
    ("<user@[192.0.2.1]>", (550,), "5.7.1", None),
], ids=["percent", "bang", "quoted-at", "route", "route2", "quoted",
        "two-at", "trailing-dot", "literal"])
def test_open_relay_tricks(mailroot, sink, rcpt, codes, status, local):
    """From a client that may not relay, the old tricks are either refused
    or a local part at the local domain: delivered to Drop, never to the
    remote host."""
    with session(mailroot, UNTRUSTED) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        code, text = c.cmd("RCPT TO:" + rcpt)
        assert code in codes, (rcpt, code, text)
        if status is not None:
            expect_reply((code, text), code, status, rcpt)
        else:
            assert re.match(r"5\.[0-9]\.[0-9]+ ", text[-1]), text
        if local is None:
            c.expect(554, "5.5.1", "DATA")
            c.expect(221, "2.0.0", "QUIT")
        else:
            send_data(c, message("relay trick"))
    if local is None:
        settle(mailroot, sink, drops=0)
        return
    (_, rcpts, _), = settle(mailroot, sink)
    assert rcpts == [local]


def test_connection_deny(start_mailroot):
    mr = start_mailroot(server_extra="    connection deny %s" % UNTRUSTED)
    with Client(mr.port, UNTRUSTED) as c:
        c.expect(554, "5.7.1")
        assert c.closed()
    with Client(mr.port) as c:
        c.expect(220)


def test_connection_default_deny(start_mailroot):
    mr = start_mailroot(server_extra="    connection allow 127.0.0.1\n"
                        "    connection default deny")
    with Client(mr.port, UNTRUSTED) as c:
        c.expect(554, "5.7.1")
        assert c.closed()
    with Client(mr.port) as c:
        c.expect(220)
        c.expect(250, None, "EHLO client.test")


# ---------------------------------------------------------------------------
# DATA.

def test_message_delivered_intact(mailroot, sink):
    body = ("Line one.\n"
            ".Leading dot.\n"
            "..Two dots.\n"
            "\n"
            "Last.\n")
    data = message("intact", body)
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<sender@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        text = send_data(c, stuffed)
        assert "queued as" in text[0]
    (sender, rcpts, msg), = settle(mailroot, sink)
    assert sender == "sender@client.test"
    received, rest = mh.split_received(msg)
    assert rest == data
    assert b"by %s" % FQDN.encode() in received


def test_empty_message(mailroot, sink):
    # from a client outside `relay allow': no header is added to it
    with session(mailroot, UNTRUSTED) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        send_data(c, b"")
    (sender, rcpts, msg), = settle(mailroot, sink)
    assert sender in ("", "<>")
    assert mh.split_received(msg)[1] == b""


def test_bare_lf_and_cr_stored_as_crlf(mailroot, sink):
    with session(mailroot, UNTRUSTED) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        send_data(c, b"Subject: lf\n\none\ntwo\rthree\r\n")
    (_, _, msg), = settle(mailroot, sink)
    assert mh.split_received(msg)[1] == \
        b"Subject: lf\r\n\r\none\r\ntwo\r\nthree\r\n"


SMUGGLE = (b"\n.\r\n", b"\n.\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r")


@pytest.mark.parametrize("end", SMUGGLE,
                         ids=["LF.CRLF", "LF.LF", "CRLF.LF", "CR.CRLF",
                              "CRLF.CR"])
def test_smtp_smuggling(mailroot, sink, end):
    """A fake end of data followed by a second transaction stays data: one
    message, holding the smuggled text, nothing relayed."""
    smuggled = (b"MAIL FROM:<x@y>\r\nRCPT TO:<z@remote.example>\r\n"
                b"DATA\r\nsmuggled\r\n")
    data = b"Subject: smuggling\r\n\r\nhello" + end + smuggled
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        c.expect(354, None, "DATA")
        c.send(data + b"\r\n.\r\n" + b"QUIT\r\n")
        c.expect(250, "2.0.0")
        c.expect(221, "2.0.0")
        assert c.closed()
    (_, rcpts, msg), = settle(mailroot, sink)
    assert rcpts == ["user@local.test"]
    assert b"smuggled" in msg
    assert b"RCPT TO:<z@remote.example>" in msg


def test_pipelining(mailroot, sink):
    with Client(mailroot.port) as c:
        c.expect(220)
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n"
               b"RCPT TO:<user@local.test>\r\nRCPT TO:<x@remote.example>\r\n"
               b"DATA\r\n")
        text = c.expect(250)
        assert "PIPELINING" in text
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(250, "2.1.5")      # 127.0.0.1 may relay
        c.expect(354)
        c.send(message("pipelined") + b".\r\nMAIL FROM:<b@client.test>\r\n"
               b"RCPT TO:<user@local.test>\r\nRSET\r\nQUIT\r\n")
        c.expect(250, "2.0.0")
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(250, "2.0.0")
        c.expect(221, "2.0.0")
        assert c.closed()
    settle(mailroot, drops=1)
    assert len(sink.wait_for(1)) == 1


# ---------------------------------------------------------------------------
# Hop count: RFC 5321 6.3, IIS "Maximum hop count" (default 15).
#
# The limit applies to the Received: fields of the message as stored, and
# mailroot's own is one of them (smtp_session.c end_of_data: "our own
# Received header is the first one counted").  With the default of 15,
# 14 from the client + ours = 15 passes; 15 + ours = 16 is a loop.

def hops(n):
    return "".join("Received: from hop%d.example by hop%d.example;"
                   " Mon, 1 Jan 2024 00:00:00 +0000\n" % (i, i + 1)
                   for i in range(n))


@pytest.mark.parametrize("n,code,status", [
    (14, 250, "2.0.0"),
    (15, 554, "5.4.6"),
    (16, 554, "5.4.6"),
])
def test_hop_count(mailroot, sink, n, code, status):
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        send_data(c, message("hops", extra_headers=hops(n)), code, status)
        c.expect(250, "2.0.0", "NOOP")
    if code == 250:
        settle(mailroot, sink)
    else:
        settle(mailroot, sink, drops=0)


def test_received_in_body_not_counted(mailroot, sink):
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        send_data(c, message("body hops", body=hops(30)))
    settle(mailroot, sink)


# ---------------------------------------------------------------------------
# The operational log: every refusal, one line, with the session, the
# client, the reply code and the reason (as relay denials always were).

def logged(mr, pattern, timeout=10.0):
    """Waits for a log line matching pattern (a regex); returns it."""
    rx = re.compile(pattern)

    def find():
        for line in mr.log_text().splitlines():
            if rx.search(line):
                return line
        return None
    line = mh.wait_until(find, timeout)
    assert line, "no log line matching %r in:\n%s" % (pattern,
                                                       mr.log_text())
    return line


SESSION_IP = r"smtpd\[\d+\]: session \d+ \[127\.0\.0\.1\]: "


def test_refusals_logged(limited):
    with session(limited) as c:
        c.expect(552, "5.3.4", "MAIL FROM:<a@client.test> SIZE=20000")
        c.expect(250, "2.1.0", "MAIL FROM:<big@client.test>")
        for i in range(3):
            c.expect(250, "2.1.5", "RCPT TO:<u%d@local.test>" % i)
        c.expect(452, "4.5.3", "RCPT TO:<u3@local.test>")
        send_data(c, message("big", ("x" * 70 + "\n") * 300), 552, "5.3.4")
        c.expect(500, "5.5.2", "NOOP " + "x" * 3000)
    logged(limited, SESSION_IP + r"refused: 552 5\.3\.4 Message size "
           r"exceeds fixed limit of 10240 bytes$")
    logged(limited, SESSION_IP + r"refused: 452 4\.5\.3 .*too many "
           r"recipients \(from=<big@client\.test>\)$")
    logged(limited, SESSION_IP + r"refused: 552 5\.3\.4 Message size .* "
           r"\(from=<big@client\.test>\)$")
    logged(limited, SESSION_IP + r"refused: 500 5\.5\.2 Line too long$")


def test_too_many_errors_logged(mailroot):
    with session(mailroot) as c:
        c.send(b"".join(b"BAD%d\r\n" % i for i in range(30)))
        for i in range(25):
            c.expect(500, "5.5.2")
        c.expect(421, "4.7.0")
    logged(mailroot, SESSION_IP + r"refused: 500 5\.5\.2 Command not "
           r"recognized$")
    logged(mailroot, SESSION_IP + r"refused: 421 4\.7\.0 .*Too many errors")


def test_disconnect_in_data_logged(mailroot):
    with session(mailroot) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<gone@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        c.expect(354, None, "DATA")
        c.send(b"Subject: half\r\n\r\nhalf a mess")
    logged(mailroot, SESSION_IP + r"lost connection in DATA after \d+ "
           r"bytes: message discarded \(from=<gone@client\.test>\)$")
    mailroot.wait_queue_empty()


def test_too_many_connections_logged(start_mailroot):
    mr = start_mailroot(server_extra="    limits { connections 1 }")

    def first():
        # the harness's readiness probe may still hold the one slot
        c = Client(mr.port)
        if c.reply()[0] == 220:
            return c
        c.close()
        return None
    c1 = mh.wait_until(first, 10)
    assert c1, "no connection got 220"
    with c1:
        with Client(mr.port) as c2:
            c2.expect(421, "4.7.0")
            assert c2.closed()
        # the one over the limit is closed; the session in the slot goes on
        c1.expect(250, None, "EHLO client.test")
        c1.expect(250, "2.0.0", "NOOP")
    logged(mr, SESSION_IP + r"refused: 421 4\.7\.0 .*Too many connections")


def test_idle_timeout_and_session_size_are_per_server(start_mailroot, sink,
                                                      workdir):
    """A second server with its own idle-timeout and session-size: its
    session times out and its third message is refused, while the first
    server's session, under the defaults, goes on."""
    port2 = mh.free_port()
    (workdir / "two").mkdir(mode=0o755)
    mh.make_traversable(workdir / "two")
    mr = start_mailroot(sink=sink, global_extra=(
        'server "two" {\n    listen 127.0.0.1:%d\n    mailroot "%s"\n'
        '    domain "local.test" local\n'
        "    limits { idle-timeout 3s; message-size 10K; "
        "session-size 20K }\n}") % (port2, workdir / "two"))
    assert mh.wait_until(lambda: mh.port_accepts(port2), 30)
    data = message("8K", ("x" * 70 + "\n") * 110)
    with session(mr) as c1:
        c2 = Client(port2)
        with c2:
            c2.expect(220)
            c2.expect(250, None, "EHLO client.test")
            for code, status in ((250, "2.0.0"), (250, "2.0.0"),
                                 (552, "5.3.4")):
                c2.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
                c2.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
                send_data(c2, data, code, status)
            c2.sock.settimeout(30.0)
            c2.expect(421, "4.4.2")
            assert c2.closed()
        for _ in range(3):
            c1.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
            c1.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
            send_data(c1, data)
        c1.expect(250, "2.0.0", "NOOP")


# ---------------------------------------------------------------------------
# The header section: a message without one gets its empty line; Date and
# Message-ID are added for the clients add-missing-headers names (default
# local: those in `relay allow').

def one_message(mr, data, source=None):
    with session(mr, source) as c:
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        send_data(c, data)
    (_, _, msg), = settle(mr)
    return mh.split_received(msg)[1]


def test_no_header_section_gets_empty_line(mailroot, sink):
    rest = one_message(mailroot, b"hello world\r\nsecond: line\r\n",
                       UNTRUSTED)
    assert rest == b"\r\nhello world\r\nsecond: line\r\n", rest


def test_missing_date_and_message_id_added(mailroot, sink):
    rest = one_message(mailroot, b"Subject: s\r\n\r\nbody\r\n")
    head, body = rest.split(b"\r\n\r\n", 1)
    fields = head.split(b"\r\n")
    assert fields[0] == b"Subject: s" and body == b"body\r\n", rest
    assert re.match(rb"^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d "
                    rb"[+-]\d{4}$", fields[1]), fields
    assert re.match(rb"^Message-ID: <[0-9A-F]+@mx\.test\.example>$",
                    fields[2]), fields
    assert len(fields) == 3


def test_headers_added_before_the_inserted_empty_line(mailroot, sink):
    rest = one_message(mailroot, b"just text\r\n")
    assert re.match(rb"^Date: [^\r\n]+\r\nMessage-ID: <[^\r\n]+>\r\n\r\n"
                    rb"just text\r\n$", rest), rest


def test_present_headers_not_duplicated(mailroot, sink):
    data = message("complete")
    assert one_message(mailroot, data) == data


def test_untrusted_client_gets_no_headers(mailroot, sink):
    data = b"Subject: s\r\n\r\nbody\r\n"
    assert one_message(mailroot, data, UNTRUSTED) == data


@pytest.mark.parametrize("setting,source,added", [
    ("none", None, False),
    ("all", UNTRUSTED, True),
    ("local", UNTRUSTED, False),
])
def test_add_missing_headers_setting(start_mailroot, sink, setting, source,
                                     added):
    mr = start_mailroot(sink=sink,
                        server_extra="    add-missing-headers %s" % setting)
    rest = one_message(mr, b"Subject: s\r\n\r\nbody\r\n", source)
    assert (b"\r\nDate: " in rest and b"\r\nMessage-ID: <" in rest) == added


# ---------------------------------------------------------------------------
# Where IIS was lenient and no harm follows.

def test_addresses_without_brackets(mailroot, sink):
    """RCPT TO:user@domain (and MAIL FROM:) as IIS and Postfix take them;
    relay is still decided by the domain."""
    with session(mailroot, UNTRUSTED) as c:
        c.expect(250, "2.1.0", "MAIL FROM:a@client.test")
        c.expect(250, "2.1.5", "RCPT TO:user@local.test")
        c.expect(250, "2.1.5", "RCPT TO: other@local.test")
        c.expect(550, "5.7.1", "RCPT TO:x@remote.example")
        c.expect(501, "5.1.3", "RCPT TO:user@local.test>")
        send_data(c, message("bare"))
    (sender, rcpts, _), = settle(mailroot, sink)
    assert sender == "a@client.test"
    assert rcpts == ["user@local.test", "other@local.test"]


@pytest.mark.parametrize("line", ["EXPN staff", "TURN"])
def test_expn_turn_not_implemented(mailroot, line):
    """Known commands mailroot does not offer: 502, not 500 (unknown)."""
    with session(mailroot) as c:
        c.expect(502, "5.5.1", line)
        c.expect(250, "2.0.0", "NOOP")


def test_helo_sanitised_in_received(mailroot, sink):
    """What a client says in HELO cannot end the Received field's from
    clause, fake its date or bring 8-bit bytes into it."""
    with session(mailroot, ehlo=None) as c:
        c.expect(250, None, b"EHLO evil;by(x)\xc3\xa9.example")
        c.expect(250, "2.1.0", "MAIL FROM:<a@client.test>")
        c.expect(250, "2.1.5", "RCPT TO:<user@local.test>")
        send_data(c, message("helo"))
    (_, _, msg), = settle(mailroot, sink)
    received, _ = mh.split_received(msg)
    assert received.startswith(b"Received: from evil?by?x???.example "
                               b"([127.0.0.1])"), received
    assert received.count(b";") == 1, received
