#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Checks that docs/getting-started.md and docs/deployment.md show the tested files of tests/deploy/ literally.
"""Usage: docs_sync_test.py SOURCE_ROOT

The deployment tests run the files under tests/deploy/; the docs show them after a
`<!-- file: tests/deploy/PATH -->` marker. This test fails when a shown file differs from the
tested one (the SPDX line aside), when a marker names a missing file, or when a tested file is
not shown where it belongs.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import deploy_util as du  # noqa: E402

# Every tested file and the page that must show it.
SHOWN = {
    "getting-started.md": [
        "getting_started/main.cpp",
        "getting_started/meson.build",
        "getting_started/CMakeLists.txt",
    ],
    "deployment.md": [
        "behind_proxy.cpp",
        "nginx/ringwork.conf",
        "haproxy/haproxy.cfg",
        "systemd/ringwork-echo.socket",
        "systemd/ringwork-echo.service",
    ],
}


def body(_tmp: pathlib.Path) -> None:
    root = pathlib.Path(sys.argv[1]).resolve()
    for doc, files in SHOWN.items():
        for rel in files:
            du.check_doc_shows(root, doc, rel)
            du.log(f"ok   docs/{doc} shows tests/deploy/{rel}")
        # A marker for a file nobody tests is a doc block that can rot: refuse it too.
        for path in du.doc_blocks(root / "docs" / doc):
            du.check(path.removeprefix("tests/deploy/") in files,
                     f"docs/{doc} marks {path} as a tested file, but no test uses it "
                     f"(add it to SHOWN in {pathlib.Path(__file__).name})")


if __name__ == "__main__":
    du.run_test("deploy_docs_sync", body)
