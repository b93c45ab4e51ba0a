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

import calls_util

from calls_util import FQDN, make_store
from flow_util import (Call, Rtp, dominant_hz, messages, offer, read_message, silence,
                       skip_greeting, spool_files, tone, voiced_ms, wait_messages)
from sip_util import wait_for
from test_media_serve import pki  # noqa: F401 (fixture)

DIVERT = "Diversion: <sip:{ext}@pbx.example.com>;reason={reason};counter=1"



def store(tmp, conf="", **kw):
    o = make_store(tmp, conf="silence_timeout = 3\n" + conf,
                   gateways=[("gw1", "127.0.0.1", "dp1")],
                   mailboxes=[("2001", "dp1"), ("2002", "dp1")], **kw)
    o.ok("mailbox", "set", "2001", "--email", "alice@example.com")
    return o


def uid_of(o, ext):
    return o.json("mailbox", "show", ext)["id"]


def greeting_end(rtp, gap=0.6):
    """Waits until the server's audio has started and then paused for gap
    seconds (the greeting and the beep are over)."""
    def over():
        if not rtp.rx:
            return False
        return time.time() - rtp.rx[-1][0] >= gap
    assert wait_for(over, timeout=30), "no greeting from the server"


def place(o, tmp, ext="2001", reason="no-answer", ruri=None, extra=(), rtp=None,
          caller="5550100"):
    rtp = rtp or Rtp()
    hdr = []
    if ext:
        hdr = ["--header", DIVERT.format(ext=ext, reason=reason)]
    c = Call(tmp, o.tcp, ruri or f"sip:8000@{FQDN}", offer(rtp.port), *hdr, *extra,
             "--from", caller, "--wait-bye", 60000)
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


def flow_of(o, n=1):
    c = [c for c in o.json("calls")["calls"] if c["state"] == "confirmed"]
    return c[0]["flow"] if c else None


def wait_recording(o, timeout=30):
    assert wait_for(lambda: flow_of(o) == "recording", timeout=timeout), o.log()[-2000:]


def test_silence_ends_the_recording(tmp_path):
    """1.5 s of 500 Hz, then silent frames: silence_timeout (3 s here)
    ends the recording; the message holds the tone and the silence up to
    the timeout, then "recorded, goodbye" and BYE."""
    o = store(tmp_path)
    o.proc = o.serve()
    c, rtp = place(o, tmp_path)
    try:
        skip_greeting(rtp)
        wait_recording(o)
        rtp.say(("audio", tone(500, 1500)))
        r = c.finish()
    finally:
        rtp.close()
    assert r["remote_bye"], r
    msg, pcm = read_message(wait_messages(o, 1)[0])
    assert 1400 <= voiced_ms(pcm) <= 1600, voiced_ms(pcm)
    assert abs(dominant_hz(pcm) - 500) < 15
    # the tone, then silence_timeout (3 s) of silence (and what was in
    # flight when openum stopped: the tone never again)
    assert 4.2 <= len(pcm) / 8000 <= 8.0, len(pcm) / 8000
    first = next(i for i in range(0, len(pcm), 160) if voiced_ms(pcm[i:i + 160]))
    assert voiced_ms(pcm[first + 12000 + 160:]) == 0
    assert "end_reason=silence" in o.log()
    assert o.stop(o.proc) == 0


def test_length_limit_ends_the_recording(tmp_path):
    """The dial plan's --max-message (3 s): 6 s of tone sent, exactly 3 s
    recorded, then "recorded, goodbye" and BYE."""
    o = store(tmp_path)
    o.ok("dialplan", "set", "dp1", "--max-message", "3")
    o.proc = o.serve()
    c, rtp = place(o, tmp_path)
    try:
        skip_greeting(rtp)
        wait_recording(o)
        rtp.say(("audio", tone(900, 6000)))
        r = c.finish()
    finally:
        rtp.close()
    assert r["remote_bye"], r
    msg, pcm = read_message(wait_messages(o, 1)[0])
    assert len(pcm) == 3 * 8000, len(pcm)
    assert voiced_ms(pcm) >= 2900
    assert abs(dominant_hz(pcm) - 900) < 15
    assert "end_reason=limit" in o.log()
    assert o.stop(o.proc) == 0


def test_too_short_message_is_discarded(tmp_path):
    """Half a second of voice then `#` (min_message_seconds = 1): no
    message, the spool removed, a log line says why; the caller hears
    goodbye and openum hangs up."""
    o = store(tmp_path)
    o.proc = o.serve()
    c, rtp = place(o, tmp_path)
    try:
        skip_greeting(rtp)
        wait_recording(o)
        rtp.say(("audio", tone(800, 500)), ("dtmf", "#"))
        r = c.finish()
    finally:
        rtp.close()
    assert r["remote_bye"], r
    assert wait_for(lambda: "message discarded" in o.log(), timeout=10)
    time.sleep(1)
    assert messages(o) == []
    assert not [f for f in spool_files(o) if f.endswith((".json", ".raw", ".end"))], \
        spool_files(o)
    assert o.stop(o.proc) == 0


def test_star_skips_the_greeting_and_the_greeting_is_heard(tmp_path):
    """The greeting the caller hears is sound for seconds; with `*` pressed
    at once only the beep follows."""
    o = store(tmp_path)
    o.proc = o.serve()
    # without `*`: the whole greeting
    c, rtp = place(o, tmp_path)
    try:
        wait_recording(o)
        full = rtp.received()
        rtp.say(("dtmf", "#"))
        c.finish()
    finally:
        rtp.close()
    # with `*`
    c, rtp = place(o, tmp_path)
    try:
        assert wait_for(lambda: rtp.rx, timeout=10)
        rtp.say(("dtmf", "*"))
        wait_recording(o)
        skipped = rtp.received()
        rtp.say(("dtmf", "#"))
        c.finish()
    finally:
        rtp.close()
    assert voiced_ms(full) >= 4000, voiced_ms(full)
    assert voiced_ms(skipped) <= voiced_ms(full) - 2500, (voiced_ms(skipped), voiced_ms(full))
    # what follows the skip is the beep: 1 kHz
    assert abs(dominant_hz(skipped[-3200:]) - 1000) < 20, dominant_hz(skipped[-3200:])
    assert o.stop(o.proc) == 0


def test_own_busy_greeting_plays(tmp_path):
    """A busy call to a mailbox with its own busy greeting: the caller
    hears that file (a 1.5 s 1300 Hz tone here), then the beep."""
    import wave
    o = store(tmp_path)
    wav = tmp_path / "busy.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        t = numpy.arange(24000) / 16000.0
        w.writeframes((9000 * numpy.sin(2 * numpy.pi * 1300 * t)).astype("<i2").tobytes())
    o.ok("mailbox", "set", "2001", "--greeting", f"busy={wav}")
    o.proc = o.serve()
    c, rtp = place(o, tmp_path, reason="user-busy")
    try:
        wait_recording(o)
        heard = rtp.received()
        rtp.say(("dtmf", "#"))
        c.finish()
    finally:
        rtp.close()
    # 1.5 s of the greeting + 0.4 s beep
    assert 1700 <= voiced_ms(heard) <= 2100, voiced_ms(heard)
    assert abs(dominant_hz(heard[:8000]) - 1300) < 20, dominant_hz(heard[:8000])
    assert o.stop(o.proc) == 0


ASK = "input_timeout = 1\ninput_failures = 2\n"


def test_ask_extension_valid_then_deposit(tmp_path):
    """A call to the pilot: "please enter the extension", 2002 entered,
    2002's greeting, a message in 2002's mailbox."""
    o = store(tmp_path, conf=ASK)
    o.proc = o.serve()
    c, rtp = place(o, tmp_path, ext=None)
    try:
        assert wait_for(lambda: flow_of(o) in ("ask", "collect"), timeout=10)
        rtp.say(*[("dtmf", d) for d in "2002"])
        wait_recording(o)
        assert o.json("calls")["calls"][0]["mailbox"] == "2002"
        rtp.say(("audio", tone(650, 1500)), ("dtmf", "#"))
        r = c.finish()
    finally:
        rtp.close()
    assert r["remote_bye"]
    m = wait_messages(o, 1)
    assert len(m) == 1 and uid_of(o, "2002") in m[0], m
    msg, pcm = read_message(m[0])
    assert abs(dominant_hz(pcm) - 650) < 15 and voiced_ms(pcm) >= 1400
    assert o.stop(o.proc) == 0


def test_ask_extension_invalid_then_nothing_then_goodbye(tmp_path):
    """9999 (no such mailbox) → "that extension is not valid", asked again;
    nothing entered → with input_failures = 2, goodbye and BYE. Never a
    silent hang-up: the caller heard each prompt."""
    o = store(tmp_path, conf=ASK)
    o.proc = o.serve()
    c, rtp = place(o, tmp_path, ext=None)
    try:
        assert wait_for(lambda: flow_of(o) in ("ask", "collect"), timeout=10)
        rtp.say(*[("dtmf", d) for d in "9999"])
        r = c.finish()
    finally:
        rtp.close()
    assert r["remote_bye"], r
    log = o.log()
    assert 'entered=9999 why="not valid"' in log, log[-2000:]
    assert 'why="nothing heard"' in log
    # prompts, "not valid", the prompt again, "not heard", "goodbye"
    assert voiced_ms(rtp.received()) >= 4000
    assert messages(o) == []
    assert o.stop(o.proc) == 0


def test_unknown_mailbox_announced_then_bye(tmp_path):
    o = store(tmp_path)
    o.proc = o.serve()
    c, rtp = place(o, tmp_path, ext="2999")
    try:
        r = c.finish()
    finally:
        rtp.close()
    assert r["remote_bye"], r
    # "the mailbox is not available. Goodbye." was heard before the BYE
    assert voiced_ms(rtp.received()) >= 1200, voiced_ms(rtp.received())
    assert "no such mailbox" in o.log()
    assert o.stop(o.proc) == 0


def test_subscriber_access_announced_then_bye(tmp_path):
    """The pilot called from a mailbox's own number (subscriber access, not
    offered yet): "this service is not available. Goodbye." and BYE."""
    o = store(tmp_path)
    o.proc = o.serve()
    c, rtp = place(o, tmp_path, ext=None, caller="2002")
    try:
        assert wait_for(lambda: o.json("calls")["calls"], timeout=10)
        assert o.json("calls")["calls"][0]["outcome"] == "subscriber"
        r = c.finish()
    finally:
        rtp.close()
    assert r["remote_bye"], r
    assert voiced_ms(rtp.received()) >= 1200, voiced_ms(rtp.received())
    assert messages(o) == []
    assert o.stop(o.proc) == 0


def test_503_below_min_free_mb_and_calls_in_progress_go_on(tmp_path):
    o = store(tmp_path)
    o.proc = o.serve()
    c, rtp = place(o, tmp_path)
    try:
        skip_greeting(rtp)
        wait_recording(o)
        rtp.say(("audio", tone(750, 1500)))
        # the spool's file system is now "below min_free_mb"
        conf = open(os.path.join(o.data, "openum.conf")).read()
        o.conf(conf.replace("[server]\n", "") + "min_free_mb = 10000000\n")
        o.ok("reload")
        r2 = calls_util.place_call(o.tcp, "--from", "5550111")
        assert r2["status"] == 503, r2
        assert "disk space" in r2["response"]
        rtp.say(("dtmf", "#"))
        r = c.finish()
    finally:
        rtp.close()
    assert r["remote_bye"]
    # the call in progress was recorded and delivered all the same
    msg, pcm = read_message(wait_messages(o, 1)[0])
    assert abs(dominant_hz(pcm) - 750) < 15
    assert o.events("--id", "1173")
    assert o.stop(o.proc) == 0


def test_drain_on_sigterm_delivers_the_message_then_exits(tmp_path):
    """SIGTERM mid-message: new calls get 503, the call goes on until
    drain_timeout (2 s), then openum's BYE; the message is delivered with
    the audio up to then; the server exits 0."""
    o = store(tmp_path, conf="drain_timeout = 2\n")
    o.proc = o.serve()
    c, rtp = place(o, tmp_path)
    try:
        skip_greeting(rtp)
        wait_recording(o)
        rtp.say(("audio", tone(550, 8000)))
        time.sleep(1.0)
        o.proc.send_signal(signal.SIGTERM)
        assert wait_for(lambda: "draining" in o.log(), timeout=5)
        r2 = calls_util.place_call(o.tcp, "--from", "5550112")
        assert r2["status"] == 503, r2
        r = c.finish()
        assert o.proc.wait(30) == 0, o.log()[-3000:]
    finally:
        rtp.close()
    assert r["remote_bye"], r
    m = messages(o)
    assert len(m) == 1, o.log()[-3000:]
    msg, pcm = read_message(m[0])
    # the tone up to openum's BYE: what came before the signal, cut by the
    # drain long before the 8 s were sent
    v = voiced_ms(pcm)
    assert 1000 <= v <= 7000 and len(pcm) < 7 * 8000, (v, len(pcm))
    assert abs(dominant_hz(pcm) - 550) < 15
    assert "Recovered" not in msg.as_string() and "[recovered]" not in msg["Subject"]
    end = [f for f in spool_files(o) if f.endswith(".end")]
    if end:
        assert json.load(open(os.path.join(o.data, "spool", end[0])))["end_reason"] == "drain"
    assert "end_reason=drain" in o.log()


def test_deposit_over_mutual_tls_and_srtp_on_a_secured_plan(tmp_path, pki):
    """Secured plan, mutual TLS, SRTP (the gateway's key ours, openum's from
    its answer): 2.5 s of 600 Hz sent with om-testrtp after the beep,
    silence ends the recording; the delivered message says Secured, TLS
    and the suite, and its audio is the tone. Neither key nor audio is in
    the server's log."""
    from media_util import TESTRTP, key_b64
    o = make_store(tmp_path, conf="silence_timeout = 3\n", plans=(("sec", "secured"),),
                   mailboxes=[("3001", "sec")])
    o.ok("cert", "import", pki.server.both_path, "--no-reload")
    o.ok("cert", "import", pki.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("gateway", "new", "gwx", "--address", "127.0.0.23", "--tls-name", "gwx.test.example",
         "--transport", "tls", "--port", "5061", "--dialplan", "sec")
    o.ok("server", "set", "--dialplans", "sec")
    o.proc = o.serve()
    assert o.json("status")["mode"] == "secured"
    suite = "AES_CM_128_HMAC_SHA1_80"
    k = key_b64(suite, 11)
    rtp = Rtp(bind="127.0.0.23")
    r = rtp.port
    rtp.close()  # only its port: om-testrtp sends from it
    sdp = ("v=0\r\no=gw 1 1 IN IP4 127.0.0.23\r\ns=-\r\nc=IN IP4 127.0.0.23\r\n"
           f"t=0 0\r\nm=audio {r} RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
           "a=rtpmap:101 telephone-event/8000\r\n"
           f"a=crypto:1 {suite} inline:{k}\r\na=sendrecv\r\n")
    c = Call(tmp_path, o.tls, f"sip:8000@{FQDN}", sdp, "--header",
             DIVERT.format(ext="3001", reason="no-answer"), "--from", "5550123",
             "--wait-bye", 60000, bind="127.0.0.23", tls=(pki.gw, pki.root))
    port = c.media_port()
    server_key = re.search(r"inline:([A-Za-z0-9+/=]+)", c.answer).group(1)
    wait_recording(o)
    p = __import__("subprocess").run(
        [TESTRTP, "send", "--to", f"127.0.0.1:{port}", "--from", f"127.0.0.23:{r}", "--tone",
         "600:2500", "--rate", "1", "--suite", suite, "--key", k], capture_output=True,
        text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    res = c.finish()
    assert res["remote_bye"], res
    msg, pcm = read_message(wait_messages(o, 1)[0])
    assert msg["X-Openum-Security-Mode"].lower() == "secured"
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_content()
    assert suite in text and "TLS" in text.upper(), text
    assert 2400 <= voiced_ms(pcm) <= 2600, voiced_ms(pcm)
    assert abs(dominant_hz(pcm) - 600) < 15
    assert o.stop(o.proc) == 0
    log = o.log()
    assert k not in log and server_key not in log and "inline:" not in log
    # no audio either: no long base64 or binary run in any line
    assert not re.search(r"[A-Za-z0-9+/]{120,}", log)
    assert all(ch.isprintable() or ch in "\n\t" for ch in log)
    for f in messages(o):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    for f in spool_files(o):
        assert stat.S_IMODE(os.stat(os.path.join(o.data, "spool", f)).st_mode) == 0o600, f


def test_caller_hangs_up_mid_message_delivered(tmp_path):
    """`*` skips the greeting, 450 Hz is said, and the caller hangs up
    (BYE 4 s after the answer) in the middle of it: the message is
    delivered with the tone, ended as `hangup`."""
    o = store(tmp_path)
    o.proc = o.serve()
    rtp = Rtp()
    c = Call(tmp_path, o.tcp, f"sip:8000@{FQDN}", offer(rtp.port), "--header",
             DIVERT.format(ext="2002", reason="user-busy"), "--from", "5550133",
             "--bye-after", 4000)
    rtp.say(("dtmf", "*"), ("audio", tone(450, 6000)))
    rtp.start(c.media_port())
    try:
        r = c.finish()
    finally:
        rtp.close()
    assert r["bye_status"] == 200 and not r["remote_bye"], r
    m = wait_messages(o, 1)
    assert len(m) == 1, o.log()[-3000:]
    msg, pcm = read_message(m[0])
    assert abs(dominant_hz(pcm) - 450) < 15 and voiced_ms(pcm) >= 1000, voiced_ms(pcm)
    assert msg["X-Openum-Reason"] == "busy", msg["X-Openum-Reason"]
    assert "end_reason=hangup" in o.log()
    assert o.stop(o.proc) == 0


def test_server_nonewcalls_refuses_new_calls_and_the_call_in_progress_is_delivered(tmp_path):
    o = store(tmp_path)
    o.proc = o.serve()
    c, rtp = place(o, tmp_path)
    try:
        skip_greeting(rtp)
        wait_recording(o)
        rtp.say(("audio", tone(850, 1500)))
        o.ok("server", "set", "--status", "nonewcalls")
        r2 = calls_util.place_call(o.tcp, "--from", "5550144")
        assert r2["status"] == 503, r2
        rtp.say(("dtmf", "#"))
        r = c.finish()
    finally:
        rtp.close()
    assert r["remote_bye"]
    msg, pcm = read_message(wait_messages(o, 1)[0])
    assert abs(dominant_hz(pcm) - 850) < 15
    # and the server keeps running
    assert o.proc.poll() is None
    o.ok("server", "set", "--status", "enabled")
    assert o.stop(o.proc) == 0


def test_recorded_name_in_the_default_greeting(tmp_path):
    """No greeting of its own but a recorded name: the caller hears the
    name (a 1 s 1100 Hz tone here) instead of "the person at extension
    2 0 0 1", then "is not available..." and the beep."""
    import wave
    o = store(tmp_path)
    wav = tmp_path / "name.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(tone(1100, 1000).tobytes())
    o.ok("mailbox", "set", "2001", "--greeting", f"name={wav}")
    o.proc = o.serve()
    c, rtp = place(o, tmp_path)
    try:
        wait_recording(o)
        heard = rtp.received()
        rtp.say(("dtmf", "#"))
        c.finish()
    finally:
        rtp.close()
    first = next(i for i in range(0, len(heard), 160) if voiced_ms(heard[i:i + 160]))
    assert abs(dominant_hz(heard[first:first + 7200]) - 1100) < 20
    # the prompts follow the name: seconds more of speech and the beep
    assert voiced_ms(heard) >= 1000 + 2500, voiced_ms(heard)
    assert o.stop(o.proc) == 0
