#!/usr/bin/env python3
"""media_bench.py — inbound G.711 SRTP streams recorded by openum's media
engine, or relayed SRTP -> RTP by rtpengine, measured per CPU-second.

  bench/media_bench.py openum    --streams N [--seconds 60] [--suite S] [--threads 1]
  bench/media_bench.py rtpengine --streams N [--seconds 60] [--suite S]

openum: om-mediahost (the real engine: media threads, SRTP, recorder, spool
writer on /dev/shm) pinned to CPU 1, N sessions each recording one stream;
media_load (N SRTP streams, 50 packets/s each, one socket, sendmmsg) pinned
to CPU 0. rtpengine: rtpengine-daemon in userspace (no kernel module)
pinned to CPU 1, N calls set up over its ng protocol (offer RTP/SAVP with
our a=crypto, transport-protocol RTP/AVP toward the callee, answer), the
same media_load sending SRTP to its caller-side ports and receiving the
plain RTP it forwards on one sink port.

Measured over the load's run: the server's CPU seconds (utime + stime of
all its threads from /proc/PID/stat), packets sent, packets the server
accepted (openum: its counters; rtpengine: what reached the sink), packets
lost (openum: sequence gaps; both: kernel receive-buffer drops from
/proc/net/snmp), and for openum the bytes recorded (must be 320 per
packet). One JSON line per run."""
import argparse
import base64
import json
import os
import queue
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("OPENUM_BUILD", os.path.join(ROOT, "build-release"))
MEDIAHOST = os.path.join(BUILD, "tests", "tools", "om-mediahost")
LOAD = os.path.join(BUILD, "bench", "media_load")
KEYLEN = {"AES_CM_128_HMAC_SHA1_80": 30, "AEAD_AES_128_GCM": 28,
          "AES_256_CM_HMAC_SHA1_80": 46, "AEAD_AES_256_GCM": 44,
          "AES_CM_128_HMAC_SHA1_32": 30}


def raise_nofile():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = 200000 if hard == resource.RLIM_INFINITY else min(200000, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / tck  # utime, stime


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0




def free_port():
    """A free port from the ephemeral range (32768-60999), which the servers'
    RTP ranges (20000-32767) never use."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_drops(lo, hi):
    """Datagrams the kernel dropped on sockets bound to 127.0.0.1:lo..hi (the
    server's RTP ports), from /proc/net/udp's per-socket drop counters."""
    total = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            parts = line.split()
            ip, port = parts[1].split(":")
            if ip == "0100007F" and lo <= int(port, 16) <= hi:
                total += int(parts[-1])
    return total


def run_load(ports, seconds, suite, key, sport, sink=None):
    cmd = ["taskset", "-c", "0", LOAD, "--from", f"127.0.0.1:{sport}", "--seconds", str(seconds)]
    if suite:
        cmd += ["--suite", suite, "--key", key]
    if sink:
        cmd += ["--sink", str(sink)]
    p = subprocess.run(cmd, input="\n".join(map(str, ports)) + "\n", capture_output=True,
                       text=True, preexec_fn=raise_nofile, timeout=seconds + 120)
    if p.returncode != 0:
        sys.exit(f"media_load failed: {p.stderr}")
    return json.loads(p.stdout)


# ------------------------------------------------------------------ openum

class Host:
    def __init__(self, spool, threads, backend):
        self.p = subprocess.Popen(["taskset", "-c", "1", MEDIAHOST, "--spool", spool, "--ports",
                                   "20000-32767", "--threads", str(threads), "--backend",
                                   backend], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, preexec_fn=raise_nofile)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(lambda e: e["ev"] == "ready")

    def _read(self):
        for line in self.p.stdout:
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass

    def send(self, line):
        self.p.stdin.write(line + "\n")

    def flush(self):
        self.p.stdin.flush()

    def wait(self, pred, timeout=120):
        end = time.time() + timeout
        while time.time() < end:
            e = self.q.get(timeout=max(0.1, end - time.time()))
            if e.get("ev") == "error":
                sys.exit(f"om-mediahost: {e}")
            if pred(e):
                return e
        sys.exit("om-mediahost did not answer")


def bench_openum(a):
    spool = a.spool
    shutil.rmtree(spool, ignore_errors=True)
    os.makedirs(spool, mode=0o700)
    h = Host(spool, a.threads, a.backend)
    rss0 = rss_kib(h.p.pid)
    sport = free_port()
    key = base64.b64encode(bytes(range(KEYLEN[a.suite]))).decode() if a.suite else None
    crypto = f" suite={a.suite} rxkey={key} txkey={key}" if a.suite else ""
    for i in range(a.streams):
        h.send(f"new s{i} local=127.0.0.1 remote=127.0.0.1:{sport} te=101{crypto}")
    h.flush()
    ports = []
    while len(ports) < a.streams:
        ports.append(h.wait(lambda e: e["ev"] == "port")["port"])
    rss1 = rss_kib(h.p.pid)
    for i in range(a.streams):
        h.send(f"rec s{i} s{i}")
    h.flush()
    for i in range(a.streams):
        h.wait(lambda e: e["ev"] == "ok")
    rss2 = rss_kib(h.p.pid)
    cpu0 = cpu_of(h.p.pid)
    t0 = time.time()
    load = run_load(ports, a.seconds, a.suite, key, sport)
    wall = time.time() - t0
    time.sleep(1.0)
    cpu1, drops = cpu_of(h.p.pid), udp_drops(20000, 32767)
    rss3 = rss_kib(h.p.pid)
    h.send("stats")
    h.flush()
    st = h.wait(lambda e: e["ev"] == "stats")
    for i in range(a.streams):
        h.send(f"recstop s{i}")
    h.flush()
    recorded = 0
    for i in range(a.streams):
        recorded += h.wait(lambda e: e["ev"] == "record_stopped")["bytes"]
    h.send("quit")
    h.flush()
    h.p.wait(120)
    shutil.rmtree(spool, ignore_errors=True)
    cpu = cpu1 - cpu0
    out = {
        "server": "openum", "suite": a.suite or "RTP", "streams": a.streams, "threads": a.threads,
        "backend": a.backend, "seconds": a.seconds, "wall_s": round(wall, 1),
        "sent": load["sent"], "accepted": st["rtp_in"], "lost": st["lost"],
        "late": st["late"], "srtp_fail": st["srtp_auth"], "kernel_drops": drops,
        "recorded_bytes": recorded, "expected_bytes": load["sent"] * 320,
        "server_cpu_s": round(cpu, 2), "server_cpu_pct": round(100 * cpu / wall, 1),
        "us_per_packet": round(1e6 * cpu / max(1, st["rtp_in"]), 3),
        "load_cpu_s": load["cpu_s"], "load_late_max_ms": load["late_max_ms"],
        "rss_kib_sessions": rss1 - rss0, "rss_kib_recording": rss2 - rss1,
        "rss_kib_running": rss3 - rss0,
        "kib_per_session_setup": round((rss1 - rss0) / a.streams, 1),
        "kib_per_session_running": round((rss3 - rss0) / a.streams, 1),
    }
    out["ok"] = (out["accepted"] == out["sent"] and out["lost"] == 0 and out["kernel_drops"] == 0
                 and out["recorded_bytes"] == out["expected_bytes"])
    print(json.dumps(out), flush=True)


# --------------------------------------------------------------- rtpengine

def bencode(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, list):
        return b"l" + b"".join(bencode(i) for i in x) + b"e"
    if isinstance(x, dict):
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in sorted(x.items())) + b"e"
    raise TypeError(x)


def bdecode(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        e = b.index(b"e", i)
        return int(b[i + 1:e]), e + 1
    if c == b"l":
        i += 1
        out = []
        while b[i:i + 1] != b"e":
            v, i = bdecode(b, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while b[i:i + 1] != b"e":
            k, i = bdecode(b, i)
            v, i = bdecode(b, i)
            out[k.decode()] = v
        return out, i + 1
    colon = b.index(b":", i)
    n = int(b[i:colon])
    return b[colon + 1:colon + 1 + n], colon + 1 + n


class Ng:
    def __init__(self, port):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(5)
        self.addr = ("127.0.0.1", port)
        self.n = 0

    def call(self, d):
        self.n += 1
        cookie = f"c{self.n}".encode()
        self.s.sendto(cookie + b" " + bencode(d), self.addr)
        while True:
            data, _ = self.s.recvfrom(65536)
            c, _, rest = data.partition(b" ")
            if c == cookie:
                r, _ = bdecode(rest)
                if r.get("result") != b"ok":
                    sys.exit(f"rtpengine: {r}")
                return r


def bench_rtpengine(a):
    ngport = free_port()
    rtpe = subprocess.Popen(["taskset", "-c", "1", "rtpengine", "-f", "-t", "-1", "-i",
                             "127.0.0.1", "-n", f"127.0.0.1:{ngport}", "-m", "20000", "-M",
                             "32767", "--log-stderr", "-L", os.environ.get("RTPE_LOG", "3"),
                             "--num-threads", "1", "--no-fallback"],
                            stdout=subprocess.DEVNULL,
                            stderr=open(os.environ.get("RTPE_ERR", "/dev/null"), "w"),
                            preexec_fn=raise_nofile)
    ng = Ng(ngport)
    for _ in range(50):
        try:
            if ng.call({"command": "ping"}).get("result") == b"pong":
                break
        except (socket.timeout, SystemExit):
            time.sleep(0.2)
    sport, sink = free_port(), free_port()
    key = base64.b64encode(bytes(range(KEYLEN[a.suite]))).decode()
    ports = []
    rss0 = rss_kib(rtpe.pid)
    for i in range(a.streams):
        offer = ("v=0\r\no=gw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                 f"m=audio {sport} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                 f"a=crypto:1 {a.suite} inline:{key}\r\na=sendrecv\r\n")
        ng.call({"command": "offer", "call-id": f"b{i}", "from-tag": f"f{i}", "sdp": offer,
                 "transport-protocol": "RTP/AVP", "flags": ["trust-address"],
                 "replace": ["origin", "session-connection"]})
        answer = ("v=0\r\no=um 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                  f"m=audio {sink} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")
        r = ng.call({"command": "answer", "call-id": f"b{i}", "from-tag": f"f{i}",
                     "to-tag": f"t{i}", "sdp": answer, "flags": ["trust-address"],
                     "replace": ["origin", "session-connection"]})
        sdp = r["sdp"].decode()
        port = int(sdp.split("m=audio ")[1].split()[0])
        ports.append(port)
    rss1 = rss_kib(rtpe.pid)
    cpu0 = cpu_of(rtpe.pid)
    t0 = time.time()
    load = run_load(ports, a.seconds, a.suite, key, sport, sink=sink)
    wall = time.time() - t0
    cpu1, drops = cpu_of(rtpe.pid), udp_drops(20000, 32767)
    # What rtpengine received and forwarded, by its own counters.
    received = 0
    for i in range(a.streams):
        r = ng.call({"command": "query", "call-id": f"b{i}"})
        tags = r.get("tags", {})
        t = tags.get(f"f{i}", {})
        for m in t.get("medias", []):
            for s in m.get("streams", []):
                received += s.get("stats", {}).get("packets", 0)
    rtpe.terminate()
    rtpe.wait(30)
    cpu = cpu1 - cpu0
    out = {
        "server": "rtpengine", "suite": a.suite, "streams": a.streams, "seconds": a.seconds,
        "wall_s": round(wall, 1), "sent": load["sent"], "received": received,
        "at_sink": load["sink"], "kernel_drops": drops, "server_cpu_s": round(cpu, 2),
        "server_cpu_pct": round(100 * cpu / wall, 1),
        "us_per_packet": round(1e6 * cpu / max(1, received), 3),
        "load_cpu_s": load["cpu_s"], "load_late_max_ms": load["late_max_ms"],
        "kib_per_session_setup": round((rss1 - rss0) / a.streams, 1),
    }
    out["ok"] = out["received"] == out["sent"] and out["kernel_drops"] == 0
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("server", choices=["openum", "rtpengine"])
    ap.add_argument("--streams", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--suite", default="AES_CM_128_HMAC_SHA1_80")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backend", default="openssl")
    ap.add_argument("--spool", default="/dev/shm/openum-bench-spool")
    a = ap.parse_args()
    if a.suite == "none":
        a.suite = None
    (bench_openum if a.server == "openum" else bench_rtpengine)(a)


main()
