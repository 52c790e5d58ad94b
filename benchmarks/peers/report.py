#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Report of benchmarks/suite.sh: medians, same-run ratios ringwork/peer and the targets.

  report.py --raw RAW.csv --meta META.txt --micro MICRO.txt --out PREFIX

RAW.csv has one measurement per line: round,scenario,server,metric,value. Writes PREFIX.md
(every figure, every ratio, the targets marked met or missed, the rounds, the micro-benchmark
output), PREFIX.csv (the same medians and ratios), PREFIX.dat and PREFIX.png (bar chart of the
ratios, drawn by gnuplot when it is installed).
"""
import argparse
import collections
import csv
import math
import os
import shutil
import statistics
import subprocess

SERVERS = ["ringwork", "ringwork-metrics", "ringwork-epoll", "fasthttp", "nginx", "bare"]
PEERS = ["ringwork-metrics", "ringwork-epoll", "fasthttp", "nginx", "bare"]

# (scenario, metric, what the row is, unit, format): the order of the table.
ROWS = [
    ("plaintext-keepalive", "rps", "plaintext keep-alive", "req/s", "{:,.0f}"),
    ("plaintext-keepalive", "cpu_us", "plaintext keep-alive", "server CPU us/request", "{:.3f}"),
    ("plaintext-keepalive", "p99_us", "plaintext keep-alive, saturated (wrk)", "p99 us", "{:,.0f}"),
    ("plaintext-pipelined16", "rps", "plaintext pipelined x16", "req/s", "{:,.0f}"),
    ("plaintext-pipelined16", "cpu_us", "plaintext pipelined x16", "server CPU us/request", "{:.3f}"),
    ("plaintext-pipelined16", "cpu_busy_pct", "plaintext pipelined x16", "server CPU busy, % of one CPU", "{:.0f}"),
    ("plaintext-pipelined16-lean", "rps", "plaintext pipelined x16, pipe_load", "req/s", "{:,.0f}"),
    ("plaintext-pipelined16-lean", "cpu_us", "plaintext pipelined x16, pipe_load",
     "server CPU us/request", "{:.3f}"),
    ("plaintext-pipelined16-lean", "cpu_busy_pct", "plaintext pipelined x16, pipe_load",
     "server CPU busy, % of one CPU", "{:.0f}"),
    ("json-keepalive", "rps", "JSON keep-alive", "req/s", "{:,.0f}"),
    ("json-keepalive", "cpu_us", "JSON keep-alive", "server CPU us/request", "{:.3f}"),
    ("json-keepalive", "p99_us", "JSON keep-alive, saturated (wrk)", "p99 us", "{:,.0f}"),
]
for pct in (25, 50, 75):
    s = f"latency-{pct}"
    what = f"plaintext at {pct} % of nginx's max (h2load)"
    ROWS += [
        (s, "rate_target", what, "req/s asked (each round asks its own share of nginx's max)", "{:,.0f}"),
        (s, "rps", what, "req/s reached", "{:,.0f}"),
        (s, "rate_reached_pct", what, "% of its round's asked rate reached", "{:.1f}"),
        (s, "p50_us", what, "p50 us", "{:,.0f}"),
        (s, "p99_us", what, "p99 us", "{:,.0f}"),
        (s, "p999_us", what, "p99.9 us", "{:,.0f}"),
        (s, "cpu_us", what, "server CPU us/request", "{:.3f}"),
        (s, "failed", what, "failed requests", "{:.0f}"),
    ]
ROWS += [
    ("idle-memory", "rss_kib_per_conn", "idle keep-alive connections", "RSS KiB/connection", "{:.2f}"),
    ("idle-memory", "slab_kib_per_conn", "idle keep-alive connections",
     "kernel Slab KiB/connection (both ends, machine-wide)", "{:.2f}"),
    ("idle-memory", "open_seconds", "idle keep-alive connections", "seconds to open them", "{:.2f}"),
    ("plaintext-keepalive", "allocs_per_req", "plaintext keep-alive", "heap allocations/request", "{:.6f}"),
    ("plaintext-pipelined16", "allocs_per_req", "plaintext pipelined x16", "heap allocations/request",
     "{:.6f}"),
    ("json-keepalive", "allocs_per_req", "JSON keep-alive", "heap allocations/request", "{:.6f}"),
]
for s, what in (("plaintext-keepalive", "plaintext keep-alive"), ("plaintext-pipelined16", "plaintext pipelined x16"),
                ("json-keepalive", "JSON keep-alive")):
    ROWS += [
        (s, "alloc_warmup_windows", what, "warm-up windows of 2,000 requests (until one allocated nothing)",
         "{:.0f}"),
        (s, "alloc_warmup_allocs", what, "heap allocations during the warm-up (pools growing)", "{:.0f}"),
        (s, "alloc_warmup_settled", what, "warm-up ended by a window without allocation (1 = yes)", "{:.0f}"),
    ]
ROWS += [
    ("callgrind-plaintext-pipelined16", "instr_per_req", "plaintext pipelined x16 (callgrind)",
     "instructions/request (user space)", "{:,.0f}"),
    ("callgrind-json-pipelined16", "instr_per_req", "JSON pipelined x16 (callgrind)",
     "instructions/request (user space)", "{:,.0f}"),
]

# The chart: (label, scenario, metric).
CHART = [
    ("keep-alive req/s", "plaintext-keepalive", "rps"),
    ("keep-alive CPU/req", "plaintext-keepalive", "cpu_us"),
    ("pipelined req/s", "plaintext-pipelined16", "rps"),
    ("pipelined CPU/req", "plaintext-pipelined16", "cpu_us"),
    ("pipelined req/s (pipe_load)", "plaintext-pipelined16-lean", "rps"),
    ("JSON req/s", "json-keepalive", "rps"),
    ("JSON CPU/req", "json-keepalive", "cpu_us"),
    ("p99 at 25%", "latency-25", "p99_us"),
    ("p99 at 50%", "latency-50", "p99_us"),
    ("p99 at 75%", "latency-75", "p99_us"),
    ("idle KiB/conn", "idle-memory", "rss_kib_per_conn"),
]


def load_raw(path):
    values = collections.defaultdict(list)  # (scenario, server, metric) -> [(round, value)]
    with open(path, newline="") as f:
        for rnd, scenario, server, metric, value in csv.reader(f):
            values[(scenario, server, metric)].append((int(rnd), float(value)))
    return values


def load_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            meta[key] = value
    return meta


class Figures:
    def __init__(self, values):
        self.values = values
        # The paced runs ask each round for a share of that round's nginx maximum, so the
        # medians of "asked" and "reached" come from different rounds: what compares is the
        # share of its own round's target that each run reached.
        for (scenario, server, metric), reached in list(values.items()):
            if metric != "rps" or not scenario.startswith("latency-"):
                continue
            asked = dict(values.get((scenario, server, "rate_target"), []))
            share = [(rnd, 100.0 * v / asked[rnd]) for rnd, v in reached if asked.get(rnd)]
            if share:
                values[(scenario, server, "rate_reached_pct")] = share

    def median(self, scenario, server, metric):
        v = self.values.get((scenario, server, metric))
        return statistics.median(x for _, x in v) if v else None

    def ratio(self, scenario, metric, peer):
        a = self.median(scenario, "ringwork", metric)
        b = self.median(scenario, peer, metric)
        return a / b if a is not None and b else None

    def rounds(self, scenario, server, metric):
        return dict(self.values.get((scenario, server, metric), []))


def targets(fig):
    """The decision rule's targets: (text, measured, met) with met None when not measured."""
    out = []

    def add(text, measured, value, ok):
        out.append((text, measured if value is not None else "not measured",
                    None if value is None else ok(value)))

    v = fig.median("plaintext-pipelined16", "ringwork", "cpu_us")
    add("pipelined x16: server CPU <= 0.7 us/request", f"{v:.3f} us" if v else "", v, lambda x: x <= 0.7)
    r = fig.ratio("plaintext-pipelined16", "rps", "fasthttp")
    add("pipelined x16: req/s >= 1.6x fasthttp (b: wrk -t1)", f"{r:.3f}x" if r else "",
        r, lambda x: x >= 1.6)
    r = fig.ratio("plaintext-pipelined16-lean", "rps", "fasthttp")
    add("pipelined x16: req/s >= 1.6x fasthttp (b': pipe_load)", f"{r:.3f}x" if r else "",
        r, lambda x: x >= 1.6)
    r = fig.ratio("plaintext-keepalive", "cpu_us", "bare")
    add("plaintext keep-alive: CPU/request <= 1.10x the bare liburing loop", f"{r:.3f}x" if r else "",
        r, lambda x: x <= 1.10)
    r = fig.ratio("json-keepalive", "cpu_us", "nginx")
    add("JSON keep-alive: CPU/request < nginx", f"{r:.3f}x" if r else "", r, lambda x: x < 1.0)
    r = fig.ratio("json-keepalive", "cpu_us", "fasthttp")
    add("JSON keep-alive: CPU/request <= 0.75x fasthttp", f"{r:.3f}x" if r else "", r,
        lambda x: x <= 0.75)
    for pct in (25, 50, 75):
        r = fig.ratio(f"latency-{pct}", "p99_us", "nginx")
        add(f"p99 <= nginx at {pct} % of nginx's max rate", f"{r:.3f}x" if r else "", r,
            lambda x: x <= 1.0)
    v = fig.median("idle-memory", "ringwork", "rss_kib_per_conn")
    add("idle keep-alive memory <= 0.5 KiB/connection", f"{v:.2f} KiB" if v is not None else "", v,
        lambda x: x <= 0.5)
    allocs = [fig.median(s, "ringwork", "allocs_per_req")
              for s in ("plaintext-keepalive", "plaintext-pipelined16", "json-keepalive")]
    allocs = [a for a in allocs if a is not None]
    worst = max(allocs) if allocs else None
    add("zero heap allocations/request (steady state, every case)",
        f"{worst:.6f} (worst case)" if worst is not None else "", worst, lambda x: x == 0)
    throughput = (("plaintext-keepalive", "plaintext keep-alive"),
                  ("plaintext-pipelined16", "pipelined x16"),
                  ("json-keepalive", "JSON keep-alive"))

    def cpu_ratio(scenario, a, b):
        x = fig.median(scenario, a, "cpu_us")
        y = fig.median(scenario, b, "cpu_us")
        return x / y if x is not None and y else None

    def add_ratio(text, r, ok):
        add(text, f"{r:.3f}x" if r else "", r, ok)

    for scenario, label in throughput:
        # Issue 10: metrics on (techempower --metrics: every request counted and timed) costs
        # under 2 % of CPU per request.
        add_ratio(f"metrics on, {label}: CPU/request < 1.02x metrics off",
                  cpu_ratio(scenario, "ringwork-metrics", "ringwork"), lambda x: x < 1.02)
    for scenario, label in throughput:
        # Issue 9: the epoll backend (the same app with RINGWORK_BACKEND=epoll) within 15 % of
        # the io_uring backend's CPU per request, and ahead of fasthttp.
        add_ratio(f"epoll backend, {label}: CPU/request <= 1.15x io_uring",
                  cpu_ratio(scenario, "ringwork-epoll", "ringwork"), lambda x: x <= 1.15)
        add_ratio(f"epoll backend, {label}: CPU/request < fasthttp",
                  cpu_ratio(scenario, "ringwork-epoll", "fasthttp"), lambda x: x < 1.0)
    return out


def cell(fmt, value):
    return "" if value is None else fmt.format(value)


def write_report(fig, meta, micro, prefix):
    present = [s for s in SERVERS if any(k[1] == s for k in fig.values)]
    peers = [p for p in PEERS if p in present]
    rows = [r for r in ROWS if any(fig.median(r[0], s, r[1]) is not None for s in present)]
    name = os.path.basename(prefix)
    lines = [
        f"# ringwork benchmark suite: {meta.get('date', '')} on {meta.get('host', '')} "
        f"({meta.get('mode', '')})",
        "",
        f"Command: `{meta.get('command', '').strip()}`",
        "",
        f"- Machine: {meta.get('cpus', '')} CPUs, kernel {meta.get('kernel', '')}; "
        f"load average (1/5/15 min) {meta.get('load_start', '')} at the start, "
        f"{meta.get('load_end', '')} at the end.",
        f"- ringwork {meta.get('ringwork', '')}, build {meta.get('buildtype', '')}; "
        f"{meta.get('versions', '')}.",
        f"- {meta.get('rounds', '')} interleaved rounds, wrk and pipe_load runs of {meta.get('duration', '')} s, "
        + (f"h2load runs of {meta.get('latency_duration', '')} s, "
           if any(k[0].startswith("latency-") for k in fig.values) else "")
        + f"{meta.get('connections', '')} connections; servers {meta.get('threads', '')} "
        f"thread(s) on CPU "
        f"{meta.get('server_cpu', '')}, clients on CPU {meta.get('client_cpu', '')}.",
        "- Figures are medians over the rounds; ratios are ringwork / peer from the medians of "
        "this run. Server CPU is utime+stime of the server's process tree over a run divided by "
        "the requests completed. Only ratios within one run compare: host load moves absolute "
        "figures by 10-25 %.",
        "",
        "## Figures and ratios",
        "",
        "| scenario | figure | " + " | ".join(present) + " | "
        + " | ".join(f"ringwork/{p}" for p in peers) + " |",
        "|---|---|" + "---:|" * (len(present) + len(peers)),
    ]
    csv_rows = [["scenario", "metric", "unit"] + present + [f"ringwork/{p}" for p in peers]]
    for scenario, metric, what, unit, fmt in rows:
        meds = [fig.median(scenario, s, metric) for s in present]
        ratios = [fig.ratio(scenario, metric, p) for p in peers]
        if metric in ("rate_target", "failed", "open_seconds", "cpu_busy_pct"):
            ratios = [None] * len(peers)
        lines.append(f"| {what} | {unit} | " + " | ".join(cell(fmt, m) for m in meds) + " | "
                     + " | ".join(cell("{:.3f}", r) for r in ratios) + " |")
        csv_rows.append([scenario, metric, unit] + ["" if m is None else f"{m:g}" for m in meds]
                        + ["" if r is None else f"{r:.4f}" for r in ratios])
    lines += ["", "Ratios: below 1 is better for CPU, latency and memory; above 1 for req/s.", ""]

    if meta.get("mode") == "single-core":
        lines += ["## Targets (decision rule in docs/benchmarks.md)", "",
                  "| target | measured | verdict |", "|---|---:|---|"]
        for text, measured, met in targets(fig):
            verdict = "not measured" if met is None else ("**met**" if met else "**missed**")
            lines.append(f"| {text} | {measured} | {verdict} |")
        lines.append("")

    lines += ["## Rounds", "", "Server CPU us/request and req/s of every round (raw data: "
              f"`{name}-raw.csv`).", ""]
    for scenario, label in (("plaintext-keepalive", "plaintext keep-alive"),
                            ("plaintext-pipelined16", "plaintext pipelined x16"),
                            ("plaintext-pipelined16-lean", "plaintext pipelined x16, pipe_load"),
                            ("json-keepalive", "JSON keep-alive")):
        servers = [s for s in present if fig.rounds(scenario, s, "cpu_us")]
        if not servers:
            continue
        lines += [f"{label}:", "", "| round | load avg | " + " | ".join(
            f"{s} us/req | {s} req/s" for s in servers) + " |",
            "|---:|---:|" + "---:|" * (2 * len(servers))]
        loads = fig.rounds("machine", "-", "loadavg1")
        for rnd in sorted(fig.rounds(scenario, servers[0], "cpu_us")):
            cells = []
            for s in servers:
                cells += [cell("{:.3f}", fig.rounds(scenario, s, "cpu_us").get(rnd)),
                          cell("{:,.0f}", fig.rounds(scenario, s, "rps").get(rnd))]
            lines.append(f"| {rnd} | {cell('{:.2f}', loads.get(rnd))} | " + " | ".join(cells) + " |")
        lines.append("")

    if micro.strip():
        lines += ["## Micro-benchmarks", "", "```", micro.rstrip(), "```", ""]
    lines += ["## Chart", "", f"![ratios ringwork/peer]({name}.png)", ""]
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(lines))
    with open(prefix + ".csv", "w", newline="") as f:
        csv.writer(f).writerows(csv_rows)


def write_chart(fig, meta, prefix):
    chart_peers = [p for p in ("fasthttp", "nginx") if any(k[1] == p for k in fig.values)]
    rows = []
    for label, scenario, metric in CHART:
        ratios = [fig.ratio(scenario, metric, p) for p in chart_peers]
        if any(r is not None for r in ratios):
            rows.append((label, ratios))
    with open(prefix + ".dat", "w") as f:
        f.write("# ratio ringwork/peer (medians of one run)\tfigure\t" + "\t".join(chart_peers) + "\n")
        for label, ratios in rows:
            f.write(f'"{label}"\t' + "\t".join("?" if r is None else f"{r:.4f}" for r in ratios) + "\n")
    if not rows or shutil.which("gnuplot") is None:
        return
    name = os.path.basename(prefix)
    known = [r for _, ratios in rows for r in ratios if r]
    low = 2 ** math.floor(math.log2(min(known + [1.0])) - 0.5)
    high = 2 ** math.ceil(math.log2(max(known + [1.0])) + 0.5)
    plots = ", ".join(f"'{name}.dat' using {i + 2}:xtic(1) title 'ringwork / {p}'" if i == 0
                      else f"'' using {i + 2} title 'ringwork / {p}'" for i, p in enumerate(chart_peers))
    script = f"""
set terminal pngcairo size 1100,600 font "sans,10"
set output '{name}.png'
set title "ringwork / peer, medians of {meta.get('rounds', '?')} rounds ({meta.get('mode', '')}, {meta.get('date', '')[:10]}); below 1 is better except req/s"
set datafile separator "\\t"
set datafile missing "?"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set logscale y 2
set yrange [{low}:{high}]
set grid ytics
set ylabel "ratio (log scale)"
set xtics rotate by -25
set key top left
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 dt 2 front
plot {plots}
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True, timeout=60,
                   cwd=os.path.dirname(prefix) or ".")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--raw", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--micro", required=True)
    p.add_argument("--out", required=True, help="output prefix")
    args = p.parse_args()
    fig = Figures(load_raw(args.raw))
    meta = load_meta(args.meta)
    with open(args.micro) as f:
        micro = f.read()
    write_report(fig, meta, micro, args.out)
    write_chart(fig, meta, args.out)


if __name__ == "__main__":
    main()
