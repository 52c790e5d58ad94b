#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Each tests/compile_fail/*.cpp must fail to compile, with the text of its `// expect:` line in
# the compiler's messages, and compile with -DGOOD (so that it fails for that reason only).
import pathlib
import re
import subprocess
import sys

def main() -> int:
    root = pathlib.Path(sys.argv[1])
    cxx = sys.argv[2:]
    failures = 0
    cases = sorted((root / "tests" / "compile_fail").glob("*.cpp"))
    for case in cases:
        expect = re.search(r"^// expect: (.+)$", case.read_text(encoding="utf-8"), flags=re.M)
        if expect is None:
            print(f"FAIL {case.name}: no `// expect:` line")
            failures += 1
            continue
        base = cxx + ["-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", f"-I{root / 'include'}"]
        good = subprocess.run(base + ["-DGOOD", str(case)], capture_output=True, text=True)
        bad = subprocess.run(base + [str(case)], capture_output=True, text=True)
        if good.returncode != 0:
            print(f"FAIL {case.name}: does not compile with -DGOOD:\n{good.stderr}")
            failures += 1
        elif bad.returncode == 0:
            print(f"FAIL {case.name}: compiles, but must not")
            failures += 1
        elif expect.group(1) not in bad.stderr:
            print(f"FAIL {case.name}: fails without naming {expect.group(1)!r}:\n{bad.stderr}")
            failures += 1
        else:
            print(f"ok   {case.name}: fails, naming {expect.group(1)!r}")
    print(f"{len(cases)} cases, {failures} failed")
    return 1 if failures or not cases else 0

if __name__ == "__main__":
    sys.exit(main())
