#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of scripts/test_summary.py, the count that ends `scripts/dev.sh test` (and so CI).

Each case writes a Meson testlog.json into a temporary build directory, runs the script on it
and checks the table, the "Failed:" list, the excerpts and the final line.

Usage: test_summary_test.py SOURCE_ROOT
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest

SOURCE_ROOT = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
SCRIPT = os.path.join(SOURCE_ROOT, "scripts", "test_summary.py")

PASSING = "[doctest] test cases: 3 | 3 passed | 0 failed | 0 skipped\n[doctest] Status: SUCCESS!\n"

FAILING = """[doctest] doctest version is "2.4.9"
===============================================================================
../tests/unit/http/x_test.cpp:540:
TEST SUITE: server resilience
TEST CASE:  graceful shutdown

../tests/unit/http/x_test.cpp:612: ERROR: CHECK( t.timeouts == 0 ) is NOT correct!
  values: CHECK( 1 == 0 )

===============================================================================
[doctest] test cases: 9 | 8 passed | 1 failed | 0 skipped
[doctest] Status: FAILURE!
"""

UBSAN = (
    "/usr/include/c++/12/system_error:370:40: runtime error: member call on address 0x7f00 which"
    " does not point to an object of type 'error_category'\n"
    "0x7f00: note: object has invalid vptr\n" + PASSING
)


def entry(name: str, result: str, stdout: str, returncode: int = 0) -> dict:
    return {"name": f"ringwork:{name}", "result": result, "returncode": returncode, "stdout": stdout}


class Summary(unittest.TestCase):
    def run_summary(self, entries: list[dict] | None, *extra: str) -> tuple[int, str]:
        with tempfile.TemporaryDirectory() as d:
            if entries is not None:
                os.makedirs(os.path.join(d, "meson-logs"))
                with open(os.path.join(d, "meson-logs", "testlog.json"), "w", encoding="utf-8") as f:
                    for e in entries:
                        f.write(json.dumps(e) + "\n")
            args = [sys.executable, SCRIPT, *[a.replace("DIR", d) for a in extra], d]
            p = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
            return p.returncode, p.stdout.replace(d, "BUILD")

    def last_line(self, out: str) -> str:
        return out.rstrip("\n").splitlines()[-1]

    def test_doctest_cases_are_summed(self) -> None:
        rc, out = self.run_summary([entry("unit / a", "OK", PASSING), entry("unit / b", "OK", PASSING)])
        self.assertEqual(rc, 0)
        self.assertEqual(self.last_line(out), "6 passed, 0 failed, 0 skipped")
        self.assertNotIn("Failed:", out)

    def test_a_failed_case_is_named_with_its_check(self) -> None:
        rc, out = self.run_summary([entry("unit+http / r", "FAIL", FAILING, 1), entry("unit / b", "OK", PASSING)])
        self.assertEqual(rc, 1)
        self.assertEqual(self.last_line(out), "11 passed, 1 failed, 0 skipped")
        self.assertIn("BUILD: unit+http / r (FAIL, exit 1)", out)
        self.assertIn("Why BUILD: unit+http / r failed", out)
        self.assertIn("ERROR: CHECK( t.timeouts == 0 ) is NOT correct!", out)
        self.assertIn("TEST CASE:  graceful shutdown", out)
        self.assertNotIn("| [doctest] test cases", out)  # the excerpt is the failure, not the count
        # The excerpt comes before the count: the CI log keeps its tail.
        self.assertLess(out.index("is NOT correct"), out.index("11 passed, 1 failed"))

    def test_a_crash_after_passing_cases_is_a_failure(self) -> None:
        rc, out = self.run_summary([entry("unit / c", "ERROR", PASSING + "AddressSanitizer: SEGV\n", -11)])
        self.assertEqual(rc, 1)
        self.assertEqual(self.last_line(out), "3 passed, 1 failed, 0 skipped")

    def test_a_recovered_ubsan_report_fails_a_passing_test(self) -> None:
        rc, out = self.run_summary([entry("unit+epoll / r", "OK", UBSAN)])
        self.assertEqual(rc, 1)
        self.assertEqual(self.last_line(out), "3 passed, 1 failed, 0 skipped")
        self.assertIn("runtime error: member call", out)

    def test_sanitizer_reports_of_each_kind_count(self) -> None:
        for report in ("==123==ERROR: AddressSanitizer: heap-use-after-free on address 0x1\n",
                       "==77==ERROR: LeakSanitizer: detected memory leaks\n",
                       "WARNING: ThreadSanitizer: data race (pid=5)\n"):
            with self.subTest(report=report):
                rc, out = self.run_summary([entry("unit / s", "OK", report + PASSING)])
                self.assertEqual(rc, 1)
                self.assertEqual(self.last_line(out), "3 passed, 1 failed, 0 skipped")
        rc, out = self.run_summary([entry("integration / i", "OK", "==9==ERROR: AddressSanitizer: x\n")])
        self.assertEqual((rc, self.last_line(out)), (1, "0 passed, 1 failed, 0 skipped"))

    def test_words_that_only_look_like_a_report_do_not_count(self) -> None:
        text = "ringwork: runtime error: handler threw\nthe word Sanitizer in a log line\n" + PASSING
        rc, out = self.run_summary([entry("unit / w", "OK", text)])
        self.assertEqual(rc, 0)
        self.assertEqual(self.last_line(out), "3 passed, 0 failed, 0 skipped")

    def test_a_test_without_doctest_counts_once(self) -> None:
        rc, out = self.run_summary([entry("integration / x", "OK", "fine\n"), entry("integration / y", "SKIP", ""),
                                    entry("integration / z", "TIMEOUT", "line1\nline2\n", -15)])
        self.assertEqual(rc, 1)
        self.assertEqual(self.last_line(out), "1 passed, 1 failed, 1 skipped")
        self.assertIn("| line2", out)  # no doctest block: the tail of the output

    def test_an_expected_failure_passes(self) -> None:
        rc, out = self.run_summary([entry("unit / e", "EXPECTEDFAIL", FAILING, 1)])
        self.assertEqual((rc, self.last_line(out)), (0, "1 passed, 0 failed, 0 skipped"))

    def test_a_missing_testlog_fails(self) -> None:
        rc, out = self.run_summary(None)
        self.assertEqual((rc, self.last_line(out)), (1, "0 passed, 1 failed, 0 skipped"))
        self.assertIn("missing testlog", out)

    def test_a_meson_failure_without_a_failed_test_fails(self) -> None:
        rc, out = self.run_summary([entry("unit / a", "OK", PASSING)], "--meson-rc", "DIR=1")
        self.assertEqual((rc, self.last_line(out)), (1, "3 passed, 1 failed, 0 skipped"))
        self.assertIn("meson test exited with 1", out)

    def test_a_long_excerpt_is_cut(self) -> None:
        block = "".join(f"x.cpp:{i}: ERROR: CHECK( a{i} ) is NOT correct!\n" for i in range(100))
        text = "=" * 79 + "\n" + block + "=" * 79 + "\n" + FAILING.splitlines()[-2] + "\n"
        rc, out = self.run_summary([entry("unit / m", "FAIL", text, 1)])
        self.assertEqual(rc, 1)
        shown = [line for line in out.splitlines() if line.startswith("  | ")]
        self.assertEqual(len(shown), 40)
        self.assertIn("a0 )", shown[0])
        self.assertIn("(61 more lines)", shown[-1])

    def test_log_lines_of_passing_checks_do_not_hide_the_cause(self) -> None:
        noise = "".join(f"ringwork: error when serving connection {i}: 400 Bad Request\n" for i in range(60))
        rc, out = self.run_summary([entry("unit / t", "TIMEOUT", noise + "the last words\n", -15)])
        self.assertEqual(rc, 1)
        self.assertIn("| the last words", out)  # no failure block: the tail
        report = "==5==ERROR: AddressSanitizer: SEGV on unknown address 0x0\n    #0 0x1 in f x.cpp:3\n"
        rc, out = self.run_summary([entry("unit / a", "ERROR", noise + report + noise, -11)])
        self.assertIn("| ==5==ERROR: AddressSanitizer: SEGV", out)
        self.assertIn("| #0 0x1 in f x.cpp:3", out.replace("|     #0", "| #0"))
        self.assertNotIn("connection 0: 400", out)

    def test_a_sanitizer_report_in_a_child_comes_first_then_the_childs_words_then_the_check(self) -> None:
        text = ("x.cpp:1:2: runtime error: member call on address 0x1\n0x1: note: object has invalid vptr\n"
                "child check 12 failed: waiting client 0: \n" + FAILING)
        rc, out = self.run_summary([entry("unit / r", "FAIL", text, 1)])
        self.assertEqual(rc, 1)
        self.assertIn("(FAIL, exit 1, sanitizer report)", out)
        report, child, check = (out.index("runtime error: member call"), out.index("| child check 12 failed"),
                                out.index("ERROR: CHECK( t.timeouts == 0 )"))
        self.assertLess(report, child)
        self.assertLess(child, check)

    def test_the_names_of_failed_tests_stay_in_the_tail(self) -> None:
        entries = [entry(f"unit / f{i}", "FAIL", FAILING, 1) for i in range(40)]
        rc, out = self.run_summary(entries)
        self.assertEqual(rc, 1)
        tail = out[out.index("Failed:"):]
        for i in range(40):
            self.assertIn(f"unit / f{i} (FAIL, exit 1)", tail)
        self.assertIn("excerpts left out", out)
        self.assertLess(out.index("excerpts left out"), out.index("Failed:"))
        shown = [line for line in out.splitlines() if line.startswith("  | ")]
        self.assertLessEqual(len(shown), 160)

if __name__ == "__main__":
    unittest.main(verbosity=2)
