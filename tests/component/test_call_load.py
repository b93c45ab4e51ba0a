"""The load generator's own guarantees (bench/call_load, on the test UAC of
src/testcall/), checked against a scripted UAS over plain TCP so that the
peer can misbehave on purpose:

- a call that ends while its BYE still waits for an answer (the answer comes
  after --bye-timeout) is freed at once, and the late 200 to that BYE is
  then ignored — under ASan, any use of the freed call aborts the run;
- a server that stops reading its connection never makes the generator
  wait: SIP the socket does not take is queued and the generator's loop
  goes on (the calls end by their own --setup-timeout, not by a failed
  send)."""
import json
import os
import re
import socket
import subprocess
import math
import struct
import threading
import time
import wave

from calls_util import BUILD

LOAD = os.path.join(BUILD, "bench", "call_load")


def _messages(buf):
    """Splits complete SIP messages off buf (RFC 3261 §18.3 framing)."""
    out = []
    while True:
        while buf.startswith(b"\r\n"):
            buf = buf[2:]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out, buf
        head = buf[:end].decode("latin-1")
        m = re.search(r"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        if len(buf) < end + 4 + n:
            return out, buf
        out.append(head)
        buf = buf[end + 4 + n:]


def _hdr(head, name):
    m = re.search(r"(?im)^" + name + r"\s*:\s*([^\r\n]*)", head)
    return m.group(1).strip() if m else ""


def _response(head, status, reason, body=b"", to_tag=None):
    to = _hdr(head, "To") + (f";tag={to_tag}" if to_tag else "")
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in re.findall(r"(?im)^via\s*:\s*([^\r\n]*)", head)]
    lines += [f"From: {_hdr(head, 'From')}", f"To: {to}", f"Call-ID: {_hdr(head, 'Call-ID')}",
              f"CSeq: {_hdr(head, 'CSeq')}", "Contact: <sip:uas@127.0.0.1;transport=tcp>"]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class LateByeUas:
    """Answers every INVITE with 200 + SDP (RTP to a socket of its own that
    never sends) and every BYE only after `bye_delay` seconds."""

    def __init__(self, bye_delay):
        self.bye_delay = bye_delay
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.byes = 0
        self.late_answers = 0
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.lsock.settimeout(0.2)
        conns = []
        pending = []  # (due, sock, bytes)
        while not self.stop:
            try:
                c, _ = self.lsock.accept()
                c.setblocking(False)
                conns.append([c, b""])
            except socket.timeout:
                pass
            now = time.monotonic()
            for item in [p for p in pending if p[0] <= now]:
                pending.remove(item)
                try:
                    item[1].sendall(item[2])
                    self.late_answers += 1
                except OSError:
                    pass
            for entry in conns:
                c = entry[0]
                try:
                    data = c.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    continue
                if not data:
                    continue
                msgs, entry[1] = _messages(entry[1] + data)
                for head in msgs:
                    if head.startswith("INVITE "):
                        sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                               f"t=0 0\r\nm=audio {self.rtp.getsockname()[1]} RTP/AVP 0\r\n"
                               "a=rtpmap:0 PCMU/8000\r\n").encode()
                        c.sendall(_response(head, 200, "OK", sdp, to_tag="uas1"))
                    elif head.startswith("BYE "):
                        self.byes += 1
                        pending.append((time.monotonic() + self.bye_delay, c,
                                        _response(head, 200, "OK")))
        for c, _ in conns:
            c.close()

    def close(self):
        self.stop = True
        self.t.join(5)
        self.lsock.close()
        self.rtp.close()


def _wav(path):
    """One second of a 440 Hz tone, 8 kHz mono 16-bit: what the calls send."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
                               for i in range(8000)))
    return str(path)


def _run_load(port, tmp, *args, domain="uas.test", timeout=120):
    p = subprocess.run([LOAD, "--server", "127.0.0.1", "--port", str(port), "--gw", "127.0.0.1",
                        "--rtp", "--ext", "100", "--domain", domain, "--wav",
                        _wav(tmp / "tone.wav"), *args],
                       capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"call_load printed nothing ({p.returncode}): {p.stderr[-3000:]}"
    return p, json.loads(lines[-1])


def test_late_bye_answer_after_the_call_was_freed(tmp_path):
    uas = LateByeUas(bye_delay=1.5)
    try:
        # two calls two seconds apart: the first one's BYE is answered
        # after its --bye-timeout, while the generator still runs the second
        p, res = _run_load(uas.port, tmp_path, "--media-socks", "1", "--calls", "2", "--rate", "0.5", "--concurrency", "2",
                           "--talk", "1", "--no-prompt-ms", "200", "--bye-timeout", "500",
                           "--max-seconds", "30")
        # the last answer may come after the generator exits; the first came
        # while it ran
        assert uas.byes == 2, (uas.byes, res)
        assert uas.late_answers >= 1, res
    finally:
        uas.close()
    assert "AddressSanitizer" not in p.stderr, p.stderr[-4000:]
    assert p.returncode == 0, (p.returncode, p.stderr[-3000:])
    assert res["answered"] == 2 and res["bye_timeouts"] == 2, res


CALLS = 6000


def test_server_that_stops_reading_never_blocks_the_generator(tmp_path):
    # a listener whose connection is never read: its receive window closes
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    port = lsock.getsockname()[1]
    held = []

    def accept():
        lsock.settimeout(30)
        try:
            while len(held) < 2:
                c, _ = lsock.accept()
                held.append(c)
        except OSError:
            pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        # one connection, 6,000 INVITEs of ~1.3 KB (a long host name in
        # the Request-URI, To and Call-ID): more than the kernel's largest
        # send buffer (net.ipv4.tcp_wmem, 4 MiB here) can hold
        p, res = _run_load(port, tmp_path, "--conns", "1", "--calls", str(CALLS), "--rate",
                           str(CALLS), "--concurrency", str(CALLS), "--media-socks", "4",
                           "--setup-timeout", "3000", "--max-seconds", "60",
                           domain=".".join(["l" * 60] * 4) + ".test")
    finally:
        lsock.close()
        for c in held:
            c.close()
    assert p.returncode == 0, (p.returncode, p.stderr[-3000:])
    # the socket stopped taking INVITEs: they were queued, not waited for
    assert res["sip_queued"] >= 1, res
    # every call was started and then ended by its own setup timeout (a
    # send that waited and failed would have ended it at once instead)
    assert res["calls"] == CALLS and res["setup_timeouts"] == CALLS, res
    assert res["answered"] == 0, res
