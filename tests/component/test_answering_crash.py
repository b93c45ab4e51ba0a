"""Nothing lost, nothing doubled (R11), end to end with sipp as the gateway
over TCP and the real `openum serve`:

- `kill -9` of the server in the middle of a message, then a restart:
  exactly one message for that call, its audio the caller's tone up to the
  kill (at least what was on disk just before it), marked recovered (event
  1171, X-Openum-Recovered, "[recovered]" in the subject, the text's
  "Recovered after an interruption"); a second restart delivers nothing
  new.
- The spool on a small tmpfs (mounted here, as root, under the test's
  folder, unmounted after): below min_free_mb new calls get 503 while the
  call in progress keeps recording; a full file system ends that call's
  recording, and it is delivered with what it has; nothing crashes; when
  space returns, calls are answered and delivered again."""
import os
import signal
import subprocess

import pytest

from audio_check import (Message, all_messages, dominant, mailbox_uid, tone_seconds,
                         wait_messages)
from calls_util import FQDN
from sip_util import wait_for
from test_answering_peers import TONE, say_wav, sipp_store
from test_calls_sipp import finish_sipp, sipp



def raw_bytes(o):
    """{spool id: bytes of its .raw} for every spool of the store."""
    d = os.path.join(o.data, "spool")
    out = {}
    for f in os.listdir(d):
        if f.endswith(".raw"):
            try:
                out[f[:-4]] = os.stat(os.path.join(d, f)).st_size
            except FileNotFoundError:
                pass
    return out


def no_sanitizer_report(o):
    log = o.log()
    assert "AddressSanitizer" not in log and "runtime error:" not in log, log[-5000:]


def delivery_idle(o):
    d = o.json("status")["delivery"]
    return d["queued"] == 0 and d["running"] == 0 and d


def test_kill9_mid_message_then_restart_delivers_it_once_as_recovered(tmp_path):
    o = sipp_store(tmp_path)
    uid = mailbox_uid(o, "2001")
    o.proc = o.serve()
    d = say_wav(tmp_path / "c1", 30)
    p = sipp(o, "answer_uac.xml", d, ["X-Test: kill9", f"sip:2001@{FQDN}", 40000], bg=True,
             timeout=60)
    try:
        # 2 s of the message on disk, then kill -9 at once
        assert wait_for(lambda: any(n >= 32000 for n in raw_bytes(o).values()), timeout=20), \
            (raw_bytes(o), o.log()[-3000:])
        (sid, before), = raw_bytes(o).items()
        o.proc.send_signal(signal.SIGKILL)
        o.proc.wait(10)
    finally:
        p.kill()
        finish_sipp(p)
    assert not os.path.exists(os.path.join(o.data, "spool", sid + ".end"))
    assert all_messages(o.data) == {}
    # the restart finds the spool and delivers it, marked recovered
    o.proc = o.serve()
    got = wait_messages(o.data, uid, 1, 30)
    assert len(got) == 1, (all_messages(o.data), o.log()[-3000:])
    m = Message(got[0], tmp_path)
    assert m["X-Openum-Recovered"] == "yes"
    assert m["Subject"].startswith("[recovered]"), m["Subject"]
    assert "Recovered after an interruption" in m.text
    assert m["X-Openum-Extension"] == "2001"
    # the audio up to the kill: at least what was on disk just before it
    # (PCM16 WAV: the very samples), and the caller's tone throughout
    assert len(m.pcm) >= before // 2, (len(m.pcm), before)
    assert m.seconds <= before / 16000 + 1.0, (m.seconds, before)
    assert abs(dominant(m.pcm) - TONE) < 10
    assert tone_seconds(m.pcm, TONE) >= before / 16000 - 0.1
    ev = wait_for(lambda: o.events("--id", "1171"), timeout=10)
    assert [e["source"] for e in ev] == [sid], ev
    delivered = wait_for(lambda: o.events("--id", "1170"), timeout=10)
    assert len(delivered) == 1, delivered
    assert wait_for(lambda: delivery_idle(o), timeout=20)
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    # a second restart: nothing new
    o.proc = o.serve()
    assert wait_for(lambda: delivery_idle(o), timeout=20)
    assert o.json("status")["delivery"]["delivered"] == 0
    assert all_messages(o.data) == {uid: got}
    assert len(o.events("--id", "1170")) == 1
    assert len(o.events("--id", "1171")) == 1
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    no_sanitizer_report(o)


def _mount_tmpfs(path, size):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small file system")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                        str(path)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip("cannot mount tmpfs here: " + r.stderr)


def _fill(path, name, leave=0):
    """A file in `path` that leaves `leave` bytes free (0: fills it up)."""
    f = os.path.join(str(path), name)
    st = os.statvfs(str(path))
    free = st.f_bavail * st.f_frsize
    with open(f, "wb") as out:
        todo = max(0, free - leave) if leave else None
        chunk = b"\0" * 65536
        try:
            while todo is None or todo > 0:
                n = len(chunk) if todo is None else min(len(chunk), todo)
                out.write(chunk[:n])
                out.flush()
                if todo is not None:
                    todo -= n
        except OSError:
            pass
    return f


def refused(o, d, tag):
    rc, out = sipp(o, "answer_refused.xml", d, [f"X-Test: {tag}", f"sip:2002@{FQDN}", 503],
                   timeout=20)
    return rc == 0, out


def test_full_spool_file_system(tmp_path):
    o = sipp_store(tmp_path, conf="min_free_mb = 3\n")
    uid = mailbox_uid(o, "2001")
    spool = os.path.join(o.data, "spool")
    os.makedirs(spool, mode=0o700, exist_ok=True)
    assert os.listdir(spool) == []
    _mount_tmpfs(spool, "6m")
    fillers = []
    try:
        o.proc = o.serve()
        assert o.json("status")["delivery"]["room"] is True
        # A: a call in progress (its tone for 20 s; sipp hangs up at 15 s
        # unless openum does first)
        a = sipp(o, "answer_uac.xml", say_wav(tmp_path / "a", 20),
                 ["X-Test: full-a", f"sip:2001@{FQDN}", 15000], bg=True, timeout=60)
        try:
            assert wait_for(lambda: any(n >= 16000 for n in raw_bytes(o).values()),
                            timeout=20), (raw_bytes(o), o.log()[-3000:])
            (sid, _), = raw_bytes(o).items()
            # below min_free_mb (1 MiB left): no room; B gets 503
            fillers.append(_fill(spool, "filler1", leave=1 << 20))
            assert wait_for(lambda: o.json("status")["delivery"]["room"] is False, timeout=10)
            ok, out = refused(o, tmp_path / "a", "low-b")
            assert ok, out + o.log()[-3000:]
            # ... while A keeps recording
            n0 = raw_bytes(o)[sid]
            assert wait_for(lambda: raw_bytes(o)[sid] >= n0 + 8000, timeout=10), raw_bytes(o)
            # the file system full: A's recording ends there
            fillers.append(_fill(spool, "filler2"))
            full_at = raw_bytes(o)[sid]
            ok, out = refused(o, tmp_path / "a", "full-c")
            assert ok, out + o.log()[-3000:]
            rc, out = finish_sipp(a, timeout=40)
            assert rc == 0, out + o.log()[-3000:]
        finally:
            if a.poll() is None:
                a.kill()
                a.communicate()
        # A is delivered with what it has, while the disk is still full
        got = wait_messages(o.data, uid, 1, 30)
        assert len(got) == 1, (all_messages(o.data), o.log()[-3000:])
        m = Message(got[0], tmp_path)
        assert len(m.pcm) >= full_at // 2, (len(m.pcm), full_at)
        assert abs(dominant(m.pcm) - TONE) < 10
        assert tone_seconds(m.pcm, TONE) >= full_at / 16000 - 0.1
        assert all_messages(o.data) == {uid: got}  # B and C (to 2002) left nothing
        assert o.proc.poll() is None and o.json("status")["state"] == "running"
        # space returns: D is answered, recorded and delivered
        for f in fillers:
            os.unlink(f)
        fillers = []
        assert wait_for(lambda: o.json("status")["delivery"]["room"] is True, timeout=15)
        rc, out = sipp(o, "answer_uac.xml", say_wav(tmp_path / "d", 5),
                       ["X-Test: full-d", f"sip:2001@{FQDN}", 6000], timeout=30)
        assert rc == 0, out + o.log()[-3000:]
        got2 = wait_messages(o.data, uid, 2, 30)
        assert len(got2) == 2, (all_messages(o.data), o.log()[-3000:])
        m2 = Message([f for f in got2 if f not in got][0], tmp_path)
        assert abs(dominant(m2.pcm) - TONE) < 10 and tone_seconds(m2.pcm, TONE) >= 2.0
        assert m2["X-Openum-Recovered"] is None
        assert o.events("--id", "1173") and o.events("--id", "1174")
        assert o.stop(o.proc) == 0, o.log()[-3000:]
        no_sanitizer_report(o)
    finally:
        o.close()
        for f in fillers:
            try:
                os.unlink(f)
            except OSError:
                pass
        subprocess.run(["umount", spool], check=False, capture_output=True)
