"""
mailrootd -n (check and exit) and -P (print the effective configuration,
every default filled in) against good and bad files, and the sample
configurations shipped in etc/.
"""

import re

import pytest

import mailroot_harness as mh

GOOD = """\
# a comment
hostname "mx.test.example"
server "test" {
    listen 127.0.0.1:2525
    mailroot "/var/spool/mailroot/test"
    relay allow 127.0.0.1
    delivery { smart-host "[127.0.0.1]:2526" }
    domain "local.test" local
}
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_config_passes(tmp_path):
    conf = write(tmp_path, "good.conf", GOOD)
    proc = mh.run_mailrootd("-n", "-f", conf)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr.lower(), proc.stderr


# (name, text, line of the first error, column or None)
BAD = [
    ("unknown-keyword",
     'hostname "mx.test.example"\nserver "t" {\n    bogus-directive yes\n'
     '    listen 127.0.0.1:2525\n    mailroot "/tmp/m"\n}\n', 3, 5),
    ("port-out-of-range",
     'server "t" {\n    mailroot "/tmp/m"\n    listen 127.0.0.1:99999\n}\n',
     3, None),
    ("bad-prefix",
     'server "t" {\n    listen 127.0.0.1:2525\n    mailroot "/tmp/m"\n'
     '    relay allow 10.0.0.0/33\n}\n', 4, None),
    ("unterminated-string",
     'hostname "mx.test.example\nserver "t" {\n}\n', 1, None),
    ("unclosed-block",
     'server "t" {\n    listen 127.0.0.1:2525\n    mailroot "/tmp/m"\n', None,
     None),
    ("relative-mailroot",
     'server "t" {\n    listen 127.0.0.1:2525\n    mailroot "relative"\n}\n',
     3, None),
    ("bad-size",
     'server "t" {\n    listen 127.0.0.1:2525\n    mailroot "/tmp/m"\n'
     '    limits { message-size lots }\n}\n', 4, None),
]


@pytest.mark.parametrize("name,text,line,col", BAD, ids=[b[0] for b in BAD])
def test_bad_config_reports_position(tmp_path, name, text, line, col):
    conf = write(tmp_path, name + ".conf", text)
    proc = mh.run_mailrootd("-n", "-f", conf)
    assert proc.returncode != 0, "accepted:\n" + text
    where = re.findall(r"^%s:(\d+):(\d+): (.+)$" % re.escape(str(conf)),
                       proc.stderr, re.M)
    assert where, "no %s:LINE:COL: message in stderr:\n%s" % (conf,
                                                              proc.stderr)
    errors = [w for w in where if not w[2].startswith("warning:")]
    assert errors, proc.stderr
    first_line, first_col, _ = errors[0]
    assert int(first_col) >= 1
    if line is not None:
        assert int(first_line) == line, proc.stderr
    if col is not None:
        assert int(first_col) == col, proc.stderr


def test_missing_file(tmp_path):
    proc = mh.run_mailrootd("-n", "-f", tmp_path / "absent.conf")
    assert proc.returncode != 0
    assert "absent.conf" in proc.stderr


def printed(tmp_path, text, name="p.conf"):
    conf = write(tmp_path, name, text)
    proc = mh.run_mailrootd("-P", "-f", conf)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


DEFAULTS = {
    "message-size": r"message-size\s+2048K",
    "session-size": r"session-size\s+10240K",
    "messages-per-connection": r"messages-per-connection\s+20",
    "recipients-per-message": r"recipients-per-message\s+100",
    "hop-count": r"hop-count\s+15",
    "retry": r"retry\s+(15m|900s?)\s+(30m|1800s?)\s+(60m|1h|3600s?)"
             r"\s+(240m|4h|14400s?)",
}


@pytest.mark.parametrize("setting", list(DEFAULTS.values()),
                         ids=list(DEFAULTS))
def test_print_shows_defaults(tmp_path, setting):
    out = printed(tmp_path, GOOD)
    assert re.search(r"^\s*%s\s*(#.*)?$" % setting, out, re.M), out


def test_print_is_closed_relay_by_default(tmp_path):
    out = printed(tmp_path, GOOD.replace("    relay allow 127.0.0.1\n", ""))
    assert not re.search(r"^\s*relay\s+allow", out, re.M), out
    assert re.search(r"^\s*relay\s+default\s+deny\s*$", out, re.M), out


def test_print_round_trips(tmp_path):
    """The printed configuration parses back and prints the same."""
    once = printed(tmp_path, GOOD)
    write(tmp_path, "printed.conf", once)
    proc = mh.run_mailrootd("-n", "-f", tmp_path / "printed.conf")
    assert proc.returncode == 0, proc.stderr + "\n---\n" + once
    twice = printed(tmp_path, once, "printed2.conf")
    assert settings(twice) == settings(once)


def settings(text):
    return [l for l in text.splitlines() if not l.lstrip().startswith("#")]


@pytest.mark.parametrize("sample", ["etc/mailroot.conf", "etc/relay.conf"])
def test_samples_pass(sample):
    path = mh.SRCDIR / sample
    proc = mh.run_mailrootd("-n", "-f", path)
    assert proc.returncode == 0, proc.stderr


def test_relay_sample_is_short():
    """The smallest useful setup (a web server's outbound relay) stays
    small enough to read at a glance."""
    lines = [l for l in (mh.SRCDIR / "etc/relay.conf").read_text().splitlines()
             if l.strip() and not l.strip().startswith("#")]
    assert 0 < len(lines) < 10, lines
