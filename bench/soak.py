#!/usr/bin/python3
"""Soak: Secured deposits start and end continuously while the operator
and the network do what they do — a reload every minute, a swap of the
server's certificate every 5 minutes (the pin set to the next of several
valid certificates: new handshakes take it, calls in progress go on), and
one gateway's TLS connection dropped and re-established every 2 minutes
(its calls go on and hang up over the new connection).

Checked at the end: no call lost that should not be (every call answered,
its BYE answered, none ended early, none refused), no SRTP failure, every
call's message in its mailbox with the audio sent (--no-messages to skip),
every reload applied (no 1181), the certificate in use changed at each
swap, RSS sampled every 10 s with its slope (least squares over the run
after the first fifth: KiB per minute), the descriptor count. Exit 0 when
every check passed; the figures as JSON on stdout.

Bounded: the generator ends every call within its timeouts (no answer,
no beep, no answer to the BYE) and the whole run by --minutes plus a margin
(its --max-seconds); should it still run 30 s after that, it is killed and
the result says "generator_hung". A connection the server closes on its own
is counted (conn_lost) and fails the run.

usage: bench/soak.py [--minutes 30] [--concurrency C] [--talk S]
         [--reload-every 60] [--swap-every 300] [--drop-every 120]
         [--bin OPENUM] [--load CALL_LOAD] [--no-pin] [--no-messages] [--data DIR]
         [--margin 90] [--deliveries-wait 180]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import call_bench as cb  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402


def slope(samples):
    """Least-squares slope of (t, v) pairs, per minute."""
    n = len(samples)
    if n < 3:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    return 60 * sum((t - mt) * (v - mv) for t, v in samples) / den if den else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--concurrency", type=int, default=1000)
    ap.add_argument("--talk", type=int, default=20)
    ap.add_argument("--reload-every", type=float, default=60)
    ap.add_argument("--swap-every", type=float, default=300)
    ap.add_argument("--drop-every", type=float, default=120)
    ap.add_argument("--sample-every", type=float, default=10)
    ap.add_argument("--certs", type=int, default=3)
    ap.add_argument("--no-messages", action="store_true")
    ap.add_argument("--data")
    ap.add_argument("--bin", default=os.path.join(cb.ROOT, "build-release", "src", "cli",
                                                  "openum"))
    ap.add_argument("--load", default=os.path.join(cb.ROOT, "build-release", "bench",
                                                   "call_load"))
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--gen-cpu", type=int, default=0)
    ap.add_argument("--no-pin", action="store_true", help="do not pin to CPUs")
    ap.add_argument("--conf", action="append", default=[])
    ap.add_argument("--margin", type=float, default=90,
                    help="seconds the generator may run beyond --minutes before it ends every "
                    "call still open as failed")
    ap.add_argument("--deliveries-wait", type=float, default=180,
                    help="at most this long for the last messages after the calls")
    ap.add_argument("--stop-wait", type=float, default=120,
                    help="at most this long for openum serve to exit (then SIGKILL)")
    a = ap.parse_args()
    if a.no_pin:
        a.server_cpu = a.gen_cpu = None
    # the generator's settings for call_bench.Store
    # what a call spends before the caller talks: the built-in greeting for
    # a four-digit extension ("The person at extension 2 0 1 9 is not
    # available. Please leave a message after the tone.") and the beep,
    # about 8 s (399 packets received per call)
    prompt_s = 8.0
    rate = a.concurrency / (a.talk + prompt_s + 0.2)
    calls = int(rate * a.minutes * 60)
    ns = argparse.Namespace(unsecured=False, calls=calls, rate=rate,
                            concurrency=a.concurrency, talk=a.talk, gateways=2, mailboxes=20,
                            bin=a.bin, server_cpu=a.server_cpu, conf=a.conf)
    tmp = a.data or tempfile.mkdtemp(prefix="om-soak-", dir="/var/tmp")
    os.makedirs(tmp, exist_ok=True)
    data = os.path.join(tmp, "data")
    st = cb.Store(ns, data)
    st.setup()
    # more valid server certificates to swap between (same name, same root)
    pki = cb.PKI(os.path.join(tmp, "pki"))
    shas = []
    for i in range(a.certs):
        leaf = pki.leaf(f"server{i}", st.root, cn=cb.FQDN, dns=[cb.FQDN])
        st.run("cert", "import", leaf.both_path, "--no-reload")
        shas.append(leaf.cert.fingerprint(hashes.SHA1()).hex().upper())
    st.run("server", "set", "--certificate", shas[0], "--no-reload")
    wavf = cb.default_wav(os.path.join(tmp, "talk.wav"))
    st.serve()
    pid = st.p.pid
    time.sleep(1)
    fds_before = cb.fd_count(pid)
    cmd = [a.load, "--server", "127.0.0.1", "--port", str(st.tls_port), "--calls", str(calls),
           "--rate", f"{rate:.3f}",
           # the rate sets the load: the cap stays out of its way even when the
           # greeting is longer than prompt_s (else starts fall behind the
           # schedule and the run meets its --max-seconds)
           "--concurrency", str(a.concurrency * 3 // 2 + 20), "--talk",
           str(a.talk), "--ext", "2000-2019", "--domain", cb.FQDN, "--wav", wavf, "--out",
           os.path.join(tmp, "calls.jsonl"), "--dump-payload", os.path.join(tmp, "payload.ul"),
           "--media", "127.0.0.9", "--media-socks", "2", "--conns", "2", "--tls",
           "--ca", st.root.cert_path, "--tls-name", cb.FQDN,
           # every call bounded: a missing answer, beep or BYE answer ends it
           "--setup-timeout", "15000", "--prompt-max", "30000", "--bye-timeout", "15000",
           "--max-seconds", str(int(a.minutes * 60 + a.talk + a.margin))]
    max_wall = a.minutes * 60 + a.talk + a.margin + 30
    for g in st.gws:
        cmd += ["--gw", g]
    if a.gen_cpu is not None:
        cmd = ["taskset", "-c", str(a.gen_cpu)] + cmd
    t0 = time.time()
    gen_err = open(os.path.join(tmp, "call_load.err"), "w+")
    gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=gen_err, text=True)
    hung = False
    rss, fds, actions = [], [], {"reloads": 0, "reload_failures": 0, "swaps": 0, "drops": 0}
    certs_seen = set()
    nxt = {"reload": t0 + a.reload_every, "swap": t0 + a.swap_every,
           "drop": t0 + a.drop_every, "sample": t0}
    swap_i = 0
    while gen.poll() is None:
        now = time.time()
        if now - t0 > max_wall:
            hung = True  # its own deadline did not end it: a bug of the generator
            gen.kill()
            gen.wait()
            break
        if now >= nxt["sample"]:
            _, r = cb.proc_stat(pid)
            rss.append((now - t0, r))
            fds.append((now - t0, cb.fd_count(pid)))
            s = json.loads(st.run("status", "--json").stdout)
            certs_seen.add(s.get("certificate", {}).get("sha1", ""))
            nxt["sample"] += a.sample_every
        if now >= nxt["swap"]:
            swap_i = (swap_i + 1) % len(shas)
            r = subprocess.run([a.bin, "server", "set", "--certificate", shas[swap_i],
                                "--data", data], capture_output=True, text=True)
            actions["swaps"] += 1
            actions["reload_failures"] += r.returncode != 0
            nxt["swap"] += a.swap_every
        if now >= nxt["reload"]:
            r = subprocess.run([a.bin, "reload", "--data", data], capture_output=True, text=True)
            actions["reloads"] += 1
            actions["reload_failures"] += r.returncode != 0
            nxt["reload"] += a.reload_every
        if now >= nxt["drop"]:
            gen.send_signal(signal.SIGUSR1)
            actions["drops"] += 1
            nxt["drop"] += a.drop_every
        time.sleep(0.2)
    out, _ = gen.communicate()
    wall = time.time() - t0
    gen_err.seek(0)
    err = gen_err.read()[-4000:]
    if hung or gen.returncode not in (0, 3):  # 3: its --max-seconds passed
        st.stop(a.stop_wait)
        print(json.dumps({"ok": False, "generator_hung": hung, "returncode": gen.returncode,
                          "minutes": round(wall / 60, 2), "stderr": err, "dir": tmp}, indent=1))
        sys.exit(1)
    g = json.loads(out.strip().splitlines()[-1])
    with open(os.path.join(tmp, "calls.jsonl")) as f:
        calls_out = [json.loads(l) for l in f if l.strip()]
    m = cb.wait_deliveries(st.metrics, g["answered"], a.no_messages, a.deliveries_wait)
    time.sleep(2)
    fds_after = cb.fd_count(pid)
    events_1181 = [l for l in st.run("events", "--json", "--id", "1181").stdout.splitlines()
                   if l.strip()]
    steady = [x for x in rss if x[0] >= wall / 5]
    res = {
        "minutes": round(wall / 60, 2), "concurrency": a.concurrency, "talk_s": a.talk,
        "rate": round(rate, 2), "generator": g, "actions": actions,
        "certificates_in_use_seen": len([c for c in certs_seen if c]),
        "reload_rejected_events": len(events_1181),
        "rss_kib": {"first": rss[0][1] if rss else 0, "last": rss[-1][1] if rss else 0,
                    "max": max((v for _, v in rss), default=0),
                    "slope_kib_per_min": round(slope(steady), 1),
                    "samples": [[round(t), v] for t, v in rss]},
        "fds": {"before": fds_before, "after": fds_after,
                "min": min((v for _, v in fds), default=0),
                "max": max((v for _, v in fds), default=0),
                "last": fds[-1][1] if fds else 0},
        "server": {"rtp_lost": m.get("openum_rtp_packets_lost_total", 0),
                   "srtp_failures": cb.msum(m, "openum_srtp_failures_total"),
                   "refused": cb.msum(m, "openum_calls_refused_total"),
                   "tls_failed": cb.msum(m, "openum_tls_handshakes_failed_total"),
                   "generation": m.get("openum_reload_generation", 0),
                   "delivered": m.get("openum_messages_delivered_total", 0)},
        "generator_stderr": err,
        "dir": tmp,
    }
    if not a.no_messages:
        with open(os.path.join(tmp, "payload.ul"), "rb") as f:
            res["messages"] = cb.check_messages(data, calls_out, f.read())
    st.stop(a.stop_wait)
    res["server"]["exit"] = st.p.returncode
    # calls whose INVITE was in flight on a connection the soak dropped lost
    # their answer with it (RFC 3261 §18.2.2): counted apart, not failures
    invite_cut = sum(1 for c in calls_out if c["end"] == "invite-cut")
    res["cut_by_drop"] = {"invites": invite_cut,
                          "byes": sum(1 for c in calls_out if c["end"] == "bye-cut")}
    ok = (g["answered"] + invite_cut == g["calls"] and not g["failed"] and not g["refused"]
          and not g["ended_early"] and not g["bye_failed"] and not g["reconnect_failures"]
          and not g["deadline_hit"] and not g["conn_lost"]
          and res["server"]["srtp_failures"] == 0 and res["server"]["exit"] == 0
          and not res["reload_rejected_events"] and not actions["reload_failures"]
          and fds_after <= fds_before + 2)
    if not a.no_messages:
        mm = res["messages"]
        ok = ok and not (mm["missing"] or mm["duplicated"] or mm["broken"] or mm["length_off"])
    res["ok"] = ok
    print(json.dumps(res, indent=1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
