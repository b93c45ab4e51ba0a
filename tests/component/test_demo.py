"""The README's first command, `scripts/demo`, with this build's binary: a
secured call (mutual TLS, SRTP) says a spoken sentence into a mailbox, the
message is delivered and its attachment holds that sentence; the same call
over plain TCP is refused (403, event 1132) and a rogue certificate is
refused at the TLS step (1130); on free ports; the temporary store (private
keys included) is removed unless --keep."""
import os
import re
import shutil
import subprocess
import wave

import numpy as np

from conftest import BIN, ROOT


def demo(*args):
    env = dict(os.environ, OPENUM_BIN=BIN)
    for k in ("OPENUM_DATA", "OPENUM_CONFIG", "OPENUM_DEMO_TCP", "OPENUM_DEMO_TLS",
              "NOTIFY_SOCKET"):
        env.pop(k, None)
    p = subprocess.run([os.path.join(ROOT, "scripts", "demo"), *args], capture_output=True,
                       text=True, env=env, timeout=240)
    m = re.search(r"^== openum \S+: store (/tmp/openum-demo\.[^/\s]+)/data$", p.stdout, re.M)
    assert m, p.stdout + p.stderr
    return p, m.group(1)


def pcm(path):
    """(samples as float in [-1, 1], rate, channels, bits) of a WAV file."""
    with wave.open(path) as w:
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    assert width == 2, path
    return np.frombuffer(raw, dtype="<i2").astype(float) / 32768, rate, ch, 16


def voiced_ms(x, rate):
    """20 ms frames above -45 dBov, in ms."""
    n = rate // 50
    frames = x[:len(x) // n * n].reshape(-1, n)
    db = 10 * np.log10(np.maximum((frames ** 2).mean(axis=1), 1e-12))
    return int((db > -45).sum()) * 20


def test_demo_leaves_a_secured_voicemail():
    p, work = demo("--keep")
    try:
        out = p.stdout
        assert p.returncode == 0, out + p.stderr
        # The secured start and its certificate.
        assert re.search(r"^  \S+ info +1112 the service started in secured mode", out, re.M), out
        assert re.search(r"^  \S+ info +1114 certificate in use .*issuer=CN=Demo Root CA", out,
                         re.M), out
        # The call: every step passed, over mutual TLS with SRTP.
        assert "passed: every step" in out
        assert re.search(r"ok +invite .*Secured.*TLS \+ SRTP", out), out
        assert re.search(r"ok +tls .*name um\.demo\.example: ok", out), out
        # The message and its attachment: the spoken sentence, not silence.
        assert re.search(r"^  \S+ +new +.*4930123456", out, re.M), out
        assert "Sample Rate    : 8000" in out, out
        msg, rate, ch, _ = pcm(os.path.join(work, "message.wav"))
        said, srate, _, _ = pcm(os.path.join(work, "sample.wav"))
        assert rate == 8000 and ch == 1 and srate == 8000
        dur, sdur = len(msg) / rate, len(said) / srate
        assert sdur - 1 <= dur <= sdur + 3, (dur, sdur)
        v, sv = voiced_ms(msg, rate), voiced_ms(said, srate)
        assert sv >= 2000 and v >= sv * 0.8, (v, sv)
        assert np.abs(msg).max() > 0.05, np.abs(msg).max()
        # Refused, one line each, with the server's events.
        tcp = re.search(r"^  plain TCP: +(.*)\n +(.*)$", out, re.M)
        assert tcp and "FAILED at step options: 403" in tcp.group(1), out
        assert " 1132 " in tcp.group(2), out
        rogue = re.search(r"^  rogue certificate: +(.*)\n +(.*)$", out, re.M)
        assert rogue and "FAILED at step tls" in rogue.group(1), out
        assert " 1130 " in rogue.group(2), out
        assert "openum serve stopped cleanly" in out
        assert f"kept: {work}" in out
        assert os.path.isfile(os.path.join(work, "data", "openum.db"))
        assert not re.search(r"\bR\d+\b", out), "cites a requirement number"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_demo_removes_its_store():
    p, work = demo()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "temporary store is removed" in p.stdout
    assert not os.path.exists(work), f"{work} (with private keys) left behind"


def test_demo_refuses_unknown_options():
    p = subprocess.run([os.path.join(ROOT, "scripts", "demo"), "--bogus"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "usage: scripts/demo" in p.stderr
