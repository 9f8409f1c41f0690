"""
The ESMTP switches of outbound delivery (mailroot.conf(5) `esmtp`, per
remote domain and in the outbound block), against receivers that log
every command:

- `esmtp no` on a route: HELO, never EHLO (IIS "Send HELO instead of
  EHLO");
- a peer that refuses EHLO with 5xx gets HELO on the same connection and
  the mail (RFC 5321 3.2);
- SIZE (RFC 1870): a message larger than the limit the peer advertises
  fails at once, before MAIL, with a delivery status notification naming
  the peer's limit; a smaller one goes with SIZE= on MAIL.
"""

import re

import pytest

import mailroot_harness as mh
from peer_server import PeerServer

SENDER = "sender@local.test"
WAIT = 90.0
SIZE_LIMIT = 20000


class Peer(PeerServer):
    """A receiver on 127.0.0.1 that answers EHLO with ehlo (a list of
    reply lines; the last is the final one) and every other command as
    an accepting server would.  log: each command as received, in order;
    messages: the subjects received."""

    def __init__(self, ehlo):
        super().__init__("127.0.0.1", mh.free_port(), 8)
        self.ehlo = ehlo
        self.log = []
        self.messages = []

    def serve(self, c):
        c.settimeout(60)
        try:
            with c, c.makefile("rb") as f:
                self._session(c, f)
        except OSError:
            pass

    def _session(self, c, f):
        c.sendall(b"220 peer ESMTP\r\n")
        for _ in range(100):
            line = f.readline()
            if not line:
                return
            cmd = line.decode(errors="replace").rstrip("\r\n")
            self.log.append(cmd)
            verb = cmd.split(" ")[0].split(":")[0].upper()
            if verb == "EHLO":
                c.sendall("".join("%s%s%s\r\n" % (r[:3], "-" if i <
                                  len(self.ehlo) - 1 else " ", r[4:])
                                  for i, r in enumerate(self.ehlo))
                          .encode())
            elif verb == "DATA":
                c.sendall(b"354 go\r\n")
                data = b""
                while not data.endswith(b"\r\n.\r\n"):
                    line = f.readline()
                    if not line:
                        return
                    data += line
                m = re.search(rb"^Subject: (\S+)", data, re.M)
                self.messages.append(m.group(1).decode() if m else None)
                c.sendall(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                c.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                c.sendall(b"250 2.0.0 Ok\r\n")


class Env:
    pass


def message(subject, body="body\n"):
    return mh.crlf("From: %s\nSubject: %s\n\n%s" % (SENDER, subject, body))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env()
    wd = tmp_path_factory.mktemp("esmtpout")
    mh.make_traversable(wd)
    e.helo = Peer(["250 peer"])
    e.refuses = Peer(["502 5.5.1 EHLO not implemented"])
    e.sized = Peer(["250 peer", "250 SIZE %d" % SIZE_LIMIT,
                    "250 8BITMIME"])
    peers = (e.helo, e.refuses, e.sized)
    for p in peers:
        p.start()
    e.mr = mh.Mailroot(wd, name="esmtpout", server_extra=(
        '    domain "helo.test" remote { route "[127.0.0.1]:%d"; esmtp no }\n'
        '    domain "refuses.test" remote { route "[127.0.0.1]:%d" }\n'
        '    domain "sized.test" remote { route "[127.0.0.1]:%d" }'
        % (e.helo.port, e.refuses.port, e.sized.port)))
    try:
        e.mr.start()
        yield e
    finally:
        problems = e.mr.stop()
        for p in peers:
            p.stop()
    assert not problems, "%s\n%s" % (problems, e.mr.log_text()[-20000:])


def status_line(mr, rcpt):
    for line in mr.log_text().splitlines():
        if "to=<%s>" % rcpt in line and "status=" in line:
            return line
    return None


def delivered(env, peer, subject, rcpt):
    assert mh.wait_until(lambda: subject in peer.messages, WAIT, 0.1), (
        peer.log, env.mr.log_text()[-5000:])
    line = mh.wait_until(lambda: status_line(env.mr, rcpt), WAIT, 0.1)
    assert line and "status=sent" in line, line


def verbs(log):
    return [c.split(" ")[0].split(":")[0].upper() for c in log]


def test_esmtp_no_sends_helo(env):
    mh.send(env.mr.port, SENDER, ["u@helo.test"], message("helo"))
    delivered(env, env.helo, "helo", "u@helo.test")
    assert verbs(env.helo.log)[:2] == ["HELO", "MAIL"], env.helo.log
    assert env.helo.log[0] == "HELO mx.test.example", env.helo.log
    assert "EHLO" not in verbs(env.helo.log), env.helo.log


def test_helo_after_ehlo_refused(env):
    mh.send(env.mr.port, SENDER, ["u@refuses.test"], message("fallback"))
    delivered(env, env.refuses, "fallback", "u@refuses.test")
    # one connection: EHLO, its 502, then HELO and the transaction
    assert verbs(env.refuses.log)[:3] == ["EHLO", "HELO", "MAIL"], \
        env.refuses.log


def test_size_over_peer_limit_bounces_at_once(env):
    big = message("big", ("x" * 70 + "\n") * 400)      # ~28 KB
    assert len(big) > SIZE_LIMIT
    mh.send(env.mr.port, SENDER, ["u@sized.test"], big)
    line = mh.wait_until(lambda: status_line(env.mr, "u@sized.test"),
                         WAIT, 0.1)
    assert line and "status=bounced" in line, line
    assert re.search(r"5\.3\.4 message size \d+ exceeds size limit %d of "
                     r"server 127\.0\.0\.1\[127\.0\.0\.1\]:%d"
                     % (SIZE_LIMIT, env.sized.port), line), line
    # never offered: no MAIL on the connection
    assert "MAIL" not in verbs(env.sized.log), env.sized.log
    (dsn,) = env.mr.wait_drop(1, WAIT)
    text = dsn.read_text(errors="replace")
    assert "Status: 5.3.4" in text, text
    assert "exceeds size limit %d" % SIZE_LIMIT in text, text
    env.mr.wait_queue_empty(WAIT)
    # a message within the limit goes, announced with SIZE=
    mh.send(env.mr.port, SENDER, ["v@sized.test"], message("small"))
    delivered(env, env.sized, "small", "v@sized.test")
    mails = [c for c in env.sized.log if c.startswith("MAIL")]
    assert len(mails) == 1 and re.search(r" SIZE=\d+", mails[0]), mails
