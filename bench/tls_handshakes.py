#!/usr/bin/env python3
"""New mutual-TLS connections per server CPU-second (issue 8).

Starts the release `openum serve` pinned to CPU 1 with a test PKI (EC P-256
server and gateway certificates, the gateway's CA trusted), drives it with
`openssl s_time -new` (a full handshake with a client certificate per
connection, then close) pinned to CPU 0, and reports completed handshakes
(from `openum status`) per second of server CPU time (utime+stime from
/proc/PID/stat) — not wall-clock rates: the machine is shared.

usage: bench/tls_handshakes.py [SECONDS] [OPENUM_BIN]"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "component"))
from pki import PKI  # noqa: E402

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
BIN = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "build-release", "src", "cli",
                                                         "openum")
FQDN = "um.bench.example"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(data, *args):
    return subprocess.run([BIN, *args, "--data", data], capture_output=True, text=True,
                          check=True)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def status(data):
    return json.loads(run(data, "status", "--json").stdout)


def main():
    tmp = tempfile.mkdtemp(prefix="bench-tls-")
    data = os.path.join(tmp, "data")
    pki = PKI(os.path.join(tmp, "pki"))
    root = pki.ca("root", "Bench Root")
    server = pki.leaf("server", root, cn=FQDN, dns=[FQDN])
    gw = pki.leaf("gw", root, cn="gw.bench.example", dns=["gw.bench.example"])
    run(data, "init")
    port = free_port()
    with open(os.path.join(data, "openum.conf"), "w") as f:
        f.write(f"[server]\nfqdn = {FQDN}\nsip_tcp = 127.0.0.1:{free_port()}\n"
                f"sip_tls = 127.0.0.1:{port}\nstart_secured = 1\nauto_selfsigned = 0\n"
                "log_level = warning\nmax_connections_per_peer = 1024\n")
    run(data, "cert", "import", server.both_path, "--no-reload")
    run(data, "cert", "import", root.cert_path, "--trusted", "--yes", "--no-reload")
    run(data, "dialplan", "new", "dp", "--digits", "3", "--security", "sipsecured")
    run(data, "gateway", "new", "gw", "--address", "127.0.0.1", "--tls-name",
        "gw.bench.example", "--port", "5061", "--transport", "tls", "--dialplan", "dp",
        "--no-reload")
    log = open(os.path.join(tmp, "serve.log"), "wb")
    srv = subprocess.Popen(["taskset", "-c", "1", BIN, "serve", "--data", data], stdout=log,
                           stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                status(data)
                break
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        hz = os.sysconf("SC_CLK_TCK")
        print(f"openum {BIN}, {SECS} s per run, server on CPU 1, s_time on CPU 0")
        for label, extra in [("TLS 1.3", ["-tls1_3"]), ("TLS 1.2", ["-tls1_2"])]:
            before_hs = status(data)["sip"]["tls_handshakes"]
            before_cpu = cpu_ticks(srv.pid)
            subprocess.run(["taskset", "-c", "0", "openssl", "s_time", "-connect",
                            f"127.0.0.1:{port}", "-new", "-cert", gw.cert_path, "-key",
                            gw.key_path, "-time", str(SECS), *extra],
                           capture_output=True, text=True)
            time.sleep(0.5)
            hs = status(data)["sip"]["tls_handshakes"] - before_hs
            cpu = (cpu_ticks(srv.pid) - before_cpu) / hz
            rate = hs / cpu if cpu else 0
            print(f"{label}: {hs} mutual handshakes, server CPU {cpu:.2f} s -> "
                  f"{rate:.0f} handshakes per server CPU-second "
                  f"({1000 * cpu / max(hs, 1):.2f} ms CPU each)")
        st = status(data)["sip"]
        print(f"tls_failed={st['tls_failed']} tls_rejected={st['tls_rejected']} "
              f"tls_deferred={st['tls_deferred']}")
    finally:
        srv.terminate()
        srv.wait(20)


if __name__ == "__main__":
    main()
