"""The voice message of a real call, for each `audio_format` (wav, mp3,
opus — libsndfile provides all three on Debian): sipp leaves a message
over TCP, the delivered file passes Python's `email` parser, its
attachment plays in soxi/sox (Opus through opusdec: Debian's sox has no
Opus handler) and is the caller's tone; then Debian's Dovecot, started
here on openum's own Maildir, lists the three messages over IMAP and
serves them whole (test_delivery.py does the same for a spool written by
hand; its Dovecot helper is shared)."""
import email
import email.policy
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

import calls_util
from audio_check import Message, dominant, mailbox_uid, read_wav, tone_seconds, wait_messages
from calls_util import FQDN
from test_answering_peers import GREETING_S, TONE, say_wav, sipp_store
from test_calls_sipp import sipp
from test_delivery import dovecot

FORMATS = (("wav", "audio/wav", "wav"), ("mp3", "audio/mpeg", "mp3"),
           ("opus", "audio/ogg", "opus"))



def set_format(o, fmt):
    path = os.path.join(o.data, "openum.conf")
    text = re.sub(r"(?m)^audio_format = .*\n", "", open(path).read())
    open(path, "w").write(text + f"audio_format = {fmt}\n")
    assert o.json("reload")["ok"] is True
    assert o.json("status")["delivery"]["audio_format"] == fmt


def test_each_audio_format_parses_plays_and_dovecot_lists_them():
    # a folder `nobody` may traverse (Dovecot reads the Maildir as nobody)
    base = tempfile.mkdtemp(prefix="om-answer-imap-", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        o = sipp_store(Path(base))
        uid = mailbox_uid(o, "2001")
        o.proc = o.serve()
        said = 5.0
        files = {}
        for i, (fmt, mime, ext) in enumerate(FORMATS):
            set_format(o, fmt)
            d = say_wav(Path(base) / f"call-{fmt}", said)
            rc, out = sipp(o, "answer_uac.xml", d, [f"X-Test: format-{fmt}",
                                                    f"sip:2001@{FQDN}", 6000])
            assert rc == 0, out + o.log()[-3000:]
            got = wait_messages(o.data, uid, i + 1, 30)
            assert len(got) == i + 1, (got, o.log()[-3000:])
            (path,) = [f for f in got if f not in files.values()]
            files[fmt] = path
            tmp = Path(base) / f"check-{fmt}"
            tmp.mkdir()
            m = Message(path, tmp)  # parsed by `email`, no defects
            assert os.stat(path).st_mode & 0o777 == 0o600
            assert m["X-Openum-Audio"] == fmt
            assert m.attachment.get_content_type() == mime
            assert m.attachment.get_filename().endswith("." + ext)
            # soxi knows its length; sox decodes it: the caller's tone,
            # the message's length as its headers say
            assert said - GREETING_S - 3.5 <= m.seconds <= said - GREETING_S + 0.3, m.describe()
            assert abs(m.seconds - int(m["X-Openum-Duration"])) <= 1.0, m.describe()
            assert abs(dominant(m.pcm) - TONE) < 15, m.describe()
            assert tone_seconds(m.pcm, TONE) >= m.seconds - 0.4, m.describe()
        assert o.stop(o.proc) == 0, o.log()[-3000:]
        if os.geteuid() != 0:
            pytest.skip("needs root to let Dovecot read the Maildir as nobody")
        if not os.path.exists("/usr/sbin/dovecot"):
            pytest.skip("dovecot-imapd is not installed")
        # Dovecot never reads mail as root: the mailbox becomes nobody's
        maildir = os.path.join(o.data, "mail", uid)
        for p in (o.data, os.path.join(o.data, "mail")):
            os.chmod(p, 0o711)
        for root, dirs, names in os.walk(maildir):
            for n in [root] + [os.path.join(root, x) for x in dirs + names]:
                os.chown(n, 65534, 65534)
        want = {email.message_from_bytes(open(f, "rb").read(),
                                         policy=email.policy.default)["Message-ID"]: fmt
                for fmt, f in files.items()}  # (Dovecot moves them from new/ to cur/)
        dv, imap = dovecot(os.path.join(base, "dovecot"), maildir)
        try:
            imap.login("bob", "secret")
            typ, data = imap.select("INBOX")
            assert typ == "OK" and data[0] == b"3", (typ, data)
            typ, data = imap.search(None, "UNSEEN")
            assert data[0].split() == [b"1", b"2", b"3"], data
            seen = {}
            for n in (b"1", b"2", b"3"):
                typ, data = imap.fetch(n, "(RFC822)")
                assert typ == "OK", data
                msg = email.message_from_bytes(data[0][1], policy=email.policy.default)
                fmt = want[msg["Message-ID"]]
                seen[fmt] = n
                att = next(msg.iter_attachments())
                out = Path(base) / f"imap-{n.decode()}.{att.get_filename().rsplit('.', 1)[1]}"
                out.write_bytes(att.get_content())
                pcm = read_wav(out, base)
                assert abs(dominant(pcm) - TONE) < 15, (fmt, dominant(pcm))
            assert sorted(seen) == sorted(files)
            imap.logout()
        finally:
            dv.terminate()
            dv.wait(20)
    finally:
        for o in calls_util.STORES:
            if o.data.startswith(base):
                o.close()
        shutil.rmtree(base, ignore_errors=True)
