"""
Privilege separation, checked from /proc while mailrootd runs as root:
each child runs as its own user with no supplementary groups and no
capabilities, and smtpd (the network-facing process) is chrooted.
"""

import os
import pwd
from pathlib import Path

import pytest

import mailroot_harness as mh

pytestmark = pytest.mark.skipif(not mh.IS_ROOT,
                                reason="privilege separation needs root")


def status(pid):
    fields = {}
    for line in Path("/proc", str(pid), "status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return fields


@pytest.fixture
def rooted(start_mailroot, sink):
    return start_mailroot(sink=sink)


def confinement_problems(master, chroot):
    """What is wrong with the children's confinement; [] when all is well."""
    kids = mh.child_pids(master)
    missing = set(mh.USERS) - set(kids)
    if missing:
        return ["no %s among mailrootd's children %s" % (sorted(missing),
                                                          kids)]
    problems = []
    for comm, user in mh.USERS.items():
        pw = pwd.getpwnam(user)
        for pid in kids[comm]:
            try:
                st = status(pid)
                root = os.readlink("/proc/%d/root" % pid)
            except OSError as e:
                problems.append("%s[%d]: %s" % (comm, pid, e))
                continue
            want = {
                # real, effective, saved set-id and filesystem ids
                "Uid": [str(pw.pw_uid)] * 4,
                "Gid": [str(pw.pw_gid)] * 4,
                "Groups": [],
                "CapEff": ["0" * 16], "CapPrm": ["0" * 16],
                "CapAmb": ["0" * 16],
            }
            if "NoNewPrivs" in st:
                want["NoNewPrivs"] = ["1"]
            for key, value in want.items():
                if st.get(key) != value:
                    problems.append("%s[%d] %s: %s, want %s" % (
                        comm, pid, key, st.get(key), value))
            if comm == "smtpd" and os.path.realpath(root) != \
                    os.path.realpath(chroot):
                problems.append("smtpd[%d] root is %s, want %s" % (
                    pid, root, chroot))
    return problems


def test_children_are_confined(rooted):
    """Uid/Gid (all four), no groups, no capabilities, no new privileges,
    smtpd chrooted.  Polled for a few seconds: a child may still be
    between exec and its privilege drop when "ready" is logged."""
    mh.wait_until(lambda: not confinement_problems(rooted.pid,
                                                   rooted.chroot), 5.0, 0.1)
    problems = confinement_problems(rooted.pid, rooted.chroot)
    assert not problems, "\n".join(problems)


def test_master_is_not_confined(rooted):
    """The parent keeps root: it binds, restarts children and reloads."""
    assert status(rooted.pid)["Uid"][1] == "0"


def test_mail_flows_as_root(rooted, sink):
    data = mh.crlf("From: <sender@client.test>\nSubject: as root\n"
                   "Date: Mon, 30 Nov 2026 10:00:00 +0000\n"
                   "Message-ID: <root@client.test>\n\nbody\n")
    assert mh.send(rooted.port, "sender@client.test",
                   ["rcpt@remote.test", "user@local.test"], data) == {}
    got = sink.wait_for(1)
    assert len(got) == 1
    assert got[0].rcpt_tos == ["rcpt@remote.test"]
    assert mh.split_received(got[0].data)[1] == data
    drops = rooted.wait_drop(1)
    owner = pwd.getpwnam(mh.USERS["queued"]).pw_uid
    assert drops[0].stat().st_uid == owner
    for sub in ("Queue", "Pickup", "Drop", "Badmail"):
        assert rooted.dir(sub).stat().st_uid == owner, sub
    rooted.wait_queue_empty()
