"""Helpers for the call-flow tests: a gateway's media side written here
(plain RTP/AVP with PCMU and RFC 4733 telephone-events, G.711 by Python's
own audioop — independent of openum's spandsp), om-testcall placing the
call with our SDP, and the delivered message read back with Python's
`email` and `wave`."""
import email
import email.policy
import glob
import io
import os
import socket
import struct
import subprocess
import threading
import time
import wave
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

import numpy

from calls_util import FQDN, TESTCALL
from sip_util import wait_for

TE_PT = 101


def tone(hz, ms, amp=8000):
    t = numpy.arange(int(ms * 8)) / 8000.0
    return (amp * numpy.sin(2 * numpy.pi * hz * t)).astype("<i2")


def silence(ms):
    return numpy.zeros(int(ms * 8), dtype="<i2")


def voiced_ms(pcm, dbov=-45.0):
    """20 ms frames above dbov (the server's default silence threshold)."""
    n = 0
    for i in range(0, len(pcm) - 159, 160):
        f = pcm[i:i + 160].astype(float)
        e = numpy.mean(f * f)
        if e > 0 and 10 * numpy.log10(e / (32768.0 * 32768.0)) > dbov:
            n += 20
    return n


def dominant_hz(pcm):
    x = numpy.asarray(pcm, dtype=float)
    if len(x) == 0:
        return 0.0
    spec = numpy.abs(numpy.fft.rfft(x * numpy.hanning(len(x))))
    return float(numpy.argmax(spec) * 8000 / len(x))


class Rtp:
    """One RTP endpoint: sends a script of audio and digits paced at 20 ms
    (then silent frames, so the stream stays alive), and records what the
    server sends, decoded, with the time each packet arrived."""

    def __init__(self, bind="127.0.0.1"):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((bind, 0))
        self.port = self.s.getsockname()[1]
        self.peer = None
        self.script = []
        self.lock = threading.Lock()
        self.rx = []  # (arrival time, pcm bytes)
        self.rx_events = []
        self.running = True
        self.sent_audio = []
        self.t_rx = threading.Thread(target=self._recv, daemon=True)
        self.t_rx.start()
        self.t_tx = None

    def _recv(self):
        try:
            self.s.settimeout(0.2)
        except OSError:
            return
        while self.running:
            try:
                data, _ = self.s.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12 or data[0] >> 6 != 2:
                continue
            pt = data[1] & 0x7F
            cc = data[0] & 0x0F
            off = 12 + 4 * cc
            if data[0] & 0x10:
                off += 4 + 4 * struct.unpack("!H", data[off + 2:off + 4])[0]
            payload = data[off:]
            if pt == 0:
                self.rx.append((time.time(), audioop.ulaw2lin(payload, 2)))
            elif pt == TE_PT:
                self.rx_events.append((time.time(), payload[:4]))

    def say(self, *items):
        """Queues ("audio", pcm) arrays or ("dtmf", "5") items."""
        with self.lock:
            self.script.extend(items)

    def start(self, peer_port, host="127.0.0.1"):
        self.peer = (host, peer_port)
        self.t_tx = threading.Thread(target=self._send, daemon=True)
        self.t_tx.start()

    def _pkt(self, pt, payload, marker=False):
        hdr = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq & 0xFFFF,
                          self.ts & 0xFFFFFFFF, 0x1234ABCD)
        self.seq += 1
        try:
            self.s.sendto(hdr + payload, self.peer)
        except OSError:
            pass

    def _send(self):
        self.seq, self.ts = 1000, 160000
        nxt = time.time()
        frames = []
        while self.running:
            if not frames:
                with self.lock:
                    item = self.script.pop(0) if self.script else None
                if item is None:
                    frames = [("audio", silence(20))]
                elif item[0] == "audio":
                    pcm = item[1]
                    frames = [("audio", pcm[i:i + 160]) for i in range(0, len(pcm), 160)]
                else:
                    frames = [("dtmf", item[1], k) for k in range(6)]
            f = frames.pop(0)
            if f[0] == "audio":
                pcm = f[1]
                if len(pcm) < 160:
                    pcm = numpy.concatenate([pcm, silence((160 - len(pcm)) / 8)])
                self.sent_audio.append(pcm)
                self._pkt(0, audioop.lin2ulaw(pcm.astype("<i2").tobytes(), 2))
                self.ts += 160
            else:
                digit, k = f[1], f[2]
                ev = "0123456789*#".index(digit)
                end = k >= 3
                dur = 160 * min(k + 1, 3)
                self._pkt(TE_PT, struct.pack("!BBH", ev, (0x80 if end else 0) | 10, dur),
                          marker=k == 0)
                if k == 5:
                    self.ts += 480
            nxt += 0.02
            time.sleep(max(0, nxt - time.time()))

    def received(self):
        return numpy.frombuffer(b"".join(p for _, p in self.rx), dtype="<i2")

    def close(self):
        self.running = False
        if self.t_tx:
            self.t_tx.join(2)
        self.s.close()


def skip_greeting(rtp, timeout=30):
    """`*` as soon as the server's greeting is heard: straight to the beep
    (for tests about what follows it; the greeting's own tests hear it
    whole)."""
    assert wait_for(lambda: rtp.rx, timeout=timeout), "no greeting from the server"
    rtp.say(("dtmf", "*"))


def offer(port, addr="127.0.0.1"):
    return (f"v=0\r\no=gw 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 {TE_PT}\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:{TE_PT} telephone-event/8000\r\na=fmtp:{TE_PT} 0-15\r\n"
            "a=ptime:20\r\na=sendrecv\r\n")


class TracedCall:
    """om-testcall (its arguments as given) in the background with --trace:
    its trace read as it comes, the 200 with SDP (`answer`) as soon as it
    arrives. om-testcall keeps the --sdp file's buffer to its exit (a test
    tool's leak, not the server's): no leak report for it."""

    def __init__(self, args):
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        self.p = subprocess.Popen([TESTCALL, *map(str, args), "--trace"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        self.trace = []
        self.answer = None
        self.got = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        block = []
        for line in self.p.stderr:
            self.trace.append(line)
            if line.startswith("<<<") or line.startswith(">>>"):
                self._block(block)
                block = [line]
            else:
                block.append(line)
        self._block(block)
        self.got.set()

    def _block(self, block):
        text = "".join(block)
        if self.answer is None and text.startswith("<<<") and "SIP/2.0 200" in text and \
                "m=audio" in text:
            self.answer = text
            self.got.set()

    def text(self):
        return "".join(self.trace)


class Call(TracedCall):
    """om-testcall placing the call with our SDP: the answer's media port
    as soon as the 200 arrives; the server's BYE awaited."""

    def __init__(self, tmp, sip_port, ruri, sdp, *args, bind="127.0.0.1", tls=None):
        path = os.path.join(str(tmp), f"offer-{time.time_ns()}.sdp")
        with open(path, "w") as f:
            f.write(sdp)
        cmd = ["--server", "127.0.0.1", "--port", str(sip_port), "--ruri", ruri,
               "--bind", bind, "--timeout", "10000", "--sdp", path]
        if tls:
            leaf, ca = tls
            cmd += ["--tls", "--cert", leaf.cert_path, "--key", leaf.key_path, "--ca",
                    ca.cert_path, "--tls-name", FQDN]
        super().__init__(cmd + list(args))

    def media_port(self, timeout=15):
        import re
        if not (self.got.wait(timeout) and self.answer):
            raise AssertionError("no answer:\n" + "".join(self.trace)[-4000:])
        return int(re.search(r"m=audio (\d+)", self.answer).group(1))

    def finish(self, timeout=120):
        import json
        out, _ = self.p.communicate(timeout=timeout)
        assert self.p.returncode == 0, out + self.text()[-3000:]
        return json.loads(out)


def messages(o, uid=None):
    """The message files of the store's Maildirs (new/ and cur/)."""
    pat = os.path.join(o.data, "mail", uid or "*", "*", "*")
    return sorted(f for f in glob.glob(pat) if os.path.basename(os.path.dirname(f))
                  in ("new", "cur"))


def wait_messages(o, n, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = messages(o)
        if len(m) >= n:
            return m
        time.sleep(0.2)
    return messages(o)


def read_message(path):
    """(email message, decoded attachment PCM as int16 array, its WAV params)."""
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    audio = [p for p in msg.walk() if p.get_content_maintype() == "audio"]
    assert len(audio) == 1, [p.get_content_type() for p in msg.walk()]
    data = audio[0].get_payload(decode=True)
    w = wave.open(io.BytesIO(data))
    assert w.getframerate() == 8000 and w.getnchannels() == 1 and w.getsampwidth() == 2
    pcm = numpy.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return msg, pcm


def spool_files(o):
    return sorted(os.listdir(os.path.join(o.data, "spool")))


PROMPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "data", "prompts")


def prompt_heard(pcm, name, ms=400):
    """Whether the caller heard the built-in prompt `name`
    (data/prompts/NAME.wav): a stretch of `ms` from its loudest part, as
    G.711 µ-law carries it, is found sample for sample in what the caller
    received (`pcm`, Rtp.received()). Distinguishes prompts of the same
    length and level, which voiced_ms cannot."""
    with wave.open(os.path.join(PROMPTS, name + ".wav")) as w:
        assert w.getframerate() == 8000 and w.getsampwidth() == 2, name
        p = numpy.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    n = ms * 8
    assert len(p) > n, (name, len(p))
    # the window of n samples with the most energy (speech, not its pauses)
    e = numpy.convolve(p.astype(numpy.float64) ** 2, numpy.ones(n), mode="valid")
    at = int(numpy.argmax(e))
    want = audioop.ulaw2lin(audioop.lin2ulaw(p[at:at + n].tobytes(), 2), 2)
    have = numpy.asarray(pcm, dtype="<i2").tobytes()
    i = have.find(want)
    while i >= 0 and i % 2:  # sample-aligned only
        i = have.find(want, i + 1)
    return i >= 0
