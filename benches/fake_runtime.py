#!/usr/bin/env python3
"""A one-event Lambda Runtime API on 127.0.0.1, for benches/lambda_memory.sh: the first
`GET .../invocation/next` gets EVENT.json, the function's response is printed, and later
polls are held (until the script stops the function).

    python3 benches/fake_runtime.py EVENT.json PORT
"""

import http.server
import sys
import threading
import time

EVENT = open(sys.argv[1], "rb").read()
PORT = int(sys.argv[2])
served = threading.Event()
answered = threading.Event()


class Runtime(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if served.is_set():
            answered.wait(30)
            self.send_response(500)
            self.end_headers()
            return
        served.set()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000))
        self.send_header(
            "Lambda-Runtime-Invoked-Function-Arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench",
        )
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(EVENT)))
        self.end_headers()
        self.wfile.write(EVENT)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        print("POST", self.path, body[:300].decode(errors="replace"), flush=True)
        self.send_response(202)
        self.end_headers()
        self.wfile.write(b"{}")
        answered.set()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Runtime)
server.daemon_threads = True
server.serve_forever()
