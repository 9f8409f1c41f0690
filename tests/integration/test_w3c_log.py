"""
The transaction log of a virtual server in the W3C Extended Log File
Format, as IIS wrote it for SMTP: a real session against a running
mailrootd, its log read back with a strict parser written from the W3C
working draft (WD-logfile-960323), and compared field by field with what
IIS logged (IIS-MODEL.md section 7); a new file at the day boundary; a
vanished directory loses log lines, never mail.
"""

import datetime
import os
import pwd
import re
import socket
import time

import pytest

import mailroot_harness as mh

ALL_FIELDS = ("date time c-ip cs-username s-sitename s-computername s-ip "
              "s-port cs-method cs-uri-stem cs-uri-query sc-status "
              "sc-win32-status sc-bytes cs-bytes time-taken cs-version "
              "cs-host cs(User-Agent) cs(Cookie) cs(Referer)").split()
DEFAULT_FIELDS = ("date time c-ip cs-username s-sitename s-computername "
                  "s-ip s-port cs-method cs-uri-query sc-status cs-bytes "
                  "sc-bytes time-taken").split()


# ---------------------------------------------------------------------------
# A strict reader of the W3C Extended Log File Format (W3C Working Draft
# WD-logfile-960323, with the identifiers Microsoft added for IIS).

class W3CError(Exception):
    pass


PREFIXES = ("c", "s", "r", "cs", "sc", "sr", "rs", "x")
# the draft's identifiers, then IIS's (username, sitename, computername,
# port, win32-status, version, host)
IDENTIFIERS = ("date", "time", "time-taken", "bytes", "cached", "ip", "dns",
               "status", "comment", "method", "uri", "uri-stem",
               "uri-query", "username", "sitename", "computername", "port",
               "win32-status", "version", "host")
DIRECTIVE_RE = re.compile(r"^#(Version|Fields|Software|Start-Date|End-Date|"
                          r"Date|Remark): ?(.*)$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_RE = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d*)?)?$")
INT_RE = re.compile(r"^\d+$")


def field_spec(spec):
    """<identifier> | <prefix>-<identifier> | <prefix>(<header>)"""
    m = re.match(r"^([a-z]+)\(([A-Za-z0-9-]+)\)$", spec)
    if m:
        if m.group(1) not in PREFIXES:
            raise W3CError("bad prefix in %r" % spec)
        return spec
    if spec in IDENTIFIERS and spec in ("date", "time", "time-taken",
                                        "bytes", "cached"):
        return spec
    pre, _, ident = spec.partition("-")
    if pre not in PREFIXES or ident not in IDENTIFIERS:
        raise W3CError("unknown field identifier %r" % spec)
    return spec


def check_value(name, value):
    if value == "-":
        return
    ident = name.split("-", 1)[-1] if "(" not in name else "header"
    if name == "date" and not DATE_RE.match(value):
        raise W3CError("bad date %r" % value)
    if name == "time" and not TIME_RE.match(value):
        raise W3CError("bad time %r" % value)
    if ident in ("status", "bytes", "time-taken", "port", "win32-status",
                 "taken") and not INT_RE.match(value):
        raise W3CError("%s is not an integer: %r" % (name, value))
    if ident == "ip":
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in value else
                             socket.AF_INET, value)
        except OSError:
            raise W3CError("%s is not an address: %r" % (name, value))


def parse_w3c(data):
    """Returns [(directives, [entry dicts])] per header block; raises
    W3CError on anything the draft does not allow."""
    if not data.endswith(b"\r\n"):
        raise W3CError("the file does not end with a complete line")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise W3CError("a byte outside ASCII")
    lines = text[:-2].split("\r\n")
    blocks, fields, version = [], None, None
    for n, line in enumerate(lines, 1):
        if "\n" in line or "\r" in line or "\t" in line:
            raise W3CError("line %d: a bare CR, LF or a tab" % n)
        if line.startswith("#"):
            m = DIRECTIVE_RE.match(line)
            if not m:
                raise W3CError("line %d: unknown directive %r" % (n, line))
            key, value = m.groups()
            # directives after entries begin a new header (a restart)
            if not blocks or blocks[-1][1]:
                blocks.append(({}, []))
                fields, version = None, None
            if key in blocks[-1][0]:
                raise W3CError("line %d: #%s twice" % (n, key))
            if key == "Version":
                if not re.match(r"^\d+\.\d+$", value):
                    raise W3CError("line %d: bad version" % n)
                version = value
            if key == "Fields":
                fields = [field_spec(f) for f in value.split(" ")]
                if len(set(fields)) != len(fields):
                    raise W3CError("line %d: a field twice" % n)
            if key in ("Date", "Start-Date", "End-Date"):
                d, _, t = value.partition(" ")
                if not DATE_RE.match(d) or not TIME_RE.match(t):
                    raise W3CError("line %d: bad #%s" % (n, key))
            blocks[-1][0][key] = value
            continue
        if version is None or fields is None:
            raise W3CError("line %d: an entry before #Version and #Fields"
                           % n)
        values = line.split(" ")
        if len(values) != len(fields) or "" in values:
            raise W3CError("line %d: %d values for %d fields: %r" % (
                n, len(values), len(fields), line))
        for f, v in zip(fields, values):
            check_value(f, v)
        blocks[-1][1].append(dict(zip(fields, values)))
    return blocks


# ---------------------------------------------------------------------------

def log_dir(workdir):
    d = workdir / "logs"
    d.mkdir(mode=0o750)
    if mh.IS_ROOT:
        pw = pwd.getpwnam(mh.USERS["queued"])
        os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


def log_conf(d, fields=None, extra=""):
    lines = ["    log {", '        directory "%s"' % d]
    if fields:
        lines.append("        fields %s" % " ".join(fields))
    if extra:
        lines.append("        " + extra)
    lines.append("    }")
    return "\n".join(lines)


def session(port, helo, commands):
    """A raw SMTP session: [(command, reply code)], the bytes of each
    reply, and the message's size for DATA."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")

    def reply():
        out = b""
        while True:
            line = f.readline()
            assert line, "connection closed"
            out += line
            if line[3:4] == b" ":
                return out

    reply()     # the greeting is not a command: not logged
    got = []
    for cmd in ["EHLO " + helo] + commands:
        s.sendall(cmd.encode() + b"\r\n")
        r = reply()
        if cmd == "DATA":
            got.append((cmd, r))
            s.sendall(MESSAGE)
            r = reply()
        got.append((cmd, r))
    s.close()
    return got


MESSAGE = (b"From: app@local.test\r\nTo: user@local.test\r\n"
           b"Subject: w3c\r\n\r\nHello\r\n.\r\n")
COMMANDS = ["MAIL FROM:<app@local.test>", "RCPT TO:<user@local.test>",
            "DATA", "FOO bar", "QUIT"]


def wait_log(d, count, timeout=60.0):
    """The parsed blocks of the log files once count entries are in."""
    def ready():
        files = sorted(p for p in d.iterdir() if p.name.startswith("ex"))
        # a file is made when its first line comes, written within 1 s
        entries = sum(len(e) for p in files if p.stat().st_size
                      for _, e in parse_w3c(p.read_bytes()))
        return files if entries >= count else None
    files = mh.wait_until(ready, timeout, 0.1)
    assert files, "log has not %d entries: %s" % (
        count, [(p, p.read_bytes()) for p in d.iterdir()])
    return files


def today_name(offset=0):
    t = datetime.datetime.now(datetime.timezone.utc) + \
        datetime.timedelta(seconds=offset)
    return t.strftime("ex%y%m%d.log")


def test_w3c_session_field_by_field(start_mailroot, sink, workdir):
    d = log_dir(workdir)
    m = start_mailroot(sink=sink, server_extra=log_conf(d, ALL_FIELDS))
    before = datetime.datetime.now(datetime.timezone.utc)
    got = session(m.port, "client.example", COMMANDS)
    after = datetime.datetime.now(datetime.timezone.utc)
    (path,) = wait_log(d, 6)
    assert path.name == today_name() or path.name == after.strftime(
        "ex%y%m%d.log")
    data = path.read_bytes()
    blocks = parse_w3c(data)
    assert len(blocks) == 1
    head, entries = blocks[0]
    assert head["Version"] == "1.0"
    assert head["Software"].startswith("mailroot ")
    assert head["Fields"] == " ".join(ALL_FIELDS)
    hdate = datetime.datetime.strptime(head["Date"], "%Y-%m-%d %H:%M:%S") \
        .replace(tzinfo=datetime.timezone.utc)
    assert before.replace(microsecond=0) <= hdate <= after
    # the directives come first, in IIS's order
    assert data.startswith(b"#Software: mailroot ")
    assert [l.split(b":")[0] for l in data.split(b"\r\n")[:4]] == \
        [b"#Software", b"#Version", b"#Date", b"#Fields"]

    # one line per command; DATA once, with its final reply
    replies = [(c, r) for c, r in got if not r.startswith(b"354")]
    assert [e["cs-method"] for e in entries] == \
        ["EHLO", "MAIL", "RCPT", "DATA", "FOO", "QUIT"]
    data_354 = [r for c, r in got if r.startswith(b"354")][0]
    for e, (cmd, r) in zip(entries, replies):
        stamp = datetime.datetime.strptime(
            e["date"] + " " + e["time"], "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=datetime.timezone.utc)
        assert before.replace(microsecond=0) <= stamp <= after
        assert e["c-ip"] == "127.0.0.1"
        assert e["cs-username"] == "client.example"
        assert e["s-sitename"] == "SMTPSVC1"
        assert e["s-computername"] == "mx.test.example"
        assert e["s-ip"] == "127.0.0.1"
        assert e["s-port"] == str(m.port)
        assert e["cs-uri-stem"] == "-"
        verb, _, args = cmd.partition(" ")
        assert e["cs-method"] == verb
        # IIS: the arguments as a query, each space a '+'
        assert e["cs-uri-query"] == ("+" + args.replace(" ", "+")
                                     if args else "-")
        assert e["sc-status"] == r[:3].decode()
        assert e["sc-win32-status"] == "0"
        want_sc = len(r) + (len(data_354) if verb == "DATA" else 0)
        assert e["sc-bytes"] == str(want_sc)
        # DATA: the message as the client sent it, ".\r\n" included
        want_cs = len(cmd) + 2 + (len(MESSAGE) if verb == "DATA" else 0)
        assert e["cs-bytes"] == str(want_cs)
        assert int(e["time-taken"]) < 60000
        assert e["cs-version"] == "SMTP"
        for f in ("cs-host", "cs(User-Agent)", "cs(Cookie)", "cs(Referer)"):
            assert e[f] == "-"
    assert [e["sc-status"] for e in entries] == \
        ["250", "250", "250", "250", "500", "221"]
    m.wait_drop(1)


def test_default_fields_and_iis_example(start_mailroot, sink, workdir):
    d = log_dir(workdir)
    m = start_mailroot(sink=sink, server_extra=log_conf(d))
    session(m.port, "app.example", ["MAIL FROM:<maria@local.test>", "QUIT"])
    (path,) = wait_log(d, 3)
    (head, entries), = parse_w3c(path.read_bytes())
    assert head["Fields"].split() == DEFAULT_FIELDS
    mail = entries[1]
    # IIS-MODEL.md 7: "13:17:37 10.3.5.1 MAIL FROM - 250" -- the verb,
    # then the arguments as a query
    assert (mail["cs-method"], mail["cs-uri-query"], mail["sc-status"]) == \
        ("MAIL", "+FROM:<maria@local.test>", "250")


def test_rotation_at_the_day_boundary(start_mailroot, sink, workdir):
    d = log_dir(workdir)
    clock = workdir / "mailroot0" / "clock"
    (workdir / "mailroot0").mkdir(exist_ok=True)
    clock.write_text("0\n")
    os.chmod(clock, 0o644)
    env = dict(os.environ, MAILROOT_TEST_CLOCK=str(clock))
    m = start_mailroot(sink=sink, env=env, server_extra=log_conf(d))
    session(m.port, "one.example", ["NOOP", "QUIT"])
    first = wait_log(d, 3)
    assert [p.name for p in first] == [today_name()]
    # a day later by queued's clock: a new file, its own directives
    tmp = clock.with_suffix(".tmp")
    tmp.write_text("86400\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, clock)
    assert mh.wait_until(lambda: "test clock: +86400 s" in m.log_text(),
                         60.0, 0.1)
    session(m.port, "two.example", ["NOOP", "QUIT"])
    files = wait_log(d, 6)
    assert [p.name for p in files] == sorted(
        [today_name(), today_name(86400)])
    (h1, e1), = parse_w3c(files[0].read_bytes())
    (h2, e2), = parse_w3c(files[1].read_bytes())
    assert [e["cs-username"] for e in e1] == ["one.example"] * 3
    assert [e["cs-username"] for e in e2] == ["two.example"] * 3
    tomorrow = (datetime.datetime.now(datetime.timezone.utc) +
                datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    assert all(e["date"] in (tomorrow,) for e in e2) or \
        files[1].name == today_name(86400)
    assert h2["Date"].startswith(e2[0]["date"])


def test_lost_directory_loses_lines_not_mail(start_mailroot, sink,
                                             workdir):
    d = log_dir(workdir)
    clock = workdir / "mailroot0" / "clock"
    (workdir / "mailroot0").mkdir(exist_ok=True)
    clock.write_text("0\n")
    os.chmod(clock, 0o644)
    env = dict(os.environ, MAILROOT_TEST_CLOCK=str(clock))
    m = start_mailroot(sink=sink, env=env, server_extra=log_conf(d))
    session(m.port, "one.example", ["QUIT"])
    (path,) = wait_log(d, 2)
    path.unlink()
    d.rmdir()
    clock.write_text("86400\n")
    assert mh.wait_until(lambda: "test clock: +86400 s" in m.log_text(),
                         60.0, 0.1)
    got = session(m.port, "two.example", COMMANDS)
    assert got[4][1].startswith(b"250"), got    # the mail is accepted
    m.wait_drop(1)
    assert mh.wait_until(lambda: "log lines are lost" in m.log_text(),
                         60.0, 0.1), m.log_text()


def test_renamed_log_is_reopened(start_mailroot, sink, workdir):
    """logrotate renames the current file away: the next lines go to a
    new file of the same name, opening with the directives; the renamed
    one keeps what it had."""
    d = log_dir(workdir)
    m = start_mailroot(sink=sink, server_extra=log_conf(d))
    session(m.port, "one.example", ["NOOP", "QUIT"])
    (path,) = wait_log(d, 3)
    rotated = path.with_name(path.name + ".1")
    os.rename(path, rotated)

    # queued looks at the name once a second: sessions until it has
    def reopened():
        session(m.port, "two.example", ["QUIT"])
        return path.exists() and path.stat().st_size > 0
    assert mh.wait_until(reopened, 60.0, 0.2), m.log_text()
    blocks = mh.wait_until(
        lambda: [b for b in parse_w3c(path.read_bytes()) if b[1]], 60.0,
        0.1)
    assert blocks, path.read_bytes()
    (head, entries), = blocks
    assert head["Fields"].split() == DEFAULT_FIELDS
    assert {e["cs-username"] for e in entries} == {"two.example"}
    old = [e for _, es in parse_w3c(rotated.read_bytes()) for e in es]
    assert [e["cs-username"] for e in old][:3] == ["one.example"] * 3
    assert {e["cs-username"] for e in old} <= {"one.example",
                                               "two.example"}
