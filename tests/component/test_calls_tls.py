"""Calls over mutual TLS and the R3 table on a live server (R3, R4, R5):
every cell of the table through `openum serve`, the PJSIP sendto cases as
INVITEs over TLS to a Secured plan and over TCP to an Unsecured one, and the
flows rule for requests openum sends (DESIGN "Flows"): over the dialog's
connection while it is open, else only to the gateway's CONFIGURED address,
over mutual TLS with openum's certificate and the gateway's name checked —
never to a host named by Contact or Record-Route."""
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest

from calls_util import (BUILD, FQDN, SDP_AVP, RawSip, answer_request, call_bg, calls, finish,
                        in_dialog_text, invite_text, make_store, place_call, status_of,
                        to_tag_of, wait_calls)
from conftest import SHARED, free_port
from pki import PKI
from sip_util import wait_for

SAVP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n")
AVP_CRYPTO = SDP_AVP + ("a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
                        "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n")

GW = {"u": ("127.0.0.21", "gwu.test.example", "unsec"),
      "s": ("127.0.0.22", "gws.test.example", "sipsec"),
      "x": ("127.0.0.23", "gwx.test.example", "sec")}


class W:
    pass



@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    w = W()
    p = PKI(tmp_path_factory.mktemp("pki"))
    w.root = p.ca("root", "openum Test Root CA")
    w.server = p.leaf("server", w.root, cn=FQDN, dns=[FQDN])
    w.gw = {k: p.leaf("gw" + k, w.root, cn=v[1], dns=[v[1]]) for k, v in GW.items()}
    w.wrong = p.leaf("wrong", w.root, cn="elsewhere.test.example",
                     dns=["elsewhere.test.example"])
    return w


def secured_store(tmp, w, conf="", listen_ports=None):
    """Three plans (Unsecured, SIPSecured, Secured), one TLS gateway each,
    and a TCP gateway of the Unsecured plan on 127.0.0.24."""
    o = make_store(tmp, conf=conf, plans=(("unsec", "unsecured"), ("sipsec", "sipsecured"),
                                          ("sec", "secured")),
                   mailboxes=[("2001", "unsec"), ("2001", "sec")])
    o.ok("cert", "import", w.server.both_path, "--no-reload")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    ports = listen_ports or {}
    for k, (addr, name, plan) in GW.items():
        o.ok("gateway", "new", "gw" + k, "--address", addr, "--tls-name", name, "--transport",
             "tls", "--port", str(ports.get(k, 5061)), "--dialplan", plan)
    o.ok("gateway", "new", "gwt", "--address", "127.0.0.24", "--port",
         str(ports.get("t", 5060)), "--dialplan", "unsec")
    o.ok("server", "set", "--dialplans", "unsec,sipsec,sec")
    return o


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    o = secured_store(tmp_path_factory.mktemp("tlscalls"), pki, conf="rtp_ports = 41100-41299\n")
    o.module_scoped = True
    o.proc = o.serve()
    assert o.json("status")["mode"] == "secured"
    yield o
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


def tls_call(o, w, k, *args, **kw):
    addr = GW[k][0]
    return place_call(o.tls, *args, bind=addr, tls=(w.gw[k], w.root), **kw)


def sdp_file(tmp_path, text, name="offer.sdp"):
    f = tmp_path / name
    f.write_text(text)
    return f


def answer_proto(r):
    m = re.search(r"m=audio \d+ (\S+)", r["answer_sdp"])
    return m.group(1) if m else None


def events_1132(o, call_id):
    return wait_for(lambda: [e for e in o.events("--id", "1132")
                             if e["fields"].get("call") == call_id])


# ------------------------------------------------------------ the R3 table, cell by cell

def test_r3_unsecured_over_tls(srv, pki, tmp_path):
    r = tls_call(srv, pki, "u", "--offer", "savp", "--bye-after", 100)
    assert r["status"] == 200 and r["srtp"] and answer_proto(r) == "RTP/SAVP", r
    assert "a=crypto:" in r["answer_sdp"]
    assert f"Contact: <sip:{FQDN}:{srv.tls};transport=tls>" in r["response"]
    r = tls_call(srv, pki, "u", "--offer", "avp", "--bye-after", 100)
    assert r["status"] == 200 and not r["srtp"] and answer_proto(r) == "RTP/AVP", r
    assert "a=crypto" not in r["answer_sdp"]


def test_r3_sipsecured_over_tls(srv, pki):
    r = tls_call(srv, pki, "s", "--offer", "avp", "--bye-after", 100)
    assert r["status"] == 200 and answer_proto(r) == "RTP/AVP", r
    r = tls_call(srv, pki, "s", "--offer", "savp", "--bye-after", 100)
    assert r["status"] == 200 and r["srtp"] and answer_proto(r) == "RTP/SAVP", r


def test_r3_secured_over_tls(srv, pki):
    r = tls_call(srv, pki, "x", "--offer", "savp", "--bye-after", 100)
    assert r["status"] == 200 and r["srtp"] and answer_proto(r) == "RTP/SAVP", r
    r = tls_call(srv, pki, "x", "--offer", "avp")
    assert r["status"] == 488, r
    ev = events_1132(srv, r["call_id"])
    assert ev, "no 1132"
    f = ev[0]["fields"]
    assert f["dialplan"] == "sec" and f["transport"] == "tls" and f["status"] == "488"
    assert "RTP/AVP" in f["offer"] and f["security"]


def test_r3_delayed_offers_over_tls(srv, pki):
    # Secured: our offer is SRTP; SIPSecured and Unsecured: plain RTP
    r = tls_call(srv, pki, "x", "--offer", "none", "--bye-after", 100)
    assert r["status"] == 200 and answer_proto(r) == "RTP/SAVP", r
    assert r["answer_sdp"].count("a=crypto:") >= 1 and r["srtp"]
    r = tls_call(srv, pki, "s", "--offer", "none", "--bye-after", 100)
    assert r["status"] == 200 and answer_proto(r) == "RTP/AVP", r


def test_r3_unsecured_over_tcp(srv, tmp_path):
    r = place_call(srv.tcp, "--offer", "avp", "--bye-after", 100, bind="127.0.0.24")
    assert r["status"] == 200 and answer_proto(r) == "RTP/AVP", r
    # a=crypto inside RTP/AVP over TCP: a plain answer (keys never cross in clear)
    r = place_call(srv.tcp, "--sdp", sdp_file(tmp_path, AVP_CRYPTO), "--bye-after", 100,
                   bind="127.0.0.24")
    assert r["status"] == 200 and "a=crypto" not in r["answer_sdp"], r
    r = place_call(srv.tcp, "--sdp", sdp_file(tmp_path, SAVP, "savp.sdp"), bind="127.0.0.24")
    assert r["status"] == 488, r
    ev = events_1132(srv, r["call_id"])
    assert ev and ev[0]["fields"]["transport"] == "tcp"
    assert "RTP/SAVP" in ev[0]["fields"]["offer"]
    # a delayed offer over TCP: plain RTP
    r = place_call(srv.tcp, "--offer", "none", "--bye-after", 100, bind="127.0.0.24")
    assert r["status"] == 200 and answer_proto(r) == "RTP/AVP" and "a=crypto" not in \
        r["answer_sdp"]


@pytest.mark.parametrize("k", ["s", "x"])
def test_r3_tls_plans_over_tcp_403(srv, k):
    addr, _, plan = GW[k]
    r = place_call(srv.tcp, "--offer", "avp", bind=addr)
    assert r["status"] == 403, r
    ev = events_1132(srv, r["call_id"])
    assert ev and ev[0]["fields"]["dialplan"] == plan and ev[0]["fields"]["transport"] == "tcp"


def test_calls_over_tls_show_mode_and_suite(srv, pki):
    p = call_bg(srv.tls, "--offer", "savp", "--bye-after", 3000, bind=GW["x"][0],
                tls=(pki.gw["x"], pki.root))
    try:
        c = wait_calls(srv, 1)
        assert len(c) == 1, c
        c = c[0]
        assert c["transport"] == "tls" and c["security_mode"] == "secured"
        assert c["media"] == "srtp" and c["srtp_suite"].startswith(("AEAD_", "AES_"))
        raw = srv.ok("calls", "--json").stdout
        assert "inline" not in raw
    finally:
        r = finish(p)
    assert r["suite"] == c["srtp_suite"]


# ------------------------------------------------------------ flows: where openum's BYE goes

class Listener:
    """A TCP (or TLS) server on addr:port that records who connected and
    answers a BYE with 200."""

    def __init__(self, addr, port=0, tls_leaf=None, ca=None):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        if tls_leaf:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(tls_leaf.cert_path, tls_leaf.key_path)
            self.ctx.load_verify_locations(ca.cert_path)
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.accepted = 0
        self.byes = []
        self.peer_certs = []
        self.errors = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            try:
                if self.ctx:
                    s = self.ctx.wrap_socket(s, server_side=True)
                    self.peer_certs.append(s.getpeercert())
                raw = RawSip(0, sock=s)
                self.messages = getattr(self, "messages", [])
                deadline = time.time() + 15
                while time.time() < deadline and not self.stop:
                    m = raw.read(0.5)
                    if m is None:
                        if raw.buf == b"" and getattr(raw, "closed", False):
                            break
                        continue
                    self.messages.append(m[0])
                    if m[0].startswith("BYE "):
                        self.byes.append(m[0])
                        answer_request(raw, m[0])
                        break
                s.close()
            except (OSError, ssl.SSLError) as e:
                self.errors.append(str(e))

    def close(self):
        self.stop = True
        self.sock.close()
        self.t.join(5)


def tls_raw(port, leaf, ca, src):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(leaf.cert_path, leaf.key_path)
    ctx.load_verify_locations(ca.cert_path)
    ctx.check_hostname = True
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    return RawSip(port, sock=ctx.wrap_socket(s, server_hostname=FQDN))


def _invite_then_vanish(raw, src, decoys):
    """INVITE naming decoy hosts in Contact and Record-Route, take the 200,
    drop the connection without ACK: openum must BYE after 64*T1."""
    cid = uuid.uuid4().hex
    extra = (f"Record-Route: <sip:127.0.0.98:{decoys[1].port};lr;transport=tcp>\r\n")
    text = invite_text(cid, src=src, extra=extra)
    text = text.replace(f"Contact: <sip:2002@{src}:5999;transport=tcp>",
                        f"Contact: <sip:2002@127.0.0.99:{decoys[0].port};transport=tcp>")
    raw.send(text)
    ok = raw.read_until(lambda h: status_of(h) >= 200)
    assert ok and status_of(ok[0]) == 200, ok
    raw.close()
    return cid


def test_bye_goes_to_configured_gateway_over_mutual_tls(tmp_path, pki):
    gwport = free_port("127.0.0.21")
    decoys = [Listener("127.0.0.99"), Listener("127.0.0.98")]
    gw = Listener("127.0.0.21", gwport, tls_leaf=pki.gw["u"], ca=pki.root)
    o = secured_store(tmp_path, pki, listen_ports={"u": gwport})
    o.proc = o.serve()
    try:
        raw = tls_raw(o.tls, pki.gw["u"], pki.root, "127.0.0.21")
        cid = _invite_then_vanish(raw, "127.0.0.21", decoys)
        assert wait_for(lambda: gw.byes, timeout=20), (gw.errors, o.log()[-2000:])
        assert f"Call-ID: {cid}" in gw.byes[0]
        # openum presented its own certificate as the client certificate
        subj = dict(x[0] for x in gw.peer_certs[0]["subject"])
        assert subj["commonName"] == FQDN
        assert decoys[0].accepted == 0 and decoys[1].accepted == 0
        assert wait_calls(o, 0) == []
    finally:
        gw.close()
        for d in decoys:
            d.close()
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


def test_bye_goes_to_configured_gateway_over_tcp(tmp_path, pki):
    gwport = free_port("127.0.0.24")
    decoys = [Listener("127.0.0.99"), Listener("127.0.0.98")]
    gw = Listener("127.0.0.24", gwport)
    o = secured_store(tmp_path, pki, listen_ports={"t": gwport})
    o.proc = o.serve()
    try:
        raw = RawSip(o.tcp, src="127.0.0.24")
        cid = _invite_then_vanish(raw, "127.0.0.24", decoys)
        assert wait_for(lambda: gw.byes, timeout=20), (gw.errors, o.log()[-2000:])
        assert f"Call-ID: {cid}" in gw.byes[0]
        assert decoys[0].accepted == 0 and decoys[1].accepted == 0
    finally:
        gw.close()
        for d in decoys:
            d.close()
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


def test_outgoing_tls_refuses_gateway_with_wrong_name(tmp_path, pki):
    gwport = free_port("127.0.0.21")
    gw = Listener("127.0.0.21", gwport, tls_leaf=pki.wrong, ca=pki.root)
    o = secured_store(tmp_path, pki, listen_ports={"u": gwport})
    o.proc = o.serve()
    try:
        raw = tls_raw(o.tls, pki.gw["u"], pki.root, "127.0.0.21")
        _invite_then_vanish(raw, "127.0.0.21", [Listener("127.0.0.99"),
                                                Listener("127.0.0.98")])
        ev = wait_for(lambda: [e for e in o.events("--id", "1130")
                               if e["fields"].get("when") == "connect"], timeout=20)
        assert ev, o.log()[-2000:]
        assert ev[0]["fields"]["reason"] == "name matches no gateway"
        assert "elsewhere.test.example" in ev[0]["fields"]["subject"]
        assert not gw.byes
    finally:
        gw.close()
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


# ------------------------------------------------------------ PJSIP's sendto cases

CASES = os.path.join(SHARED, "corpora", "fuzzseeds", "pjproject-sendto")


def load_cases():
    rows = []
    with open(os.path.join(CASES, "manifest.tsv")) as f:
        head = f.readline()
        for line in f:
            c = line.rstrip("\n").split("\t")
            if len(c) >= 8:
                rows.append(dict(test=c[0], file=c[1], expected=int(c[2]), args=c[4],
                                 headers=c[7].replace("\\n", "\r\n")))
    return rows


def case_body(row):
    """(content-type, body) of a case's offer, or (None, "") for none."""
    text = open(os.path.join(CASES, row["file"]), "rb").read().decode(errors="replace")
    for k, v in (("$LOCAL_IP", "127.0.0.1"), ("$LOCAL_PORT", "5060"),
                 ("$TARGET_URI", "sip:um@127.0.0.1"), ("$FROM_TAG", ";tag=1"),
                 ("$CALL_ID", "c1"), ("$BRANCH", "z9hG4bK1")):
        text = text.replace(k, v)
    ext = os.path.splitext(row["file"])[1]
    if ext == ".sdp":
        return "application/sdp", text.replace("\r\n", "\n").replace("\n", "\r\n")
    if ext == ".body":
        m = re.search(r"Content-Type:\s*(multipart/\S+[^\r\n]*)", row["headers"])
        return (m.group(1).strip() if m else "multipart/mixed"), text
    sep = "\r\n\r\n" if "\r\n\r\n" in text else "\n\n"
    head, _, body = text.partition(sep)
    if body and re.search(r"(?im)^(content-type|c):\s*application/sdp", head):
        return "application/sdp", body
    return None, ""


def unit_table(case="every_case_secured_over_tls"):
    """What the R3 table gives for each case (the unit test of the sdp
    module prints it): Secured over mutual TLS, or Unsecured over TCP with
    case="every_case_unsecured_over_tcp". {test: (status, reason)}."""
    exe = os.path.join(BUILD, "tests", "unit", "sdp", "test_sdp_pjsendto")
    out = subprocess.run([exe, case], capture_output=True, text=True, timeout=120).stdout
    t = {}
    for line in out.splitlines():
        m = re.match(r"\s+(\S+)\s+(?:pjsip \d+\s+)?openum (\d+) (\S+)", line)
        if m:
            t[m.group(1)] = (int(m.group(2)), m.group(3))
    return t


def run_cases(raw, src, rows, transport):
    """Sends every case as an INVITE on one connection; answers ACK/BYE."""
    out = {}
    for row in rows:
        ctype, body = case_body(row)
        cid = "pj-" + row["test"] + "-" + uuid.uuid4().hex[:8]
        hdrs = "".join(l + "\r\n" for l in row["headers"].split("\r\n")
                       if l and not l.lower().startswith("content-type"))
        branch = "z9hG4bK" + uuid.uuid4().hex[:12]
        msg = (f"INVITE sip:8000@{FQDN} SIP/2.0\r\n"
               f"Via: SIP/2.0/{transport} {src}:5999;branch={branch}\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:2002@{src}>;tag=pj1\r\n"
               f"To: <sip:8000@{FQDN}>\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\n"
               f"Contact: <sip:2002@{src}:5999;transport={transport.lower()}>\r\n{hdrs}")
        msg += (f"Content-Type: {ctype}\r\n" if ctype else "")
        msg += f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        raw.send(msg)
        r = raw.read_until(lambda h: status_of(h) >= 200 and cid in h, timeout=10)
        assert r, f"{row['test']}: no final response"
        st = status_of(r[0])
        out[row["test"]] = (st, r[1])
        tag = to_tag_of(r[0])
        if st == 200:
            raw.send(in_dialog_text("ACK", cid, tag, src=src, cseq=1, from_tag="pj1"))
            raw.send(in_dialog_text("BYE", cid, tag, src=src, cseq=2, from_tag="pj1"))
            assert raw.read_until(lambda h: status_of(h) == 200 and "BYE" in h and cid in h)
        elif st >= 300:
            raw.send(in_dialog_text("ACK", cid, tag, src=src, cseq=1, from_tag="pj1")
                     .replace("z9hG4bK", "z9hG4bKx"))
    return out


def live_want(row, table):
    """The table's verdict, and the SIP layer's where it speaks first: a
    Session-Expires below our Min-SE (422), an option tag openum does not
    support in Require (420)."""
    want, reason = table[row["test"]]
    if "Session-Expires: 1\r\n" in row["headers"] + "\r\n":
        return 422, None
    req = re.findall(r"(?im)^Require:\s*(.*)$", row["headers"])
    if req and any(t.strip().lower() != "timer" for r in req for t in r.split(",")):
        return 420, None
    return want, reason


def test_pjsendto_cases_secured_tls_and_unsecured_tcp(srv, pki):
    rows = load_cases()
    assert len(rows) == 99
    table = unit_table()
    utable = unit_table("every_case_unsecured_over_tcp")
    assert len(table) == 99 and len(utable) == 99
    raw = tls_raw(srv.tls, pki.gw["x"], pki.root, GW["x"][0])
    sec = run_cases(raw, GW["x"][0], rows, "TLS")
    raw.close()
    raw = RawSip(srv.tcp, src="127.0.0.24")
    uns = run_cases(raw, "127.0.0.24", rows, "TCP")
    raw.close()
    diffs, refused = [], {}
    for row in rows:
        t = row["test"]
        for name, live, tab, cid_src in (("Secured/TLS", sec, table, GW["x"][0]),
                                         ("Unsecured/TCP", uns, utable, "127.0.0.24")):
            st, body = live[t]
            want, reason = live_want(row, tab)
            if st != want:
                diffs.append(f"{name} {t}: live {st}, table {want}")
            if st in (403, 488):
                refused[t + "/" + cid_src] = (st, reason)
        st, body = sec[t]
        if st == 200:  # mandatory SRTP: never media without keys
            assert "RTP/SAVP" in body and "a=crypto:" in body, t
        ust, ubody = uns[t]
        if ust == 200:  # keys never cross in clear
            assert "RTP/AVP" in ubody and "a=crypto" not in ubody, t
    assert not diffs, "\n".join(diffs)
    assert refused
    # every 1132 raised for these calls names the status and reason the
    # table gives for its case (the event is rate limited per gateway:
    # not every refusal has its own)
    ev = [e for e in srv.events("--id", "1132") if e["fields"].get("call", "").startswith("pj-")]
    assert ev
    for e in ev:
        f = e["fields"]
        case = re.match(r"pj-(.+)-[0-9a-f]{8}@?", f["call"]).group(1)
        src = "127.0.0.24" if f["transport"] == "tcp" else GW["x"][0]
        st, reason = refused[case + "/" + src]
        assert f["status"] == str(st) and f["reason"] == reason, (case, f)
    # every call ended, the server is up and answers
    assert wait_calls(srv, 0) == []
    assert srv.json("status")["calls"]["active"] == 0
    r = tls_call(srv, pki, "x", "--offer", "savp", "--bye-after", 100)
    assert r["status"] == 200 and r["bye_status"] == 200, r
