#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# systemd socket activation as docs/deployment.md describes it, driven by systemd-socket-activate.
"""Usage: socket_activation_test.py SOURCE_ROOT ECHO_EXE BEHIND_PROXY_EXE

systemd-socket-activate does what ringwork-echo.socket asks of systemd: it opens the listening
socket, and on the first connection starts the program with it as fd 3 (LISTEN_FDS=1,
LISTEN_PID). Runs ringwork-echo with the arguments of the unit's ExecStart= line, then the
App of behind_proxy.cpp (which switches to listen_and_serve_fds when LISTEN_FDS is set), checks
that the connection that started each one is answered, that more connections follow, and that
SIGTERM ends it with exit status 0. Exit 77 when systemd-socket-activate is not installed.
"""

from __future__ import annotations

import http.client
import pathlib
import re
import shlex
import shutil
import signal
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import deploy_util as du  # noqa: E402


def unit_value(text: str, key: str) -> str:
    values = re.findall(rf"^{key}=(.*)$", text, re.M)
    du.check(len(values) == 1, f"expected one {key}= line, found {values}")
    return values[0].strip()


def activate(tool: str, tmp: pathlib.Path, name: str, program: list[str]) -> tuple[du.Child, int]:
    """systemd-socket-activate on a free port; returns once it listens (the program starts later)."""
    for attempt in range(3):
        port = du.free_port()
        child = du.Child(f"{name}-{attempt}", [tool, "-l", f"127.0.0.1:{port}"] + program, tmp)
        try:
            child.wait_for(rf"Listening on 127\.0\.0\.1:{port}", 15, stream="stderr")
            return child, port
        except du.TestFailure:
            child.kill()
            if "in use" not in child.stderr() or attempt == 2:
                raise
    raise AssertionError("unreachable")


def serve_and_stop(tool: str, tmp: pathlib.Path, name: str, program: list[str], path: str,
                   expect: str, ready_line: str) -> None:
    child, port = activate(tool, tmp, name, program)
    # The first connection waits in the socket's backlog while the program starts.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        r = du.request(conn, path)
        du.check(r.status == 200 and expect in r.text, f"{name}: {path} answered {r.status} {r.text!r}")
        r = du.request(conn, path)  # keep-alive on the activating connection
        du.check(r.status == 200, f"{name}: second request answered {r.status}")
    finally:
        conn.close()
    for _ in range(3):
        r = du.get("127.0.0.1", port, path)
        du.check(r.status == 200 and expect in r.text, f"{name}: {path} answered {r.status} {r.text!r}")
    child.wait_for(ready_line, 10)
    rc = child.stop(signal.SIGTERM, 20)  # the program replaced systemd-socket-activate (exec)
    du.check(rc == 0, f"{name}: exit status {rc} after SIGTERM\n{child.output()}")
    du.log(f"ok   {name}: started by the first connection, served 6 requests, SIGTERM -> exit 0")


def main() -> None:
    root, echo_exe, app_exe = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3]

    def body(tmp: pathlib.Path) -> None:
        du.check_doc_shows(root, "deployment.md", "systemd/ringwork-echo.socket")
        du.check_doc_shows(root, "deployment.md", "systemd/ringwork-echo.service")
        du.check_doc_shows(root, "deployment.md", "behind_proxy.cpp")
        socket_unit = du.fixture_text(root / "tests/deploy/systemd/ringwork-echo.socket")
        service_unit = du.fixture_text(root / "tests/deploy/systemd/ringwork-echo.service")
        du.check(unit_value(socket_unit, "ListenStream") == "127.0.0.1:8080", "ListenStream= changed")
        exec_start = shlex.split(unit_value(service_unit, "ExecStart"))
        du.check(exec_start[0].endswith("/ringwork-echo"), f"ExecStart= runs {exec_start[0]}")
        du.check("--systemd" in exec_start, "ExecStart= lacks --systemd")

        tool = shutil.which("systemd-socket-activate")
        if tool is None:
            du.skip("systemd-socket-activate is not installed (Debian package: systemd)")
        serve_and_stop(tool, tmp, "echo", [echo_exe] + exec_start[1:], "/anything/activated",
                       '"path":"/anything/activated"', r"serving 1 socket\(s\) from systemd")
        serve_and_stop(tool, tmp, "app", [app_exe], "/", "Hello from behind the proxy!",
                       r"^listening on port \d+$")

    du.run_test("deploy_socket_activation", body)


if __name__ == "__main__":
    main()
