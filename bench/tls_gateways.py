#!/usr/bin/env python3
"""New mutual-TLS connections per server CPU-second with 1 and with 1,000
gateways in the directory (issue 12 item 3: the identity lookup must not
grow with the number of gateways).

Two stores, identical but for the directory: one gateway, or that gateway
among 999 others (each with its own address and TLS name, made with
`openum gateway new`). The release `openum serve` of each runs pinned to
CPU 1 in turn; `openssl s_time -new` (a full TLS 1.3 handshake with the
gateway's client certificate per connection, then close) drives it from CPU
0. Completed handshakes (`openum status`) per second of server CPU time
(utime+stime from /proc/PID/stat), RUNS interleaved runs per directory,
reported as min / median / max with the ratio of each run pair — not
wall-clock rates: the machine is shared.

usage: bench/tls_gateways.py [SECONDS] [RUNS] [OPENUM_BIN]"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "component"))
from pki import PKI  # noqa: E402

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
BIN = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "build-release", "src", "cli",
                                                         "openum")
FQDN = "um.bench.example"
GW = "gw.bench.example"


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


def write_conf(data):
    """Fresh ports for every run (a shared machine reuses them meanwhile)."""
    port = free_port()
    with open(os.path.join(data, "openum.conf"), "w") as f:
        f.write(f"[server]\nfqdn = {FQDN}\nsip_tcp = 127.0.0.1:{free_port()}\n"
                f"sip_tls = 127.0.0.1:{port}\nstart_secured = 1\nauto_selfsigned = 0\n"
                "log_level = warning\nmax_connections_per_peer = 1024\n")
    return port


def make_store(tmp, name, pki, server, root, ngw):
    data = os.path.join(tmp, name)
    run(data, "init")
    write_conf(data)
    run(data, "cert", "import", server.both_path, "--no-reload")
    run(data, "cert", "import", root.cert_path, "--trusted", "--yes", "--no-reload")
    run(data, "dialplan", "new", "dp", "--digits", "3", "--security", "sipsecured")
    # The measured gateway sits in the middle of the others (by name and
    # by TLS name), so neither a scan nor a search finds it first.
    for i in range(ngw - 1):
        if i == (ngw - 1) // 2:
            run(data, "gateway", "new", "gm", "--address", "127.0.0.1", "--tls-name", GW,
                "--dialplan", "dp", "--no-reload")
        run(data, "gateway", "new", f"g{i:04d}", "--address",
            f"10.{i // 250}.{i % 250 + 1}.1", "--tls-name", f"g{i:04d}.bench.example",
            "--dialplan", "dp", "--no-reload")
    if ngw == 1:
        run(data, "gateway", "new", "gm", "--address", "127.0.0.1", "--tls-name", GW,
            "--dialplan", "dp", "--no-reload")
    return data


def measure(tmp, data, gw, label):
    port = write_conf(data)
    log = open(os.path.join(tmp, label + ".log"), "ab")
    srv = subprocess.Popen(["taskset", "-c", "1", BIN, "serve", "--data", data], stdout=log,
                           stderr=subprocess.STDOUT)
    try:
        st = None
        for _ in range(600):
            if srv.poll() is not None:
                break
            try:
                st = status(data)
                break
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        if st is None:
            raise SystemExit(f"{label}: the server did not start: see {log.name}")
        gws = st["directory"]["gateways"]
        hz = os.sysconf("SC_CLK_TCK")
        before_hs = st["sip"]["tls_handshakes"]
        before_rej = st["sip"]["tls_rejected"]
        before_cpu = cpu_ticks(srv.pid)
        subprocess.run(["taskset", "-c", "0", "openssl", "s_time", "-connect",
                        f"127.0.0.1:{port}", "-new", "-cert", gw.cert_path, "-key",
                        gw.key_path, "-time", str(SECS), "-tls1_3"],
                       capture_output=True, text=True)
        time.sleep(0.5)
        st = status(data)
        hs = st["sip"]["tls_handshakes"] - before_hs
        rejected = st["sip"]["tls_rejected"] - before_rej
        cpu = (cpu_ticks(srv.pid) - before_cpu) / hz
        if rejected:
            print(f"  ({label}: {rejected} connection(s) refused, see {log.name}: on a busy "
                  "machine s_time can miss tls_handshake_timeout)")
        return gws, hs, cpu
    finally:
        srv.terminate()
        srv.wait(20)


def main():
    tmp = tempfile.mkdtemp(prefix="bench-tlsgw-")
    pki = PKI(os.path.join(tmp, "pki"))
    root = pki.ca("root", "Bench Root")
    server = pki.leaf("server", root, cn=FQDN, dns=[FQDN])
    gw = pki.leaf("gw", root, cn=GW, dns=[GW])
    stores = {}
    for n in (1, 1000):
        t0 = time.time()
        stores[n] = make_store(tmp, f"gw{n}", pki, server, root, n)
        print(f"store with {n} gateway(s) made in {time.time() - t0:.0f} s", flush=True)
    print(f"openum {BIN}; {SECS} s per run, {RUNS} interleaved runs; server on CPU 1, "
          f"openssl s_time -new -tls1_3 on CPU 0")
    rates = {1: [], 1000: []}
    for r in range(RUNS):
        for n in (1, 1000):
            gws, hs, cpu = measure(tmp, stores[n], gw, f"gw{n}")
            rate = hs / cpu if cpu else 0
            rates[n].append(rate)
            print(f"run {r + 1}, {gws} gateways: {hs} handshakes, server CPU {cpu:.2f} s -> "
                  f"{rate:.0f} per CPU-second ({1000 * cpu / max(hs, 1):.3f} ms each)",
                  flush=True)
    ratios = [a / b for a, b in zip(rates[1], rates[1000]) if b]
    for n in (1, 1000):
        v = rates[n]
        print(f"{n:>5} gateways: min {min(v):.0f} / median {statistics.median(v):.0f} / "
              f"max {max(v):.0f} handshakes per server CPU-second")
    print("cost with 1,000 gateways / with 1, per run: " +
          ", ".join(f"{x:.3f}x" for x in ratios) +
          f" (median {statistics.median(ratios):.3f}x)")


if __name__ == "__main__":
    main()
