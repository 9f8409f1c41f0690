"""
Fixtures for mailroot's integration tests.

Run with Debian's interpreter, which has pytest and aiosmtpd:

    MAILROOT_BUILDDIR=BUILD /usr/bin/python3 -m pytest tests/integration

sink           an SMTP server on loopback recording what reaches it
start_mailroot factory: start_mailroot(sink=sink, relay_allow=(...), ...)
               writes a configuration, starts mailrootd -d and waits for it
mailroot       one mailrootd relaying to the sink, local domain local.test

A daemon's log is attached to every failing report.  At teardown each
daemon gets SIGTERM; the test fails if it does not stop cleanly or its log
holds a sanitizer report.
"""

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mailroot_harness as mh  # noqa: E402

CALL_TIMEOUT = int(os.environ.get("MAILROOT_TEST_TIMEOUT", "120"))


@pytest.fixture(scope="session", autouse=True)
def _system_users():
    mh.ensure_users()


@pytest.fixture
def workdir(tmp_path):
    mh.make_traversable(tmp_path)
    return tmp_path


@pytest.fixture
def sink():
    s = mh.Sink().start()
    yield s
    s.stop()


@pytest.fixture
def start_mailroot(request, workdir):
    daemons = []
    request.node.mailroot_daemons = daemons

    def start(sink=None, name=None, **conf):
        if sink is not None:
            conf["sink_port"] = sink.port
        d = mh.Mailroot(workdir, name=name or "mailroot%d" % len(daemons),
                        **conf)
        daemons.append(d)
        return d.start()

    yield start
    problems = []
    for d in daemons:
        problems += ["%s: %s" % (d.name, p) for p in d.stop()]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def mailroot(start_mailroot, sink):
    return start_mailroot(sink=sink)


# ---------------------------------------------------------------------------
# Hooks.

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for d in getattr(item, "mailroot_daemons", []):
        text = d.log_text()
        if len(text) > 20000:
            text = "[... %d bytes cut ...]\n%s" % (len(text) - 20000,
                                                 text[-20000:])
        report.sections.append(("mailrootd log %s (%s)" % (d.logfile,
                                                          report.when), text))


class _CallTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise _CallTimeout("test call exceeded its time limit "
                       "(MAILROOT_TEST_TIMEOUT, or its call_timeout mark)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "call_timeout(seconds): a longer bound on the test body "
        "for a test that starts a peer whose own start-up is slow under "
        "load (Postfix's set-permissions forks postconf many times)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Every wait in the harness is bounded; this bounds the test body too."""
    mark = item.get_closest_marker("call_timeout")
    limit = max(CALL_TIMEOUT, mark.args[0]) if mark else CALL_TIMEOUT
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# One outcome per test (a test whose body passed but whose teardown found a
# sanitizer report is one failed test, not one pass and one error), written
# where tests/run-all reads it.
_outcomes = {}


def pytest_runtest_logreport(report):
    prev = _outcomes.get(report.nodeid)
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and prev != "failed":
        _outcomes[report.nodeid] = "skipped"
    elif report.when == "call" and prev is None:
        _outcomes[report.nodeid] = "passed"


def pytest_collectreport(report):
    if report.failed:
        _outcomes["collect:" + report.nodeid] = "failed"


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("MAILROOT_PYTEST_SUMMARY")
    # with pytest-xdist the controller, which hears every worker's
    # reports, writes the summary; a worker's partial one would race it
    if not path or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome in _outcomes.values():
        counts[outcome] += 1
    with open(path, "w") as f:
        for k, v in counts.items():
            f.write("%s %d\n" % (k, v))
