"""Prometheus metrics of `openum serve` (R21): scraped over HTTP (and HTTPS
beyond loopback) while real calls run, every family checked against what
the test did — calls by security mode and transport, refusals by the cause
of event 1132 and by cap, TLS refusals by reason, SRTP authentication and
replay failures, deliveries, the spool, certificate expiry, the reload
generation — and `promtool check metrics` (Debian's prometheus) accepts
the text. `openum status --json` carries the same numbers."""
import datetime
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request

import numpy as np
import pytest

import calls_util
from calls_util import (BUILD, FQDN, call_bg, finish, make_store, place_call, wait_calls)
from conftest import free_port
from pki import PKI
from sip_util import wait_for

TESTRTP = os.path.join(BUILD, "src", "testcall", "om-testrtp")
KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"


def savp_offer(port):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n")


class W:
    pass



@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    w = W()
    p = PKI(tmp_path_factory.mktemp("pki"))
    w.root = p.ca("root", "openum Metrics Root CA")
    w.server = p.leaf("server", w.root, cn=FQDN, dns=[FQDN])
    w.gw = p.leaf("gw", w.root, cn="gws.test.example", dns=["gws.test.example"],
                  not_after=datetime.datetime.now(datetime.timezone.utc)
                  + datetime.timedelta(days=100))
    w.stranger = p.leaf("stranger", w.root, cn="nobody.test.example",
                        dns=["nobody.test.example"])
    return w


def parse(text):
    """{(name, frozenset(labels)): value} of a Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-z_:][a-z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(o, port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def promtool_ok(text):
    assert text.strip(), "empty metrics"
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def json_samples(status):
    """The status JSON's values in the same shape as parse()."""
    out = {}
    for name, samples in status["metrics"]["values"].items():
        for s in samples:
            labels = frozenset((k, v) for k, v in s.items() if k != "value")
            out[(name, labels)] = float(s["value"])
    return out


def not_after_days(issued):
    na = issued.cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return (na - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400


def days(s, role):
    """openum_certificate_expiry_seconds in days (Prometheus wants base units)."""
    return val(s, "openum_certificate_expiry_seconds", role=role) / 86400


def write_spool(data, sid, uid, end=True):
    meta = {"version": 1, "id": sid, "call_id": f"{sid}@gw.example", "from_tag": "ft",
            "to_tag": "tt", "mailbox_uid": uid, "extension": "2001", "dialplan": "sec",
            "mailbox_name": "Box", "mailbox_email": "box@example.com", "caller": "+4930123",
            "caller_name": "A", "anonymous": False, "reason": "busy",
            "security_mode": "secured", "transport": "tls",
            "srtp_suite": "AES_CM_128_HMAC_SHA1_80", "gateway": "gws",
            "start_ms": 1767268800000, "test": False}
    pcm = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype("<i2")
    files = {f"{sid}.json": json.dumps(meta).encode(), f"{sid}.raw": pcm.tobytes()}
    if end:
        files[f"{sid}.end"] = json.dumps({"end_ms": meta["start_ms"] + 1000,
                                          "end_reason": "hangup", "bytes": 16000,
                                          "voiced_ms": 1000}).encode()
    for name, body in files.items():
        fd = os.open(os.path.join(data, "spool", name), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, body)
        os.close(fd)


def spool_size(data):
    d = os.path.join(data, "spool")
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
               if not f.startswith(".") and os.path.isfile(os.path.join(d, f)))


def spool_files(data):
    d = os.path.join(data, "spool")
    return sum(1 for f in os.listdir(d)
               if not f.startswith(".") and os.path.isfile(os.path.join(d, f)))


def secured_server(tmp, w, conf):
    o = make_store(tmp, conf=conf, plans=(("unsec", "unsecured"), ("sec", "secured")),
                   mailboxes=[("2001", "sec"), ("2001", "unsec")])
    o.ok("cert", "import", w.server.both_path, "--no-reload")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("gateway", "new", "gws", "--address", "127.0.0.22", "--tls-name", "gws.test.example",
         "--transport", "tls", "--dialplan", "sec")
    o.ok("gateway", "new", "gwt", "--address", "127.0.0.24", "--dialplan", "unsec",
         "--max-calls", "1")
    o.ok("server", "set", "--dialplans", "unsec,sec")
    return o


def test_metrics_during_real_calls(tmp_path, pki):
    mport = free_port()
    o = secured_server(tmp_path, pki, f"metrics_listen = 127.0.0.1:{mport}\n"
                       "delivery_retry_s = 1\n")
    data = o.data
    # spools a crash left: one complete, one interrupted, one whose mailbox
    # folder is blocked (a file where the folder should be)
    write_spool(data, "m1", "aa01")
    write_spool(data, "m2", "aa02", end=False)
    write_spool(data, "m3", "bb03")
    os.makedirs(os.path.join(data, "mail"), mode=0o700, exist_ok=True)
    with open(os.path.join(data, "mail", "bb03"), "w") as f:
        f.write("not a folder")
    o.proc = o.serve()
    tls = (pki.gw, pki.root)

    # two Secured calls over TLS with SRTP, kept up; one Unsecured over TCP
    media = [free_port(kind=socket.SOCK_DGRAM) for _ in range(2)]
    offers = []
    for i, mp in enumerate(media):
        f = tmp_path / f"offer{i}.sdp"
        f.write_text(savp_offer(mp))
        offers.append(f)
    bg = [call_bg(o.tls, "--sdp", offers[i], "--bye-after", 12000, bind="127.0.0.22", tls=tls)
          for i in range(2)]
    bg.append(call_bg(o.tcp, "--offer", "avp", "--bye-after", 12000, bind="127.0.0.24"))
    live = wait_calls(o, 3)
    assert len(live) == 3, live
    # at once, while all three are up: calls by security mode and transport
    s = parse(scrape(o, mport))
    assert val(s, "openum_calls_active", security="secured", transport="tls") == 2
    assert val(s, "openum_calls_active", security="unsecured", transport="tcp") == 1
    assert sum(v for (n, _), v in s.items() if n == "openum_calls_active") == 3
    assert val(s, "openum_media_sessions") == 3
    assert val(s, "openum_calls_answered_total") == 3

    # SRTP into the first Secured call: 60 packets, 3 tampered copies, 2
    # replays, 1 dropped (lost)
    first = [c for c in live if c["transport"] == "tls"][0]
    src = int(first["remote_media"].rsplit(":", 1)[1])
    p = subprocess.run([TESTRTP, "send", "--to", f"127.0.0.1:{first['rtp_port']}", "--from",
                        f"127.0.0.1:{src}", "--tone", "1000:1200", "--suite",
                        "AES_CM_128_HMAC_SHA1_80", "--key", KEY, "--tamper", "10,11,12",
                        "--replay", "20:3,30:3", "--drop", "40"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    # refusals: an RTP/AVP offer to the Secured plan (1132 srtp_required,
    # 488), the TCP gateway's --max-calls 1 (1137), twice
    r = place_call(o.tls, "--offer", "avp", bind="127.0.0.22", tls=tls)
    assert r["status"] == 488, r
    for _ in range(2):
        r = place_call(o.tcp, "--offer", "avp", bind="127.0.0.24")
        assert r["status"] == 503, r
    # a TLS client whose certificate names no gateway (1130 no_gateway)
    r = place_call(o.tls, "--offer", "savp", bind="127.0.0.22", tls=(pki.stranger, pki.root),
                   check=False)
    assert r.get("status", 0) != 200, r
    # a reload: generation 1
    o.ok("reload")

    def settled():
        s = parse(scrape(o, mport))
        ok = (val(s, "openum_srtp_failures_total", kind="auth") == 3
              and val(s, "openum_srtp_failures_total", kind="replay") == 2
              and val(s, "openum_rtp_packets_total", direction="received") == 59
              and val(s, "openum_messages_delivered_total") >= 2
              and val(s, "openum_message_delivery_failures_total") >= 1
              and val(s, "openum_spool_bytes") == spool_size(data)
              and val(s, "openum_spool_files") == spool_files(data))
        return s if ok else None

    s = wait_for(settled, timeout=20)
    assert s, scrape(o, mport)
    promtool_ok(scrape(o, mport))
    assert val(s, "openum_calls_invites_total") == 6
    assert val(s, "openum_calls_answered_total") == 3
    assert val(s, "openum_calls_refused_total", kind="security_mode", reason="srtp_required",
               status="488") == 1
    assert val(s, "openum_calls_refused_total", kind="cap", reason="gateway_max_calls",
               status="503") == 2
    assert sum(v for (n, _), v in s.items() if n == "openum_calls_refused_total") == 3
    # TLS: the stranger refused; the gateway's handshakes completed
    assert val(s, "openum_tls_handshakes_failed_total", reason="no_gateway",
               side="inbound") == 1
    assert sum(v for (n, _), v in s.items() if n == "openum_tls_handshakes_failed_total") == 1
    assert val(s, "openum_tls_handshakes_total") >= 3
    # media: 60 genuine packets, one dropped on the way
    assert val(s, "openum_rtp_packets_lost_total") == 1
    # certificates: in use, the trusted root, the gateway seen
    assert abs(days(s, "server") - not_after_days(pki.server)) < 0.01
    assert abs(days(s, "trusted") - not_after_days(pki.root)) < 0.01
    assert abs(days(s, "gateway") - not_after_days(pki.gw)) < 0.01
    assert val(s, "openum_certificate_not_after_timestamp_seconds", role="gateway") == \
        int(pki.gw.cert.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp())
    # reload generation and the info line
    assert val(s, "openum_reload_generation") == 1
    assert val(s, "openum_reloads_total", result="applied") == 1
    assert val(s, "openum_info", version=o.run("--version").stdout.split()[-1],
               mode="secured") == 1

    for p in bg:
        r = finish(p)
        assert r["status"] == 200, r

    def done():
        s = parse(scrape(o, mport))
        busy = val(s, "openum_messages_pending", state="queued") + \
            val(s, "openum_messages_pending", state="running")
        return s if val(s, "openum_media_sessions") == 0 and not busy else None

    s = wait_for(done, timeout=30)
    assert s, scrape(o, mport)
    assert sum(v for (n, _), v in s.items() if n == "openum_calls_active") == 0
    assert val(s, "openum_calls_ended_total", by="gateway") + \
        val(s, "openum_calls_ended_total", by="openum") == 3
    # deliveries: m1 and m2 (recovered) and whatever the calls recorded;
    # m3 waits for its retry
    spool = os.listdir(os.path.join(data, "spool"))
    recorded = [f for f in spool if f.endswith(".done") and f[:2] not in ("m1", "m2")]
    assert val(s, "openum_messages_delivered_total") == 2 + len(recorded)
    assert val(s, "openum_messages_recovered_total") == 1
    assert val(s, "openum_messages_pending", state="retrying") == 1
    st = os.statvfs(os.path.join(data, "spool"))
    assert abs(val(s, "openum_spool_free_bytes") - st.f_bavail * st.f_frsize) < 64 << 20
    assert val(s, "openum_spool_room") == 1

    # openum status --json: the same numbers (those that cannot move now)
    moving = ("openum_spool_free_bytes", "openum_certificate_expiry_seconds",
              "openum_sip_messages_total", "openum_message_delivery_failures_total",
              "openum_spool_bytes", "openum_spool_files", "openum_messages_pending")
    j = json_samples(o.json("status"))
    for key in [k for k in s if k[0] not in moving]:
        assert j.get(key) == s[key], (key, j.get(key), s[key])
    assert o.json("status")["metrics"]["serving"] is True
    # only GET/HEAD of /metrics
    for method, path, status in (("POST", "/metrics", 405), ("GET", "/", 404)):
        req = urllib.request.Request(f"http://127.0.0.1:{mport}{path}", method=method)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == status
    assert o.stop(o.proc) == 0, o.log()[-3000:]


def test_metrics_beyond_loopback_only_over_tls(tmp_path, pki):
    """0.0.0.0 is not loopback: HTTPS with the server's certificate; the
    same address on an unsecured server serves nothing and says why."""
    mport = free_port()
    o = secured_server(tmp_path, pki, f"metrics_listen = 0.0.0.0:{mport}\n")
    o.proc = o.serve()
    ctx = ssl.create_default_context(cafile=pki.root.cert_path)
    with socket.create_connection(("127.0.0.1", mport), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=FQDN) as t:
            assert t.getpeercert()["subject"]
            t.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            body = b""
            while True:
                c = t.recv(65536)
                if not c:
                    break
                body += c
    head, _, text = body.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200"), head
    promtool_ok(text)
    assert 'openum_info{version=' in text and 'mode="secured"' in text
    # plain HTTP on that port gets no metrics
    with socket.create_connection(("127.0.0.1", mport), timeout=10) as raw:
        raw.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(5)
        try:
            got = raw.recv(65536)
        except (ConnectionResetError, socket.timeout):
            got = b""
    assert b"openum_info" not in got
    assert o.json("status")["metrics"]["scheme"] == "https"
    assert o.stop(o.proc) == 0, o.log()[-3000:]

    u = make_store(tmp_path / "u", conf=f"metrics_listen = 0.0.0.0:{mport}\n")
    u.proc = u.serve()
    st = u.json("status")
    assert st["mode"] == "unsecured"
    assert st["metrics"]["serving"] is False
    assert "only over TLS" in st["metrics"]["error"], st["metrics"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", mport), timeout=2).close()
    # the numbers are still in status
    assert json_samples(st)[("openum_reload_generation", frozenset())] == 0
    assert u.stop(u.proc) == 0


def test_metrics_listen_config(store):
    """metrics_listen takes one ADDRESS:PORT or off; a port in use is no
    reason to refuse the start (SIP goes on), and status says so."""
    store.conf("metrics_listen = 127.0.0.1:1,127.0.0.1:2\n")
    r = store.run("serve")
    assert r.returncode != 0 and "metrics_listen takes one" in r.stderr
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    store.conf(f"sip_tcp = 127.0.0.1:{free_port()}\nsip_tls = off\n"
               f"metrics_listen = 127.0.0.1:{port}\n")
    p = store.serve()
    st = store.json("status")
    assert st["metrics"]["serving"] is False and "in use" in st["metrics"]["error"]
    busy.close()
    # a reload tries again
    store.ok("reload")
    st = store.json("status")
    assert st["metrics"]["serving"] is True, st["metrics"]
    promtool_ok(scrape(store, port))
    store.conf(f"sip_tcp = 127.0.0.1:{free_port()}\nsip_tls = off\nmetrics_listen = off\n")
    store.ok("reload")
    assert store.json("status")["metrics"]["serving"] is False
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert store.stop(p) == 0


def test_metrics_families_of_the_front_door_caps_and_media(tmp_path):
    """The families the test above does not move, each against what this
    test does: the start time and max_calls, the RTP ports left, the SIP
    connections open, a stranger's TCP connection closed at accept (1131),
    a CANCEL before the answer, a 2xx never ACKed, RTP from a stranger's
    address, the RTP openum sent (counted by our receiver), a rejected
    reload, the spool's files."""
    mport = free_port()
    lo = int(calls_util.rtp_range().split("-")[0])
    pairs = 10
    conf = (f"metrics_listen = 127.0.0.1:{mport}\nmax_calls = 7\nanswer_delay_ms = 2000\n"
            f"rtp_ports = {lo}-{lo + 2 * pairs - 1}\n")
    o = make_store(tmp_path, conf=conf, gateways=[("gw1", "127.0.0.1", "dp1")])
    t0 = int(time.time())
    o.proc = o.serve()
    t1 = time.time()
    s = parse(scrape(o, mport))
    promtool_ok(scrape(o, mport))
    assert t0 <= val(s, "openum_start_time_seconds") <= t1
    assert val(s, "openum_calls_max") == 7
    assert val(s, "openum_rtp_ports_free") == pairs
    for name in ("openum_sip_connections", "openum_sip_untrusted_dropped_total",
                 "openum_calls_canceled_total", "openum_calls_no_ack_total",
                 "openum_rtp_strangers_total", "openum_media_sessions"):
        assert val(s, name) == 0, name

    # a TCP connection from an address that is no gateway's
    with socket.socket() as raw:
        raw.bind(("127.0.0.99", 0))
        raw.settimeout(5)
        raw.connect(("127.0.0.1", o.tcp))
        try:
            assert raw.recv(10) == b""
        except ConnectionResetError:
            pass
    # CANCEL while openum waits answer_delay_ms
    r = place_call(o.tcp, "--cancel-after", 100)
    assert r["status"] == 487, r
    # a gateway that never ACKs: openum gives up after 64*T1 and sends BYE
    r = place_call(o.tcp, "--no-ack", "--wait-bye", 20000)
    assert r["status"] == 200 and r["remote_bye"], r
    # a rejected reload: the generation stays
    good = open(os.path.join(o.data, "openum.conf")).read()
    with open(os.path.join(o.data, "openum.conf"), "a") as f:
        f.write("max_calls = many\n")
    assert o.run("reload").returncode != 0
    with open(os.path.join(o.data, "openum.conf"), "w") as f:
        f.write(good)

    # a call kept up
    mp = free_port(kind=socket.SOCK_DGRAM)
    bg = call_bg(o.tcp, "--offer", "avp", "--media-port", mp, "--bye-after", 8000)
    live = wait_calls(o, 1)
    assert len(live) == 1, live

    def up():
        s = parse(scrape(o, mport))
        return s if val(s, "openum_sip_connections") == 1 else None

    s = wait_for(up, timeout=10)
    assert s, scrape(o, mport)
    assert val(s, "openum_media_sessions") == 1
    assert val(s, "openum_rtp_ports_free") == pairs - 1
    assert val(s, "openum_calls_active", security="unsecured", transport="tcp") == 1
    # 20 packets from a third address (never the gateway's), then 30 genuine
    port = live[0]["rtp_port"]
    src = live[0]["remote_media"].rsplit(":", 1)[1]
    for frm, ms in (("127.0.0.2:0", 400), (f"127.0.0.1:{src}", 600)):
        p = subprocess.run([TESTRTP, "send", "--to", f"127.0.0.1:{port}", "--from", frm,
                            "--silence", str(ms), "--rate", "0"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr

    def media_counted():
        s = parse(scrape(o, mport))
        return s if val(s, "openum_rtp_strangers_total") == 20 and \
            val(s, "openum_rtp_packets_total", direction="received") == 30 else None

    s = wait_for(media_counted, timeout=10)
    assert s, scrape(o, mport)
    r = finish(bg)
    assert r["status"] == 200, r

    def settled():
        s = parse(scrape(o, mport))
        return s if val(s, "openum_media_sessions") == 0 else None

    s = wait_for(settled, timeout=15)
    assert s, scrape(o, mport)
    # what openum sends: one more call, our receiver on its media port
    sent0 = val(s, "openum_rtp_packets_total", direction="sent")
    rx = subprocess.Popen([TESTRTP, "recv", "--listen", f"127.0.0.1:{mp}", "--wait", "15000",
                           "--timeout", "3000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    assert rx.stdout.readline().strip() == "ready"
    r = place_call(o.tcp, "--offer", "avp", "--media-port", mp, "--bye-after", 4000)
    assert r["status"] == 200, r
    out, _ = rx.communicate(timeout=60)
    got = json.loads(out.strip().splitlines()[-1])
    s = wait_for(settled, timeout=15)
    assert s, scrape(o, mport)
    promtool_ok(scrape(o, mport))
    assert val(s, "openum_rtp_packets_total", direction="sent") - sent0 == got["packets"]
    assert val(s, "openum_rtp_ports_free") == pairs
    assert val(s, "openum_sip_untrusted_dropped_total") == 1
    assert val(s, "openum_calls_canceled_total") == 1
    assert val(s, "openum_calls_no_ack_total") == 1
    assert val(s, "openum_calls_invites_total") == 4
    assert val(s, "openum_calls_answered_total") == 3
    assert val(s, "openum_reloads_total", result="rejected") == 1
    assert val(s, "openum_reloads_total", result="applied") == 0
    assert val(s, "openum_reload_generation") == 0
    assert o.stop(o.proc) == 0, o.log()[-3000:]
