#!/usr/bin/python3
"""Concurrent voicemail deposits: `openum serve` pinned to one core, the
load generator (bench/call_load, built on src/testcall/) on the other.

A fresh store: a Secured dial plan (mutual TLS, SRTP) or an Unsecured one
(TCP, RTP), G gateways on 127.0.0.(10+i) each with its own certificate,
M mailboxes. call_load places N calls at R per second, at most C at once,
each talking T seconds after openum's greeting and beep; then every call's
outcome is checked, and every answered call must have produced exactly one
message in its mailbox's Maildir whose audio is what was sent: the length
within one packet, and sample for sample the G.711 sent (a lost packet is a
frame of zeros). Reported: calls answered, refused, failed, late answers
(setup ≥ 1 s), lost packets (openum's counter and frames missing in the
messages), missing or broken messages, server CPU (utime+stime of every
thread, /proc) per call-second, server RSS per call at the peak, the
generator's CPU, and the machine's load average before the run.

usage: bench/call_bench.py [--unsecured] [--calls N] [--rate R] [--concurrency C]
         [--talk S] [--conns K | --conn-per-call] [--gateways G] [--mailboxes M]
         [--no-messages] [--data DIR] [--bin OPENUM] [--load CALL_LOAD] [--wav F]
         [--server-cpu 1] [--gen-cpu 0] [--conf 'key = value' ...] [--json]
"""
import argparse
import base64
import email
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "component"))
from pki import PKI  # noqa: E402

FQDN = "um.bench.example"


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid):
    """(utime+stime ticks, RSS KiB) of a process, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return ticks, rss


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


HZ = os.sysconf("SC_CLK_TCK")


def free_rtp_range(n):
    """An even base B such that B..B+n-1 are free UDP ports on 127.0.0.1,
    below the kernel's ephemeral range and the media tests' 21000-40999:
    two runs on one machine (or a test beside a benchmark) must not take
    each other's ports."""
    import random
    n += n % 2
    for _ in range(200):
        base = random.randrange(10000, 21000 - n, 2)
        held = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise SystemExit(f"no {n} free UDP ports in 10000-21000")


def ulaw_decode(b):
    """G.711 µ-law to linear (ITU-T G.711), as numpy int16."""
    u = ~np.frombuffer(b, dtype=np.uint8).astype(np.int32) & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def scrape(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def msum(m, prefix):
    return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))


def wait_deliveries(port, expected, skip, limit=600):
    """The metrics once every message is delivered, or nothing has moved for
    20 s (a message that never comes is reported as missing), `limit` s at most."""
    m = scrape(port)
    last, still = None, time.time()
    deadline = time.time() + limit
    while not skip and time.time() < deadline:
        m = scrape(port)
        pending = msum(m, "openum_messages_pending")
        done = m.get("openum_messages_delivered_total", 0)
        if pending == 0 and done >= expected:
            break
        if (pending, done) != last:
            last, still = (pending, done), time.time()
        elif time.time() - still > 20:
            break
        time.sleep(1)
    return m


def default_wav(path):
    """Speech: the built-in prompts one after another (no silence of 5 s)."""
    frames = b""
    for f in sorted(glob.glob(os.path.join(ROOT, "data", "prompts", "*.wav"))):
        with wave.open(f) as w:
            if w.getframerate() == 8000 and w.getnchannels() == 1 and w.getsampwidth() == 2:
                frames += w.readframes(w.getnframes())
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames)
    return path


class Store:
    def __init__(self, a, data):
        self.a, self.data, self.bin = a, data, a.bin
        self.tls_port, self.tcp_port, self.metrics = free_port(), free_port(), free_port()

    def run(self, *args):
        return subprocess.run([self.bin, *args, "--data", self.data], capture_output=True,
                              text=True, check=True)

    def setup(self):
        a = self.a
        self.run("init")
        c = a.concurrency
        rtp = free_rtp_range(2 * (c + 200) + 2)
        conf = (f"[server]\nfqdn = {FQDN}\nsip_tcp = 127.0.0.1:{self.tcp_port}\n"
                f"sip_tls = 127.0.0.1:{self.tls_port}\nmetrics_listen = 127.0.0.1:{self.metrics}\n"
                f"auto_selfsigned = 0\nlog_level = warning\nmax_calls = {c + 100}\n"
                f"max_calls_per_second = {int(a.rate * 2) + 20}\nmedia_threads = 1\n"
                f"rtp_ports = {rtp}-{rtp + 2 * (c + 200) + 1}\n"
                f"max_connections = {max(1024, c + 200)}\n"
                f"max_connections_per_peer = {max(64, c + 50)}\n")
        conf += "".join(f"{kv}\n" for kv in a.conf)
        with open(os.path.join(self.data, "openum.conf"), "w") as f:
            f.write(conf)
        os.chmod(os.path.join(self.data, "openum.conf"), 0o600)
        sec = "unsecured" if a.unsecured else "secured"
        self.run("dialplan", "new", "dp", "--digits", "4", "--security", sec, "--pilot", "8000")
        self.gws = []
        pki = PKI(os.path.join(self.data, "..", "pki"))
        if not a.unsecured:
            self.root = pki.ca("root", "openum Bench Root")
            srv = pki.leaf("server", self.root, cn=FQDN, dns=[FQDN])
            self.run("cert", "import", srv.both_path, "--no-reload")
            self.run("cert", "import", self.root.cert_path, "--trusted", "--yes", "--no-reload")
        for i in range(a.gateways):
            addr = f"127.0.0.{10 + i}"
            if a.unsecured:
                self.run("gateway", "new", f"gw{i}", "--address", addr, "--dialplan", "dp")
                self.gws.append(addr)
            else:
                name = f"gw{i}.bench.example"
                leaf = pki.leaf(f"gw{i}", self.root, cn=name, dns=[name])
                self.run("gateway", "new", f"gw{i}", "--address", addr, "--tls-name", name,
                         "--transport", "tls", "--dialplan", "dp")
                self.gws.append(f"{addr},{leaf.cert_path},{leaf.key_path}")
                self.gw_leaf = getattr(self, "gw_leaf", leaf)
        for m in range(a.mailboxes):
            self.run("mailbox", "new", str(2000 + m), "--dialplan", "dp", "--name", f"Box {m}")
        self.run("server", "set", "--dialplans", "dp")

    def serve(self):
        log = open(os.path.join(self.data, "..", "serve.log"), "ab")
        cmd = [self.bin, "serve", "--data", self.data]
        if self.a.server_cpu is not None:
            cmd = ["taskset", "-c", str(self.a.server_cpu)] + cmd
        self.p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if self.p.poll() is not None:
                raise SystemExit("openum serve exited; see serve.log")
            r = subprocess.run([self.bin, "status", "--json", "--data", self.data],
                               capture_output=True, text=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit("openum serve did not start")

    def stop(self, wait=120):
        self.p.terminate()
        try:
            self.p.wait(wait)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def check_messages(data, calls, payload):
    """Every answered call that hung up normally: exactly one message, its
    audio the G.711 sent (length within one packet; lost frames counted)."""
    index = {}
    for f in glob.glob(os.path.join(data, "mail", "*", "new", "*")) + \
            glob.glob(os.path.join(data, "mail", "*", "cur", "*")):
        m = re.search(r"\.K([0-9a-f]{32})\.", os.path.basename(f))
        if m:
            index.setdefault(m.group(1), []).append(f)
    sent_pcm = ulaw_decode(payload)
    res = {"expected": 0, "found": 0, "missing": 0, "duplicated": 0, "broken": 0,
           "length_off": 0, "frames_lost": 0, "examples": []}
    for c in calls:
        # bye-cut: the BYE was in flight on a connection the soak dropped;
        # all the audio was sent, so its message must be whole all the same
        if c["status"] != 200 or c["end"] not in ("bye", "bye-cut"):
            continue
        res["expected"] += 1
        key = hashlib.sha256((c["call_id"] + "\0" + c["from_tag"] + "\0" + c["to_tag"])
                             .encode()).hexdigest()[:32]
        files = index.get(key, [])
        if not files:
            res["missing"] += 1
            if len(res["examples"]) < 5:
                res["examples"].append(f"call {c['id']}: no message")
            continue
        res["found"] += 1
        if len(files) > 1:
            res["duplicated"] += 1
        with open(files[0], "rb") as f:
            msg = email.message_from_bytes(f.read())
        wav = None
        for part in msg.walk():
            if part.get_content_type().startswith("audio/"):
                wav = part.get_payload(decode=True)
        if not wav or wav[:4] != b"RIFF":
            res["broken"] += 1
            continue
        i = wav.find(b"data")
        pcm = np.frombuffer(wav[i + 8:], dtype="<i2")
        want = c["sent"] * 160
        if abs(len(pcm) - want) > 160:
            res["length_off"] += 1
            if len(res["examples"]) < 5:
                res["examples"].append(f"call {c['id']}: {len(pcm)} samples, sent {want}")
            continue
        n = min(len(pcm), want) // 160
        reps = -(-want // len(sent_pcm))
        ref = np.tile(sent_pcm, reps)[:n * 160].reshape(n, 160)
        got = pcm[:n * 160].reshape(n, 160)
        bad = np.any(ref != got, axis=1)
        lost = int(np.sum(bad & np.all(got == 0, axis=1)))
        res["frames_lost"] += lost
        if int(np.sum(bad)) > lost:
            res["broken"] += 1
            if len(res["examples"]) < 5:
                res["examples"].append(f"call {c['id']}: {int(np.sum(bad)) - lost} frames differ")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unsecured", action="store_true", help="TCP + RTP (else TLS + SRTP)")
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--talk", type=int, default=20)
    ap.add_argument("--conns", type=int, default=2)
    ap.add_argument("--conn-per-call", action="store_true")
    ap.add_argument("--gateways", type=int, default=2)
    ap.add_argument("--mailboxes", type=int, default=50)
    ap.add_argument("--no-messages", action="store_true", help="do not check the Maildir")
    ap.add_argument("--data", help="parent folder of the store (default: a temporary one)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-release", "src", "cli", "openum"))
    ap.add_argument("--load", default=os.path.join(ROOT, "build-release", "bench", "call_load"))
    ap.add_argument("--wav")
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--gen-cpu", type=int, default=0)
    ap.add_argument("--conf", action="append", default=[], help="an openum.conf line")
    ap.add_argument("--media-socks", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    ap.add_argument("--tls-storm", type=int, default=0, metavar="S",
                    help="once every call is up, S seconds of new mutual-TLS connections "
                    "(openssl s_time -new with a gateway's certificate, on the generator's CPU)")
    a = ap.parse_args()

    tmp = a.data or tempfile.mkdtemp(prefix="om-callbench-", dir="/var/tmp")
    os.makedirs(tmp, exist_ok=True)
    data = os.path.join(tmp, "data")
    st = Store(a, data)
    st.setup()
    wavf = a.wav or default_wav(os.path.join(tmp, "talk.wav"))
    load1 = os.getloadavg()
    st.serve()
    pid = st.p.pid
    time.sleep(1)
    t0, rss0 = proc_stat(pid)
    fds0 = fd_count(pid)
    cmd = [a.load, "--server", "127.0.0.1", "--port",
           str(st.tcp_port if a.unsecured else st.tls_port), "--calls", str(a.calls), "--rate",
           str(a.rate), "--concurrency", str(a.concurrency), "--talk", str(a.talk), "--ext",
           f"2000-{2000 + a.mailboxes - 1}", "--domain", FQDN, "--wav", wavf, "--out",
           os.path.join(tmp, "calls.jsonl"), "--dump-payload", os.path.join(tmp, "payload.ul"),
           "--media", "127.0.0.9",
           "--media-socks", str(a.media_socks or max(1, min(32, a.concurrency // 500 + 1)))]
    cmd += ["--conn-per-call"] if a.conn_per_call else ["--conns", str(a.conns)]
    if a.unsecured:
        cmd += ["--rtp"]
    else:
        cmd += ["--tls", "--ca", st.root.cert_path, "--tls-name", FQDN]
    for g in st.gws:
        cmd += ["--gw", g]
    if a.gen_cpu is not None:
        cmd = ["taskset", "-c", str(a.gen_cpu)] + cmd
    # stderr to a file: a pipe nobody reads would stop the generator once full
    gen_err = open(os.path.join(tmp, "call_load.err"), "w+")
    gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=gen_err, text=True)
    peak = {"active": 0, "rss": rss0, "rss_at_peak": rss0, "fds": fds0}
    storm, storm_res = None, {}
    while gen.poll() is None:
        time.sleep(1)
        m = scrape(st.metrics)
        active = int(msum(m, "openum_calls_active"))
        if a.tls_storm and storm is None and active >= a.concurrency * 0.95:
            storm_res = {"active_at_start": active, "t0": time.time(),
                         "hs0": m.get("openum_tls_handshakes_total", 0),
                         "cpu0": proc_stat(pid)[0]}
            scmd = ["openssl", "s_time", "-connect", f"127.0.0.1:{st.tls_port}", "-new",
                    "-cert", st.gw_leaf.cert_path, "-key", st.gw_leaf.key_path, "-CAfile",
                    st.root.cert_path, "-time", str(a.tls_storm)]
            if a.gen_cpu is not None:
                scmd = ["taskset", "-c", str(a.gen_cpu)] + scmd
            storm = subprocess.Popen(scmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        if storm is not None and "hs1" not in storm_res and storm.poll() is not None:
            storm_res.update(hs1=m.get("openum_tls_handshakes_total", 0),
                             cpu1=proc_stat(pid)[0], t1=time.time(),
                             active_at_end=active)
        _, rss = proc_stat(pid)
        peak["rss"] = max(peak["rss"], rss)
        peak["fds"] = max(peak["fds"], fd_count(pid))
        if active >= peak["active"]:
            peak["active"], peak["rss_at_peak"] = active, rss
    out, _ = gen.communicate()
    t1, rss1 = proc_stat(pid)
    gen_err.seek(0)
    err = gen_err.read()[-4000:]
    if gen.returncode not in (0, 3):  # 3: its --max-seconds passed (reported in the JSON)
        raise SystemExit(f"call_load failed ({gen.returncode}): {err}")
    g = json.loads(out.strip().splitlines()[-1])
    with open(os.path.join(tmp, "calls.jsonl")) as f:
        calls = [json.loads(l) for l in f if l.strip()]
    # deliveries finish
    m = wait_deliveries(st.metrics, g["answered"] - g["ended_early"], a.no_messages)
    call_s = sum((c["talk_after_answer_ms"] / 1000 if c["talk_after_answer_ms"] > 0 else 0)
                 + c["sent"] * 0.02 + 0.1 for c in calls if c["status"] == 200)
    cpu = (t1 - t0) / HZ
    if storm_res.get("hs1"):
        secs = storm_res["t1"] - storm_res["t0"]
        storm_res = {"seconds": round(secs, 1),
                     "handshakes": storm_res["hs1"] - storm_res["hs0"],
                     "per_s": round((storm_res["hs1"] - storm_res["hs0"]) / secs, 1),
                     "server_cpu_share": round((storm_res["cpu1"] - storm_res["cpu0"]) / HZ
                                               / secs, 3),
                     "calls_active": [storm_res["active_at_start"],
                                      storm_res["active_at_end"]]}
    res = {
        "tls_storm": storm_res,
        "mode": "unsecured/tcp/rtp" if a.unsecured else "secured/tls/srtp",
        "connections": "one per call" if a.conn_per_call else f"{a.conns} per gateway",
        "gateways": a.gateways, "calls": a.calls, "rate": a.rate,
        "concurrency": a.concurrency, "talk_s": a.talk, "load_avg_before": load1,
        "generator": g,
        "server": {"cpu_s": round(cpu, 2), "cpu_per_call_s_ms": round(1000 * cpu / call_s, 3)
                   if call_s else None,
                   "call_seconds": round(call_s, 1),
                   "peak_active_calls": peak["active"], "rss_before_kib": rss0,
                   "rss_at_peak_kib": peak["rss_at_peak"], "rss_max_kib": peak["rss"],
                   "rss_after_kib": rss1,
                   "kib_per_call": round((peak["rss_at_peak"] - rss0) / peak["active"], 1)
                   if peak["active"] else None,
                   "fds_before": fds0, "fds_max": peak["fds"], "fds_after": fd_count(pid),
                   "rtp_received": m.get('openum_rtp_packets_total{direction="received"}', 0),
                   "rtp_lost": m.get("openum_rtp_packets_lost_total", 0),
                   "srtp_failures": msum(m, "openum_srtp_failures_total"),
                   "refused": msum(m, "openum_calls_refused_total"),
                   "delivered": m.get("openum_messages_delivered_total", 0)},
    }
    if not a.no_messages:
        with open(os.path.join(tmp, "payload.ul"), "rb") as f:
            payload = f.read()
        res["messages"] = check_messages(data, calls, payload)
    st.stop()
    res["server"]["exit"] = st.p.returncode
    if not a.keep and not a.data:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        res["dir"] = tmp
    print(json.dumps(res, indent=None if a.json else 1))


if __name__ == "__main__":
    main()
