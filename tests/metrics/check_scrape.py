#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A real scrape of apps/echo's /metrics, checked by Prometheus's own tools: `promtool check
# metrics` (format and naming lint) and prometheus_client's text parser (families, types, labels,
# histogram buckets). Exit 77 (skip) when promtool or prometheus_client is missing (Debian
# packages prometheus and python3-prometheus-client).
#
# usage: check_scrape.py PATH/TO/ringwork-echo
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request

SKIP = 77


def load_parser():
    """prometheus_client's parser; re-runs under Debian's python3 when this one lacks it."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
        return text_string_to_metric_families
    except ImportError:
        system = "/usr/bin/python3"
        if (os.path.exists(system) and os.path.realpath(sys.executable) != os.path.realpath(system)
                and not os.environ.get("RINGWORK_METRICS_REEXEC")):
            os.environ["RINGWORK_METRICS_REEXEC"] = "1"
            os.execv(system, [system] + sys.argv)
        print("skip: python module prometheus_client not found (apt-get install python3-prometheus-client)")
        sys.exit(SKIP)


def get(port, path, method="GET", body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def main():
    if len(sys.argv) != 2:
        print(__doc__ or "usage: check_scrape.py ECHO", file=sys.stderr)
        return 2
    promtool = shutil.which("promtool")
    if promtool is None:
        print("skip: promtool not found (apt-get install prometheus)")
        return SKIP
    parse = load_parser()
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL:", what)

    echo = subprocess.Popen([sys.argv[1], "--host", "127.0.0.1", "--port", "0", "--threads", "2"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = echo.stdout.readline()
        m = re.search(r"listening on http://[^:]+:(\d+)/", line)
        if not m:
            print("echo did not start:", line)
            return 1
        port = int(m.group(1))

        for path in ["/get", "/anything/a/b", "/anything/c", "/status/404", "/status/503", "/no/such/route"]:
            get(port, path)
        get(port, "/post", "POST", b"{}")
        status, headers, first = get(port, "/metrics")
        check(status == 200, f"/metrics answered {status}")
        check(headers.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8",
              f"Content-Type {headers.get('Content-Type')}")

        # promtool: the format and Prometheus's naming conventions (exit 0 and no complaint).
        lint = subprocess.run([promtool, "check", "metrics"], input=first, capture_output=True, text=True)
        check(lint.returncode == 0, f"promtool check metrics exit {lint.returncode}: {lint.stdout}{lint.stderr}")
        check(lint.stdout.strip() == "" and lint.stderr.strip() == "",
              f"promtool complaints: {lint.stdout}{lint.stderr}")

        families = {f.name: f for f in parse(first)}
        for name, kind in [("ringwork_requests", "counter"),
                           ("ringwork_request_duration_seconds", "histogram"),
                           ("ringwork_connections_open", "gauge"),
                           ("ringwork_connections_accepted", "counter"),
                           ("ringwork_connections_rejected", "counter"),
                           ("ringwork_reactor_connections_accepted", "counter"),
                           ("ringwork_workers", "gauge"),
                           ("ringwork_workers_retired", "counter"),
                           ("ringwork_buffer_pool_misses", "counter"),
                           ("ringwork_buffer_pool_idle_bytes", "gauge"),
                           ("ringwork_io_uring_submissions", "counter"),
                           ("ringwork_io_uring_completions", "counter"),
                           ("ringwork_io_uring_cq_overflows", "counter"),
                           ("ringwork_io_uring_buffer_ring_exhausted", "counter"),
                           ("ringwork_io_uring_multishot_rearms", "counter"),
                           ("process_resident_memory_bytes", "gauge"),
                           ("process_open_fds", "gauge")]:
            check(name in families, f"family {name} missing")
            if name in families:
                check(families[name].type == kind, f"{name} is {families[name].type}, not {kind}")

        def value(fam, suffix="", **labels):
            for s in families[fam].samples:
                if s.name == fam + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
            return None

        check(value("ringwork_requests", "_total", method="GET", status_class="2xx") == 3,
              "GET 2xx: /get and two /anything")
        check(value("ringwork_requests", "_total", method="GET", status_class="4xx") == 2, "GET 4xx")
        check(value("ringwork_requests", "_total", method="GET", status_class="5xx") == 1, "GET 5xx")
        check(value("ringwork_requests", "_total", method="POST", status_class="2xx") == 1, "POST 2xx")
        routes = {s.labels.get("route") for s in families["ringwork_request_duration_seconds"].samples}
        check("/anything/*rest" in routes and "/status/:code" in routes and "(unmatched)" in routes,
              f"route patterns: {sorted(routes)}")
        check(not any(r and r.startswith("/anything/a") for r in routes), "a raw path became a label")
        check(value("ringwork_request_duration_seconds", "_count", route="/anything/*rest") == 2,
              "histogram _count of /anything/*rest")
        buckets = [s for s in families["ringwork_request_duration_seconds"].samples
                   if s.name.endswith("_bucket") and s.labels["route"] == "/anything/*rest"]
        check(buckets and buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 2, "+Inf bucket")
        check(all(a.value <= b.value for a, b in zip(buckets, buckets[1:])), "buckets are cumulative")
        reactors = {s.labels["reactor"] for s in families["ringwork_io_uring_submissions"].samples}
        check(reactors == {"0", "1"}, f"reactor labels {sorted(reactors)}")
        accepted = sum(s.value for s in families["ringwork_reactor_connections_accepted"].samples
                       if s.name.endswith("_total"))
        check(accepted == value("ringwork_connections_accepted", "_total"), "accept spread sums to the total")
        check(value("ringwork_connections_rejected", "_total", reason="emfile") == 0, "emfile")

        # A second scrape: every counter sample is at least what it was.
        _, _, second = get(port, "/metrics")
        before = {(s.name, tuple(sorted(s.labels.items()))): s.value
                  for f in parse(first) if f.type == "counter" for s in f.samples}
        after = {(s.name, tuple(sorted(s.labels.items()))): s.value
                 for f in parse(second) if f.type == "counter" for s in f.samples}
        went_back = [k for k, v in before.items() if k in after and after[k] < v]
        check(not went_back, f"counters went back: {went_back}")
        check(after.get(("ringwork_requests_total", (("method", "GET"), ("status_class", "2xx")))) == 4,
              "the first scrape is counted by the second")
    finally:
        echo.send_signal(signal.SIGTERM)
        try:
            echo.wait(timeout=10)
        except subprocess.TimeoutExpired:
            echo.kill()
            echo.wait()
            failures.append("echo did not stop on SIGTERM")
    check(echo.returncode == 0, f"echo exit code {echo.returncode}")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
