"""Call answering end to end with third-party gateways (R11): a caller
diverted to openum hears the mailbox's greeting and the beep, speaks (a
tone), and the mailbox owner receives a voice message whose AUDIO is that
tone — decoded from the delivered mail, measured by length and dominant
frequency, never only found to exist.

- baresip and linphone over mutual TLS with mandatory SRTP (Secured plan);
  each records what it hears, so the greeting is checked on the caller's
  side too; keys never reach openum's log.
- sipp over TCP with an `rtp_stream` WAV (Unsecured plan); `#` (RFC 4733
  from sipp's play_dtmf), silence and the length limit each end the
  message as specified (the spool's end marker says why; openum's BYE).
- Kamailio as the IP PBX in front, forwarding a busy call with a
  `Diversion` header to the pilot: the right mailbox, and the BUSY
  greeting heard by the caller (its RTP recorded by the test).
- An unknown mailbox is announced and hung up, never a silent line."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from audio_check import (Message, RtpPhone, all_messages, dominant, mailbox_uid, read_wav,
                         sox_tone, spools, tone_seconds, upload_greeting, voiced_seconds,
                         wait_messages)
from calls_util import FQDN, calls, make_store
from conftest import free_port
from dns_server import DnsServer
from pki import PKI
from sip_util import wait_for
import test_calls_kamailio as KAM
from test_calls_peers import linphone, pki, say, serve_in_netns  # noqa: F401 (fixture)
from test_calls_sipp import SIPP_IP, finish_sipp, sipp
from test_calls_tls import secured_store

TONE = 697          # what callers say
UNAVAILABLE = 1250  # the mailbox's "unavailable" greeting
BUSY = 1500         # its "busy" greeting
BEEP = 1000         # the beep before recording (data/prompts/LIST)
GREETING_S = 1.5
# between the caller's first word and the first recorded sample: at least
# the greeting (then the beep, 0.4 s), at most that and what a loaded
# machine adds (the greeting is decoded off the control loop)
HEAD_MIN, HEAD_MAX = GREETING_S, GREETING_S + 3.5



def the_message(o, uid, tmp, timeout=30):
    """The one message of mailbox `uid`, waited for; no other mailbox got one."""
    got = wait_messages(o.data, uid, 1, timeout)
    assert len(got) == 1, (got, all_messages(o.data), o.log()[-3000:])
    assert list(all_messages(o.data)) == [uid], all_messages(o.data)
    m = Message(got[0], tmp)
    assert m.attachment is not None, m.text
    assert os.stat(got[0]).st_mode & 0o777 == 0o600
    return m


def end_reason(o):
    """The end marker's reason of the store's one call spool."""
    sp = wait_for(lambda: [s for s in spools(o) if s[1]], timeout=10)
    assert len(sp) == 1, spools(o)
    return sp[0][1]["end_reason"]


def check_spoken(m, said_s, head_min=HEAD_MIN, head_max=HEAD_MAX):
    """The message is the caller's tone from the end of the beep on: about
    `said_s` less the greeting and beep, and nothing of the greeting."""
    assert abs(dominant(m.pcm) - TONE) < 10, m.describe()
    heard = tone_seconds(m.pcm, TONE)
    assert said_s - head_max <= heard <= said_s - head_min + 0.1, (heard, m.describe())
    assert tone_seconds(m.pcm, UNAVAILABLE) == 0 and tone_seconds(m.pcm, BUSY) == 0
    assert tone_seconds(m.pcm, BEEP) <= 0.04, m.describe()


# ------------------------------------------------------------ baresip

def baresip(tmp, leaf, ca, dns, target, wav):
    """baresip that says `wav` (aufile, 48 kHz stereo) and records what it
    hears (sndfile: dump-*-dec.wav in its folder)."""
    d = tmp / "baresip"
    d.mkdir(exist_ok=True)
    (d / "config").write_text(
        "module_path /usr/lib/baresip/modules\n"
        f"sip_listen 127.0.0.1:{free_port()}\n"
        f"sip_certificate {leaf.both_path}\n"
        f"sip_cafile {ca.cert_path}\n"
        "net_interface 127.0.0.1\n"
        f"dns_server 127.0.0.1:{dns.port}\n"
        "ausrc_srate 48000\nausrc_channels 2\n"
        f"audio_source aufile,{wav}\naudio_player aubridge,nil\n"
        f"snd_path {d}\n"
        "module g711.so\nmodule srtp.so\nmodule aufile.so\nmodule aubridge.so\n"
        "module sndfile.so\nmodule account.so\nmodule menu.so\n")
    (d / "accounts").write_text(
        "<sip:gw@127.0.0.1;transport=tls>;mediaenc=srtp-mand;regint=0;audio_codecs=PCMU\n")
    (d / "contacts").write_text("")
    p = subprocess.Popen(["baresip", "-f", str(d), "-s", "-e", f"/dial {target}"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=d)
    return p, d


def stop(p, sig=signal.SIGINT, timeout=20):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out or ""


def sdes_keys(text):
    """Every SDES key (inline:…, without lifetime/MKI) in a SIP trace."""
    return set(re.findall(r"inline:([A-Za-z0-9+/=]{30,})", text))


@pytest.mark.skipif(not shutil.which("baresip"), reason="baresip missing")
def test_baresip_leaves_a_message_over_mutual_tls_and_srtp(tmp_path, pki):
    dns = DnsServer()
    dns.records = {FQDN: ("127.0.0.1", 60)}
    o = secured_store(tmp_path, pki)
    upload_greeting(o, "2001", "unavailable", UNAVAILABLE, GREETING_S, tmp_path, plan="sec",
                    reload=False)
    uid = mailbox_uid(o, "2001", "sec")
    o.proc = o.serve()
    said = 7.0
    wav = sox_tone(tmp_path / "say.wav", TONE, said, rate=48000, channels=2, pad_after=5)
    p, d = baresip(tmp_path, pki.gw["x"], pki.root, dns,
                   f"sip:2001@127.0.0.1:{o.tls};transport=tls", wav)
    try:
        c = wait_for(lambda: [c for c in calls(o) if c["state"] == "confirmed"], timeout=20)
        assert c, o.log()[-2000:]
        assert c[0]["media"] == "srtp" and c[0]["security_mode"] == "secured"
        time.sleep(said + 0.5)  # the tone said, a moment of silence: hang up
        out = stop(p)
    finally:
        dns.running = False
        if p.poll() is None:
            p.kill()
    m = the_message(o, uid, tmp_path)
    check_spoken(m, said)
    assert m["X-Openum-Extension"] == "2001"
    assert m["X-Openum-Security-Mode"] == "secured"
    assert "AES_CM_128_HMAC_SHA1_80" in m.text
    assert end_reason(o) == "hangup"
    # the caller heard the mailbox's greeting, then the beep
    dec = [f for f in os.listdir(d) if f.startswith("dump-") and f.endswith("-dec.wav")]
    assert len(dec) == 1, os.listdir(d)
    heard = read_wav(d / dec[0], tmp_path)
    assert tone_seconds(heard, UNAVAILABLE) >= GREETING_S - 0.3, tone_seconds(heard, UNAVAILABLE)
    assert tone_seconds(heard, BEEP) >= 0.2
    # neither side's SRTP key is in openum's log or events
    keys = sdes_keys(out)
    assert len(keys) >= 2, out[-3000:]
    logged = o.log() + o.run("events", "--json").stdout
    assert not [k for k in keys if k in logged or k[:16] in logged]
    assert o.stop(o.proc) == 0, o.log()[-3000:]


@pytest.mark.skipif(not shutil.which("baresip"), reason="baresip missing")
def test_baresip_hears_the_default_greeting(tmp_path, pki):
    """No greeting uploaded: the caller hears the spoken default ("the
    person at extension 2 0 0 1 is not available, please leave a message
    after the tone": speech, not silence) and the beep, then leaves a
    message."""
    dns = DnsServer()
    dns.records = {FQDN: ("127.0.0.1", 60)}
    o = secured_store(tmp_path, pki)
    o.proc = o.serve()
    said = 14.0
    wav = sox_tone(tmp_path / "say.wav", TONE, said, rate=48000, channels=2, pad_after=5)
    p, d = baresip(tmp_path, pki.gw["x"], pki.root, dns,
                   f"sip:2001@127.0.0.1:{o.tls};transport=tls", wav)
    try:
        c = wait_for(lambda: [c for c in calls(o) if c["state"] == "confirmed"], timeout=20)
        assert c, o.log()[-2000:]
        time.sleep(said + 0.5)
        stop(p)
    finally:
        dns.running = False
        if p.poll() is None:
            p.kill()
    dec = [f for f in os.listdir(d) if f.startswith("dump-") and f.endswith("-dec.wav")]
    assert len(dec) == 1, os.listdir(d)
    heard = read_wav(d / dec[0], tmp_path)
    assert voiced_seconds(heard) >= 3.0, voiced_seconds(heard)  # the spoken greeting
    assert tone_seconds(heard, BEEP) >= 0.2
    m = the_message(o, mailbox_uid(o, "2001", "sec"), tmp_path)
    assert abs(dominant(m.pcm) - TONE) < 10, m.describe()
    assert tone_seconds(m.pcm, TONE) >= 2.0, m.describe()
    assert o.stop(o.proc) == 0, o.log()[-3000:]


# ------------------------------------------------------------ linphone

@pytest.mark.skipif(not shutil.which("linphonec"), reason="linphone-cli missing")
def test_linphone_leaves_a_message_over_mutual_tls_and_srtp(tmp_path, pki):
    o = secured_store(tmp_path, pki)
    upload_greeting(o, "2001", "unavailable", UNAVAILABLE, GREETING_S, tmp_path, plan="sec",
                    reload=False)
    uid = mailbox_uid(o, "2001", "sec")
    o.proc = serve_in_netns(o, tmp_path)
    said = 7.0
    wav = sox_tone(tmp_path / "say.wav", TONE, said, pad_after=5)
    heard_wav = tmp_path / "heard.wav"
    p, log = linphone(tmp_path, o, pki.gw["x"], pki.root)
    try:
        time.sleep(1)
        say(p, "soundcard use files")
        say(p, f"play {wav}")
        say(p, f"record {heard_wav}")
        say(p, f"call sip:2001@{FQDN}:{o.tls};transport=tls")
        c = wait_for(lambda: [c for c in calls(o) if c["state"] == "confirmed"], timeout=20)
        assert c, o.log()[-2000:]
        assert c[0]["media"] == "srtp" and c[0]["security_mode"] == "secured"
        time.sleep(said + 0.5)
        say(p, "terminate")
        wait_for(lambda: not calls(o), timeout=10)
        say(p, "quit")
        stop(p, sig=signal.SIGTERM)
    finally:
        if p.poll() is None:
            p.kill()
    m = the_message(o, uid, tmp_path)
    check_spoken(m, said)
    assert m["X-Openum-Security-Mode"] == "secured"
    assert end_reason(o) == "hangup"
    heard = read_wav(heard_wav, tmp_path)
    assert tone_seconds(heard, UNAVAILABLE) >= GREETING_S - 0.3, tone_seconds(heard, UNAVAILABLE)
    assert tone_seconds(heard, BEEP) >= 0.2
    text = open(log, errors="replace").read()
    keys = sdes_keys(text)
    assert keys, text[-2000:]
    logged = o.log() + o.run("events", "--json").stdout
    assert not [k for k in keys if k in logged or k[:16] in logged]
    assert o.stop(o.proc) == 0, o.log()[-3000:]


# ------------------------------------------------------------ sipp

def sipp_store(tmp, conf="", greeting=True):
    """An Unsecured plan dp1 (pilot 8000) with mailboxes 2001 and 2002, sipp
    as its gateway; 2001 has an unavailable and a busy greeting."""
    o = make_store(tmp, conf=conf, gateways=[("sipp", SIPP_IP, "dp1")],
                   mailboxes=[("2001", "dp1"), ("2002", "dp1")])
    if greeting:
        upload_greeting(o, "2001", "unavailable", UNAVAILABLE, GREETING_S, tmp, reload=False)
        upload_greeting(o, "2001", "busy", BUSY, GREETING_S, tmp, reload=False)
    return o


def say_wav(d, seconds, hz=TONE, silence_after=0.0):
    """tone.wav (G.711 µ-law, what sipp's rtp_stream plays) in folder d."""
    os.makedirs(d, exist_ok=True)
    sox_tone(os.path.join(str(d), "tone.wav"), hz, seconds, encoding="u-law",
             pad_after=silence_after)
    return d


def test_sipp_leaves_a_message_over_tcp_with_rtp_stream(tmp_path):
    o = sipp_store(tmp_path)
    uid = mailbox_uid(o, "2001")
    o.proc = o.serve()
    said = 6.0
    d = say_wav(tmp_path / "c1", said)
    rc, out = sipp(o, "answer_uac.xml", d, ["X-Test: answering", f"sip:2001@{FQDN}",
                                            int(said * 1000) + 1000])
    assert rc == 0, out + o.log()[-3000:]
    m = the_message(o, uid, tmp_path)
    check_spoken(m, said)
    assert m["X-Openum-Extension"] == "2001"
    assert m["X-Openum-Caller"] == "7777"
    assert m["X-Openum-Security-Mode"] == "unsecured"
    assert m["X-Openum-Reason"] == "unavailable"
    assert end_reason(o) == "hangup"
    assert o.stop(o.proc) == 0, o.log()[-3000:]


def test_pound_ends_the_message_and_openum_says_goodbye(tmp_path):
    """`#` (RFC 4733 from sipp) ends the recording; openum says goodbye and
    sends its BYE (the scenario fails without it)."""
    o = sipp_store(tmp_path)
    uid = mailbox_uid(o, "2001")
    o.proc = o.serve()
    said = 5.0
    d = say_wav(tmp_path / "c1", said)
    # the tone for 5 s, then `#` at 6 s (nothing is sent in between)
    rc, out = sipp(o, "answer_dtmf.xml", d, ["X-Test: pound", f"sip:2001@{FQDN}", 15000,
                                             6000, "#"])
    assert rc == 0, out + o.log()[-3000:]
    m = the_message(o, uid, tmp_path)
    check_spoken(m, said)
    # nothing after the key: at most the second without RTP before it
    assert m.seconds <= 6.0 - HEAD_MIN + 1.0, m.describe()
    assert end_reason(o) == "dtmf"
    assert o.stop(o.proc) == 0, o.log()[-3000:]


def test_silence_ends_the_message(tmp_path):
    """The caller says 5 s then stays silent (RTP of silence goes on):
    silence_timeout (2 s) ends the recording long before the caller would."""
    o = sipp_store(tmp_path, conf="silence_timeout = 2\n")
    uid = mailbox_uid(o, "2001")
    o.proc = o.serve()
    said = 5.0
    d = say_wav(tmp_path / "c1", said, silence_after=12)
    rc, out = sipp(o, "answer_uac.xml", d, ["X-Test: silence", f"sip:2001@{FQDN}", 20000])
    assert rc == 0, out + o.log()[-3000:]
    m = the_message(o, uid, tmp_path)
    check_spoken(m, said)
    # the tone and about silence_timeout of silence, not the 12 s sent
    assert m.seconds <= said - HEAD_MIN + 2 + 2.0, m.describe()
    assert end_reason(o) == "silence"
    assert o.stop(o.proc) == 0, o.log()[-3000:]


def test_length_limit_ends_the_message_and_openum_hangs_up(tmp_path):
    """The dial plan's --max-message (3 s): the message is 3 s of the tone;
    openum says goodbye and hangs up (the scenario fails without its BYE)."""
    o = sipp_store(tmp_path)
    o.ok("dialplan", "set", "dp1", "--max-message", "3", "--no-reload")
    uid = mailbox_uid(o, "2001")
    o.proc = o.serve()
    d = say_wav(tmp_path / "c1", 15)
    rc, out = sipp(o, "answer_hungup.xml", d, ["X-Test: limit", f"sip:2001@{FQDN}", 14000])
    assert rc == 0, out + o.log()[-3000:]
    m = the_message(o, uid, tmp_path)
    assert abs(m.seconds - 3.0) <= 0.1, m.describe()
    assert tone_seconds(m.pcm, TONE) >= 2.8, m.describe()
    assert abs(dominant(m.pcm) - TONE) < 10
    assert end_reason(o) == "limit"
    assert o.stop(o.proc) == 0, o.log()[-3000:]


def test_star_skips_the_greeting(tmp_path):
    """`*` 0.3 s into a 4 s greeting: the beep at once, so the message holds
    more of what the caller says than the greeting would have left."""
    o = sipp_store(tmp_path)
    upload_greeting(o, "2001", "unavailable", UNAVAILABLE, 4.0, tmp_path, reload=False)
    uid = mailbox_uid(o, "2001")
    o.proc = o.serve()
    said = 8.0
    d = say_wav(tmp_path / "c1", said)
    rc, out = sipp(o, "answer_keys.xml", d, ["X-Test: star", f"sip:2001@{FQDN}", 8500, 300,
                                             "*"])
    assert rc == 0, out + o.log()[-3000:]
    m = the_message(o, uid, tmp_path)
    assert abs(dominant(m.pcm) - TONE) < 10, m.describe()
    # without the skip at most said - 4 s - the beep of it: 3.6 s; the key
    # (sipp sends 0.4 s of filler first, then a 0.2 s event) ends by 1 s
    assert tone_seconds(m.pcm, TONE) >= said - 3.5, m.describe()
    assert tone_seconds(m.pcm, UNAVAILABLE) == 0
    assert o.stop(o.proc) == 0, o.log()[-3000:]


def test_pilot_asks_for_the_extension_then_deposits(tmp_path):
    """The pilot without any diversion: "please enter the extension"; sipp
    keys 2001 (RFC 4733); the caller then hears 2001's greeting and leaves
    the message in 2001's mailbox, and nowhere else."""
    o = sipp_store(tmp_path)
    uid = mailbox_uid(o, "2001")
    o.proc = o.serve()
    said = 14.0
    d = say_wav(tmp_path / "c1", said)
    rc, out = sipp(o, "answer_keys.xml", d, ["X-Test: ask", f"sip:8000@{FQDN}", 12000, 3000,
                                             "2001"])
    assert rc == 0, out + o.log()[-3000:]
    m = the_message(o, uid, tmp_path)
    assert m["X-Openum-Extension"] == "2001"
    assert abs(dominant(m.pcm) - TONE) < 10, m.describe()
    # keyed by 4.5 s, greeting and beep by 7 s: most of the rest is the message
    assert tone_seconds(m.pcm, TONE) >= 4.0, m.describe()
    assert tone_seconds(m.pcm, UNAVAILABLE) == 0
    assert o.stop(o.proc) == 0, o.log()[-3000:]


def test_unknown_mailbox_is_announced_then_hung_up(tmp_path):
    """A Diversion to an extension without a mailbox: "the mailbox is not
    available", then openum's BYE (never a silent line); no message."""
    o = sipp_store(tmp_path)
    o.proc = o.serve()
    d = say_wav(tmp_path / "c1", 3)
    rc, out = sipp(o, "answer_hungup.xml", d, [
        "Diversion: <sip:3999@pbx.example.com>;reason=user-busy", f"sip:8000@{FQDN}", 15000])
    assert rc == 0, out + o.log()[-3000:]
    assert wait_for(lambda: not calls(o), timeout=10)
    assert all_messages(o.data) == {}
    assert o.stop(o.proc) == 0, o.log()[-3000:]


# ------------------------------------------------------------ Kamailio in front



def test_kamailio_busy_diversion_lands_in_the_mailbox_with_the_busy_greeting(tmp_path):
    """A phone calls Kamailio (UDP), the extension is busy: Kamailio adds a
    Diversion (reason=user-busy) and relays to openum's pilot over mutual
    TLS. The message lands in mailbox 2001; the caller heard 2001's BUSY
    greeting (not the unavailable one), recorded from its RTP."""
    if not shutil.which("kamailio") or not shutil.which("sipp") or not os.path.exists(
            os.path.join(KAM.KAM_MODULES, "tls.so")):
        pytest.skip("kamailio (with tls) or sipp missing")
    w = type("World", (), {})()
    p = PKI(tmp_path / "pki")
    w.root = p.ca("root", "openum Test Root CA")
    w.server = p.leaf("server", w.root, cn=FQDN, dns=[FQDN])
    w.pbx = p.leaf("pbx", w.root, cn="pbx.test.example", dns=["pbx.test.example"])
    ports = {"udp": free_port(kind=socket.SOCK_DGRAM), "tcp": free_port(), "tls": free_port()}
    o = make_store(tmp_path, mailboxes=[("2001", "dp1"), ("2002", "dp1")],
                   plans=(("dp1", "unsecured"), ("sec", "secured")))
    o.ok("cert", "import", w.server.both_path, "--no-reload")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("gateway", "new", "kamailio", "--address", "127.0.0.1", "--tls-name",
         "pbx.test.example", "--transport", "tls", "--port", str(ports["tls"]),
         "--dialplan", "dp1")
    o.ok("server", "set", "--dialplans", "dp1,sec")
    upload_greeting(o, "2001", "unavailable", UNAVAILABLE, GREETING_S, tmp_path, reload=False)
    upload_greeting(o, "2001", "busy", BUSY, GREETING_S, tmp_path, reload=False)
    uid = mailbox_uid(o, "2001")
    o.proc = o.serve()
    kd = tmp_path / "kamailio"
    kd.mkdir()
    KAM.kamailio_cfg(kd, w, ports, o.tls)
    klog = open(kd / "kamailio.log", "wb")
    k = subprocess.Popen(["kamailio", "-f", str(kd / "kamailio.cfg"), "-DD", "-E"], stdout=klog,
                         stderr=subprocess.STDOUT)
    phone = RtpPhone(KAM.PHONE_IP)
    try:
        assert wait_for(lambda: k.poll() is not None or subprocess.run(
            ["ss", "-ltn", f"sport = :{ports['tls']}"], capture_output=True,
            text=True).stdout.count("\n") > 1, timeout=20)
        assert k.poll() is None, (kd / "kamailio.log").read_text()[-3000:]
        text = open(os.path.join(KAM.HERE, "sipp", "answer_proxy.xml")).read()
        said = 6.0
        for i, v in enumerate(["Diversion: <sip:2001@pbx.example.com>;reason=user-busy",
                               f"sip:8000@{FQDN}", int(said * 1000) + 1500, KAM.PHONE_IP,
                               phone.port]):
            text = text.replace(f"[field{i}]", str(v))
        sf = str(tmp_path / "answer_proxy.xml")
        open(sf, "w").write(text)
        sp = subprocess.Popen(
            ["sipp", f"127.0.0.1:{ports['udp']}", "-sf", sf, "-m", "1", "-t", "u1", "-i",
             KAM.PHONE_IP, "-p", str(free_port(KAM.PHONE_IP, socket.SOCK_DGRAM)), "-nostdin",
             "-timeout", "40", "-timeout_error", "-max_recv_loops", "1000", "-trace_err",
             "-error_file", sf + ".err"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, cwd=str(tmp_path))
        # openum's greeting starts with the answer: speak to where it comes from
        assert wait_for(lambda: phone.packets, timeout=20), o.log()[-3000:]
        src = phone.first_source
        phone.send(src, TONE, said)
        rc, out = finish_sipp(sp, sf, 40)
        assert rc == 0, out + (kd / "kamailio.log").read_text()[-3000:] + o.log()[-2000:]
    finally:
        phone.close()
        k.terminate()
        try:
            k.wait(20)
        except subprocess.TimeoutExpired:
            k.kill()
            k.wait()
        klog.close()
    m = the_message(o, uid, tmp_path)
    check_spoken(m, said)  # the phone spoke from the first packet of the greeting on
    assert m["X-Openum-Extension"] == "2001"
    assert m["X-Openum-Reason"] == "busy"
    heard = phone.received_pcm()
    assert tone_seconds(heard, BUSY) >= GREETING_S - 0.3, tone_seconds(heard, BUSY)
    assert tone_seconds(heard, UNAVAILABLE) == 0
    assert tone_seconds(heard, BEEP) >= 0.2
    assert voiced_seconds(heard) >= GREETING_S
    assert o.stop(o.proc) == 0, o.log()[-3000:]
