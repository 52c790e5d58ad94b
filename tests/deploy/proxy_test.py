#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Runs behind_proxy.cpp behind nginx or HAProxy with the configs docs/deployment.md shows, and checks the answers.
"""Usage: proxy_test.py nginx|haproxy SOURCE_ROOT BEHIND_PROXY_EXE

Starts the app on a free port (PORT=0), then the proxy with tests/deploy/nginx/ringwork.conf or
tests/deploy/haproxy/haproxy.cfg, changed only in its two ports, and checks through the proxy:
the answer, keep-alive on both sides (one client connection and one app connection serve
several requests), that the app sees X-Forwarded-For / X-Real-IP and that Context::ip() names
the client because 127.0.0.1 is a trusted proxy, while a client that talks to the app directly
cannot choose its ip(). The client connects from 127.0.0.2 so it differs from the proxy.
Exit 77 when the proxy is not installed.
"""

from __future__ import annotations

import getpass
import http.client
import os
import pathlib
import shutil
import signal
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import deploy_util as du  # noqa: E402

APP_HOST = "127.0.0.1"
SPOOFED = "203.0.113.9"  # TEST-NET-3: what a client may claim in its own X-Forwarded-For


def replace_once(text: str, old: str, new: str, what: str) -> str:
    du.check(text.count(old) == 1, f"{what}: expected exactly one '{old}'")
    return text.replace(old, new)


def find_tool(name: str, package: str) -> str:
    """The proxy's executable (also in /usr/sbin when that is not on PATH); skips without it."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/local/sbin/{name}") if os.access(p, os.X_OK)), None)
    if path is None:
        du.skip(f"{name} is not installed (Debian: apt-get install {package}; scripts/dev.sh deps does)")
    return path


def start_nginx(nginx: str, root: pathlib.Path, tmp: pathlib.Path, app_port: int) -> tuple[du.Child, int]:
    site = du.fixture_text(root / "tests/deploy/nginx/ringwork.conf")
    site = replace_once(site, "server 127.0.0.1:8080;", f"server {APP_HOST}:{app_port};", "ringwork.conf")
    # The doc's file goes into /etc/nginx/conf.d/ under Debian's nginx.conf; this test wraps it
    # in a minimal main config that keeps logs, pid and temp files in the temporary directory.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    main_conf = (f"{user}worker_processes 1;\n"
                 f"pid {tmp}/nginx.pid;\n"
                 f"error_log {tmp}/nginx-error.log info;\n"
                 "daemon off;\n"
                 "events { worker_connections 256; }\n"
                 "http {\n"
                 f"    access_log {tmp}/nginx-access.log;\n"
                 f"    client_body_temp_path {tmp}/client_body;\n"
                 f"    proxy_temp_path {tmp}/proxy;\n"
                 f"    include {tmp}/ringwork.conf;\n"
                 "}\n")
    (tmp / "nginx.conf").write_text(main_conf)
    for attempt in range(3):  # another process may take the free port before nginx binds it
        port = du.free_port()
        (tmp / "ringwork.conf").write_text(replace_once(site, "listen 80;", f"listen 127.0.0.1:{port};",
                                                        "ringwork.conf"))
        du.run([nginx, "-t", "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "nginx-error.log")], 30)
        child = du.Child(f"nginx-{attempt}", [nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"),
                                              "-e", str(tmp / "nginx-error.log")], tmp)
        try:
            child.wait_port("127.0.0.1", port, 15)
            return child, port
        except du.TestFailure:
            child.kill()
            log = (tmp / "nginx-error.log").read_text(errors="replace")
            if "Address already in use" not in log or attempt == 2:
                raise du.TestFailure(f"nginx did not start\n{log}\n{child.output()}")
    raise AssertionError("unreachable")


def start_haproxy(haproxy: str, root: pathlib.Path, tmp: pathlib.Path, app_port: int) -> tuple[du.Child, int]:
    cfg = du.fixture_text(root / "tests/deploy/haproxy/haproxy.cfg")
    cfg = replace_once(cfg, "server app1 127.0.0.1:8080 ", f"server app1 {APP_HOST}:{app_port} ", "haproxy.cfg")
    for attempt in range(3):
        port = du.free_port()
        path = tmp / "haproxy.cfg"
        path.write_text(replace_once(cfg, "bind :80\n", f"bind 127.0.0.1:{port}\n", "haproxy.cfg"))
        du.run([haproxy, "-c", "-f", str(path)], 30)
        child = du.Child(f"haproxy-{attempt}", [haproxy, "-db", "-f", str(path)], tmp)
        try:
            child.wait_port("127.0.0.1", port, 15)
            return child, port
        except du.TestFailure:
            child.kill()
            if "Address already in use" not in child.stderr() or attempt == 2:
                raise
    raise AssertionError("unreachable")


def check_through_proxy(proxy: str, port: int, client_ip: str) -> None:
    r = du.get("127.0.0.1", port, "/")
    du.check(r.status == 200 and r.text == "Hello from behind the proxy!\n",
             f"GET / through {proxy}: {r.status} {r.text!r}")
    r = du.get("127.0.0.1", port, "/healthz")
    du.check(r.status == 200 and r.json() == {"status": "ok"}, f"GET /healthz: {r.status} {r.text!r}")
    du.log(f"ok   GET / and /healthz through {proxy}")

    # Keep-alive: one client connection, several requests, and the proxy reuses its
    # connection to the app (the app sees the same peer port).
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(client_ip, 0))
    try:
        peers = []
        first_sock = None
        for i in range(5):
            r = du.request(conn, "/whoami")
            du.check(r.status == 200, f"GET /whoami #{i}: {r.status} {r.text!r}")
            du.check(conn.sock is not None, f"{proxy} closed the client connection after request #{i}")
            first_sock = first_sock or conn.sock
            du.check(conn.sock is first_sock, f"request #{i} needed a new client connection to {proxy}")
            j = r.json()
            du.check(j["ip"] == client_ip, f"c.ip() is {j['ip']!r}, want the client {client_ip}: {j}")
            du.check(j["x_real_ip"] == client_ip, f"X-Real-IP is {j['x_real_ip']!r}: {j}")
            du.check(j["x_forwarded_for"] == client_ip, f"X-Forwarded-For is {j['x_forwarded_for']!r}: {j}")
            du.check(j["peer"].startswith("127.0.0.1:"), f"the app's peer is {j['peer']!r}: {j}")
            peers.append(j["peer"])
        # HAProxy's `http-reuse safe` sends the first request of a client connection on a
        # server connection of its own; nginx may too. After that, one connection serves all.
        du.check(len(set(peers[1:])) == 1, f"{proxy} opened a new connection to the app per request: {peers}")
        du.log(f"ok   5 requests on one client connection, requests 2-5 on one app connection "
               f"({peers[-1]}), c.ip() = {client_ip}")

        # A client's own X-Forwarded-For is kept in the chain but does not make it someone else.
        r = du.request(conn, "/whoami", {"X-Forwarded-For": SPOOFED})
        j = r.json()
        du.check(j["ip"] == client_ip, f"a spoofed X-Forwarded-For changed c.ip() to {j['ip']!r}: {j}")
        if proxy == "nginx":  # $proxy_add_x_forwarded_for appends to the client's value
            du.check(j["x_forwarded_for"] == f"{SPOOFED}, {client_ip}", f"X-Forwarded-For chain: {j}")
        du.log(f"ok   a client's own X-Forwarded-For: {SPOOFED} does not change c.ip()")
    finally:
        conn.close()


def check_direct(app_port: int, client_ip: str) -> None:
    """Without the proxy the peer is not trusted: the headers are ignored."""
    r = du.get(APP_HOST, app_port, "/whoami", {"X-Forwarded-For": SPOOFED, "X-Real-IP": SPOOFED},
               source=client_ip)
    j = r.json()
    du.check(j["ip"] == client_ip, f"direct request: c.ip() is {j['ip']!r}, want {client_ip}: {j}")
    du.log(f"ok   directly from {client_ip}: X-Forwarded-For/X-Real-IP ignored, c.ip() = {client_ip}")


def main() -> None:
    proxy, root, app_exe = sys.argv[1], pathlib.Path(sys.argv[2]).resolve(), sys.argv[3]
    du.check(proxy in ("nginx", "haproxy"), f"unknown proxy {proxy}")

    def body(tmp: pathlib.Path) -> None:
        # Fail before skipping: the file the test runs must be the one the doc shows.
        du.check_doc_shows(root, "deployment.md", "behind_proxy.cpp")
        du.check_doc_shows(root, "deployment.md",
                           "nginx/ringwork.conf" if proxy == "nginx" else "haproxy/haproxy.cfg")
        tool = find_tool(proxy, "nginx-light" if proxy == "nginx" else "haproxy")
        app = du.Child("app", [app_exe], tmp, env={"PORT": "0"})
        app_port = int(app.wait_for(r"^listening on port (\d+)$", 30).group(1))
        server, port = (start_nginx if proxy == "nginx" else start_haproxy)(tool, root, tmp, app_port)
        client_ip = du.second_loopback_address()
        if client_ip == "127.0.0.1":
            du.log("note: cannot connect from 127.0.0.2; the client shares the proxy's address")
        check_through_proxy(proxy, port, client_ip)
        check_direct(app_port, client_ip)

        # Graceful stop of the app: SIGTERM, exit status 0; the access log went to stdout.
        rc = app.stop(signal.SIGTERM, 20)
        du.check(rc == 0, f"the app exited with {rc} after SIGTERM\n{app.output()}")
        du.check("/whoami" in app.stdout(), f"no access log line for /whoami\n{app.output()}")
        du.log("ok   SIGTERM: the app drained and exited 0; access log on stdout")
        r = du.get("127.0.0.1", port, "/")
        du.check(r.status in (502, 503), f"with the app gone {proxy} answered {r.status}")
        server.stop(signal.SIGTERM if proxy == "haproxy" else signal.SIGQUIT, 20)

    du.run_test(f"deploy_{proxy}", body)


if __name__ == "__main__":
    main()
