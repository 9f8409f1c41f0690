"""
The open-relay battery: address forms that have fooled MTAs into relaying,
sent by a client that may not relay (127.0.0.2; the relay list holds
127.0.0.1 only) to a server whose smart host is a sink.

Each form must end in one of three ways: refused as relay (550 5.7.1),
refused as bad syntax (a 5xx with a 5.1.x/5.5.x/5.6.x status), or
accepted as a local part at a local domain, in which case the message goes
to Drop addressed to that local domain.  The sink must receive nothing.
A positive control (the same server relaying for 127.0.0.1) proves that
the sink path works, so an empty sink means "not relayed", not "broken".
"""

import pytest

import mailroot_harness as mh
from test_smtp_session import Client, message, parse_drop

UNTRUSTED = "127.0.0.2"
LOCAL = "local.test"

RELAY = "relay"         # 550 5.7.1
SYNTAX = "syntax"       # another 5xx: the address is malformed
LOCAL_PART = "local"    # 250: a local part at local.test, kept local

# (what the client writes after "RCPT TO:", the acceptable outcomes)
FORMS = [
    ("<victim@remote.example>", {RELAY}),
    ("<VICTIM@REMOTE.EXAMPLE>", {RELAY}),
    ("<victim@remote.example.>", {RELAY, SYNTAX}),
    ("<victim%remote.example@local.test>", {LOCAL_PART, SYNTAX}),
    ("<victim%remote.example@LOCAL.TEST>", {LOCAL_PART, SYNTAX}),
    ("<remote.example!victim@local.test>", {LOCAL_PART, SYNTAX}),
    ('<"victim@remote.example"@local.test>', {LOCAL_PART, SYNTAX}),
    ('<"victim%remote.example"@local.test>', {LOCAL_PART, SYNTAX}),
    ("<@local.test:victim@remote.example>", {RELAY, SYNTAX}),
    ("<@local.test,@mx.test.example:victim@remote.example>",
     {RELAY, SYNTAX}),
    ("<@remote.example:victim@local.test>", {LOCAL_PART, SYNTAX}),
    ("<victim@remote.example@local.test>", {SYNTAX}),
    ("<victim@local.test@remote.example>", {SYNTAX}),
    ("<victim@remote.example%local.test>", {SYNTAX, RELAY}),
    ("<victim@local.test.remote.example>", {RELAY}),
    ("<victim@evillocal.test>", {RELAY}),
    ("<victim@sub.local.test>", {RELAY}),
    ("<victim@local.test.>", {RELAY, SYNTAX, LOCAL_PART}),
    ("<victim@[127.0.0.1]>", {RELAY, SYNTAX}),
    ("<victim@[127.0.0.2]>", {RELAY, SYNTAX}),
    ("<victim@[IPv6:::1]>", {RELAY, SYNTAX}),
    ("<victim@[10.1.2.3]>", {RELAY, SYNTAX}),
    ("victim@remote.example", {RELAY, SYNTAX}),
    ("<victim@remote.example >", {RELAY, SYNTAX}),
    ("< victim@remote.example>", {RELAY, SYNTAX}),
    ("<remote.example!victim>", {SYNTAX}),
    ('<"victim@remote.example">', {SYNTAX}),
    ("<victim>", {SYNTAX}),
    ("<victim@remote.example> NOTIFY=NEVER", {RELAY, SYNTAX}),
    ("<victim@remote.example\\@local.test>", {SYNTAX}),
    ("<victim@l\u043ecal.test>", {SYNTAX}),  # Cyrillic o, no SMTPUTF8
    ("<victim@remote.example\x00@local.test>", {SYNTAX}),
    ("<victim@remote.example,victim@local.test>", {SYNTAX}),
    ("<victim@local.test>,<victim@remote.example>", {SYNTAX}),
]


def classify(code, texts):
    status = texts[-1].split(" ", 1)[0] if texts else ""
    if code == 250:
        return LOCAL_PART
    if code == 550 and status == "5.7.1":
        return RELAY
    if 500 <= code < 600 and status[:4] in ("5.1.", "5.5.", "5.6."):
        return SYNTAX
    return "%d %s" % (code, status)


def try_form(port, rcpt, sender="<someone@client.test>"):
    """One session from the untrusted address: MAIL, the RCPT under
    test, and DATA when it was accepted.  Returns the outcome."""
    with Client(port, UNTRUSTED) as c:
        c.expect(220)
        c.expect(250, None, "EHLO client.test")
        c.expect(250, "2.1.0", "MAIL FROM:" + sender)
        code, texts = c.cmd(("RCPT TO:" + rcpt).encode("utf-8"))
        outcome = classify(code, texts)
        if outcome == LOCAL_PART:
            c.expect(354, None, "DATA")
            c.send(message("relay battery") + b".\r\n")
            c.expect(250, "2.0.0")
        c.expect(221, "2.0.0", "QUIT")
        return outcome, code, texts


def test_no_form_relays(start_mailroot, sink):
    mr = start_mailroot(sink=sink, relay_allow=("127.0.0.1",))
    wrong, accepted = [], 0
    for rcpt, allowed in FORMS:
        outcome, code, texts = try_form(mr.port, rcpt)
        if outcome not in allowed:
            wrong.append("%r: %d %r (allowed: %s)" % (
                rcpt, code, texts, sorted(allowed)))
        accepted += outcome == LOCAL_PART
    assert not wrong, "\n".join(wrong)
    assert len(FORMS) >= 30

    # Every accepted form went to Drop, addressed to the local domain.
    drops = mr.wait_drop(accepted) if accepted else []
    for f in drops:
        _, receivers, _ = parse_drop(f.read_bytes())
        for r in receivers:
            assert r.lower().endswith("@" + LOCAL), (f, receivers)
    # The sink is where a relayed message would arrive: a control
    # message from the trusted address proves it is listening, and it
    # must be the only one there.
    mh.send(mr.port, "control@client.test", ["control@remote.example"],
            message("control"))
    assert mh.wait_until(lambda: len(sink.messages) >= 1, 60), \
        "the control message never reached the sink"
    assert [m.rcpt_tos for m in sink.messages] == [["control@remote.example"]]


def test_local_sender_does_not_grant_relay(start_mailroot, sink):
    """A forged local sender (MAIL FROM a local domain) is no key."""
    mr = start_mailroot(sink=sink, relay_allow=("127.0.0.1",))
    for sender in ("<postmaster@local.test>", "<>", "<user@LOCAL.TEST>",
                   "<user@mx.test.example>"):
        outcome, code, texts = try_form(mr.port, "<victim@remote.example>",
                                        sender)
        assert outcome == RELAY, (sender, code, texts)


@pytest.mark.parametrize("kind", ["remote-no-relay", "no-domain"])
def test_remote_domain_without_relay(start_mailroot, sink, kind):
    """A `remote` domain is routed, not open: relay to it needs `relay
    yes` (then it is allowed from anyone, as IIS's 'allow incoming mail
    to be relayed to this domain')."""
    extra = ('    domain "partner.example" remote { relay yes }\n'
             '    domain "other.example" remote')
    mr = start_mailroot(sink=sink, relay_allow=("127.0.0.1",),
                        server_extra=extra)
    rcpt = ("<victim@other.example>" if kind == "remote-no-relay"
            else "<victim@unlisted.example>")
    outcome, code, texts = try_form(mr.port, rcpt)
    assert outcome == RELAY, (code, texts)
    outcome, code, texts = try_form(mr.port, "<user@partner.example>")
    assert outcome == LOCAL_PART, (code, texts)
    assert mh.wait_until(lambda: len(sink.messages) >= 1, 60)
    assert [m.rcpt_tos for m in sink.messages] == [["user@partner.example"]]
