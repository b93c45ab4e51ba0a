"""Attacks on the call flows of the real `openum serve` (R11): a caller
who hangs up at the worst moments, digits flooded or typed where they do
not belong, media that stops while a message is recorded, two calls into
one mailbox at once, a Call-ID used again, a greeting file broken on disk,
and test calls trying to reach what they must not. Each test checks what
the mailbox holds (the messages parsed, their audio decoded) and that the
server is still answering afterwards.

The gateway side is the project's own: om-testcall (src/testcall/), a SIP
dialog written by hand over TCP (calls_util.RawSip) and the RTP endpoint
of flow_util.Rtp."""
import os
import re
import time

import calls_util

from calls_util import (FQDN, RawSip, in_dialog_text, invite_text, make_store, status_of,
                        to_tag_of)
from flow_util import (Call, Rtp, dominant_hz, messages, offer, prompt_heard, read_message,
                       silence, skip_greeting, spool_files, tone, voiced_ms, wait_messages)
from sip_util import wait_for

DIVERT = "Diversion: <sip:{ext}@pbx.example.com>;reason={reason};counter=1"



def store(tmp, conf="", **kw):
    kw.setdefault("gateways", [("gw1", "127.0.0.1", "dp1")])
    kw.setdefault("mailboxes", [("2001", "dp1"), ("2002", "dp1")])
    if "silence_timeout" not in conf:
        conf = "silence_timeout = 3\n" + conf
    return make_store(tmp, conf=conf, **kw)


def uid_of(o, ext):
    return o.json("mailbox", "show", ext)["id"]


def flows(o):
    return [c.get("flow") for c in o.json("calls")["calls"]]


def wait_flow(o, state, timeout=30):
    assert wait_for(lambda: state in flows(o), timeout=timeout), (flows(o), o.log()[-2000:])


def alive(o):
    """The server still answers on its control socket."""
    assert o.json("status"), o.log()[-2000:]


class Refused(Exception):
    pass


class RawCall:
    """A dialog written by hand over TCP: INVITE (with Diversion), the 200
    read, ACK; then BYE, re-INVITE or nothing, on the test's word."""

    def __init__(self, o, ext="2001", call_id=None, from_tag="gwtag", extra="", rtp=None,
                 src="127.0.0.1"):
        self.rtp = rtp or Rtp(bind=src)
        self.call_id = call_id or f"raw-{os.urandom(6).hex()}@gw"
        self.from_tag = from_tag
        self.src = src
        self.sip = RawSip(o.tcp, src=src)
        hdr = DIVERT.format(ext=ext, reason="no-answer") + "\r\n" if ext else ""
        self.sip.send(invite_text(self.call_id, src=src, from_tag=from_tag,
                                  extra=hdr + extra,
                                  body=offer(self.rtp.port, src)))
        m = self.sip.read_until(lambda h: status_of(h) >= 200, timeout=15)
        if not m:
            self.close()
            raise Refused("no final response")
        self.status = status_of(m[0])
        self.head, self.body = m
        self.to_tag = to_tag_of(m[0])
        self.cseq = 2
        if self.status == 200:
            self.sip.send(in_dialog_text("ACK", self.call_id, self.to_tag, src=src, cseq=1,
                                         from_tag=from_tag))
            port = int(re.search(r"m=audio (\d+)", self.body).group(1))
            self.rtp.start(port, src)

    def request(self, method, extra="", body=""):
        self.sip.send(in_dialog_text(method, self.call_id, self.to_tag, src=self.src,
                                     cseq=self.cseq, from_tag=self.from_tag, extra=extra,
                                     body=body))
        self.cseq += 1

    def bye(self):
        self.request("BYE")

    def close(self):
        self.rtp.close()
        self.sip.close()


# ------------------------------------------------------------ timing


def test_hangup_during_greeting_beep_and_right_after_leaves_no_message(tmp_path):
    """The caller hangs up while the greeting plays, while the beep plays,
    and just as the recording starts: no message (nothing was said), no
    spool left behind, and the server answers the next call, which is
    delivered."""
    o = store(tmp_path)
    o.proc = o.serve()
    for when in ("greeting", "beep", "recording"):
        c = RawCall(o)
        try:
            assert c.status == 200, c.head
            if when == "beep":
                # `*` skips to the beep at once: the BYE follows the key
                assert wait_for(lambda: c.rtp.rx, timeout=30)
                c.rtp.say(("dtmf", "*"))
                assert wait_for(lambda: not c.rtp.script, timeout=10)
                time.sleep(0.15)
            else:
                wait_flow(o, when)
            c.bye()
            assert wait_for(lambda: not o.json("calls")["calls"], timeout=15), o.log()[-2000:]
        finally:
            c.close()
    time.sleep(1)
    assert messages(o) == [], o.log()[-3000:]
    assert not [f for f in spool_files(o) if f.endswith((".json", ".raw"))], spool_files(o)
    # the server goes on: a real message afterwards
    c = RawCall(o)
    try:
        skip_greeting(c.rtp)
        wait_flow(o, "recording")
        c.rtp.say(("audio", tone(700, 1500)), ("dtmf", "#"))
        assert len(wait_messages(o, 1)) == 1, o.log()[-3000:]
    finally:
        c.close()
    msg, pcm = read_message(messages(o)[0])
    assert abs(dominant_hz(pcm) - 700) < 15
    assert o.stop(o.proc) == 0


def test_media_stopping_during_recording_still_delivers(tmp_path):
    """The gateway's RTP stops mid-message (rtp_timeout = 5 s, silence
    detection off): openum hangs up, and the message — the tone that was
    said — is delivered now, as a complete message, not only at the next
    start as "recovered"."""
    o = store(tmp_path, conf="rtp_timeout = 5\nsilence_timeout = 0\n")
    o.proc = o.serve()
    c = RawCall(o)
    try:
        skip_greeting(c.rtp)
        wait_flow(o, "recording")
        c.rtp.say(("audio", tone(800, 1500)))
        time.sleep(1.7)
        c.rtp.running = False  # no more packets at all
        m = c.sip.read_until(lambda h: h.startswith("BYE "), timeout=30)
        assert m, o.log()[-3000:]
        assert wait_for(lambda: messages(o), timeout=30), o.log()[-3000:]
    finally:
        c.close()
    msg, pcm = read_message(messages(o)[0])
    assert abs(dominant_hz(pcm) - 800) < 15
    assert 1300 <= voiced_ms(pcm) <= 1700, voiced_ms(pcm)
    assert "[recovered]" not in msg["Subject"], msg["Subject"]
    assert o.stop(o.proc) == 0


def test_hold_during_recording_then_resume_message_delivered(tmp_path):
    """A re-INVITE to hold (sendonly) during the recording, then back to
    sendrecv: the call goes on, one message with the tone said before and
    after."""
    o = store(tmp_path)
    o.proc = o.serve()
    c = RawCall(o)
    try:
        skip_greeting(c.rtp)
        wait_flow(o, "recording")
        c.rtp.say(("audio", tone(600, 1000)))
        time.sleep(1.2)
        body = offer(c.rtp.port).replace("a=sendrecv", "a=sendonly")
        c.request("INVITE", extra="Content-Type: application/sdp\r\nContact: "
                  "<sip:2002@127.0.0.1:5999;transport=tcp>\r\n", body=body)
        m = c.sip.read_until(lambda h: status_of(h) >= 200, timeout=10)
        assert m and status_of(m[0]) == 200, m
        c.sip.send(in_dialog_text("ACK", c.call_id, c.to_tag, cseq=c.cseq - 1))
        c.rtp.say(("audio", tone(600, 1000)), ("dtmf", "#"))
        assert wait_for(lambda: messages(o), timeout=30), o.log()[-3000:]
    finally:
        c.close()
    assert len(messages(o)) == 1
    msg, pcm = read_message(messages(o)[0])
    assert abs(dominant_hz(pcm) - 600) < 15
    assert voiced_ms(pcm) >= 1800, voiced_ms(pcm)
    assert o.stop(o.proc) == 0


# ------------------------------------------------------------ mailbox


def test_two_calls_into_one_mailbox_at_once_two_messages(tmp_path):
    """Two callers leave a message in 2001 at the same time: two messages,
    each with its own audio (500 Hz and 1200 Hz), never merged."""
    o = store(tmp_path)
    o.proc = o.serve()
    a, b = RawCall(o), RawCall(o)
    try:
        skip_greeting(a.rtp)
        skip_greeting(b.rtp)
        assert wait_for(lambda: flows(o).count("recording") == 2, timeout=30), flows(o)
        a.rtp.say(("audio", tone(500, 1500)))
        b.rtp.say(("audio", tone(1200, 2000)))
        time.sleep(2.3)
        a.rtp.say(("dtmf", "#"))
        b.rtp.say(("dtmf", "#"))
        m = wait_messages(o, 2)
    finally:
        a.close()
        b.close()
    time.sleep(1)
    m = messages(o)
    assert len(m) == 2, (m, o.log()[-3000:])
    got = sorted(round(dominant_hz(read_message(f)[1]) / 100) * 100 for f in m)
    assert got == [500, 1200], got
    ids = {read_message(f)[0]["Message-ID"] for f in m}
    assert len(ids) == 2
    assert o.stop(o.proc) == 0


def test_call_id_reused_by_a_later_call_is_a_second_message(tmp_path):
    """A gateway that uses the same Call-ID and From tag for two calls (one
    after the other): two messages — the dedup by Message-ID recognises a
    re-delivery of one call, never drops a different call."""
    o = store(tmp_path)
    o.proc = o.serve()
    for hz in (450, 1100):
        c = RawCall(o, call_id="same-call-id@gw", from_tag="sametag")
        try:
            assert c.status == 200, c.head
            skip_greeting(c.rtp)
            wait_flow(o, "recording")
            c.rtp.say(("audio", tone(hz, 1500)), ("dtmf", "#"))
            n = 1 if hz == 450 else 2
            assert len(wait_messages(o, n)) == n, o.log()[-3000:]
            c.sip.read_until(lambda h: h.startswith("BYE "), timeout=20)
            assert wait_for(lambda: not o.json("calls")["calls"], timeout=15)
        finally:
            c.close()
    m = messages(o)
    assert len(m) == 2, m
    got = sorted(round(dominant_hz(read_message(f)[1]) / 50) * 50 for f in m)
    assert got == [450, 1100], got
    assert o.stop(o.proc) == 0


def test_corrupt_greeting_file_plays_the_default_and_records(tmp_path):
    """The mailbox's own greeting replaced on disk by garbage: a log line,
    the built-in greeting (sound, several seconds) and the beep, and the
    message is recorded."""
    import wave
    o = store(tmp_path)
    wav = tmp_path / "g.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(tone(1300, 1000).tobytes())
    o.ok("mailbox", "set", "2001", "--greeting", f"unavailable={wav}")
    files = [os.path.join(dp, f) for dp, _, fs in os.walk(o.data) for f in fs
             if "greeting" in os.path.relpath(os.path.join(dp, f), o.data)]
    assert files, "greeting not stored"
    for f in files:
        with open(f, "wb") as fh:
            fh.write(b"RIFF\xff\xff\xff\xffWAVEjunk" + os.urandom(3000))
    o.proc = o.serve()
    c = RawCall(o)
    try:
        wait_flow(o, "recording")
        heard = c.rtp.received()
        c.rtp.say(("audio", tone(700, 1500)), ("dtmf", "#"))
        assert wait_for(lambda: messages(o), timeout=30), o.log()[-3000:]
    finally:
        c.close()
    assert voiced_ms(heard) >= 2500, voiced_ms(heard)
    assert "greeting cannot be played" in o.log()
    msg, pcm = read_message(messages(o)[0])
    assert abs(dominant_hz(pcm) - 700) < 15
    assert o.stop(o.proc) == 0


# ------------------------------------------------------------ digits


ASK = "input_timeout = 1\ninput_failures = 2\n"


def test_ask_extension_flood_of_digits_over_info_is_bounded(tmp_path):
    """Three hundred digits sent in INFO requests to the "enter the
    extension" prompt: no deposit, the caller is told and hung up on, the
    server stays up and answers the next call."""
    o = store(tmp_path, conf=ASK)
    o.proc = o.serve()
    c = RawCall(o, ext=None)
    try:
        for i in range(300):
            c.request("INFO", extra="Content-Type: application/dtmf-relay\r\n",
                      body=f"Signal={'0123456789*'[i % 11]}\r\nDuration=100\r\n")
        m = c.sip.read_until(lambda h: h.startswith("BYE "), timeout=60)
        assert m, o.log()[-3000:]
    finally:
        c.close()
    assert messages(o) == []
    alive(o)
    assert o.stop(o.proc) == 0


def test_ask_extension_of_another_plan_never_deposits_there(tmp_path):
    """The pilot of dp1 asked; the caller enters 3001, a mailbox of dp2:
    "not valid", never a message in dp2's mailbox."""
    o = store(tmp_path, conf=ASK, plans=(("dp1", "unsecured"), ("dp2", "unsecured")),
              mailboxes=[("2001", "dp1"), ("3001", "dp2")])
    o.proc = o.serve()
    c = RawCall(o, ext=None)
    try:
        wait_flow(o, "ask")
        c.rtp.say(*[("dtmf", d) for d in "3001"])
        m = c.sip.read_until(lambda h: h.startswith("BYE "), timeout=60)
        assert m, o.log()[-3000:]
    finally:
        c.close()
    assert 'entered=3001 why="not valid"' in o.log()
    assert messages(o) == []
    assert o.stop(o.proc) == 0


def test_test_call_to_a_mailbox_of_another_plan_is_not_delivered(tmp_path):
    """A test call with `;deliver` from gw1 (dp1) diverted to 3001, a
    mailbox of dp2: never a message in dp2's mailbox."""
    o = store(tmp_path, plans=(("dp1", "unsecured"), ("dp2", "unsecured")),
              mailboxes=[("2001", "dp1"), ("3001", "dp2")])
    o.proc = o.serve()
    c = RawCall(o, ext="3001", extra="X-Openum-Test: connectivity;deliver\r\n")
    try:
        if c.status == 200:
            c.rtp.say(("audio", tone(700, 1500)), ("dtmf", "#"))
            c.sip.read_until(lambda h: h.startswith("BYE "), timeout=30)
    finally:
        c.close()
    time.sleep(2)
    assert messages(o) == [], o.log()[-2000:]
    assert o.stop(o.proc) == 0


def test_test_call_from_an_unknown_address_is_refused(tmp_path):
    """X-Openum-Test from an address that is no gateway: refused like any
    call from there (no answer, no message)."""
    o = store(tmp_path)
    o.proc = o.serve()
    try:
        c = RawCall(o, src="127.0.0.77", extra="X-Openum-Test: connectivity;deliver\r\n")
        c.close()
        assert c.status >= 400, c.head
    except (Refused, OSError):
        pass  # the connection is closed at accept (1131)
    assert not o.json("calls")["calls"]
    assert messages(o) == []
    assert o.stop(o.proc) == 0


def test_cancel_racing_the_answer_leaves_nothing(tmp_path):
    """CANCEL sent a few ms after the INVITE, at several delays, so it
    crosses the 200: each call either never starts or ends; no call is left
    in the table, no message, no spool, and a normal call works after."""
    o = store(tmp_path)
    o.proc = o.serve()
    for ms in (0, 1, 2, 5, 10, 20, 40, 80):
        r = calls_util.place_call(o.tcp, "--header", DIVERT.format(ext="2001",
                                                                  reason="no-answer"),
                                  "--cancel-after", ms, "--bye-after", 300, check=False)
        assert r.get("status") in (200, 487), r
    assert wait_for(lambda: not o.json("calls")["calls"], timeout=30), o.json("calls")
    time.sleep(1)
    assert messages(o) == []
    assert not [f for f in spool_files(o) if f.endswith((".json", ".raw"))], spool_files(o)
    alive(o)
    assert o.stop(o.proc) == 0


def test_bye_racing_our_bye_after_the_limit_one_message(tmp_path):
    """--max-message 3: the caller hangs up about when the limit is
    reached (openum's goodbye and BYE cross the caller's BYE): exactly one
    message, 3 s of the tone at most."""
    o = store(tmp_path)
    o.ok("dialplan", "set", "dp1", "--max-message", "3")
    o.proc = o.serve()
    for i, extra in enumerate((0.0, 0.3, 0.8)):
        c = RawCall(o)
        try:
            skip_greeting(c.rtp)
            wait_flow(o, "recording")
            c.rtp.say(("audio", tone(900, 6000)))
            time.sleep(3.0 + extra)
            c.bye()
            assert wait_for(lambda: not o.json("calls")["calls"], timeout=20)
            assert len(wait_messages(o, i + 1)) == i + 1, o.log()[-3000:]
        finally:
            c.close()
    time.sleep(1)
    m = messages(o)
    assert len(m) == 3, m
    for f in m:
        msg, pcm = read_message(f)
        assert len(pcm) <= 3 * 8000 and voiced_ms(pcm) >= 1000, (len(pcm), voiced_ms(pcm))
    assert o.stop(o.proc) == 0


def test_gateway_connection_lost_mid_message_is_still_delivered(tmp_path):
    """The gateway's TCP connection closes while the caller speaks (no BYE),
    the media goes on then falls silent: the message ends (silence) and is
    delivered with the tone."""
    o = store(tmp_path)
    o.proc = o.serve()
    c = RawCall(o)
    try:
        skip_greeting(c.rtp)
        wait_flow(o, "recording")
        c.rtp.say(("audio", tone(650, 1500)))
        time.sleep(0.5)
        c.sip.close()
        assert wait_for(lambda: messages(o), timeout=40), o.log()[-3000:]
    finally:
        c.rtp.close()
    msg, pcm = read_message(messages(o)[0])
    assert abs(dominant_hz(pcm) - 650) < 15
    assert voiced_ms(pcm) >= 1400
    assert wait_for(lambda: not o.json("calls")["calls"], timeout=40)
    assert o.stop(o.proc) == 0


def test_mailbox_removed_while_recording_message_not_lost(tmp_path):
    """The mailbox is removed (and 2002 moved to another plan) while a
    caller records into it: the message is not lost — it is in the
    mailbox's folder or still in the spool — and nothing crashes."""
    o = store(tmp_path)
    o.proc = o.serve()
    uid = uid_of(o, "2001")
    c = RawCall(o)
    try:
        skip_greeting(c.rtp)
        wait_flow(o, "recording")
        c.rtp.say(("audio", tone(700, 1500)))
        o.ok("mailbox", "remove", "2001")
        time.sleep(1.7)
        c.rtp.say(("dtmf", "#"))
        assert wait_for(lambda: "message recorded" in o.log(), timeout=30), o.log()[-3000:]
    finally:
        c.close()
    time.sleep(2)
    m = messages(o)
    kept = [f for f in spool_files(o) if f.endswith(".raw")]
    assert m or kept, (o.log()[-3000:], spool_files(o))
    if m:
        assert uid in m[0]
        msg, pcm = read_message(m[0])
        assert abs(dominant_hz(pcm) - 700) < 15
    alive(o)
    assert o.stop(o.proc) == 0


def test_many_deposits_at_once_each_delivered_once(tmp_path):
    """Twenty callers at once into two mailboxes, each with its own tone:
    twenty messages, each tone exactly once."""
    o = store(tmp_path, conf="silence_timeout = 30\n")
    o.proc = o.serve()
    n = int(os.environ.get("ATTACK_N", "20"))
    hz = [300 + 50 * i for i in range(n)]
    cs = []
    try:
        for i in range(n):
            cs.append(RawCall(o, ext="2001" if i % 2 else "2002"))
            cs[-1].rtp.say(("dtmf", "*"))
        assert wait_for(lambda: flows(o).count("recording") == n, timeout=60), flows(o)
        for c, h in zip(cs, hz):
            c.rtp.say(("audio", tone(h, 1500)), ("audio", silence(300)), ("dtmf", "#"))
        m = wait_messages(o, n, timeout=90)
    finally:
        for c in cs:
            c.close()
    time.sleep(1)
    m = messages(o)
    assert len(m) == n, (len(m), o.log()[-3000:])
    got = sorted(round(dominant_hz(read_message(f)[1]) / 50) * 50 for f in m)
    assert got == hz, got
    assert o.stop(o.proc) == 0


def test_spool_unusable_the_caller_is_told_and_nothing_crashes(tmp_path):
    """The spool directory replaced by a file while the server runs: the
    recording cannot start; the caller hears that the service is not
    available and openum hangs up; the server stays up."""
    o = store(tmp_path)
    o.proc = o.serve()
    sp = os.path.join(o.data, "spool")
    os.rename(sp, sp + ".away")
    with open(sp, "w") as f:
        f.write("not a directory\n")
    c = RawCall(o)
    try:
        assert c.status == 200, c.status
        m = c.sip.read_until(lambda h: h.startswith("BYE "), timeout=40)
        assert m, o.log()[-3000:]
        time.sleep(0.3)  # the last packets before the BYE
    finally:
        c.close()
    # what the caller heard last: "this service is not available", then
    # "goodbye" — the prompt of every refusal for the spool (min_free_mb),
    # never a bare "goodbye" as if the message had been taken
    heard = c.rtp.received()
    assert prompt_heard(heard, "service-unavailable"), o.log()[-3000:]
    assert prompt_heard(heard, "goodbye")
    assert not prompt_heard(heard, "message-recorded")
    # the call ends with the spool failure's event (1141), naming the call
    ev = o.events("--id", "1141")
    assert ev and any(e["source"] == c.call_id for e in ev), (ev, o.log()[-3000:])
    assert messages(o) == []
    alive(o)
    os.unlink(sp)
    os.rename(sp + ".away", sp)
    assert o.stop(o.proc) == 0


def test_rfc4733_digit_flood_during_greeting_and_recording(tmp_path):
    """Every key, many times, during the greeting (`#` there does nothing;
    `*` skips to the beep) and during the recording keys other than `#` do
    not end it: one message with the tone said between the floods."""
    o = store(tmp_path)
    o.proc = o.serve()
    c = RawCall(o)
    try:
        c.rtp.say(*[("dtmf", d) for d in "#0123456789#" * 3])
        c.rtp.say(("dtmf", "*"))
        wait_flow(o, "recording")
        c.rtp.say(*[("dtmf", d) for d in "0123456789*" * 2])
        c.rtp.say(("audio", tone(750, 1500)), ("dtmf", "*"), ("dtmf", "#"), ("dtmf", "#"),
                  ("dtmf", "#"))
        assert wait_for(lambda: messages(o), timeout=60), o.log()[-3000:]
    finally:
        c.close()
    time.sleep(1)
    assert len(messages(o)) == 1
    msg, pcm = read_message(messages(o)[0])
    assert abs(dominant_hz(pcm) - 750) < 15
    assert o.stop(o.proc) == 0


def test_modes_of_everything_a_message_leaves(tmp_path):
    """After a message with its own greeting and a discarded one: every
    folder under mail/, spool/ and greetings/ is 0700, every file 0600."""
    import stat
    import wave
    o = store(tmp_path, conf="keep_spool = 1\n")
    wav = tmp_path / "g.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(tone(1300, 500).tobytes())
    o.ok("mailbox", "set", "2001", "--greeting", f"unavailable={wav}")
    o.proc = o.serve()
    for voice in (1500, 200):
        c = RawCall(o)
        try:
            wait_flow(o, "recording")
            c.rtp.say(("audio", tone(700, voice)), ("dtmf", "#"))
            c.sip.read_until(lambda h: h.startswith("BYE "), timeout=30)
        finally:
            c.close()
    assert wait_for(lambda: messages(o), timeout=30)
    bad = []
    for top in ("mail", "spool", "greetings"):
        root = os.path.join(o.data, top)
        for dp, ds, fs in os.walk(root):
            if stat.S_IMODE(os.stat(dp).st_mode) != 0o700:
                bad.append((dp, oct(stat.S_IMODE(os.stat(dp).st_mode))))
            for f in fs:
                p = os.path.join(dp, f)
                if stat.S_IMODE(os.stat(p).st_mode) != 0o600:
                    bad.append((p, oct(stat.S_IMODE(os.stat(p).st_mode))))
    assert not bad, bad
    assert o.stop(o.proc) == 0


def test_hangup_while_a_long_greeting_is_being_decoded(tmp_path):
    """A long greeting (60 s at 48 kHz, decoded and resampled off the
    loop): callers hang up right after the ACK, while it loads, several
    times; then a caller who stays hears it (1300 Hz) — nothing crashes."""
    import wave
    import numpy
    o = store(tmp_path)
    wav = tmp_path / "long.wav"
    t = numpy.arange(48000 * 60) / 48000.0
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes((9000 * numpy.sin(2 * numpy.pi * 1300 * t)).astype("<i2").tobytes())
    o.ok("dialplan", "set", "dp1", "--max-greeting", "120")
    o.ok("mailbox", "set", "2001", "--greeting", f"unavailable={wav}")
    o.proc = o.serve()
    for _ in range(5):
        c = RawCall(o)
        c.bye()
        c.close()
    assert wait_for(lambda: not o.json("calls")["calls"], timeout=30)
    c = RawCall(o)
    try:
        assert wait_for(lambda: len(c.rtp.rx) > 100, timeout=30), o.log()[-2000:]
        heard = c.rtp.received()
        c.bye()
    finally:
        c.close()
    assert abs(dominant_hz(heard[:8000]) - 1300) < 20, dominant_hz(heard[:8000])
    alive(o)
    assert o.stop(o.proc) == 0


def test_second_sigterm_mid_message_then_restart_one_message(tmp_path):
    """SIGTERM twice while a caller speaks (the administrator insists): the
    server stops at once; the message is not lost — delivered before the
    exit or at the next start — and exactly once, with the tone; a third
    start delivers nothing new."""
    import signal
    o = store(tmp_path, conf="drain_timeout = 60\n")
    o.proc = o.serve()
    c = RawCall(o)
    try:
        skip_greeting(c.rtp)
        wait_flow(o, "recording")
        c.rtp.say(("audio", tone(550, 6000)))
        time.sleep(2.0)
        o.proc.send_signal(signal.SIGTERM)
        assert wait_for(lambda: "draining" in o.log(), timeout=5)
        o.proc.send_signal(signal.SIGTERM)
        rc = o.proc.wait(30)
    finally:
        c.close()
    assert rc == 0, o.log()[-3000:]
    o.proc = o.serve()
    assert wait_for(lambda: messages(o), timeout=30), o.log()[-3000:]
    time.sleep(2)
    assert o.stop(o.proc) == 0
    o.proc = o.serve()
    time.sleep(3)
    assert o.stop(o.proc) == 0
    m = messages(o)
    assert len(m) == 1, (m, o.log()[-3000:])
    msg, pcm = read_message(m[0])
    assert abs(dominant_hz(pcm) - 550) < 15
    assert voiced_ms(pcm) >= 1500, voiced_ms(pcm)
