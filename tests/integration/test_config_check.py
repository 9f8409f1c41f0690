"""
mailrootd -n (check and exit) and -P (print the effective configuration,
every default filled in) against good and bad files, and the sample
configurations shipped in etc/.
"""

import re
import subprocess

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
    "client-connections": r"client-connections\s+0",
    "client-connection-rate": r"client-connection-rate\s+0",
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


def sample_with_tables(tmp_path, sample):
    """The sample as written, but with the tables it names (which must
    exist: mailrootd -n opens them) built by mailroot-makemap under
    tmp_path instead of /etc/mailroot."""
    text = (mh.SRCDIR / sample).read_text()
    for db in re.findall(r"db:/etc/mailroot/(\S+)\.db", text):
        (tmp_path / db).write_text("# empty\n")
        subprocess.run([str(mh.BUILDDIR / "tools" / "mailroot-makemap"),
                        str(tmp_path / db)], check=True, timeout=60)
    return write(tmp_path, "sample.conf",
                 text.replace("db:/etc/mailroot/", "db:%s/" % tmp_path))


@pytest.mark.parametrize("sample", ["etc/mailroot.conf", "etc/relay.conf"])
def test_samples_pass(tmp_path, sample):
    path = sample_with_tables(tmp_path, sample)
    proc = mh.run_mailrootd("-n", "-f", path)
    assert proc.returncode == 0, proc.stderr


def test_relay_sample_is_short():
    """The smallest useful setup (a web server's outbound relay) stays
    small enough to read at a glance."""
    lines = [l for l in (mh.SRCDIR / "etc/relay.conf").read_text().splitlines()
             if l.strip() and not l.strip().startswith("#")]
    assert 0 < len(lines) < 10, lines


# ---------------------------------------------------------------------------
# Settings parsed but not implemented yet: each is warned about at its
# position (mailrootd -n still exits 0), and a deny rule that can never
# match -- which would let in the clients it names -- is an error.

INERT = """\
control-group wheel
metrics listen 127.0.0.1:9325
table users db:/etc/users.db
server "t" {
    listen 127.0.0.1:2525
    listen 127.0.0.1:2526 proxy-protocol
    mailroot "/tmp/m"
    connection allow domain ".good.example"
    relay allow domain ".good.example"
    relay authenticated yes
    auth { users users }
    reverse-dns-lookup yes
    masquerade-domain "m.example"
    log { format w3c }
    delivery {
        delay-notify outbound 1h
        smart-host-first-direct yes
        outbound { auth login "u" password-file "/pw" }
    }
    domain "l.example" local {
        deliver lmtp "/run/lmtp"
        aliases users
    }
    domain "m.example" local { deliver maildir "/var/mail/%d/%u" }
    domain "r.example" remote {
        auth plain "u" password-file "/pw"
        hold-for-etrn yes
        etrn-allow 192.0.2.0/24
    }
}
"""

# (line, column, the setting the warning names); "metrics listen" on
# line 2 is served (test_metrics.py) and so not warned about
INERT_WARNINGS = []

INERT_RE = r'^%s:(\d+):(\d+): warning: "([^"]+)" is (?:not yet|only partly) ' \
           r'implemented'


def inert_warnings(conf, stderr):
    return [(int(l), int(c), n) for l, c, n in
            re.findall(INERT_RE % re.escape(str(conf)), stderr, re.M)]


def inert_text(tmp_path):
    """INERT with its table (which mailrootd -n opens) under tmp_path."""
    users = write(tmp_path, "users.txt", "alice secret\n")
    return INERT.replace("db:/etc/users.db", "file:%s" % users)


def test_inert_settings_warn_with_position(tmp_path):
    conf = write(tmp_path, "inert.conf", inert_text(tmp_path))
    proc = mh.run_mailrootd("-n", "-f", conf)
    assert proc.returncode == 0, proc.stderr
    got = inert_warnings(conf, proc.stderr)
    assert sorted(got) == sorted(INERT_WARNINGS), proc.stderr
    # a W3C log is written: "log { format w3c }" is not warned about
    assert '"log' not in proc.stderr


def manual_inert_names():
    """The settings listed in mailroot.conf(5), SETTINGS NOT YET
    IMPLEMENTED, with the mdoc macros taken out."""
    text = (mh.SRCDIR / "man/mailroot.conf.5").read_text()
    sec = text.split(".Sh SETTINGS NOT YET IMPLEMENTED\n", 1)[1]
    sec = sec.split("\n.Sh ", 1)[0]
    names = set()
    for line in sec.splitlines():
        if line.startswith(".It "):
            words = [w for w in line[4:].split()
                     if w not in ("Ic", "Cm", "No", "Ar")]
            names.add(" ".join(words))
    return names


def test_manual_lists_the_inert_settings(tmp_path):
    """The manual and the warnings name the same set of settings."""
    conf = write(tmp_path, "inert.conf", inert_text(tmp_path) +
                 "server \"u\" {\n"
                 "    listen 127.0.0.1:2527\n    mailroot \"/tmp/n\"\n"
                 "    connection deny domain \"x.example\"\n"
                 "    relay deny domain \"x.example\"\n"
                 "    log {\n        format ncsa\n"
                 "        rotate size 10M\n    }\n}\n"
                 "server \"v\" {\n"
                 "    listen 127.0.0.1:2528\n    mailroot \"/tmp/v\"\n"
                 "    log { format iis }\n}\n")
    proc = mh.run_mailrootd("-n", "-f", conf)
    warned = {n for _, _, n in inert_warnings(conf, proc.stderr)}
    errors = set(re.findall(r'^%s:\d+:\d+: "([^"]+)" is not yet implemented'
                            % re.escape(str(conf)), proc.stderr, re.M))
    assert errors == set(), proc.stderr
    assert manual_inert_names() == warned | errors


@pytest.mark.parametrize("rule", ["connection deny domain \".bad.example\"",
                                  "relay deny domain \"bad.example\"",
                                  "reverse-dns-lookup yes"])
def test_reverse_dns_settings_are_implemented(tmp_path, rule):
    """Domain rules and reverse-dns-lookup (test_rdns.py) draw neither a
    warning nor an error any more."""
    conf = write(tmp_path, "deny.conf",
                 'server "t" {\n    listen 127.0.0.1:2525\n'
                 '    mailroot "/tmp/m"\n    %s\n'
                 '    connection allow 127.0.0.0/8\n'
                 '    relay allow 127.0.0.0/8\n}\n' % rule)
    proc = mh.run_mailrootd("-n", "-f", conf)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr


def test_honoured_values_are_not_warned_about(tmp_path):
    """A value asking for what mailroot already does is no warning."""
    conf = write(tmp_path, "honoured.conf", GOOD.replace(
        "    domain", "    reverse-dns-lookup no\n    relay authenticated no\n"
        "    tls none\n    auth { require-tls yes }\n"
        "    delivery { smart-host-first-direct no\n"
        "        outbound { auth none } }\n"
        "    domain \"r.example\" remote { hold-for-etrn no; auth none }\n"
        "    domain \"d.example\" local { deliver drop }\n    domain"))
    proc = mh.run_mailrootd("-n", "-f", conf)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr


@pytest.mark.parametrize("sample", ["etc/mailroot.conf", "etc/relay.conf"])
def test_samples_have_no_errors(tmp_path, sample):
    """Warnings about settings not implemented yet, and nothing else
    (but that the sample's certificate files are not on this machine)."""
    path = sample_with_tables(tmp_path, sample)
    proc = mh.run_mailrootd("-n", "-f", path)
    assert proc.returncode == 0, proc.stderr
    for line in proc.stderr.splitlines():
        if re.search(r'pki "[^"]+": /etc/mailroot/\S+: No such file', line) \
                or line == "%s: warning: a certificate or key cannot be " \
                "read: mailrootd would not start" % path:
            continue
        assert re.match(INERT_RE % re.escape(str(path)), line), line


def test_running_daemon_warns_once(start_mailroot):
    """mailrootd reports the warnings at start-up; its children, which
    parse the same snapshot, do not repeat them.  No setting is inert
    today: the NCSA log format, once the example, draws no warning."""
    d = start_mailroot(server_extra='    log { format ncsa }')
    # each child has parsed the snapshot once it logs anything
    assert mh.wait_until(lambda: all("%s[" % c in d.log_text() for c in
                                     ("smtpd", "queued", "deliverd")), 60), \
        d.log_text()
    log = d.log_text()
    assert 'is not yet implemented' not in log, log
    assert '"log { format ncsa }"' not in log, log
