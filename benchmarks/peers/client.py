#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""HTTP/1.1 client of benchmarks/suite.sh for what wrk cannot do: exact request counts and
connections held open.

  client.py idle  --port P --conns N [--path /plaintext] -- CMD
      opens N keep-alive connections (at most --window awaiting their answer at a time); each
      makes one request and reads the whole answer; then, with all N open and idle, runs CMD (the suite's measurement:
      RSS of the server, /proc/meminfo), then closes them and exits with CMD's status.
  client.py exact --port P --conns C --depth D --warmup W --requests N [--path P]
                  [--before CMD] [--after CMD]
      C connections send W requests (spread over the connections, D pipelined per write),
      run CMD --before, send exactly N more the same way, run CMD --after, then close.
      Prints "requests N seconds S". Used for allocations and instructions per request.

Every answer must be 200 with a Content-Length; any other answer, a closed connection or
--timeout seconds without progress is an error (exit 1). CMD runs with `sh -c`.
"""
import argparse
import resource
import selectors
import socket
import subprocess
import sys
import time


class Conn:
    """One connection and the state of its answers."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.owed = 0  # answers not yet read

    def parse(self):
        """Consumes the complete answers in the buffer; returns how many."""
        done = 0
        while self.owed > 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end].decode("latin-1")
            status = head.split(" ", 2)[1] if " " in head else "?"
            if status != "200":
                raise RuntimeError(f"answer {status!r}: {head.splitlines()[0]!r}")
            length = None
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError("answer without Content-Length")
            if len(self.buf) < end + 4 + length:
                break
            self.buf = self.buf[end + 4 + length:]
            self.owed -= 1
            done += 1
        return done


def request_bytes(path):
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_hook(cmd, timeout):
    if cmd:
        subprocess.run(["sh", "-c", cmd], check=True, timeout=timeout)


def idle(args):
    raise_nofile()
    req = request_bytes(args.path)
    sel = selectors.DefaultSelector()
    conns, answered = [], 0
    start = time.monotonic()
    while answered < args.conns:
        # Keep up to --window connections waiting for their one answer.
        while len(conns) < args.conns and len(conns) - answered < args.window:
            c = Conn(args.port, args.timeout)
            c.sock.sendall(req)
            c.owed = 1
            sel.register(c.sock, selectors.EVENT_READ, c)
            conns.append(c)
        events = sel.select(args.timeout)
        if not events:
            raise RuntimeError(f"no answer for {args.timeout} s ({answered} answered)")
        for key, _ in events:
            c = key.data
            data = c.sock.recv(65536)
            if not data:
                raise RuntimeError(f"a connection closed before its answer ({answered} answered)")
            c.buf += data
            if c.parse():
                sel.unregister(c.sock)
                answered += 1
    sel.close()
    print(f"opened {len(conns)} connections in {time.monotonic() - start:.2f} s", flush=True)
    try:
        run_hook(" ".join(args.cmd), args.timeout)
    finally:
        for c in conns:
            c.sock.close()


def send_requests(conns, total, depth, req, timeout):
    """Sends `total` requests over `conns`, at most `depth` in flight per connection."""
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    left, answered = total, 0

    def refill(c):
        nonlocal left
        if c.owed == 0 and left > 0:
            n = min(depth, left)
            c.sock.sendall(req * n)
            c.owed, left = n, left - n

    for c in conns:
        refill(c)
    while answered < total:
        events = sel.select(timeout)
        if not events:
            raise RuntimeError(f"no answer for {timeout} s ({answered} of {total} answered)")
        for key, _ in events:
            c = key.data
            data = c.sock.recv(262144)
            if not data:
                raise RuntimeError("server closed a connection")
            c.buf += data
            answered += c.parse()
            refill(c)
    sel.close()


def exact(args):
    raise_nofile()
    req = request_bytes(args.path)
    conns = [Conn(args.port, args.timeout) for _ in range(args.conns)]
    # Warm-up windows of --warmup requests until --settled exits 0 after one (the server's
    # pools stopped growing: steady state), at most --max-warmups of them.
    windows, settled = 0, "unchecked"
    while True:
        send_requests(conns, args.warmup, args.depth, req, args.timeout)
        windows += 1
        if not args.settled:
            break
        if subprocess.run(["sh", "-c", args.settled], timeout=args.timeout).returncode == 0:
            settled = "yes"
            break
        settled = "no"
        if windows >= args.max_warmups:
            break
    print(f"warm-up windows {windows} settled {settled}", flush=True)
    run_hook(args.before, args.timeout)
    start = time.monotonic()
    send_requests(conns, args.requests, args.depth, req, args.timeout)
    seconds = time.monotonic() - start
    run_hook(args.after, args.timeout)
    for c in conns:
        c.sock.close()
    print(f"requests {args.requests} seconds {seconds:.3f}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("idle", "exact"):
        s = sub.add_parser(name)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--path", default="/plaintext")
        s.add_argument("--timeout", type=float, default=60.0, help="seconds without progress")
    s = sub.choices["idle"]
    s.add_argument("--conns", type=int, default=10000)
    s.add_argument("--window", type=int, default=64, help="connections awaiting their answer")
    s.add_argument("cmd", nargs=argparse.REMAINDER, help="-- command run with all open")
    s = sub.choices["exact"]
    s.add_argument("--conns", type=int, default=16)
    s.add_argument("--depth", type=int, default=1, help="requests pipelined per write")
    s.add_argument("--warmup", type=int, default=2000, help="requests per warm-up window")
    s.add_argument("--settled", default="", help="command run after each warm-up window; "
                   "exit 0 ends the warm-up (without it: one window)")
    s.add_argument("--max-warmups", type=int, default=10, help="warm-up windows at most")
    s.add_argument("--requests", type=int, default=20000)
    s.add_argument("--before", default="")
    s.add_argument("--after", default="")
    args = p.parse_args()
    if args.mode == "idle":
        if args.cmd and args.cmd[0] == "--":
            args.cmd = args.cmd[1:]
        idle(args)
    else:
        exact(args)


if __name__ == "__main__":
    try:
        main()
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        print(f"client.py: {e}", file=sys.stderr)
        sys.exit(1)
