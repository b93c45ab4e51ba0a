"""Helpers for media component tests: om-mediahost (the real media engine
in its own process, driven over stdin/stdout) and om-testrtp (the gateway
side's RTP/SRTP sender and receiver), plus audio checks (G.711 by Python's
own audioop, dominant frequency by numpy)."""
import array
import base64
import json
import os
import queue
import subprocess
import threading
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # an independent G.711 codec

import numpy

from conftest import ROOT

BUILD = os.environ.get("OPENUM_BUILD", os.path.join(ROOT, "build-asan"))
MEDIAHOST = os.path.join(BUILD, "tests", "tools", "om-mediahost")
TESTRTP = os.path.join(BUILD, "src", "testcall", "om-testrtp")
SRTP2SEND = os.path.join(BUILD, "tests", "tools", "om-srtp2-send")

SUITES = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
    "AES_256_CM_HMAC_SHA1_80": 46,
    "AEAD_AES_128_GCM": 28,
    "AEAD_AES_256_GCM": 44,
}


def key_b64(suite, seed=1):
    n = SUITES[suite]
    return base64.b64encode(bytes((seed * 31 + i * 7) & 0xFF for i in range(n))).decode()


class MediaHost:
    """om-mediahost: one engine; commands in, JSON events out."""

    def __init__(self, spool, *args, ports=None, env=None, wrapper=()):
        self.spool = str(spool)
        os.makedirs(self.spool, mode=0o700, exist_ok=True)
        lo = ports or _port_range()
        self.port_range = lo
        cmd = [*wrapper, MEDIAHOST, "--spool", self.spool, "--ports", f"{lo[0]}-{lo[1]}", *args]
        e = dict(os.environ)
        if env:
            e.update(env)
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=e)
        self.q = queue.Queue()
        self.log = []
        self.stderr = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        self.wait("ready")

    def _read(self):
        for line in self.p.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            self.log.append(ev)
            self.q.put(ev)

    def _read_err(self):
        for line in self.p.stderr:
            self.stderr.append(line)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def wait(self, ev, name=None, timeout=15, **match):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                e = self.q.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if e.get("ev") == "error" and ev != "error":
                raise AssertionError(f"om-mediahost error: {e}")
            if e.get("ev") == ev and (name is None or e.get("name") == name) and all(
                    e.get(k) == v for k, v in match.items()):
                return e
        raise AssertionError(f"no {ev} event for {name} within {timeout}s; log: {self.log[-20:]}"
                             f"\nstderr: {''.join(self.stderr[-20:])}")

    def logged(self, ev, name, timeout=15):
        """The first `ev` of `name` in the log, waiting for it if needed
        (unlike wait(), independent of the order events arrive in)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.events(ev, name)
            if got:
                return got[0]
            time.sleep(0.05)
        raise AssertionError(f"no {ev} for {name}; log: {self.log[-20:]}")

    def events(self, ev, name=None):
        return [e for e in self.log if e.get("ev") == ev and (name is None or e.get("name") == name)]

    def new(self, name, **kw):
        words = " ".join(f"{k}={v}" for k, v in kw.items())
        self.send(f"new {name} local=127.0.0.1 {words}")
        return self.wait("port", name)["port"]

    def rec(self, name, spool_id, **kw):
        words = " ".join(f"{k}={v}" for k, v in kw.items())
        self.send(f"rec {name} {spool_id} {words}")
        self.wait("ok", cmd="rec")

    def stop_rec(self, name):
        self.send(f"recstop {name}")
        return self.wait("record_stopped", name)

    def free(self, name):
        self.send(f"free {name}")
        return self.wait("closed", name)

    def sstats(self, name):
        self.send(f"sstats {name}")
        return self.wait("sstats", name)

    def quit(self, timeout=20):
        if self.p.poll() is None:
            try:
                self.send("quit")
            except BrokenPipeError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("om-mediahost did not quit")
        err = "".join(self.stderr)
        assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err
        return self.p.returncode

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def raw(self, spool_id):
        with open(os.path.join(self.spool, spool_id + ".raw"), "rb") as f:
            return f.read()


_next_range = [21000 + (os.getpid() % 200) * 100]


def _port_range(n=100):
    """A port range of n per host, different per test process."""
    lo = _next_range[0]
    _next_range[0] += n
    if _next_range[0] > 60000:
        _next_range[0] = 21000
    return (lo, lo + n - 1)


def rtp_send(port, *args, host="127.0.0.1", timeout=60):
    p = subprocess.run([TESTRTP, "send", "--to", f"{host}:{port}", *args], capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


class Receiver:
    """om-testrtp recv in the background."""

    def __init__(self, port, *args, out=None, host="127.0.0.1"):
        self.out = out
        cmd = [TESTRTP, "recv", "--listen", f"{host}:{port}", *args]
        if out:
            cmd += ["--out", str(out)]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "ready"

    def result(self, timeout=60):
        out, err = self.p.communicate(timeout=timeout)
        assert self.p.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1])

    def pcm(self):
        with open(self.out, "rb") as f:
            return f.read()


def g711(seconds, seed=7, alaw=False, freq=None):
    """G.711 bytes: a tone, or noise-like speech-level audio, encoded by
    Python's audioop (independent of openum's spandsp)."""
    n = int(seconds * 8000)
    rng = numpy.random.default_rng(seed)
    if freq:
        t = numpy.arange(n) / 8000.0
        pcm = (12000 * numpy.sin(2 * numpy.pi * freq * t)).astype("<i2")
    else:
        pcm = (rng.standard_normal(n) * 3000).clip(-32000, 32000).astype("<i2")
    b = pcm.tobytes()
    return audioop.lin2alaw(b, 2) if alaw else audioop.lin2ulaw(b, 2)


def decode(g, alaw=False):
    return audioop.alaw2lin(g, 2) if alaw else audioop.ulaw2lin(g, 2)


def frames(data, ptime=20):
    n = ptime * 8
    return [data[i:i + n] for i in range(0, len(data), n)]


def dominant_hz(pcm_bytes, rate=8000):
    x = numpy.frombuffer(pcm_bytes, dtype="<i2").astype(float)
    if len(x) == 0:
        return 0.0
    spec = numpy.abs(numpy.fft.rfft(x * numpy.hanning(len(x))))
    return float(numpy.argmax(spec) * rate / len(x))


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)
