"""
AUTH PLAIN and LOGIN from deliverd to a smart host or route (RFC 4954):
a receiver (aiosmtpd) that offers AUTH and checks the credentials, a
password file readable by deliverd's user, a 535 that keeps the mail
queued, and no password sent where TLS was expected but not offered.
"""

import os
import pwd
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

import mailroot_harness as mh

SENDER = "sender@local.test"
USER, PASSWORD = "relay-user", "s3cret pass"


class AuthSink:
    """An SMTP receiver that offers AUTH PLAIN LOGIN without TLS and
    accepts mail only from USER/PASSWORD."""

    def __init__(self):
        self.port = mh.free_port()
        self.logins = []            # (mechanism, login, password, ok)
        self.messages = []
        self._cond = threading.Condition()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with sink._cond:
                    sink.messages.append((session.authenticated,
                                          list(envelope.rcpt_tos)))
                    sink._cond.notify_all()
                return "250 2.0.0 Ok"

        def authenticator(server, session, envelope, mechanism, data):
            login = data.login.decode()
            password = data.password.decode()
            ok = (login, password) == (USER, PASSWORD)
            self.logins.append((mechanism, login, password, ok))
            return AuthResult(success=ok, handled=False)

        self._c = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                             authenticator=authenticator,
                             auth_require_tls=False, auth_required=True,
                             ready_timeout=10.0)

    def start(self):
        self._c.start()
        return self

    def stop(self):
        self._c.stop()

    def wait_for(self, n, timeout=60.0):
        return mh.wait_until(lambda: len(self.messages) >= n, timeout, 0.05)


@pytest.fixture
def auth_sink():
    s = AuthSink().start()
    yield s
    s.stop()


def password_file(workdir, text):
    p = workdir / "secrets" / "relay.pw"
    p.parent.mkdir(exist_ok=True)
    p.write_text(text)
    os.chmod(p, 0o400)
    if mh.IS_ROOT:
        uid = pwd.getpwnam(mh.USERS["deliverd"]).pw_uid
        os.chown(p, uid, -1)
        os.chmod(p.parent, 0o755)
    return p


def message():
    return mh.crlf("From: %s\nSubject: auth\n\nbody\n" % SENDER)


def log_has(mr, text, timeout=60.0):
    assert mh.wait_until(lambda: text in mr.log_text(), timeout, 0.1), \
        "no log line with %r" % text


@pytest.mark.parametrize("mech", ["plain", "login"])
def test_auth_to_smart_host(start_mailroot, workdir, auth_sink, mech):
    pw = password_file(workdir, PASSWORD + "\n")
    mr = start_mailroot(server_extra=(
        '    delivery { smart-host "[127.0.0.1]:%d"\n'
        '        outbound { tls none; auth %s "%s" password-file "%s" } }'
        % (auth_sink.port, mech, USER, pw)))
    mh.send(mr.port, SENDER, ["u@remote.test"], message())
    assert auth_sink.wait_for(1), auth_sink.logins
    assert auth_sink.messages == [(True, ["u@remote.test"])]
    assert auth_sink.logins == [(mech.upper(), USER, PASSWORD, True)]
    mr.wait_queue_empty()


def test_auth_on_route(start_mailroot, workdir, auth_sink):
    pw = password_file(workdir, PASSWORD)
    mr = start_mailroot(server_extra=(
        '    domain "routed.test" remote {\n'
        '        route "[127.0.0.1]:%d"; tls none\n'
        '        auth login "%s" password-file "%s" }'
        % (auth_sink.port, USER, pw)))
    mh.send(mr.port, SENDER, ["u@routed.test"], message())
    assert auth_sink.wait_for(1), auth_sink.logins
    assert auth_sink.messages == [(True, ["u@routed.test"])]


def test_refused_credentials_stay_queued(start_mailroot, workdir, auth_sink):
    pw = password_file(workdir, "wrong\n")
    mr = start_mailroot(server_extra=(
        '    delivery { smart-host "[127.0.0.1]:%d"\n'
        '        outbound { tls none; auth plain "%s" password-file "%s" } }'
        % (auth_sink.port, USER, pw)))
    mh.send(mr.port, SENDER, ["u@remote.test"], message())
    log_has(mr, "refused the credentials of %s (AUTH PLAIN): 535" % USER)
    log_has(mr, "status=deferred")
    assert auth_sink.messages == []
    assert mr.queue_files(), "the message left the queue"
    assert mr.drop_files() == [], "a DSN was sent for refused credentials"


def test_no_password_without_tls(start_mailroot, workdir, auth_sink):
    # tls opportunistic (the default) and no STARTTLS offered: the
    # password is not sent in plain text
    pw = password_file(workdir, PASSWORD)
    mr = start_mailroot(server_extra=(
        '    delivery { smart-host "[127.0.0.1]:%d"\n'
        '        outbound { auth plain "%s" password-file "%s" } }'
        % (auth_sink.port, USER, pw)))
    mh.send(mr.port, SENDER, ["u@remote.test"], message())
    log_has(mr, "needs TLS, which it did not offer")
    log_has(mr, "status=deferred")
    assert auth_sink.logins == [] and auth_sink.messages == []
    assert mr.queue_files()
