#!/usr/bin/python3
"""contrib/bench/idle.py - hold N idle SMTP sessions against one smtpd.

Opens N connections to HOST:PORT from several source addresses
(127.0.0.2, 127.0.0.3, ...; at most --per-source each, so that the
ephemeral ports of one address never run out), reads each one's 220
greeting and holds the session open without sending anything.  With all
of them open it samples the memory of the smtpd process (--smtpd-pid) and
times --probes fresh connections from 127.0.0.1 until their 220 greeting,
one after the other.  Then it closes everything and prints one JSON line.

Standard library only.  Every wait is bounded (--open-timeout for the
whole opening phase, --io-timeout for one greeting).
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import sys
import time


def proc_mem(pid):
    """RSS and PSS in bytes, and the number of open fds, of one process."""
    r = {"rss": None, "pss": None, "fds": None}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    r["rss"] = int(line.split()[1]) * 1024
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    r["pss"] = int(line.split()[1]) * 1024
        r["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        pass
    return r


def sockstat():
    """TCP sockets in use and their kernel memory (pages) in this netns."""
    r = {}
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    v = line.split()[1:]
                    d = dict(zip(v[0::2], v[1::2]))
                    r["tcp_inuse"] = int(d.get("inuse", 0))
                    r["tcp_mem_pages"] = int(d.get("mem", 0))
    except OSError:
        pass
    return r


async def greet(host, port, src, io_timeout):
    """Connect (from src, if given) and read the 220 greeting.  Returns
    (reader, writer, seconds) or raises."""
    t0 = time.monotonic()
    kw = {"local_addr": (src, 0)} if src else {}
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, **kw), io_timeout)
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), io_timeout)
            if not line:
                raise ConnectionError("closed before the greeting")
            if not line.startswith(b"220"):
                raise ConnectionError("greeting: %r" % line[:80])
            if line[3:4] != b"-":
                break
    except BaseException:
        writer.close()
        raise
    return reader, writer, time.monotonic() - t0


async def main(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.sessions + 64
    if soft < need:
        if hard < need:
            raise SystemExit("idle.py: need %d file descriptors, hard limit %d"
                             % (need, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    res = {"sessions": a.sessions, "host": a.host, "port": a.port}
    res["smtpd_before"] = proc_mem(a.smtpd_pid) if a.smtpd_pid else None

    # Baseline: greeting time with nothing else open.
    base = []
    for _ in range(a.probes):
        try:
            r, w, dt = await greet(a.host, a.port, None, a.io_timeout)
            base.append(dt)
            w.close()
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass
        await asyncio.sleep(0.05)

    held, errors = [], {}
    sem = asyncio.Semaphore(a.parallel)
    nsrc = max(1, -(-a.sessions // a.per_source))
    srcs = ["127.0.0.%d" % (2 + i) for i in range(nsrc)]

    async def one(i):
        async with sem:
            try:
                r, w, dt = await greet(a.host, a.port, srcs[i % nsrc], a.io_timeout)
                held.append((r, w, dt))
            except (OSError, asyncio.TimeoutError, ConnectionError) as e:
                k = type(e).__name__ + ": " + str(e)[:80]
                errors[k] = errors.get(k, 0) + 1

    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(one(i)) for i in range(a.sessions)]
    done, pending = await asyncio.wait(tasks, timeout=a.open_timeout)
    for t in pending:
        t.cancel()
    if pending:
        errors["open-timeout"] = len(pending)
    res["open_s"] = round(time.monotonic() - t0, 3)
    res["opened"] = len(held)
    res["sources"] = srcs
    res["errors"] = errors
    gl = sorted(x[2] for x in held)
    if gl:
        res["open_greeting_ms"] = {
            "p50": round(1000 * gl[len(gl) // 2], 2),
            "p99": round(1000 * gl[min(len(gl) - 1, int(len(gl) * 0.99))], 2),
            "max": round(1000 * gl[-1], 2)}

    await asyncio.sleep(a.settle)
    res["smtpd_held"] = proc_mem(a.smtpd_pid) if a.smtpd_pid else None
    res["sockstat_held"] = sockstat()

    # Probes: fresh sessions while all the others are open.
    probes, pfail = [], 0
    for _ in range(a.probes):
        try:
            r, w, dt = await greet(a.host, a.port, None, a.io_timeout)
            probes.append(dt)
            w.write(b"QUIT\r\n")
            w.close()
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pfail += 1
        await asyncio.sleep(0.05)

    # Are the held sessions still open?  The streams keep reading in the
    # background: a session the server closed has seen EOF, one it spoke on
    # (a 421, say) has data buffered.
    alive = spoke = 0
    for r, w, dt in held:
        if getattr(r, "_buffer", None):
            spoke += 1
        elif not r.at_eof() and not w.is_closing():
            alive += 1
    res["still_open"] = alive
    res["server_spoke"] = spoke

    ms = lambda v: round(1000 * v, 2)
    res["probe_ms"] = {"n": len(probes), "failed": pfail,
                       "median": ms(statistics.median(probes)) if probes else None,
                       "max": ms(max(probes)) if probes else None}
    res["baseline_probe_ms"] = {"n": len(base),
                                "median": ms(statistics.median(base)) if base else None}

    for r, w, dt in held:
        w.close()
    await asyncio.sleep(min(5.0, 0.5 + a.sessions / 5000.0))
    res["smtpd_after"] = proc_mem(a.smtpd_pid) if a.smtpd_pid else None
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--sessions", type=int, default=1000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--smtpd-pid", type=int)
    p.add_argument("--probes", type=int, default=20)
    p.add_argument("--parallel", type=int, default=200,
                   help="connections being opened at once (200)")
    p.add_argument("--per-source", type=int, default=2000,
                   help="sessions per source address (2000)")
    p.add_argument("--open-timeout", type=float, default=180.0)
    p.add_argument("--io-timeout", type=float, default=30.0)
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds between the last greeting and the sample (2)")
    a = p.parse_args()
    r = asyncio.run(main(a))
    print(json.dumps(r, sort_keys=True), flush=True)
