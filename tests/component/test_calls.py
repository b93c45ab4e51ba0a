"""Calls against the real `openum serve` over TCP (R2, R3, R4, R11): the
project's own gateway-side UAC (om-testcall) and raw SIP where a test must
send what no well-behaved UA sends (foreign dialogs, never-ACKing gateways).

Every call: INVITE → 100 → 200 with our SDP (its port in rtp_ports, our FQDN
in Contact) → ACK → BYE, with the transaction layer's rules on a live
server: CANCEL, re-INVITE, INFO, the 2xx retransmitted over TCP until the
ACK, admission in the documented order, routing shown by `openum calls`."""
import re
import signal
import socket
import time
import uuid

import pytest

from calls_util import (FQDN, SDP_AVP, RawSip, answer_request, call_bg, calls, finish,
                        in_dialog_text, invite_text, make_store, media_port, place_call, sdp_lines,
                        status_of, to_tag_of, wait_calls)
from sip_util import connect, header, read_response, wait_for

MAILBOXES = [("2001", "dp1"), ("2002", "dp1"), ("2003", "dp1")]



@pytest.fixture(scope="module")
def pbx(tmp_path_factory):
    """One Unsecured plan, gateways on 127.0.0.1 and 127.0.0.2 (TCP)."""
    o = make_store(tmp_path_factory.mktemp("calls"), conf="rtp_ports = 41000-41099\n",
                   gateways=[("gw1", "127.0.0.1", "dp1"), ("gw2", "127.0.0.2", "dp1")],
                   mailboxes=MAILBOXES)
    o.module_scoped = True
    o.proc = o.serve()
    yield o
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


def test_call_answered_and_hung_up_by_the_gateway(pbx):
    r = place_call(pbx.tcp, "--bye-after", 200, "--from", "2002")
    assert r["status"] == 200, r
    assert r["provisional"] == 100
    assert r["state"] == "ended" and r["bye_status"] == 200 and not r["remote_bye"]
    resp = r["response"]
    # Contact: our FQDN (never an IP), the listener's port, transport=tcp
    assert f"Contact: <sip:{FQDN}:{pbx.tcp};transport=tcp>" in resp
    assert "Supported: timer" in resp and "Allow: INVITE, ACK, BYE, CANCEL" in resp
    sdp = r["answer_sdp"]
    assert 41000 <= media_port(sdp) <= 41099
    assert "m=audio" in sdp and " RTP/AVP 0 " in sdp + " " or " RTP/AVP 0\r" in sdp
    assert "c=IN IP4 127.0.0.1" in sdp
    assert wait_calls(pbx, 0) == []


def test_calls_shows_routing_outcome(pbx):
    p = call_bg(pbx.tcp, "--bye-after", 3000, "--from", "2002", "--header",
                    "Diversion: \"Bob\" <sip:2001@pbx.example.com>;reason=user-busy;counter=1",
                    "--header", "P-Asserted-Identity: \"Carol\" <sip:+15550107777@pbx.example.com>")
    try:
        c = wait_calls(pbx, 1)
        assert len(c) == 1, c
        c = c[0]
        assert c["state"] == "confirmed"
        assert c["gateway"] == "gw1" and c["dialplan"] == "dp1"
        assert c["transport"] == "tcp" and c["security_mode"] == "unsecured"
        assert c["media"] == "rtp" and c["srtp_suite"] == ""
        assert c["outcome"] == "deposit" and c["mailbox"] == "2001"
        assert c["reason"] == "busy" and c["greeting"] == "busy"
        assert c["decided_by"] == "diversion" and c["cause"] == "user-busy"
        assert c["caller"] == "15550107777" and c["caller_name"] == "Carol"
        # the human form too, and never a key anywhere
        text = pbx.ok("calls").stdout
        assert "2001" in text and "diversion" in text and "gw1" in text
        raw = pbx.ok("calls", "--json").stdout
        assert "inline:" not in raw and "key" not in raw.lower()
    finally:
        r = finish(p)
    assert r["bye_status"] == 200
    assert wait_calls(pbx, 0) == []


def test_call_to_pilot_asks_for_extension(pbx):
    p = call_bg(pbx.tcp, "--bye-after", 2000, "--from", "7777")
    try:
        c = wait_calls(pbx, 1)
        assert c[0]["outcome"] == "ask-extension" and c[0]["decided_by"] == "request-uri"
    finally:
        finish(p)


def test_server_hangs_up_on_stop(tmp_path):
    o = make_store(tmp_path, gateways=[("gw1", "127.0.0.1", "dp1")], mailboxes=MAILBOXES)
    o.proc = o.serve()
    p = call_bg(o.tcp, "--wait-bye", 20000)
    try:
        # confirmed (ACKed): before the ACK no BYE may go (RFC 3261 §15)
        assert wait_for(lambda: [c for c in calls(o) if c["state"] == "confirmed"])
        assert o.stop(o.proc) == 0, o.log()[-3000:]
    finally:
        r = finish(p)
    assert r["status"] == 200 and r["remote_bye"], r
    o.close()


def test_cancel_before_answer(tmp_path):
    o = make_store(tmp_path, conf="answer_delay_ms = 3000\n",
                   gateways=[("gw1", "127.0.0.1", "dp1")])
    o.proc = o.serve()
    r = place_call(o.tcp, "--cancel-after", 500)
    assert r["provisional"] == 180, r
    assert r["status"] == 487 and r["state"] == "refused", r
    assert wait_calls(o, 0) == []
    st = o.json("status")["calls"]
    assert st["canceled"] == 1 and st["active"] == 0
    assert o.stop(o.proc) == 0
    o.close()


def test_hold_and_resume_reinvite(pbx):
    r = place_call(pbx.tcp, "--hold-after", 200, "--resume-after", 200, "--bye-after", 100)
    assert r["status"] == 200 and r["reinvites_done"] == 2 and r["reinvite_status"] == 200, r
    assert r["bye_status"] == 200


def test_info_dtmf(pbx):
    r = place_call(pbx.tcp, "--info", "5#", "--bye-after", 100)
    assert r["info_status"] == 200, r


def test_delayed_offer(pbx):
    r = place_call(pbx.tcp, "--offer", "none", "--bye-after", 300)
    assert r["status"] == 200 and r["bye_status"] == 200, r
    sdp = r["answer_sdp"]  # openum's offer, Unsecured over TCP: plain RTP
    assert "RTP/AVP 0 8 101" in sdp and "a=crypto" not in sdp
    assert 41000 <= media_port(sdp) <= 41099


def test_delayed_offer_bad_answer_in_ack_ends_call(pbx, tmp_path):
    bad = tmp_path / "bad.sdp"
    bad.write_text("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                   "m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n")
    r = place_call(pbx.tcp, "--offer", "none", "--ack-sdp", bad, "--wait-bye", 5000)
    assert r["status"] == 200 and r["remote_bye"], r
    ev = wait_for(lambda: [e for e in pbx.events("--id", "1138")
                           if e["fields"].get("call") == r["call_id"]])
    assert ev


def test_require_100rel_refused_420(pbx):
    r = place_call(pbx.tcp, "--header", "Require: 100rel")
    assert r["status"] == 420, r
    assert "Unsupported: 100rel" in r["response"]


def test_session_expires_below_min_se_422(pbx):
    r = place_call(pbx.tcp, "--session-expires", 60)
    assert r["status"] == 422, r
    assert "Min-SE: 90" in r["response"]


def test_session_timer_granted(pbx):
    r = place_call(pbx.tcp, "--session-expires", 600, "--bye-after", 100)
    assert r["status"] == 200
    assert "Session-Expires: 600;refresher=uac" in r["response"]
    assert "Require: timer" in r["response"]


def test_not_sdp_415(pbx, tmp_path):
    body = tmp_path / "b.txt"
    body.write_text("hello")
    r = place_call(pbx.tcp, "--sdp", body, "--content-type", "text/plain")
    assert r["status"] == 415 and "Accept: application/sdp" in r["response"], r


def test_malformed_sdp_400(pbx, tmp_path):
    body = tmp_path / "b.sdp"
    body.write_text("v=0\r\nthis is not sdp\r\n")
    r = place_call(pbx.tcp, "--sdp", body)
    assert r["status"] == 400, r
    assert "Warning: 399" in r["response"]


# ------------------------------------------------------------ attacks and bounds

def _answered_call(port, src="127.0.0.1"):
    raw = RawSip(port, src=src)
    cid = uuid.uuid4().hex
    raw.send(invite_text(cid, src=src))
    ok = raw.read_until(lambda h: status_of(h) >= 200)
    assert ok and status_of(ok[0]) == 200, ok
    tag = to_tag_of(ok[0])
    raw.send(in_dialog_text("ACK", cid, tag, src=src, cseq=1))
    return raw, cid, tag


def test_foreign_bye_and_ack_481_nothing_ends(pbx):
    raw, cid, tag = _answered_call(pbx.tcp)
    try:
        assert [c for c in wait_calls(pbx, 1) if c["call_id"] == cid]
        # another gateway (127.0.0.2), the right Call-ID and tags
        other = RawSip(pbx.tcp, src="127.0.0.2")
        other.send(in_dialog_text("BYE", cid, tag, src="127.0.0.2", cseq=5))
        r = other.read_until(lambda h: status_of(h) >= 200)
        assert r and status_of(r[0]) == 481, r
        other.send(in_dialog_text("ACK", cid, tag, src="127.0.0.2", cseq=1))
        other.send(in_dialog_text("INFO", cid, tag, src="127.0.0.2", cseq=6))
        r = other.read_until(lambda h: status_of(h) >= 200)
        assert r and status_of(r[0]) == 481, r
        other.close()
        # the same gateway on another connection, a wrong tag: 481 too
        again = RawSip(pbx.tcp)
        again.send(in_dialog_text("BYE", cid, "not-the-tag", cseq=5))
        r = again.read_until(lambda h: status_of(h) >= 200)
        assert r and status_of(r[0]) == 481
        again.close()
        time.sleep(0.3)
        c = [c for c in calls(pbx) if c["call_id"] == cid]
        assert c and c[0]["state"] == "confirmed", c
        # the owner ends it
        raw.send(in_dialog_text("BYE", cid, tag, cseq=7))
        r = raw.read_until(lambda h: status_of(h) >= 200)
        assert r and status_of(r[0]) == 200
    finally:
        raw.close()
    assert not [c for c in wait_calls(pbx, 0) if c["call_id"] == cid]


def test_foreign_cancel_does_not_cancel(tmp_path):
    o = make_store(tmp_path, conf="answer_delay_ms = 2000\n",
                   gateways=[("gw1", "127.0.0.1", "dp1"), ("gw2", "127.0.0.2", "dp1")])
    o.proc = o.serve()
    raw = RawSip(o.tcp)
    cid = uuid.uuid4().hex
    inv = invite_text(cid, branch="z9hG4bKcancelme")
    raw.send(inv)
    assert raw.read_until(lambda h: status_of(h) == 180)
    other = RawSip(o.tcp, src="127.0.0.2")
    cancel = inv.replace("INVITE sip:", "CANCEL sip:", 1).replace("CSeq: 1 INVITE",
                                                                  "CSeq: 1 CANCEL")
    cancel = cancel.split("Content-Type:")[0] + "Content-Length: 0\r\n\r\n"
    other.send(cancel.replace("127.0.0.1", "127.0.0.2"))
    r = other.read_until(lambda h: status_of(h) >= 200)
    assert r and status_of(r[0]) == 481, r
    # with the original Via (only the gateway's address differs): 481 too
    other.send(cancel)
    r = other.read_until(lambda h: status_of(h) >= 200)
    assert r and status_of(r[0]) == 481, r
    ok = raw.read_until(lambda h: status_of(h) >= 200)
    assert ok and status_of(ok[0]) == 200, ok  # answered, not 487
    raw.send(in_dialog_text("ACK", cid, to_tag_of(ok[0]), cseq=1))
    raw.close()
    other.close()
    assert o.stop(o.proc) == 0
    o.close()


def test_never_acking_gateway_costs_one_timer(tmp_path):
    o = make_store(tmp_path, gateways=[("gw1", "127.0.0.1", "dp1")])
    o.proc = o.serve()
    raw = RawSip(o.tcp)
    cid = uuid.uuid4().hex
    raw.send(invite_text(cid))
    oks, bye = 0, None
    deadline = time.time() + 20
    while time.time() < deadline and not bye:
        m = raw.read(2)
        if m is None:
            continue
        if status_of(m[0]) == 200:
            oks += 1
        elif m[0].startswith("BYE "):
            bye = m
    # sip_t1 = 100 ms: the 2xx went again over TCP (0.1, 0.3, 0.7 ... s) and
    # after 64*T1 without ACK openum sent BYE
    assert oks >= 5, oks
    assert bye, "no BYE after 64*T1"
    assert "Reason: SIP;text=\"no-ack\"" in bye[0]
    answer_request(raw, bye[0])
    assert wait_calls(o, 0) == []
    st = o.json("status")["calls"]
    assert st["no_ack"] == 1 and st["active"] == 0 and st["server_transactions"] == 0
    assert wait_for(lambda: o.events("--id", "1138"))
    raw.close()
    assert o.stop(o.proc) == 0
    o.close()


def test_caps_max_calls_and_gateway_max_calls(tmp_path):
    o = make_store(tmp_path, conf="max_calls = 2\nmax_calls_per_second = 0\n",
                   gateways=[("gw1", "127.0.0.1", "dp1"),
                             ("gw2", "127.0.0.2", "dp1", "--max-calls", "1")])
    o.proc = o.serve()
    a = call_bg(o.tcp, "--bye-after", 4000, bind="127.0.0.2")
    try:
        assert len(wait_calls(o, 1)) == 1
        r = place_call(o.tcp, bind="127.0.0.2")  # the gateway's own cap
        assert r["status"] == 503 and "Retry-After:" in r["response"], r
        assert "gateway max-calls" in r["response"]
        b = call_bg(o.tcp, "--bye-after", 4000)
        try:
            assert len(wait_calls(o, 2)) == 2
            r = place_call(o.tcp)  # the server's cap
            assert r["status"] == 503 and "max_calls" in r["response"], r
        finally:
            finish(b)
    finally:
        finish(a)
    ev = wait_for(lambda: o.events("--id", "1137"))
    assert ev and {e["fields"]["cap"] for e in ev} >= {"max_calls", "gateway max-calls"}
    assert o.stop(o.proc) == 0
    o.close()


def test_calls_per_second_cap(tmp_path):
    o = make_store(tmp_path, conf="max_calls_per_second = 1\n",
                   gateways=[("gw1", "127.0.0.1", "dp1")])
    o.proc = o.serve()
    raw = RawSip(o.tcp)
    for i in range(5):
        raw.send(invite_text(f"cps-{i}"))
    st = []
    while len(st) < 5:
        m = raw.read_until(lambda h: status_of(h) >= 200)
        assert m, st
        st.append(status_of(m[0]))
        if status_of(m[0]) == 503:
            assert "Retry-After: 1" in m[0]
    assert st.count(200) == 1 and st.count(503) == 4, st
    raw.close()
    assert o.stop(o.proc) == 0
    o.close()


def test_plan_not_served_403(tmp_path):
    o = make_store(tmp_path, plans=(("dp1", "unsecured"), ("dp2", "unsecured")),
                   gateways=[("gw1", "127.0.0.1", "dp1")], server_plans="dp2")
    o.proc = o.serve()
    assert o.json("status")["calls"]["dialplans_served"] == ["dp2"]
    r = place_call(o.tcp)
    assert r["status"] == 403 and "not served" in r["response"], r
    ev = wait_for(lambda: o.events("--id", "1136"))
    assert ev and ev[0]["fields"]["dialplan"] == "dp1"
    # a server with no associated plan serves every plan, and says so
    o.ok("server", "set", "--dialplans", "")
    assert o.json("status")["calls"]["dialplans_served"] == "all"
    r = place_call(o.tcp, "--bye-after", 100)
    assert r["status"] == 200
    assert o.stop(o.proc) == 0
    o.close()


def test_gateway_nonewcalls_503(tmp_path):
    o = make_store(tmp_path, gateways=[("gw1", "127.0.0.1", "dp1", "--status", "nonewcalls")])
    o.proc = o.serve()
    r = place_call(o.tcp)
    assert r["status"] == 503 and "Retry-After" in r["response"], r
    assert o.stop(o.proc) == 0
    o.close()


def test_max_forwards_zero_483(pbx):
    raw = RawSip(pbx.tcp)
    raw.send(invite_text(uuid.uuid4().hex).replace("Max-Forwards: 70", "Max-Forwards: 0"))
    r = raw.read_until(lambda h: status_of(h) >= 200)
    assert r and status_of(r[0]) == 483
    raw.close()


def test_merged_request_482(tmp_path):
    o = make_store(tmp_path, conf="answer_delay_ms = 1000\n",
                   gateways=[("gw1", "127.0.0.1", "dp1")])
    o.proc = o.serve()
    raw = RawSip(o.tcp)
    cid = uuid.uuid4().hex
    raw.send(invite_text(cid, branch="z9hG4bKpath1"))
    raw.send(invite_text(cid, branch="z9hG4bKpath2"))
    r = raw.read_until(lambda h: status_of(h) == 482)
    assert r, "no 482 for the merged request"
    raw.close()
    assert o.stop(o.proc) == 0
    o.close()


def test_glare_491(pbx):
    raw, cid, tag = _answered_call(pbx.tcp)
    try:
        # a re-INVITE that we never ACK, then another: 500 + Retry-After
        raw.send(in_dialog_text("INVITE", cid, tag, cseq=2,
                                extra="Content-Type: application/sdp\r\n", body=SDP_AVP))
        r = raw.read_until(lambda h: status_of(h) >= 200)
        assert r and status_of(r[0]) == 200
        raw.send(in_dialog_text("INVITE", cid, tag, cseq=3,
                                extra="Content-Type: application/sdp\r\n", body=SDP_AVP))
        r = raw.read_until(lambda h: status_of(h) >= 200 and "CSeq: 3" in h)
        assert r and status_of(r[0]) == 500 and "Retry-After:" in r[0], r
        # a CSeq lower than the last: 500 (out of order)
        raw.send(in_dialog_text("INFO", cid, tag, cseq=1))
        r = raw.read_until(lambda h: status_of(h) >= 200 and "INFO" in h)
        assert r and status_of(r[0]) == 500
        raw.send(in_dialog_text("BYE", cid, tag, cseq=9))
        assert raw.read_until(lambda h: status_of(h) == 200 and "BYE" in h)
    finally:
        raw.close()


def test_invite_flood_bounded_by_caps(tmp_path):
    """10,000 INVITEs as fast as four connections of a trusted gateway take
    them, never ACKing a final response: max_calls are answered, the rest
    503 (from a transaction while the transaction table has room, then
    stateless); the table never passes 4*max_calls+1024, and everything
    ends (answered calls by BYE after 64*T1 without ACK)."""
    import threading
    max_calls, n, conns = 20, 10000, 4
    o = make_store(tmp_path, conf=f"max_calls = {max_calls}\nmax_calls_per_second = 0\n",
                   gateways=[("gw1", "127.0.0.1", "dp1")])
    o.proc = o.serve()
    finals, seen, byes, lock = {}, set(), [0], threading.Lock()

    def reader(raw):
        while True:
            try:
                m = raw.read(30)
            except OSError:  # closed by the test
                return
            if m is None:
                return
            head = m[0]
            if head.startswith("BYE "):
                answer_request(raw, head)
                with lock:
                    byes[0] += 1
                continue
            code = status_of(head)
            cid = header(head, "Call-ID")
            if code >= 200:
                with lock:  # the first final response of each call (2xx come again)
                    if cid not in seen:
                        seen.add(cid)
                        finals[code] = finals.get(code, 0) + 1

    raws = [RawSip(o.tcp) for _ in range(conns)]
    threads = [threading.Thread(target=reader, args=(r,), daemon=True) for r in raws]
    for t in threads:
        t.start()

    def writer(k, raw):
        buf = b""
        for i in range(k, n, conns):
            buf += invite_text(f"flood-{i}", from_tag=f"f{i}").encode()
            if len(buf) > 64000:
                raw.send(buf)
                buf = b""
        raw.send(buf)

    writers = [threading.Thread(target=writer, args=(k, r)) for k, r in enumerate(raws)]
    for t in writers:
        t.start()
    peak = 0
    deadline = time.time() + 120
    while sum(finals.values()) < n and time.time() < deadline:
        st = o.json("status")["calls"]
        peak = max(peak, st["server_transactions"])
        assert st["active"] <= max_calls
        time.sleep(0.2)
    for t in writers:
        t.join()
    assert wait_for(lambda: sum(finals.values()) >= n, timeout=60), finals
    assert finals.get(200, 0) == max_calls, finals
    assert finals.get(503, 0) == n - max_calls, finals
    st = o.json("status")["calls"]
    assert peak <= 4 * max_calls + 1024 and st["server_transactions"] <= 4 * max_calls + 1024
    assert st["stateless_503"] > 0, st
    # the answered calls end without ACK (BYE after 64*T1 = 6.4 s), the
    # 503s' transactions after 64*T1 too: nothing is left
    assert wait_for(lambda: byes[0] == max_calls, timeout=30), byes
    end = wait_for(lambda: (lambda s: s["active"] == 0 and s["server_transactions"] == 0
                            and s["dialogs"] == 0 and s)(o.json("status")["calls"]), timeout=30)
    assert end and end["no_ack"] == max_calls, o.json("status")["calls"]
    for r in raws:
        r.close()
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()
