"""
Client compatibility (issue 15): what applications and devices migrated
from the IIS SMTP Service send, byte for byte where it matters, through a
real mailrootd, asserting what reaches the next hop (the harness Sink).

Which client is real and which is reproduced:
- CDOSYS pickup files and System.Net.Mail (.NET) pickup files: fixtures
  in data/clients/ (its README says how each was made); no CDO or .NET
  runs on Debian.
- System.Net.Mail's SMTP session (EHLO with the NetBIOS-style machine
  name, STARTTLS, AUTH LOGIN with the user name as initial response, one
  command per reply): a raw socket that sends exactly what .NET's
  SmtpClient sends (dotnet/runtime SmtpConnection, AuthCommand,
  SmtpLoginAuthenticationModule, MailWriter).
- mono's System.Net.Mail (Debian's mono-runtime, real): SMTP from a host
  on `relay allow', EnableSsl with credentials (which mono cannot do with
  any current TLS server), and SpecifiedPickupDirectory.  Skipped where
  mcs is missing (contrib/setup installs mono-mcs).
- PHP's mail() (Debian's php-cli, real) through mailroot-sendmail.
- A LAN device (printer, scanner) that speaks HELO only and ends every
  line in a bare LF: a raw socket.
"""

import base64
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

import mailroot_harness as mh
from test_auth import start as start_auth
from test_pickup import drop_in, wait_pickup_empty
from test_pickup import start as start_pickup
from test_sendmail import SENDMAIL
from test_sendmail import start as start_sendmail
from test_smtp_session import UNTRUSTED, Client, parse_drop
from test_tls import client_ctx

DATA = Path(__file__).resolve().parent / "data" / "clients"
WAIT = 60.0


def one(sink, count=1):
    got = sink.wait_for(count, WAIT)
    assert len(got) >= count, "only %d message(s) reached the sink" % len(
        got)
    return got[count - 1]


def body_after_received(data):
    return mh.split_received(data)[1]


def without_added_msgid(data):
    """data with the Message-ID field mailroot added at the end of the
    header section (for local clients, add-missing-headers) taken out;
    asserts it was there, once."""
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert re.fullmatch(rb"Message-ID: <[^@>]+@mx\.test\.example>",
                        lines[-1]), lines[-1]
    assert sum(ln.lower().startswith(b"message-id:") for ln in lines) == 1
    return b"\r\n".join(lines[:-1]) + sep + body


# ---------------------------------------------------------------------------
# A LAN device: HELO only, bare LF line ends (item 4 of issue 15).

# A scan-to-mail message as multifunction printers send it: LF line ends
# everywhere, no Message-ID, a dot-stuffed line, base64 attachment.
DEVICE_MESSAGE = (
    b'From: "MFP 3rd floor" <scanner-3f@lan.example>\n'
    b"To: accounts@remote.example\n"
    b"Subject: Scanned from MFP-3F\n"
    b"Date: Mon, 30 Nov 2026 09:15:02 +0100\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="=_MFP_0001"\n'
    b"\n"
    b"--=_MFP_0001\n"
    b"Content-Type: text/plain; charset=us-ascii\n"
    b"\n"
    b"Document scanned: 2 pages.\n"
    b"..pdf attached\n"
    b"\n"
    b"--=_MFP_0001\n"
    b"Content-Type: application/pdf; name=scan0001.pdf\n"
    b"Content-Transfer-Encoding: base64\n"
    b"\n"
    b"JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\n"
    b"--=_MFP_0001--\n")


def device_session(c, rcpt, data, end=b"\n.\n"):
    """HELO, MAIL, RCPT, DATA with bare LF, as the device sends them."""
    c.expect(220)
    c.send(b"HELO MFP-3F\n")
    c.expect(250)
    c.send(b"MAIL FROM:<scanner-3f@lan.example>\n")
    c.expect(250, "2.1.0")
    c.send(b"RCPT TO:<%s>\n" % rcpt.encode())
    c.expect(250, "2.1.5")
    c.send(b"DATA\n")
    c.expect(354)
    c.send(data + end)


def test_lan_device_helo_bare_lf(mailroot, sink):
    """A device on `relay allow' (127.0.0.1) that ends every line in LF
    ends its data with LF "." LF: the message is queued, relayed, and
    arrives with CRLF lines, the stuffed dot removed, the envelope as
    sent; QUIT with LF works too."""
    with Client(mailroot.port) as c:
        device_session(c, "accounts@remote.example", DEVICE_MESSAGE,
                       b".\n")
        c.expect(250, "2.0.0")
        c.send(b"QUIT\n")
        c.expect(221, "2.0.0")
        assert c.closed()
    m = one(sink)
    assert m.mail_from == "scanner-3f@lan.example"
    assert m.rcpt_tos == ["accounts@remote.example"]
    received, rest = mh.split_received(m.data)
    assert received.startswith(b"Received: from MFP-3F ([127.0.0.1])\r\n")
    assert b"with SMTP id" in received      # HELO, not EHLO
    expect = DEVICE_MESSAGE.replace(b"\n..pdf", b"\n.pdf").replace(
        b"\n", b"\r\n")
    assert without_added_msgid(rest) == expect


@pytest.mark.parametrize("end", [b"\n.\r\n", b"\r\n.\n"],
                         ids=["LF.CRLF", "CRLF.LF"])
def test_lan_device_other_line_ends(mailroot, sink, end):
    """An LF-only client's data ends at any "." line, whatever ends the
    line before it and the dot's own."""
    with Client(mailroot.port) as c:
        device_session(c, "accounts@remote.example",
                       b"Date: Mon, 30 Nov 2026 09:15:02 +0100\nSubject: x\n"
                       b"\nbody", end)
        c.expect(250, "2.0.0")
    assert without_added_msgid(body_after_received(one(sink).data)) == \
        b"Date: Mon, 30 Nov 2026 09:15:02 +0100\r\nSubject: x\r\n\r\n"\
        b"body\r\n"


SMUGGLED = (b"MAIL FROM:<ceo@remote.example>\r\n"
            b"RCPT TO:<victim@remote.example>\r\nDATA\r\n"
            b"From: ceo@remote.example\r\n\r\nsmuggled\r\n")


def test_lf_end_not_for_unlisted_client(mailroot, sink):
    """The same LF-only session from a client not on `relay allow'
    (127.0.0.2, mail to a local domain, Drop): LF "." LF stays data, only
    CRLF "." CRLF ends it, and what follows the fake end arrives as text
    of the one message, never as a second one."""
    with Client(mailroot.port, UNTRUSTED) as c:
        device_session(c, "user@local.test", b"Subject: s\n\nhello",
                       b"\n.\n" + SMUGGLED + b"\r\n.\r\n")
        c.expect(250, "2.0.0")
        c.send(b"QUIT\r\n")
        c.expect(221)
    f, = mailroot.wait_drop(1)
    sender, rcpts, msg = parse_drop(f.read_bytes())
    assert rcpts == ["user@local.test"]
    rest = body_after_received(msg)
    assert rest.startswith(b"Subject: s\r\n\r\nhello\r\n.\r\nMAIL FROM:")
    assert b"smuggled\r\n" in rest
    # the reply after the one 250 was QUIT's: nothing else was a command


@pytest.mark.parametrize("first", [b"EHLO relay.lan.example\r\n",
                                   b"HELO MFP-3F\n"],
                         ids=["all-CRLF", "then-CRLF"])
def test_lf_end_not_once_crlf_was_sent(mailroot, sink, first):
    """A listed client that has ended one command line in CRLF (an MTA or
    a library relaying others' text) gets the CRLF rule: LF "." LF in its
    data is text, so a bare LF from someone else's message cannot end
    it early (SMTP smuggling)."""
    with Client(mailroot.port) as c:
        c.expect(220)
        c.send(first)
        c.expect(250)
        c.send(b"MAIL FROM:<app@lan.example>\r\n")
        c.expect(250, "2.1.0")
        c.send(b"RCPT TO:<accounts@remote.example>\n")
        c.expect(250, "2.1.5")
        c.send(b"DATA\n")
        c.expect(354)
        c.send(b"Subject: s\r\n\r\nhello\n.\n" + SMUGGLED +
               b"\r\n.\r\nQUIT\r\n")
        c.expect(250, "2.0.0")
        c.expect(221)       # the next reply: nothing smuggled was run
    m = one(sink)
    assert m.rcpt_tos == ["accounts@remote.example"]
    assert b"hello\r\n.\r\nMAIL FROM:<ceo@remote.example>\r\n" in m.data


# ---------------------------------------------------------------------------
# Pickup files as CDO and System.Net.Mail write them (item 1).

def envelope_split(data):
    """(envelope lines with their folded lines, the rest) of a pickup
    file that begins with x-sender / x-receiver lines."""
    pos = 0
    while re.match(rb"(?i)x-(sender|receiver):", data[pos:pos + 11]):
        pos = data.index(b"\r\n", pos) + 2
        while data[pos:pos + 1] in (b" ", b"\t"):
            pos = data.index(b"\r\n", pos) + 2
    return data[:pos], data[pos:]


def pickup(start_mailroot, sink, name, data):
    d = start_pickup(start_mailroot, sink)
    drop_in(d, name, data)
    m = one(sink)
    wait_pickup_empty(d)
    received, rest = mh.split_received(m.data)
    assert b"from mail pickup service" in received
    assert b"x-sender" not in m.data.lower()
    assert b"x-receiver" not in m.data.lower()
    return m, rest


def test_cdosys_pickup_file(start_mailroot, sink):
    data = (DATA / "cdosys-pickup.eml").read_bytes()
    m, rest = pickup(start_mailroot, sink, "cdosys.eml", data)
    assert m.mail_from == "webapp@contoso.example"
    assert m.rcpt_tos == ["customer@remote.example", "orders@remote.example",
                          "archive@remote.example"]
    # the message as CDO wrote it, unstuffed, nothing added (it has Date
    # and Message-ID), the Bcc recipient nowhere in it
    expect = envelope_split(data)[1].replace(b"\r\n..sig", b"\r\n.sig")
    assert rest == expect
    assert b"archive@" not in m.data


def test_system_net_mail_pickup_file(start_mailroot, sink):
    """Display names in X-Sender/X-Receiver, a folded X-Receiver, the Bcc
    only there, quoted-printable with a stuffed dot at a soft break."""
    data = (DATA / "snm-pickup-qp.eml").read_bytes()
    m, rest = pickup(start_mailroot, sink,
                     "3f2b8c1e-5d4a-4e6f-9a7b-2c1d0e9f8a6b.eml", data)
    assert m.mail_from == "noreply@contoso.example"
    assert m.rcpt_tos == ["customer@remote.example", "orders@remote.example",
                          "sales-team-distribution-list@remote.example",
                          "audit@remote.example"]
    expect = envelope_split(data)[1].replace(b"=\r\n..NET", b"=\r\n.NET")
    # System.Net.Mail writes no Message-ID: mailroot adds one (Pickup is
    # local mail); everything else is the file's bytes
    assert without_added_msgid(rest) == expect
    assert b"audit@" not in m.data


def test_system_net_mail_pickup_file_utf8(start_mailroot, sink):
    data = (DATA / "snm-pickup-utf8.eml").read_bytes()
    m, rest = pickup(start_mailroot, sink,
                     "0b9e1f6a-7c2d-4b8e-a1f3-5d6c7e8f9a0b.eml", data)
    assert m.mail_from == "service@contoso.example"
    assert m.rcpt_tos == ["juergen@remote.example"]
    assert without_added_msgid(rest) == envelope_split(data)[1]


# ---------------------------------------------------------------------------
# System.Net.Mail's SMTP session, as .NET's SmtpClient sends it (item 2):
# Host = this server, EnableSsl = true, Credentials = NetworkCredential.

MACHINE = "WEB01"       # IPGlobalProperties.HostName: the computer name


class Wire:
    """One command, one reply: .NET's SmtpClient never pipelines."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=WAIT)
        self.f = self.sock.makefile("rb")

    def reply(self):
        lines = []
        for _ in range(100):
            line = self.f.readline()
            assert line.endswith(b"\r\n"), "reply line %r" % line
            lines.append(line[4:-2].decode())
            if line[3:4] == b" ":
                return int(line[:3]), lines
        raise AssertionError("reply never ended: %r" % lines)

    def cmd(self, data):
        self.sock.sendall(data)
        return self.reply()

    def starttls(self):
        self.sock = client_ctx().wrap_socket(self.sock)
        self.f = self.sock.makefile("rb")

    def close(self):
        self.sock.close()


def b64(s):
    return base64.b64encode(s.encode())


# the message as MailWriter writes it for the network: Message.Send with
# no envelope lines, then MailWriter.Close's CRLF, then DataStopCommand
SNM_MESSAGE = envelope_split((DATA / "snm-pickup-qp.eml").read_bytes())[1]


def test_system_net_mail_session(start_mailroot, sink, workdir):
    d = start_auth(start_mailroot, sink, workdir)
    w = Wire(d.port)
    try:
        assert w.reply()[0] == 220
        code, ehlo = w.cmd(b"EHLO %s\r\n" % MACHINE.encode())
        assert code == 250 and "STARTTLS" in ehlo
        assert not any(x.startswith("AUTH") for x in ehlo)
        assert w.cmd(b"STARTTLS\r\n")[0] == 220
        w.starttls()
        # RFC 3207: EHLO again; AUTH is offered inside TLS only
        code, ehlo = w.cmd(b"EHLO %s\r\n" % MACHINE.encode())
        assert code == 250 and "AUTH PLAIN LOGIN" in ehlo
        # SmtpLoginAuthenticationModule: the user name goes with AUTH
        # LOGIN as its initial response, the password after the 334
        code, text = w.cmd(b"AUTH LOGIN " + b64("bob") + b"\r\n")
        assert (code, text) == (334, ["UGFzc3dvcmQ6"])    # "Password:"
        code, text = w.cmd(b64("pw-bcrypt") + b"\r\n")
        assert code == 235, text
        assert w.cmd(b"MAIL FROM:<noreply@contoso.example>\r\n")[0] == 250
        for rcpt in (b"customer@remote.example", b"orders@remote.example",
                     b"sales-team-distribution-list@remote.example",
                     b"audit@remote.example"):          # To, Cc, Bcc
            assert w.cmd(b"RCPT TO:<%s>\r\n" % rcpt)[0] == 250, rcpt
        assert w.cmd(b"DATA\r\n")[0] == 354
        code, text = w.cmd(SNM_MESSAGE + b".\r\n")
        assert code == 250, text
        assert w.cmd(b"QUIT\r\n")[0] == 221
    finally:
        w.close()
    m = one(sink)
    assert m.mail_from == "noreply@contoso.example"
    assert m.rcpt_tos == ["customer@remote.example", "orders@remote.example",
                          "sales-team-distribution-list@remote.example",
                          "audit@remote.example"]
    received, rest = mh.split_received(m.data)
    assert received.startswith(b"Received: from %s ([127.0.0.1])\r\n"
                               % MACHINE.encode())
    assert b"with ESMTPSA id" in received
    # byte for byte what was sent, the stuffed dot removed; no field added
    # for a client outside `relay allow'
    assert rest == SNM_MESSAGE.replace(b"=\r\n..NET", b"=\r\n.NET")
    assert "authenticated as <bob>" in d.log_text()


# ---------------------------------------------------------------------------
# mono's System.Net.Mail, run for real (item 5; Debian's mono-mcs).

needs_mono = pytest.mark.skipif(
    shutil.which("mcs") is None or shutil.which("mono") is None,
    reason="mono is not installed (contrib/setup installs mono-mcs)")


@pytest.fixture(scope="module")
def snm_send(tmp_path_factory):
    out = tmp_path_factory.mktemp("mono") / "snm_send.exe"
    p = subprocess.run(["mcs", "-nowarn:618", "-r:System.dll",
                        "-out:%s" % out, str(DATA / "snm_send.cs")],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    mh.make_traversable(out.parent)
    return out


def run_snm(exe, *args):
    p = subprocess.run(["mono", str(exe), *map(str, args)],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()


@needs_mono
def test_mono_system_net_mail_smtp(start_mailroot, sink, snm_send):
    """SmtpClient with Host and Port only, from a host on `relay allow'
    (the IIS lockdown: relay for 127.0.0.1): one message to To, Cc and
    Bcc, its dot line intact."""
    d = start_mailroot(sink=sink)
    run_snm(snm_send, "smtp", "127.0.0.1", d.port)
    m = one(sink)
    assert m.mail_from == "noreply@contoso.example"
    assert m.rcpt_tos == ["customer@remote.example", "orders@remote.example",
                          "audit@remote.example"]
    head, body = body_after_received(m.data).split(b"\r\n\r\n", 1)
    assert b"audit@" not in head
    assert b'From: "Contoso Web Shop" <noreply@contoso.example>' in head
    assert body == b"Hello Jane,\r\n\r\nyour order has shipped.\r\n" \
        b".signature: Contoso\r\n"


@needs_mono
def test_mono_system_net_mail_starttls(start_mailroot, sink, workdir,
                                       snm_send):
    """EnableSsl with credentials.  mono's SmtpClient asks SslStream for
    SslProtocols.Default (SSL 3 and TLS 1.0) whatever the application
    sets, and mailroot's TLS (OpenSSL's defaults, TLS 1.2 and up) refuses
    that: the send fails at the handshake, which smtpd logs, and smtpd
    serves on.  .NET Framework 4.6 and later and .NET 5 and later use the
    system's protocols; their session is test_system_net_mail_session."""
    d = start_auth(start_mailroot, sink, workdir)
    p = subprocess.run(["mono", str(snm_send), "smtps", "127.0.0.1",
                        str(d.port), "bob", "pw-bcrypt"],
                       capture_output=True, timeout=120)
    assert p.returncode == 1
    assert b"Authentication failed" in p.stderr, p.stderr
    assert mh.wait_until(lambda: "unsupported protocol" in d.log_text(),
                         WAIT), d.log_text()
    with mh.smtplib.SMTP("127.0.0.1", d.port, timeout=WAIT) as c:
        assert c.noop()[0] == 250
    assert sink.messages == []


@needs_mono
def test_mono_system_net_mail_pickup(start_mailroot, sink, snm_send):
    """SpecifiedPickupDirectory straight into mailroot's Pickup.  mono's
    file has no X-Sender/X-Receiver lines, so mailroot takes the envelope
    from From, To and Cc (the Bcc recipient is lost by mono, not
    mailroot), and it is not dot-stuffed while Pickup files are read as
    IIS read them, dot-stuffed: the leading dot of a line is removed, as
    IIS removed it."""
    d = start_pickup(start_mailroot, sink)
    run_snm(snm_send, "pickup", d.dir("Pickup"))
    m = one(sink)
    wait_pickup_empty(d)
    assert m.mail_from == "noreply@contoso.example"
    assert m.rcpt_tos == ["customer@remote.example", "orders@remote.example"]
    body = m.data.split(b"\r\n\r\n", 1)[1]
    assert body == b"Hello Jane,\r\n\r\nyour order has shipped.\r\n" \
        b"signature: Contoso\r\n"


# ---------------------------------------------------------------------------
# PHP's mail() through mailroot-sendmail (item 3; Debian's php-cli).

PHP_CODE = r"""
$headers = [
    "From" => "Contoso Shop <shop@contoso.example>",
    "Reply-To" => "support@contoso.example",
    "Cc" => "orders@remote.example",
    "Bcc" => "audit@remote.example",
    "X-Mailer" => "ShopCart/2.1",
    "MIME-Version" => "1.0",
    "Content-Type" => "text/plain; charset=UTF-8",
];
exit(mail("Jane Customer <customer@remote.example>", "Order 10442",
    "Hello Jane,\n.\n..two dots\nshipped\n", $headers,
    "-fbounce@contoso.example") ? 0 : 1);
"""


@pytest.mark.skipif(shutil.which("php") is None,
                    reason="php-cli is not installed (contrib/setup)")
def test_php_mail_additional_headers(start_mailroot, sink, workdir):
    """mail() with additional headers (To from the first argument, Cc and
    Bcc among the headers) and -f: sendmail_path runs mailroot-sendmail
    -t -i, so the recipients come from To, Cc and Bcc, the sender from
    -f, Bcc leaves the message, and the body's dots are text."""
    d = start_sendmail(start_mailroot, sink, workdir)
    path = "%s -t -i -C %s" % (SENDMAIL, d.conf)
    p = subprocess.run(["php", "-n", "-d", "sendmail_path=" + path,
                        "-r", PHP_CODE], capture_output=True, timeout=WAIT)
    assert p.returncode == 0, p.stdout + p.stderr
    m = one(sink)
    assert m.mail_from == "bounce@contoso.example"
    assert sorted(m.rcpt_tos) == ["audit@remote.example",
                                  "customer@remote.example",
                                  "orders@remote.example"]
    received, rest = mh.split_received(m.data)
    assert b"from local user" in received
    head, body = rest.split(b"\r\n\r\n", 1)
    # PHP writes To and Subject, then the headers in the array's order;
    # mailroot-sendmail adds Date and Message-ID (its qid) at the end
    assert re.fullmatch(
        rb"To: Jane Customer <customer@remote\.example>\r\n"
        rb"Subject: Order 10442\r\n"
        rb"From: Contoso Shop <shop@contoso\.example>\r\n"
        rb"Reply-To: support@contoso\.example\r\n"
        rb"Cc: orders@remote\.example\r\n"
        rb"X-Mailer: ShopCart/2\.1\r\n"
        rb"MIME-Version: 1\.0\r\n"
        rb"Content-Type: text/plain; charset=UTF-8\r\n"
        rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} [0-9:]{8} "
        rb"[-+]\d{4}\r\n"
        rb"Message-ID: <[0-9A-F]+@mx\.test\.example>", head), head
    # -i: the lone "." and the two dots are text; PHP's own line end after
    # the message (CRLF after its LF) is an empty last line
    assert body == b"Hello Jane,\r\n.\r\n..two dots\r\nshipped\r\n\r\n"
