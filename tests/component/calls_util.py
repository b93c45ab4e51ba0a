"""Helpers for the call tests: a store with dial plans, gateways and
mailboxes, `openum serve` on free ports, and om-testcall (the project's own
gateway-side UAC, src/testcall/) run as a program."""
import json
import os
import subprocess
import time

from conftest import BIN, Openum, free_port

BUILD = os.environ.get("OPENUM_BUILD", os.path.dirname(os.path.dirname(os.path.dirname(BIN))))
TESTCALL = os.path.join(BUILD, "src", "testcall", "om-testcall")
FQDN = "um.test.example"


def place_call(port, *args, ruri=f"sip:8000@{FQDN}", bind="127.0.0.1", timeout=60, tls=None,
             check=True):
    """One call with om-testcall; returns its JSON report. tls: (leaf, ca)."""
    cmd = [TESTCALL, "--server", "127.0.0.1", "--port", str(port), "--ruri", ruri,
           "--bind", bind, "--timeout", "10000"]
    if tls:
        leaf, ca = tls
        cmd += ["--tls", "--cert", leaf.cert_path, "--key", leaf.key_path, "--ca", ca.cert_path,
                "--tls-name", FQDN]
    cmd += [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"om-testcall failed {p.returncode}: {p.stdout}\n{p.stderr}"
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"om-testcall printed no JSON: {p.stdout}\n{p.stderr}")


def call_bg(port, *args, **kw):
    """om-testcall in the background: (Popen, stderr path)."""
    ruri = kw.get("ruri", f"sip:8000@{FQDN}")
    bind = kw.get("bind", "127.0.0.1")
    cmd = [TESTCALL, "--server", "127.0.0.1", "--port", str(port), "--ruri", ruri,
           "--bind", bind, "--timeout", "10000"] + [str(a) for a in args]
    tls = kw.get("tls")
    if tls:
        leaf, ca = tls
        cmd += ["--tls", "--cert", leaf.cert_path, "--key", leaf.key_path, "--ca", ca.cert_path,
                "--tls-name", FQDN]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, timeout=60):
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"om-testcall failed {p.returncode}: {out}\n{err}"
    return json.loads(out)


def calls(o):
    return o.json("calls")["calls"]


def wait_calls(o, n, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = calls(o)
        if len(c) == n:
            return c
        time.sleep(0.1)
    return calls(o)


def sdp_lines(sdp):
    return [l for l in sdp.replace("\r\n", "\n").split("\n") if l]


def media_port(sdp):
    for l in sdp_lines(sdp):
        if l.startswith("m=audio "):
            return int(l.split()[1])
    return None


STORES = []  # every store a test made: closed (its server killed) after the test
_RTP = [42000 + (os.getpid() % 40) * 400]


def rtp_range():
    """An RTP port range of its own for each server (outside the media
    tests' 21000-40999)."""
    lo = _RTP[0]
    _RTP[0] = lo + 100 if lo + 200 < 60000 else 42000
    return f"{lo}-{lo + 99}"


def make_store(tmp, conf="", plans=(("dp1", "unsecured"),), gateways=(), mailboxes=(),
               server_plans=None):
    """An initialised store: plans (name, security), gateways
    (name, address, plan, extra args), mailboxes (ext, plan)."""
    o = Openum(tmp / "data")
    STORES.append(o)
    if "rtp_ports" not in conf:
        conf += f"rtp_ports = {rtp_range()}\n"
    if "drain_timeout" not in conf:
        # SIGTERM drains: calls in progress may go on this long (tests
        # that stop a server with a call up want it short)
        conf += "drain_timeout = 3\n"
    o.ok("init")
    o.tcp = free_port()
    o.tls = free_port()
    o.conf(f"fqdn = {FQDN}\nsip_tcp = 127.0.0.1:{o.tcp}\nsip_tls = 127.0.0.1:{o.tls}\n"
           f"events_interval = 1\nsip_t1 = 100\nauto_selfsigned = 0\n{conf}")
    for name, sec in plans:
        o.ok("dialplan", "new", name, "--digits", "4", "--security", sec, "--pilot", "8000")
    for gw in gateways:
        name, addr, plan, *extra = gw
        o.ok("gateway", "new", name, "--address", addr, "--dialplan", plan, *extra)
    for ext, plan in mailboxes:
        o.ok("mailbox", "new", ext, "--dialplan", plan, "--name", f"Mailbox {ext}")
    if server_plans:
        o.ok("server", "set", "--dialplans", server_plans)
    return o


# ------------------------------------------------------------ raw SIP UAC

SDP_AVP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
           "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


class RawSip:
    """A gateway written by hand: one TCP connection from `src`, messages as
    text, responses and requests read as they come."""

    def __init__(self, port, src="127.0.0.1", sock=None):
        import socket as _s
        self.s = sock or _s.create_connection(("127.0.0.1", port), timeout=10,
                                              source_address=(src, 0))
        self.src = src
        self.port = port
        self.buf = b""

    def send(self, text):
        self.s.sendall(text.encode() if isinstance(text, str) else text)

    def read(self, timeout=5):
        """The next message (head, body) or None."""
        import socket as _s
        self.s.settimeout(timeout)
        while True:
            if b"\r\n\r\n" in self.buf:
                head, _, rest = self.buf.partition(b"\r\n\r\n")
                m = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")
                     or l.lower().startswith(b"l:")]
                n = int(m[0].split(b":", 1)[1]) if m else 0
                if len(rest) >= n:
                    self.buf = rest[n:]
                    return head.decode(errors="replace"), rest[:n].decode(errors="replace")
            try:
                chunk = self.s.recv(65536)
            except (_s.timeout, ConnectionResetError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def read_until(self, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self.read(max(0.05, deadline - time.time()))
            if m is None:
                return None
            if pred(m[0]):
                return m
        return None

    def close(self):
        self.s.close()


def status_of(head):
    return int(head.split(" ", 2)[1]) if head.startswith("SIP/2.0 ") else 0


def invite_text(call_id, src="127.0.0.1", branch=None, ruri=f"sip:8000@{FQDN}", extra="",
                body=SDP_AVP, cseq=1, from_tag="gwtag"):
    branch = branch or "z9hG4bK" + os.urandom(6).hex()
    return (f"INVITE {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP {src}:5999;branch={branch}\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:2002@{src}>;tag={from_tag}\r\n"
            f"To: <{ruri}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} INVITE\r\n"
            f"Contact: <sip:2002@{src}:5999;transport=tcp>\r\n"
            f"{extra}"
            f"Content-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}")


def in_dialog_text(method, call_id, to_tag, src="127.0.0.1", cseq=2, from_tag="gwtag",
                   ruri=f"sip:{FQDN}", extra="", body=""):
    branch = "z9hG4bK" + os.urandom(6).hex()
    return (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP {src}:5999;branch={branch}\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:2002@{src}>;tag={from_tag}\r\n"
            f"To: <sip:8000@{FQDN}>;tag={to_tag}\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"{extra}"
            f"Content-Length: {len(body)}\r\n\r\n{body}")


def to_tag_of(head):
    for l in head.split("\r\n"):
        if l.lower().startswith("to:"):
            return l.split("tag=", 1)[1].split(";")[0].strip() if "tag=" in l else None
    return None


def answer_request(raw, head, status=200):
    """Answers a request read from the server (copies Via, From, To, Call-ID, CSeq)."""
    keep = [l for l in head.split("\r\n")[1:]
            if l.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
    raw.send(f"SIP/2.0 {status} OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n")
