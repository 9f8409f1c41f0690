#!/usr/bin/python3
"""contrib/bench/report.py - RESULTS.md from the results of contrib/bench/run.

Reads, in the results directory: limit.jsonl, postfix.jsonl, mailroot.jsonl
(relay-bench --json output: one line per run, a median line per series),
idle.json (contrib/bench/idle), meta.env, the configurations and the logs
under logs/.  Standard library only.

    report.py --results DIR --output RESULTS.md [--builddir D --srcdir D]
    report.py --results DIR --output RESULTS.md --idle-only
"""

import argparse
import collections
import json
import os
import platform
import re
import statistics
import subprocess
import time

MTAS = ("postfix", "mailroot")
NAMES = {"postfix": "Postfix", "mailroot": "mailroot"}
SHAPES = ["c1-4k", "c20-4k", "c100-4k", "c20-1k", "c20-1m"]
# relay-bench's Python pair, then Postfix's smtp-source and smtp-sink
ROWS = SHAPES + ["ss-" + x for x in SHAPES] + ["mrb-c20-4k", "tls-c20-4k"]
# rows with a section of their own: dkim-*, fanout-1000, backlog-c20-4k
PAIRS = {"": ("builtin", "relay-bench's Python client and sink"),
         "ss-": ("smtp-source", "Postfix's smtp-source and smtp-sink"),
         "dkim-": ("smtp-source", "Postfix's smtp-source and smtp-sink"),
         "mrb-": ("mrb-smtp", "contrib/bench/mrb-smtp (C) as client and sink, plain text"),
         "tls-": ("mrb-smtp-tls", "contrib/bench/mrb-smtp (C) as client and sink, "
                  "STARTTLS on both hops, TLS 1.3, ECDSA P-256")}
IDLE_BEGIN = "<!-- idle sessions: begin (contrib/bench/idle) -->"
IDLE_END = "<!-- idle sessions: end -->"
MIB = 1048576.0


def read_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def series(lines):
    """label -> (the median line, or the only run) and label -> all runs."""
    med, runs = {}, collections.defaultdict(list)
    for r in lines:
        if "count" not in r:
            continue
        label = re.sub(r" \[median of \d+\]$", "", r["label"])
        if r.get("median_of"):
            med[label] = r
        else:
            runs[label].append(r)
    for label, rs in runs.items():
        med.setdefault(label, rs[-1])
    return med, runs


def idle_lines(lines):
    return {r["label"]: r for r in lines if "rss" in r and "count" not in r}


def read_env(path):
    d = {}
    try:
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    d[k] = v
    except OSError:
        pass
    return d


def cmd(args, cwd=None):
    try:
        return subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def fmt(v, f="%.1f"):
    return (f % v) if isinstance(v, (int, float)) else "-"


def ratio(m, p):
    if isinstance(m, (int, float)) and isinstance(p, (int, float)) and p:
        return "%.2f" % (m / p)
    return "-"


def row_pair(row):
    """(prefix, limit label suffix, description) of a row's client pair."""
    for pre in ("ss-", "dkim-", "mrb-", "tls-"):
        if row.startswith(pre):
            return (pre,) + PAIRS[pre]
    return ("",) + PAIRS[""]


def row_shape(row):
    """'c20-4k' of 'ss-c20-4k': sessions and size, the ceiling's key."""
    m = re.search(r"c(\d+)-(\w+)$", row)
    return ("c%s-%s" % m.groups()) if m else row


def ceiling(lim_med, row):
    """The direct client-to-sink median of the row's pair and shape."""
    pre, pair, _ = row_pair(row)
    shape = row_shape(row)
    r = lim_med.get("limit %s %s" % (shape, pair))
    if r is None and shape == "c20-4k":
        r = lim_med.get("limit " + pair)      # results of older runs
    return r


def spread(rs, key="accept_rate"):
    """'min–max (±p %)' of the runs of a row, p the largest distance from
    the median in per cent of it; '-' for fewer than two runs."""
    vals = [x[key] for x in rs if isinstance(x.get(key), (int, float))]
    if len(vals) < 2:
        return "-"
    med = statistics.median(vals)
    dev = max(abs(v - med) for v in vals) / med * 100.0 if med else 0.0
    return "%.0f–%.0f (±%.0f %%)" % (min(vals), max(vals), dev)


def cpu_per_1000(r):
    if r and r.get("mta_cpu_s") is not None and r.get("count"):
        return 1000.0 * r["mta_cpu_s"] / r["count"]
    return None


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = "%.1f GiB" % (int(line.split()[1]) / 1048576.0)
    except OSError:
        pass
    return [("CPUs (nproc)", str(os.cpu_count())), ("CPU model", model),
            ("memory", mem), ("kernel", platform.release()),
            ("OS", cmd(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]) or "?")]


def log_problems(path, pattern, limit=12):
    """(count, [(n, example line)]) of the log lines matching pattern,
    grouped by the line with numbers, ids and times masked."""
    groups = collections.OrderedDict()
    total = 0
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if not re.search(pattern, line):
                    continue
                total += 1
                key = re.sub(r"\[\d+\]", "[N]", line)
                key = re.sub(r"^\S+ +\d+ [\d:]+ ", "", key)
                key = re.sub(r"^<\d+>\S+ +\d+ [\d:]+ ", "", key)
                key = re.sub(r"\b[0-9A-F]{10,}\b", "ID", key)
                key = re.sub(r"\d+", "N", key)
                if key in groups:
                    groups[key][0] += 1
                else:
                    groups[key] = [1, line.rstrip("\n")]
    except OSError:
        return None, []
    top = sorted(groups.values(), key=lambda g: -g[0])[:limit]
    return total, [(n, ex) for n, ex in top]


def idle_section(res_dir):
    out = [IDLE_BEGIN, "", "## Idle sessions (contrib/bench/idle)", ""]
    try:
        with open(os.path.join(res_dir, "idle.json")) as f:
            idle = json.load(f)
    except (OSError, ValueError):
        out += ["Not measured in this run (BENCH_IDLE=0, or contrib/bench/idle failed).",
                "", IDLE_END]
        return out
    out += ["Measured %s.  N sessions held open against one mailroot smtpd process "
            "(connected, 220 greeting read, then nothing sent; `limits { connections 0 }`), "
            "opened at most 200 at a time from the source addresses listed.  With all of "
            "them open: the smtpd process's RSS and PSS, and the time 20 fresh clients from "
            "127.0.0.1 (one after the other) waited for their 220 greeting.  Kernel socket "
            "memory is not in the RSS; `TCP mem` is the namespace's TCP buffer pages "
            "from /proc/net/sockstat." % idle.get("date", "?"), ""]
    out += ["| N | opened | still open | errors | open time s | smtpd RSS before MiB "
            "| smtpd RSS held MiB (PSS) | RSS per session KiB | greeting p50 / max ms "
            "(no load) | smtpd RSS after close MiB | TCP mem pages | sources |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in idle.get("rounds", []):
        if "sessions" not in r:
            out.append("| ? | %s |" % r.get("error", "no result"))
            continue
        b, h, a = (r.get("smtpd_before") or {}, r.get("smtpd_held") or {},
                   r.get("smtpd_after") or {})
        per = None
        if h.get("rss") and b.get("rss") and r.get("opened"):
            per = (h["rss"] - b["rss"]) / 1024.0 / r["opened"]
        pr, bp = r.get("probe_ms") or {}, r.get("baseline_probe_ms") or {}
        errs = sum((r.get("errors") or {}).values())
        restarted = ""
        if str(r.get("smtpd_pid_after")) != str(r.get("smtpd_pid")):
            restarted = " (smtpd pid changed: %s -> %s)" % (r.get("smtpd_pid"),
                                                           r.get("smtpd_pid_after"))
        out.append("| %d | %d | %s | %d%s | %s | %s | %s (%s) | %s | %s / %s (%s) | %s | %s | %s |" % (
            r["sessions"], r.get("opened", 0), r.get("still_open", "-"), errs, restarted,
            fmt(r.get("open_s"), "%.2f"),
            fmt(b.get("rss") and b["rss"] / MIB, "%.1f"),
            fmt(h.get("rss") and h["rss"] / MIB, "%.1f"),
            fmt(h.get("pss") and h["pss"] / MIB, "%.1f"),
            fmt(per, "%.2f"),
            fmt(pr.get("median"), "%.2f"), fmt(pr.get("max"), "%.2f"),
            fmt(bp.get("median"), "%.2f"),
            fmt(a.get("rss") and a["rss"] / MIB, "%.1f"),
            (r.get("sockstat_held") or {}).get("tcp_mem_pages", "-"),
            "%s (%d)" % (", ".join(r.get("sources", [])[:1]) + ("…" if len(r.get("sources", [])) > 1 else ""),
                         len(r.get("sources", [])))))
        if r.get("errors"):
            out.append("")
            out.append("Errors at N=%d: %s" % (r["sessions"], ", ".join(
                "%s × %d" % (k, v) for k, v in sorted(r["errors"].items()))))
            out.append("")
    out += ["", IDLE_END]
    return out


DKIM_ROWS = (("dkim-c20-4k", "RSA 2048"), ("dkim-ed-c20-4k", "Ed25519"))


def dkim_section(med, runs, meta):
    """mailroot with DKIM signing against itself and Postfix without."""
    rows = [(lab, key) for lab, key in DKIM_ROWS if "mailroot " + lab in med["mailroot"]]
    if not rows:
        return []
    base = "ss-c20-4k"
    p = med["postfix"].get("postfix " + base)
    m0 = med["mailroot"].get("mailroot " + base)
    ms = lambda r: cpu_per_1000(r)     # CPU s per 1000 = ms per message
    o = ["## DKIM signing (c20 4k, smtp-source and smtp-sink)", ""]
    o += ["mailroot with `dkim \"client.invalid\"` in its server block (keys made at run "
          "time with tools/mailroot-dkim-keygen, relaxed/relaxed, the default header list; "
          "both clients write `From: <bench@client.invalid>`), against mailroot and "
          "Postfix without signing in row ss-c20-4k of the same run.  Postfix has no "
          "signer in its core (it would need OpenDKIM as a milter), so it is measured "
          "without.  CPU is the MTA's whole process tree.", ""]
    o += ["| | accept msg/s | e2e msg/s | MTA CPU ms per message | CPU / mailroot without "
          "| CPU / Postfix without | accept / Postfix | spread | signature seen |",
          "|---|---|---|---|---|---|---|---|---|"]

    def line(name, r, lab, sig):
        mta = "postfix" if name.startswith("Postfix") else "mailroot"
        o.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, fmt(r and r.get("accept_rate"), "%.0f"), fmt(r and r.get("e2e_rate"), "%.0f"),
            fmt(ms(r), "%.2f"), ratio(ms(r), ms(m0)), ratio(ms(r), ms(p)),
            ratio(r and r.get("accept_rate"), p and p.get("accept_rate")),
            spread(runs[mta].get("%s %s" % (mta, lab), [])), sig))

    line("Postfix, no signing", p, base, "-")
    line("mailroot, no signing", m0, base, "-")
    notes = []
    for lab, key in rows:
        r = med["mailroot"]["mailroot " + lab]
        sig = meta.get("dkim_check_" + lab, "not checked")
        line("mailroot, DKIM %s" % key, r, lab, sig.replace("|", "\\|"))
        if ms(r) is not None and ms(m0):
            cost = ms(r) - ms(m0)
            notes.append("- %s: signing adds %.2f ms of CPU per message to %.2f ms for the "
                         "rest of the path (%.0f %% of it; #16 asks for at most 100 %%)."
                         % (key, cost, ms(m0), 100.0 * cost / ms(m0)))
    o.append("")
    if notes:
        o += notes + [""]
    return o


def fanout_section(med, runs):
    """One message to 1000 recipients in 100 domains."""
    lab = "fanout-1000"
    p = med["postfix"].get("postfix " + lab)
    m = med["mailroot"].get("mailroot " + lab)
    if not p and not m:
        return []
    o = ["## Fan-out: one message to 1000 recipients in 100 domains", ""]
    o += ["contrib/bench/mrb-smtp sends one message with 1000 recipients, r<j>@d<j mod "
          "100>.bench.invalid, and its sink listens on every loopback address; each domain "
          "dN.bench.invalid is routed to its own [127.0.1.N]:2526 (mailroot: a `domain` "
          "block with a `route`; Postfix: `transport_maps`), so each MTA delivers to 100 "
          "destinations.  Time runs from the client's connection until the last recipient "
          "reached the sink.  Each run is one message%s." % (
              ", median of %d" % (p or m)["median_of"] if (p or m).get("median_of") else ""), ""]
    o += ["| | Postfix | mailroot | mailroot/Postfix |", "|---|---|---|---|"]

    def line(name, pv, mv, f="%.2f"):
        o.append("| %s | %s | %s | %s |" % (name, fmt(pv, f), fmt(mv, f), ratio(mv, pv)))

    g = lambda r, k: r.get(k) if r else None
    rps = lambda r: (1000.0 * r["accepted"] / r["e2e_s"]) if r and r.get("e2e_s") \
        and not r.get("drain_timeout") else None
    line("accepted in s", g(p, "accept_s"), g(m, "accept_s"))
    line("all 1000 recipients at the sinks in s", g(p, "e2e_s"), g(m, "e2e_s"))
    line("recipients delivered per s", rps(p), rps(m), "%.0f")
    line("sessions at the sinks", g(p, "sink_sessions"), g(m, "sink_sessions"), "%d")
    line("MTA CPU s for the message", g(p, "mta_cpu_s"), g(m, "mta_cpu_s"))
    line("peak RSS MiB", g(p, "rss_peak") and p["rss_peak"] / MIB,
         g(m, "rss_peak") and m["rss_peak"] / MIB, "%.1f")
    line("peak processes", g(p, "procs_peak"), g(m, "procs_peak"), "%d")
    o.append("| spread of the time to the last recipient | %s | %s | |" % (
        spread(runs["postfix"].get("postfix " + lab, []), "e2e_s"),
        spread(runs["mailroot"].get("mailroot " + lab, []), "e2e_s")))
    o.append("")
    return o


def backlog_section(med, runs):
    """The next hop down while messages arrive, then up."""
    lab = "backlog-c20-4k"
    p = med["postfix"].get("postfix " + lab)
    m = med["mailroot"].get("mailroot " + lab)
    if not p and not m:
        return []
    r0 = p or m
    o = ["## Backlog: the next hop down while %d messages arrive, then up" % r0["count"], ""]
    o += ["contrib/bench/mrb-smtp sends %d messages of 4k over 20 sessions while its sink "
          "(the next hop) greets every connection with `421`; then the sink comes up and the "
          "queue is flushed (`postqueue -f`; `mailrootctl flush`), again every 5 s until the "
          "last message is through; the drain time runs from "
          "then until the last message reached the sink.  One run per MTA.  Peak RSS per "
          "program: its largest process, and all its processes together." % r0["count"], ""]
    o += ["| | Postfix | mailroot | mailroot/Postfix |", "|---|---|---|---|"]

    def line(name, pv, mv, f="%.1f"):
        o.append("| %s | %s | %s | %s |" % (name, fmt(pv, f), fmt(mv, f), ratio(mv, pv)))

    g = lambda r, k: r.get(k) if r else None
    mib = lambda v: v / MIB if isinstance(v, (int, float)) else None
    line("accept msg/s during the outage", g(p, "accept_rate"), g(m, "accept_rate"), "%.0f")
    line("outage s (sending)", g(p, "outage_s"), g(m, "outage_s"))
    line("messages at the sink during the outage", g(p, "backlog_rcpts_at_sink"),
         g(m, "backlog_rcpts_at_sink"), "%d")
    line("connections to the sink during the outage (421)",
         g(p, "backlog_conns_down"), g(m, "backlog_conns_down"), "%d")
    line("drain s (up to last message)", g(p, "drain_s"), g(m, "drain_s"))
    drate = lambda r: r["accepted"] / r["drain_s"] if r and r.get("drain_s") else None
    line("drain msg/s", drate(p), drate(m), "%.0f")
    line("peak RSS MiB (tree)", mib(g(p, "rss_peak")), mib(g(m, "rss_peak")))
    line("peak PSS MiB (tree)", mib(g(p, "pss_peak")), mib(g(m, "pss_peak")))
    line("MTA CPU ms per message (whole run)", cpu_per_1000(p), cpu_per_1000(m), "%.2f")
    o.append("| accepted / delivered / failed | %s | %s | |" % tuple(
        ("%d / %d / %d%s" % (r["accepted"], r["delivered"], r.get("failed", 0),
                             " DRAIN TIMEOUT" if r.get("drain_timeout") else ""))
        if r else "-" for r in (p, m)))
    o.append("")
    for r, name in ((p, "Postfix"), (m, "mailroot")):
        progs = (r or {}).get("rss_by_program")
        if not progs:
            continue
        o.append("%s, peak RSS per program (MiB, largest process / all of them): %s." % (
            name, ", ".join("%s %.1f / %.1f" % (k, v[0] / MIB, v[1] / MIB)
                            for k, v in sorted(progs.items(), key=lambda kv: -kv[1][1]))))
        o.append("")
    return o


def qscale_section(res_dir):
    """contrib/bench/queue-scale: a big queue at start, mailroot and
    Postfix (its "postfix" member) one after the other."""
    path = os.path.join(res_dir, "qscale.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        r = json.load(f)
    m = r if "first_delivery_s" in r else None
    p = r.get("postfix")
    o = ["## Queue scale: %d messages in the queue at start" % r["n"], ""]
    o += ["contrib/bench/queue-scale fills each MTA's queue with the same messages written "
          "as files, not through SMTP: for mailroot in the format queued recovers "
          "(contrib/bench/qfiles.py); for Postfix (contrib/bench/pfqueue.py) one real "
          "message is sent through the instance to a next hop that answers 4xx, and its "
          "deferred queue file and defer log are cloned under queue IDs made as Postfix "
          "makes them (microseconds and inode number, hashed directories).  One recipient "
          "each, tried once and deferred a day, one message due now; then the MTA is "
          "started.  mailroot first, then Postfix, each stopped and its queue removed "
          "before the other starts.  Postfix's qmgr keeps deferred messages on disk and "
          "reads at most qmgr_message_active_limit (%s) into memory, while mailroot's "
          "queued holds every queued message in memory.  The retry pass is `mailrootctl "
          "flush` / `postqueue -f` with the next hop answering 4xx to RCPT (smtp-sink -r "
          "RCPT); its CPU is queued's and deliverd's for mailroot, every Postfix process's "
          "(qmgr, smtp, bounce writing the defer logs, postlogd, ...) for Postfix.  "
          "Ratios are mailroot / Postfix.  Load average %s." % (
              (p or {}).get("active_limit", "-"),
              "; ".join("%s %.1f at the start, %.1f at the end" % (
                  name, x.get("load_start", 0), x.get("load_end", 0))
                  for name, x in (("mailroot", m), ("Postfix", p)) if x)), ""]

    def g(x, *keys):
        for k in keys:
            if not isinstance(x, dict):
                return None
            x = x.get(k)
        return x

    def per_msg(x, cpu):
        t = g(x, "pass", "tried")
        return 1e6 * cpu / t if cpu is not None and t else None

    def probes(x):
        ps = g(x, "pass", "probes") or []
        acc = [q["accept_s"] for q in ps if q.get("accept_s") is not None]
        lat = [q["delivered_s"] for q in ps if q.get("delivered_s") is not None]
        return ps, acc, lat

    def tried(x):
        if not x:
            return "-"
        ps = x.get("pass", {})
        return "%d of %d in %.0f s%s" % (ps.get("tried", 0), x["n"] - 1,
                                         ps.get("wall_s", 0),
                                         "" if ps.get("complete") else " (cut)")

    mcpu = None
    if m:
        mcpu = sum((g(m, "pass", "cpu_s") or {}).values())
    pcpu = g(p, "pass", "cpu_s", "postfix")
    rows = [
        ("queue written (files)", g(m, "write_s"), g(p, "write_s"), "%.1f s"),
        ("start to first delivery", g(m, "first_delivery_s"),
         g(p, "first_delivery_s"), "%.2f s"),
        ("queue manager CPU at start (queued's recovery / qmgr's scan)",
         g(m, "queued_cpu_recovery_s"), g(p, "qmgr_cpu_start_s"), "%.2f s"),
        ("queue manager RSS, full queue (queued / qmgr)", g(m, "rss_full") and g(m, "rss_full") / MIB,
         g(p, "qmgr_rss_full") and g(p, "qmgr_rss_full") / MIB, "%.1f MiB"),
        ("queue manager RSS, empty queue", g(m, "rss_empty") and g(m, "rss_empty") / MIB,
         g(p, "qmgr_rss_empty") and g(p, "qmgr_rss_empty") / MIB, "%.1f MiB"),
        ("queue manager RSS per queued message", g(m, "rss_per_msg"),
         g(p, "rss_per_msg"), "%.0f bytes"),
        ("`mailrootctl queue` / `postqueue -p`, output read whole", g(m, "ctl_s"),
         g(p, "ctl_s"), "%.2f s"),
        ("the same: CPU of queued / of every Postfix process (showq)", g(m, "ctl_queued_cpu_s"),
         g(p, "ctl_cpu_s"), "%.2f s"),
        ("the same: output", g(m, "ctl_bytes") and g(m, "ctl_bytes") / 1e6,
         g(p, "ctl_bytes") and g(p, "ctl_bytes") / 1e6, "%.1f MB"),
    ]
    o += ["| | mailroot | Postfix | ratio |", "|---|---|---|---|"]
    for lab, mv, pv, f in rows:
        # qmgr's growth per message is within a page or two of none: no
        # ratio on noise
        rt = "-" if f == "%.0f bytes" and (pv or 0) < 16 else ratio(mv, pv)
        o.append("| %s | %s | %s | %s |" % (lab, fmt(mv, f), fmt(pv, f), rt))
    mt, pt = g(m, "pass", "tried"), g(p, "pass", "tried")
    mw, pw = g(m, "pass", "wall_s"), g(p, "pass", "wall_s")
    o.append("| retry pass: tried | %s | %s | - |" % (tried(m), tried(p)))
    o.append("| retry pass: messages tried per second | %s | %s | %s |" % (
        fmt(mt / mw if mt and mw else None, "%.0f"),
        fmt(pt / pw if pt and pw else None, "%.0f"),
        ratio(mt / mw if mt and mw else None, pt / pw if pt and pw else None)))
    mc, pc = per_msg(m, mcpu), per_msg(p, pcpu)
    o.append("| retry pass: CPU per message tried | %s | %s | %s |" % (
        fmt(mc, "%.0f µs"), fmt(pc, "%.0f µs"), ratio(mc, pc)))
    acc_cells, lat_cells = [], []
    for x in (m, p):
        ps, acc, lat = probes(x)
        acc_cells.append("%.2f / %.2f s" % (statistics.median(acc), max(acc))
                         if acc else "-")
        lat_cells.append("%d of %d, %s" % (
            len(lat), len(ps), "%.2f / %.2f s" % (statistics.median(lat), max(lat))
            if lat else "-") if x else "-")
    o.append("| new mail during the pass: 250 after (median / max) | %s | %s | - |"
             % tuple(acc_cells))
    o.append("| new mail during the pass: delivered, after (median / max) | %s | %s | - |"
             % tuple(lat_cells))
    o.append("")
    by = g(p, "pass", "cpu_by_program")
    if m and g(m, "pass", "cpu_s"):
        o.append("mailroot's retry pass CPU: %s." % ", ".join(
            "%s %.1f s" % kv for kv in sorted(m["pass"]["cpu_s"].items())))
    if by:
        o.append("Postfix's retry pass CPU by program (processes alive at its end; the "
                 "total includes those that exited): %s." % ", ".join(
                     "%s %.1f s" % kv for kv in sorted(by.items(), key=lambda kv: -kv[1])
                     if kv[1] >= 0.05))
    if p:
        o.append("`postfix start` returned after %.2f s (it runs postfix-script's "
                 "check-warn, a find over the whole queue, before master); every Postfix "
                 "process's RSS together: %.1f MiB with the full queue." % (
                     p.get("start_cmd_s", 0), p.get("rss_all_full", 0) / MIB))
        if p.get("problems"):
            o.append("Postfix's maillog had %d warning lines, the first: `%s`." % (
                len(p["problems"]), p["problems"][0].split(": ", 1)[-1]))
    o.append("")
    return o


# Why a target of issue 17 may be missed, and where the profile shows it;
# printed only beside a target this run did not meet.
TARGET_WHY = {
    "c1": "c1 is bound by latency, and the row most sensitive to a loaded host: each "
          "message waits for its own commit, a syncfs and the journal's fsync, two cache "
          "flushes; on the idle host it measured 2.75x (\"The idle host, and the last "
          "levers tried\").  Tried: one flush per batch instead of one per file "
          "(b017ed7); one fsync of the data file for a batch of one message, slower on "
          "this file system, not made.",
    "ceiling": "the row is CPU-bound (both cores 81-94 % busy, two thirds of it system "
               "time), and the ceiling is smtp-source straight into smtp-sink, which needs "
               "none of the relay's work: at 75 % two cores would leave about 0.21 ms per "
               "message for the MTA, kernel included, a second TCP session and one file "
               "created, flushed and removed, where the file system's part alone is "
               "0.18-0.30 ms on this disk (\"Why 75 % of the ceiling is out of reach\", "
               "\"Less CPU per relayed message\").  Reusing queue files would save most of "
               "that part but would let smtpd write into other clients' committed "
               "messages, so it stays rejected.",
    "spread": "two things spread mailroot's runs on this host.  At c20 and above, the "
              "file system's history: ext4 without a journal skips inodes deleted in the "
              "last minute or more when it allocates (`recently_deleted`), so a run right "
              "after one that removed 5000 files pays more per file (\"The ext4 finding, "
              "checked\"; back-to-back runs of one binary fell from 1627 to 1122 msg/s).  "
              "At c1, where every message waits for its own commit, the device's cache "
              "flush: 0.6 ms at p50 and 7-12 ms at p99 on this virtual disk, measured "
              "with a loop of commits alone (\"Lever tried for c1\"), so a few slow "
              "flushes move a whole run.  Tried: a journaled ext4 on a loop device, which "
              "measured the loop device instead (\"Lever tried for the spread\").",
}


def targets_section(med, runs, lim_med, res_dir):
    """Issue 17's targets and the first round's, each met or not in this
    run; a missed one says where the profile explains it."""
    g = lambda mta, row, k: (med[mta].get("%s %s" % (mta, row)) or {}).get(k)

    def rt(row, k="accept_rate"):
        m, p = g("mailroot", row, k), g("postfix", row, k)
        return m / p if isinstance(m, (int, float)) and isinstance(p, (int, float)) and p \
            else None

    def cpu_rt(row):
        m = cpu_per_1000(med["mailroot"].get("mailroot " + row))
        p = cpu_per_1000(med["postfix"].get("postfix " + row))
        return m / p if m is not None and p else None

    def lat_rt(row, k):
        m = (g("mailroot", row, "latency_ms") or {}).get(k)
        p = (g("postfix", row, "latency_ms") or {}).get(k)
        return m / p if m is not None and p else None

    def spread_pct(row):
        vals = [x["accept_rate"] for x in runs["mailroot"].get("mailroot " + row, [])
                if isinstance(x.get("accept_rate"), (int, float))]
        if len(vals) < 2:
            return None
        med_ = statistics.median(vals)
        return max(abs(v - med_) for v in vals) / med_ * 100.0 if med_ else None

    t = []      # (target, measured text, met or None, why key)

    def at_least(name, v, goal, fmt_="%.2fx", why=None):
        t.append((name, fmt_ % v if v is not None else "not measured",
                  None if v is None else v >= goal, why))

    def at_most(name, v, goal, fmt_="%.2fx", why=None):
        t.append((name, fmt_ % v if v is not None else "not measured",
                  None if v is None else v <= goal, why))

    at_least("ss-c20-4k accept >= 5.0x", rt("ss-c20-4k"), 5.0)
    at_least("ss-c20-4k end to end >= 5.0x", rt("ss-c20-4k", "e2e_rate"), 5.0)
    lim = ceiling(lim_med, "ss-c20-4k")
    m = g("mailroot", "ss-c20-4k", "accept_rate")
    at_least("ss-c20-4k >= 75 % of the smtp-source-to-smtp-sink ceiling",
             100.0 * m / lim["accept_rate"] if m and lim and lim.get("accept_rate")
             else None, 75.0, "%.0f %%", "ceiling")
    at_least("ss-c100-4k accept >= 5.0x", rt("ss-c100-4k"), 5.0)
    at_least("ss-c1-4k accept >= 2.5x", rt("ss-c1-4k"), 2.5, why="c1")
    at_least("ss-c20-1m accept >= 1.5x", rt("ss-c20-1m"), 1.5)
    sp = [(r, spread_pct(r)) for r in ROWS
          if r.startswith(("ss-", "mrb-", "tls-")) and spread_pct(r) is not None]
    worst = max(sp, key=lambda x: x[1]) if sp else None
    t.append(("mailroot's runs within ±10 % of their median (C-tool rows)",
              "largest ±%.0f %% (%s); over 10 %%: %s" % (
                  worst[1], worst[0], ", ".join(r for r, v in sp if v > 10.0) or "none")
              if worst else "not measured",
              None if worst is None else worst[1] <= 10.0, "spread"))
    at_least("tls-c20-4k accept >= 3.0x", rt("tls-c20-4k"), 3.0)
    at_most("tls-c20-4k CPU per message <= 1/3 of Postfix's", cpu_rt("tls-c20-4k"),
            1 / 3.0, "%.2f")
    bm = med["mailroot"].get("mailroot backlog-c20-4k")
    bp = med["postfix"].get("postfix backlog-c20-4k")
    full = g("mailroot", "mrb-c20-4k", "accept_rate")
    if bm:
        at_least("backlog: mailroot accepts at its full rate during the outage "
                 "(against its mrb-c20-4k row)",
                 100.0 * bm["accept_rate"] / full if full else None, 90.0,
                 "%.0f %% of it")
    if bm and bp and bm.get("drain_s") and bp.get("drain_s"):
        at_least("backlog: drains at least 2x faster", bp["drain_s"] / bm["drain_s"], 2.0)
        at_most("backlog: peak RSS of the tree <= 1/2 of Postfix's",
                bm["rss_peak"] / bp["rss_peak"] if bp.get("rss_peak") else None, 0.5, "%.2f")
    path = os.path.join(res_dir, "qscale.json")
    if os.path.exists(path):
        with open(path) as f:
            q = json.load(f)
        at_most("%d queued: queued's RSS <= 300 bytes per message" % q["n"],
                q.get("rss_per_msg"), 300, "%.0f bytes")
        at_most("%d queued: start to first delivery <= 10 s" % q["n"],
                q.get("first_delivery_s"), 10.0, "%.2f s")
        ps = (q.get("pass") or {}).get("probes") or []
        lat = [x["delivered_s"] for x in ps if x.get("delivered_s") is not None]
        t.append(("%d queued: new mail not stalled by the retry pass "
                  "(every probe delivered within 5 s)" % q["n"],
                  "%d of %d delivered, the slowest after %.2f s" % (len(lat), len(ps), max(lat))
                  if lat else "not measured",
                  None if not ps else len(lat) == len(ps) and max(lat) <= 5.0, None))
    # the first round's (issue 6), relay-bench's Python pair
    at_least("first round: c20-4k accept >= 2.0x", rt("c20-4k"), 2.0)
    at_least("first round: c20-4k end to end >= 2.0x", rt("c20-4k", "e2e_rate"), 2.0)
    at_least("first round: c1-4k >= 1.5x", rt("c1-4k"), 1.5)
    at_least("first round: c100-4k >= 2.0x", rt("c100-4k"), 2.0)
    at_least("first round: c20-1m >= 1.2x", rt("c20-1m"), 1.2)
    at_most("first round: c20-4k latency p99 <= 0.5x", lat_rt("c20-4k", "p99"), 0.5, "%.2f")
    at_most("first round: c20-4k CPU per message <= 1/3", cpu_rt("c20-4k"), 1 / 3.0, "%.2f")
    at_most("first round: c100-4k peak PSS <= 1/3", rt("c100-4k", "pss_peak"), 1 / 3.0,
            "%.2f")

    if not any(x[2] is not None for x in t):
        return []
    o = ["## Targets (issue 17, and the first round's of issue 6)", ""]
    o += ["Each target against this run's medians (ratios mailroot / Postfix).  A target "
          "not met names the part of the profile below that says where the time goes and "
          "what was tried.", ""]
    o += ["| target | this run | met |", "|---|---|---|"]
    for name, val, ok, _ in t:
        o.append("| %s | %s | %s |" % (name, val, "-" if ok is None else
                                       ("yes" if ok else "**no**")))
    o.append("")
    missed = [(name, why) for name, _, ok, why in t if ok is False]
    for name, why in missed:
        o.append("- %s, not met: %s" % (name, TARGET_WHY.get(why, "no profile yet.")))
    if missed:
        o.append("")
    return o


def full_report(a):
    res = a.results
    meta = read_env(os.path.join(res, "meta.env"))
    med, runs, idle = {}, {}, {}
    for m in MTAS:
        lines = read_jsonl(os.path.join(res, m + ".jsonl"))
        med[m], runs[m] = series(lines)
        idle.update(idle_lines(lines))
    lim_med, _ = series(read_jsonl(os.path.join(res, "limit.jsonl")))
    quick = meta.get("quick") == "1"

    o = []
    o += ["# mailroot against Postfix: relay benchmark", ""]
    o += ["Written by `contrib/bench/run` (with `contrib/bench/report.py`) on %s.%s" % (
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "  **Smoke run (BENCH_QUICK=1): fewer messages, one run per row, no median.**"
        if quick else ""), ""]
    o += ["Every figure comes from relay-bench: Postfix listens on 127.0.0.1:2525 and "
          "mailroot on 127.0.0.1:2527, and each relays everything to relay-bench's sink on "
          "127.0.0.1:2526; client, MTA and sink share the host, inside a network namespace "
          "that has only a loopback interface.  Each row is measured for one MTA right after "
          "the other (Postfix first in odd rows, mailroot first in even ones), so that a host "
          "that speeds up or slows down during the run weighs on both alike; each MTA is "
          "started for its turn and stopped after it, every process gone, so that nothing one "
          "leaves behind runs during the other's turn.  Rows `ss-…` and `dkim-…` use "
          "Postfix's smtp-source and smtp-sink instead of relay-bench's Python pair, rows "
          "`mrb-…`, `tls-…`, `fanout-…` and `backlog-…` contrib/bench/mrb-smtp (C, "
          "libevent and OpenSSL), driven by contrib/bench/mrbrun.py.  Each row: "
          "%s after a discarded warmup, one message per connection, one recipient.  "
          "Ratios are mailroot / Postfix: above 1 is better for mailroot in the rates, below 1 "
          "is better in latency, memory and CPU.  Absolute numbers move with the host; compare "
          "the ratios, and both against the loopback ceiling." % (
              "the median of %s runs" % meta.get("repeat", "3") if not quick
              else "a single run"), ""]

    o += ["## Machine", ""]
    o += ["| | |", "|---|---|"]
    for k, v in machine():
        o.append("| %s | %s |" % (k, v))
    for k, lab in (("load_start", "load average at start"), ("load_end", "load average at end"),
                   ("run_minutes", "length of the run, minutes"), ("rows", "rows (BENCH_ROWS)")):
        if meta.get(k):
            o.append("| %s | %s |" % (lab, meta[k]))
    o.append("")
    o += ["The load averages include anything else the host ran meanwhile; on a busy host "
          "the figures are noisy (the client and sink need CPU too).", ""]

    o += ["## Versions", ""]
    src = a.srcdir or "."
    o.append("- Postfix %s (Debian package %s)" % (
        cmd(["postconf", "-dh", "mail_version"]) or "?",
        cmd(["dpkg-query", "-W", "-f", "${Version}", "postfix"]) or "?"))
    if meta.get("mailroot_git"):
        desc, head = meta["mailroot_git"], meta.get("mailroot_commit", "?")
    else:
        desc = cmd(["git", "describe", "--always", "--dirty", "--tags"], cwd=src)
        head = cmd(["git", "rev-parse", "HEAD"], cwd=src)
    subj = cmd(["git", "log", "-1", "--format=%s", head], cwd=src) if head else ""
    o.append("- mailroot %s (commit %s, \"%s\")%s" % (
        desc or "?", head or "?", subj,
        "; the working tree had uncommitted changes" if desc.endswith("-dirty") else ""))
    if meta.get("mailrootd_sha256"):
        o.append("- mailrootd binary: built %s, sha256 %s…, from the build directory "
                 "given as MAILROOT_BUILDDIR (the state of the tree when the run began)" % (
                     meta.get("mailrootd_mtime", "?"), meta["mailrootd_sha256"]))
    rbv = meta.get("relay_bench")
    if rbv:
        o.append("- relay-bench: %s" % rbv)
    o.append("")

    # ------------------------------------------------------------------ summary
    o += ["## Summary (mailroot / Postfix)", ""]
    o += ["Rows named `ss-…` use Postfix's smtp-source as client and smtp-sink as next "
          "hop; `mrb-…` and `tls-…` contrib/bench/mrb-smtp, the benchmark's own client and "
          "sink in C (`tls-…`: STARTTLS on both hops); the others relay-bench's Python pair.  `of ceiling` is mailroot's accept "
          "rate as a share of the direct client-to-sink rate of the same pair and shape, "
          "measured in this run; `spread` is the accept rate of each MTA's runs, lowest to "
          "highest, and the largest distance from their median.", ""]
    o += ["| run | accept msg/s | e2e msg/s | latency p50 | latency p99 | peak RSS | peak PSS "
          "| CPU per 1000 msg | mailroot of ceiling | spread Postfix | spread mailroot |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in ROWS:
        p = med["postfix"].get("postfix " + row)
        m = med["mailroot"].get("mailroot " + row)
        if not p and not m:
            continue
        g = lambda r, k: r.get(k) if r else None
        lat = lambda r, k: (r.get("latency_ms") or {}).get(k) if r else None
        lim = ceiling(lim_med, row)
        share = "-"
        if m and lim and lim.get("accept_rate"):
            share = "%.0f %%" % (100.0 * m["accept_rate"] / lim["accept_rate"])
        o.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            row, ratio(g(m, "accept_rate"), g(p, "accept_rate")),
            ratio(g(m, "e2e_rate"), g(p, "e2e_rate")),
            ratio(lat(m, "p50"), lat(p, "p50")), ratio(lat(m, "p99"), lat(p, "p99")),
            ratio(g(m, "rss_peak"), g(p, "rss_peak")), ratio(g(m, "pss_peak"), g(p, "pss_peak")),
            ratio(cpu_per_1000(m), cpu_per_1000(p)), share,
            spread(runs["postfix"].get("postfix " + row, [])),
            spread(runs["mailroot"].get("mailroot " + row, []))))
    pi, mi = idle.get("postfix idle"), idle.get("mailroot idle")
    if pi and mi:
        o += ["", "Idle, before the first run: RSS %s, PSS %s (mailroot / Postfix)." % (
            ratio(mi["rss"], pi["rss"]), ratio(mi["pss"], pi["pss"]))]
    o.append("")

    o += targets_section(med, runs, lim_med, res)
    o += dkim_section(med, runs, meta)
    o += fanout_section(med, runs)
    o += backlog_section(med, runs)
    o += qscale_section(res)

    # ------------------------------------------------------------------ ceiling
    o += ["## Loopback ceilings (relay-bench limit)", ""]
    if lim_med:
        o += ["No MTA: each client straight into its own sink, for every shape of the rows "
              "measured (`builtin`: relay-bench's Python pair; `smtp-source`: Postfix's "
              "smtp-source into smtp-sink).  An MTA in between cannot beat this.", ""]
        o += ["| shape, client → sink | n | accept msg/s | e2e msg/s | latency p50 / p99 ms "
              "| spread |", "|---|---|---|---|---|---|"]
        _, lim_runs = series(read_jsonl(os.path.join(res, "limit.jsonl")))
        for label, r in lim_med.items():
            lat = r.get("latency_ms") or {}
            o.append("| %s | %d | %s | %s | %s | %s |" % (
                label.replace("limit ", ""), r["count"], fmt(r["accept_rate"], "%.0f"),
                fmt(r["e2e_rate"], "%.0f"),
                "%s / %s" % (fmt(lat.get("p50")), fmt(lat.get("p99")))
                if lat.get("p50") is not None else "-",
                spread(lim_runs.get(label, []))))
    else:
        o.append("Not measured.")
    o.append("")

    # ------------------------------------------------------------------ rows
    o += ["## Results per run", ""]
    if pi or mi:
        o += ["Idle memory, before the first run (relay-bench rss):", ""]
        o += ["| | Postfix | mailroot | mailroot/Postfix |", "|---|---|---|---|"]
        for k, lab in (("rss", "idle RSS MiB"), ("pss", "idle PSS MiB"), ("procs", "processes")):
            pv, mv = (pi or {}).get(k), (mi or {}).get(k)
            f = (lambda v: fmt(v / MIB if isinstance(v, (int, float)) else None)) \
                if k != "procs" else (lambda v: fmt(v, "%d"))
            o.append("| %s | %s | %s | %s |" % (lab, f(pv), f(mv), ratio(mv, pv)))
        o.append("")
    for row in ROWS:
        p = med["postfix"].get("postfix " + row)
        m = med["mailroot"].get("mailroot " + row)
        if not p and not m:
            continue
        r0 = p or m
        o += ["### %s: %d messages of %s, %d parallel session%s%s; %s" % (
            row, r0["count"], row_shape(row).split("-")[1], r0["sessions"],
            "" if r0["sessions"] == 1 else "s",
            ", median of %d" % r0["median_of"] if r0.get("median_of") else "",
            row_pair(row)[2]), ""]
        o += ["| | Postfix | mailroot | mailroot/Postfix |", "|---|---|---|---|"]

        def line(lab, pv, mv, f="%.1f"):
            o.append("| %s | %s | %s | %s |" % (lab, fmt(pv, f), fmt(mv, f), ratio(mv, pv)))

        g = lambda r, k: r.get(k) if r else None
        lat = lambda r, k: (r.get("latency_ms") or {}).get(k) if r else None
        mib = lambda v: v / MIB if isinstance(v, (int, float)) else None
        line("accept msg/s", g(p, "accept_rate"), g(m, "accept_rate"), "%.0f")
        line("e2e msg/s", g(p, "e2e_rate"), g(m, "e2e_rate"), "%.0f")
        line("latency p50 ms", lat(p, "p50"), lat(m, "p50"))
        line("latency p99 ms", lat(p, "p99"), lat(m, "p99"))
        line("RSS before the run MiB", mib(g(p, "rss_before")), mib(g(m, "rss_before")))
        line("peak RSS MiB", mib(g(p, "rss_peak")), mib(g(m, "rss_peak")))
        line("peak PSS MiB", mib(g(p, "pss_peak")), mib(g(m, "pss_peak")))
        line("idle RSS MiB (before the first run)", mib((pi or {}).get("rss")),
             mib((mi or {}).get("rss")))
        line("peak processes", g(p, "procs_peak"), g(m, "procs_peak"), "%d")
        line("MTA CPU s per 1000 messages", cpu_per_1000(p), cpu_per_1000(m), "%.2f")
        if (p or m or {}).get("sink_sessions") is not None:
            o.append("| new sessions at the sink (of them TLS) | %s | %s | |" % tuple(
                "%s (%s)" % (r.get("sink_sessions"), r.get("sink_tls_sessions"))
                if r else "-" for r in (p, m)))
        if (p or m or {}).get("sink_tls_msgs") is not None:
            o.append("| messages that reached the sink over TLS | %s | %s | |" % tuple(
                str(r.get("sink_tls_msgs")) if r else "-" for r in (p, m)))
        o.append("| accepted / delivered / failed | %s | %s | |" % tuple(
            ("%d / %d / %d%s%s" % (r["accepted"], r["delivered"], r.get("failed", 0),
                                   " DRAIN TIMEOUT" if r.get("drain_timeout") else "",
                                   " dup %d" % r["duplicates"] if r.get("duplicates") else ""))
            if r else "-" for r in (p, m)))
        allr = lambda mta, lab: [x for x in runs[mta].get(lab, [])]
        pr, mr = allr("postfix", "postfix " + row), allr("mailroot", "mailroot " + row)
        if len(pr) > 1 or len(mr) > 1:
            o.append("| accept msg/s of each run | %s | %s | |" % (
                ", ".join(fmt(x["accept_rate"], "%.0f") for x in pr) or "-",
                ", ".join(fmt(x["accept_rate"], "%.0f") for x in mr) or "-"))
            o.append("| spread of accept msg/s (min–max, ± of median) | %s | %s | |" % (
                spread(pr), spread(mr)))
            o.append("| spread of e2e msg/s | %s | %s | |" % (
                spread(pr, "e2e_rate"), spread(mr, "e2e_rate")))
        lim = ceiling(lim_med, row)
        if lim and lim.get("accept_rate"):
            o.append("| share of the direct ceiling (%s msg/s) | %s | %s | |" % (
                fmt(lim["accept_rate"], "%.0f"),
                fmt(p and 100.0 * p["accept_rate"] / lim["accept_rate"], "%.0f %%"),
                fmt(m and 100.0 * m["accept_rate"] / lim["accept_rate"], "%.0f %%")))
        o.append("")

    # ------------------------------------------------------------------ problems
    o += ["## Problems seen", ""]
    probs = []
    for mta in MTAS:
        for label, rs in runs[mta].items():
            for x in rs:
                bad = []
                if x.get("failed"):
                    bad.append("%d failed (%s)" % (x["failed"], ", ".join(
                        "%s × %d" % kv for kv in list((x.get("errors") or {}).items())[:3])))
                if x.get("delivered", 0) < x.get("accepted", 0):
                    bad.append("%d accepted but not delivered" % (x["accepted"] - x["delivered"]))
                if x.get("drain_timeout"):
                    bad.append("drain timeout")
                if x.get("duplicates"):
                    bad.append("%d duplicates" % x["duplicates"])
                if bad:
                    probs.append("- %s: %s" % (label, "; ".join(bad)))
    for k, lab in (("postfix_left", "Postfix"), ("mailroot_left", "mailroot")):
        v = meta.get(k)
        if v not in (None, "-", "0"):
            probs.append("- %s: %s files left in its queue after its last run" % (lab, v))
    if probs:
        o += probs
    else:
        o.append("- relay-bench: every accepted message reached the sink, once; no failed "
                 "transactions, no drain timeout; both queues empty at the end.")
    o.append("")
    n, groups = log_problems(os.path.join(res, "logs", "mailroot-syslog.log"),
                             r"^<(1[6-9]|20)>")
    if n is not None:
        o.append("mailroot's log (syslog, captured by the run): %d lines of severity "
                 "warning or worse%s" % (n, ":" if n else "."))
        if n:
            o += ["", "```"] + ["%6d × %s" % (c, ex) for c, ex in groups] + ["```"]
        o.append("")
    n, groups = log_problems(os.path.join(res, "logs", "postfix-maillog.log"),
                             r"postfix/\S+\[\d+\]: (warning|error|fatal|panic):")
    if n is not None:
        o.append("Postfix's maillog_file: %d lines of warning or worse%s" % (n, ":" if n else "."))
        if n:
            o += ["", "```"] + ["%6d × %s" % (c, ex) for c, ex in groups] + ["```"]
        o.append("")

    # ------------------------------------------------------------------ caveats
    o += ["## Notes on fairness", ""]
    o.append("- mailroot logs to syslog; the run's syslog receiver (a small Python process) "
             "is not in mailroot's process tree, so its CPU is not in mailroot's figures: "
             "%s s over all of mailroot's runs, warmups included.  Postfix logs through its "
             "own postlogd, which is counted." % meta.get("syslog_receiver_cpu_during_mailroot", "?"))
    o.append("- Each MTA starts afresh for each row, so the memory of its tree before a run "
             "holds no processes left from earlier rows (Postfix keeps idle smtpd and smtp "
             "processes for max_idle seconds; they do grow within a row's warmup and repeats).")
    o.append("- The reference main.cf leaves Postfix's compiled-in `alias_maps` "
             "(hash:/etc/aliases, nis:mail.aliases); on this host there is no "
             "/etc/aliases.db, so each new Postfix smtpd logs an error and a warning once "
             "at start (see above), not per message.")
    o.append("- Client, sink and MTA share the CPUs; with %s CPUs the client and sink cost "
             "is a large part of the total (see the client and sink CPU in the JSON)." %
             os.cpu_count())
    o.append("")

    # ------------------------------------------------------------------ configs
    o += ["## Configurations", ""]
    o += ["Postfix: a private instance (`postfix -c CONFDIR start`), its own configuration "
          "and queue directories under a temporary directory (`$TMP` below).  `main.cf` is the "
          "reference configuration of relay-bench's README; only paths differ: `maillog_file` "
          "points into `$TMP` (so `maillog_file_prefixes` must allow it) and "
          "`queue_directory` and `data_directory` are the instance's own.  `master.cf` is "
          "Debian's /etc/postfix/master.cf with the `smtp inet` line replaced by the line "
          "shown.  The files the chrooted daemons need (/etc/services, resolv.conf, hosts, "
          "...) are copied into `$TMP/postfix/spool/etc` as Debian does for its own queue "
          "directory.", ""]
    extra = sorted(f for f in os.listdir(res)
                   if f.startswith("mailroot-") and f.endswith(".conf"))
    pextra = sorted(f for f in os.listdir(res)
                    if f.startswith("postfix-main-") and f.endswith(".cf"))
    for fn, title in [("postfix-main.cf", "main.cf"),
                      ("postfix-master.cf.line", "master.cf, the changed line")] + [
                          (f, "Postfix main.cf of row %s" % f[len("postfix-main-"):-len(".cf")])
                          for f in pextra] + [("mailroot.conf", "mailroot.conf")] + [
                          (f, "mailroot.conf of row %s" % f[len("mailroot-"):-len(".conf")])
                          for f in extra]:
        try:
            with open(os.path.join(res, fn)) as f:
                text = f.read().rstrip("\n")
        except OSError:
            continue
        if fn == "mailroot.conf":
            o += ["mailroot: `mailrootd -f mailroot.conf -p PIDFILE` from the build tree "
                  "(not -d: it logs to syslog; the run gives it a /dev/log of its own inside "
                  "a private mount namespace and keeps what it logs).  Started as root, so "
                  "its children run as mailroot, mailroot-smtpd (chrooted into `$TMP/"
                  "mailroot/empty`) and mailroot-deliver.  Every other setting has its "
                  "default (`mailrootd -P` prints them); the contrib/bench/idle rounds add "
                  "`connections 0` to `limits`.", ""]
        o += ["%s:" % title, "", "```", text, "```", ""]
    if meta.get("postfix_chroot") and meta.get("postfix_chroot") != "y":
        o += ["Note: Postfix's smtpd ran without chroot (`n`), unlike the reference line.", ""]
    o += idle_section(res)
    return "\n".join(o) + "\n"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--results", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--builddir")
    p.add_argument("--srcdir")
    p.add_argument("--idle-only", action="store_true",
                   help="replace only the idle section of --output")
    a = p.parse_args()
    if a.idle_only:
        sec = "\n".join(idle_section(a.results)) + "\n"
        try:
            with open(a.output) as f:
                text = f.read()
        except OSError:
            text = "# mailroot against Postfix: relay benchmark\n\n"
        i, j = text.find(IDLE_BEGIN), text.find(IDLE_END)
        if i >= 0 and j > i:
            text = text[:i] + sec + text[j + len(IDLE_END):].lstrip("\n")
        else:
            text = text.rstrip("\n") + "\n\n" + sec
    else:
        text = full_report(a)
        # the profile is written by hand (contrib/bench/PROFILE.md): where
        # mailroot's CPU goes, measured with perf; kept with the figures
        prof = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "PROFILE.md")
        if os.path.exists(prof):
            with open(prof) as f:
                text = text.rstrip("\n") + "\n\n" + f.read()
        # so is ctl-queue's figure (contrib/bench/CTL-QUEUE.md)
        ctlq = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "CTL-QUEUE.md")
        if os.path.exists(ctlq):
            with open(ctlq) as f:
                text = text.rstrip("\n") + "\n\n" + f.read()
    tmp = a.output + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
