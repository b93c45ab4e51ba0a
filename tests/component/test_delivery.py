"""Voice message delivery against the real `openum serve`: spools written
here as the call side writes them (metadata + 8 kHz PCM of a known tone),
delivered into the Maildir, parsed with Python's `email`, the attachment
played with sox and its audio compared with what was in the spool; crash
recovery, retries, the spool's keeping and free-space rules; `openum
mailbox messages` and greetings; Dovecot serving the Maildir over IMAP."""
import email
import email.policy
import imaplib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time

import numpy as np
import pytest

from conftest import BIN, Openum, free_port

RATE = 8000


def tone(hz, seconds, amp=8000):
    t = np.arange(int(RATE * seconds)) / RATE
    return (amp * np.sin(2 * np.pi * hz * t)).astype("<i2")


def dominant(pcm, rate):
    x = pcm.astype(float)
    x -= x.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


def wait_for(fn, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def write_spool(data, sid, uid, pcm, end=True, owner=None, **fields):
    """The call side's files: spool/<id>.json, .raw (s16le 8 kHz), .end."""
    meta = {"version": 1, "id": sid, "call_id": f"{sid}@gw.example", "from_tag": "ft",
            "to_tag": "tt", "mailbox_uid": uid, "extension": "1001", "dialplan": "P",
            "mailbox_name": "Bob Box", "mailbox_email": "bob@example.com",
            "caller": "+4930123456", "caller_name": "Alice Example", "anonymous": False,
            "reason": "busy", "security_mode": "secured", "transport": "tls",
            "srtp_suite": "AES_CM_128_HMAC_SHA1_80", "gateway": "gw1",
            "start_ms": 1767268800000, "test": False}
    meta.update(fields)
    spool = os.path.join(data, "spool")
    files = {f"{sid}.json": json.dumps(meta).encode()}
    if pcm is not None:
        files[f"{sid}.raw"] = pcm.tobytes()
    if end:
        files[f"{sid}.end"] = json.dumps({"end_ms": meta["start_ms"] + 5000,
                                          "end_reason": "hangup", "bytes": 0,
                                          "voiced_ms": 0}).encode()
    for name, body in files.items():
        path = os.path.join(spool, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, body)
        os.close(fd)
        if owner is not None:
            os.chown(path, owner, owner)
    return meta


def maildir_files(data, uid, sub="new"):
    d = os.path.join(data, "mail", uid, sub)
    return sorted(os.path.join(d, f) for f in os.listdir(d)) if os.path.isdir(d) else []


def playable(path, tmp):
    """Decodes the file with sox (Opus: opusdec from opus-tools, Debian's sox
    has no Opus handler) to a WAV file; returns its path."""
    wav = os.path.join(tmp, "played.wav")
    if path.endswith(".opus"):
        subprocess.run(["opusdec", "--quiet", "--rate", "8000", path, wav], check=True,
                       capture_output=True)
        return wav
    subprocess.run(["sox", path, "-r", "8000", "-c", "1", "-b", "16", wav], check=True,
                   capture_output=True)
    return wav


def decode(path, tmp):
    """The audio as 8 kHz mono s16 samples, decoded by sox."""
    out = os.path.join(tmp, "decoded.raw")
    subprocess.run(["sox", playable(path, tmp), "-t", "raw", "-r", "8000", "-e", "signed",
                    "-b", "16", "-c", "1", out], check=True, capture_output=True)
    return np.fromfile(out, dtype="<i2")


@pytest.fixture
def box(store):
    """A store with dial plan P and mailbox 1001 (its Maildir uid in .uid)."""
    store.ok("dialplan", "new", "P", "--digits", "4", "--no-reload")
    store.ok("mailbox", "new", "1001", "--dialplan", "P", "--name", "Bob Box", "--email",
             "bob@example.com", "--no-reload")
    store.uid = store.json("mailbox", "show", "1001")["id"]
    store.port = free_port()
    return store


def conf(o, extra=""):
    o.conf(f"fqdn = um.test.example\nsip_tcp = 127.0.0.1:{o.port}\nsip_tls = off\n"
           f"events_interval = 1\ndelivery_retry_s = 1\n{extra}")


@pytest.mark.parametrize("fmt,mime,ext", [("wav", "audio/wav", "wav"),
                                          ("mp3", "audio/mpeg", "mp3"),
                                          ("opus", "audio/ogg", "opus")])
def test_message_parses_and_its_audio_is_the_recording(box, tmp_path, fmt, mime, ext):
    conf(box, f"audio_format = {fmt}\n")
    pcm = tone(1000, 2.5)
    write_spool(box.data, "call-1", box.uid, pcm,
                caller_name='J\u00fcrgen "J" M\u00fcller\r\nBcc: victim@example.com')
    p = box.serve()
    files = wait_for(lambda: maildir_files(box.data, box.uid), what="the message")
    assert len(files) == 1
    raw = open(files[0], "rb").read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert not msg.defects, msg.defects
    assert msg["Bcc"] is None and b"\nBcc:" not in raw
    assert msg["From"].addresses[0].display_name.startswith('J\u00fcrgen "J" M\u00fcller')
    assert msg["From"].addresses[0].addr_spec == "voicemail@um.test.example"
    assert msg["To"].addresses[0].addr_spec == "bob@example.com"
    assert msg["To"].addresses[0].display_name == "Bob Box"
    assert "Voice message from J\u00fcrgen" in msg["Subject"] and "(0:03)" in msg["Subject"]
    assert msg["Message-ID"].endswith(".voicemail@um.test.example>")
    assert msg["X-Openum-Caller"] == "+4930123456"
    assert msg["X-Openum-Extension"] == "1001"
    assert msg["X-Openum-Security-Mode"] == "secured"
    assert msg["X-Openum-Recovered"] is None
    text = msg.get_body(("plain",)).get_content()
    for line in ("Extension:  1001 (dial plan P)", "Duration:   0:03",
                 "Security:   secured, signalling over TLS, media SRTP",
                 "SRTP suite: AES_CM_128_HMAC_SHA1_80", "(2026-01-01 12:00:00 UTC)"):
        assert line in text, (line, text)
    atts = list(msg.iter_attachments())
    assert len(atts) == 1 and atts[0].get_content_type() == mime
    assert atts[0].get_filename().endswith("." + ext)
    audio = os.path.join(tmp_path, "att." + ext)
    open(audio, "wb").write(atts[0].get_content())
    # it plays: soxi knows its length, sox (opusdec for Opus) decodes it
    dur = float(subprocess.run(["soxi", "-D", playable(audio, tmp_path)], capture_output=True,
                               text=True, check=True).stdout)
    slack = 0.01 if fmt == "wav" else 0.2  # MP3 frames of 72 ms, encoder delay and padding
    assert abs(dur - 2.5) < slack, dur
    got = decode(audio, tmp_path)
    assert abs(len(got) / RATE - 2.5) < slack
    assert abs(dominant(got[800:-800], RATE) - 1000) < 15
    if fmt == "wav":
        assert np.array_equal(got, pcm)  # PCM16: the very samples
    else:  # lossy: the same signal, closely
        lag = np.argmax(np.correlate(got[4000:8000].astype(float),
                                     pcm[4000:4400].astype(float), "valid"))
        seg = got[4000 + lag:4000 + lag + 8000].astype(float)
        ref = pcm[4000:12000].astype(float)
        assert np.corrcoef(seg, ref)[0, 1] > 0.9
    # private: 0600 file, 0700 folders
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    for d in ("mail", f"mail/{box.uid}", f"mail/{box.uid}/new", f"mail/{box.uid}/tmp",
              f"mail/{box.uid}/cur"):
        assert stat.S_IMODE(os.stat(os.path.join(box.data, d)).st_mode) == 0o700, d
    ev = box.events("--id", "1170")
    assert len(ev) == 1 and ev[0]["fields"]["spool"] == "call-1"
    assert ev[0]["fields"]["format"] == fmt
    st = box.json("status")["delivery"]
    assert st["delivered"] == 1 and st["audio_format"] == fmt
    # delivered: marked, kept (keep_spool = 1 by default)
    assert os.path.exists(os.path.join(box.data, "spool", "call-1.done"))
    assert box.stop(p) == 0


def test_interrupted_recording_is_delivered_once_as_recovered(box, tmp_path):
    """A .json without .end (the server died mid-message): delivered at
    start with what was recorded, marked recovered (1171); a second start
    delivers nothing new."""
    conf(box)
    pcm = tone(600, 1.7)
    write_spool(box.data, "cut", box.uid, pcm, end=False)
    p = box.serve()
    files = wait_for(lambda: maildir_files(box.data, box.uid), what="the recovered message")
    msg = email.message_from_bytes(open(files[0], "rb").read(), policy=email.policy.default)
    assert msg["X-Openum-Recovered"] == "yes"
    assert msg["Subject"].startswith("[recovered] ")
    assert "Recovered after an interruption" in msg.get_body(("plain",)).get_content()
    att = next(msg.iter_attachments()).get_content()
    wav = os.path.join(tmp_path, "a.wav")
    open(wav, "wb").write(att)
    assert np.array_equal(decode(wav, tmp_path), pcm)
    assert len(box.events("--id", "1171")) == 1
    assert box.stop(p) == 0
    p = box.serve()
    time.sleep(2)  # a second start finds it delivered (nothing to wait for)
    assert len(maildir_files(box.data, box.uid)) == 1
    assert len(box.events("--id", "1171")) == 1
    assert box.json("status")["delivery"]["delivered"] == 0
    assert box.stop(p) == 0
    # a kill before the spool was marked: the Maildir's key stops a second copy
    os.unlink(os.path.join(box.data, "spool", "cut.done"))
    p = box.serve()
    wait_for(lambda: box.json("status")["delivery"]["delivered"] == 1, what="the re-delivery")
    assert len(maildir_files(box.data, box.uid)) == 1
    ev = box.events("--id", "1170")
    assert ev[-1]["fields"]["already_there"] == "yes"
    assert box.stop(p) == 0


def test_empty_and_short_recordings_are_delivered_without_crash(box):
    conf(box)
    write_spool(box.data, "empty", box.uid, np.zeros(0, dtype="<i2"))
    write_spool(box.data, "short", box.uid, tone(500, 0.01), call_id="short@gw")
    with open(os.path.join(box.data, "spool", "odd.raw"), "wb") as f:
        f.write(b"\x01")
    write_spool(box.data, "odd", box.uid, None, call_id="odd@gw")
    p = box.serve()
    files = wait_for(lambda: len(maildir_files(box.data, box.uid)) == 3 and
                     maildir_files(box.data, box.uid), what="three messages")
    bodies = [email.message_from_bytes(open(f, "rb").read(), policy=email.policy.default)
              for f in files]
    no_audio = [m for m in bodies if not list(m.iter_attachments())]
    assert len(no_audio) == 2
    for m in no_audio:
        assert "No audio was recorded" in m.get_body(("plain",)).get_content()
    assert box.stop(p) == 0


def test_failed_delivery_stays_and_is_retried(box):
    """The mailbox folder cannot be written (a file is in its way): 1172,
    the spool stays; once fixed, a retry delivers it."""
    conf(box)
    os.makedirs(os.path.join(box.data, "mail"), mode=0o700, exist_ok=True)
    blocker = os.path.join(box.data, "mail", box.uid)
    open(blocker, "w").close()
    write_spool(box.data, "c9", box.uid, tone(700, 1))
    p = box.serve()
    ev = wait_for(lambda: box.events("--id", "1172"), what="1172")
    assert ev[0]["source"] == "c9" and "Not a directory" in ev[0]["fields"]["error"]
    assert os.path.exists(os.path.join(box.data, "spool", "c9.json"))
    assert not os.path.exists(os.path.join(box.data, "spool", "c9.done"))
    wait_for(lambda: box.json("status")["delivery"]["failed_attempts"] >= 2,
             what="a second attempt")
    os.unlink(blocker)
    wait_for(lambda: maildir_files(box.data, box.uid), what="the retried delivery")
    assert os.path.exists(os.path.join(box.data, "spool", "c9.done"))
    # 1172 is rate-limited per spool: the attempts are counted, not each logged
    st = box.json("status")["delivery"]
    assert st["delivered"] == 1 and st["retrying"] == 0
    assert len(box.events("--id", "1170")) == 1
    assert box.stop(p) == 0


def test_keep_spool_and_pruning(box):
    conf(box, "keep_spool = 0\n")
    write_spool(box.data, "gone", box.uid, tone(700, 0.5))
    # delivered three days ago under keep_spool = 1: removed at start too
    write_spool(box.data, "old", box.uid, tone(700, 0.5), call_id="old@gw")
    old = os.path.join(box.data, "spool", "old.done")
    open(old, "w").write("{}")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    p = box.serve()
    wait_for(lambda: maildir_files(box.data, box.uid), what="the message")
    wait_for(lambda: not os.listdir(os.path.join(box.data, "spool")), what="an empty spool")
    assert box.stop(p) == 0
    # keep_spool = 1, recordings_keep_days = 1: a fresh one stays, an old one goes
    conf(box, "keep_spool = 1\nrecordings_keep_days = 1\n")
    write_spool(box.data, "fresh", box.uid, tone(700, 0.5), call_id="fresh@gw")
    write_spool(box.data, "stale", box.uid, tone(700, 0.5), call_id="stale@gw")
    stale = os.path.join(box.data, "spool", "stale.done")
    open(stale, "w").write("{}")
    os.utime(stale, (time.time() - 2 * 86400,) * 2)
    p = box.serve()
    wait_for(lambda: os.path.exists(os.path.join(box.data, "spool", "fresh.done")),
             what="fresh delivered")
    assert os.path.exists(os.path.join(box.data, "spool", "fresh.raw"))
    assert not any(f.startswith("stale") for f in os.listdir(os.path.join(box.data, "spool")))
    assert box.stop(p) == 0


def test_unusable_spool_is_kept_and_reported(box):
    conf(box)
    spool = os.path.join(box.data, "spool")
    for name, body in (("bad.json", b'{"version":1,'), ("bad.raw", b"\0\0" * 100),
                       ("evil.json", json.dumps({"version": 1, "id": "evil",
                                                 "mailbox_uid": "../../etc",
                                                 "start_ms": 1}).encode())):
        fd = os.open(os.path.join(spool, name), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, body)
        os.close(fd)
    write_spool(box.data, "good", box.uid, tone(700, 0.5))
    p = box.serve()
    wait_for(lambda: maildir_files(box.data, box.uid), what="the good one")
    ev = wait_for(lambda: len(box.events("--id", "1175")) == 2 and box.events("--id", "1175"),
                  what="1175 twice")
    assert {e["source"] for e in ev} == {"bad", "evil"}
    assert any("mailbox_uid" in e["fields"]["error"] for e in ev)
    assert os.path.exists(os.path.join(spool, "bad.json"))
    assert os.path.exists(os.path.join(spool, "bad.raw"))
    assert not os.path.exists(os.path.join(box.data, "etc"))
    assert box.json("status")["state"] == "running"
    assert box.stop(p) == 0


def test_free_space_rule(box):
    """Below min_free_mb there is no room for new calls (status and 1173);
    when the rule is met again, 1174."""
    conf(box, "min_free_mb = 10000000\n")
    p = box.serve()
    assert box.json("status")["delivery"]["room"] is False
    assert len(box.events("--id", "1173")) == 1
    conf(box, "min_free_mb = 0\n")
    box.ok("reload")
    assert box.json("status")["delivery"]["room"] is True
    assert len(box.events("--id", "1174")) == 1
    conf(box, "audio_format = mp3\n")
    assert box.json("reload")["ok"] is True
    assert box.json("status")["delivery"]["audio_format"] == "mp3"
    assert box.stop(p) == 0


def test_mailbox_messages_list_and_export(box, tmp_path):
    conf(box)
    write_spool(box.data, "m1", box.uid, tone(900, 1.2))
    write_spool(box.data, "m2", box.uid, tone(400, 3.1), call_id="m2@gw", anonymous=True,
                start_ms=1767268900000, caller="")
    p = box.serve()
    wait_for(lambda: len(maildir_files(box.data, box.uid)) == 2, what="two messages")
    assert box.stop(p) == 0
    msgs = box.json("mailbox", "messages", "1001")
    assert [m["status"] for m in msgs] == ["new", "new"]
    assert msgs[0]["caller"] == "+4930123456" and msgs[0]["caller_name"] == "Alice Example"
    assert msgs[0]["duration_s"] == 1 and msgs[1]["duration_s"] == 3
    assert msgs[1]["caller"] == "anonymous"
    assert msgs[0]["time"].startswith("2026-01-01T12:00:00")
    # an IMAP client read it: saved
    f = maildir_files(box.data, box.uid)
    first = [x for x in f if msgs[0]["id"] in x][0]
    os.rename(first, os.path.join(box.data, "mail", box.uid, "cur",
                                  os.path.basename(first) + ":2,S"))
    assert [m["status"] for m in box.json("mailbox", "messages", "1001")] == ["saved", "new"]
    text = box.ok("mailbox", "messages", "1001").stdout
    assert "saved" in text and "Alice Example (+4930123456)" in text
    out = os.path.join(tmp_path, "m2.wav")
    r = box.ok("mailbox", "messages", "1001", "--export", msgs[1]["id"][:8], "--out", out)
    assert "written to" in r.stdout
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    got = decode(out, tmp_path)
    assert np.array_equal(got, tone(400, 3.1))
    r = box.run("mailbox", "messages", "1001", "--export", msgs[1]["id"], "--out", out)
    assert r.returncode == 1 and "exists" in r.stderr
    r = box.run("mailbox", "messages", "1001", "--export", "ffffffffff", "--out",
                os.path.join(tmp_path, "x.wav"))
    assert r.returncode == 1 and "no message" in r.stderr
    r = box.run("mailbox", "messages", "1001", "--export", msgs[1]["id"])
    assert r.returncode == 2
    assert box.json("mailbox", "messages", "1001", "--dialplan", "P")[0]["id"] == msgs[0]["id"]


def test_greetings_are_converted_and_stored(box, tmp_path):
    made = {}
    for kind, fmt in (("busy", "wav"), ("unavailable", "flac"), ("name", "ogg")):
        src = os.path.join(tmp_path, f"{kind}.{fmt}")
        subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", src, "synth", "2",
                        "sine", "1250"], check=True, capture_output=True)
        r = box.ok("mailbox", "set", "1001", "--greeting", f"{kind}={src}", "--no-reload")
        assert f"greeting {kind}: 2.0 s" in r.stdout
        made[kind] = box.json("mailbox", "show", "1001")["greetings"][kind]
        assert made[kind].startswith("greetings/")
    for kind, rel in made.items():
        path = os.path.join(box.data, rel)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        info = subprocess.run(["soxi", path], capture_output=True, text=True).stdout
        assert "Sample Rate    : 8000" in info and "Channels       : 1" in info
        assert "16-bit Signed Integer PCM" in info
        got = decode(path, tmp_path)
        assert abs(len(got) / RATE - 2.0) < 0.02
        assert abs(dominant(got, RATE) - 1250) < 10
    assert stat.S_IMODE(os.stat(os.path.join(box.data, "greetings")).st_mode) == 0o700
    # a new busy greeting replaces the file; removing one deletes it
    src = os.path.join(tmp_path, "busy.wav")
    box.ok("mailbox", "set", "1001", "--greeting", f"busy={src}", "--no-reload")
    assert not os.path.exists(os.path.join(box.data, made["busy"]))
    box.ok("mailbox", "set", "1001", "--remove-greeting", "name", "--no-reload")
    assert not os.path.exists(os.path.join(box.data, made["name"]))
    g = box.json("mailbox", "show", "1001")["greetings"]
    assert g["name"] is None and g["busy"] and g["unavailable"] == made["unavailable"]
    # bad input: clear errors, nothing changed, no FIFO wait
    before = box.json("mailbox", "show", "1001")["greetings"]
    notaudio = os.path.join(tmp_path, "notes.wav")
    open(notaudio, "w").write("not a recording\n")
    fifo = os.path.join(tmp_path, "fifo")
    os.mkfifo(fifo)
    longf = os.path.join(tmp_path, "long.wav")
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", longf, "synth", "61", "sine", "300"],
                   check=True, capture_output=True)
    for arg, code, words in ((f"busy={notaudio}", 1, "is not audio"),
                             (f"busy={fifo}", 1, "not a regular file (a FIFO)"),
                             (f"busy={tmp_path}/missing.wav", 1, "No such file"),
                             (f"busy={longf}", 1, "at most 60 s"),
                             (f"loud={src}", 2, "KIND one of busy, unavailable, name"),
                             ("busy", 2, "KIND=FILE")):
        r = box.run("mailbox", "set", "1001", "--greeting", arg, "--no-reload", timeout=20)
        assert r.returncode == code and words in r.stderr, (arg, r.stderr)
    assert box.json("mailbox", "show", "1001")["greetings"] == before
    assert len(os.listdir(os.path.join(box.data, "greetings"))) == 2


def dovecot(run, maildir):
    """Debian's Dovecot serving one Maildir over IMAP on a free loopback
    port, reading it as `nobody` (Dovecot never reads mail as root): its own
    configuration in `run`. Returns (process, an IMAP client connected)."""
    port = free_port()
    os.makedirs(os.path.join(run, "state"))
    cfg = os.path.join(run, "dovecot.conf")
    open(cfg, "w").write(f"""protocols = imap
listen = 127.0.0.1
base_dir = {run}/run
state_dir = {run}/state
log_path = {run}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{maildir}
passdb {{
  driver = static
  args = password=secret
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={run}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
""")
    dv = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", cfg], stdout=subprocess.DEVNULL,
                          stderr=subprocess.STDOUT)

    def connect():
        try:
            return imaplib.IMAP4("127.0.0.1", port)
        except OSError:
            return None
    try:
        return dv, wait_for(connect, timeout=20, what="Dovecot's IMAP port")
    except BaseException:
        dv.terminate()
        dv.wait(20)
        raise


def test_dovecot_lists_the_message_over_imap(tmp_path):
    """Dovecot (Debian's) serves the Maildir openum wrote. Dovecot never
    reads mail as root, so openum runs as `nobody` here, as it runs as its
    own user in production, and Dovecot reads as that user."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run openum and Dovecot as another user")
    if not os.path.exists("/usr/sbin/dovecot"):
        pytest.skip("dovecot-imapd is not installed")
    base = tempfile.mkdtemp(prefix="om-imap-", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        nobody = 65534
        os.chown(base, nobody, nobody)
        o = Openum(os.path.join(base, "data"))
        o.run("init", check=0, as_user="nobody")
        o.run("dialplan", "new", "P", "--digits", "4", "--no-reload", check=0, as_user="nobody")
        o.run("mailbox", "new", "1001", "--dialplan", "P", "--no-reload", check=0,
              as_user="nobody")
        uid = json.loads(o.run("mailbox", "show", "1001", "--json", check=0,
                               as_user="nobody").stdout)["id"]
        o.port = free_port()
        conf(o)
        os.chown(os.path.join(o.data, "openum.conf"), nobody, nobody)
        write_spool(o.data, "imap1", uid, tone(800, 1), owner=nobody)
        log = open(os.path.join(base, "serve.log"), "ab")
        p = subprocess.Popen(["runuser", "-u", "nobody", "--", BIN, "serve", "--data", o.data],
                             stdout=log, stderr=subprocess.STDOUT)
        try:
            files = wait_for(lambda: maildir_files(o.data, uid), what="the message")
            want = email.message_from_bytes(open(files[0], "rb").read(),
                                            policy=email.policy.default)
        finally:
            p.terminate()
            p.wait(20)
        dv, m = dovecot(os.path.join(base, "dovecot"), os.path.join(o.data, "mail", uid))
        try:
            m.login("bob", "secret")
            typ, data = m.select("INBOX")
            assert typ == "OK" and data[0] == b"1", (typ, data)
            typ, data = m.search(None, "UNSEEN")
            assert data[0] == b"1"
            typ, data = m.fetch(b"1", "(RFC822)")
            got = email.message_from_bytes(data[0][1], policy=email.policy.default)
            assert got["Message-ID"] == want["Message-ID"]
            assert got["X-Openum-Extension"] == "1001"
            att = next(got.iter_attachments()).get_content()
            wav = os.path.join(base, "imap.wav")
            open(wav, "wb").write(att)
            assert np.array_equal(decode(wav, base), tone(800, 1))
            m.logout()
        finally:
            dv.terminate()
            dv.wait(20)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _mount_tmpfs(path, size):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small file system")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip("cannot mount tmpfs here: " + r.stderr)


def _fill(path):
    """Fills the file system of `path` with one file; returns its name."""
    name = os.path.join(path, "filler")
    with open(name, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return name


def test_full_disk_delays_delivery_and_refuses_new_calls(box):
    """A full file system: the mailbox cannot take the message (1172,
    ENOSPC, the spool stays) until there is room, then it is delivered; a
    spool file system below min_free_mb leaves no room for new calls (1173)
    until space returns (1174)."""
    mail = os.path.join(box.data, "mail")
    spool = os.path.join(box.data, "spool")
    os.makedirs(mail, mode=0o700, exist_ok=True)
    conf(box, "min_free_mb = 2\n")
    write_spool(box.data, "full", box.uid, tone(700, 3))
    _mount_tmpfs(mail, "256k")
    try:
        filler = _fill(mail)
        p = box.serve()
        ev = wait_for(lambda: box.events("--id", "1172"), what="1172")
        assert "No space left on device" in ev[0]["fields"]["error"]
        assert os.path.exists(os.path.join(spool, "full.json"))
        assert not os.path.exists(os.path.join(spool, "full.done"))
        os.unlink(filler)
        box.ok("reload")  # retries at once
        files = wait_for(lambda: maildir_files(box.data, box.uid), what="the delivery")
        got = email.message_from_bytes(open(files[0], "rb").read(), policy=email.policy.default)
        assert len(next(got.iter_attachments()).get_content()) == 44 + 3 * 8000 * 2
        assert box.stop(p) == 0
    finally:
        subprocess.run(["umount", mail], check=False)
    # the spool's own file system
    moved = os.path.join(box.data, "spool.old")
    os.rename(spool, moved)
    os.mkdir(spool, 0o700)
    _mount_tmpfs(spool, "4m")
    try:
        p = box.serve()
        assert box.json("status")["delivery"]["room"] is True
        filler = _fill(spool)
        assert box.json("status")["delivery"]["room"] is False
        assert box.events("--id", "1173")
        os.unlink(filler)
        assert box.json("status")["delivery"]["room"] is True
        assert box.events("--id", "1174")
        assert box.stop(p) == 0
    finally:
        subprocess.run(["umount", spool], check=False)
