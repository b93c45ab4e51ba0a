"""Audio checks for the answering tests: the voice messages a call left in
a Maildir, parsed with Python's `email`, their attachment played by sox
(Opus by opusdec: Debian's sox has no Opus handler) and measured — length,
dominant frequency, how much of it is a tone, level — with numpy; tones and
WAV files made with sox; a caller's side recorded as RTP (G.711 µ-law,
decoded by Python's own audioop, independent of openum's codecs)."""
import email
import email.policy
import os
import socket
import struct
import subprocess
import threading
import time
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

RATE = 8000


# ------------------------------------------------------------ making audio

def sox_tone(path, hz, seconds, rate=8000, channels=1, pad_after=0.0, encoding=None, gain=-6):
    """A sine of `hz` for `seconds` (then `pad_after` s of silence) as WAV."""
    cmd = ["sox", "-n", "-r", str(rate), "-c", str(channels)]
    cmd += ["-e", encoding] if encoding else ["-b", "16"]
    cmd += [str(path), "synth", str(seconds), "sine", str(hz), "gain", str(gain)]
    if pad_after:
        cmd += ["pad", "0", str(pad_after)]
    subprocess.run(cmd, check=True, capture_output=True)
    return str(path)


# ------------------------------------------------------------ measuring

def dominant(pcm, rate=RATE):
    """The frequency (Hz) of the strongest component."""
    x = np.asarray(pcm, dtype=float)
    if len(x) < 16:
        return 0.0
    x = x - x.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


def dbov(pcm):
    """RMS level in dB relative to a full-scale square wave (-inf for silence)."""
    x = np.asarray(pcm, dtype=float)
    if len(x) == 0:
        return float("-inf")
    rms = np.sqrt(np.mean(x * x))
    return 20 * np.log10(rms / 32768) if rms > 0 else float("-inf")


def tone_seconds(pcm, hz, rate=RATE, frame_ms=20, tol=30, floor_db=-40):
    """Seconds of 20 ms frames whose dominant frequency is `hz` (± tol) and
    whose level is above floor_db: how much of the audio is that tone."""
    n = rate * frame_ms // 1000
    x = np.asarray(pcm)
    got = 0
    for i in range(0, len(x) - n + 1, n):
        f = x[i:i + n]
        if dbov(f) > floor_db and abs(dominant(np.tile(f, 4), rate) - hz) <= tol:
            got += 1
    return got * frame_ms / 1000


def voiced_seconds(pcm, rate=RATE, frame_ms=20, floor_db=-45):
    """Seconds of 20 ms frames above floor_db (the caller heard something)."""
    n = rate * frame_ms // 1000
    x = np.asarray(pcm)
    return sum(dbov(x[i:i + n]) > floor_db for i in range(0, len(x) - n + 1, n)) * frame_ms / 1000


def read_wav(path, tmp, rate=RATE):
    """Any file sox reads (Opus by opusdec) as mono s16 samples at `rate`."""
    src = str(path)
    if src.endswith(".opus"):
        wav = os.path.join(str(tmp), os.path.basename(src) + ".dec.wav")
        subprocess.run(["opusdec", "--quiet", "--rate", "48000", src, wav], check=True,
                       capture_output=True)
        src = wav
    raw = os.path.join(str(tmp), os.path.basename(src) + ".s16")
    subprocess.run(["sox", src, "-t", "raw", "-r", str(rate), "-e", "signed", "-b", "16", "-c",
                    "1", raw], check=True, capture_output=True)
    return np.fromfile(raw, dtype="<i2")


def soxi_seconds(path, tmp):
    """The length soxi reports (for Opus: of opusdec's WAV)."""
    src = str(path)
    if src.endswith(".opus"):
        wav = os.path.join(str(tmp), os.path.basename(src) + ".soxi.wav")
        subprocess.run(["opusdec", "--quiet", "--rate", "48000", src, wav], check=True,
                       capture_output=True)
        src = wav
    p = subprocess.run(["soxi", "-D", src], capture_output=True, text=True, check=True)
    return float(p.stdout)


def best_correlation(got, ref, step=1):
    """The highest normalised correlation of `ref` slid along `got`."""
    got = np.asarray(got, dtype=float)
    ref = np.asarray(ref, dtype=float)
    if len(got) < len(ref) or len(ref) == 0:
        return 0.0
    c = np.correlate(got, ref, "valid")
    # energy of every window of `got` the length of ref
    e = np.convolve(got * got, np.ones(len(ref)), "valid")
    denom = np.sqrt(e * np.dot(ref, ref))
    denom[denom == 0] = np.inf
    return float(np.max(c / denom))


# ------------------------------------------------------------ the Maildir

def maildir(data, uid):
    """Every message file of mailbox `uid` (new/ and cur/)."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(str(data), "mail", uid, sub)
        if os.path.isdir(d):
            out += sorted(os.path.join(d, f) for f in os.listdir(d))
    return out


def all_messages(data):
    """{mailbox uid: [files]} for every Maildir of the store."""
    root = os.path.join(str(data), "mail")
    if not os.path.isdir(root):
        return {}
    return {uid: maildir(data, uid) for uid in sorted(os.listdir(root)) if maildir(data, uid)}


def wait_messages(data, uid, n=1, timeout=30):
    """Waits (bounded) until mailbox `uid` has `n` messages; returns them."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = maildir(data, uid)
        if len(got) >= n:
            return got
        time.sleep(0.1)
    return maildir(data, uid)


class Message:
    """A delivered voice message: headers, text, the decoded audio."""

    def __init__(self, path, tmp):
        self.path = path
        self.raw = open(path, "rb").read()
        self.msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert not self.msg.defects, self.msg.defects
        self.text = self.msg.get_body(("plain",)).get_content()
        atts = list(self.msg.iter_attachments())
        assert len(atts) <= 1, atts
        self.attachment = atts[0] if atts else None
        self.pcm = None
        self.seconds = 0.0
        if self.attachment is not None:
            ext = self.attachment.get_filename().rsplit(".", 1)[-1]
            base = os.path.basename(path).split(",")[0].replace(":", "_")
            self.audio_path = os.path.join(str(tmp), f"{base}.{ext}")
            with open(self.audio_path, "wb") as f:
                f.write(self.attachment.get_content())
            self.seconds = soxi_seconds(self.audio_path, tmp)
            self.pcm = read_wav(self.audio_path, tmp)

    def __getitem__(self, name):
        return self.msg[name]

    def describe(self):
        return (f"{os.path.basename(self.path)}: {self.seconds:.2f} s, "
                f"subject {self.msg['Subject']!r}, "
                f"dominant {dominant(self.pcm) if self.pcm is not None else 0:.0f} Hz")


# ------------------------------------------------------------ a caller's RTP

class RtpPhone:
    """The media side of a phone, in Python: one UDP socket that sends
    G.711 µ-law (a tone, then silence) at 20 ms and records every RTP packet
    it receives, placed by timestamp. Used where the SIP side is sipp and
    the test must hear what openum plays (the greeting)."""

    def __init__(self, host="127.0.0.1"):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((host, 0))
        self.port = self.s.getsockname()[1]
        self.remote = None
        self.packets = []  # (arrival time, pt, ts, payload)
        self.first_source = None  # (host, port) of the first RTP packet
        self.stop = threading.Event()
        self.sent = 0
        self.t = threading.Thread(target=self._recv, daemon=True)
        self.t.start()

    def _recv(self):
        self.s.settimeout(0.2)
        while not self.stop.is_set():
            try:
                d, addr = self.s.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(d) < 12 or d[0] >> 6 != 2:
                continue
            pt = d[1] & 0x7F
            ts = struct.unpack("!I", d[4:8])[0]
            cc = d[0] & 0x0F
            if self.first_source is None:
                self.first_source = addr
            self.packets.append((time.time(), pt, ts, d[12 + 4 * cc:]))

    def send(self, remote, hz, seconds, then_silence=0.0, amp=8000):
        """Sends `seconds` of `hz` (0: silence) then `then_silence` s of
        silence to remote (host, port), in real time, in a thread."""
        self.remote = remote
        n = int(seconds * RATE)
        t = np.arange(n) / RATE
        pcm = (amp * np.sin(2 * np.pi * hz * t)).astype("<i2") if hz else np.zeros(n, "<i2")
        pcm = np.concatenate([pcm, np.zeros(int(then_silence * RATE), "<i2")])
        payload = audioop.lin2ulaw(pcm.tobytes(), 2)

        def run():
            seq, ts, ssrc = 1000, 160000, 0x5EED0001
            start = time.time()
            for k, i in enumerate(range(0, len(payload) - 159, 160)):
                if self.stop.is_set():
                    return
                due = start + k * 0.02
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                hdr = struct.pack("!BBHII", 0x80, 0x80 if k == 0 else 0, seq & 0xFFFF,
                                  ts & 0xFFFFFFFF, ssrc)
                try:
                    self.s.sendto(hdr + payload[i:i + 160], remote)
                except OSError:
                    return
                self.sent += 1
                seq += 1
                ts += 160
        self.sender = threading.Thread(target=run, daemon=True)
        self.sender.start()
        return self.sender

    def received_pcm(self, pt=0):
        """What was received (payload type pt, PCMU), decoded, in arrival
        order (a gap in the sender's sending is not filled)."""
        return np.frombuffer(audioop.ulaw2lin(
            b"".join(p for _, t, _, p in self.packets if t == pt), 2), dtype="<i2")

    def close(self):
        self.stop.set()
        self.s.close()


# ------------------------------------------------------------ the store

def mailbox_uid(o, ext, plan=None):
    """The Maildir folder name (uid) of mailbox `ext`."""
    args = ["mailbox", "show", ext] + (["--dialplan", plan] if plan else [])
    return o.json(*args)["id"]


def upload_greeting(o, ext, kind, hz, seconds, tmp, plan=None, reload=True):
    """Uploads a tone of `hz` as the mailbox's `kind` greeting (a 44.1 kHz
    stereo WAV: openum converts it)."""
    src = sox_tone(os.path.join(str(tmp), f"greeting-{ext}-{kind}.wav"), hz, seconds,
                   rate=44100, channels=2)
    args = ["mailbox", "set", ext, "--greeting", f"{kind}={src}"]
    if plan:
        args += ["--dialplan", plan]
    if not reload:
        args.append("--no-reload")
    o.ok(*args)


def spools(o):
    """Every call spool of the store: [(metadata, end marker or None)]."""
    import json
    d = os.path.join(o.data, "spool")
    out = []
    for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if not f.endswith(".json") or f.startswith("."):
            continue
        try:
            meta = json.load(open(os.path.join(d, f)))
        except (OSError, ValueError):
            continue
        end = None
        try:
            end = json.load(open(os.path.join(d, f[:-5] + ".end")))
        except (OSError, ValueError):
            pass
        out.append((meta, end))
    return out
