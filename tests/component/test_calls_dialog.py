"""Dialog rules of a live `openum serve` that need a gateway written by hand
(RFC 3261 §12-§14, RFC 4028, RFC 4568): an ACK from another gateway never
confirms a call; session timers end a call that is not refreshed and keep
one that is, and openum's own refresh meets glare (491); a re-INVITE with
the same SDES key keeps the SRTP context (its ROC) and one with a new key
makes a new context (the old key refused) — checked with om-testrtp's SRTP
against the server's own counters."""
import json
import os
import re
import socket
import subprocess
import threading
import time
import traceback
import uuid

from calls_util import (FQDN, SDP_AVP, RawSip, calls, in_dialog_text, invite_text, make_store,
                        status_of, to_tag_of, wait_calls)
from conftest import free_port
from media_util import TESTRTP, key_b64
from sip_util import wait_for
from test_calls_tls import GW, pki, secured_store, tls_raw  # noqa: F401 (fixture)


# The diagnostic extension (testcall/conntest.h): a call that stays up
# however long the test needs it, whatever the call flows would play to a
# caller (an extension asked for, a greeting, a goodbye and our BYE).
QUIET = f"sip:openum-test@{FQDN}"



def counters(o):
    return o.json("status")["calls"]


# ------------------------------------------------------------ a foreign ACK

def test_foreign_ack_does_not_confirm_the_call(tmp_path):
    """The 2xx waits for ITS gateway's ACK: an ACK from another gateway with
    the right Call-ID and tags neither confirms the call nor stops the 2xx
    retransmissions; the owner's ACK does."""
    o = make_store(tmp_path, gateways=[("gw1", "127.0.0.1", "dp1"),
                                       ("gw2", "127.0.0.2", "dp1")])
    o.proc = o.serve()
    raw = RawSip(o.tcp)
    cid = uuid.uuid4().hex
    raw.send(invite_text(cid))
    ok = raw.read_until(lambda h: status_of(h) == 200)
    assert ok, "no 200"
    tag = to_tag_of(ok[0])
    other = RawSip(o.tcp, src="127.0.0.2")
    other.send(in_dialog_text("ACK", cid, tag, src="127.0.0.2", cseq=1))
    # the 2xx comes again (sip_t1 = 100 ms: at 0.1, 0.3, 0.7 s ...)
    assert raw.read_until(lambda h: status_of(h) == 200 and cid in h), "2xx not retransmitted"
    c = [c for c in calls(o) if c["call_id"] == cid]
    assert c and c[0]["state"] != "confirmed", c
    raw.send(in_dialog_text("ACK", cid, tag, cseq=1))
    assert wait_for(lambda: [c for c in calls(o) if c["call_id"] == cid
                             and c["state"] == "confirmed"])
    raw.send(in_dialog_text("BYE", cid, tag, cseq=2))
    assert raw.read_until(lambda h: status_of(h) == 200 and "BYE" in h)
    assert counters(o)["no_ack"] == 0
    other.close()
    raw.close()
    assert o.stop(o.proc) == 0, o.log()[-3000:]


# ------------------------------------------------------------ session timers and glare

def reply(raw, head, status, phrase="OK", body="", extra=""):
    keep = [l for l in head.split("\r\n")[1:]
            if l.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
    ct = "Content-Type: application/sdp\r\n" if body else ""
    raw.send(f"SIP/2.0 {status} {phrase}\r\n" + "\r\n".join(keep) + "\r\n" + extra + ct
             + f"Content-Length: {len(body)}\r\n\r\n{body}")


class Gw(threading.Thread):
    """One call of a hand-written gateway on its own connection: INVITE with
    Session-Expires, ACK; then what `script` does; every request from
    openum is recorded with the time it came."""

    def __init__(self, o, se, script):
        super().__init__(daemon=True)
        self.o, self.se, self.script = o, se, script
        self.cid = uuid.uuid4().hex
        self.raw = RawSip(o.tcp)
        self.got = []  # (monotonic time, head)
        self.error = None
        self.ok = None

    def run(self):
        try:
            self.raw.send(invite_text(self.cid, ruri=QUIET, extra=f"Session-Expires: {self.se}\r\n"
                                      "Supported: timer\r\n"))
            ok = self.raw.read_until(lambda h: status_of(h) >= 200)
            assert ok and status_of(ok[0]) == 200, ok
            self.ok = ok[0]
            self.tag = to_tag_of(ok[0])
            self.raw.send(in_dialog_text("ACK", self.cid, self.tag, cseq=1))
            self.cseq = 1
            self.script(self)
        except Exception:  # reported by the test
            self.error = traceback.format_exc()

    def next_request(self, timeout):
        m = self.raw.read_until(lambda h: not h.startswith("SIP/2.0"), timeout=timeout)
        if m:
            self.got.append((time.monotonic(), m[0]))
        return m

    def request(self, method, extra="", body=""):
        self.cseq += 1
        ct = "Content-Type: application/sdp\r\n" if body else ""
        self.raw.send(in_dialog_text(method, self.cid, self.tag, cseq=self.cseq,
                                     extra=extra + ct, body=body))
        return self.raw.read_until(lambda h: status_of(h) >= 200 and f"CSeq: {self.cseq} " in h)


def expect_bye(g):
    """Waits for openum's BYE (at most 100 s) and answers it."""
    m = g.next_request(100)
    assert m and m[0].startswith("BYE "), m
    g.bye = m[0]
    reply(g.raw, m[0], 200)


def refresh_once_then_wait(g):
    time.sleep(15)  # a refresh of our own, well before the interval ends
    r = g.request("UPDATE", extra="Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n")
    assert r and status_of(r[0]) == 200, r
    assert "Session-Expires: 90;refresher=uac" in r[0] and "Require: timer" in r[0], r[0]
    g.refreshed = time.monotonic()
    expect_bye(g)


def uas_refreshes_glare(g):
    """openum refreshes (refresher=uas) with a re-INVITE at half the
    interval; while it is pending, our own re-INVITE with an offer gets
    491 (RFC 3261 §14.2); then we answer openum's and it ACKs."""
    m = g.next_request(80)
    assert m and m[0].startswith("INVITE "), m
    reinvite = m[0]
    assert re.search(r"(?im)^Session-Expires:\s*90;refresher=uac", reinvite), reinvite
    assert "m=audio" in m[1]  # our (openum's) current SDP as the offer
    r = g.request("INVITE", extra=f"Contact: <sip:2002@127.0.0.1:5999;transport=tcp>\r\n",
                  body=SDP_AVP)
    assert r and status_of(r[0]) == 491, r
    # ACK of the 491 (same branch as our re-INVITE: the Via of the answer)
    via = re.search(r"(?im)^Via:\s*(.*?)\r?$", r[0]).group(1).strip()
    g.raw.send(f"ACK sip:{FQDN} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
               f"From: <sip:2002@127.0.0.1>;tag=gwtag\r\nTo: <sip:8000@{FQDN}>;tag={g.tag}\r\n"
               f"Call-ID: {g.cid}\r\nCSeq: {g.cseq} ACK\r\nContent-Length: 0\r\n\r\n")
    reply(g.raw, reinvite, 200, body=SDP_AVP,
          extra="Contact: <sip:2002@127.0.0.1:5999;transport=tcp>\r\n"
                "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\n")
    ack = g.next_request(10)
    assert ack and ack[0].startswith("ACK "), ack
    g.glare_done = True
    r = g.request("BYE")
    assert r and status_of(r[0]) == 200, r


def never_refresh(g):
    expect_bye(g)


def test_session_timers_expiry_refresh_and_glare(tmp_path):
    """Three calls at once, Session-Expires 90 (the smallest Min-SE):
    A asks openum to refresh (refresher=uas): its re-INVITE comes, and
    glare on it gives 491; B (refresher=uac) never refreshes: openum sends
    BYE (session-expired, event 1138); C (refresher=uac) refreshes once
    with an UPDATE: it outlives B, and then ends the same way."""
    # no RTP in these calls: rtp_timeout must not end them first
    o = make_store(tmp_path, conf="rtp_timeout = 600\n", gateways=[("gw1", "127.0.0.1", "dp1")])
    o.proc = o.serve()
    a = Gw(o, "90;refresher=uas", uas_refreshes_glare)
    b = Gw(o, "90;refresher=uac", never_refresh)
    c = Gw(o, "90;refresher=uac", refresh_once_then_wait)
    for g in (a, b, c):
        g.start()
    for g in (a, b, c):
        g.join(130)
    for g in (a, b, c):
        assert not g.is_alive(), "a call did not finish"
        assert g.error is None, (g.error, o.log()[-3000:])
    assert "Session-Expires: 90;refresher=uas" in a.ok and "Require: timer" not in a.ok
    assert "Session-Expires: 90;refresher=uac" in b.ok and "Require: timer" in b.ok
    assert a.glare_done
    # B ended first (never refreshed); C, refreshed, ended after B
    tb, tc = b.got[-1][0], c.got[-1][0]
    assert tc > tb and tc > c.refreshed
    for g in (b, c):
        assert 'Reason: SIP;text="session-expired"' in g.bye, g.bye
    ev = wait_for(lambda: [e for e in o.events("--id", "1138")
                           if e["fields"].get("reason") == "session-expired"])
    assert ev, o.events("--id", "1138")
    assert wait_calls(o, 0) == []
    for g in (a, b, c):
        g.raw.close()
    assert o.stop(o.proc) == 0, o.log()[-3000:]


# ------------------------------------------------------------ SDES keys on re-INVITE

SUITE = "AES_CM_128_HMAC_SHA1_80"


def savp_offer(port, key, version):
    return ("v=0\r\n"
            f"o=gw 1 {version} IN IP4 127.0.0.23\r\ns=-\r\nc=IN IP4 127.0.0.23\r\nt=0 0\r\n"
            f"m=audio {port} RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            f"a=crypto:1 {SUITE} inline:{key}\r\na=sendrecv\r\n")


def answer_key(body):
    m = re.search(r"a=crypto:\d+ (\S+) inline:([A-Za-z0-9+/=]+)", body)
    return m.group(2) if m else None


def srtp_send(port, r, key, *args):
    return subprocess.Popen([TESTRTP, "send", "--to", f"127.0.0.1:{port}", "--from",
                             f"127.0.0.23:{r}", "--suite", SUITE, "--key", key, "--rate", "1",
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_reinvite_same_key_keeps_roc_new_key_new_context(tmp_path, pki):  # noqa: F811
    """Secured plan over mutual TLS. The gateway's SRTP crosses a sequence
    number wrap (ROC 0 -> 1) before a re-INVITE with the SAME key: every
    packet after it is still taken — the context kept its ROC (a new one
    would guess ROC 0 and fail authentication) — and openum's own key stays
    too. A re-INVITE with a NEW key: openum answers with a new key of its
    own, the new key's packets are taken, the old key's refused."""
    o = secured_store(tmp_path, pki)
    o.proc = o.serve()
    gw = GW["x"][0]
    r = free_port(gw, socket.SOCK_DGRAM)
    k1, k2 = key_b64(SUITE, 11), key_b64(SUITE, 12)
    raw = tls_raw(o.tls, pki.gw["x"], pki.root, gw)
    cid = uuid.uuid4().hex
    inv = invite_text(cid, src=gw, ruri=QUIET, body=savp_offer(r, k1, 1)).replace("SIP/2.0/TCP",
                                                                      "SIP/2.0/TLS")
    raw.send(inv)
    ok = raw.read_until(lambda h: status_of(h) >= 200)
    assert ok and status_of(ok[0]) == 200, ok
    tag = to_tag_of(ok[0])
    port = int(re.search(r"m=audio (\d+)", ok[1]).group(1))
    ours1 = answer_key(ok[1])
    assert ours1
    raw.send(in_dialog_text("ACK", cid, tag, src=gw, cseq=1))
    cseq = [1]

    def reinvite(key, version):
        cseq[0] += 1
        raw.send(in_dialog_text("INVITE", cid, tag, src=gw, cseq=cseq[0],
                                extra=f"Contact: <sip:2002@{gw}:5999;transport=tls>\r\n"
                                "Content-Type: application/sdp\r\n",
                                body=savp_offer(r, key, version)))
        m = raw.read_until(lambda h: status_of(h) >= 200 and f"CSeq: {cseq[0]} INVITE" in h)
        assert m and status_of(m[0]) == 200, m
        raw.send(in_dialog_text("ACK", cid, tag, src=gw, cseq=cseq[0]))
        return answer_key(m[1])

    before = counters(o)
    # 100 packets from sequence number 65500: the 36th wraps (ROC 1); after
    # the 50th the sender holds 5 s, during which the re-INVITE is done
    p = srtp_send(port, r, k1, "--tone", "697:2000", "--seq", 65500, "--mark-at", 48,
                  "--pause-at", "49:5000")
    line = p.stdout.readline()
    assert json.loads(line) == {"mark": 48}, (line, p.stderr.read() if p.poll() else "")
    ours2 = reinvite(k1, 2)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert ours2 == ours1  # the same key from the gateway keeps ours too
    mid = wait_for(lambda: (lambda c: c["rtp_in"] - before["rtp_in"] >= 100 and c)(counters(o)))
    assert mid, (before, counters(o))
    assert mid["rtp_in"] - before["rtp_in"] == 100, (before, mid)
    assert mid["srtp_auth_failures"] == before["srtp_auth_failures"], (before, mid)
    # a new key: a new context each way
    ours3 = reinvite(k2, 3)
    assert ours3 and ours3 != ours1
    p = srtp_send(port, r, k2, "--tone", "697:1000", "--seq", 1000)
    assert p.wait(60) == 0, p.stderr.read()
    p = srtp_send(port, r, k1, "--tone", "697:200", "--seq", 3000)  # the old key
    assert p.wait(60) == 0, p.stderr.read()
    end = wait_for(lambda: (lambda c: c["srtp_auth_failures"] - mid["srtp_auth_failures"] >= 10
                            and c)(counters(o)))
    assert end, (mid, counters(o))
    assert end["rtp_in"] - mid["rtp_in"] == 50, (mid, end)
    assert end["srtp_auth_failures"] - mid["srtp_auth_failures"] == 10, (mid, end)
    cseq[0] += 1
    raw.send(in_dialog_text("BYE", cid, tag, src=gw, cseq=cseq[0]))
    assert raw.read_until(lambda h: status_of(h) == 200 and "BYE" in h)
    raw.close()
    assert o.stop(o.proc) == 0, o.log()[-3000:]


# ------------------------------------------------------------ a response whose connection is gone

def test_response_never_follows_a_via_to_another_host(tmp_path, pki):  # noqa: F811
    """The gateway's connection closes before openum answers (ringing for
    answer_delay_ms): the 200 goes to the gateway's CONFIGURED address
    (RFC 3261 §18.2.2 with the configured address instead of the Via's),
    never to the host and port named by the INVITE's Via, Contact or
    Record-Route — and the BYE that follows (no ACK) goes there too."""
    from test_calls_tls import Listener
    gwport = free_port("127.0.0.24")
    decoys = [Listener("127.0.0.97"), Listener("127.0.0.98"), Listener("127.0.0.99")]
    gw = Listener("127.0.0.24", gwport)
    o = secured_store(tmp_path, pki, conf="answer_delay_ms = 1500\n",
                      listen_ports={"t": gwport})
    o.proc = o.serve()
    try:
        raw = RawSip(o.tcp, src="127.0.0.24")
        cid = uuid.uuid4().hex
        text = invite_text(cid, src="127.0.0.24",
                           extra=f"Record-Route: <sip:127.0.0.98:{decoys[1].port};lr>\r\n")
        text = text.replace("Via: SIP/2.0/TCP 127.0.0.24:5999",
                            f"Via: SIP/2.0/TCP 127.0.0.97:{decoys[0].port}")
        text = text.replace("Contact: <sip:2002@127.0.0.24:5999;transport=tcp>",
                            f"Contact: <sip:2002@127.0.0.99:{decoys[2].port};transport=tcp>")
        raw.send(text)
        assert raw.read_until(lambda h: status_of(h) == 180), "no 180"
        raw.close()
        got = wait_for(lambda: [m for m in getattr(gw, "messages", [])
                                if m.startswith("SIP/2.0 200") and cid in m], timeout=20)
        assert got, (gw.errors, o.log()[-2000:])
        assert wait_for(lambda: [m for m in gw.byes if cid in m], timeout=30), o.log()[-2000:]
        assert [d.accepted for d in decoys] == [0, 0, 0]
        assert wait_calls(o, 0) == []
    finally:
        gw.close()
        for d in decoys:
            d.close()
    assert o.stop(o.proc) == 0, o.log()[-3000:]


# ------------------------------------------------------------ another gateway's requests over TLS

def test_foreign_requests_over_tls_481_nothing_changes(tmp_path, pki):  # noqa: F811
    """A call of the Secured plan's gateway over mutual TLS; another trusted
    TLS gateway (its own certificate, its own connection) sends BYE, a
    re-INVITE moving the media to itself, UPDATE and INFO naming the call:
    each 481, the call stays confirmed with its media where it was; then
    the owner's BYE ends it."""
    o = secured_store(tmp_path, pki)
    o.proc = o.serve()
    gx, gu = GW["x"][0], GW["u"][0]
    owner = tls_raw(o.tls, pki.gw["x"], pki.root, gx)
    cid = uuid.uuid4().hex
    owner.send(invite_text(cid, src=gx, ruri=QUIET, body=savp_offer(40000, key_b64(SUITE, 3), 1)))
    ok = owner.read_until(lambda h: status_of(h) >= 200)
    assert ok and status_of(ok[0]) == 200, ok
    tag = to_tag_of(ok[0])
    owner.send(in_dialog_text("ACK", cid, tag, src=gx, cseq=1))
    c = wait_for(lambda: [c for c in calls(o) if c["call_id"] == cid
                          and c["state"] == "confirmed"])
    assert c, calls(o)
    media = c[0]["remote_media"]
    other = tls_raw(o.tls, pki.gw["u"], pki.root, gu)
    evil = savp_offer(40000, key_b64(SUITE, 4), 2).replace("127.0.0.23", gu)
    for n, (method, extra, body) in enumerate([
            ("BYE", "", ""),
            ("INVITE", f"Contact: <sip:2002@{gu}:5999;transport=tls>\r\n"
                       "Content-Type: application/sdp\r\n", evil),
            ("UPDATE", f"Contact: <sip:2002@{gu}:5999;transport=tls>\r\n"
                       "Content-Type: application/sdp\r\n", evil),
            ("INFO", "Content-Type: application/dtmf-relay\r\n", "Signal=5\r\nDuration=160\r\n")]):
        # the owner's From (its tag and address): only the connection differs
        other.send(in_dialog_text(method, cid, tag, src=gx, cseq=10 + n, extra=extra, body=body))
        r = other.read_until(lambda h: status_of(h) >= 200 and f"CSeq: {10 + n} {method}" in h)
        assert r and status_of(r[0]) == 481, (method, r)
    other.close()
    c = [c for c in calls(o) if c["call_id"] == cid]
    assert c and c[0]["state"] == "confirmed" and c[0]["remote_media"] == media, c
    assert c[0]["reinvites"] == 0 and c[0]["dtmf_info"] == 0, c
    # the owner's INFO is taken (the counter above can move)
    owner.send(in_dialog_text("INFO", cid, tag, src=gx, cseq=20,
                              extra="Content-Type: application/dtmf-relay\r\n",
                              body="Signal=5\r\nDuration=160\r\n"))
    r = owner.read_until(lambda h: status_of(h) >= 200 and "CSeq: 20 INFO" in h)
    assert r and status_of(r[0]) == 200, r
    assert wait_for(lambda: [c for c in calls(o) if c["call_id"] == cid and c["dtmf_info"] == 1])
    # ... and the owner's re-INVITE moves the media (so can remote_media)
    owner.send(in_dialog_text("INVITE", cid, tag, src=gx, cseq=21,
                              extra=f"Contact: <sip:2002@{gx}:5999;transport=tls>\r\n"
                              "Content-Type: application/sdp\r\n",
                              body=savp_offer(40002, key_b64(SUITE, 3), 2)))
    r = owner.read_until(lambda h: status_of(h) >= 200 and "CSeq: 21 INVITE" in h)
    assert r and status_of(r[0]) == 200, r
    owner.send(in_dialog_text("ACK", cid, tag, src=gx, cseq=21))
    moved = wait_for(lambda: [c for c in calls(o) if c["call_id"] == cid
                              and c["remote_media"] != media])
    assert moved and moved[0]["remote_media"].endswith(":40002"), (media, calls(o))
    owner.send(in_dialog_text("BYE", cid, tag, src=gx, cseq=30))
    assert owner.read_until(lambda h: status_of(h) == 200 and "BYE" in h)
    owner.close()
    assert wait_calls(o, 0) == []
    assert o.stop(o.proc) == 0, o.log()[-3000:]
