"""The media engine inside `openum serve`: calls placed by the project's own
gateway side (om-testcall for SIP, over TCP and mutual TLS), media sent by
om-testrtp to the port openum's answer names — plain RTP on an Unsecured
plan, SRTP with an MKI on a Secured plan (RFC 3711, RFC 4568) — and what the
running server counts and reports: packets taken, strangers dropped
(event 1143, R10), SRTP tampering refused (event 1140)."""
import re
import subprocess

import pytest

from calls_util import FQDN, make_store
from conftest import free_port
from flow_util import TracedCall
from media_util import TESTRTP, key_b64
from pki import PKI


def udp_port():
    import socket
    return free_port(kind=socket.SOCK_DGRAM)


class Call(TracedCall):
    """om-testcall in the background with --trace: the answer's media port
    and crypto come from the trace as soon as the 200 arrives."""

    def media(self, timeout=15):
        if not (self.got.wait(timeout) and self.answer):
            out = self.p.stdout.read() if self.p.poll() is not None else ""
            raise AssertionError(f"no answer: {out}\n" + "".join(self.trace)[-6000:])
        port = int(re.search(r"m=audio (\d+)", self.answer).group(1))
        crypto = re.search(r"a=crypto:\d+ (\S+) inline:([A-Za-z0-9+/=]+)(\|[^\r\n]*)?",
                           self.answer)
        return port, crypto

    def finish(self, timeout=60):
        out, _ = self.p.communicate(timeout=timeout)
        assert self.p.returncode == 0, out + "".join(self.trace)[-3000:]
        return out


def send(port, *args):
    p = subprocess.run([TESTRTP, "send", "--to", f"127.0.0.1:{port}", *map(str, args)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def status(o):
    return o.json("status")


def test_rtp_of_a_call_taken_strangers_dropped(tmp_path):
    """Unsecured plan over TCP: the gateway's RTP to the port of openum's
    answer is taken (every packet counted by the server), RTP from another
    address to the same port is dropped and reported (event 1143, the call
    named, the source given)."""
    o = make_store(tmp_path, gateways=[("gw1", "127.0.0.1", "dp1")],
                   mailboxes=[("2001", "dp1")])
    proc = o.serve()
    before = status(o)
    r = udp_port()
    c = Call(["--server", "127.0.0.1", "--port", o.tcp, "--ruri", f"sip:2001@{FQDN}",
              "--bind", "127.0.0.1", "--media-port", r, "--media-addr", "127.0.0.1",
              "--bye-after", 3500])
    port, _ = c.media()
    send(port, "--from", f"127.0.0.1:{r}", "--tone", "697:2000", "--rate", "1")
    send(port, "--from", "127.0.0.2:0", "--tone", "350:400", "--rate", "0")
    c.finish()
    after = status(o)
    calls = after.get("calls", after)
    got = calls["rtp_in"] - before.get("calls", before)["rtp_in"]
    assert got == 100, (before, after)
    ev = [e for e in o.events("--id", "1143")]
    assert ev and ev[-1]["fields"]["from"].startswith("127.0.0.2:"), ev
    assert o.stop(proc) == 0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki"))
    w = type("W", (), {})()
    w.root = p.ca("root", "openum Test Root CA")
    w.server = p.leaf("server", w.root, cn=FQDN, dns=[FQDN])
    w.gw = p.leaf("gwx", w.root, cn="gwx.test.example", dns=["gwx.test.example"])
    return w


def test_srtp_with_mki_through_a_secured_plan(tmp_path, pki):
    """Secured plan over mutual TLS: the gateway offers only an MKI line
    (as SBCs with MKI on by default do); openum answers SRTP with an MKI of
    the same length; the gateway's SRTP with that MKI is taken, and tampered
    packets are refused and counted (event 1140)."""
    o = make_store(tmp_path, plans=(("sec", "secured"),), mailboxes=[("2001", "sec")])
    o.ok("cert", "import", pki.server.both_path, "--no-reload")
    o.ok("cert", "import", pki.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("gateway", "new", "gwx", "--address", "127.0.0.23", "--tls-name", "gwx.test.example",
         "--transport", "tls", "--port", "5061", "--dialplan", "sec")
    o.ok("server", "set", "--dialplans", "sec")  # R9: a secured start
    proc = o.serve()
    assert status(o)["mode"] == "secured"
    before = status(o)
    suite = "AES_CM_128_HMAC_SHA1_80"
    k = key_b64(suite, 7)
    r = udp_port()
    offer = tmp_path / "offer.sdp"
    offer.write_text("v=0\r\no=gw 1 1 IN IP4 127.0.0.23\r\ns=-\r\nc=IN IP4 127.0.0.23\r\n"
                     f"t=0 0\r\nm=audio {r} RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                     "a=rtpmap:101 telephone-event/8000\r\n"
                     f"a=crypto:1 {suite} inline:{k}|2^31|1:1\r\na=sendrecv\r\n")
    c = Call(["--server", "127.0.0.1", "--port", o.tls, "--ruri", f"sip:2001@{FQDN}",
              "--bind", "127.0.0.23", "--tls", "--cert", pki.gw.cert_path, "--key",
              pki.gw.key_path, "--ca", pki.root.cert_path, "--tls-name", FQDN, "--sdp", offer,
              "--bye-after", 3500])
    port, crypto = c.media()
    assert crypto and crypto.group(1) == suite and crypto.group(3) == "|1:1", c.answer
    send(port, "--from", f"127.0.0.23:{r}", "--tone", "697:2000", "--rate", "1",
         "--suite", suite, "--key", k, "--mki", "01", "--tamper", "3,4,5")
    c.finish()
    after = status(o)
    b, a = before.get("calls", before), after.get("calls", after)
    assert a["rtp_in"] - b["rtp_in"] == 100, (before, after)
    assert a["srtp_auth_failures"] - b["srtp_auth_failures"] == 3
    ev = o.events("--id", "1140")
    assert sum(int(e["fields"]["auth_failures"]) for e in ev) == 3, ev
    assert o.stop(proc) == 0
