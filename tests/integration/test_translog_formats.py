"""
The transaction log in the two fixed formats IIS offered beside W3C
Extended -- NCSA Common and the Microsoft IIS Log File Format -- and
rotation by size with IIS's file names (IIS-MODEL.md section 7): a real
session against a running mailrootd, its log read back with strict
parsers and compared field by field with the session.
"""

import datetime
import os
import pwd
import re

import mailroot_harness as mh
from test_w3c_log import COMMANDS, MESSAGE, log_conf, log_dir, parse_w3c, \
    session

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()

# NCSA Common Log Format: host ident authuser [date] "request" status bytes
# (no field but the request may hold a space; the request holds no '"')
NCSA_RE = re.compile(r'^(\S+) (\S+) (\S+) \[(\d{2})/([A-Z][a-z]{2})/(\d{4}):'
                     r'(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\] "([^"]*)" '
                     r'(\d{3}|-) (\d+|-)$')


def lines_of(data):
    """The CRLF-terminated lines of a log file, strictly."""
    assert data.endswith(b"\r\n"), data
    text = data.decode("ascii")
    lines = text[:-2].split("\r\n")
    for line in lines:
        assert "\n" not in line and "\r" not in line and "\t" not in line
    return lines


def parse_ncsa(data):
    out = []
    for line in lines_of(data):
        m = NCSA_RE.match(line)
        assert m, "not NCSA Common: %r" % line
        (host, ident, user, dd, mon, yyyy, hh, mi, ss, zone, req, status,
         size) = m.groups()
        assert mon in MONTHS, line
        stamp = datetime.datetime(int(yyyy), MONTHS.index(mon) + 1, int(dd),
                                  int(hh), int(mi), int(ss),
                                  tzinfo=datetime.timezone.utc)
        out.append(dict(host=host, ident=ident, user=user, zone=zone,
                        stamp=stamp, request=req, status=status, bytes=size))
    return out


IIS_FIELDS = ("c-ip", "user", "date", "time", "service", "computer", "s-ip",
              "time-taken", "cs-bytes", "sc-bytes", "status", "win32",
              "request", "target", "parameters")


def parse_iis(data):
    """Microsoft IIS Log File Format: 15 fields, each followed by ','
    (and a space but the last), no comma inside a field."""
    out = []
    for line in lines_of(data):
        assert line.endswith(","), line
        values = line[:-1].split(", ")
        assert len(values) == len(IIS_FIELDS), line
        assert all(v and "," not in v for v in values), line
        e = dict(zip(IIS_FIELDS, values))
        mo, dd, yy = (int(x) for x in e["date"].split("/"))
        assert re.match(r"^\d{1,2}/\d{1,2}/\d{2}$", e["date"]), line
        assert re.match(r"^\d{1,2}:\d{2}:\d{2}$", e["time"]), line
        hh, mi, ss = (int(x) for x in e["time"].split(":"))
        e["stamp"] = datetime.datetime(2000 + yy, mo, dd, hh, mi, ss,
                                       tzinfo=datetime.timezone.utc)
        for f in ("time-taken", "cs-bytes", "sc-bytes", "status", "win32"):
            assert e[f].isdigit(), (f, line)
        out.append(e)
    return out


def wait_lines(d, prefix, parse, count, timeout=60.0):
    """The files named prefix* and their entries (parse: of a path)
    once count are in."""
    def ready():
        files = sorted(p for p in d.iterdir() if p.name.startswith(prefix))
        entries = [e for p in files if p.stat().st_size
                   for e in parse(p)]
        return (files, entries) if len(entries) >= count else None
    got = mh.wait_until(ready, timeout, 0.1)
    assert got, "log has not %d entries: %s" % (
        count, [(p, p.read_bytes()) for p in d.iterdir()])
    return got


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def replies_of(got):
    """(command, final reply, bytes of all replies) per logged command."""
    out = []
    for i, (cmd, r) in enumerate(got):
        if r.startswith(b"354"):
            continue
        extra = len(got[i - 1][1]) if cmd == "DATA" else 0
        out.append((cmd, r, len(r) + extra))
    return out


def test_ncsa_session_field_by_field(start_mailroot, sink, workdir):
    d = log_dir(workdir)
    m = start_mailroot(sink=sink,
                       server_extra=log_conf(d, extra="format ncsa"))
    before = now().replace(microsecond=0)
    got = session(m.port, "client.example", COMMANDS)
    after = now()
    files, entries = wait_lines(d, "nc", lambda p: parse_ncsa(p.read_bytes()), 6)
    assert [p.name for p in files] in ([before.strftime("nc%y%m%d.log")],
                                       [after.strftime("nc%y%m%d.log")])
    assert not [p for p in d.iterdir() if p.name.startswith("ex")]
    want = replies_of(got)
    assert len(entries) == len(want) == 6
    for e, (cmd, r, sc) in zip(entries, want):
        assert e["host"] == "127.0.0.1"
        assert e["ident"] == "-"
        assert e["user"] == "client.example"
        assert e["zone"] == "+0000"
        assert before <= e["stamp"] <= after
        verb, _, args = cmd.partition(" ")
        # the verb, IIS's "-?" and the arguments, then the protocol
        assert e["request"] == ("%s -?%s SMTP" % (verb, args.replace(
            " ", "+")) if args else "%s - SMTP" % verb)
        assert e["status"] == r[:3].decode()
        assert e["bytes"] == str(sc)
    assert [e["status"] for e in entries] == \
        ["250", "250", "250", "250", "500", "221"]
    m.wait_drop(1)


def test_iis_session_field_by_field(start_mailroot, sink, workdir):
    d = log_dir(workdir)
    m = start_mailroot(sink=sink,
                       server_extra=log_conf(d, extra="format iis"))
    before = now().replace(microsecond=0)
    got = session(m.port, "client.example",
                  COMMANDS[:1] + ["RCPT TO:<a@local.test> NOTIFY=DELAY,"
                                  "FAILURE"] + COMMANDS[1:])
    after = now()
    files, entries = wait_lines(d, "in", lambda p: parse_iis(p.read_bytes()), 7)
    assert [p.name for p in files] in ([before.strftime("in%y%m%d.log")],
                                       [after.strftime("in%y%m%d.log")])
    want = replies_of(got)
    assert len(entries) == len(want) == 7
    for e, (cmd, r, sc) in zip(entries, want):
        assert e["c-ip"] == e["s-ip"] == "127.0.0.1"
        assert e["user"] == "client.example"
        assert before <= e["stamp"] <= after
        assert e["service"] == "SMTPSVC1"
        assert e["computer"] == "mx.test.example"
        assert int(e["time-taken"]) < 60000
        want_cs = len(cmd) + 2 + (len(MESSAGE) if cmd == "DATA" else 0)
        assert e["cs-bytes"] == str(want_cs)
        assert e["sc-bytes"] == str(sc)
        assert e["status"] == r[:3].decode()
        assert e["win32"] == "0"
        assert e["target"] == "-"
        verb, _, args = cmd.partition(" ")
        # Microsoft's examples: "MAIL FROM, -, FROM:<maria@...>,"
        assert e["request"] == {"MAIL": "MAIL FROM", "RCPT": "RCPT TO"} \
            .get(verb, verb)
        # a comma would end the field: it is a '+'
        assert e["parameters"] == (args.replace(" ", "+").replace(",", "+")
                                   if args else "-")
    assert entries[2]["parameters"] == "TO:<a@local.test>+NOTIFY=DELAY+" \
                                       "FAILURE"
    assert entries[1]["parameters"] == "FROM:<app@local.test>"
    m.wait_drop(1)


def test_rotate_size_numbers_files_as_iis(start_mailroot, sink, workdir):
    """By size: ncsaNN.log, going on from the highest number there, a
    new file before a line that would take the file past the size."""
    d = log_dir(workdir)
    old = d / "ncsa07.log"
    old.write_bytes(b"x" * 100 + b"\r\n")
    (d / "ncsa03.log").write_bytes(b"old\r\n")
    (d / "ncsa.log").write_bytes(b"not numbered\r\n")
    if mh.IS_ROOT:      # queued's files, as a log it wrote before
        pw = pwd.getpwnam(mh.USERS["queued"])
        for p in d.iterdir():
            os.chown(p, pw.pw_uid, pw.pw_gid)
    m = start_mailroot(sink=sink, server_extra=log_conf(
        d, extra="format ncsa\n        rotate size 1K"))
    for i in range(4):
        session(m.port, "c%d.example" % i, COMMANDS)

    def entries_of(p):
        if p.name == "ncsa03.log":
            return []
        data = p.read_bytes()
        if p == old:
            data = data[102:]
        return parse_ncsa(data) if data else []
    files, _ = wait_lines(d, "ncsa0", entries_of, 24)
    names = [p.name for p in files]
    assert names[0] == "ncsa03.log" and names[1] == "ncsa07.log", names
    seq = [int(n[4:6]) for n in names[1:]]
    assert seq == list(range(7, 7 + len(seq))) and len(seq) >= 3, names
    assert (d / "ncsa03.log").read_bytes() == b"old\r\n"
    assert old.read_bytes().startswith(b"x" * 100 + b"\r\n")
    users = [e["user"] for p in files[1:] for e in entries_of(p)]
    assert users == ["c%d.example" % i for i in range(4) for _ in range(6)]
    for p in files[1:]:
        size = p.stat().st_size
        assert size <= 1024, (p, size)
    # each file but the last was full: its next line did not fit
    for p, nxt in zip(files[1:], files[2:]):
        first = nxt.read_bytes().split(b"\r\n")[0]
        assert p.stat().st_size + len(first) + 2 > 1024
    m.wait_drop(4)


def test_rotate_size_w3c_directives_in_each_file(start_mailroot, sink,
                                                 workdir):
    d = log_dir(workdir)
    m = start_mailroot(sink=sink, server_extra=log_conf(
        d, extra="rotate size 2K"))
    for i in range(4):
        session(m.port, "c%d.example" % i, COMMANDS)

    def entries(p):
        return [e for _, es in parse_w3c(p.read_bytes()) for e in es]
    files, got = wait_lines(d, "extend", entries, 24)
    assert [p.name for p in files] == ["extend%02d.log" % i for i in
                                       range(1, len(files) + 1)]
    assert len(files) >= 2
    for p in files:
        data = p.read_bytes()
        assert data.startswith(b"#Software: mailroot "), p
        assert len(data) <= 2048
    assert [e["cs-username"] for e in got] == \
        ["c%d.example" % i for i in range(4) for _ in range(6)]
    m.wait_drop(4)
