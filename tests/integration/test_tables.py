"""
Tables and aliases through a real mailrootd: mailroot-makemap builds the
.db, queued expands aliases (one, many, recursive, a loop) at commit, and
the mail lands where each final address says (Drop for a local one, the
sink for a remote one).  A table that cannot be read is an error for
mailrootd -n and a 451 at run time, never a delivery as if the alias did
not exist.  The tables live outside every mailroot: a root daemon's
queued (user mailroot, Landlock) must still read them.
"""

import os
import re
import signal
import smtplib
import subprocess
import threading

import pytest

import mailroot_harness as mh

MAKEMAP = mh.BUILDDIR / "tools" / "mailroot-makemap"

ALIASES = """\
# one to one, one to many, recursive, a loop, itself
alice      bob
team       alice, carol@remote.example
all        team, dave
loop-a     loop-b
loop-b     loop-a
keep       keep, archive@remote.example
"""


def makemap(*args):
    return subprocess.run([str(MAKEMAP), *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def table_dir(workdir):
    d = workdir / "tables"
    d.mkdir(exist_ok=True)
    mh.make_traversable(d)
    return d


def build_aliases(workdir, text=ALIASES):
    src = table_dir(workdir) / "aliases"
    src.write_text(text)
    proc = makemap(src)
    assert proc.returncode == 0, proc.stderr
    return src.with_name("aliases.db")


def start_with(start_mailroot, sink, table):
    return start_mailroot(
        sink=sink, local_domains=(), global_extra="table al %s" % table,
        server_extra='    domain "local.test" local { aliases al }')


def receivers(eml):
    head = eml.read_bytes().split(b"\r\n\r\n", 1)[0].decode()
    return sorted(re.findall(r"^x-receiver: (\S+)", head, re.M | re.I))


def message(subject):
    return mh.crlf("From: s@client.test\nSubject: %s\n\nbody\n" % subject)


def drop_receivers(d, count):
    return sorted(sum((receivers(f) for f in d.wait_drop(count)), []))


@pytest.mark.parametrize("rcpt,local,remote", [
    ("alice@local.test", ["bob@local.test"], []),
    ("team@local.test", ["bob@local.test"], ["carol@remote.example"]),
    ("ALL@local.test", ["bob@local.test", "dave@local.test"],
     ["carol@remote.example"]),
    ("keep@local.test", ["keep@local.test"], ["archive@remote.example"]),
    ("nobody@local.test", ["nobody@local.test"], []),
])
def test_aliases_deliver_to_their_targets(start_mailroot, sink, workdir,
                                          rcpt, local, remote):
    db = build_aliases(workdir)
    d = start_with(start_mailroot, sink, "db:%s" % db)
    mh.send(d.port, "s@client.test", [rcpt], message("alias"))
    assert drop_receivers(d, 1) == local
    if remote:
        got = sink.wait_for(1)
        assert len(got) == 1
        assert sorted(got[0].rcpt_tos) == remote
    d.wait_queue_empty()
    assert len(sink.messages) == (1 if remote else 0)


def test_alias_loop_bounces_and_the_rest_is_delivered(start_mailroot, sink,
                                                      workdir):
    db = build_aliases(workdir)
    d = start_with(start_mailroot, sink, "db:%s" % db)
    mh.send(d.port, "s@client.test", ["loop-a@local.test", "alice@local.test"],
            message("loop"))
    assert drop_receivers(d, 1) == ["bob@local.test"]
    # the non-delivery report goes back to the (remote) sender
    got = sink.wait_for(1)
    assert got[0].rcpt_tos == ["s@client.test"]
    assert b"loop-a@local.test" in got[0].data
    assert b"5.4.6" in got[0].data
    d.wait_queue_empty()


def test_regex_table_with_captures(start_mailroot, sink, workdir):
    rx = table_dir(workdir) / "aliases.re"
    rx.write_text("# user+tag goes to user; sales-X to X in remote\n"
                  "/^([^+]+)\\+[^@]*@(.*)$/   $1@$2\n"
                  "/^sales-(.*)@/i            $1@remote.example\n")
    d = start_with(start_mailroot, sink, "regex:%s" % rx)
    mh.send(d.port, "s@client.test", ["eve+lists@local.test",
                                      "sales-frank@local.test"],
            message("regex"))
    assert drop_receivers(d, 1) == ["eve@local.test"]
    assert sink.wait_for(1)[0].rcpt_tos == ["frank@remote.example"]
    d.wait_queue_empty()


def test_file_table(start_mailroot, sink, workdir):
    f = table_dir(workdir) / "aliases.txt"
    f.write_text("postmaster  root\nroot  admin@remote.example\n")
    d = start_with(start_mailroot, sink, "file:%s" % f)
    mh.send(d.port, "s@client.test", ["Postmaster@local.test"],
            message("file"))
    assert sink.wait_for(1)[0].rcpt_tos == ["admin@remote.example"]
    d.wait_queue_empty()
    assert d.drop_files() == []


def test_rebuilt_table_is_reopened(start_mailroot, sink, workdir):
    db = build_aliases(workdir)
    d = start_with(start_mailroot, sink, "db:%s" % db)
    mh.send(d.port, "s@client.test", ["alice@local.test"], message("1"))
    assert drop_receivers(d, 1) == ["bob@local.test"]
    build_aliases(workdir, "alice dave\n")
    mh.send(d.port, "s@client.test", ["alice@local.test"], message("2"))
    assert drop_receivers(d, 2) == ["bob@local.test", "dave@local.test"]


def test_missing_table_is_a_temporary_failure(start_mailroot, sink, workdir):
    db = build_aliases(workdir)
    d = start_with(start_mailroot, sink, "db:%s" % db)
    os.rename(db, db.with_name("moved.db"))
    with pytest.raises(smtplib.SMTPDataError) as e:
        mh.send(d.port, "s@client.test", ["alice@local.test"], message("x"))
    assert e.value.smtp_code == 451
    assert d.drop_files() == [] and d.queue_files() == []
    # a corrupt table likewise
    db.write_bytes(b"not a database\n" * 100)
    with pytest.raises(smtplib.SMTPDataError) as e:
        mh.send(d.port, "s@client.test", ["alice@local.test"], message("y"))
    assert e.value.smtp_code == 451
    assert d.drop_files() == [] and d.queue_files() == []
    # back in place: the same mail now goes through
    os.rename(db.with_name("moved.db"), db)
    mh.send(d.port, "s@client.test", ["alice@local.test"], message("z"))
    assert drop_receivers(d, 1) == ["bob@local.test"]


CHECK_CONF = """\
table al %s
server "t" {
    listen 127.0.0.1:2525
    mailroot "/tmp/m"
    domain "local.test" local { aliases al }
}
"""


@pytest.mark.parametrize("content", [None, b"garbage" * 1000],
                         ids=["missing", "corrupt"])
def test_check_reports_unreadable_table(tmp_path, content):
    db = tmp_path / "al.db"
    if content is not None:
        db.write_bytes(content)
    conf = tmp_path / "t.conf"
    conf.write_text(CHECK_CONF % ("db:%s" % db))
    proc = mh.run_mailrootd("-n", "-f", conf)
    assert proc.returncode == 1, proc.stderr
    assert re.search(r'^%s:1: table "al": cannot open %s' % (
        re.escape(str(conf)), re.escape(str(db))), proc.stderr, re.M), \
        proc.stderr


def test_check_accepts_good_table_without_warning(tmp_path):
    src = tmp_path / "al"
    src.write_text("a b\n")
    assert makemap(src).returncode == 0
    conf = tmp_path / "t.conf"
    conf.write_text(CHECK_CONF % ("db:%s.db" % src))
    proc = mh.run_mailrootd("-n", "-f", conf)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_check_reports_bad_regex_with_line(tmp_path):
    rx = tmp_path / "al.re"
    rx.write_text("/ok/ x\n\n/bad(/ y\n")
    conf = tmp_path / "t.conf"
    conf.write_text(CHECK_CONF % ("regex:%s" % rx))
    proc = mh.run_mailrootd("-n", "-f", conf)
    assert proc.returncode == 1
    assert "%s:3: bad pattern" % rx in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------
# mailroot-makemap on its own.

def test_makemap_builds_and_queries(tmp_path):
    src = tmp_path / "map"
    src.write_text("# comment\n\nKey1  value one \nkey2\tv2\n")
    proc = makemap(src)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert oct(os.stat(str(src) + ".db").st_mode & 0o777) == "0o644"
    q = makemap("-q", "KEY1", src)
    assert (q.returncode, q.stdout) == (0, "value one\n")
    q = makemap("-q", "key2", str(src) + ".db")
    assert (q.returncode, q.stdout) == (0, "v2\n")
    q = makemap("-q", "key3", src)
    assert (q.returncode, q.stdout) == (1, "")
    assert makemap("-o", tmp_path / "other.db", src).returncode == 0
    assert makemap("-q", "key2", tmp_path / "other.db").stdout == "v2\n"
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []


@pytest.mark.parametrize("text,line,why", [
    ("a b\nlonely\n", 2, "key without a value"),
    ("a b\n\nA c\n", 3, 'duplicate key "a" (first at line 1)'),
    ("a b\nc d\x01\n", 2, "control character"),
    ("a b\n" + "k " + "v" * 5000 + "\n", 2, "line too long"),
])
def test_makemap_errors_name_file_and_line(tmp_path, text, line, why):
    src = tmp_path / "map"
    (tmp_path / "map.db").write_bytes(b"old")
    src.write_text(text)
    proc = makemap(src)
    assert proc.returncode == 1
    assert proc.stderr == "%s:%d: %s\n" % (src, line, why)
    # the old database stays as it was
    assert (tmp_path / "map.db").read_bytes() == b"old"


def test_makemap_query_errors(tmp_path):
    q = makemap("-q", "a", tmp_path / "none")
    assert q.returncode == 2 and "cannot open" in q.stderr
    assert makemap().returncode == 2


def test_makemap_rebuild_is_atomic_for_readers(tmp_path):
    """A reader during rebuilds sees the old value or the new, never an
    error or a partial file."""
    src = tmp_path / "map"
    big = "".join("filler%d value%d\n" % (i, i) for i in range(1000))
    src.write_text("probe old\n" + big)
    assert makemap(src).returncode == 0
    seen, bad, stop = set(), [], threading.Event()

    def reader():
        for _ in range(500):
            if stop.is_set():
                return
            q = makemap("-q", "probe", src)
            if q.returncode != 0 or q.stdout not in ("old\n", "new\n"):
                bad.append((q.returncode, q.stdout, q.stderr))
            seen.add(q.stdout)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(10):
            src.write_text("probe %s\n%s" % ("new" if i % 2 else "old", big))
            assert makemap(src).returncode == 0
    finally:
        stop.set()
        t.join(120)
    assert not bad, bad[:3]
    assert seen <= {"old\n", "new\n"}


def test_alias_depth_limit(start_mailroot, sink, workdir):
    """Ten levels of aliases are followed; the eleventh fails the
    recipient (5.4.6) with a report to the sender."""
    chain = "".join("d%d d%d\n" % (i, i + 1) for i in range(11))
    chain += "".join("e%d e%d\n" % (i, i + 1) for i in range(10))
    db = build_aliases(workdir, chain)
    d = start_with(start_mailroot, sink, "db:%s" % db)
    mh.send(d.port, "s@client.test", ["e0@local.test", "d0@local.test"],
            message("deep"))
    assert drop_receivers(d, 1) == ["e10@local.test"]
    got = sink.wait_for(1)
    assert got[0].rcpt_tos == ["s@client.test"]
    assert b"d0@local.test" in got[0].data and b"5.4.6" in got[0].data
    d.wait_queue_empty()


def test_reload_to_another_table(start_mailroot, sink, workdir):
    """A reload that names another table (here a file table in the same
    directory) is used from the next message on, without a restart."""
    db = build_aliases(workdir)
    d = start_with(start_mailroot, sink, "db:%s" % db)
    mh.send(d.port, "s@client.test", ["alice@local.test"], message("1"))
    assert drop_receivers(d, 1) == ["bob@local.test"]
    txt = db.with_name("other.txt")
    txt.write_text("alice erin\n")
    d.conf.write_text(d.conf.read_text().replace("db:%s" % db,
                                                 "file:%s" % txt))
    since = len(d.log_text())
    os.kill(d.pid, signal.SIGHUP)
    assert mh.wait_until(lambda: d.log_text()[since:].count(
        "configuration reloaded") >= 3, 60), d.log_text()[since:]
    mh.send(d.port, "s@client.test", ["alice@local.test"], message("2"))
    assert drop_receivers(d, 2) == ["bob@local.test", "erin@local.test"]


@pytest.mark.skipif(not mh.IS_ROOT, reason="needs root: queued runs as the "
                    "mailroot user only when started as root")
def test_table_unreadable_by_queue_user_is_temporary(start_mailroot, sink,
                                                     workdir):
    """queued runs as the mailroot user: a root-only table cannot be read
    there, and the mail is refused for now (451), not delivered as if the
    alias did not exist."""
    db = build_aliases(workdir)
    d = start_with(start_mailroot, sink, "db:%s" % db)
    os.chmod(db, 0o600)
    with pytest.raises(smtplib.SMTPDataError) as e:
        mh.send(d.port, "s@client.test", ["alice@local.test"], message("x"))
    assert e.value.smtp_code == 451
    assert "Permission denied" in d.log_text()
    assert d.drop_files() == [] and d.queue_files() == []
    os.chmod(db, 0o644)
    mh.send(d.port, "s@client.test", ["alice@local.test"], message("y"))
    assert drop_receivers(d, 1) == ["bob@local.test"]


def test_aliases_apply_to_pickup(start_mailroot, sink, workdir):
    """A file dropped into Pickup goes through the aliases like a message
    from SMTP."""
    db = build_aliases(workdir)
    d = start_with(start_mailroot, sink, "db:%s" % db)
    assert mh.wait_until(lambda: "Pickup: watching" in d.log_text(), 120,
                         0.05), d.log_text()[-3000:]
    tmp = d.dir("Pickup") / ".team.eml"
    tmp.write_bytes(b"x-sender: s@client.test\r\n"
                    b"x-receiver: team@local.test\r\n"
                    b"Subject: alias by pickup\r\n\r\nbody\r\n")
    os.rename(tmp, d.dir("Pickup") / "team.eml")
    assert drop_receivers(d, 1) == ["bob@local.test"]
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == ["carol@remote.example"]
