"""
Prometheus metrics ("metrics listen"): mailrootd binds the TCP listener,
queued serves GET /metrics with libevent's evhttp (queued/metrics.c).

The endpoint of a running mailrootd is fetched over HTTP and parsed with
python3-prometheus-client's text parser; mail goes to the harness sink
(sent), to Drop (delivered), to a recipient the sink refuses (failed, an
NDR) or defers (a retry, a queued message), and from the null sender to
a refused recipient (Badmail).  Every counter must move by exactly what
that mail did.  Bad requests are answered with an error and leave queued
running.
"""

import os
import re
import signal
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import mailroot_harness as mh

SENDER = "app@local.test"
REFUSED = "nobody@remote.test"
DEFERRED = "later@remote.test"
COUNTERS = ("received", "delivered", "sent", "failed", "ndrs", "badmail",
            "bytes_received", "delivery_retries")


def message(subject):
    return mh.crlf("From: %s\nSubject: %s\n\nmetrics test body\n"
                   % (SENDER, subject))


def fetch(port, path="/metrics"):
    url = "http://127.0.0.1:%d%s" % (port, path)
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def samples(port):
    """{(sample name, frozenset(labels)): value} of one scrape."""
    out = {}
    for fam in text_string_to_metric_families(fetch(port)):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def counter(snap, short, server="test"):
    name = {"received": "mailroot_messages_received_total",
            "delivered": "mailroot_messages_delivered_total",
            "sent": "mailroot_messages_sent_total",
            "failed": "mailroot_messages_failed_total",
            "ndrs": "mailroot_ndrs_total",
            "badmail": "mailroot_badmail_total",
            "bytes_received": "mailroot_bytes_received_total",
            "delivery_retries": "mailroot_delivery_retries_total"}[short]
    return snap[(name, frozenset({("server", server)}))]


def queue_len(snap, which, server="test"):
    return snap[("mailroot_queue_messages",
                 frozenset({("server", server), ("queue", which)}))]


def wait_counts(port, want, timeout=90.0):
    """The scrape once every counter in want has its value."""
    last = {}

    def ready():
        snap = samples(port)
        last["snap"] = snap
        return snap if all(counter(snap, k) == v
                           for k, v in want.items()) else None
    snap = mh.wait_until(ready, timeout, 0.1)
    assert snap, "counters never reached %s: %s" % (
        want, {k: counter(last["snap"], k) for k in COUNTERS})
    return snap


@pytest.fixture
def served(start_mailroot, sink):
    port = mh.free_port()
    sink.reject_rcpt(REFUSED)
    sink.reject_rcpt(DEFERRED, "451 4.3.0 Try again later (sink)")
    d = start_mailroot(sink=sink,
                       global_extra="metrics listen 127.0.0.1:%d" % port)
    assert mh.wait_until(lambda: mh.port_accepts(port), 30, 0.1)
    return d, port, sink


def sizes(d):
    """The size= of every message received, from the log."""
    return [int(n) for n in re.findall(r"from=<[^>]*> size=(\d+)",
                                       d.log_text())]


def test_counters_move_with_mail(served):
    d, port, sink = served
    snap = samples(port)
    assert {k: counter(snap, k) for k in COUNTERS} == dict.fromkeys(
        COUNTERS, 0)
    assert queue_len(snap, "local") == 0 and queue_len(snap, "remote") == 0
    info = [k for k in snap if k[0] == "mailroot_build_info"]
    assert len(info) == 1 and snap[info[0]] == 1

    # one to Drop (delivered), one through the sink (sent)
    mh.send(d.port, SENDER, ["user@local.test"], message("drop"))
    mh.send(d.port, SENDER, ["someone@remote.test"], message("sink"))
    assert len(sink.wait_for(1)) == 1
    d.wait_drop(1)
    snap = wait_counts(port, {"received": 2, "delivered": 1, "sent": 1})
    # the queue counts go down again as the messages leave
    assert queue_len(snap, "local") == 0 and queue_len(snap, "remote") == 0
    assert counter(snap, "bytes_received") == sum(sizes(d)) > 0
    assert len(sizes(d)) == 2
    for k in ("failed", "ndrs", "badmail", "delivery_retries"):
        assert counter(snap, k) == 0, k

    # refused by the sink: failed, and an NDR to the sender (Drop)
    mh.send(d.port, SENDER, [REFUSED], message("refused"))
    snap = wait_counts(port, {"received": 3, "failed": 1, "ndrs": 1,
                              "delivered": 2})
    # from the null sender: nobody to report to, so Badmail
    mh.send(d.port, "", [REFUSED], message("null sender"))
    snap = wait_counts(port, {"received": 4, "failed": 2, "badmail": 1})
    assert counter(snap, "ndrs") == 1 and counter(snap, "sent") == 1
    assert counter(snap, "bytes_received") == sum(sizes(d))

    # deferred by the sink: a retry, and it stays in the remote queue
    mh.send(d.port, SENDER, [DEFERRED], message("deferred"))
    snap = wait_counts(port, {"received": 5, "delivery_retries": 1})
    assert queue_len(snap, "remote") == 1 and queue_len(snap, "local") == 0
    assert counter(snap, "failed") == 2 and counter(snap, "sent") == 1


def raw(port, data):
    """Sends bytes, returns what came back before the server closed."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:    # the server may answer and close before all is sent
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        for _ in range(1000):
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    return got


def test_other_paths_methods_and_garbage(served):
    d, port, _ = served
    # every child exec'd and set up (a child forked a moment ago is still
    # called mailrootd): nothing below may restart any of them
    before = mh.started_children(d.pid)
    assert None not in before.values()
    for path in ("/", "/metricsx", "/metrics/", "/../metrics"):
        with pytest.raises(urllib.error.HTTPError) as e:
            fetch(port, path)
        assert e.value.code in (404, 400), path
    for method in ("POST", "PUT", "DELETE"):
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port,
                                     method=method)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        assert e.value.code == 405, method
    # a body is refused whatever the method
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port,
                                 data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code in (405, 413)
    for junk in (b"\x00\xff garbage\r\n\r\n",
                 b"GET /metrics HTTP/9.9\r\n\r\n",
                 b"GET " + b"A" * 100000 + b" HTTP/1.1\r\n\r\n",
                 b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 5000 + b"\r\n",
                 b"GET /metrics HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                 b"GET /metrics HTTP/1.1\r\nHost: x\r\n"):
        got = raw(port, junk)
        assert not got.startswith(b"HTTP/1.1 200"), junk[:40]
    # still served, by the same processes
    assert counter(samples(port), "received") == 0
    assert mh.started_children(d.pid) == before


def test_off_by_default(start_mailroot):
    d = start_mailroot()
    assert "metrics ready" not in d.log_text()


def test_reload_keeps_the_listener(served):
    d, port, _ = served
    other = mh.free_port()
    d.conf.write_text(d.conf.read_text().replace(
        "metrics listen 127.0.0.1:%d" % port,
        "metrics listen 127.0.0.1:%d" % other))
    os.kill(d.pid, signal.SIGHUP)
    assert mh.wait_until(lambda: "reloaded" in d.log_text(), 60, 0.1)
    assert 'a changed "metrics listen" takes effect at the next start' \
        in d.log_text()
    assert counter(samples(port), "received") == 0
    assert not mh.port_accepts(other)


def hist(snap, name, server="test"):
    """{le as float: count}, sum and count of one histogram."""
    buckets = {float(dict(labels)["le"]): v for (n, labels), v in
               snap.items() if n == name + "_bucket" and
               dict(labels)["server"] == server}
    return (buckets, snap[(name + "_sum", frozenset({("server", server)}))],
            snap[(name + "_count", frozenset({("server", server)}))])


def gauge(snap, name, server="test"):
    return snap[(name, frozenset({("server", server)}))]


def test_histograms_and_connections(served):
    """The size of each message received and the latency of each one
    delivered, as Prometheus histograms; inbound connections, open now
    and in total."""
    d, port, sink = served
    snap = samples(port)
    for name in ("mailroot_message_size_bytes",
                 "mailroot_delivery_latency_seconds"):
        buckets, total, count = hist(snap, name)
        assert count == 0 and total == 0 and set(buckets.values()) == {0}
        assert float("inf") in buckets and len(buckets) > 5
    # the harness's one check that the port accepts is a connection,
    # which smtpd may take from the backlog only now
    assert mh.wait_until(lambda: (lambda s: gauge(
        s, "mailroot_inbound_connections") == 0 and gauge(
        s, "mailroot_inbound_connections_total") == 1)(samples(port)),
        60, 0.1), fetch(port)
    base = 1

    # a session held open: one connection now, one more in all
    held = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    assert held.recv(512).startswith(b"220")
    assert mh.wait_until(lambda: gauge(samples(
        port), "mailroot_inbound_connections") == 1, 60, 0.1)
    assert gauge(samples(port), "mailroot_inbound_connections_total") == \
        base + 1

    big = message("big") + b"x" * 70000 + b"\r\n"
    mh.send(d.port, SENDER, ["user@local.test"], message("small"))
    mh.send(d.port, SENDER, ["someone@remote.test"], big)
    assert len(sink.wait_for(1)) == 1
    d.wait_drop(1)
    snap = wait_counts(port, {"received": 2, "delivered": 1, "sent": 1})
    got = sizes(d)
    assert len(got) == 2 and max(got) > 65536 > min(got)
    buckets, total, count = hist(snap, "mailroot_message_size_bytes")
    assert count == 2 and total == sum(got)
    for le, v in buckets.items():
        assert v == len([s for s in got if s <= le]), (le, buckets)

    # both delivered: two latencies, each under a minute here
    buckets, total, count = hist(snap, "mailroot_delivery_latency_seconds")
    assert count == 2 and 0 <= total < 120
    assert buckets[float("inf")] == 2 and buckets[300.0] == 2
    les = sorted(buckets)
    assert all(buckets[a] <= buckets[b] for a, b in zip(les, les[1:]))

    # three more connections; the two sends are over, one stays open
    assert mh.wait_until(lambda: (lambda s: gauge(
        s, "mailroot_inbound_connections") == 1 and gauge(
        s, "mailroot_inbound_connections_total") == base + 3)(
        samples(port)), 60, 0.1), fetch(port)
    held.close()
    assert mh.wait_until(lambda: gauge(samples(
        port), "mailroot_inbound_connections") == 0, 60, 0.1)
    assert gauge(samples(port), "mailroot_inbound_connections_total") == \
        base + 3


def test_grafana_dashboard_queries_what_is_served(served):
    """contrib/grafana/mailroot-dashboard.json is valid JSON for Grafana's
    import, and every mailroot metric its queries name is in a scrape of
    a running mailrootd."""
    import json
    dash = json.loads((mh.SRCDIR / "contrib/grafana/"
                       "mailroot-dashboard.json").read_text())
    assert dash["uid"] == "mailroot" and dash["panels"]
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs.append(dash["templating"]["list"][0]["definition"])
    used = {n for e in exprs for n in re.findall(r"\bmailroot_[a-z_]+", e)}
    _, port, _ = served
    served_names = {name for name, _ in samples(port)}
    assert used and used <= served_names, used - served_names
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for want in ("queue", "latency", "per second"):
        assert want in titles


def labelled(snap, name, **labels):
    return snap[(name, frozenset(labels.items()))]


def test_outbound_dns_and_bytes_sent(start_mailroot, workdir):
    """deliverd's counters (MR_D_COUNT): a next hop looked up in the DNS,
    the connection to it, open while the receiver holds it at DATA, and
    the bytes of the message it accepted; a domain that does not exist
    is a failed lookup.  The local and remote queue lengths follow."""
    from dns_server import DNSServer
    from test_ctl_outbound import Staller
    staller = Staller()
    staller.start()
    dns = DNSServer(workdir)
    try:
        dns.mx("ok.test", 10, "mx.ok.test").a("mx.ok.test", "127.0.0.1")
        dns.zone("gone.test")
        dns.start()
        port = mh.free_port()
        d = start_mailroot(
            global_extra="resolver %s\nmetrics listen 127.0.0.1:%d"
            % (dns.resolver, port),
            server_extra="    delivery { outbound { port %d } }"
            % staller.port)
        assert mh.wait_until(lambda: mh.port_accepts(port), 30, 0.1)

        def out(s):
            return {k: labelled(s, "mailroot_" + k, server="test") for k in (
                "outbound_connections_total", "outbound_connections",
                "bytes_sent_total", "dns_lookups_total",
                "dns_lookup_failures_total")}

        def wait_out(want, what):
            got = mh.wait_until(lambda: (lambda o: o if all(
                o[k] == v for k, v in want.items()) else None)(
                out(samples(port))), 60, 0.1)
            assert got, "%s: %s" % (what, out(samples(port)))
            return got
        assert set(out(samples(port)).values()) == {0}

        mh.send(d.port, SENDER, ["someone@ok.test"], message("to ok"))
        wait_out({"dns_lookups_total": 1, "dns_lookup_failures_total": 0,
                  "outbound_connections_total": 1,
                  "outbound_connections": 1, "bytes_sent_total": 0},
                 "held at DATA")
        assert queue_len(samples(port), "remote") == 1
        staller.data.set()
        (body,) = mh.wait_until(lambda: staller.received, 60, 0.1)
        # the message as it was stored: what came, less the final dot
        got = wait_out({"bytes_sent_total": len(body) - 3}, "sent")
        assert got["outbound_connections_total"] == 1
        staller.quit.set()
        wait_out({"outbound_connections": 0}, "closed")
        assert counter(samples(port), "sent") == 1

        # no such domain: a failed lookup, no connection, an NDR to Drop
        mh.send(d.port, SENDER, ["someone@gone.test"], message("to gone"))
        d.wait_drop(1)
        got = wait_out({"dns_lookups_total": 2,
                        "dns_lookup_failures_total": 1}, "NXDOMAIN")
        assert got["outbound_connections_total"] == 1
        snap = samples(port)
        assert queue_len(snap, "remote") == 0
        assert queue_len(snap, "local") == 0
    finally:
        staller.stop()
        dns.stop()


def test_process_restarts(served):
    """mailrootd's count of each child's restarts (MR_M_RESTARTS), as a
    new queued learns it too."""
    d, port, _ = served

    def restarts():
        snap = samples(port)
        return {p: labelled(snap, "mailroot_process_restarts_total",
                            process=p) for p in ("smtpd", "queued",
                                                 "deliverd")}
    assert restarts() == {"smtpd": 0, "queued": 0, "deliverd": 0}
    for proc, want in (("deliverd", {"smtpd": 0, "queued": 0,
                                     "deliverd": 1}),
                       ("queued", {"smtpd": 0, "queued": 1,
                                   "deliverd": 1})):
        old = mh.started_children(d.pid)[proc]
        os.kill(old, signal.SIGKILL)
        assert mh.wait_until(lambda: mh.children(d.pid).get(proc) not in
                             (None, old), 60), d.log_text()

        def seen(want=want):
            try:
                return restarts() == want
            except OSError:
                return False    # the new queued is not serving yet
        assert mh.wait_until(seen, 60, 0.1), restarts()
