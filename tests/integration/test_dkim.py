"""
DKIM signing (RFC 6376; Ed25519, RFC 8463): queued signs each message once,
when it commits it, with the key of the From field's domain.  Every
signature is checked by an independent verifier, Debian's python3-dkim
(dkimpy), given the public key tools/mailroot-dkim-keygen printed instead
of a DNS lookup: RSA and Ed25519, relaxed and simple canonicalization,
through SMTP with 8-bit content, Pickup and mailroot-sendmail.  A changed
header field fails verification (the verifier can say no), a domain
without a key goes unsigned, and mailrootd -n names a bad key at its line.
One daemon serves the whole module.
"""

import os
import re
import smtplib
import subprocess
import uuid
from pathlib import Path

import pytest

import mailroot_harness as mh

dkim = pytest.importorskip("dkim")

KEYGEN = mh.SRCDIR / "tools" / "mailroot-dkim-keygen"
SENDMAIL = mh.BUILDDIR / "tools" / "mailroot-sendmail"
WAIT = 120
RCPT = "rcpt@remote.example"

# domain: (key type, selector, canonicalization or None for the default)
DOMAINS = {
    "rsa-relaxed.test": ("rsa", "r1", None),
    "rsa-simple.test": ("rsa", "r2", "simple/simple"),
    "ed-relaxed.test": ("ed25519", "e1", "relaxed/relaxed"),
    "ed-simple.test": ("ed25519", "e2", "simple/simple"),
}


def keygen(keydir, domain, typ, selector):
    """A key from mailroot-dkim-keygen; the TXT record's text it printed."""
    key = keydir / ("%s.key" % domain)
    p = subprocess.run([str(KEYGEN), "-t", typ, "-o", str(key), domain,
                        selector], capture_output=True, text=True,
                       timeout=60, check=True)
    assert p.stdout.startswith("%s._domainkey.%s. IN TXT (" % (selector,
                                                                domain))
    txt = "".join(re.findall(r'"([^"]*)"', p.stdout))
    assert txt.startswith("v=DKIM1; k=%s; p=" % typ), txt
    return key, txt.encode()


# both.test has two blocks, RSA and Ed25519 (RFC 8463 2): two signatures
BOTH = (("both.test", "rsa", "br"), ("both.test", "ed25519", "be"))


class Env:
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("dkim")
    mh.make_traversable(work)
    keydir = work / "keys"
    keydir.mkdir(mode=0o755)
    e = Env()
    e.txt = {}
    blocks = []
    for domain, (typ, sel, canon) in DOMAINS.items():
        key, txt = keygen(keydir, domain, typ, sel)
        e.txt[("%s._domainkey.%s." % (sel, domain)).encode()] = txt
        blocks.append('    dkim "%s" {\n        selector "%s"\n'
                      '        key "%s"\n%s    }' % (
                          domain, sel, key,
                          '        canonicalization %s\n' % canon
                          if canon else ""))
        mode = os.stat(key).st_mode & 0o777
        assert mode == 0o600, oct(mode)
    for domain, typ, sel in BOTH:
        key, txt = keygen(keydir, "%s.%s" % (sel, domain), typ, sel)
        e.txt[("%s._domainkey.%s." % (sel, domain)).encode()] = txt
        blocks.append('    dkim "%s" {\n        selector "%s"\n'
                      '        key "%s"\n    }' % (domain, sel, key))
    e.sink = mh.Sink().start()
    sock = work / "run" / "submit"
    e.d = mh.Mailroot(work, name="dkim", sink_port=e.sink.port,
                      server_extra="\n".join(blocks),
                      global_extra='submit-socket "%s"' % sock)
    e.sock = sock
    e.d.start()
    e.work = work
    e.keydir = keydir
    yield e
    problems = e.d.stop()
    e.sink.stop()
    assert not problems, problems


def dnsfunc(e):
    def lookup(name, timeout=5):
        return e.txt.get(name if name.endswith(b".") else name + b".")
    return lookup


def arrived(e, token):
    """The message whose Subject holds token, once the sink has it."""
    def find():
        for m in e.sink.messages:
            if token.encode() in m.data:
                return m
        return None
    m = mh.wait_until(find, WAIT, 0.05)
    assert m, "message %s did not reach the sink\n%s" % (
        token, e.d.log_text()[-3000:])
    return m


def signature(data):
    head = data.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"^DKIM-Signature:(.*?)\r\n(?![ \t])", head,
                  re.S | re.M | re.I)
    return m and m.group(1)


def message(domain, token, body):
    """Header fields with odd white space and a folded Subject, so that
    relaxed and simple differ."""
    return ("From: Sender  Name <sender@%s>\r\nTo: <%s>\r\n"
            "Subject:  test   %s\r\n\tfolded  \r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" % (domain, RCPT,
                                                         token)
            ).encode() + body


BODY = ("Gr\u00fc\u00dfe aus K\u00f6ln  \r\n\ttabbed   line\t\r\n\r\n"
        "last\r\n\r\n\r\n").encode()


def check_signed(e, data, domain):
    typ, sel, canon = DOMAINS[domain]
    sig = signature(data)
    assert sig is not None, "no DKIM-Signature:\n%r" % data[:800]
    tags = dict(t.strip().split("=", 1) for t in
                re.sub(rb"\s+", b"", sig).decode().split(";") if t)
    assert tags["d"] == domain and tags["s"] == sel
    assert tags["a"] == ("rsa-sha256" if typ == "rsa" else "ed25519-sha256")
    assert tags["c"] == (canon or "relaxed/relaxed")
    # From is signed once more than it occurs (RFC 6376 5.4.2)
    assert tags["h"].lower().split(":").count("from") == 2, tags["h"]
    assert dkim.verify(data, dnsfunc=dnsfunc(e)), data[:1500]
    # the verifier can fail: a changed Subject does
    bad = re.sub(rb"Subject:  test", b"Subject:  TEST", data, count=1)
    assert bad != data
    assert not dkim.verify(bad, dnsfunc=dnsfunc(e))
    # ... and so does a second From field added above the signed one
    added = b"From: evil@" + domain.encode() + b"\r\n" + data
    assert not dkim.verify(added, dnsfunc=dnsfunc(e))


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_smtp_8bit_signed(env, domain):
    token = uuid.uuid4().hex
    with smtplib.SMTP("127.0.0.1", env.d.port, timeout=WAIT) as s:
        s.ehlo("client.test")
        assert s.sendmail("sender@" + domain, [RCPT],
                          message(domain, token, BODY),
                          mail_options=["BODY=8BITMIME"]) == {}
    m = arrived(env, token)
    assert "K\u00f6ln".encode() in m.data        # 8-bit kept
    check_signed(env, m.data, domain)
    assert m.data.count(b"DKIM-Signature:") == 1


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_pickup_signed(env, domain):
    token = uuid.uuid4().hex
    pickup = env.d.dir("Pickup")
    tmp = pickup / (".%s" % token)
    # a plain RFC 5322 file with LF line ends, as applications write
    tmp.write_bytes(message(domain, token, BODY).replace(b"\r\n", b"\n"))
    os.rename(tmp, pickup / token)
    m = arrived(env, token)
    check_signed(env, m.data, domain)


def test_sendmail_signed(env):
    domain = "ed-relaxed.test"
    token = uuid.uuid4().hex
    p = subprocess.run([str(SENDMAIL), "-C", str(env.d.conf), "-i",
                        RCPT],
                       input=message(domain, token, b"hello\n"),
                       capture_output=True, timeout=WAIT)
    assert p.returncode == 0, p.stderr
    m = arrived(env, token)
    check_signed(env, m.data, domain)


def test_long_lines_signed_as_sent(env):
    """deliverd folds lines longer than 998 octets (RFC 5321 4.5.3.1.6):
    the message is signed, and stored, in that form, so the signature
    holds at the next hop; so do a bare LF and a bare CR from a Pickup
    file."""
    token = uuid.uuid4().hex
    domain = "rsa-simple.test"
    body = b"<html>" + b"x" * 3000 + b"</html>\r\nshort\r\n"
    data = message(domain, token, body).replace(
        b"MIME-Version", b"X-Long: " + b"y " * 700 + b"\r\nMIME-Version")
    mh.send(env.d.port, "sender@" + domain, [RCPT], data)
    m = arrived(env, token)
    assert max(len(x) for x in m.data.split(b"\r\n")) <= 998
    check_signed(env, m.data, domain)
    token = uuid.uuid4().hex
    pickup = env.d.dir("Pickup")
    (pickup / ("." + token)).write_bytes(
        message("ed-simple.test", token, b"a\rb\nc").replace(b"\r\n",
                                                              b"\n"))
    os.rename(pickup / ("." + token), pickup / token)
    m = arrived(env, token)
    check_signed(env, m.data, "ed-simple.test")


def test_two_keys_two_signatures(env):
    token = uuid.uuid4().hex
    mh.send(env.d.port, "sender@both.test", [RCPT],
            message("both.test", token, BODY))
    m = arrived(env, token)
    assert m.data.count(b"DKIM-Signature:") == 2
    d = dkim.DKIM(m.data)
    assert d.verify(idx=0, dnsfunc=dnsfunc(env))
    assert d.verify(idx=1, dnsfunc=dnsfunc(env))
    sigs = re.findall(rb"^DKIM-Signature: v=1; a=([a-z0-9-]+);.*? s=(\w+);",
                      m.data, re.M)
    assert sigs == [(b"rsa-sha256", b"br"), (b"ed25519-sha256", b"be")]
    bad = m.data.replace(b"Subject:  test", b"Subject:  TEST", 1)
    for i in (0, 1):
        assert not dkim.DKIM(bad).verify(idx=i, dnsfunc=dnsfunc(env))


def test_domain_without_key_unsigned(env):
    token = uuid.uuid4().hex
    mh.send(env.d.port, "sender@nokey.test", [RCPT],
            message("nokey.test", token, b"plain\r\n"))
    m = arrived(env, token)
    assert signature(m.data) is None
    # a message with two From fields is not signed either (RFC 5322 3.6)
    token = uuid.uuid4().hex
    two = b"From: a@rsa-relaxed.test\r\n" + message("rsa-relaxed.test",
                                                     token, b"x\r\n")
    mh.send(env.d.port, "sender@rsa-relaxed.test", [RCPT], two)
    m = arrived(env, token)
    assert signature(m.data) is None
    assert "DKIM-Signature d=rsa-relaxed.test" in env.d.log_text()


def test_key_readable_only_by_queue_user(env):
    """The key is the queue user's alone: smtpd's and deliverd's users
    cannot read it."""
    if not mh.IS_ROOT:
        pytest.skip("needs the system users")
    key = env.keydir / "rsa-relaxed.test.key"
    for user in ("mailroot-smtpd", "mailroot-deliver"):
        p = subprocess.run(["runuser", "-u", user, "--", "cat", str(key)],
                           capture_output=True, timeout=30)
        assert p.returncode != 0 and b"Permission denied" in p.stderr
    p = subprocess.run(["runuser", "-u", "mailroot", "--", "head", "-c",
                        "5", str(key)], capture_output=True, timeout=30)
    assert p.returncode == 0 and p.stdout == b"-----"


def check_conf(work, body):
    conf = work / "check.conf"
    conf.write_text(mh.config_text(25, work / "mr", server_extra=body))
    return conf, mh.run_mailrootd("-n", "-f", conf)


def test_bad_keys_reported_at_their_line(env):
    short = env.work / "short.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:1024", "-out", str(short)],
                   check=True, capture_output=True, timeout=60)
    conf, p = check_conf(env.work, 'dkim "a.test" {\n selector "s"\n'
                         ' key "%s"\n}\ndkim "b.test" {\n selector "s"\n'
                         ' key "/nonexistent/k.pem"\n}' % short)
    assert p.returncode != 0
    lines = conf.read_text().split("\n")
    la = 1 + next(i for i, t in enumerate(lines) if '"a.test"' in t)
    lb = 1 + next(i for i, t in enumerate(lines) if '"b.test"' in t)
    assert "%s:%d: dkim \"a.test\":" % (conf, la) in p.stderr, p.stderr
    assert "2048 at least" in p.stderr
    assert "%s:%d: dkim \"b.test\":" % (conf, lb) in p.stderr
    assert "No such file" in p.stderr
    # a good one passes, and -P prints it back
    good = env.keydir / "ed-simple.test.key"
    conf, p = check_conf(env.work, 'dkim "c.test" {\n selector "s"\n'
                         ' key "%s"\n canonicalization relaxed/simple\n'
                         ' headers from to subject\n}' % good)
    assert p.returncode == 0, p.stderr
    p = mh.run_mailrootd("-P", "-f", conf)
    assert 'dkim "c.test" {' in p.stdout
    assert "canonicalization relaxed/simple" in p.stdout
    assert 'headers "from" "to" "subject"' in p.stdout
    # syntax errors
    conf, p = check_conf(env.work, 'dkim "d.test" {\n selector "s"\n'
                         ' canonicalization loose\n}')
    assert p.returncode != 0
    assert "bad canonicalization" in p.stderr
    assert 'dkim "d.test" has no key' in p.stderr
    conf, p = check_conf(env.work, ('dkim "e.test" {\n selector "s"\n'
                                    ' key "%s"\n}\n' % good) * 2)
    assert p.returncode != 0
    assert 'duplicate dkim "e.test" selector "s"' in p.stderr
