"""`openum test-connectivity` against the real `openum serve` (and, where
openum cannot be made to misbehave, against a fake server written here):
each failure is named at the right step, with its reason, and the JSON
carries every step."""
import json
import re
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from calls_util import FQDN, make_store
from conftest import BIN, free_port
from pki import DAY, NOW, PKI
from sip_util import wait_for

STEPS = ["resolve", "connect", "tls", "options", "invite", "media", "dtmf", "bye"]

# The gateways: (address, TLS name, plan).
GW = {"u": ("127.0.0.31", "gwu.test.example", "unsec"),
      "x": ("127.0.0.33", "gwx.test.example", "sec")}
TCP_GW = "127.0.0.32"  # a gateway of the Unsecured plan over TCP


class W:
    pass



@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    w = W()
    p = PKI(tmp_path_factory.mktemp("pki"))
    w.dir = p.dir
    w.root = p.ca("root", "openum Test Root CA")
    w.server = p.leaf("server", w.root, cn=FQDN, dns=[FQDN])
    w.gw = {k: p.leaf("gw" + k, w.root, cn=v[1], dns=[v[1]]) for k, v in GW.items()}
    # Same name as gateway x, from a root the server does not trust.
    w.rogue_root = p.ca("rogue-root", "Rogue Root CA")
    w.rogue = p.leaf("rogue", w.rogue_root, cn=GW["x"][1], dns=[GW["x"][1]])
    w.expired = p.leaf("expired", w.root, cn=FQDN, dns=[FQDN], not_before=NOW - 40 * DAY,
                       not_after=NOW - 2 * DAY)
    return w


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    o = make_store(tmp_path_factory.mktemp("conn"),
                   plans=(("unsec", "unsecured"), ("sec", "secured")),
                   mailboxes=[("2001", "unsec"), ("3001", "sec")])
    o.ok("cert", "import", pki.server.both_path, "--no-reload")
    o.ok("cert", "import", pki.root.cert_path, "--trusted", "--yes", "--no-reload")
    for k, (addr, name, plan) in GW.items():
        o.ok("gateway", "new", "gw" + k, "--address", addr, "--tls-name", name, "--transport",
             "tls", "--dialplan", plan)
    o.ok("gateway", "new", "gwt", "--address", TCP_GW, "--dialplan", "unsec")
    o.ok("server", "set", "--dialplans", "unsec,sec")
    o.module_scoped = True
    o.proc = o.serve()
    assert o.json("status")["mode"] == "secured"
    yield o
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


def tc(*args, env=None, timeout=90):
    """openum test-connectivity --json: (exit status, the JSON, stdout+stderr)."""
    e = dict(os.environ)
    e.pop("OPENUM_DATA", None)
    e.update(env or {})
    p = subprocess.run([BIN, "test-connectivity", "--json", *[str(a) for a in args]],
                       capture_output=True, text=True, timeout=timeout, env=e)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"no JSON ({p.returncode}): {p.stdout}\n{p.stderr}")
    assert [s["name"] for s in doc["steps"]] == STEPS, doc
    return p.returncode, doc, p.stdout + p.stderr


def step(doc, name):
    return next(s for s in doc["steps"] if s["name"] == name)


def secured_args(o, w, k, cert=None, tls_name=FQDN, port=None):
    leaf = cert or w.gw[k]
    return ["--server", f"127.0.0.1:{port or o.tls}", "--secured", "--cert", leaf.cert_path,
            "--key", leaf.key_path, "--ca", w.root.cert_path, "--tls-name", tls_name,
            "--bind", GW[k][0], "--timeout", 5]


def assert_failed_at(rc, doc, name):
    assert rc == 1, doc
    assert doc["result"] == "failed" and doc["failed_step"] == name, doc
    i = STEPS.index(name)
    for s in doc["steps"][:i]:
        assert s["result"] in ("ok", "skipped"), doc
    f = doc["steps"][i]
    assert f["result"] == "failed" and f["reason"] and f["action"], f
    for s in doc["steps"][i + 1:]:
        # After a failure nothing runs, except hanging up a call that was answered.
        assert s["result"] == "not_reached" or s["name"] == "bye", doc
    return f


# ------------------------------------------------------------ passes

def server_sha1(leaf):
    from cryptography.hazmat.primitives import hashes
    return leaf.cert.fingerprint(hashes.SHA1()).hex().upper()


def rtp_in(o):
    return o.json("status")["calls"]["rtp_in"]


@pytest.mark.parametrize("suite", [None, "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_256_GCM"])
def test_secured_openum_passes(srv, pki, suite):
    """Mutual TLS + SRTP to the diagnostic extension: every step passes, the
    facts are the server's own, and the server heard what we said."""
    before = rtp_in(srv)
    args = ["--suite", suite] if suite else []
    rc, doc, out = tc(*secured_args(srv, pki, "x"), "--media-secured", "--dtmf", "19*#",
                      *args)
    assert rc == 0 and doc["result"] == "passed" and doc["failed_step"] is None, doc
    assert doc["secured"] is True and doc["media_secured"] is True, doc
    assert doc["extension"] == "openum-test" and doc["deliver"] is False, doc
    for s in doc["steps"]:
        assert s["result"] == "ok" and not s["reason"] and not s["action"], s
    # Each digit was acknowledged by the server's diagnostic extension.
    d = step(doc, "dtmf")["detail"]
    assert d["digits"] == "19*#" and d["acknowledged"] == "19*#", d
    assert d["method"] == "rfc4733", d
    tls = step(doc, "tls")["detail"]
    assert tls["name_ok"] is True and tls["protocol"] in ("TLSv1.2", "TLSv1.3"), tls
    assert tls["server_sha1"] == server_sha1(pki.server), tls
    assert f"CN={FQDN}" in tls["server_subject"], tls
    assert "openum Test Root CA" in tls["server_issuer"], tls
    inv = step(doc, "invite")["detail"]
    assert inv["status"] == 200 and inv["signalling"] == "tls" and inv["media"] == "SRTP", inv
    # The mode the server applied, from its 200 (not inferred).
    assert inv["security_mode"] == "Secured" and "security_mode_source" not in inv, inv
    if suite:
        assert inv["suite"] == suite, inv
    m = step(doc, "media")["detail"]
    assert m["media"] == "SRTP" and m["srtp_auth_failures"] == 0, m
    assert m["packets_received"] > 0 and m["voiced_ms"] >= 100, m
    assert m["said_ms"] >= 1400 and m["packets_sent"] >= 70, m
    # The server authenticated what we sent: its counters moved by about
    # that much (SRTP that did not authenticate is not counted).
    assert wait_for(lambda: rtp_in(srv) - before >= m["said_ms"] // 20 * 8 // 10), \
        (before, rtp_in(srv), m)


def test_unsecured_plan_passes_over_tcp(srv, pki):
    """A gateway of an Unsecured plan: --secured:false, plain TCP and RTP."""
    rc, doc, out = tc("--server", f"127.0.0.1:{srv.tcp}", "--secured:false", "--bind",
                      TCP_GW, "--timeout", 5, "--dtmf", "42")
    assert rc == 0 and doc["result"] == "passed", doc
    assert doc["secured"] is False and doc["media_secured"] is False, doc
    assert step(doc, "tls")["result"] == "skipped"
    assert step(doc, "dtmf")["detail"]["acknowledged"] == "42"
    for name in ("resolve", "connect", "options", "invite", "media", "dtmf", "bye"):
        assert step(doc, name)["result"] == "ok", doc
    assert step(doc, "connect")["detail"]["transport"] == "tcp"
    inv = step(doc, "invite")["detail"]
    assert inv["media"] == "RTP" and inv["signalling"] == "tcp", inv
    assert inv["security_mode"] == "Unsecured" and "security_mode_source" not in inv, inv
    m = step(doc, "media")["detail"]
    assert m["media"] == "RTP" and m["voiced_ms"] >= 100, m


def test_people_output_names_every_step(srv, pki):
    """Without --json: one line a step, and the verdict last."""
    p = subprocess.run([BIN, "test-connectivity", *map(str, secured_args(srv, pki, "x")),
                        "--media-secured"], capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    for name in STEPS:
        assert any(l.split()[1:2] == [name] for l in lines[1:]), (name, p.stdout)
    assert lines[-1] == "passed: every step", p.stdout
    # the media line says whose audio each figure is: what was heard from the
    # server (greeting) and what the caller sent, not a bare "N s of audio"
    media = next(l for l in lines[1:] if l.split()[1:2] == ["media"])
    assert re.search(r"received \d+ SRTP packets", media), media
    assert re.search(r"[0-9.]+ s of the server's audio \(its greeting", media), media
    assert re.search(r"[0-9.]+ s of it voiced \(not silence\)", media), media
    assert re.search(r"sent [0-9.]+ s of the caller's audio", media), media


def messages(o, ext):
    return o.json("mailbox", "messages", ext)


def test_a_test_call_to_a_mailbox_is_delivered_only_with_deliver(srv, pki, tmp_path):
    """--extension records a message that never reaches the mailbox;
    with --deliver it does, and its audio is what the test said."""
    import wave
    import numpy as np
    n0 = len(messages(srv, "3001"))
    rc, doc, out = tc(*secured_args(srv, pki, "x"), "--media-secured", "--extension", "3001")
    assert rc == 0, doc
    assert step(doc, "media")["detail"]["said_ms"] >= 1400
    rc, doc, out = tc(*secured_args(srv, pki, "x"), "--media-secured", "--extension", "3001",
                      "--deliver")
    assert rc == 0 and doc["deliver"] is True, doc
    got = wait_for(lambda: len(messages(srv, "3001")) > n0 and messages(srv, "3001"))
    assert got and len(got) == n0 + 1, got  # the first call left nothing
    new = max(got, key=lambda m: m["time_ms"])
    f = tmp_path / "m.wav"
    srv.ok("mailbox", "messages", "3001", "--export", new["id"], "--out", str(f))
    with wave.open(str(f)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
        rate = w.getframerate()
    # The 1.5 s 440 Hz tone the test says by default.
    spec = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spec) * rate / len(x) - 440) < 10, np.argmax(spec) * rate / len(x)
    assert 1.2 <= len(x) / rate <= 4, len(x) / rate


def test_a_greeting_longer_than_timeout_is_heard_out(srv, pki, tmp_path):
    """--timeout bounds the wait for the first packet, not the greeting: a
    mailbox's own 4 s greeting with --timeout 2 is heard to its end, and
    what the test says after it is the message."""
    import wave
    import numpy as np
    g = tmp_path / "greeting.wav"
    t = np.arange(4 * 8000) / 8000.0
    with wave.open(str(g), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes())
    srv.ok("mailbox", "new", "3002", "--dialplan", "sec", "--name", "Long Greeting")
    srv.ok("mailbox", "set", "3002", "--greeting", f"unavailable={g}")
    rc, doc, out = tc(*secured_args(srv, pki, "x"), "--media-secured", "--extension", "3002",
                      "--deliver", "--timeout", 2)
    assert rc == 0, doc
    m = step(doc, "media")["detail"]
    assert m["greeting_ms"] >= 3800, m
    got = wait_for(lambda: messages(srv, "3002"))
    assert got and len(got) == 1, got
    f = tmp_path / "m.wav"
    srv.ok("mailbox", "messages", "3002", "--export", got[0]["id"], "--out", str(f))
    with wave.open(str(f)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    spec = np.abs(np.fft.rfft(x))
    # The test's 440 Hz tone, none of the 300 Hz greeting.
    assert abs(np.argmax(spec) * 8000 / len(x) - 440) < 10
    assert spec[int(300 * len(x) / 8000)] < spec.max() / 20


# ------------------------------------------------------------ failures, each at its step

def test_server_down_fails_at_connect():
    port = free_port()
    rc, doc, out = tc("--server", f"127.0.0.1:{port}", "--timeout", 3)
    f = assert_failed_at(rc, doc, "connect")
    assert "connection refused" in f["reason"] and str(port) in f["reason"], f
    assert step(doc, "resolve")["detail"]["address"] == "127.0.0.1"


def test_unresolvable_name_fails_at_resolve():
    rc, doc, out = tc("--server", "no-such-host.invalid", "--timeout", 3)
    f = assert_failed_at(rc, doc, "resolve")
    assert "no-such-host.invalid" in f["reason"], f


def test_rogue_certificate_fails_at_tls(srv, pki):
    rc, doc, out = tc(*secured_args(srv, pki, "x", cert=pki.rogue), "--media-secured")
    f = assert_failed_at(rc, doc, "tls")
    assert "refused this gateway's certificate" in f["reason"], f
    assert "1130" in f["action"], f
    # What the handshake showed of the server is there all the same.
    assert f"CN={FQDN}" in f["detail"]["server_subject"], f
    ev = wait_for(lambda: srv.events("--id", "1130"))
    assert ev, "the server raised no 1130"


def test_server_name_not_matching_tls_name_fails_at_tls(srv, pki):
    rc, doc, out = tc(*secured_args(srv, pki, "x", tls_name="other.test.example"),
                      "--media-secured")
    f = assert_failed_at(rc, doc, "tls")
    assert "does not carry the name other.test.example" in f["reason"], f
    assert FQDN in f["reason"]
    assert f["detail"]["name_ok"] is False and f["detail"]["protocol"].startswith("TLSv1.")


def test_untrusted_server_certificate_fails_at_tls(srv, pki):
    args = secured_args(srv, pki, "x")
    args[args.index("--ca") + 1] = pki.rogue_root.cert_path
    rc, doc, out = tc(*args, "--media-secured")
    f = assert_failed_at(rc, doc, "tls")
    assert "not trusted here" in f["reason"] and "--ca" in f["action"], f


def test_secured_plan_without_media_secured_fails_at_invite_488(srv, pki):
    rc, doc, out = tc(*secured_args(srv, pki, "x"), "--extension", "3001")
    f = assert_failed_at(rc, doc, "invite")
    assert f["detail"]["status"] == 488, f
    assert "--media-secured" in f["action"], f
    assert step(doc, "tls")["result"] == "ok" and step(doc, "options")["result"] == "ok"


def test_plain_tcp_to_a_secured_plan_fails_with_403(srv, pki):
    rc, doc, out = tc("--server", f"127.0.0.1:{srv.tcp}", "--bind", GW["x"][0], "--timeout", 5)
    f = assert_failed_at(rc, doc, "options")
    assert f["detail"]["status"] == 403 and "--secured" in f["action"], f
    assert step(doc, "tls")["result"] == "skipped"
    ev = wait_for(lambda: [e for e in srv.events("--id", "1132")
                           if "127.0.0.33" in json.dumps(e)])
    assert ev, srv.events("--id", "1132")


def test_srtp_that_does_not_authenticate_fails_at_media(srv, pki):
    """The client's test hook alters the server's SRTP key: the server's
    packets come and none authenticates. The call is still hung up."""
    rc, doc, out = tc(*secured_args(srv, pki, "x"), "--media-secured",
                      env={"OPENUM_TEST_HOOK": "srtp-bad-key"})
    f = assert_failed_at(rc, doc, "media")
    assert "none authenticated" in f["reason"], f
    assert f["detail"]["srtp_auth_failures"] > 0, f
    assert f["detail"]["voiced_ms"] == 0 and f["detail"]["audio_ms"] == 0, f
    assert step(doc, "invite")["detail"]["media"] == "SRTP"
    assert step(doc, "bye")["result"] == "ok", doc
    # Without the hook the same call passes (test_secured_openum_passes).


def test_untrusted_source_address_fails_at_options(srv):
    rc, doc, out = tc("--server", f"127.0.0.1:{srv.tcp}", "--bind", "127.0.0.39",
                      "--timeout", 3)
    f = assert_failed_at(rc, doc, "options")
    assert "1131" in f["action"] and "127.0.0.39" in f["action"], f


# ------------------------------------------------------------ fake servers

class FakeTlsServer:
    """A TLS listener presenting `leaf` (which openum would never serve:
    expired), requiring a client certificate; it answers nothing."""

    def __init__(self, leaf, ca):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(leaf.cert_path, leaf.key_path)
        self.ctx.load_verify_locations(ca.cert_path)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(4)
        self.port = self.s.getsockname()[1]
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            try:
                c.settimeout(5)
                t = self.ctx.wrap_socket(c, server_side=True)
                t.recv(4096)
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    def close(self):
        self.s.close()


def test_expired_server_certificate_fails_at_tls(pki):
    fake = FakeTlsServer(pki.expired, pki.root)
    try:
        rc, doc, out = tc("--server", f"127.0.0.1:{fake.port}", "--secured", "--cert",
                          pki.gw["x"].cert_path, "--key", pki.gw["x"].key_path, "--ca",
                          pki.root.cert_path, "--tls-name", FQDN, "--timeout", 5)
    finally:
        fake.close()
    f = assert_failed_at(rc, doc, "tls")
    assert "expired" in f["reason"] and "renew" in f["action"], f
    assert f["detail"]["server_not_after"] < NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), f


class SilentUas:
    """A SIP server over TCP that answers OPTIONS, INVITE (200 with SDP) and
    BYE — and never sends a media packet."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(4)
        self.port = self.s.getsockname()[1]
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.got = []
        threading.Thread(target=self.run, daemon=True).start()

    def reply(self, c, head, status, body=""):
        keep = [l for l in head.split("\r\n")[1:]
                if l.split(":")[0].lower() in ("via", "from", "call-id", "cseq")]
        to = next(l for l in head.split("\r\n") if l.lower().startswith("to:"))
        if "tag=" not in to:
            to += ";tag=silent1"
        hdr = "\r\n".join(keep + [to])
        extra = "Contact: <sip:fake@127.0.0.1;transport=tcp>\r\n" if "INVITE" in head.split(
            "\r\n")[0] else ""
        if body:
            extra += "Content-Type: application/sdp\r\n"
        c.sendall((f"SIP/2.0 {status} OK\r\n{hdr}\r\n{extra}Content-Length: {len(body)}\r\n"
                   f"\r\n{body}").encode())

    def run(self):
        try:
            c, _ = self.s.accept()
        except OSError:
            return
        buf = b""
        port = self.rtp.getsockname()[1]
        sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
               "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
        c.settimeout(60)
        while True:
            try:
                chunk = c.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                n = 0
                for l in head.split(b"\r\n"):
                    if l.lower().startswith(b"content-length:"):
                        n = int(l.split(b":")[1])
                if len(rest) < n:
                    break
                buf = rest[n:]
                h = head.decode()
                method = h.split(" ")[0]
                self.got.append(method)
                if method == "INVITE":
                    self.reply(c, h, 200, sdp)
                elif method in ("OPTIONS", "BYE"):
                    self.reply(c, h, 200)

    def close(self):
        self.s.close()
        self.rtp.close()


def test_a_server_that_sends_no_media_fails_at_media():
    fake = SilentUas()
    try:
        rc, doc, out = tc("--server", f"127.0.0.1:{fake.port}", "--timeout", 3)
    finally:
        fake.close()
    f = assert_failed_at(rc, doc, "media")
    assert f["reason"].startswith("no RTP from the server within 3 s"), f
    assert f["detail"]["packets_received"] == 0
    inv = step(doc, "invite")
    assert inv["result"] == "ok" and inv["detail"]["media"] == "RTP", inv
    assert inv["detail"]["security_mode"] == "Unsecured"
    assert inv["detail"]["security_mode_source"].startswith("inferred"), inv
    # The call was hung up all the same.
    assert step(doc, "bye")["result"] == "ok" and "BYE" in fake.got, (doc, fake.got)


# ------------------------------------------------------------ usage

@pytest.mark.parametrize("args,msg", [
    ((), "--server"),
    (("--server", "127.0.0.1", "--secured", "--tls-name", FQDN), "--cert"),
    (("--server", "127.0.0.1", "--secured", "--cert", "a", "--key", "b", "--ca", "c"),
     "--tls-name"),
    (("--server", "127.0.0.1", "--suite", "AES_CM_128_HMAC_SHA1_80"), "--media-secured"),
    (("--server", "127.0.0.1", "--media-secured", "--suite", "NULL_CIPHER"), "--suite"),
    (("--server", "127.0.0.1", "--deliver"), "--extension"),
    (("--server", "127.0.0.1", "--dtmf", "12x"), "--dtmf"),
    (("--server", "127.0.0.1", "--timeout", "0"), "--timeout"),
    (("--server", "127.0.0.1:99999"), "--server"),
    (("--server", "127.0.0.1", "--secured=maybe"), "true or false"),
    (("--server", "127.0.0.1", "--ca", "x.pem"), "go with --secured"),
])
def test_bad_usage_exits_2(args, msg):
    p = subprocess.run([BIN, "test-connectivity", *args], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2 and msg in p.stderr, (p.returncode, p.stderr)


def test_secured_false_is_plain_tcp():
    port = free_port()
    rc, doc, out = tc("--server", f"127.0.0.1:{port}", "--secured:false", "--timeout", 2)
    assert doc["secured"] is False and step(doc, "connect")["detail"]["transport"] == "tcp"


def test_certificate_and_roots_from_a_store(srv, pki, tmp_path):
    """--cert-thumbprint takes the gateway's certificate and key from a
    store's personal certificates, and without --ca the server's
    certificate is checked against that store's trusted ones."""
    from conftest import Openum
    g = Openum(tmp_path / "gwstore")
    g.ok("init")
    g.ok("cert", "import", pki.gw["x"].both_path, "--no-reload")
    g.ok("cert", "import", pki.root.cert_path, "--trusted", "--yes", "--no-reload")
    sha1 = next(c["sha1"] for c in g.json("cert", "list") if c["store"] == "personal")
    args = ["--data", g.data, "--server", f"127.0.0.1:{srv.tls}", "--secured",
            "--cert-thumbprint", sha1[:10], "--tls-name", FQDN, "--bind", GW["x"][0],
            "--timeout", 5, "--extension", "3001"]
    rc, doc, out = tc(*args)
    # The plan is Secured and the offer RTP: refused at INVITE, after a TLS
    # handshake with the store's certificate and roots.
    f = assert_failed_at(rc, doc, "invite")
    assert step(doc, "tls")["detail"]["name_ok"] is True
    assert f["detail"]["status"] == 488
    # A store that does not trust openum's root: the TLS step says so.
    e = Openum(tmp_path / "emptytrust")
    e.ok("init")
    e.ok("cert", "import", pki.gw["x"].both_path, "--no-reload")
    e.ok("cert", "import", pki.rogue_root.cert_path, "--trusted", "--yes", "--no-reload")
    sha1 = next(c["sha1"] for c in e.json("cert", "list") if c["store"] == "personal")
    args[1], args[6] = e.data, sha1
    rc, doc, out = tc(*args)
    assert_failed_at(rc, doc, "tls")
    p = subprocess.run([BIN, "--data", e.data, "test-connectivity", "--server", "127.0.0.1",
                        "--secured", "--cert-thumbprint", "00FF", "--tls-name", FQDN],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "no personal certificate has it" in p.stderr, p.stderr


# ------------------------------------------------------------ against openum's diagnostic extension

def test_passes_every_step_secured_with_dtmf_echo(srv, pki):
    """Mutual TLS + SRTP to the diagnostic extension (Request-URI user
    openum-test): the greeting is sound, every digit comes back in an
    INFO, and the 200 names the mode the plan applied."""
    rc, doc, out = tc(*secured_args(srv, pki, "x"), "--media-secured", "--dtmf", "159*")
    assert rc == 0 and doc["result"] == "passed", out
    for s in doc["steps"]:
        assert s["result"] == "ok", s
    inv = step(doc, "invite")["detail"]
    assert inv["security_mode"] == "Secured" and "security_mode_source" not in inv, inv
    assert inv["media"] == "SRTP" and inv["request_uri"].startswith("sip:openum-test@"), inv
    med = step(doc, "media")["detail"]
    assert med["voiced_ms"] >= 300 and med["srtp_auth_failures"] == 0, med
    assert step(doc, "dtmf")["detail"]["acknowledged"] == "159*"


def test_passes_every_step_unsecured_over_tcp(srv):
    """A TCP gateway of an Unsecured plan (openum's own requests, the INFO
    echoes, go back over its connection)."""
    if not srv.json("gateway", "list") or "gwt" not in json.dumps(srv.json("gateway", "list")):
        srv.ok("gateway", "new", "gwt", "--address", "127.0.0.32", "--dialplan", "unsec")
    rc, doc, out = tc("--server", f"127.0.0.1:{srv.tcp}", "--bind", "127.0.0.32", "--timeout", 5,
                      "--dtmf", "7")
    assert rc == 0, out
    assert [s["result"] for s in doc["steps"]] == ["ok", "ok", "skipped", "ok", "ok", "ok",
                                                  "ok", "ok"], doc
    assert step(doc, "invite")["detail"]["security_mode"] == "Unsecured"


def _maildir_files(o):
    import glob
    return [f for f in glob.glob(os.path.join(o.data, "mail", "*", "*", "*"))
            if os.path.basename(os.path.dirname(f)) in ("new", "cur")]


def test_test_call_to_a_mailbox_is_recorded_but_delivered_only_with_deliver(srv, pki):
    """A test call to a real mailbox leaves a message only with --deliver;
    without it the recording is flagged `test` and never reaches the
    mailbox."""
    before = len(_maildir_files(srv))
    rc, doc, out = tc(*secured_args(srv, pki, "x"), "--media-secured", "--extension", "3001",
                      "--timeout", 15)
    assert rc == 0, out
    assert step(doc, "media")["detail"]["said_ms"] >= 1400
    assert wait_for(lambda: "test=yes" in srv.log(), timeout=10)
    time.sleep(2)
    assert len(_maildir_files(srv)) == before, "a test call reached the mailbox"
    rc, doc, out = tc(*secured_args(srv, pki, "x"), "--media-secured", "--extension", "3001",
                      "--deliver", "--timeout", 15)
    assert rc == 0, out
    assert wait_for(lambda: len(_maildir_files(srv)) == before + 1, timeout=20), srv.log()[-3000:]
    import email
    import email.policy
    import io
    import wave
    import numpy
    new = sorted(_maildir_files(srv), key=os.path.getmtime)[-1]
    with open(new, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    assert msg["X-Openum-Security-Mode"].lower() == "secured", msg["X-Openum-Security-Mode"]
    part = next(p for p in msg.walk() if p.get_content_maintype() == "audio")
    w = wave.open(io.BytesIO(part.get_payload(decode=True)))
    pcm = numpy.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    # test-connectivity says a 1.5 s 440 Hz tone: it is in the message
    spec = numpy.abs(numpy.fft.rfft(pcm * numpy.hanning(len(pcm))))
    assert abs(numpy.argmax(spec) * 8000 / len(pcm) - 440) < 15
    loud = sum(1 for i in range(0, len(pcm) - 159, 160)
               if numpy.mean(pcm[i:i + 160] ** 2) > (32768 * 10 ** (-45 / 20)) ** 2)
    assert 1400 <= loud * 20 <= 1700, loud * 20


# ------------------------------------------------------------ through an IP PBX

@pytest.fixture
def kamailio(tmp_path):
    """Kamailio as the IP PBX in front of openum: the test connects to it
    (mutual TLS, or TCP), it Record-Routes and relays to openum over mutual
    TLS; openum knows only Kamailio, a gateway of a Secured plan."""
    import test_calls_kamailio as tk
    if (not shutil.which("kamailio")
            or not os.path.exists(os.path.join(tk.KAM_MODULES, "tls.so"))):
        pytest.skip("kamailio (with tls) missing")
    w = W()
    p = PKI(tmp_path / "pki")
    w.root = p.ca("root", "openum Test Root CA")
    w.server = p.leaf("server", w.root, cn=FQDN, dns=[FQDN])
    w.pbx = p.leaf("pbx", w.root, cn="pbx.test.example", dns=["pbx.test.example"])
    w.phone = p.leaf("phone", w.root, cn="phone.test.example", dns=["phone.test.example"])
    w.ports = {"udp": free_port(kind=socket.SOCK_DGRAM), "tcp": free_port(), "tls": free_port()}
    o = make_store(tmp_path, plans=(("sec", "secured"),), mailboxes=[("3001", "sec")])
    o.ok("cert", "import", w.server.both_path, "--no-reload")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("gateway", "new", "kamailio", "--address", "127.0.0.1", "--tls-name",
         "pbx.test.example", "--transport", "tls", "--dialplan", "sec")
    o.ok("server", "set", "--dialplans", "sec")
    o.proc = o.serve()
    w.o = o
    with tk.kamailio_running(w, tmp_path):
        yield w


@pytest.mark.parametrize("transport", ["tls", "tcp"])
def test_passes_through_kamailio(kamailio, transport):
    w = kamailio
    before = rtp_in(w.o)
    if transport == "tls":
        args = ["--server", f"127.0.0.1:{w.ports['tls']}", "--secured", "--cert",
                w.phone.cert_path, "--key", w.phone.key_path, "--ca", w.root.cert_path,
                "--tls-name", "pbx.test.example"]
    else:
        args = ["--server", f"127.0.0.1:{w.ports['tcp']}"]
    rc, doc, out = tc(*args, "--media-secured", "--timeout", 5)
    assert rc == 0 and doc["result"] == "passed", (doc, w.klog.read_text()[-3000:],
                                                   w.o.log()[-3000:])
    if transport == "tls":
        # The handshake was with the PBX, not with openum.
        tls = step(doc, "tls")["detail"]
        assert tls["name_ok"] is True and "pbx.test.example" in tls["server_subject"], tls
    inv = step(doc, "invite")["detail"]
    assert inv["status"] == 200 and inv["media"] == "SRTP", inv
    m = step(doc, "media")["detail"]
    assert m["srtp_auth_failures"] == 0 and m["voiced_ms"] >= 100, m
    # openum took the call from Kamailio and heard the caller.
    assert wait_for(lambda: rtp_in(w.o) - before >= m["said_ms"] // 20 * 8 // 10)
    st = wait_for(lambda: w.o.json("status")["calls"]["active"] == 0
                  and w.o.json("status")["calls"])
    assert st and st["ended_by_gateway"] == 1, st
