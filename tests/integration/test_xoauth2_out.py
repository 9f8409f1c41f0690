"""
AUTH XOAUTH2 from deliverd to a smart host or route: a receiver
(aiosmtpd) that offers only XOAUTH2, checks the exact decoded initial
response (Google's and Microsoft's documented format), and on a wrong
token sends the RFC 7628 JSON error as a 334 challenge, then 535 after
our empty answer.  The token is read from its file at every AUTH: the
file replaced by the administrator's refresher is used at the next
attempt (mailrootctl flush).
"""

import base64
import json
import os
import pwd
import subprocess
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

import mailroot_harness as mh

CTL = mh.BUILDDIR / "tools" / "mailrootctl"
SENDER = "sender@local.test"
USER = "relay@tenant.example"
GOOD = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJzbXRwIn0.c2ln-_~+/="
ERROR = {"status": "401", "schemes": "bearer",
         "scope": "https://outlook.office.com/SMTP.Send"}


def initial(token):
    return b"user=%s\x01auth=Bearer %s\x01\x01" % (USER.encode(),
                                                   token.encode())


class OAuthSink:
    """An SMTP receiver that offers AUTH XOAUTH2 alone, without TLS, and
    accepts the initial response for USER with the token self.token."""

    def __init__(self):
        self.port = mh.free_port()
        self.token = GOOD
        self.auths = []         # (decoded initial response, answer or None)
        self.messages = []
        self._cond = threading.Condition()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with sink._cond:
                    sink.messages.append((session.authenticated,
                                          list(envelope.rcpt_tos)))
                return "250 2.0.0 Ok"

            async def auth_XOAUTH2(self, server, args):
                got = base64.b64decode(args[1], validate=True) \
                    if len(args) == 2 else b""
                if got == initial(sink.token):
                    sink.auths.append((got, None))
                    return AuthResult(success=True, auth_data=USER)
                answer = await server.challenge_auth(json.dumps(ERROR))
                sink.auths.append((got, answer))
                return AuthResult(success=False, handled=False,
                                  message="535 5.7.3 Authentication "
                                  "unsuccessful")

        self._c = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                             auth_require_tls=False, auth_required=True,
                             auth_exclude_mechanism=["PLAIN", "LOGIN"],
                             ready_timeout=10.0)

    def start(self):
        self._c.start()
        return self

    def stop(self):
        self._c.stop()

    def wait_for(self, n, timeout=60.0):
        return mh.wait_until(lambda: len(self.messages) >= n, timeout, 0.05)


@pytest.fixture
def oauth_sink():
    s = OAuthSink().start()
    yield s
    s.stop()


def token_file(workdir, text, name="relay.token"):
    """Writes the token file as a refresher would: a new file renamed
    over the old one, readable by deliverd's user alone."""
    d = workdir / "secrets"
    d.mkdir(exist_ok=True)
    p, tmp = d / name, d / (name + ".new")
    tmp.write_text(text)
    os.chmod(tmp, 0o400)
    if mh.IS_ROOT:
        os.chown(tmp, pwd.getpwnam(mh.USERS["deliverd"]).pw_uid, -1)
        os.chmod(d, 0o755)
    os.replace(tmp, p)
    return p


def message():
    return mh.crlf("From: %s\nSubject: xoauth2\n\nbody\n" % SENDER)


def log_has(mr, text, timeout=60.0):
    assert mh.wait_until(lambda: text in mr.log_text(), timeout, 0.1), \
        "no log line with %r in:\n%s" % (text, mr.log_text())


def smart_host(sink, tok, tls="tls none; "):
    return ('    delivery { smart-host "[127.0.0.1]:%d"\n'
            '        outbound { %sauth xoauth2 "%s" token-file "%s" } }'
            % (sink.port, tls, USER, tok))


def test_xoauth2_to_smart_host(start_mailroot, workdir, oauth_sink):
    tok = token_file(workdir, GOOD + "  \nsecond line ignored\n")
    mr = start_mailroot(server_extra=smart_host(oauth_sink, tok))
    mh.send(mr.port, SENDER, ["u@remote.test"], message())
    assert oauth_sink.wait_for(1), (oauth_sink.auths, mr.log_text())
    assert oauth_sink.auths == [(initial(GOOD), None)]
    assert oauth_sink.messages == [(True, ["u@remote.test"])]
    mr.wait_queue_empty()


def test_xoauth2_on_route(start_mailroot, workdir, oauth_sink):
    tok = token_file(workdir, GOOD)
    mr = start_mailroot(server_extra=(
        '    domain "routed.test" remote {\n'
        '        route "[127.0.0.1]:%d"; tls none\n'
        '        auth xoauth2 "%s" token-file "%s" }'
        % (oauth_sink.port, USER, tok)))
    mh.send(mr.port, SENDER, ["u@routed.test"], message())
    assert oauth_sink.wait_for(1), (oauth_sink.auths, mr.log_text())
    assert oauth_sink.auths == [(initial(GOOD), None)]


def test_refused_token_stays_queued_until_refreshed(start_mailroot, workdir,
                                                    oauth_sink):
    tok = token_file(workdir, "expired.token\n")
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755)
    sock = rundir / "control"
    mr = start_mailroot(
        server_extra=smart_host(oauth_sink, tok),
        global_extra='control-socket "%s"\ncontrol-group "mailroot"' % sock)
    mh.send(mr.port, SENDER, ["u@remote.test"], message())
    # 334 with the JSON error, our empty answer, then 535: refused, kept
    log_has(mr, "refused the XOAUTH2 access token of %s from token-file "
            "%s (status 401): 535" % (USER, tok))
    log_has(mr, "status=deferred")
    assert oauth_sink.auths == [(initial("expired.token"), b"")]
    assert oauth_sink.messages == []
    assert mr.queue_files(), "the message left the queue"
    assert mr.drop_files() == [], "a DSN was sent for a refused token"
    # the refresher writes a new token; the next attempt reads it
    oauth_sink.token = "fresh.token"
    token_file(workdir, "fresh.token\n")
    proc = subprocess.run([str(CTL), "-s", str(sock), "flush"],
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert oauth_sink.wait_for(1), (oauth_sink.auths, mr.log_text())
    assert oauth_sink.auths[-1] == (initial("fresh.token"), None)
    assert oauth_sink.messages == [(True, ["u@remote.test"])]
    mr.wait_queue_empty()


def test_no_token_without_tls(start_mailroot, workdir, oauth_sink):
    # tls opportunistic (the default) and no STARTTLS offered
    tok = token_file(workdir, GOOD)
    mr = start_mailroot(server_extra=smart_host(oauth_sink, tok, tls=""))
    mh.send(mr.port, SENDER, ["u@remote.test"], message())
    log_has(mr, "needs TLS, which it did not offer")
    log_has(mr, "status=deferred")
    assert oauth_sink.auths == [] and oauth_sink.messages == []


@pytest.mark.parametrize("case", ["symlink", "control", "empty"])
def test_unusable_token_file_is_not_sent(start_mailroot, workdir,
                                         oauth_sink, case):
    real = token_file(workdir, {"symlink": GOOD, "control": "ab\x01cd\n",
                                "empty": "\n"}[case], name="real.token")
    tok = real
    if case == "symlink":
        tok = workdir / "secrets" / "link.token"
        os.symlink(real, tok)
    mr = start_mailroot(server_extra=smart_host(oauth_sink, tok))
    mh.send(mr.port, SENDER, ["u@remote.test"], message())
    log_has(mr, "cannot use token-file %s: " % tok)
    log_has(mr, "status=deferred")
    assert oauth_sink.auths == [] and oauth_sink.messages == []
    assert mr.queue_files()
