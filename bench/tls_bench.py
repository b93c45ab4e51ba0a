#!/usr/bin/env python3
"""Mutual TLS on 5061, per server CPU-second (issue 8). Two measurements:

A. New mutual-TLS connections — full handshake with a client certificate,
   one request and its answer, close — for ECDSA P-256 and RSA-2048
   certificates: openum (an OPTIONS and its 200) beside a plain
   `openssl s_server -Verify 1 -verify_return_error -no_ticket -rev` (one
   line echoed) and Kamailio 5.6's tls module (an OPTIONS, sl_send_reply),
   all driven by the same client, our own load generator below.
B. OPTIONS over ONE persistent mutual-TLS connection: openum beside
   Kamailio 5.6 with its tls module answering `sl_send_reply`, both driven
   by sipp (-t t1) through a socat TLS bridge (Debian's sipp has no TLS).

Servers are pinned to CPU 1, load (client, sipp, socat) to CPU 0. Server CPU
is utime+stime from /proc/PID/stat (every Kamailio process) before/after,
so the figures are work per CPU-second, not wall-clock rates.

usage: bench/tls_bench.py [SECONDS] [CALLS]   (needs kamailio, kamailio-tls-modules,
sip-tester, socat, python3-cryptography; only loopback is used)"""
import glob
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "component"))
from pki import PKI  # noqa: E402

SECS = float(sys.argv[1]) if len(sys.argv) > 1 else 10
CALLS = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
BIN = os.path.join(ROOT, "build-release", "src", "cli", "openum")
FQDN = "um.bench.example"
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ticks(pids):
    t = 0
    for p in pids:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        t += int(fields[11]) + int(fields[12])
    return t


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def wait_port(port, timeout=10):
    """Until something listens (asked of the kernel: a probe connection
    would be taken by a one-shot socat, or count as a failed handshake)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                             text=True).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def options():
    return ("OPTIONS sip:um@um.bench.example SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{uuid.uuid4().hex[:12]}\r\n"
            "From: <sip:gw@gw.bench.example>;tag=b\r\nTo: <sip:um@um.bench.example>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def connections(port, gw, root, request, until):
    """Our load generator: new connection, handshake, request, answer, close."""
    os.sched_setaffinity(0, {0})
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.options |= ssl.OP_NO_TICKET
    ctx.load_cert_chain(gw.cert_path, gw.key_path)
    ctx.load_verify_locations(root.cert_path)
    n = 0
    end = time.time() + until
    while time.time() < end:
        with socket.create_connection(("127.0.0.1", port), 5) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with ctx.wrap_socket(raw, server_hostname=FQDN) as s:
                s.sendall(request())
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if data:
                    n += 1
    os.sched_setaffinity(0, {0, 1})
    return n


def openum_server(tmp, pki, server, root, port, tcp_port):
    data = os.path.join(tmp, "openum-" + uuid.uuid4().hex[:6])
    def o(*a):
        subprocess.run([BIN, *a, "--data", data], check=True, capture_output=True)
    o("init")
    with open(os.path.join(data, "openum.conf"), "w") as f:
        f.write(f"[server]\nfqdn = {FQDN}\nsip_tcp = 127.0.0.1:{tcp_port}\n"
                f"sip_tls = 127.0.0.1:{port}\nauto_selfsigned = 0\nlog_level = warning\n"
                "max_connections_per_peer = 4096\n")
    o("cert", "import", server.both_path, "--no-reload")
    o("cert", "import", root.cert_path, "--trusted", "--yes", "--no-reload")
    o("dialplan", "new", "dp", "--digits", "3", "--security", "sipsecured", "--no-reload")
    o("server", "set", "--dialplans", "dp", "--no-reload")
    o("gateway", "new", "gw", "--address", "127.0.0.1", "--tls-name", "gw.bench.example",
      "--port", "5061", "--transport", "tls", "--dialplan", "dp", "--no-reload")
    p = subprocess.Popen(["taskset", "-c", "1", BIN, "serve", "--data", data],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "o.log"), "ab"))
    wait_port(port)
    return p, [p.pid]


def kamailio_server(tmp, server, root, port):
    cfgdir = os.path.join(tmp, "kam-" + uuid.uuid4().hex[:6])
    os.makedirs(cfgdir)
    with open(os.path.join(cfgdir, "tls.cfg"), "w") as f:
        f.write(f"[server:default]\nmethod = TLSv1.2+\nverify_certificate = yes\n"
                f"require_certificate = yes\nprivate_key = {server.key_path}\n"
                f"certificate = {server.cert_path}\nca_list = {root.cert_path}\n")
    with open(os.path.join(cfgdir, "kamailio.cfg"), "w") as f:
        f.write(f"""#!KAMAILIO
debug=0
log_stderror=yes
children=2
tcp_children=2
enable_tls=yes
listen=tls:127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tls.so"
modparam("tls", "config", "{cfgdir}/tls.cfg")
loadmodule "sl.so"
request_route {{
	if (method == "OPTIONS") {{ sl_send_reply("200", "OK"); exit; }}
	sl_send_reply("501", "Not Implemented");
}}
""")
    p = subprocess.Popen(["taskset", "-c", "1", "kamailio", "-f",
                          os.path.join(cfgdir, "kamailio.cfg"), "-DD", "-E"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "k.log"), "ab"))
    wait_port(port)
    time.sleep(1)
    return p, [p.pid] + children(p.pid)


def persistent(port, gw, root, tmp):
    """sipp -t t1 through a socat mutual-TLS bridge: CALLS OPTIONS on one connection."""
    bridge = free_port()
    sc = subprocess.Popen(["taskset", "-c", "0", "socat",
                           f"TCP-LISTEN:{bridge},bind=127.0.0.1,reuseaddr",
                           f"OPENSSL:127.0.0.1:{port},cert={gw.cert_path},key={gw.key_path},"
                           f"cafile={root.cert_path},verify=1,commonname={FQDN}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(bridge)
    for f in glob.glob(os.path.join(tmp, "options_*_screen.log")):
        os.unlink(f)
    subprocess.run(["taskset", "-c", "0", "sipp", "-sf",
                    os.path.join(ROOT, "tests", "component", "sipp", "options.xml"), "-t", "t1",
                    "-i", "127.0.0.1", "-p", str(free_port()), "-m", str(CALLS), "-r", "40000",
                    "-l", "2000", "-timeout", "300", "-timeout_error", "-nostdin",
                    "-trace_screen", f"127.0.0.1:{bridge}"],
                   capture_output=True, cwd=tmp, timeout=600)
    sc.terminate()
    sc.wait(10)
    ok = 0
    for f in glob.glob(os.path.join(tmp, "options_*_screen.log")):
        for line in open(f):
            if "Successful call" in line:
                ok = int(line.split()[-1])
    return ok


def measure(label, pids, fn):
    t0 = ticks(pids)
    n = fn()
    cpu = (ticks(pids) - t0) / HZ
    rate = n / cpu if cpu else 0
    print(f"  {label:<34} {n:>8} done, {cpu:6.2f} server CPU-s, {rate:9.0f} per CPU-second")
    return rate


def main():
    for tool in ["kamailio", "sipp", "socat", "openssl"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: apt-get install kamailio kamailio-tls-modules "
                     "sip-tester socat")
    subprocess.run([os.path.join(ROOT, "scripts", "build"), "release"], check=True,
                   capture_output=True)
    tmp = tempfile.mkdtemp(prefix="bench-tls-")
    results = {}
    print(f"A. new mutual-TLS connections (handshake + one request + close), {SECS:.0f} s each")
    for kind in ["ec", "rsa2048"]:
        pki = PKI(os.path.join(tmp, "pki-" + kind))
        root = pki.ca("root", "Bench Root", key=kind)
        server = pki.leaf("server", root, cn=FQDN, dns=[FQDN], key=kind)
        gw = pki.leaf("gw", root, cn="gw.bench.example", dns=["gw.bench.example"], key=kind)
        port = free_port()
        p, pids = openum_server(tmp, pki, server, root, port, free_port())
        try:
            results[("openum", kind)] = measure(
                f"openum {kind}", pids, lambda: connections(port, gw, root, options, SECS))
        finally:
            p.terminate()
            p.wait(20)
        port = free_port()
        p = subprocess.Popen(["taskset", "-c", "1", "openssl", "s_server", "-accept", str(port),
                              "-cert", server.cert_path, "-key", server.key_path, "-CAfile",
                              root.cert_path, "-Verify", "1", "-verify_return_error",
                              "-no_ticket", "-rev", "-quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            results[("s_server", kind)] = measure(
                f"openssl s_server -Verify 1 {kind}", [p.pid],
                lambda: connections(port, gw, root, lambda: b"ping\n", SECS))
        finally:
            p.terminate()
            p.wait(20)
        port = free_port()
        p, pids = kamailio_server(tmp, server, root, port)
        try:
            results[("kamailio", kind)] = measure(
                f"kamailio 5.6 tls {kind}", pids,
                lambda: connections(port, gw, root, options, SECS))
        finally:
            p.terminate()
            p.wait(20)
        print(f"  openum / s_server ({kind}): "
              f"{results[('openum', kind)] / max(results[('s_server', kind)], 1):.2f}")
    print(f"B. OPTIONS over one persistent mutual-TLS connection ({CALLS} each, ECDSA)")
    pki = PKI(os.path.join(tmp, "pki-b"))
    root = pki.ca("root", "Bench Root")
    server = pki.leaf("server", root, cn=FQDN, dns=[FQDN])
    gw = pki.leaf("gw", root, cn="gw.bench.example", dns=["gw.bench.example"])
    port = free_port()
    p, pids = openum_server(tmp, pki, server, root, port, free_port())
    try:
        results["o-pers"] = measure("openum", pids, lambda: persistent(port, gw, root, tmp))
    finally:
        p.terminate()
        p.wait(20)
    port = free_port()
    p, pids = kamailio_server(tmp, server, root, port)
    try:
        results["k-pers"] = measure("kamailio 5.6 sl_send_reply", pids,
                                    lambda: persistent(port, gw, root, tmp))
    finally:
        p.terminate()
        p.wait(20)
    print(f"  openum / kamailio: {results['o-pers'] / max(results['k-pers'], 1):.2f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
