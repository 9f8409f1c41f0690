"""
mailroot-sendmail -bp (and the same program run as "mailq") lists the
queue, -q and -qRsite try it now: requests on the control socket, as
mailrootctl's "queue" and "flush", granted by queued to root and
control-group only.  The next hop (the sink) defers the mail with 451, so
it stays queued, and each flush shows as one more attempt at the sink.
"""

import os
import re
import subprocess

import mailroot_harness as mh
from test_sendmail import SENDMAIL, WAIT, EX_NOPERM, EX_UNAVAILABLE

HELD = "held@remote.test"
EX_USAGE = 64


def run(args, env=None, user=None, prog=SENDMAIL):
    cmd = [str(prog)] + list(args)
    if user is not None:
        cmd = ["runuser", "-u", user, "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=WAIT, env=env, stdin=subprocess.DEVNULL)


def test_bp_and_q_over_the_control_socket(start_mailroot, sink, workdir):
    sink.reject_rcpt(HELD, "451 4.3.0 try later (sink)")
    rundir = workdir / "run"
    rundir.mkdir(mode=0o755)
    sock = rundir / "control"
    d = start_mailroot(sink=sink, global_extra='control-socket "%s"\n'
                       'control-group "mailroot"' % sock)
    assert mh.send(d.port, "app@client.test", [HELD],
                   mh.crlf("Subject: waits\n\nbody\n")) == {}
    assert mh.wait_until(lambda: sink.rejected.count(HELD) >= 1, WAIT)
    # a deferral's envelope is written in the commit worker's next batch
    def envs():
        return [p.stem for p in d.dir("Queue").iterdir()
                if p.suffix == ".env"]
    assert mh.wait_until(lambda: len(envs()) == 1, WAIT), envs()
    qid = envs()

    # -bp with -C: the control-socket named by the configuration
    p = run(["-C", str(d.conf), "-bp"])
    assert p.returncode == 0, p.stderr
    assert re.search(r"(?m)^%s\s.*app@client\.test" % qid[0], p.stdout), \
        p.stdout
    assert p.stdout.rstrip().endswith("1 message")

    # the program under the name mailq, the socket from the environment
    mailq = workdir / "mailq"
    os.symlink(SENDMAIL, mailq)
    env = dict(os.environ, MAILROOT_CONTROL_SOCKET=str(sock))
    p = run([], env=env, prog=mailq)
    assert p.returncode == 0, p.stderr
    assert qid[0] in p.stdout

    # -q: one more attempt now; -qR for a domain with nothing waiting
    n = sink.rejected.count(HELD)
    p = run(["-q"], env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1 message to be tried now"
    assert mh.wait_until(lambda: sink.rejected.count(HELD) > n, WAIT), \
        d.log_text()
    p = run(["-qR", "nowhere.test"], env=env)
    assert p.returncode == 0 and p.stdout.strip() == \
        "0 messages to be tried now", p.stdout + p.stderr
    n = sink.rejected.count(HELD)
    p = run(["-qRremote.test"], env=env)
    assert p.stdout.strip() == "1 message to be tried now", p.stderr
    assert mh.wait_until(lambda: sink.rejected.count(HELD) > n, WAIT)
    assert "control: uid 0: flush remote.test" in d.log_text()

    # queue-runner intervals mean nothing here; other -q forms are refused
    assert run(["-qI" + qid[0]], env=env).returncode == EX_USAGE
    # no socket there
    env_none = dict(os.environ,
                    MAILROOT_CONTROL_SOCKET=str(workdir / "nothing"))
    p = run(["-bp"], env=env_none)
    assert p.returncode == EX_UNAVAILABLE and "cannot reach" in p.stderr

    if mh.IS_ROOT:
        # a user outside control-group may not list the queue
        p = run(["-bp"], env=env, user="nobody")
        assert p.returncode == EX_NOPERM, p.stdout + p.stderr
        assert "control-group" in p.stderr
        assert qid[0] not in p.stdout
