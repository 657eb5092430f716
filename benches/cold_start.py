#!/usr/bin/env python3
"""Cold start of the `rewrite` Lambda binary: from process start (just before fork/exec)
to its first `GET /2018-06-01/runtime/invocation/next`, against a fake Runtime API on
127.0.0.1 that only records when that request arrives and never answers it.

    python3 benches/cold_start.py BINARY [RUNS] [CONFIG]

CONFIG is passed as WORKMAIL_FLOW_CONFIG (default: the config bundled in the binary).
Prints min / median / max over RUNS (default 30) starts, and the same for /bin/true
(start to exit) as the floor of starting any process from here. Credentials and bucket
are dummies: start-up reads them but makes no AWS call.
"""

import http.server
import os
import statistics
import subprocess
import sys
import threading
import time


class Runtime(http.server.BaseHTTPRequestHandler):
    first_poll = None  # perf_counter() of the first poll in this run
    polled = threading.Event()

    def do_GET(self):
        if self.path.startswith("/2018-06-01/runtime/invocation/next"):
            if Runtime.first_poll is None:
                Runtime.first_poll = time.perf_counter()
                Runtime.polled.set()
            time.sleep(5)  # hold the long poll; the process is killed first
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    config = sys.argv[3] if len(sys.argv) > 3 else None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_FUNCTION_NAME": "workmail-flow-rewrite",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % server.server_address[1],
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDCOLDSTART",
        "AWS_SECRET_ACCESS_KEY": "cold-start-dummy",
        "WORKMAIL_FLOW_BUCKET": "cold-start-bucket",
        "RUST_LOG": "warn",
    }
    if config:
        env["WORKMAIL_FLOW_CONFIG"] = os.path.abspath(config)
    times = []
    for _ in range(runs):
        Runtime.first_poll = None
        Runtime.polled.clear()
        start = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        ok = Runtime.polled.wait(10)
        proc.kill()
        proc.wait()
        if not ok:
            sys.exit("the binary never polled the Runtime API (exit %s)" % proc.returncode)
        times.append((Runtime.first_poll - start) * 1000)
    floor = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["/bin/true"])
        floor.append((time.perf_counter() - start) * 1000)

    def line(label, xs):
        print("%-40s min %6.2f ms  median %6.2f ms  max %6.2f ms  (%d runs)"
              % (label, min(xs), statistics.median(xs), max(xs), len(xs)))

    line("rewrite: start to first poll", times)
    line("/bin/true: start to exit (floor)", floor)


if __name__ == "__main__":
    main()
