"""Throughput and memory of `workmail-flow relay` and `workmail-flow milter` on loopback,
against a direct send to the same final hop (docs/performance.md, "Transports").

    .venv-ci/bin/python benches/transports.py [--messages N] [--parallel P]

Needs a release build (cargo build --release --bin workmail-flow), aiosmtpd in the
venv, and for the milter Debian's Postfix, run as root (a throwaway instance under a
temporary folder, as tests/postfix_transports.rs starts it). Prints one line per path:
messages per second of wall time, and messages per CPU-second of the workmail-flow
process (what one core of it sustains); then the peak resident memory (VmHWM) of each
process after 100 concurrent sessions of a 1 MB message.
"""

import argparse
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("WORKMAIL_FLOW_BIN", os.path.join(ROOT, "target/release/workmail-flow"))
HOP = os.path.join(ROOT, "tests/smtp/final_hop.py")

FLOW = """
[[stage]]
type = "stamp_header"
name = "X-Bench"
value = "yes"

[[stage]]
type = "subject_tag"
tag = "[EXT]"

[[stage]]
type = "disclaimer"
text = "-- benchmark disclaimer"
html = "<p>benchmark disclaimer</p>"
"""

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, limit=30):
    start = time.time()
    while time.time() - start < limit:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("nothing listens on %d" % port)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def message(size):
    head = (
        "From: Alice <alice@partner.example>\r\nTo: bob@corp.example\r\n"
        "Subject: quarterly numbers\r\nDate: Mon, 02 Nov 2026 09:14:00 +0000\r\n"
        "Message-ID: <bench@partner.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode()
    line = b"The numbers are in and the sheet follows in the next message.\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def blast(port, body, count, parallel):
    """Sends `count` messages over `parallel` threads, one connection each; seconds."""
    errors = []
    per = [count // parallel + (1 if i < count % parallel else 0) for i in range(parallel)]

    def worker(n):
        for _ in range(n):
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=120) as s:
                    s.sendmail("alice@partner.example", ["bob@corp.example"], body)
            except Exception as e:  # counted, reported
                errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in per]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("%d sends failed, first: %s" % (len(errors), errors[0]))
    return time.time() - start


def count_kept(out):
    return len([n for n in os.listdir(out) if n.endswith(".json")])


def wait_kept(out, n, limit=300):
    start = time.time()
    while count_kept(out) < n and time.time() - start < limit:
        time.sleep(0.05)
    return time.time() - start


class Hop:
    def __init__(self, work):
        self.port = free_port()
        self.out = os.path.join(work, "hop-%d" % self.port)
        self.proc = subprocess.Popen(
            [sys.executable, HOP, "--port", str(self.port), "--out", self.out],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        self.proc.stdout.readline()
        wait_port(self.port)


def start(args, log):
    port = free_port()
    proc = subprocess.Popen(
        [BIN] + args[:1] + ["--listen", "127.0.0.1:%d" % port] + args[1:],
        stderr=open(log, "w"), env=dict(os.environ, RUST_LOG="warn"),
    )
    wait_port(port)
    return proc, port


def postfix(work, relayhost, extra):
    root = os.path.join(work, "postfix-%d" % free_port())
    conf = os.path.join(root, "conf")
    for d in ("conf", "queue", "data"):
        os.makedirs(os.path.join(root, d))
    subprocess.run(["chown", "postfix", os.path.join(root, "data")], check=True)
    port = free_port()
    with open(os.path.join(conf, "main.cf"), "w") as f:
        f.write(
            "compatibility_level = 3.6\nqueue_directory = %s/queue\ndata_directory = %s/data\n"
            "mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\n"
            "inet_protocols = ipv4\nmyhostname = mta.test\nmydestination =\nlocal_recipient_maps =\n"
            "relay_domains =\nrelayhost = %s\nmynetworks = 127.0.0.0/8\n"
            "smtpd_relay_restrictions = permit_mynetworks, reject\nalias_maps =\nalias_database =\n"
            "maillog_file = %s/maillog\nmaillog_file_prefixes = /tmp, %s\n"
            "default_process_limit = 200\nsmtpd_client_connection_count_limit = 0\n"
            "smtpd_client_connection_rate_limit = 0\nsmtpd_client_message_rate_limit = 0\n"
            "default_destination_concurrency_limit = 50\n%s\n"
            % (root, root, relayhost, root, root, extra)
        )
    with open(os.path.join(conf, "master.cf"), "w") as f:
        f.write(MASTER_CF.format(port=port))
    subprocess.run(["postfix", "-c", conf, "start"], check=True, capture_output=True)
    wait_port(port)
    return conf, port


def report(name, count, wall, cpu):
    line = "%-34s %7.1f msgs/s wall" % (name, count / wall)
    if cpu is not None:
        line += "   %8.1f msgs per CPU-second of workmail-flow (%.3f s CPU)" % (count / cpu, cpu)
    print(line, flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--parallel", type=int, default=10)
    p.add_argument("--size", type=int, default=10_000)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="wmf-bench-")
    os.chmod(work, 0o755)  # Postfix (user postfix) opens files below it
    flow = os.path.join(work, "flow.toml")
    with open(flow, "w") as f:
        f.write(FLOW)
    body = message(a.size)
    print("%d messages of %d bytes, %d at a time, %s" % (a.messages, len(body), a.parallel, BIN))

    hop = Hop(work)
    wall = blast(hop.port, body, a.messages, a.parallel)
    report("direct to the final hop", a.messages, wall, None)

    hop = Hop(work)
    relay, rport = start(["relay", "--config", flow, "--next-hop", "127.0.0.1:%d" % hop.port,
                          "--next-hop-tls", "none"], os.path.join(work, "relay.log"))
    before = cpu_seconds(relay.pid)
    wall = blast(rport, body, a.messages, a.parallel)
    report("through relay", a.messages, wall, cpu_seconds(relay.pid) - before)

    have_postfix = os.geteuid() == 0 and subprocess.run(["which", "postfix"], capture_output=True).returncode == 0
    milter = None
    if have_postfix:
        hop2 = Hop(work)
        conf, pport = postfix(work, "[127.0.0.1]:%d" % hop2.port, "")
        wall = blast(pport, body, a.messages, a.parallel)
        wall += wait_kept(hop2.out, a.messages)
        report("through Postfix, no milter", a.messages, wall, None)
        subprocess.run(["postfix", "-c", conf, "abort"], capture_output=True)

        hop3 = Hop(work)
        milter, mport = start(["milter", "--config", flow], os.path.join(work, "milter.log"))
        conf, pport = postfix(work, "[127.0.0.1]:%d" % hop3.port,
                              "smtpd_milters = inet:127.0.0.1:%d\nmilter_protocol = 6\n" % mport)
        before = cpu_seconds(milter.pid)
        wall = blast(pport, body, a.messages, a.parallel)
        wall += wait_kept(hop3.out, a.messages)
        report("through Postfix with the milter", a.messages, wall, cpu_seconds(milter.pid) - before)
    else:
        print("milter: skipped (needs root and Debian's postfix)")

    # Peak memory: 100 sessions at once, each with a 1 MB message.
    big = message(1_000_000)
    blast(rport, big, 100, 100)
    print("relay peak RSS after 100 concurrent 1 MB sessions: %.1f MB" % peak_rss_mb(relay.pid))
    if milter is not None:
        blast(pport, big, 100, 100)
        wait_kept(hop3.out, a.messages + 100)
        print("milter peak RSS after 100 concurrent 1 MB sessions: %.1f MB" % peak_rss_mb(milter.pid))
        subprocess.run(["postfix", "-c", conf, "abort"], capture_output=True)
        milter.kill()
    relay.kill()


if __name__ == "__main__":
    main()
