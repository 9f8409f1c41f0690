#!/usr/bin/python3
"""contrib/bench/mrbrun.py - runs of contrib/bench/mrb-smtp (the benchmark's
own C load generator and sink, with STARTTLS), measured and written as
relay-bench writes its runs, so that report.py reads both alike.

relay-bench (its path in RELAY_BENCH) is loaded as a module for what it
already does: the process-tree sampler (RSS, PSS, CPU), the median line.

    mrbrun.py run --prog P --target HOST:PORT --pidfile F [options]
    mrbrun.py limit --prog P [options]          (client straight into sink)

Options: -n, -c, -s, -r, -D (recipient domains), --tls, --no-resume (with
--tls: the client never resumes a session), --cert/--key (the sink's; with
--tls), --sink ADDR (repeatable; default 127.0.0.1:2526),
--repeat, --warmup, --label, --json, --drain-timeout, --timeout,
--backlog (the sink answers 421 while the messages are sent, then comes
up and --flush-cmd runs, again every 5 s until the last message is
through: accept rate during the outage, drain time, peak RSS per
program).  Standard library only.
"""

import argparse
import importlib.machinery
import importlib.util
import json
import os
import select
import subprocess
import threading
import time


def load_relay_bench():
    path = os.environ.get("RELAY_BENCH") or "relay-bench"
    loader = importlib.machinery.SourceFileLoader("relay_bench", path)
    spec = importlib.util.spec_from_loader("relay_bench", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


rb = load_relay_bench()


class ProgramSampler(threading.Thread):
    """Peak RSS per program (comm) of a process tree: of its largest
    process and of all its processes together, sampled every 0.5 s."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root = root
        self.stop_evt = threading.Event()
        self.peak = {}          # comm -> [largest process, sum]
        self.page = os.sysconf("SC_PAGE_SIZE")

    def run(self):
        n = 0
        while not self.stop_evt.is_set() and n < 100000:
            n += 1
            now = {}
            for pid in rb.proc_tree(self.root):
                try:
                    with open("/proc/%d/comm" % pid) as f:
                        comm = f.read().strip()
                    with open("/proc/%d/statm" % pid) as f:
                        rss = int(f.read().split()[1]) * self.page
                except (OSError, IndexError, ValueError):
                    continue
                one, tot = now.get(comm, (0, 0))
                now[comm] = (max(one, rss), tot + rss)
            for comm, (one, tot) in now.items():
                pk = self.peak.setdefault(comm, [0, 0])
                pk[0], pk[1] = max(pk[0], one), max(pk[1], tot)
            self.stop_evt.wait(0.5)

    def stop(self):
        self.stop_evt.set()
        self.join(5)


def proc_cpu(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Sink:
    """mrb-smtp sink, driven through its standard input."""

    def __init__(self, a):
        cmd = [a.prog, "sink"]
        if a.tls:
            cmd += ["-C", a.cert, "-K", a.key]
        cmd += a.sink
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.sessions = self.tls_sessions = self.tls_msgs = None
        self.tls_resumed = None
        if self.line(10) != "ready":
            raise SystemExit("mrbrun: the sink did not start on %s" % " ".join(a.sink))

    def line(self, timeout):
        r, _, _ = select.select([self.p.stdout], [], [], max(0.0, timeout))
        if not r:
            return None
        return self.p.stdout.readline().strip()

    def say(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def wait_done(self, n, timeout, every=None, tick=None):
        """CLOCK_MONOTONIC time when the sink had seen n recipients, or None;
        tick() is called every `every` seconds meanwhile."""
        self.say("expect %d" % n)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wait = deadline - time.monotonic()
            ln = self.line(min(wait, every) if every else wait)
            if ln is None and tick:
                tick()
            if ln and ln.startswith("done "):
                f = ln.split()
                self.sessions, self.tls_sessions = int(f[4]), int(f[5])
                self.tls_msgs = int(f[6])
                self.tls_resumed = int(f[7]) if len(f) > 7 else None
                return float(f[1])
        return None

    def count(self, field=3):
        """A field of the sink's count line: 3 recipients, 8 connections
        it greeted with 421 while down."""
        self.say("count")
        for _ in range(10):
            ln = self.line(10)
            if ln and ln.startswith("count "):
                f = ln.split()
                return int(f[field]) if len(f) > field else 0
        return 0

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait(5)


def load(a, target, count):
    cmd = [a.prog, "load", "-n", str(count), "-c", str(a.sessions), "-s", str(a.size),
           "-r", str(a.rcpts), "-t", "120"]
    if a.domains:
        cmd += ["-D", str(a.domains)]
    if a.tls:
        cmd.append("-T")
        if a.no_resume:
            cmd.append("-N")
    cmd.append(target)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"accepted": 0, "failed": count, "t_start": time.monotonic(),
                "t_last_accept": time.monotonic(), "t_end": time.monotonic(),
                "errors": {"mrb-smtp load exit %d: %s" % (p.returncode,
                                                        p.stderr.strip()[-200:]): 1}}


def one_run(a, sink, target, pid, warm=False):
    count = a.warmup if warm else a.count

    def flush():
        if a.flush_cmd:
            subprocess.run(a.flush_cmd, shell=True, timeout=120,
                           stdout=subprocess.DEVNULL)

    sink.say("reset")
    before = rb.tree_usage(pid, with_pss=True) if pid else None
    sampler = rb.TreeSampler(pid) if pid else None
    if sampler:
        sampler.start()
    progs = ProgramSampler(pid) if pid and a.backlog and not warm else None
    if progs:
        progs.start()
    s0 = proc_cpu(sink.p.pid)
    c0 = os.times()
    out = {}
    try:
        if a.backlog and not warm:
            sink.say("down")
        r = load(a, target, count)
        c1 = os.times()
        if a.backlog and not warm:
            out["outage_s"] = round(time.monotonic() - r["t_start"], 4)
            out["backlog_rcpts_at_sink"] = sink.count()
            out["backlog_conns_down"] = sink.count(8)
            t_up = time.monotonic()
            sink.say("up")
            flush()
        # the flush again every 5 s until the backlog is through: a
        # message an MTA was still deferring when the first one came
        # would otherwise wait for its next retry
        t_done = sink.wait_done(r["accepted"] * a.rcpts,
                                min(a.drain_timeout, 30) if warm else a.drain_timeout,
                                5 if a.backlog and not warm else None, flush)
        if a.backlog and not warm:
            out["drain_s"] = round((t_done or time.monotonic()) - t_up, 4)
        after = rb.tree_usage(pid, with_pss=False) if pid else None
    finally:
        if sampler:
            sampler.stop()
        if progs:
            progs.stop()
            out["rss_by_program"] = progs.peak
    if warm:
        return None
    t0 = r["t_start"]
    acc = r["accepted"]
    res = {"label": a.label, "mode": "relay" if pid else "direct", "count": count,
           "size": a.size, "sessions": a.sessions, "rcpts": a.rcpts,
           "domains": a.domains, "msgs_per_conn": 1, "client": "mrb-smtp",
           "sink": "mrb-smtp", "tls": bool(a.tls),
           "tls_resume": bool(a.tls and not a.no_resume),
           "client_tls_handshakes": r.get("tls_handshakes"),
           "client_tls_resumed": r.get("tls_resumed"), "accepted": acc,
           "failed": r.get("failed", 0), "errors": r.get("errors", {}),
           "accept_s": round(r["t_last_accept"] - t0, 4),
           "accept_rate": round(acc / max(1e-9, r["t_last_accept"] - t0), 1),
           "delivered": acc if t_done else 0, "duplicates": 0,
           "drain_timeout": t_done is None,
           "e2e_s": round((t_done or time.monotonic()) - t0, 4),
           "e2e_rate": round(acc / max(1e-9, (t_done or time.monotonic()) - t0), 1)
           if t_done else 0.0,
           "latency_ms": {}, "accept_latency_ms": {},
           "client_cpu_s": round(c1.children_user + c1.children_system
                                 - c0.children_user - c0.children_system, 2),
           "sink_cpu_s": round(proc_cpu(sink.p.pid) - s0, 2),
           "sink_sessions": sink.sessions, "sink_tls_sessions": sink.tls_sessions,
           "sink_tls_msgs": sink.tls_msgs, "sink_tls_resumed": sink.tls_resumed}
    res.update(out)
    if pid:
        res.update({"mta_pid": pid, "rss_before": before["rss"], "pss_before": before["pss"],
                    "rss_peak": sampler.max_rss, "pss_peak": sampler.max_pss,
                    "procs_peak": sampler.max_procs,
                    "mta_cpu_s": round(after["cpu_s"] - before["cpu_s"], 2)})
    return res


def emit(a, r):
    print(rb.summary_line(r, prefix="mrbrun"), flush=True)
    line = json.dumps(r, sort_keys=True)
    print(line, flush=True)
    if a.json:
        with open(a.json, "a") as f:
            f.write(line + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["run", "limit"])
    p.add_argument("--prog", required=True)
    p.add_argument("--target")
    p.add_argument("--pidfile")
    p.add_argument("-n", "--count", type=int, default=5000)
    p.add_argument("-c", "--sessions", type=int, default=20)
    p.add_argument("-s", "--size", type=rb.parse_size, default=4096)
    p.add_argument("-r", "--rcpts", type=int, default=1)
    p.add_argument("-D", "--domains", type=int, default=0)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--no-resume", action="store_true",
                   help="with --tls: every client handshake in full")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--sink", action="append")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--pause", type=float, default=2)
    p.add_argument("--label", default="mrb-smtp")
    p.add_argument("--json")
    p.add_argument("--timeout", type=int, default=1800)
    p.add_argument("--drain-timeout", type=int, default=600)
    p.add_argument("--backlog", action="store_true")
    p.add_argument("--flush-cmd", help="run after the sink came up (backlog)")
    a = p.parse_args()
    a.sink = a.sink or ["127.0.0.1:2526"]
    pid = None
    if a.mode == "run":
        if not a.target or not a.pidfile:
            p.error("run needs --target and --pidfile")
        with open(a.pidfile) as f:
            pid = int(f.read().split()[0])
        target = a.target
    else:
        target = a.sink[0].replace("0.0.0.0", "127.0.0.1")
    sink = Sink(a)
    runs = []
    try:
        if a.warmup > 0:
            one_run(a, sink, target, pid, warm=True)
            time.sleep(a.pause)
        for k in range(a.repeat):
            r = one_run(a, sink, target, pid)
            emit(a, r)
            runs.append(r)
            if k + 1 < a.repeat:
                time.sleep(a.pause)
    finally:
        sink.close()
    if len(runs) > 1:
        emit(a, rb.median_of(runs))


if __name__ == "__main__":
    main()
