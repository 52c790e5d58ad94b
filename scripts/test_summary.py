#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Summarises Meson testlog.json files, counting doctest cases; ends `N passed, M failed, K skipped`.
"""Summarise `meson test` results of one or more build directories.

Usage: test_summary.py [--meson-rc DIR=RC]... BUILD_DIR [BUILD_DIR...]

Reads BUILD_DIR/meson-logs/testlog.json (one JSON object per line). A test whose output contains
doctest's summary line (`[doctest] test cases: N | P passed | F failed | S skipped`) contributes
its P/F/S test cases; a test that Meson judged bad (crash, sanitizer report at exit, timeout...)
or that printed a sanitizer report while doctest reported no failure adds one failure (a UBSan
report need not change an exit status: without halt_on_error it recovers, and a forked child's
report was seen not to end the child in most runs). Any other test counts once, by its Meson
result. A missing, unreadable or empty testlog counts as a failure, and so does a Meson run whose
exit code (given with --meson-rc) was non-zero although no failing test was logged.

The last line printed is exactly `N passed, M failed, K skipped`. Exit status is 1 if M > 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field

DOCTEST_RE = re.compile(
    r"\[doctest\]\s*test\s+cases\s*:\s*(\d+)\s*\|\s*(\d+)\s+passed\s*\|\s*(\d+)\s+failed"
    r"\s*\|\s*(\d+)\s+skipped"
)
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A sanitizer's report. A UBSan report need not change any exit status (it recovers without
# halt_on_error, and in forked children it was seen not to halt with it), so a test that printed
# one fails here whatever Meson said.
SANITIZER_RE = re.compile(
    r"^\S+:\d+:\d+: runtime error: |^==\d+==\s*ERROR: \w*Sanitizer|^WARNING: ThreadSanitizer",
    re.MULTILINE,
)

# Meson results that mean "the test program did what was expected".
GOOD_RESULTS = {"OK", "SKIP", "EXPECTEDFAIL"}
# How a test without a doctest summary line counts.
PASS_RESULTS = {"OK", "EXPECTEDFAIL"}
SKIP_RESULTS = {"SKIP"}
# Everything else (FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, INTERRUPT, unknown) is a failure.

NO_SUITE = "(no suite)"


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, other: "Counts") -> None:
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped


@dataclass
class DirReport:
    build_dir: str
    suites: dict[str, Counts] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # (test label, excerpt of its output) for each failed test.
    excerpts: list[tuple[str, list[str]]] = field(default_factory=list)

    def suite(self, name: str) -> Counts:
        return self.suites.setdefault(name, Counts())

    def total(self) -> Counts:
        t = Counts()
        for c in self.suites.values():
            t.add(c)
        return t


def doctest_counts(text: str) -> Counts | None:
    """Sums every doctest summary line in TEXT; None if there is none."""
    matches = DOCTEST_RE.findall(ANSI_RE.sub("", text))
    if not matches:
        return None
    c = Counts()
    for _total, passed, failed, skipped in matches:
        c.passed += int(passed)
        c.failed += int(failed)
        c.skipped += int(skipped)
    return c


SEPARATOR_RE = re.compile(r"^={20,}\s*$")
# doctest's own failure lines ("file:line: ERROR: CHECK( ... ) is NOT correct!", FATAL ERROR for
# a REQUIRE or an exception). Case matters: passing tests log "error when serving ..." freely.
DOCTEST_FAILURE_RE = re.compile(r": (?:FATAL )?ERROR: ")
# What a forked child says before it exits with a code (tests/unit/http/server_resilience_test.cpp).
CHILD_RE = re.compile(r"^child check \d+ failed")
EXCERPT_LINES = 40
SANITIZER_CONTEXT = 12  # lines from the first sanitizer report (its first frames)
# Lines that continue a report: frames, notes, ASan's own lines, the summary.
REPORT_CONTINUATION_RE = re.compile(r"^(?:\s|#|0x|==\d+==|SUMMARY:|<memory|\w*Sanitizer|HINT:|Shadow )")
EXCERPTS_TOTAL = 160    # lines of excerpts for all failed tests together


def failure_excerpt(text: str, limit: int = EXCERPT_LINES) -> list[str]:
    """The lines that say why a test failed, at most LIMIT of them.

    In this order: the first sanitizer report with its first frames, what forked children said
    of their failed checks, and doctest's failure blocks (between lines of `=`) that hold an
    `ERROR:`. Without any of those (a crash, a timeout), the last lines of the output.
    """
    # doctest's own lines (version, counts, status) say nothing about why.
    lines = [l.rstrip("\r") for l in ANSI_RE.sub("", text).splitlines() if not l.startswith("[doctest] ")]
    lines = [l for l in lines if l.strip()]
    out: list[str] = []
    for i, line in enumerate(lines):
        if SANITIZER_RE.search(line):
            out.append(line)
            for more in lines[i + 1:i + SANITIZER_CONTEXT]:
                if not REPORT_CONTINUATION_RE.match(more):
                    break
                out.append(more)
            break
    out += [l for l in lines if CHILD_RE.match(l)]
    block: list[str] = []
    for line in lines + ["=" * 20]:
        if SEPARATOR_RE.match(line):
            if any(DOCTEST_FAILURE_RE.search(l) for l in block):
                out += block
            block = []
        else:
            block.append(line)
    if not out:
        out = lines[-limit:]
    if len(out) > limit:
        out = out[:limit - 1] + [f"... ({len(out) - limit + 1} more lines)"]
    return out


def suite_and_name(entry: dict) -> tuple[str, str]:
    """Returns (suite label, test name) for a testlog entry.

    Newer Meson versions may log a `suite` list; Meson 1.0 only logs a name that looks like
    `project:suite1+suite2 / test` when the project has several suites.
    """
    raw_name = str(entry.get("name", "<unnamed>"))
    suites = entry.get("suite")
    if isinstance(suites, str):
        suites = [suites]
    if isinstance(suites, list) and suites:
        labels = [str(s).split(":", 1)[-1] for s in suites]
        name = raw_name.split(" / ", 1)[1] if " / " in raw_name else raw_name
        return "+".join(labels), name
    if " / " in raw_name:
        prefix, name = raw_name.split(" / ", 1)
        label = prefix.split(":", 1)[1] if ":" in prefix else prefix
        return (label or NO_SUITE), name
    return NO_SUITE, raw_name


def entry_output(entry: dict) -> str:
    """What one test printed (Meson logs stdout and stderr together or apart)."""
    streams = (entry.get("stdout"), entry.get("stderr"), entry.get("output"))
    return "\n".join(v for v in streams if isinstance(v, str))


def has_sanitizer_report(output: str) -> bool:
    return SANITIZER_RE.search(ANSI_RE.sub("", output)) is not None


def count_entry(entry: dict, output: str) -> tuple[Counts, bool]:
    """Counts one test (`output`: its entry_output); the bool tells whether it failed as a whole."""
    result = str(entry.get("result", "ERROR")).upper()
    dt = doctest_counts(output)
    reported = has_sanitizer_report(output)
    if dt is not None:
        if result == "EXPECTEDFAIL":
            # should_fail test: its doctest failures are the expected outcome.
            return Counts(passed=1), False
        if (result not in GOOD_RESULTS or reported) and dt.failed == 0:
            dt.failed += 1  # crashed, sanitizer report, timeout, ...
        return dt, dt.failed > 0
    if reported:
        return Counts(failed=1), True
    if result in PASS_RESULTS:
        return Counts(passed=1), False
    if result in SKIP_RESULTS:
        return Counts(skipped=1), False
    return Counts(failed=1), True


def read_dir(build_dir: str) -> DirReport:
    rep = DirReport(build_dir)
    path = os.path.join(build_dir, "meson-logs", "testlog.json")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError as e:
        rep.suite("(missing testlog)").failed += 1
        rep.failures.append(
            f"{build_dir}: missing testlog {path} ({e.strerror or e}): meson test did not run,"
            " could not start or found no suitable tests"
        )
        return rep

    n_tests = 0
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            rep.suite("(unreadable testlog)").failed += 1
            rep.failures.append(f"{build_dir}: {path}:{lineno}: unparsable line ({e})")
            continue
        n_tests += 1
        suite, name = suite_and_name(entry)
        output = entry_output(entry)
        counts, failed = count_entry(entry, output)
        rep.suite(suite).add(counts)
        if failed:
            result = str(entry.get("result", "?"))
            rc = entry.get("returncode")
            detail = result if rc is None else f"{result}, exit {rc}"
            if has_sanitizer_report(output):
                detail += ", sanitizer report"
            rep.failures.append(f"{build_dir}: {suite} / {name} ({detail})")
            rep.excerpts.append((f"{build_dir}: {suite} / {name}", failure_excerpt(output)))

    if n_tests == 0:
        rep.suite("(no tests ran)").failed += 1
        rep.failures.append(f"{build_dir}: {path} has no test results: no test was run")
    return rep


def print_table(reports: list[DirReport]) -> None:
    rows = [("build dir", "suite", "passed", "failed", "skipped")]
    for rep in reports:
        for suite in sorted(rep.suites):
            c = rep.suites[suite]
            rows.append((rep.build_dir, suite, str(c.passed), str(c.failed), str(c.skipped)))
        t = rep.total()
        rows.append((rep.build_dir, "(total)", str(t.passed), str(t.failed), str(t.skipped)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]

    def fmt(r: tuple[str, ...]) -> str:
        left = "  ".join(r[i].ljust(widths[i]) for i in range(2))
        right = "  ".join(r[i].rjust(widths[i]) for i in range(2, 5))
        return f"{left}  {right}"

    print(fmt(rows[0]))
    print("-" * len(fmt(rows[0])))
    for r in rows[1:]:
        print(fmt(r))


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("build_dirs", nargs="+", metavar="BUILD_DIR")
    p.add_argument(
        "--meson-rc",
        action="append",
        default=[],
        metavar="DIR=RC",
        help="exit code of `meson test` for DIR; non-zero without a logged failure counts as one",
    )
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    meson_rc: dict[str, int] = {}
    for item in args.meson_rc:
        d, sep, rc = item.rpartition("=")
        try:
            if not sep:
                raise ValueError
            meson_rc[os.path.normpath(d)] = int(rc)
        except ValueError:
            print(f"test_summary.py: bad --meson-rc value {item!r} (want DIR=RC)", file=sys.stderr)
            return 2

    reports = []
    for d in args.build_dirs:
        rep = read_dir(d)
        rc = meson_rc.get(os.path.normpath(d), 0)
        if rc != 0 and rep.total().failed == 0:
            rep.suite("(meson test)").failed += 1
            rep.failures.append(f"{d}: meson test exited with {rc} but logged no failing test")
        reports.append(rep)

    print()
    print("Test summary")
    print("============")
    print_table(reports)
    # The CI log keeps its tail: the excerpts (bounded), then the list of failed tests, then
    # the count, so the names stay in view however long the excerpts are.
    budget = EXCERPTS_TOTAL
    left_out = 0
    for r in reports:
        for label, excerpt in r.excerpts:
            if len(excerpt) > budget:
                left_out += 1
                continue
            budget -= len(excerpt)
            print()
            print(f"Why {label} failed (from its output):")
            for line in excerpt:
                print(f"  | {line}")
    if left_out:
        print()
        print(f"({left_out} more failed test(s): excerpts left out, see meson-logs/testlog.txt)")
    failures = [f for r in reports for f in r.failures]
    if failures:
        print()
        print("Failed:")
        for f in failures:
            print(f"  {f}")

    total = Counts()
    for r in reports:
        total.add(r.total())
    print()
    sys.stdout.flush()
    print(f"{total.passed} passed, {total.failed} failed, {total.skipped} skipped")
    return 1 if total.failed > 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
