"""Every cell of R3's table through a live `openum serve`: each dial-plan
mode (Unsecured, SIPSecured, Secured) x each transport (TCP, mutual TLS) x
each kind of offer (RTP/AVP, RTP/AVP with a=crypto, RTP/SAVP with usable
keys, RTP/SAVP without a=crypto or with a suite openum does not know, no
offer at all), with the status the table names, the media of the answer
(plain RTP or SRTP, never less secure than offered) and, for every refusal,
event 1132 naming the plan, its mode, the transport, the offer and the
reason. The gateway side is om-testcall (the project's own UAC)."""
import re
import time

import pytest

from calls_util import FQDN, SDP_AVP, place_call
from sip_util import wait_for
from test_calls_tls import AVP_CRYPTO, GW, SAVP, pki, secured_store  # noqa: F401 (fixture)

SAVP_NOCRYPTO = SAVP.split("a=crypto:")[0]
SAVP_UNKNOWN = SAVP.replace("AES_CM_128_HMAC_SHA1_80", "AES_CM_512_HMAC_SHA1_99")
OFFERS = {"avp": SDP_AVP, "avp+crypto": AVP_CRYPTO, "savp": SAVP,
          "savp-no-crypto": SAVP_NOCRYPTO, "savp-unknown-suite": SAVP_UNKNOWN, "none": None}

# The gateway of each plan: TLS gateways u (Unsecured), s (SIPSecured),
# x (Secured); over TCP, the TCP gateway of the Unsecured plan (127.0.0.24)
# and the TLS gateways of the other plans calling the TCP port.
PLAN = {"u": ("unsec", "Unsecured"), "s": ("sipsec", "SIPSecured"), "x": ("sec", "Secured")}

# (plan, transport, offer) -> (status, answer profile, SRTP, 1132 reason)
TABLE = [
    # Unsecured over TCP: RTP/AVP answered; a=crypto in RTP/AVP ignored
    # (plain answer, logged); RTP/SAVP -> 488 (keys would cross in clear)
    ("u", "tcp", "avp", 200, "RTP/AVP", False, None),
    ("u", "tcp", "avp+crypto", 200, "RTP/AVP", False, None),
    ("u", "tcp", "savp", 488, None, None, "srtp_over_tcp"),
    ("u", "tcp", "savp-no-crypto", 488, None, None, "srtp_over_tcp"),
    ("u", "tcp", "none", 200, "RTP/AVP", False, None),
    # Unsecured over TLS: SRTP if offered, else RTP
    ("u", "tls", "avp", 200, "RTP/AVP", False, None),
    ("u", "tls", "avp+crypto", 200, "RTP/AVP", True, None),
    ("u", "tls", "savp", 200, "RTP/SAVP", True, None),
    ("u", "tls", "savp-no-crypto", 488, None, None, "no_crypto"),
    ("u", "tls", "none", 200, "RTP/AVP", False, None),
    # SIPSecured over TCP: 403, whatever the offer
    ("s", "tcp", "avp", 403, None, None, "plan_requires_tls"),
    ("s", "tcp", "savp", 403, None, None, "plan_requires_tls"),
    ("s", "tcp", "none", 403, None, None, "plan_requires_tls"),
    # SIPSecured over TLS: RTP; an RTP/SAVP offer answered with SRTP
    ("s", "tls", "avp", 200, "RTP/AVP", False, None),
    ("s", "tls", "savp", 200, "RTP/SAVP", True, None),
    ("s", "tls", "savp-unknown-suite", 488, None, None, "crypto_unknown_suite"),
    ("s", "tls", "none", 200, "RTP/AVP", False, None),
    # Secured over TCP: 403
    ("x", "tcp", "avp", 403, None, None, "plan_requires_tls"),
    ("x", "tcp", "savp", 403, None, None, "plan_requires_tls"),
    ("x", "tcp", "none", 403, None, None, "plan_requires_tls"),
    # Secured over TLS: SRTP only; no usable crypto -> 488
    ("x", "tls", "savp", 200, "RTP/SAVP", True, None),
    ("x", "tls", "avp", 488, None, None, "srtp_required"),
    ("x", "tls", "avp+crypto", 488, None, None, "srtp_required"),
    ("x", "tls", "savp-no-crypto", 488, None, None, "no_crypto"),
    ("x", "tls", "savp-unknown-suite", 488, None, None, "crypto_unknown_suite"),
    ("x", "tls", "none", 200, "RTP/SAVP", True, None),
]



@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):  # noqa: F811
    o = secured_store(tmp_path_factory.mktemp("r3table"), pki)
    o.module_scoped = True
    o.proc = o.serve()
    yield o
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


def answer_proto(sdp):
    m = re.search(r"m=audio \d+ (\S+)", sdp)
    return m.group(1) if m else None


_last_refusal = {}


@pytest.mark.parametrize("k,tr,offer,status,proto,srtp,reason", TABLE,
                         ids=[f"{p}-{t}-{o}" for p, t, o, *_ in TABLE])
def test_r3_cell(srv, pki, tmp_path, k, tr, offer, status, proto, srtp, reason):  # noqa: F811
    plan, mode = PLAN[k]
    args = ["--offer", "none"] if offer == "none" else ["--sdp", tmp_path / "offer.sdp"]
    if offer != "none":
        (tmp_path / "offer.sdp").write_text(OFFERS[offer])
    if status == 200:
        args += ["--bye-after", 100]
    if tr == "tls":
        addr = GW[k][0]
        port, tls = srv.tls, (pki.gw[k], pki.root)
    else:
        addr = "127.0.0.24" if k == "u" else GW[k][0]
        port, tls = srv.tcp, None
    if reason:
        # event 1132 is rate limited per gateway (events_interval = 1 s
        # here): one refusal per gateway per interval, so that each is seen
        since = _last_refusal.get(addr, 0) + 1.2 - time.time()
        if since > 0:
            time.sleep(since)
        _last_refusal[addr] = time.time()
    r = place_call(port, *args, bind=addr, tls=tls)
    assert r["status"] == status, r
    if status == 200:
        assert r["bye_status"] == 200, r
        sdp = r["answer_sdp"]
        assert answer_proto(sdp) == proto, sdp
        assert ("a=crypto:" in sdp) == srtp, r
        if offer == "none":  # om-testcall took our offer's keys (or none)
            assert bool(r["srtp"]) == srtp, r
        if tr == "tcp":
            assert "a=crypto" not in sdp  # keys never cross in clear
        if offer == "avp+crypto" and tr == "tcp":
            log = wait_for(lambda: [l for l in srv.log().splitlines()
                                    if r["call_id"] in l and "a=crypto" in l and "ignored" in l])
            assert log, srv.log()[-2000:]
        return
    ev = wait_for(lambda: [e for e in srv.events("--id", "1132")
                           if e["fields"].get("call") == r["call_id"]])
    assert ev, f"no event 1132 for {r['call_id']}"
    f = ev[0]["fields"]
    assert f["dialplan"] == plan and f["security"] == mode, f
    assert f["transport"] == tr and f["status"] == str(status), f
    assert f["reason"] == reason, f
    assert f["gateway"] == ("gwt" if addr == "127.0.0.24" else "gw" + k), f
    if offer != "none":
        want = "RTP/SAVP" if offer.startswith("savp") else "RTP/AVP"
        assert want in f["offer"], f
    if status == 488:
        assert "Warning: 305" in r["response"], r["response"]


def test_server_up_after_the_table(srv):
    st = srv.json("status")["calls"]
    assert st["active"] == 0 and st["dialogs"] == 0, st
    assert st["refused_mode"] >= len([c for c in TABLE if c[3] != 200]), st


def test_sips_request_uri_over_tls_only(srv, pki):  # noqa: F811
    """A sips: Request-URI (RFC 3261 §19.1, §26.2.2) is taken over mutual
    TLS — our Contact is then sips: too, with our FQDN, never an IP — and
    refused over TCP with 416 (the hop would not be secure)."""
    ruri = f"sips:8000@{FQDN}"
    r = place_call(srv.tls, "--offer", "savp", "--bye-after", 100, ruri=ruri, bind=GW["x"][0],
                   tls=(pki.gw["x"], pki.root))
    assert r["status"] == 200 and r["bye_status"] == 200, r
    assert re.search(rf"Contact: <sips:{re.escape(FQDN)}:{srv.tls}(;transport=tls)?>",
                     r["response"]), r["response"]
    r = place_call(srv.tcp, "--offer", "avp", ruri=ruri, bind="127.0.0.24")
    assert r["status"] == 416, r
