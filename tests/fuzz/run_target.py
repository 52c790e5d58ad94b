#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Runs one libFuzzer target for a bounded time over its seed corpus; fails on any finding.
"""Run one libFuzzer target for a bounded time (the `fuzz` suite's test command).

Usage: run_target.py TARGET --seeds DIR --artifacts DIR [--dict FILE] [--seconds N]

The target fuzzes for RINGWORK_FUZZ_SECONDS seconds (default 30; --seconds overrides the
default, the environment overrides both). It first runs every file of the committed seed
directory (regression inputs `crash-*` / `regress-*` included), then mutates; new inputs go to
a temporary working corpus, never into the source tree. RINGWORK_FUZZ_ARGS adds libFuzzer
options (split like a shell would), e.g. `-jobs=1 -use_value_profile=1`.

Exit status 0 when libFuzzer ends cleanly, 1 on a crash, leak, sanitizer report, timeout,
out-of-memory or a bad setup. libFuzzer's own error exit code is 77, which Meson would count
as a skip, so this wrapper never passes it through. Findings are saved in the artifacts
directory (crash-*, leak-*, timeout-*, oom-*) with the full log in fuzz.log; the last lines
printed are the run's statistics (runs, exec/s, the final `cov:`/`ft:` numbers).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

FINDING_PREFIXES = ("crash-", "leak-", "timeout-", "oom-")
REPORT_RE = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)"
    r"|runtime error:|FUZZ_CHECK\("
)
COV_RE = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+)(?: corp: (\S+))?.*?(?:exec/s: (\d+))?")
STAT_RE = re.compile(r"^stat::(\w+):\s*(\d+)")


def seconds_to_run(default: int) -> int:
    raw = os.environ.get("RINGWORK_FUZZ_SECONDS", "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        sys.exit(f"run_target.py: RINGWORK_FUZZ_SECONDS={raw!r} is not a whole number of seconds")
    if value <= 0:
        sys.exit(f"run_target.py: RINGWORK_FUZZ_SECONDS={raw!r} must be positive")
    return value


def findings(artifacts: str) -> set[str]:
    try:
        return {f for f in os.listdir(artifacts) if f.startswith(FINDING_PREFIXES)}
    except OSError:
        return set()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("target")
    p.add_argument("--seeds", required=True, help="committed seed corpus (read only)")
    p.add_argument("--artifacts", required=True, help="where findings and fuzz.log go")
    p.add_argument("--dict", help="libFuzzer dictionary (used when the file exists)")
    p.add_argument("--seconds", type=int, default=30, help="default fuzzing time")
    args = p.parse_args(argv)

    name = os.path.basename(args.target)
    seconds = seconds_to_run(args.seconds)
    if not os.path.isdir(args.seeds) or not os.listdir(args.seeds):
        print(f"{name}: seed corpus {args.seeds} is missing or empty", file=sys.stderr)
        return 1
    os.makedirs(args.artifacts, exist_ok=True)
    before = findings(args.artifacts)
    log_path = os.path.join(args.artifacts, "fuzz.log")

    with tempfile.TemporaryDirectory(prefix=f"ringwork-{name}-") as work:
        cmd = [
            args.target,
            f"-max_total_time={seconds}",
            "-rss_limit_mb=2048",
            "-timeout=30",
            "-print_final_stats=1",
            f"-artifact_prefix={os.path.join(args.artifacts, '')}",
        ]
        if args.dict and os.path.isfile(args.dict):
            cmd.append(f"-dict={args.dict}")
        cmd += shlex.split(os.environ.get("RINGWORK_FUZZ_ARGS", ""))
        cmd += [work, args.seeds]  # new inputs go to the first directory
        print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
        with open(log_path, "w", encoding="utf-8", errors="replace") as log:
            start = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            try:
                rc = proc.wait(timeout=2 * seconds + 120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = None
            elapsed = time.monotonic() - start

    with open(log_path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()

    last_cov = None
    inited = None
    stats: dict[str, int] = {}
    for line in lines:
        m = COV_RE.match(line)
        if m:
            last_cov = line
            if m.group(2) == "INITED":
                inited = line
        s = STAT_RE.match(line)
        if s:
            stats[s.group(1)] = int(s.group(2))
    reported = [line for line in lines if REPORT_RE.search(line)]
    new_findings = sorted(findings(args.artifacts) - before)

    failed = rc != 0 or bool(reported) or bool(new_findings)
    if failed:
        print(f"--- last lines of {log_path} ---")
        for line in lines[-120:]:
            print(line)
        print("---")
        if rc is None:
            print(f"{name}: killed after {2 * seconds + 120} s (libFuzzer did not stop by itself)")
        else:
            print(f"{name}: libFuzzer exited with {rc}")
        for f in new_findings:
            print(f"{name}: finding saved as {os.path.join(args.artifacts, f)}")
            print(f"  reproduce: {args.target} {os.path.join(args.artifacts, f)}")

    if inited:
        print(f"{name}: seeds done: {inited}")
    if last_cov:
        print(f"{name}: final: {last_cov}")
    runs = stats.get("number_of_executed_units")
    if runs is not None:
        print(
            f"{name}: {runs} runs in {elapsed:.1f} s, {stats.get('average_exec_per_sec', 0)} exec/s, "
            f"{stats.get('new_units_added', 0)} new units, peak RSS "
            f"{stats.get('peak_rss_mb', 0)} MB"
        )
    print(f"{name}: {'FAILED' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
