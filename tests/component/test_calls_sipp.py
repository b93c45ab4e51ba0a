"""sipp (a third-party SIP implementation) as the gateway, over TCP, against
the real `openum serve`: a call with RTP from a WAV (rtp_stream) and BYE
from sipp; the same call hung up by openum (no more RTP: rtp_timeout);
CANCEL before the answer; hold and resume with re-INVITEs; a delayed offer;
and INVITEs to the pilot in each routing style of R11, landing on the right
mailbox in `openum calls`."""
import os
import socket
import subprocess
import time

import pytest

from calls_util import FQDN, calls, make_store, wait_calls
from conftest import free_port
from sip_util import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SIPP_IP = "127.0.0.41"
SIPP_IP2 = "127.0.0.42"  # a gateway whose Diversion chain names the mailbox at the bottom



def tone_wav(d):
    """3 s of 697 Hz as G.711 µ-law in a WAV container (sipp's rtp_stream)."""
    path = os.path.join(str(d), "tone.wav")
    if not os.path.exists(path):
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", path, "synth", "1",
                        "sine", "697"], check=True, capture_output=True)
    return path


def sipp(o, scen, tmp, fields=None, bg=False, timeout=60, ip=SIPP_IP):
    """Runs a scenario once from ip (a trusted gateway's address). A field
    that fills header lines must not be empty (an empty line would end the
    header section)."""
    tone_wav(tmp)
    text = open(os.path.join(HERE, "sipp", scen)).read()
    for i, v in enumerate(fields or []):
        text = text.replace(f"[field{i}]", str(v))
    sf = os.path.join(str(tmp), f"{scen}.{time.time_ns()}.xml")
    with open(sf, "w") as f:
        f.write(text)
    cmd = ["sipp", f"127.0.0.1:{o.tcp}", "-sf", sf, "-m", "1", "-t", "t1", "-i", ip,
           "-p", str(free_port(ip)), "-mp", str(free_port(ip, socket.SOCK_DGRAM) & ~1),
           "-nostdin", "-timeout", str(timeout), "-timeout_error", "-max_recv_loops", "1000",
           "-trace_err", "-error_file", sf + ".err"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         cwd=str(tmp))
    if bg:
        return p
    return finish_sipp(p, sf, timeout)


def finish_sipp(p, sf=None, timeout=60):
    out, _ = p.communicate(timeout=timeout + 30)
    err = ""
    if sf and os.path.exists(sf + ".err"):
        err = open(sf + ".err").read()
    return p.returncode, out[-3000:] + err[-3000:]


@pytest.fixture(scope="module")
def pbx(tmp_path_factory):
    o = make_store(tmp_path_factory.mktemp("sipp"), conf="rtp_timeout = 5\n",
                   gateways=[("sipp", SIPP_IP, "dp1"),
                             ("sipp-bottom", SIPP_IP2, "dp1", "--diversion", "bottom")],
                   mailboxes=[(e, "dp1") for e in ("2001", "2002", "2003", "2004", "2005")])
    o.module_scoped = True
    o.proc = o.serve()
    yield o
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


def media(o):
    return o.json("status")["calls"]


def test_sipp_call_with_rtp_bye_from_sipp(pbx, tmp_path):
    before = media(pbx)
    rc, out = sipp(pbx, "calls_uac.xml", tmp_path, ["X-Test: bye-from-sipp", f"sip:2002@{FQDN}", 2500])
    assert rc == 0, out
    after = wait_for(lambda: media(pbx)["active"] == 0 and media(pbx))
    # about a second of 20 ms packets reached the media engine
    assert after["rtp_in"] - before["rtp_in"] >= 40, (before, after)
    assert after["ended_by_gateway"] == before["ended_by_gateway"] + 1


def test_sipp_call_hung_up_by_openum(pbx, tmp_path):
    """sipp sends 1 s of RTP and then nothing: after rtp_timeout (5 s)
    openum ends the call with its BYE, which sipp answers."""
    before = media(pbx)
    rc, out = sipp(pbx, "calls_uac.xml", tmp_path, ["X-Test: bye-from-openum", f"sip:2002@{FQDN}", 30000])
    assert rc == 0, out
    after = wait_for(lambda: media(pbx)["active"] == 0 and media(pbx))
    assert after["ended_by_us"] == before["ended_by_us"] + 1, (before, after)
    assert after["ended_by_gateway"] == before["ended_by_gateway"]
    assert wait_for(lambda: pbx.events("--id", "1142"))


def test_sipp_cancel_before_answer(tmp_path):
    o = make_store(tmp_path, conf="answer_delay_ms = 3000\n", gateways=[("sipp", SIPP_IP, "dp1")])
    o.proc = o.serve()
    rc, out = sipp(o, "calls_cancel.xml", tmp_path)
    assert rc == 0, out
    assert media(o)["canceled"] == 1
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


def test_sipp_hold_and_resume(pbx, tmp_path):
    before = media(pbx)
    rc, out = sipp(pbx, "calls_hold.xml", tmp_path)
    assert rc == 0, out
    after = wait_for(lambda: media(pbx)["active"] == 0 and media(pbx))
    assert after["ended_by_gateway"] == before["ended_by_gateway"] + 1


def test_sipp_delayed_offer(pbx, tmp_path):
    before = media(pbx)
    rc, out = sipp(pbx, "calls_delayed.xml", tmp_path)
    assert rc == 0, out
    after = wait_for(lambda: media(pbx)["active"] == 0 and media(pbx))
    assert after["rtp_in"] - before["rtp_in"] >= 40, (before, after)


# (name, Request-URI, extra header lines, expected outcome, mailbox, reason, decided_by)
STYLES = [
    ("rfc4458", f"sip:voicemail@{FQDN};target=sip:2001%40pbx.example.com;cause=486", "",
     "deposit", "2001", "busy", "target"),
    ("cucm-history-info", f"sip:8000@{FQDN}",
     "History-Info: <sip:2002@cucm.example.com?Reason=SIP%3Bcause%3D408>;index=1,"
     f" <sip:8000@{FQDN}>;index=1.1", "deposit", "2002", "unavailable", "history-info"),
    ("3gpp-cdiv", f"sip:+15550108000@{FQDN};user=phone",
     "History-Info: <sip:+15550102003@ims.example.net;user=phone>;index=1,"
     " <sip:+15550108000@ims.example.net;user=phone;cause=302>;index=1.1;mp=1",
     "deposit", "2003", "unconditional", "history-info"),
    ("diversion-chain", f"sip:8000@{FQDN}",
     "Diversion: <sip:2004@pbx.example.com>;reason=user-busy;counter=2,"
     " <sip:2001@pbx.example.com>;reason=no-answer;counter=1",
     "deposit", "2004", "busy", "diversion"),
    ("p-called-party-id", f"sip:um@{FQDN}", "P-Called-Party-ID: <tel:+1-555-010-2005>",
     "deposit", "2005", "unavailable", "p-called-party-id"),
    ("request-uri", f"sip:2003@{FQDN}", "", "deposit", "2003", "unavailable", "request-uri"),
    ("unknown", f"sip:8000@{FQDN}", "Diversion: <sip:3999@pbx.example.com>;reason=user-busy",
     "unknown-mailbox", "3999", "busy", "diversion"),
    ("pilot", f"sip:8000@{FQDN}", "", "ask-extension", "", "unavailable", "request-uri"),
    # History-Info: a Reason not escaped, in lower case (the request to
    # entry 1 got 486: entry 1 is the mailbox)
    ("history-info-reason-unescaped", f"sip:8000@{FQDN}",
     "History-Info: <sip:2004@pbx.example.com?reason=SIP;cause=486>;index=1,"
     f" <sip:8000@{FQDN}>;index=1.1", "deposit", "2004", "busy", "history-info"),
    # History-Info: an RFC 4458 cause on our pilot's entry without mp=: the
    # mailbox is its parent (1.1 -> 1)
    ("history-info-cause-parent", f"sip:8000@{FQDN}",
     "History-Info: <sip:2005@ims.example.net>;index=1,"
     f" <sip:8000@{FQDN};cause=486>;index=1.1", "deposit", "2005", "busy", "history-info"),
    # Diversion in two header lines, the gateway set to --diversion bottom:
    # the originally called party (the last value) is the mailbox
    ("diversion-bottom", f"sip:8000@{FQDN}",
     "Diversion: <sip:2002@pbx.example.com>;reason=no-answer;counter=2\r\n"
     "Diversion: <sip:2001@pbx.example.com>;reason=user-busy;counter=1",
     "deposit", "2001", "busy", "diversion"),
]
BOTTOM = {"diversion-bottom"}  # sent from the --diversion bottom gateway


def test_sipp_routing_styles_land_on_the_right_mailbox(pbx, tmp_path):
    procs = []
    for i, (name, ruri, hdr, *_) in enumerate(STYLES):
        # the style's name in a header of our own finds the call again
        extra = (hdr + "\r\n" if hdr else "") + f"X-Style: {name}"
        procs.append(sipp(pbx, "calls_uac.xml", tmp_path, [extra, ruri, 8000], bg=True,
                          timeout=60, ip=SIPP_IP2 if name in BOTTOM else SIPP_IP))
    try:
        # every call as `openum calls` shows it while it is up (a call flow
        # may end a call early: each is kept from the first time it is seen)
        seen = {}

        def all_seen():
            for c in calls(pbx):
                seen.setdefault(c["call_id"], c)
            return len(seen) >= len(STYLES)
        assert wait_for(all_seen, timeout=30), seen
        by_mailbox = {}
        for c in seen.values():
            key = (c["outcome"], c["mailbox"], c["reason"], c["decided_by"])
            by_mailbox[key] = by_mailbox.get(key, 0) + 1
        for name, _, _, outcome, mb, reason, by in STYLES:
            key = (outcome, mb, reason, by)
            assert by_mailbox.get(key, 0) >= 1, (name, key, by_mailbox)
            by_mailbox[key] -= 1
    finally:
        for p in procs:
            rc, out = finish_sipp(p)
            assert rc == 0, out
