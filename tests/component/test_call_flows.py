"""The call flows against the real `openum serve` (R11): a caller diverted
to a mailbox hears the greeting (recorded here, on the gateway's side, and
checked to be sound, not silence), leaves a message after the beep, and
the message arrives in the Maildir — parsed with Python's `email`, its
attachment decoded and its audio compared with what was sent (tone
frequency and length). `#`, silence and the dial plan's length limit each
end the recording; too short a message is discarded; `*` skips the
greeting; asking for the extension (valid, invalid, nothing), an unknown
mailbox announced then BYE; 503 when the spool's disk is low; the drain on
SIGTERM delivers the message in progress; keys and audio never in the log;
message files 0600.

The gateway side is the project's own: om-testcall for SIP (src/testcall/)
and an RTP endpoint written here (flow_util.Rtp), G.711 by Python's audioop."""
import json
import os
import re
import signal
import stat
import time

import numpy
import pytest

import calls_util

from calls_util import FQDN, make_store
from flow_util import (Call, Rtp, dominant_hz, messages, offer, read_message, silence,
                       spool_files, tone, voiced_ms, wait_messages)
from sip_util import wait_for

DIVERT = "Diversion: <sip:{ext}@pbx.example.com>;reason={reason};counter=1"


@pytest.fixture(autouse=True)
def _no_server_left():
    n = len(calls_util.STORES)
    yield
    for o in calls_util.STORES[n:]:
        if not getattr(o, "module_scoped", False):
            o.close()
    del calls_util.STORES[n:]


def store(tmp, conf="", **kw):
    o = make_store(tmp, conf="silence_timeout = 3\n" + conf,
                   gateways=[("gw1", "127.0.0.1", "dp1")],
                   mailboxes=[("2001", "dp1"), ("2002", "dp1")], **kw)
    o.ok("mailbox", "set", "2001", "--email", "alice@example.com")
    return o


def uid_of(o, ext):
    return o.json("mailbox", "show", ext)["uid"]


def greeting_end(rtp, gap=0.6):
    """Waits until the server's audio has started and then paused for gap
    seconds (the greeting and the beep are over)."""
    def over():
        if not rtp.rx:
            return False
        return time.time() - rtp.rx[-1][0] >= gap
    assert wait_for(over, timeout=30), "no greeting from the server"


def place(o, tmp, ext="2001", reason="no-answer", ruri=None, extra=(), rtp=None):
    rtp = rtp or Rtp()
    hdr = []
    if ext:
        hdr = ["--header", DIVERT.format(ext=ext, reason=reason)]
    c = Call(tmp, o.tcp, ruri or f"sip:8000@{FQDN}", offer(rtp.port), *hdr, *extra,
             "--from", "5550100", "--wait-bye", 60000)
    rtp.start(c.media_port())
    return c, rtp


def test_deposit_over_tcp_unsecured_pound_ends(tmp_path):
    """Unsecured plan over TCP: greeting (sound, heard by the caller) →
    beep → 2 s of 700 Hz → `#` → "recorded, goodbye" and openum's BYE; the
    Maildir message is MIME, its WAV attachment holds 2 s of 700 Hz."""
    o = store(tmp_path)
    o.proc = o.serve()
    c, rtp = place(o, tmp_path)
    try:
        greeting_end(rtp)
        greeting = rtp.received()
        n_greeting = len(rtp.rx)
        rtp.say(("audio", tone(700, 2000)), ("audio", silence(200)), ("dtmf", "#"))
        r = c.finish()
    finally:
        rtp.close()
    # The greeting is sound, several seconds of it (prompts and the beep).
    assert voiced_ms(greeting) >= 2000, voiced_ms(greeting)
    # After `#`, openum spoke again ("your message has been recorded,
    # goodbye") and then hung up.
    assert r["remote_bye"], r
    assert len(rtp.rx) > n_greeting + 25
    m = wait_messages(o, 1)
    assert len(m) == 1, (m, o.log()[-3000:])
    msg, pcm = read_message(m[0])
    assert "alice@example.com" in msg["To"]
    assert "5550100" in msg["From"] and "5550100" in msg["Subject"]
    assert msg["X-Openum-Extension"] == "2001"
    # The audio: 2 s of 700 Hz (within a packet or two), nothing of the greeting.
    v = voiced_ms(pcm)
    assert 1900 <= v <= 2200, v
    assert abs(dominant_hz(pcm) - 700) < 15, dominant_hz(pcm)
    # files 0600, spool gone or marked delivered
    assert stat.S_IMODE(os.stat(m[0]).st_mode) == 0o600
    ev = o.events("--id", "1170")
    assert ev, o.log()[-2000:]
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    log = o.log()
    assert "end_reason=dtmf" in log or "dtmf" in log
