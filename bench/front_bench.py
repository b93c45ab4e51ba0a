#!/usr/bin/env python3
"""Front-door benchmarks, per server CPU-second (docs/performance.md).

  bench/front_bench.py [--rounds 3] [--answers 1000000] [--window 1024]
                       [--new 20000] [--only tcp,tls,new] [--memory]

A. OPTIONS over ONE persistent TCP connection: openum vs Kamailio 5.6 with
   its production allocator (`kamailio -X tlsf -x tlsf`), stateless
   `sl_send_reply`.
B. OPTIONS over ONE persistent mutual-TLS connection: openum vs Kamailio's
   tls module (`kamailio -X tlsf`: its `-x tlsf` crashes the tls module).
C. New mutual-TLS connections (handshake with a client certificate, one
   OPTIONS, its answer, close; 8 at a time): openum vs bench/tlsref.c, the
   leanest C responder (handshake + one answer, no tickets) — parity is
   the goal, not a speed-up.
--memory: RSS of openum per idle TCP and per idle mutual-TLS connection,
   with 1,000 gateways in the directory.

Every load comes from bench/sipload.c (C, epoll; a window of outstanding
requests, so the server is never waiting for the generator). Servers are
pinned to CPU 1, the generator to CPU 0; server CPU = utime+stime of every
server process (/proc/PID/stat) before and after the load; busy = server
CPU / wall time of the load (a server sharing CPU 1 with other work cannot
reach 100 %). Rounds are interleaved (openum, Kamailio, openum, ...);
each figure is reported as min / median / max over the rounds and each
openum/Kamailio ratio is computed per round. Only loopback is used.
Needs: kamailio, kamailio-tls-modules, python3-cryptography."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "component"))
from pki import PKI  # noqa: E402

BUILD = os.path.join(ROOT, "build-release")
BIN = os.path.join(BUILD, "src", "cli", "openum")
LOAD = os.path.join(BUILD, "bench", "sipload")
REF = os.path.join(BUILD, "bench", "tlsref")
FQDN = "um.bench.example"
HZ = os.sysconf("SC_CLK_TCK")
KMODS = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ticks(pids):
    t = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return t


def family(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid] + [int(x) for x in out.split()]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                             text=True).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Servers:
    def __init__(self, tmp, pki):
        self.tmp, self.pki, self.procs = tmp, pki, []

    def spawn(self, cmd, log):
        p = subprocess.Popen(["taskset", "-c", "1", *cmd], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.tmp, log), "ab"))
        self.procs.append(p)
        return p

    def openum(self, gateways=0, extra=""):
        data = os.path.join(self.tmp, f"openum{len(self.procs)}")

        def o(*a):
            subprocess.run([BIN, *a, "--data", data], check=True, capture_output=True)
        o("init")
        self.o_tcp, self.o_tls = free_port(), free_port()
        with open(os.path.join(data, "openum.conf"), "w") as f:
            f.write(f"[server]\nfqdn = {FQDN}\nsip_tcp = 127.0.0.1:{self.o_tcp}\n"
                    f"sip_tls = 127.0.0.1:{self.o_tls}\nauto_selfsigned = 0\n"
                    "log_level = warning\nmax_connections = 4096\n"
                    f"max_connections_per_peer = 4096\n{extra}")
        o("cert", "import", self.pki.server.both_path, "--no-reload")
        o("cert", "import", self.pki.root.cert_path, "--trusted", "--yes", "--no-reload")
        o("dialplan", "new", "plain", "--digits", "4", "--no-reload")
        o("dialplan", "new", "sec", "--digits", "4", "--security", "sipsecured", "--no-reload")
        o("server", "set", "--dialplans", "plain,sec", "--no-reload")
        o("gateway", "new", "loadtcp", "--address", "127.0.0.1", "--dialplan", "plain",
          "--no-reload")
        o("gateway", "new", "loadtls", "--address", "127.0.0.2", "--tls-name",
          "gw.bench.example", "--port", "5061", "--transport", "tls", "--dialplan", "sec",
          "--no-reload")
        for i in range(gateways):
            o("gateway", "new", f"g{i}", "--address", f"127.1.{i // 250}.{i % 250 + 1}",
              "--dialplan", "plain", "--no-reload")
        p = self.spawn([BIN, "serve", "--data", data], "openum.log")
        wait_port(self.o_tls)
        self.o_data = data
        return p

    def kamailio(self, tls):
        port = free_port()
        cfgdir = tempfile.mkdtemp(dir=self.tmp, prefix="kam")
        lines = ["#!KAMAILIO", "debug=0", "log_stderror=yes", "children=2", "tcp_children=2"]
        if tls:
            with open(os.path.join(cfgdir, "tls.cfg"), "w") as f:
                f.write(f"[server:default]\nmethod = TLSv1.2+\nverify_certificate = yes\n"
                        f"require_certificate = yes\nprivate_key = {self.pki.server.key_path}\n"
                        f"certificate = {self.pki.server.cert_path}\n"
                        f"ca_list = {self.pki.root.cert_path}\n")
            lines += ["enable_tls=yes", f"listen=tls:127.0.0.1:{port}", f'mpath="{KMODS}"',
                      'loadmodule "tls.so"', f'modparam("tls", "config", "{cfgdir}/tls.cfg")']
        else:
            lines += ["disable_tcp=no", f"listen=tcp:127.0.0.1:{port}", f'mpath="{KMODS}"']
        lines += ['loadmodule "sl.so"', "request_route {",
                  '\tif (method == "OPTIONS") { sl_send_reply("200", "OK"); exit; }',
                  '\tsl_send_reply("501", "Not Implemented");', "}"]
        cfg = os.path.join(cfgdir, "kamailio.cfg")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        alloc = ["-X", "tlsf"] if tls else ["-X", "tlsf", "-x", "tlsf"]
        p = self.spawn(["kamailio", "-f", cfg, "-DD", "-E", *alloc], "kamailio.log")
        wait_port(port)
        time.sleep(1.0)
        p.port = port
        p.cmdline = "kamailio " + " ".join(alloc) + f" -f {cfg} -DD -E"
        return p

    def tlsref(self):
        port = free_port()
        p = self.spawn([REF, self.pki.server.cert_path, self.pki.server.key_path,
                        self.pki.root.cert_path, str(port)], "tlsref.log")
        wait_port(port)
        p.port = port
        return p

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def run_load(pids, args):
    import resource
    g0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0, w0 = ticks(pids), time.time()
    r = subprocess.run(["taskset", "-c", "0", LOAD, *args], capture_output=True, text=True,
                       timeout=900)
    wall, cpu = time.time() - w0, (ticks(pids) - t0) / HZ
    g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    gen = (g1.ru_utime + g1.ru_stime) - (g0.ru_utime + g0.ru_stime)
    f = r.stdout.split()
    if r.returncode != 0 or len(f) < 10:
        raise RuntimeError(f"sipload {' '.join(args)}: {r.stdout} {r.stderr}")
    n = int(f[1])
    return {"n": n, "cpu": cpu, "wall": wall, "rate": n / cpu if cpu else 0.0,
            "busy": cpu / wall if wall else 0.0, "gen": gen}


def summary(xs):
    return f"{min(xs):,.0f} / {statistics.median(xs):,.0f} / {max(xs):,.0f}"


def rsummary(xs):
    return f"{min(xs):.2f} / {statistics.median(xs):.2f} / {max(xs):.2f}"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory(tmp, pki):
    """Idle connections: RSS per connection, 1,000 gateways in the directory."""
    import socket
    import ssl
    srv = Servers(tmp, pki)
    try:
        p = srv.openum(gateways=1000)
        time.sleep(1)
        base = rss_kb(p.pid)
        socks = []
        for i in range(1000):  # each from a gateway's own address, one OPTIONS answered
            src = f"127.1.{i // 250}.{i % 250 + 1}"
            s = socket.socket()
            s.bind((src, 0))
            s.connect(("127.0.0.1", srv.o_tcp))
            s.sendall((f"OPTIONS sip:um@{FQDN} SIP/2.0\r\n"
                       f"Via: SIP/2.0/TCP {src}:5060;branch=z9hG4bK{i}x\r\n"
                       f"From: <sip:gw@{src}>;tag=m{i}\r\nTo: <sip:um@{FQDN}>\r\n"
                       f"Call-ID: mem{i}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                       "Content-Length: 0\r\n\r\n").encode())
            assert s.recv(4096).startswith(b"SIP/2.0 200 ")
            socks.append(s)
        time.sleep(1)
        tcp = (rss_kb(p.pid) - base) / 1000
        for s in socks:
            s.close()
        time.sleep(1)
        base = rss_kb(p.pid)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(pki.gw.cert_path, pki.gw.key_path)
        socks = []
        for i in range(1000):
            raw = socket.create_connection(("127.0.0.1", srv.o_tls))
            s = ctx.wrap_socket(raw, server_hostname=FQDN)
            s.sendall(b"\r\n\r\n")  # a keep-alive: the handshake is complete on both sides
            s.recv(2)
            socks.append(s)
        time.sleep(1)
        tls = (rss_kb(p.pid) - base) / 1000
        for s in socks:
            s.close()
        print(f"memory: {tcp:.1f} KiB per idle TCP connection, {tls:.1f} KiB per idle "
              f"mutual-TLS connection (1,000 of each, after one request each; 1,002 "
              f"gateways in the directory)")
    finally:
        srv.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--answers", type=int, default=1000000)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--new", type=int, default=20000)
    ap.add_argument("--only", default="tcp,tls,new")
    ap.add_argument("--memory", action="store_true")
    a = ap.parse_args()
    subprocess.run([os.path.join(ROOT, "scripts", "build"), "release"], check=True,
                   capture_output=True)
    tmp = tempfile.mkdtemp(prefix="bench-front-")
    pki = PKI(os.path.join(tmp, "pki"))
    pki.root = pki.ca("root", "Bench Root")
    pki.server = pki.leaf("server", pki.root, cn=FQDN, dns=[FQDN])
    pki.gw = pki.leaf("gw", pki.root, cn="gw.bench.example", dns=["gw.bench.example"])
    if a.memory:
        memory(tmp, pki)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    only = set(a.only.split(","))
    srv = Servers(tmp, pki)
    res = {}
    try:
        o = srv.openum()
        opids = [o.pid]
        ktcp = srv.kamailio(tls=False) if "tcp" in only else None
        ktls = srv.kamailio(tls=True) if "tls" in only else None
        ref = srv.tlsref() if "new" in only else None
        tls_args = ["-t", "tls", "-e", pki.gw.cert_path, "-k", pki.gw.key_path]
        plan = []
        if "tcp" in only:
            common = ["-c", "1", "-w", str(a.window), "-n", str(a.answers)]
            plan += [("A", "openum", opids, common + ["127.0.0.1", str(srv.o_tcp)]),
                     ("A", "kamailio", family(ktcp.pid), common + ["127.0.0.1",
                                                                  str(ktcp.port)])]
        if "tls" in only:
            common = tls_args + ["-c", "1", "-w", str(a.window), "-n", str(a.answers)]
            plan += [("B", "openum", opids, common + ["127.0.0.1", str(srv.o_tls)]),
                     ("B", "kamailio", family(ktls.pid), common + ["127.0.0.1",
                                                                  str(ktls.port)])]
        if "new" in only:
            common = tls_args + ["-N", "-c", "8", "-n", str(a.new)]
            plan += [("C", "openum", opids, common + ["127.0.0.1", str(srv.o_tls)]),
                     ("C", "tlsref", [ref.pid], common + ["127.0.0.1", str(ref.port)])]
        for r in range(a.rounds):
            for test, name, pids, args in plan:
                la = loadavg()
                m = run_load(pids, args)
                m["load"] = la
                res.setdefault((test, name), []).append(m)
                print(f"round {r + 1} {test} {name:<9} {m['n']:>8} answers "
                      f"{m['cpu']:6.2f} CPU-s {m['rate']:>10,.0f}/CPU-s busy "
                      f"{m['busy'] * 100:3.0f}% (generator {m['gen']:.2f} CPU-s, load {la:.1f})",
                      flush=True)
        print()
        titles = {"A": "A. OPTIONS, one TCP connection (kamailio -X tlsf -x tlsf)",
                  "B": "B. OPTIONS, one mutual-TLS connection (kamailio -X tlsf)",
                  "C": "C. new mutual-TLS connections (handshake + OPTIONS + close)"}
        for test in "ABC":
            names = [n for (t, n) in res if t == test]
            if not names:
                continue
            print(titles[test])
            for n in names:
                ms = res[(test, n)]
                print(f"  {n:<9} per CPU-second min/median/max {summary([m['rate'] for m in ms])}"
                      f"; busy {summary([m['busy'] * 100 for m in ms])} %")
            other = [n for n in names if n != "openum"][0]
            ratios = [x["rate"] / y["rate"] for x, y in zip(res[(test, "openum")],
                                                           res[(test, other)])]
            print(f"  openum / {other} per round: {', '.join(f'{x:.2f}' for x in ratios)}"
                  f" (min/median/max {rsummary(ratios)})")
        loads = [m["load"] for ms in res.values() for m in ms]
        print(f"load average during the runs: {min(loads):.1f} .. {max(loads):.1f}")
        if ktcp:
            print(f"kamailio TCP: {ktcp.cmdline}")
        if ktls:
            print(f"kamailio TLS: {ktls.cmdline}")
    finally:
        srv.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
