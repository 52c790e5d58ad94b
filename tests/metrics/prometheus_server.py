#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A real Prometheus server (Debian package prometheus) scrapes apps/echo every 250 ms; the test
# asks Prometheus's HTTP API (/api/v1/query), not echo, what it stored:
#   - up == 1 for the job (the exposition is accepted by the real scraper);
#   - request counters rise by exactly the requests the test sent (POST 2xx, GET 4xx, and the
#     /post route's histogram _count);
#   - histogram_quantile over the duration histogram (raw buckets and docs/observability.md's
#     rate() form) returns a finite number within the bucket range;
#   - the worker pool: N connections held open show as busy workers; once closed they show as
#     ready workers; after --max-idle-worker-duration-ms (1 s) of idleness the reaper retires
#     them: ringwork_workers_retired_total rises by N and ready workers drop back to 0.
# Every wait polls against a deadline; echo and Prometheus are killed in a finally block.
# Exit 77 (skip) only when the prometheus binary is absent (scripts/dev.sh installs it).
#
# usage: prometheus_server.py PATH/TO/ringwork-echo
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SKIP = 77
JOB = "ringwork-echo"
SCRAPE = "250ms"
IDLE_MS = 1000        # echo's --max-idle-worker-duration-ms: the reaper's period and idle limit
CONNECTIONS = 8       # connections held open at once: as many workers on the stacks


class Failed(Exception):
    pass


def free_port():
    """A port the kernel picked for a socket bound to port 0 (released for the caller)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, probe, timeout):
    """Polls probe() every 100 ms until it returns a value that is not None/False; raises
    Failed naming `what` (and the last value) at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = probe()
        except (OSError, ValueError, KeyError) as e:  # URLError is an OSError
            last = e
        else:
            if last is not None and last is not False:
                return last
        if time.monotonic() >= deadline:
            raise Failed(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(0.1)


class Prometheus:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def query(self, expr):
        """An instant query; returns the vector's values as floats (a scalar as one)."""
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.loads(r.read().decode())
        if doc.get("status") != "success":
            raise Failed(f"query {expr!r}: {doc}")
        data = doc["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        if data["resultType"] != "vector":
            raise Failed(f"query {expr!r}: result type {data['resultType']}")
        return [float(s["value"][1]) for s in data["result"]]

    def one(self, expr):
        """The single value of a query, or None while it has no series."""
        values = self.query(expr)
        if len(values) > 1:
            raise Failed(f"query {expr!r} returned {len(values)} series")
        return values[0] if values else None

    def ready(self):
        try:
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False


def http_request(conn_sock, port, method, path, body=b""):
    """One keep-alive request on an open socket; returns the status (reads the whole answer)."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    conn_sock.sendall(head + body)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn_sock.recv(65536)
        if not chunk:
            raise Failed(f"{method} {path}: connection closed before the answer")
        buf += chunk
    head_bytes, rest = buf.split(b"\r\n\r\n", 1)
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn_sock.recv(65536)
        if not chunk:
            raise Failed(f"{method} {path}: connection closed mid-body")
        rest += chunk
    return status


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def start_prometheus(binary, workdir, echo_port):
    """Starts Prometheus on a free port (a few attempts: the port is free when picked, another
    process could take it before Prometheus binds it); returns (process, Prometheus, log)."""
    config = os.path.join(workdir, "prometheus.yml")
    with open(config, "w") as f:
        f.write(f"""global:
  scrape_interval: {SCRAPE}
  scrape_timeout: {SCRAPE}
scrape_configs:
  - job_name: {JOB}
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:{echo_port}"]
""")
    last_log = ""
    for attempt in range(3):
        port = free_port()
        log_path = os.path.join(workdir, f"prometheus-{attempt}.log")
        log = open(log_path, "w+")
        proc = subprocess.Popen(
            [binary, f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(workdir, f'data-{attempt}')}",
             f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        prom = Prometheus(port)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None and not prom.ready():
            time.sleep(0.1)
        if proc.poll() is None and prom.ready():
            return proc, prom, log
        stop(proc, "prometheus")
        log.seek(0)
        last_log = log.read()
        log.close()
        if "address already in use" not in last_log:
            break
    raise Failed(f"prometheus did not become ready:\n{last_log}")


def stop(proc, name):
    """SIGTERM, then SIGKILL after 10 s; returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop on SIGTERM: killing it")
            proc.kill()
            proc.wait()
    return proc.returncode


def run(echo_path, prometheus_binary, workdir, state):
    t0 = time.monotonic()

    def step(text):
        print(f"[{time.monotonic() - t0:5.2f} s] {text}", flush=True)

    echo = subprocess.Popen([echo_path, "--host", "127.0.0.1", "--port", "0", "--threads", "2",
                             "--max-idle-worker-duration-ms", str(IDLE_MS),
                             # open connections keep their workers (step 4 counts them busy)
                             "--idle-park-delay-ms", "0"],
                            stdout=subprocess.PIPE, text=True)
    state["echo"] = echo
    line = echo.stdout.readline()
    m = re.search(r"listening on http://[^:]+:(\d+)/", line)
    if not m:
        raise Failed(f"echo did not start: {line!r}")
    port = int(m.group(1))
    step(f"echo listening on {port}")

    proc, prom, log = start_prometheus(prometheus_binary, workdir, port)
    state["prometheus"], state["prometheus_log"] = proc, log
    step(f"prometheus ready on {prom.base}")

    sel = f'job="{JOB}"'

    def at_least(expr, want):
        def probe():
            v = prom.one(expr)
            return v if v is not None and v >= want else None
        return probe

    # 1. The target is up: Prometheus scraped and parsed echo's /metrics.
    wait_for("up == 1", lambda: prom.one(f"up{{{sel}}}") == 1, 15)
    step("up == 1")

    # 2. Counters rise by the requests sent. Scrapes are GET 2xx on /metrics, so the series
    #    below count only the test's own requests (they do not exist before them).
    posts, misses = 5, 3
    before_post = prom.one(f'ringwork_requests_total{{{sel},method="POST",status_class="2xx"}}') or 0
    before_4xx = prom.one(f'ringwork_requests_total{{{sel},method="GET",status_class="4xx"}}') or 0
    s = connect(port)
    try:
        for _ in range(posts):
            status = http_request(s, port, "POST", "/post", b'{"x":1}')
            if status != 200:
                raise Failed(f"POST /post answered {status}")
        for _ in range(misses):
            status = http_request(s, port, "GET", "/status/404")
            if status != 404:
                raise Failed(f"GET /status/404 answered {status}")
    finally:
        s.close()
    wait_for(f"POST 2xx counter == {before_post + posts}",
             lambda: prom.one(f'ringwork_requests_total{{{sel},method="POST",status_class="2xx"}}')
             == before_post + posts, 10)
    wait_for(f"GET 4xx counter == {before_4xx + misses}",
             lambda: prom.one(f'ringwork_requests_total{{{sel},method="GET",status_class="4xx"}}')
             == before_4xx + misses, 10)
    wait_for(f"the /post histogram _count == {before_post + posts}",
             lambda: prom.one(f'ringwork_request_duration_seconds_count{{{sel},route="/post"}}')
             == before_post + posts, 10)
    total = prom.one(f"sum(ringwork_requests_total{{{sel}}})")
    scrapes = prom.one(f'ringwork_request_duration_seconds_count{{{sel},route="/metrics"}}')
    if total is None or scrapes is None or scrapes < 1 or total < posts + misses + scrapes:
        raise Failed(f"sum(ringwork_requests_total) {total} < {posts + misses} + scrapes {scrapes}")
    step(f"counters: POST 2xx +{posts}, GET 4xx +{misses}, total {total:.0f} "
         f"({scrapes:.0f} scrapes counted)")

    # 3. histogram_quantile: over the raw buckets of /post, and docs/observability.md's rate()
    #    form (the scrapes keep /metrics's rate above zero).
    q_raw = prom.one(f'histogram_quantile(0.99, sum by (le) '
                     f'(ringwork_request_duration_seconds_bucket{{{sel},route="/post"}}))')
    if q_raw is None or not math.isfinite(q_raw) or not 0 < q_raw <= 10:
        raise Failed(f"histogram_quantile over /post's buckets: {q_raw}")
    q_rate = wait_for(
        "histogram_quantile over rate() to be a finite number",
        lambda: (lambda v: v if v is not None and math.isfinite(v) and 0 < v <= 10 else None)(
            prom.one(f"histogram_quantile(0.99, sum by (le) "
                     f"(rate(ringwork_request_duration_seconds_bucket{{{sel}}}[5s])))")), 10)
    step(f"histogram_quantile(0.99): /post {q_raw * 1e3:.3f} ms, all routes (rate 5s) "
         f"{q_rate * 1e3:.3f} ms")

    # 4. The reaper, seen through Prometheus. First the workers of the steps above are retired
    #    (ready 0: only Prometheus's own keep-alive connection holds a worker, busy).
    ready = f'ringwork_workers{{{sel},state="ready"}}'
    busy = f'ringwork_workers{{{sel},state="busy"}}'
    retired = f"ringwork_workers_retired_total{{{sel}}}"
    wait_for("ready workers == 0 before the load", lambda: prom.one(ready) == 0, 10)
    base_retired = prom.one(retired)
    base_busy = prom.one(busy)
    step(f"before the load: ready 0, busy {base_busy:.0f}, retired {base_retired:.0f}")

    conns = []
    try:
        for _ in range(CONNECTIONS):
            conns.append(connect(port))
        for _ in range(3):
            for c in conns:
                status = http_request(c, port, "GET", "/get")
                if status != 200:
                    raise Failed(f"GET /get answered {status}")
        # Every open connection holds a worker: busy rises by CONNECTIONS.
        peak_busy = wait_for(f"busy workers >= {base_busy + CONNECTIONS}",
                             at_least(busy, base_busy + CONNECTIONS), 10)
        step(f"{CONNECTIONS} connections open: busy {peak_busy:.0f}")
    finally:
        for c in conns:
            c.close()
    closed_at = time.monotonic()

    # Closed: their workers park on the ready stacks (seen before the reaper retires them,
    # IDLE_MS to 2 * IDLE_MS later; max_over_time keeps a short-lived peak visible).
    peak_ready = wait_for(f"ready workers >= {CONNECTIONS}",
                          at_least(f"max_over_time({ready}[10s])", CONNECTIONS), 10)
    step(f"connections closed: ready peaked at {peak_ready:.0f}")

    # Idle for MaxIdleWorkerDuration: the reaper retires them and ready drops back to 0.
    got = wait_for(f"workers_retired_total >= {base_retired + CONNECTIONS}",
                   at_least(retired, base_retired + CONNECTIONS), 10)
    wait_for("ready workers == 0 after the reaper", lambda: prom.one(ready) == 0, 10)
    step(f"reaper: retired {base_retired:.0f} -> {got:.0f}, ready {peak_ready:.0f} -> 0 "
         f"({time.monotonic() - closed_at:.2f} s after the close)")
    if time.monotonic() - closed_at < IDLE_MS / 1000:
        raise Failed("workers were retired before they had been idle for the idle duration")
    wait_for("up == 1 after the load", lambda: prom.one(f"up{{{sel}}}") == 1, 5)


def main():
    if len(sys.argv) != 2:
        print("usage: prometheus_server.py PATH/TO/ringwork-echo", file=sys.stderr)
        return 2
    binary = shutil.which("prometheus")
    if binary is None:
        print("skip: the prometheus binary is not installed (apt-get install prometheus)")
        return SKIP
    state = {}
    failed = False
    workdir = tempfile.mkdtemp(prefix="ringwork-prometheus-")
    try:
        run(sys.argv[1], binary, workdir, state)
    except Failed as e:
        failed = True
        print("FAIL:", e)
    finally:
        prom_rc = stop(state.get("prometheus"), "prometheus")
        echo_rc = stop(state.get("echo"), "echo")
        log = state.get("prometheus_log")
        if log is not None:
            log.seek(0)
            text = log.read()
            log.close()
            if failed and text:
                print("--- prometheus log ---\n" + text)
        shutil.rmtree(workdir, ignore_errors=True)
    if state.get("echo") is not None and echo_rc != 0:
        print(f"FAIL: echo exit code {echo_rc}")
        failed = True
    if state.get("prometheus") is not None and prom_rc != 0:
        print(f"FAIL: prometheus exit code {prom_rc}")
        failed = True
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
