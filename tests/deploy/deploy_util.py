# SPDX-License-Identifier: MIT
# Shared helpers of the deployment tests: doc blocks, free ports, child processes with deadlines, HTTP.
"""Helpers for tests/deploy/*_test.py (Python 3 standard library only).

Every wait is bounded by a Deadline; readiness is detected by polling a port or by waiting for
a line in a child's output, never by a fixed sleep. Children run in their own process group,
which is killed when a test ends, so a failing test leaves nothing running.
"""

from __future__ import annotations

import difflib
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77  # Meson's exit code for a skipped test


class TestFailure(Exception):
    """A failed check; run_test() prints it and exits 1."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise TestFailure(message)


def skip(message: str) -> None:
    print(f"SKIP: {message}", flush=True)
    sys.exit(SKIP)


def log(message: str) -> None:
    print(message, flush=True)


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end


# --- files shown in the docs ------------------------------------------------------------------

FILE_MARKER = re.compile(r"<!-- file: (\S+) -->\n```[^\n]*\n(.*?)```", re.S)


def fixture_text(path: pathlib.Path) -> str:
    """A fixture file as the docs show it: without its leading SPDX line."""
    text = path.read_text(encoding="utf-8")
    first, sep, rest = text.partition("\n")
    return rest if "SPDX-License-Identifier" in first else text


def doc_blocks(doc: pathlib.Path) -> dict[str, str]:
    """Maps each `<!-- file: PATH -->` marker of `doc` to the fenced block right after it."""
    return {m.group(1): m.group(2) for m in FILE_MARKER.finditer(doc.read_text(encoding="utf-8"))}


def check_doc_shows(root: pathlib.Path, doc: str, rel: str) -> None:
    """Fails unless docs/`doc` shows tests/deploy/`rel` literally (after a file marker)."""
    path = f"tests/deploy/{rel}"
    blocks = doc_blocks(root / "docs" / doc)
    check(path in blocks, f"docs/{doc} has no '<!-- file: {path} -->' block")
    want = fixture_text(root / path)
    if blocks[path] != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), blocks[path].splitlines(True),
                                            f"{path} (without SPDX line)", f"docs/{doc}"))
        raise TestFailure(f"docs/{doc} shows a different {path}:\n{diff}")


# --- processes --------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for programs that cannot bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_children: list["Child"] = []


class Child:
    """A child process in its own process group, its stdout and stderr in files under `workdir`.
    run_test() kills every group still there when the test ends."""

    def __init__(self, name: str, cmd: list[str], workdir: pathlib.Path,
                 env: dict[str, str] | None = None, cwd: pathlib.Path | None = None):
        self.name = name
        self.cmd = cmd
        self.out_path = workdir / f"{name}.stdout"
        self.err_path = workdir / f"{name}.stderr"
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=full_env, cwd=cwd, start_new_session=True)
        _children.append(self)
        log(f"started {name} (pid {self.proc.pid}): {' '.join(cmd)}")

    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def output(self) -> str:
        return f"--- {self.name} stdout ---\n{self.stdout()}--- {self.name} stderr ---\n{self.stderr()}"

    def wait_for(self, pattern: str, seconds: float, stream: str = "stdout") -> re.Match[str]:
        """Polls the child's output until `pattern` matches; fails if it exits or time runs out."""
        regex = re.compile(pattern, re.M)
        deadline = Deadline(seconds)
        while True:
            text = self.stdout() if stream == "stdout" else self.stderr()
            m = regex.search(text)
            if m:
                return m
            if self.proc.poll() is not None:
                raise TestFailure(f"{self.name} exited with {self.proc.returncode} before printing "
                                  f"/{pattern}/\n{self.output()}")
            if deadline.expired():
                raise TestFailure(f"{self.name} did not print /{pattern}/ within {seconds} s\n"
                                  f"{self.output()}")
            time.sleep(0.02)

    def wait_port(self, host: str, port: int, seconds: float) -> None:
        """Polls until `host:port` accepts a connection; fails if the child exits first."""
        deadline = Deadline(seconds)
        while True:
            try:
                with socket.create_connection((host, port), timeout=max(0.1, deadline.remaining())):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise TestFailure(f"{self.name} exited with {self.proc.returncode} before listening "
                                  f"on {host}:{port}\n{self.output()}")
            if deadline.expired():
                raise TestFailure(f"{self.name} did not listen on {host}:{port} within {seconds} s\n"
                                  f"{self.output()}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, seconds: float = 15) -> int:
        """Sends `sig` and waits for the exit status; kills the group if that takes too long."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                self.kill()
                raise TestFailure(f"{self.name} did not exit within {seconds} s of signal {sig}\n"
                                  f"{self.output()}")
        self.kill()  # leftovers of the group (e.g. nginx workers)
        return self.proc.returncode

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def run(cmd: list[str] | str, seconds: float, **kwargs) -> subprocess.CompletedProcess[str]:
    """Runs a command to completion within `seconds`; fails with its output otherwise."""
    shown = cmd if isinstance(cmd, str) else " ".join(str(c) for c in cmd)
    log(f"$ {shown}")
    start = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds,
                           stdin=subprocess.DEVNULL, **kwargs)
    except subprocess.TimeoutExpired as e:
        raise TestFailure(f"timed out after {seconds} s: {shown}\n{e.stdout or ''}{e.stderr or ''}")
    if r.returncode != 0:
        raise TestFailure(f"exit {r.returncode}: {shown}\n{r.stdout}{r.stderr}")
    log(f"  ok in {time.monotonic() - start:.1f} s")
    return r


# --- HTTP -------------------------------------------------------------------------------------


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise TestFailure(f"not JSON: {self.body[:200]!r}")


def request(conn: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None,
            method: str = "GET") -> Response:
    conn.request(method, path, headers=headers or {})
    r = conn.getresponse()
    return Response(r.status, r.headers, r.read())


def get(host: str, port: int, path: str, headers: dict[str, str] | None = None,
        source: str | None = None, seconds: float = 10) -> Response:
    """One request on a new connection (from `source` if given)."""
    conn = http.client.HTTPConnection(host, port, timeout=seconds,
                                      source_address=(source, 0) if source else None)
    try:
        return request(conn, path, headers)
    finally:
        conn.close()


def second_loopback_address() -> str:
    """127.0.0.2 when this machine can connect from it (Linux routes all of 127/8 to lo), so a
    proxy's client and the proxy itself have different addresses; else 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.2", 0))
        return "127.0.0.2"
    except OSError:
        return "127.0.0.1"


# --- test driver ------------------------------------------------------------------------------


def run_test(name: str, body) -> None:
    """Runs body(tmpdir) in a fresh temporary directory, removed afterwards unless the test
    fails (then its path is printed to look at the logs). Exit: 0 pass, 1 fail, 77 skip."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"ringwork-{name}-"))
    keep = True
    try:
        body(tmp)
        keep = False
    except TestFailure as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    except SystemExit as e:
        keep = e.code != SKIP
        raise
    finally:
        for child in _children:
            child.kill()
        if keep:
            print(f"(files kept in {tmp})", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"PASS: {name}", flush=True)
    sys.exit(0)
