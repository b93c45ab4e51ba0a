"""Voice message delivery against hostile or damaged input, through the real
`openum serve` and `openum mailbox messages`: an end marker that cannot be
read, NUL characters and over-long text from the caller, times out of
range, a Maildir holding a message from elsewhere (IMAP APPEND) with
terminal escape sequences, and `--export` onto what already exists."""
import email
import email.header
import email.policy
import json
import os

import numpy as np

from test_delivery import (box, conf, decode, dominant, maildir_files, tone,  # noqa: F401
                           wait_for, write_spool)


def parse(path):
    return email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)


def raw_header(path, name):
    """The field's value as written, unfolded (encoded-words left as they are)."""
    head = open(path, encoding="ascii").read().split("\n\n", 1)[0].replace("\n ", " ")
    return [l for l in head.split("\n") if l.startswith(name + ": ")][0][len(name) + 2:]


def audio_of(msg, tmp_path, name="a.wav"):
    wav = os.path.join(tmp_path, name)
    open(wav, "wb").write(next(msg.iter_attachments()).get_content())
    return decode(wav, tmp_path)


def test_unreadable_end_marker_never_loses_the_message(box, tmp_path):
    """The metadata is good and the audio is there, but the end marker is
    not JSON, has a field of the wrong type, is larger than an end marker
    can be, or is a folder: each message is delivered with its audio,
    as an interrupted one (1171 says the end marker was unusable)."""
    conf(box)
    spool = os.path.join(box.data, "spool")
    pcms = {}
    for i, sid in enumerate(("notjson", "wrongtype", "huge", "folder")):
        pcms[sid] = tone(300 + 100 * i, 0.8)
        write_spool(box.data, sid, box.uid, pcms[sid], end=False, call_id=f"{sid}@gw")
    bodies = {"notjson": b'{"end_ms":', "wrongtype": b'{"end_ms":"later"}',
              "huge": b'{"end_reason":"hangup","x":"' + b"y" * 8192 + b'"}'}
    for sid, body in bodies.items():
        fd = os.open(os.path.join(spool, sid + ".end"), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, body)
        os.close(fd)
    os.mkdir(os.path.join(spool, "folder.end"), 0o700)
    p = box.serve()
    files = wait_for(lambda: len(maildir_files(box.data, box.uid)) == 4 and
                     maildir_files(box.data, box.uid), what="four messages")
    assert box.events("--id", "1175") == []
    freqs = []
    for i, f in enumerate(files):
        msg = parse(f)
        assert msg["X-Openum-Recovered"] == "yes"
        pcm = audio_of(msg, tmp_path, f"m{i}.wav")
        assert len(pcm) == 6400
        freqs.append(round(dominant(pcm, 8000)))
    assert sorted(freqs) == [300, 400, 500, 600], freqs
    ev = box.events("--id", "1171")
    assert len(ev) == 4 and all(e["fields"]["end_marker"] == "unusable" for e in ev), ev
    assert box.stop(p) == 0


def test_nul_and_controls_in_caller_text(box, tmp_path):
    """A NUL in the caller's name (a SIP quoted-pair may carry one) is
    dropped, never the message; CR/LF cannot start a header field."""
    conf(box)
    pcm = tone(700, 0.6)
    write_spool(box.data, "nul", box.uid, pcm, caller_name="Eve\u0000 \r\nBcc: x@example.com",
                caller="+49\u000030\r\nX-Injected: 1")
    p = box.serve()
    files = wait_for(lambda: maildir_files(box.data, box.uid), what="the message")
    raw = open(files[0], "rb").read()
    assert b"\0" not in raw
    msg = parse(files[0])
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert msg["X-Openum-Caller-Name"] == "Eve Bcc: x@example.com"
    assert msg["X-Openum-Caller"] == "+4930 X-Injected: 1"
    assert np.array_equal(audio_of(msg, tmp_path), pcm)
    assert box.events("--id", "1175") == []
    assert box.stop(p) == 0


def test_start_time_out_of_range_is_reported_for_what_it_is(box):
    """start_ms of 1e300 (a real beyond any time) or after the year 9999:
    the spool is kept and 1175 names the field and the reason (1e300 was
    converted to a negative number before, in C an undefined conversion)."""
    conf(box)
    write_spool(box.data, "far", box.uid, tone(500, 0.2), start_ms=1e300)
    write_spool(box.data, "y10k", box.uid, tone(500, 0.2), start_ms=253402300800000,
                call_id="y10k@gw")
    p = box.serve()
    ev = wait_for(lambda: len(box.events("--id", "1175")) == 2 and box.events("--id", "1175"),
                  what="1175 twice")
    errors = {e["source"]: e["fields"]["error"] for e in ev}
    assert "start_ms" in errors["far"] and "out of range" in errors["far"], errors
    assert "year 9999" in errors["y10k"], errors
    assert maildir_files(box.data, box.uid) == []
    assert os.path.exists(os.path.join(box.data, "spool", "far.json"))
    assert box.stop(p) == 0


def test_long_caller_text_keeps_header_lines_short_and_lists_back(box, tmp_path):
    """A 128-digit number, a 128-letter name, a long name in UTF-8: header
    lines stay within 78 characters (RFC 5322 §2.1.1), Python's parser gets
    the text back, and `mailbox messages` shows the whole name, decoded."""
    conf(box)
    long_name = ("Jürgen Müller-Lüdenscheidt ☎ vom Ordnungsamt der Stadt, Abteilung für "
                 "Öffentliche Ordnung")  # 96 bytes: 4 encoded-words
    write_spool(box.data, "ascii", box.uid, tone(400, 0.3), caller="9" * 128,
                caller_name="A" * 128)
    write_spool(box.data, "utf8", box.uid, tone(400, 0.3), call_id="utf8@gw",
                caller_name=long_name, start_ms=1767268900000)
    p = box.serve()
    files = wait_for(lambda: len(maildir_files(box.data, box.uid)) == 2 and
                     maildir_files(box.data, box.uid), what="two messages")
    assert box.stop(p) == 0
    for f in files:
        head = open(f, "rb").read().split(b"\n\n", 1)[0]
        for line in head.split(b"\n"):
            assert len(line) <= 78, (len(line), line[:60])
    by_name = {parse(f)["X-Openum-Caller-Name"]: parse(f) for f in files}
    assert set(by_name) == {"A" * 128, long_name}
    assert by_name["A" * 128]["X-Openum-Caller"] == "9" * 128
    # RFC 2047 §6.2: the space between two encoded-words is not text
    # (email.header follows it; the address parser of Python 3.11 does not)
    path = [f for f in files if parse(f)["X-Openum-Caller-Name"] == "A" * 128][0]
    raw_from = raw_header(path, "From")
    name = str(email.header.make_header(email.header.decode_header(raw_from)))
    assert name.startswith("A" * 128 + " (" + "9" * 128 + ")"), name
    listed = {m["caller_name"]: m for m in box.json("mailbox", "messages", "1001")}
    assert set(listed) == {"A" * 128, long_name}, listed.keys()
    assert listed["A" * 128]["caller"] == "9" * 128
    text = box.ok("mailbox", "messages", "1001").stdout
    assert long_name in text and "=?UTF-8?" not in text


def test_listing_neutralises_a_foreign_message(box):
    """A message that reached the Maildir from elsewhere (a client's IMAP
    APPEND lands in cur/) with escape sequences and invalid UTF-8 in its
    From: the listing shows text, never terminal controls, and --json is
    valid UTF-8."""
    conf(box)
    write_spool(box.data, "mine", box.uid, tone(400, 0.3))
    p = box.serve()
    wait_for(lambda: maildir_files(box.data, box.uid), what="openum's message")
    assert box.stop(p) == 0
    import base64
    evil = base64.b64encode(b"\x1b]0;owned\x07\x1b[2J\xc2\x9b31mMallory\xff\xfe").decode()
    cur = os.path.join(box.data, "mail", box.uid, "cur")
    path = os.path.join(cur, "1767268999.M1P2.host,S=100:2,S")
    with open(path, "wb") as f:
        f.write(f"From: =?UTF-8?B?{evil}?= <m@example.com>\nSubject: hi\n"
                "Date: Thu, 01 Jan 2026 12:00:00 +0000\n\nhello\n".encode())
    os.chmod(path, 0o600)
    r = box.run("mailbox", "messages", "1001", check=0)
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\u009b" not in r.stdout
    assert "Mallory" in r.stdout
    raw = box.run("--json", "mailbox", "messages", "1001", check=0).stdout
    msgs = json.loads(raw.encode("utf-8", errors="strict"))
    foreign = [m for m in msgs if "Mallory" in m["caller"]]
    assert len(foreign) == 1
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in foreign[0]["caller"])


def test_export_never_replaces_what_exists(box, tmp_path):
    """--out naming a dangling symbolic link, a device or a folder is
    refused and left as it was; an empty id is a usage error."""
    conf(box)
    pcm = tone(800, 0.5)
    write_spool(box.data, "x", box.uid, pcm)
    p = box.serve()
    wait_for(lambda: maildir_files(box.data, box.uid), what="the message")
    assert box.stop(p) == 0
    mid = box.json("mailbox", "messages", "1001")[0]["id"]
    link = os.path.join(tmp_path, "link.wav")
    target = os.path.join(tmp_path, "elsewhere.wav")
    os.symlink(target, link)
    r = box.run("mailbox", "messages", "1001", "--export", mid, "--out", link)
    assert r.returncode == 1 and "symbolic link" in r.stderr, r.stderr
    assert os.path.islink(link) and os.readlink(link) == target and not os.path.exists(target)
    for out, why in (("/dev/null", "device"), (str(tmp_path), "directory")):
        r = box.run("mailbox", "messages", "1001", "--export", mid, "--out", out)
        assert r.returncode == 1 and why in r.stderr, (out, r.stderr)
    existing = os.path.join(tmp_path, "existing.wav")
    open(existing, "w").write("mine")
    r = box.run("mailbox", "messages", "1001", "--export", mid, "--out", existing)
    assert r.returncode == 1 and "exists" in r.stderr and "--force" not in r.stderr, r.stderr
    assert open(existing).read() == "mine"
    assert [f for f in os.listdir(tmp_path) if ".tmp." in f] == []
    r = box.run("mailbox", "messages", "1001", "--export", "", "--out",
                os.path.join(tmp_path, "y.wav"))
    assert r.returncode == 2 and "needs a message id" in r.stderr, r.stderr
    out = os.path.join(tmp_path, "ok.wav")
    box.ok("mailbox", "messages", "1001", "--export", mid[:6], "--out", out)
    assert np.array_equal(decode(out, tmp_path), pcm)


def test_status_text_shows_delivery_and_room(box):
    """`openum status` (text) says what --json says about delivery: the
    queue, and when new calls are refused for want of space."""
    conf(box, "min_free_mb = 10000000\n")
    p = box.serve()
    text = box.ok("status").stdout
    assert "delivery          queued 0, running 0, retrying 0, delivered 0" in text, text
    assert "below min_free_mb, new calls are refused" in text, text
    conf(box, "min_free_mb = 0\n")
    box.ok("reload")
    text = box.ok("status").stdout
    assert "MB free\n" in text and "new calls are refused" not in text, text
    assert box.stop(p) == 0


def test_mailbox_folder_on_a_missing_mount_is_retried(box):
    """mail/<uid> is a link to a folder that is not there (a file system
    not mounted yet): a failed attempt like any other (1172, the spool
    stays, retried), never "spool not found" and forgotten until the next
    start; once the folder is there, the message is delivered."""
    conf(box)
    os.makedirs(os.path.join(box.data, "mail"), mode=0o700, exist_ok=True)
    target = os.path.join(os.path.dirname(box.data), "later")
    os.symlink(target, os.path.join(box.data, "mail", box.uid))
    write_spool(box.data, "m9", box.uid, tone(700, 0.5))
    p = box.serve()
    ev = wait_for(lambda: box.events("--id", "1172"), what="1172")
    assert ev[0]["source"] == "m9" and "No such file" in ev[0]["fields"]["error"], ev
    assert "spool to deliver not found" not in box.log()
    assert os.path.exists(os.path.join(box.data, "spool", "m9.json"))
    os.mkdir(target, 0o700)
    wait_for(lambda: maildir_files(box.data, box.uid), what="the retried delivery")
    assert box.json("status")["delivery"]["delivered"] == 1
    assert box.stop(p) == 0
