#!/usr/bin/env python3
"""Complete calls per server CPU-second (docs/performance.md, "Calls").

  bench/call_rate.py [--rounds 3] [--calls 20000] [--window 64] [--only tcp,tls,cap]
                     [--cap 100] [--cap-calls 20000]

A. Complete calls (INVITE -> 200 -> ACK -> BYE -> 200, no media) over ONE
   persistent TCP connection: openum answering (an Unsecured plan: the
   INVITE is admitted, routed, its SDP answered with a media session's
   port, the dialog made and ended) vs Kamailio 5.6 with its production
   allocator (`kamailio -X tlsf -x tlsf`) relaying statefully (tm, rr:
   t_relay, record_route, loose_route) to a sipp UAS that answers.
B. The same over ONE persistent mutual-TLS connection (openum: a
   SIPSecured plan; Kamailio's tls module, `kamailio -X tlsf` — its
   `-x tlsf` crashes the tls module — relaying over TCP to the sipp UAS).
C. At the cap: openum with max_calls = CAP, the generator keeping exactly
   CAP calls in progress (a new INVITE only once a call's BYE is
   answered): calls answered per second and CPU-second, and NOT ONE
   refusal (a slot must be free again as soon as the BYE is answered);
   then 2*CAP in progress: the 503s past the cap.

The load is bench/call_rate.c (C, epoll; W calls in progress per
connection, each call's ACK and BYE sent as soon as its 200 arrives), the
same for both servers. Servers are pinned to CPU 1; the generator (and the
sipp UAS behind Kamailio) to CPU 0. Server CPU = utime+stime of every
server process (/proc/PID/stat, all threads; Kamailio: the main process
and its children) before and after the load; sipp's CPU is NOT counted as
Kamailio's. Rounds are interleaved (openum TCP, Kamailio TCP, openum TLS,
Kamailio TLS); each figure is min / median / max over the rounds and each
openum/Kamailio ratio is computed per round. Loopback only.
Needs: kamailio, kamailio-tls-modules, sip-tester (sipp), python3-cryptography."""
import argparse
import os
import shutil
import socket
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
LOAD = os.path.join(BUILD, "bench", "call_rate")
FQDN = "um.bench.example"
HZ = os.sysconf("SC_CLK_TCK")
KMODS = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"

UAS_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer at once, no 180">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]u[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:uas@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=uas 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [local_ip]
      t=0 0
      m=audio 30002 RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
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


def wait_port(port, timeout=30):
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


def summary(xs, fmt="{:,.0f}"):
    return " / ".join(fmt.format(x) for x in (min(xs), statistics.median(xs), max(xs)))


class Servers:
    def __init__(self, tmp, pki):
        self.tmp, self.pki, self.procs = tmp, pki, []

    def spawn(self, cmd, log, cpu=1):
        p = subprocess.Popen(["taskset", "-c", str(cpu), *cmd], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.tmp, log), "ab"))
        self.procs.append(p)
        return p

    def openum(self, max_calls=100000, name="openum"):
        data = os.path.join(self.tmp, f"{name}{len(self.procs)}")

        def o(*a):
            subprocess.run([BIN, *a, "--data", data], check=True, capture_output=True)
        o("init")
        tcp, tls = free_port(), free_port()
        lo = 20000 + 4000 * (len(self.procs) % 8)
        with open(os.path.join(data, "openum.conf"), "w") as f:
            f.write(f"[server]\nfqdn = {FQDN}\nsip_tcp = 127.0.0.1:{tcp}\n"
                    f"sip_tls = 127.0.0.1:{tls}\nauto_selfsigned = 0\nlog_level = warning\n"
                    f"max_calls = {max_calls}\nmax_calls_per_second = 0\n"
                    f"rtp_ports = {lo}-{lo + 3999}\nmedia_threads = 1\n"
                    "max_connections = 4096\nmax_connections_per_peer = 4096\n")
        o("cert", "import", self.pki.server.both_path, "--no-reload")
        o("cert", "import", self.pki.root.cert_path, "--trusted", "--yes", "--no-reload")
        o("dialplan", "new", "plain", "--digits", "4", "--pilot", "8000", "--no-reload")
        o("dialplan", "new", "sec", "--digits", "4", "--pilot", "8000", "--security",
          "sipsecured", "--no-reload")
        o("server", "set", "--dialplans", "plain,sec", "--no-reload")
        o("gateway", "new", "loadtcp", "--address", "127.0.0.1", "--dialplan", "plain",
          "--no-reload")
        o("gateway", "new", "loadtls", "--address", "127.0.0.2", "--tls-name",
          "gw.bench.example", "--port", "5061", "--transport", "tls", "--dialplan", "sec",
          "--no-reload")
        p = self.spawn([BIN, "serve", "--data", data], f"{name}.log")
        wait_port(tls)
        p.tcp, p.tls, p.data = tcp, tls, data
        p.pids = [p.pid]
        return p

    def sipp_uas(self):
        port = free_port()
        sf = os.path.join(self.tmp, "uas.xml")
        with open(sf, "w") as f:
            f.write(UAS_XML)
        p = self.spawn(["sipp", "-sf", sf, "-t", "t1", "-i", "127.0.0.1", "-p", str(port),
                        "-mp", str(free_port(socket.SOCK_DGRAM) & ~1), "-nostdin",
                        "-max_socket", "1000", "-skip_rlimit"], f"sipp{port}.log", cpu=0)
        wait_port(port)
        p.port = port
        return p

    def kamailio(self, tls, uas_port):
        port, out = free_port(), free_port()
        cfgdir = tempfile.mkdtemp(dir=self.tmp, prefix="kam")
        lines = ["#!KAMAILIO", "debug=0", "log_stderror=yes", "children=2", "tcp_children=2",
                 "disable_tcp=no", f'mpath="{KMODS}"']
        if tls:
            with open(os.path.join(cfgdir, "tls.cfg"), "w") as f:
                f.write(f"[server:default]\nmethod = TLSv1.2+\nverify_certificate = yes\n"
                        f"require_certificate = yes\nprivate_key = {self.pki.server.key_path}\n"
                        f"certificate = {self.pki.server.cert_path}\n"
                        f"ca_list = {self.pki.root.cert_path}\n")
            lines += ["enable_tls=yes", f"listen=tls:127.0.0.1:{port}",
                      f"listen=tcp:127.0.0.1:{out}", 'loadmodule "tls.so"',
                      f'modparam("tls", "config", "{cfgdir}/tls.cfg")']
        else:
            lines += [f"listen=tcp:127.0.0.1:{port}"]
        lines += ['loadmodule "pv.so"', 'loadmodule "tm.so"', 'loadmodule "sl.so"', 'loadmodule "rr.so"',
                  'loadmodule "siputils.so"', 'loadmodule "maxfwd.so"',
                  "request_route {",
                  '\tif (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops");'
                  " exit; }",
                  "\tif (has_totag()) {",
                  "\t\tif (loose_route()) { t_relay(); exit; }",
                  '\t\tif (method == "ACK") { if (t_check_trans()) { t_relay(); } exit; }',
                  '\t\tsl_send_reply("404", "Not here"); exit;',
                  "\t}",
                  '\tif (method == "CANCEL") { if (t_check_trans()) { t_relay(); } exit; }',
                  "\tt_check_trans();",
                  "\trecord_route();",
                  f'\t$du = "sip:127.0.0.1:{uas_port};transport=tcp";',
                  "\tif (!t_relay()) { sl_reply_error(); }",
                  "\texit;",
                  "}"]
        cfg = os.path.join(cfgdir, "kamailio.cfg")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        alloc = ["-X", "tlsf"] if tls else ["-X", "tlsf", "-x", "tlsf"]
        alloc += ["-m", "1024", "-M", "64"]  # shared / private MiB: room for 5 s of transactions
        p = self.spawn(["kamailio", "-f", cfg, "-DD", "-E", *alloc], "kamailio.log")
        try:
            wait_port(port)
        except RuntimeError:
            with open(os.path.join(self.tmp, "kamailio.log")) as f:
                raise RuntimeError("kamailio did not start: " + f.read()[-2000:])
        time.sleep(1.0)
        p.port = port
        p.pids = family(p.pid)
        p.cmdline = "kamailio " + " ".join(alloc) + f" -f {cfg} -DD -E"
        return p

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def run_load(pids, args):
    import resource
    g0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0, w0 = ticks(pids), time.time()
    r = subprocess.run(["taskset", "-c", "0", LOAD, *args], capture_output=True, text=True,
                       timeout=1200)
    wall, cpu = time.time() - w0, (ticks(pids) - t0) / HZ
    g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    gen = (g1.ru_utime + g1.ru_stime) - (g0.ru_utime + g0.ru_stime)
    f = r.stdout.split()
    if len(f) < 14:
        raise RuntimeError(f"call_rate {' '.join(args)}: {r.stdout} {r.stderr}")
    d = {f[i]: float(f[i + 1]) for i in range(0, len(f) - 1, 2)}
    n = int(d["completed"])
    return {"n": n, "refused": int(d["refused"]), "r503": int(d["refused_503"]),
            "errors": int(d["errors"]), "ok": r.returncode == 0, "cpu": cpu, "wall": wall,
            "rate": n / cpu if cpu else 0.0, "wall_rate": n / wall if wall else 0.0,
            "busy": cpu / wall if wall else 0.0, "gen": gen, "stderr": r.stderr.strip()}


def server_counts(p):
    """openum's own count of what it did: every call answered and ended
    by the gateway's BYE, nothing left."""
    import json
    r = subprocess.run([BIN, "status", "--json", "--data", p.data], capture_output=True,
                       text=True, check=True)
    c = json.loads(r.stdout)["calls"]
    return (f"openum counted {c['invites']} INVITEs, {c['answered']} answered, "
            f"{c['ended_by_gateway']} ended by the gateway's BYE, {c['refused_caps']} refused "
            f"by a cap, {c['active']} active, {c['dialogs']} dialogs left")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--window", type=int, default=64, help="calls in progress")
    ap.add_argument("--only", default="tcp,tls,cap")
    ap.add_argument("--cap", type=int, default=100, help="max_calls for C")
    ap.add_argument("--cap-calls", type=int, default=20000)
    ap.add_argument("--keep", action="store_true", help="keep the folder (logs, configs)")
    a = ap.parse_args()
    subprocess.run([os.path.join(ROOT, "scripts", "build"), "release"], check=True,
                   capture_output=True)
    tmp = tempfile.mkdtemp(prefix="bench-calls-")
    pki = PKI(os.path.join(tmp, "pki"))
    pki.root = pki.ca("root", "Bench Root")
    pki.server = pki.leaf("server", pki.root, cn=FQDN, dns=[FQDN])
    pki.gw = pki.leaf("gw", pki.root, cn="gw.bench.example", dns=["gw.bench.example"])
    only = set(a.only.split(","))
    srv = Servers(tmp, pki)
    res = {}
    print(f"load average at the start: {loadavg():.1f}", flush=True)
    try:
        plan = []
        tls_args = ["-t", "tls", "-e", pki.gw.cert_path, "-k", pki.gw.key_path, "-s",
                    "127.0.0.2"]
        common = ["-c", "1", "-w", str(a.window), "-n", str(a.calls)]
        if only & {"tcp", "tls"}:
            o = srv.openum()
            uas = srv.sipp_uas()
        if "tcp" in only:
            ktcp = srv.kamailio(False, uas.port)
            plan += [("A", "openum", o.pids, common + ["127.0.0.1", str(o.tcp)]),
                     ("A", "kamailio", ktcp.pids, common + ["127.0.0.1", str(ktcp.port)])]
        if "tls" in only:
            ktls = srv.kamailio(True, uas.port)
            plan += [("B", "openum", o.pids, common + tls_args + ["127.0.0.1", str(o.tls)]),
                     ("B", "kamailio", ktls.pids,
                      common + tls_args + ["127.0.0.1", str(ktls.port)])]
        # warm-up, not counted: connections open (Kamailio's to the sipp UAS
        # too: calls sent while it connects would be refused with 477)
        for test, name, pids, args in plan:
            run_load(pids, ["-c", "1", "-w", "2", "-n", "200"] + args[6:])
        for r in range(a.rounds):
            for test, name, pids, args in plan:
                la = loadavg()
                m = run_load(pids, args)
                m["load"] = la
                res.setdefault((test, name), []).append(m)
                print(f"round {r + 1} {test} {name:<9} {m['n']:>7} calls {m['cpu']:6.2f} CPU-s "
                      f"{m['rate']:>8,.0f} calls/CPU-s busy {m['busy'] * 100:3.0f}% refused "
                      f"{m['refused']} errors {m['errors']} (generator {m['gen']:.2f} CPU-s, "
                      f"load {la:.1f}){'' if m['ok'] else ' FAILED'} {m['stderr']}",
                      flush=True)
        if plan:
            print()
        titles = {"A": "A. complete calls, one TCP connection (kamailio -X tlsf -x tlsf, "
                       "stateful relay to a sipp UAS)",
                  "B": "B. complete calls, one mutual-TLS connection (kamailio -X tlsf, "
                       "stateful relay to a sipp UAS)"}
        for test in "AB":
            if (test, "openum") not in res:
                continue
            print(titles[test])
            for n in ("openum", "kamailio"):
                ms = res[(test, n)]
                print(f"  {n:<9} calls per CPU-second min/median/max "
                      f"{summary([m['rate'] for m in ms])}; busy "
                      f"{summary([m['busy'] * 100 for m in ms])} %")
            ratios = [x["rate"] / y["rate"] for x, y in zip(res[(test, "openum")],
                                                           res[(test, "kamailio")])]
            print(f"  openum / kamailio per round: {', '.join(f'{x:.2f}' for x in ratios)}"
                  f" (min/median/max {summary(ratios, '{:.2f}')})")
        if "cap" in only:
            c = srv.openum(max_calls=a.cap, name="cap")
            print(f"C. at the cap: max_calls = {a.cap}, one TCP connection")
            run_load(c.pids, ["-c", "1", "-w", "2", "-n", "200", "127.0.0.1", str(c.tcp)])
            for w in (a.cap, 2 * a.cap):
                for r in range(a.rounds):
                    la = loadavg()
                    m = run_load(c.pids, ["-c", "1", "-w", str(w), "-n", str(a.cap_calls),
                                          "127.0.0.1", str(c.tcp)])
                    print(f"  {w:>4} in progress, round {r + 1}: {m['n']:>6} answered and "
                          f"completed, {m['refused']} refused ({m['r503']} 503), "
                          f"{m['wall_rate']:,.0f} answered/s wall, {m['rate']:,.0f}/CPU-s, "
                          f"busy {m['busy'] * 100:.0f}% (load {la:.1f})", flush=True)
            print("  " + server_counts(c))
        if only & {"tcp", "tls"}:
            print(server_counts(o))
        loads = [m["load"] for ms in res.values() for m in ms]
        if loads:
            print(f"load average during the runs: {min(loads):.1f} .. {max(loads):.1f}")
        if "tcp" in only:
            print(f"kamailio TCP: {ktcp.cmdline}")
        if "tls" in only:
            print(f"kamailio TLS: {ktls.cmdline}")
    finally:
        srv.close()
        if a.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
