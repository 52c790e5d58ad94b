#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Compiles every ```cpp block of README.md and docs/*.md (syntax and types) so docs stay true.
import pathlib
import re
import subprocess
import sys
import tempfile

def main() -> int:
    root = pathlib.Path(sys.argv[1])
    cxx = sys.argv[2:]
    files = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    failures = 0
    count = 0
    for md in files:
        text = md.read_text(encoding="utf-8")
        for i, block in enumerate(re.findall(r"```cpp\n(.*?)```", text, flags=re.S)):
            if "// snippet: not compiled" in block:
                continue
            count += 1
            with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as f:
                f.write(block) # as a reader copies it: every include it needs is in it
                path = f.name
            cmd = cxx + ["-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                         f"-I{root / 'include'}", path]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                failures += 1
                print(f"FAIL {md.name} block {i}:\n{r.stderr}")
            else:
                print(f"ok   {md.name} block {i}")
    print(f"{count} snippets, {failures} failed")
    return 1 if failures else 0

if __name__ == "__main__":
    sys.exit(main())
