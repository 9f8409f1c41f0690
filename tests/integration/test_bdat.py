"""
CHUNKING / BDAT (RFC 3030) and the per-server ESMTP switches, against the
real mailrootd, from raw sockets (every byte of a chunk is the byte under
test).

A chunk is byte-counted, never interpreted: a lone "." line inside one
ends nothing and stays in the message.  Line ends are stored as CRLF, as
for DATA (smtp_session.c, the smuggling fix): a bare LF or bare CR in a
chunk arrives as CRLF, and a message whose last chunk ends without a line
end gets one.  What is stored is compared byte for byte, in Drop and at
the next hop.
"""

import pytest

import mailroot_harness as mh
from test_smtp_session import Client, parse_drop, session

BODY_HEAD = (b"From: <sender@client.test>\r\nTo: user@local.test\r\n"
             b"Subject: chunks\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
             b"Message-ID: <chunks@client.test>\r\n\r\n")


def bdat(c, data, last=False):
    c.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)


def begin(c, rcpt="user@local.test"):
    c.expect(250, "2.1.0", "MAIL FROM:<sender@client.test>")
    c.expect(250, "2.1.5", "RCPT TO:<%s>" % rcpt)


def stored(mr):
    """The one message in Drop, without mailroot's Received field."""
    files = mr.wait_drop(1)
    assert len(files) == 1, files
    _sender, rcpts, msg = parse_drop(files[0].read_bytes())
    assert rcpts == ["user@local.test"], rcpts
    _rcv, rest = mh.split_received(msg)
    return rest


def test_ehlo_offers_chunking(mailroot):
    with session(mailroot) as c:
        c.send(b"EHLO client.test\r\n")
        _code, text = c.reply()
        assert "CHUNKING" in [t.upper() for t in text], text


def test_chunk_is_not_interpreted(mailroot):
    """A lone "." line and a bare LF inside a chunk end nothing; a CR LF
    split across two chunks is one line end; bare LF becomes CRLF."""
    part1 = BODY_HEAD + b"one\r\n.\r\ntwo\nthree\r"
    part2 = b"\n..four\r\n.\r\n"
    with session(mailroot) as c:
        begin(c)
        bdat(c, part1)
        c.expect(250, "2.0.0")
        bdat(c, part2, last=True)
        c.expect(250, "2.0.0")
        c.expect(221, "2.0.0", "QUIT")
    assert stored(mailroot) == (BODY_HEAD + b"one\r\n.\r\ntwo\r\nthree\r\n"
                                b"..four\r\n.\r\n")


def test_bdat_zero_last_and_unterminated_line(mailroot):
    with session(mailroot) as c:
        begin(c)
        bdat(c, BODY_HEAD + b"no line end")
        c.expect(250, "2.0.0")
        bdat(c, b"", last=True)
        c.expect(250, "2.0.0")
    assert stored(mailroot) == BODY_HEAD + b"no line end\r\n"


def test_pipelined_transaction_in_one_write(mailroot, sink):
    """MAIL, RCPT, two chunks and QUIT in one write; relayed to the sink
    with the "." line intact (the next hop gets it dot-stuffed)."""
    msg = (BODY_HEAD.replace(b"user@local.test", b"x@remote.test")
           + b".\r\nbody\r\n")
    with session(mailroot) as c:
        c.send(b"MAIL FROM:<sender@client.test>\r\n"
               b"RCPT TO:<x@remote.test>\r\n"
               + b"BDAT 10\r\n" + msg[:10]
               + b"BDAT %d LAST\r\n" % (len(msg) - 10) + msg[10:]
               + b"QUIT\r\n")
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(250, "2.0.0")
        c.expect(250, "2.0.0")
        c.expect(221, "2.0.0")
    got = sink.wait_for(1)
    assert len(got) == 1, got
    _rcv, rest = mh.split_received(got[0].data)
    assert rest == msg


def test_data_after_bdat_is_503(mailroot):
    with session(mailroot) as c:
        begin(c)
        bdat(c, BODY_HEAD)
        c.expect(250, "2.0.0")
        c.expect(503, "5.5.1", "DATA")
        c.expect(250, "2.0.0", "RSET")
        begin(c)
        c.expect(354, None, "DATA")
        c.send(BODY_HEAD + b"after rset\r\n.\r\n")
        c.expect(250, "2.0.0")
    assert stored(mailroot) == BODY_HEAD + b"after rset\r\n"


def test_rset_between_chunks(mailroot):
    with session(mailroot) as c:
        begin(c)
        bdat(c, BODY_HEAD + b"first, abandoned\r\n")
        c.expect(250, "2.0.0")
        c.expect(250, "2.0.0", "RSET")
        bdat(c, b"no transaction\r\n", last=True)
        c.expect(503, "5.5.1")
        c.expect(250, "2.0.0", "NOOP")
        begin(c)
        bdat(c, BODY_HEAD + b"second\r\n", last=True)
        c.expect(250, "2.0.0")
    assert stored(mailroot) == BODY_HEAD + b"second\r\n"


def test_size_limit_counted_over_chunks(start_mailroot, sink):
    """The chunk that goes over message-size is read whole, then 552; its
    bytes (which look like commands) are never taken for commands."""
    mr = start_mailroot(sink=sink, server_extra="""
    limits { message-size 10K }""")
    with session(mr) as c:
        begin(c)
        bdat(c, BODY_HEAD + b"x" * 6000 + b"\r\n")
        c.expect(250, "2.0.0")
        bdat(c, b"RSET\r\nMAIL FROM:<evil@client.test>\r\n" * 200, last=True)
        c.expect(552, "5.3.4")
        bdat(c, b"QUIT\r\n")
        c.expect(503, "5.5.1")
        c.expect(250, "2.0.0", "NOOP")
        c.expect(221, "2.0.0", "QUIT")
    assert mr.drop_files() == []


def test_bdat_before_mail_discards_chunk(mailroot):
    with session(mailroot) as c:
        bdat(c, b"QUIT\r\n")
        c.expect(503, "5.5.1")
        c.expect(250, "2.0.0", "NOOP")


def test_bdat_syntax_error_closes(mailroot):
    with session(mailroot) as c:
        begin(c)
        c.send(b"BDAT 12x\r\nQUIT\r\n")
        c.expect(501, "5.5.4")
        assert c.closed()


def test_bdat_without_ehlo_is_unknown(mailroot):
    with Client(mailroot.port) as c:
        c.expect(220)
        c.expect(250, None, "HELO client.test")
        c.expect(502, "5.5.1", "BDAT 0 LAST")


# ---------------------------------------------------------------------------
# Per-server switches (IIS SmtpInboundCommandSupportOptions).

@pytest.fixture
def switched_off(start_mailroot, sink):
    return start_mailroot(sink=sink, server_extra="""
    extensions {
        size no
        pipelining no
        8bitmime no
        chunking no
        dsn no
        smtputf8 no
    }""")


def test_ehlo_advertises_exactly_what_is_on(switched_off):
    with session(switched_off, ehlo=None) as c:
        text = c.expect(250, None, "EHLO client.test")
    assert [t.upper() for t in text[1:]] == ["ENHANCEDSTATUSCODES"], text


@pytest.mark.parametrize("param", ["SIZE=100", "BODY=8BITMIME", "BODY=7BIT"])
def test_parameter_of_switched_off_extension(switched_off, param):
    with session(switched_off) as c:
        c.expect(555, "5.5.4", "MAIL FROM:<sender@client.test> " + param)
        c.expect(250, "2.1.0", "MAIL FROM:<sender@client.test>")


def test_bdat_switched_off(switched_off):
    with session(switched_off) as c:
        begin(c)
        c.expect(502, "5.5.1", "BDAT 0 LAST")
