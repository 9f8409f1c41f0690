"""
mailroot-import-iis(8) against IIS 6 metabases written for these tests
(tests/integration/data/iis/): each output is compared with the
mailroot.conf kept beside its input, checked by a real "mailrootd -n" and
read back through "mailrootd -P", which must show the same values.  Then:
every property the report must account for, the unsafe IIS settings it
must flag, bad input, and the RelayIpList/IPSecurity decoders under
hypothesis (random blobs never crash; encoded lists decode to themselves).

MAILROOT_REGEN_IIS=1 rewrites the expected files (review the diff).
"""

import importlib.machinery
import importlib.util
import ipaddress
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

import mailroot_harness as mh

IMPORTER = mh.SRCDIR / "tools" / "mailroot-import-iis"
MAKEMAP = mh.BUILDDIR / "tools" / "mailroot-makemap"
DATA = Path(__file__).resolve().parent / "data" / "iis"
PROG = "mailroot-import-iis"

CASES = ["default-install.xml", "lan-relay.xml", "two-servers.xml",
         "auth-relay-tls.xml", "alias-etrn.xml", "utf16-bom.xml",
         "adsutil-enum-all.txt"]


def _load():
    loader = importlib.machinery.SourceFileLoader("mr_import_iis",
                                                  str(IMPORTER))
    spec = importlib.util.spec_from_loader("mr_import_iis", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


imp = _load()
# hypothesis caches its Unicode tables: not in the source tree.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(),
                                     "mailroot-hypothesis"))


def run_import(path, *opts):
    return subprocess.run(["/usr/bin/python3", str(IMPORTER), *opts,
                           str(path)], capture_output=True, text=True,
                          timeout=60)


# ---------------------------------------------------------------------------
# A small reader of mailroot.conf statements: (enclosing blocks, tokens).

def statements(text):
    toks, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
        elif c == '"':
            j, s = i + 1, ""
            while text[j] != '"':
                if text[j] == "\\" and text[j + 1] in '"\\':
                    j += 1
                s += text[j]
                j += 1
            toks.append(("w", s))
            i = j + 1
        elif c in "{};\n":
            toks.append((c, c))
            i += 1
        elif c in " \t\r":
            i += 1
        else:
            m = re.match(r'[^\s{};"#]+', text[i:])
            toks.append(("w", m.group(0)))
            i += m.end()
    out, path, cur = [], [], []
    for kind, v in toks:
        if kind == "w":
            cur.append(v)
        elif kind == "{":
            path.append(tuple(cur))
            cur = []
        else:
            if cur:
                out.append((tuple(path), tuple(cur)))
            cur = []
            if kind == "}":
                path.pop()
    return out


def make_tables(conf_text):
    """Creates every table a configuration names (empty) and a certificate
    for every pki, as an admin does after the import (with
    mailroot-makemap, and openssl from the exported .pfx)."""
    for m in re.finditer(r'^pki "[^"]+" \{\n\tcertificate "([^"]+)"\n'
                         r'\tkey "([^"]+)"', conf_text, re.M):
        crt, key = Path(m.group(1)), Path(m.group(2))
        crt.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-subj", "/CN=import.test", "-days",
                            "2", "-keyout", str(key), "-out", str(crt)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    for m in re.finditer(r'^table "[^"]+" "db:([^"]+)"', conf_text, re.M):
        db = Path(m.group(1))
        db.parent.mkdir(parents=True, exist_ok=True)
        src = db.with_suffix("")
        src.write_text("")
        r = subprocess.run([str(MAKEMAP), "-o", str(db), str(src)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------
# The test metabases.

@pytest.mark.parametrize("case", CASES)
def test_output_is_the_expected_configuration(case):
    r = run_import(DATA / case)
    assert r.returncode == 0, r.stderr
    expected = DATA / (case.rsplit(".", 1)[0] + ".conf")
    if os.environ.get("MAILROOT_REGEN_IIS"):
        expected.write_text(r.stdout)
    assert r.stdout == expected.read_text()
    assert re.search(r"^%s: read .*carried \d+, not carried \d+" % PROG,
                     r.stderr, re.M), r.stderr


@pytest.mark.parametrize("case", CASES)
def test_mailrootd_accepts_it_and_prints_the_same_values(case, tmp_path):
    etc = tmp_path / "etc"
    r = run_import(DATA / case, "--conf-dir", str(etc), "--mailroot-base",
                   str(tmp_path / "spool"), "--log-base",
                   str(tmp_path / "log"))
    assert r.returncode == 0, r.stderr
    conf = tmp_path / "mailroot.conf"
    conf.write_text(r.stdout)
    make_tables(r.stdout)
    chk = mh.run_mailrootd("-n", "-f", conf)
    assert chk.returncode == 0, chk.stderr
    errors = [l for l in chk.stderr.splitlines()
              if ": warning:" not in l and l.strip()]
    assert not errors, chk.stderr
    eff = mh.run_mailrootd("-P", "-f", conf)
    assert eff.returncode == 0, eff.stderr
    printed = statements(eff.stdout)
    missing = [s for s in statements(r.stdout) if s not in printed]
    assert not missing, "not in mailrootd -P:\n%s\n\n%s" % (
        "\n".join(map(str, missing)), eff.stdout)
    # Rule lists keep their order.
    for kw in ("connection", "relay"):
        def rules(stmts):
            return [s for s in stmts if len(s[0]) == 1 and s[1][0] == kw
                    and s[1][1] in ("allow", "deny")]
        assert rules(statements(r.stdout)) == rules(printed)


def smtp_nodes(case):
    text, _ = imp.decode_text((DATA / case).read_bytes())
    nodes = imp.parse_xml(text) if case.endswith(".xml") else \
        imp.parse_adsutil(text)
    return [n for n in nodes if n.key.startswith("/lm/smtpsvc")]


@pytest.mark.parametrize("case", CASES)
def test_every_property_is_carried_or_reported(case):
    """Nothing dropped silently: each property of each SMTP object has a
    report line, carried (with the setting) or not carried (with a
    reason), and the not-carried ones are also in the output's header."""
    r = run_import(DATA / case)
    assert r.returncode == 0, r.stderr
    for n in smtp_nodes(case):
        for p in n.props.values():
            pat = r"^%s: %s(?: \(inherited by [^)]*\))?: " \
                r"(carried: %s .* -> .+|not carried: %s .*: .+)$" % (
                    PROG, re.escape(n.location), re.escape(p.name),
                    re.escape(p.name))
            assert re.search(pat, r.stderr, re.M), \
                "%s %s not reported:\n%s" % (n.location, p.name, r.stderr)
    for line in r.stderr.splitlines():
        m = re.match(r"^%s: (\S+): not carried: (\S+)" % PROG, line)
        if m:
            assert "%s: %s" % m.groups() in r.stdout.replace("\n#       ",
                                                               " ")


# The properties IIS-MODEL.md section 2 names (property sheets, domain
# properties, LDAP routing and security, other server properties), with
# the object that carries each.  Values are plausible ones.
MODEL_SECTION2 = {
    "server": {
        "ServerComment": "Model server", "ServerBindings": "127.0.0.1:25:",
        "MaxConnections": "1000", "ConnectionTimeout": "600",
        "LogType": "1",
        "LogPluginClsid": "{FF160663-DE82-11CF-BC0A-00AA006111E0}",
        "AuthFlags": "AuthAnonymous | AuthBasic",
        "DefaultLogonDomain": "CORP", "SaslLogonDomain": "CORP",
        "AccessSSLFlags": "AccessSSL", "SSLCertHash": "00112233",
        "IPSecurity": "", "RelayIpList":
        "18000080200000803c00008044000080010000004c000000000000000000000001"
        "00000001000000020000000200000004000000000000004c000080000000000000"
        "00000000000000000000ffffffff7f000001",
        "RelayForAuth": "-1", "SmtpDisableRelay": "TRUE",
        "MaxMessageSize": "2097152", "MaxSessionSize": "10485760",
        "MaxBatchedMessages": "20", "MaxRecipients": "100",
        "SendNdrTo": "ndr@example.com",
        "BadMailDirectory": "C:\\Inetpub\\mailroot\\Badmail",
        "SendBadTo": "Postmaster",
        "SmtpRemoteProgressiveRetry": "15,30,60,240",
        "SmtpRemoteDelayExpireMinutes": "720",
        "SmtpRemoteNDRExpireMinutes": "2880",
        "SmtpLocalDelayExpireMinutes": "720",
        "SmtpLocalNDRExpireMinutes": "2880", "LocalRetryInterval": "60",
        "SmtpRemoteRetryThreshold": "3", "RemoteRetryInterval": "60",
        "LocalRetryAttempts": "48", "RemoteRetryAttempts": "48",
        "RouteAction": "264", "RouteUserName": "relay",
        "RoutePassword": "00ff", "AlwaysUseSsl": "FALSE",
        "MaxOutConnections": "1000", "RemoteTimeout": "600",
        "MaxOutConnectionsPerDomain": "100", "RemoteSmtpPort": "25",
        "HopCount": "15", "MasqueradeDomain": "example.com",
        "DoMasquerade": "TRUE", "FullyQualifiedDomainName":
        "mail.example.com", "UpdatedFQDN": "TRUE",
        "SmartHost": "[192.0.2.25]", "SmartHostType": "2",
        "EnableReverseDnsLookup": "FALSE", "AdminACL": "4963",
        "MaxSmtpErrors": "10", "SmtpDomainValidationFlags": "1",
        "SmtpHeloNoDomain": "TRUE", "SmtpMailNoHelo": "TRUE",
        "SmtpDotStuffPickupDirFiles": "TRUE",
        "SmtpSSLRequireTrustedCA": "TRUE",
        "SmtpSSLCertHostnameValidation": "TRUE", "NameResolutionType": "1",
        # section 1 and 3
        "SecureBindings": "127.0.0.1:465:",
        "PickupDirectory": "C:\\Inetpub\\mailroot\\Pickup",
        "QueueDirectory": "C:\\Inetpub\\mailroot\\Queue",
        "DropDirectory": "C:\\Inetpub\\mailroot\\Drop",
        "SmtpInboundCommandSupportOptions": "7697601",
        "SmtpOutboundCommandSupportOptions": "7",
    },
    "domain": {
        "RouteAction": "4619", "RouteActionString": "[198.51.100.7]",
        "AuthTurnList": "CORP\\etrn", "CSideEtrnDomains": "example.org",
        "RelayIpList": "", "RelayForAuth": "-1",
        "RouteUserName": "route-user", "RoutePassword": "00ff",
    },
    "routing": {
        "SmtpDsHost": "dc01.corp.example", "SmtpDsSchemaType": "1",
        "SmtpDsBindType": "2", "SmtpDsAccount": "CORP\\smtp",
        "SmtpDsPassword": "00ff", "SmtpDsNamingContext": "DC=corp",
        "SmtpDsPort": "389",
    },
}


def model_metabase():
    def attrs(d):
        return "".join('\n\t\t%s="%s"' % (k, v.replace("&", "&amp;"))
                       for k, v in d.items())
    return ('<?xml version ="1.0"?>\n<configuration xmlns="urn:microsoft-'
            'catalog:XML_Metabase_V64_0">\n<MBProperty>\n'
            '<IIsSmtpService\tLocation ="/LM/SmtpSvc">\n</IIsSmtpService>\n'
            '<IIsSmtpServer\tLocation ="/LM/SmtpSvc/1"%s\n\t>\n'
            '</IIsSmtpServer>\n'
            '<IIsSmtpDomain\tLocation ="/LM/SmtpSvc/1/Domain/partner.example"'
            '%s\n\t>\n</IIsSmtpDomain>\n'
            '<IIsSmtpRoutingSource\tLocation ="/LM/SmtpSvc/1/RoutingSources"'
            '%s\n\t>\n</IIsSmtpRoutingSource>\n</MBProperty>\n'
            '</configuration>\n' % (attrs(MODEL_SECTION2["server"]),
                                    attrs(MODEL_SECTION2["domain"]),
                                    attrs(MODEL_SECTION2["routing"])))


def test_every_property_of_iis_model_section2_is_imported_or_reported(
        tmp_path):
    mb = tmp_path / "MetaBase.xml"
    mb.write_text(model_metabase())
    r = run_import(mb, "--conf-dir", str(tmp_path / "etc"))
    assert r.returncode == 0, r.stderr
    where = {"server": "/LM/SmtpSvc/1",
             "domain": "/LM/SmtpSvc/1/Domain/partner.example",
             "routing": "/LM/SmtpSvc/1/RoutingSources"}
    missing = []
    for obj, props in MODEL_SECTION2.items():
        for name in props:
            pat = r"^%s: %s: (carried: %s .* -> .+|not carried: %s .*: " \
                r"\w.+)$" % (PROG, re.escape(where[obj]), name, name)
            if not re.search(pat, r.stderr, re.M):
                missing.append("%s %s" % (where[obj], name))
    assert not missing, "\n".join(missing) + "\n\n" + r.stderr
    conf = tmp_path / "mailroot.conf"
    conf.write_text(r.stdout)
    make_tables(r.stdout)
    chk = mh.run_mailrootd("-n", "-f", conf)
    assert chk.returncode == 0, chk.stderr


# ---------------------------------------------------------------------------
# Unsafe IIS settings: carried only where safe, flagged loudly.

def test_open_relay_is_not_carried_and_is_flagged():
    r = run_import(DATA / "alias-etrn.xml")       # RelayIpList=""
    assert "WARNING: OPEN RELAY" in r.stderr
    assert "OPEN RELAY" in r.stdout.split("\nserver ")[0]
    rules = [s for _, s in statements(r.stdout) if s[0] == "relay"]
    assert ("relay", "default", "deny") in rules
    assert not [s for s in rules if s[1] == "allow"]


def test_deny_list_relay_is_an_open_relay_and_is_not_carried(tmp_path):
    blob = imp.encode_iplist(True, [(32, ["192.0.2.66"])]).hex()
    mb = (DATA / "default-install.xml").read_text()
    mb = re.sub(r'RelayIpList="[0-9a-f]*"', 'RelayIpList="%s"' % blob, mb)
    (tmp_path / "m.xml").write_text(mb)
    r = run_import(tmp_path / "m.xml")
    assert r.returncode == 0, r.stderr
    assert "OPEN RELAY" in r.stderr and "everyone except 1" in r.stderr
    rules = [s for _, s in statements(r.stdout) if s[0] == "relay"]
    assert ("relay", "default", "deny") in rules
    assert ("relay", "default", "allow") not in rules
    assert "#relay deny 192.0.2.66" in r.stdout


def test_esmtp_off_outbound_is_not_carried():
    r = run_import(DATA / "default-install.xml")
    assert re.search(r"WARNING: SmtpOutboundCommandSupportOptions=7 .*NOT "
                     r"carried", r.stderr)
    assert (((("server", "Default SMTP Virtual Server"), ("delivery",),
              ("outbound",)), ("esmtp", "yes"))
            in statements(r.stdout))


def test_relay_for_authenticated_with_anonymous_access_is_flagged():
    r = run_import(DATA / "auth-relay-tls.xml")
    assert "WARNING: RelayForAuth with anonymous access on" in r.stderr
    st_ = [s for _, s in statements(r.stdout)]
    assert ("relay", "authenticated", "yes") in st_
    assert ("require-tls", "yes") in st_
    assert ("users", "users") in st_


def test_stopped_server_is_imported_and_flagged(tmp_path):
    mb = (DATA / "default-install.xml").read_text().replace(
        'ServerAutoStart="TRUE"', 'ServerAutoStart="FALSE"')
    (tmp_path / "m.xml").write_text(mb)
    r = run_import(tmp_path / "m.xml")
    assert r.returncode == 0, r.stderr
    assert "WARNING: ServerAutoStart is FALSE" in r.stderr
    assert 'server "Default SMTP Virtual Server" {' in r.stdout


def test_multi_mask_list_is_reported_not_guessed():
    r = run_import(DATA / "two-servers.xml")
    partners = r.stdout.split('server "Partners"')[1]
    assert "relay allow" not in partners
    assert "would be: allow 10.0.0.20 10.20.30.0/24, default deny" in r.stderr
    r = run_import(DATA / "two-servers.xml", "--multi-mask-lists")
    partners = r.stdout.split('server "Partners"')[1]
    assert "relay allow 10.0.0.20\n" in partners
    assert "relay allow 10.20.30.0/24\n" in partners
    assert "unconfirmed: RelayIpList has 2 different masks" in r.stderr


def test_adsutil_text_cannot_carry_relay_list_and_says_so():
    r = run_import(DATA / "adsutil-enum-all.txt")
    assert re.search(r"not carried: RelayIpList \(binary, not printed by "
                     r"adsutil.vbs\): adsutil.vbs does not print", r.stderr)
    assert "WARNING: RelayIpList was not carried: the relay is closed" in \
        r.stderr


# ---------------------------------------------------------------------------
# Bad input: an error with a line number, non-zero exit, no output.

def test_truncated_file_gives_its_line():
    r = run_import(DATA / "truncated.xml")
    assert r.returncode == 1
    assert r.stdout == ""
    assert re.search(r"truncated\.xml:73:1: error: bad XML: unclosed token "
                     r"\(the file ends at line 78: truncated\?\)", r.stderr), \
        r.stderr


def test_not_a_metabase_is_refused():
    r = run_import(DATA / "not-a-metabase.xml")
    assert r.returncode == 1 and r.stdout == ""
    assert "not-a-metabase.xml:1: error: not an IIS metabase" in r.stderr


BAD = [
    ("mismatched", '<?xml version="1.0"?>\n<configuration>\n<MBProperty>\n'
     '<IIsSmtpServer Location="/LM/SmtpSvc/1">\n</IIsSmtpService>\n', 5,
     "mismatched tag"),
    ("doctype", '<?xml version="1.0"?>\n<!DOCTYPE configuration [\n'
     '<!ENTITY a "aaaa">]>\n<configuration><MBProperty/></configuration>\n',
     2, "DOCTYPE is not allowed"),
    ("no-smtp", '<?xml version="1.0"?>\n<configuration><MBProperty>\n'
     '<IIsWebServer Location="/LM/W3SVC/1" ServerBindings=":80:"/>\n'
     '</MBProperty></configuration>\n', None, "no SMTP virtual server"),
    ("empty", "", 1, "empty file"),
    ("enum-p", "[/SmtpSvc/1]\n[/SmtpSvc/1/Domain]\n[/SmtpSvc/1/Sessions]\n",
     1, 'this is what "adsutil.vbs ENUM /P" prints'),
    ("text", "hello\nworld\n", 1, "not an IIS metabase"),
    ("bad-utf16", "\ufeff<configuration>", None, None),
]


@pytest.mark.parametrize("name,text,line,what", BAD, ids=[b[0] for b in BAD])
def test_bad_input(tmp_path, name, text, line, what):
    f = tmp_path / (name + ".xml")
    if name == "bad-utf16":
        f.write_bytes(b"\xff\xfe<\x00c\x00\x00\xd8")   # a lone surrogate
        line, what = 1, "not valid utf-16"
    else:
        f.write_text(text)
    r = run_import(f)
    assert r.returncode == 1, r.stdout
    assert r.stdout == ""
    pos = ":%d:" % line if line else ": "
    assert re.search(r"%s%s.*error: .*%s" % (re.escape(name + ".xml"),
                                             re.escape(pos),
                                             re.escape(what)), r.stderr), \
        r.stderr


# ---------------------------------------------------------------------------
# The IP list decoders.

# Public samples (IIS-MODEL.md section 4).
SALT_127 = bytes(int(x) for q in (
    "24.0.0.128 32.0.0.128 60.0.0.128 68.0.0.128 1.0.0.0 76.0.0.0 0.0.0.0 "
    "0.0.0.0 1.0.0.0 1.0.0.0 2.0.0.0 2.0.0.0 4.0.0.0 0.0.0.0 76.0.0.128 "
    "0.0.0.0 0.0.0.0 0.0.0.0 0.0.0.0 255.255.255.255 127.0.0.1").split()
    for x in q.split("."))
PS_EMPTY = bytes([24, 0, 0, 128, 32, 0, 0, 128, 60, 0, 0, 128, 68, 0, 0, 128,
                  1, 0, 0, 0, 76, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                  0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0,
                  76, 0, 0, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                  0, 255, 255, 255, 255])


def test_public_samples_decode_and_encode_byte_for_byte():
    lst = imp.decode_iplist(SALT_127)
    assert not lst.default_allow
    assert [str(n) for n in lst.networks] == ["127.0.0.1/32"]
    assert imp.encode_iplist(False, [(32, ["127.0.0.1"])]) == SALT_127
    lst = imp.decode_iplist(PS_EMPTY)
    assert not lst.default_allow and lst.networks == []
    assert imp.encode_iplist(False, [(32, [])]) == PS_EMPTY
    # A deny list begins as the audit script quoted in IIS-MODEL.md shows.
    deny = imp.encode_iplist(True, [(32, ["192.168.171.1", "192.168.171.2"])])
    assert deny.hex().startswith("18000080340000803c")
    assert deny.hex().endswith("ffffffffc0a8ab01c0a8ab02")
    assert imp.decode_iplist(b"").default_allow


ipv4 = st.integers(min_value=0, max_value=2 ** 32 - 1).map(
    lambda v: str(ipaddress.IPv4Address(v)))
FAST = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=400))
def test_random_blobs_never_crash(blob):
    try:
        lst = imp.decode_iplist(blob, accept_multi=True)
    except imp.BlobError:
        return
    assert all(n.version == 4 for n in lst.networks)


@FAST
@given(st.booleans(), st.integers(0, 32), st.lists(ipv4, max_size=20),
       st.data())
def test_mutated_lists_never_crash(allow, prefix, addrs, data):
    blob = bytearray(imp.encode_iplist(allow, [(prefix, addrs)]))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    try:
        imp.decode_iplist(bytes(blob))
    except imp.BlobError:
        pass


@FAST
@given(st.booleans(), st.lists(st.tuples(st.integers(0, 32),
                                         st.lists(ipv4, max_size=8)),
                               min_size=1, max_size=4))
def test_encoded_lists_decode_to_themselves(allow, groups):
    blob = imp.encode_iplist(allow, groups)
    lst = imp.decode_iplist(blob, accept_multi=True)
    want = [ipaddress.IPv4Network((a, p), strict=False)
            for p, addrs in groups for a in addrs]
    assert lst.networks == want
    assert lst.default_allow == allow or not any(a for _, a in groups)
    if len(groups) == 1:
        assert imp.decode_iplist(blob).networks == want
    else:
        with pytest.raises(imp.BlobError):
            imp.decode_iplist(blob)
    assert imp.decode_iplist(imp.hex_blob(blob.hex()),
                             accept_multi=True).networks == want


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200), st.text(max_size=40))
def test_importer_survives_random_values(tmp_path, blob, text):
    mb = (DATA / "default-install.xml").read_text()
    esc = (text.replace("&", "&amp;").replace('"', "&quot;")
           .replace("<", "&lt;"))
    esc = "".join(c for c in esc if c in "\t\n" or 0x20 <= ord(c) < 0xd800)
    mb = re.sub(r'RelayIpList="[0-9a-f]*"', 'RelayIpList="%s"' % blob.hex(),
                mb)
    for prop in ("SendNdrTo", "SmartHost", "MaxMessageSize",
                 "FullyQualifiedDomainName"):
        mb = mb.replace('<IIsSmtpServer\tLocation ="/LM/SmtpSvc/1"',
                        '<IIsSmtpServer\tLocation ="/LM/SmtpSvc/1"\n\t\t'
                        '%s="%s"' % (prop, esc), 1)
    f = tmp_path / "random.xml"
    f.write_text(mb)
    r = run_import(f)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "RelayIpList" in r.stderr


# ---------------------------------------------------------------------------
# The worked example of mailroot-migrate(7), run: the imported LAN relay
# serves mail, with the one line the guide's administrator adds.

def test_worked_example_runs(workdir, sink):
    d = mh.Mailroot(workdir, name="smtpsvc1")
    r = run_import(DATA / "lan-relay.xml", "--mailroot-base", str(workdir),
                   "--conf-dir", str(workdir / "etc"))
    assert r.returncode == 0, r.stderr
    assert 'mailroot "%s"' % d.mailroot in r.stdout
    # On this host: the test's port instead of 192.168.10.5:25 and
    # 127.0.0.1:25, the sink as the smart host, the harness's chroot, and
    # this host allowed to relay (the application server of the guide).
    text = re.sub(r"^\tlisten .*\n", "", r.stdout, flags=re.M)
    text = text.replace('\tmailroot "', '\tlisten 127.0.0.1:%d\n\tmailroot "'
                        % d.port, 1)
    assert 'smart-host "[10.1.1.25]"' in text
    text = text.replace('smart-host "[10.1.1.25]"',
                        'smart-host "[127.0.0.1]:%d"' % sink.port)
    text = text.replace("\trelay allow 192.168.10.0/24\n",
                        "\trelay allow 127.0.0.1\n"
                        "\trelay allow 192.168.10.0/24\n", 1)
    d.conf.write_text('chroot "%s"\n' % d.chroot + text)
    d.start()
    try:
        msg = mh.crlf("From: app@mailgw.fabrikam.local\nSubject: imported\n"
                      "\nfrom the worked example\n")
        assert mh.send(d.port, "app@mailgw.fabrikam.local",
                       ["someone@example.org"], msg) == {}
        got = sink.wait_for(1)
        assert got[0].rcpt_tos == ["someone@example.org"]
        assert mh.send(d.port, "app@example.org",
                       ["postmaster@mailgw.fabrikam.local"], msg) == {}
        drop = d.wait_drop(1)
        assert b"x-receiver: postmaster@mailgw.fabrikam.local" in \
            drop[0].read_bytes().lower()
    finally:
        problems = d.stop()
    assert not problems, problems


def test_worked_example_in_the_guide_is_the_importers_output():
    """mailroot-migrate(7) shows the test metabase and what the importer
    makes of it: both must stay true."""
    guide = (mh.SRCDIR / "man" / "mailroot-migrate.7").read_text()
    xml = (DATA / "lan-relay.xml").read_text()
    for prop in ("IPSecurity", "RelayIpList"):
        shown_ = re.search(prop + r'="([0-9a-f\s]+)"', guide).group(1)
        assert re.sub(r"\s", "", shown_) == re.search(
            prop + r'="([0-9a-f]+)"', xml).group(1)
    block = re.search(r'^server "LAN relay" \{\n.*?^\}\n', guide,
                      re.M | re.S).group(0).replace("\\e", "\\")
    conf = (DATA / "lan-relay.conf").read_text()
    mine = statements(conf)
    shown_st = statements(block)
    assert shown_st and all(s in mine for s in shown_st), \
        [s for s in shown_st if s not in mine]
    assert [s for s in mine if s in shown_st] == shown_st
