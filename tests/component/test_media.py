"""The media engine (src/media) in a running process (om-mediahost drives
the real engine over stdin/stdout), fed by om-testrtp, an independent
libsrtp2 sender and sipp; the recording on disk is checked sample by
sample against an independent G.711 decoder (Python's audioop).

RFC 3550 (timeline by timestamp, SSRC), RFC 3711 (SRTP, MKI, replay),
RFC 4733 (DTMF events), R10 (no latching onto strangers), R11 (nothing
lost: kill -9, full disk)."""
import os
import signal
import subprocess
import time

import pytest

from media_util import (SUITES, MediaHost, Receiver, decode, dominant_hz, frames, g711,
                        key_b64, rtp_send, write_file)


@pytest.fixture
def host(tmp_path):
    h = MediaHost(tmp_path / "spool", "--threads", "2")
    yield h
    h.quit()


def src_port(host):
    """A local port for the sender (the 'gateway'), outside the host's range."""
    from conftest import free_port
    import socket
    while True:
        p = free_port(kind=socket.SOCK_DGRAM)
        if p % 2 == 0 and not (host.port_range[0] <= p <= host.port_range[1] + 1):
            return p


def record(host, name, payload_file, *send_args, spool_id=None, session=(), alaw=False,
           sport=None):
    """Sets up a session whose remote is our sender, records what the sender
    sends, returns (raw bytes, sender summary, session stats)."""
    sport = sport or src_port(host)
    kw = dict(remote=f"127.0.0.1:{sport}")
    kw.update(dict(session))
    if alaw:
        kw.setdefault("codec", "pcma")
    port = host.new(name, **kw)
    host.rec(name, spool_id or name)
    summary = rtp_send(port, "--from", f"127.0.0.1:{sport}", "--payload", payload_file,
                           "--rate", "0", *send_args)
    time.sleep(0.3)
    stopped = host.stop_rec(name)
    closed = host.free(name)
    return host.raw(spool_id or name), summary, closed, stopped


def test_plain_pcmu_and_pcma_recorded_bit_exact(host, tmp_path):
    for alaw in (False, True):
        g = g711(2.0, seed=3, alaw=alaw)
        f = write_file(tmp_path / f"in{alaw}.g711", g)
        args = ["--alaw", "--pt", "8"] if alaw else []
        raw, sent, closed, stopped = record(host, f"p{int(alaw)}", f, *args, alaw=alaw)
        assert raw == decode(g, alaw), "recording differs from the G.711 sent"
        assert stopped["bytes"] == len(raw) and stopped["error"] == 0
        assert closed["rtp_in"] == 100 and closed["lost"] == 0 and closed["strangers"] == 0
        st = os.stat(os.path.join(host.spool, f"p{int(alaw)}.raw"))
        assert st.st_mode & 0o777 == 0o600
        assert os.stat(os.path.join(host.spool, f"p{int(alaw)}.json")).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("suite", sorted(SUITES))
@pytest.mark.parametrize("mki", ["", "01", "0a0b0c0d"])
def test_srtp_every_suite_with_and_without_mki_bit_exact(tmp_path, suite, mki):
    g = g711(1.0, seed=11)
    f = write_file(tmp_path / "in.g711", g)
    for backend in ("openssl", "libsrtp2"):
        h = MediaHost(tmp_path / f"spool-{backend}", "--threads", "1", "--backend", backend)
        try:
            k_rx, k_tx = key_b64(suite, 1), key_b64(suite, 2)
            sess = dict(suite=suite, rxkey=k_rx, txkey=k_tx)
            args = ["--suite", suite, "--key", k_rx]
            if mki:
                sess.update(rxmki=mki, txmki=mki)
                args += ["--mki", mki]
            raw, sent, closed, _ = record(h, "s", f, *args, session=sess)
            assert raw == decode(g), f"{suite} mki={mki!r} via {backend}: audio differs"
            assert closed["srtp_auth"] == 0 and closed["rtp_in"] == 50
            # Our own sender's other backend must be read as well.
            raw2, _, closed2, _ = record(h, "t", f, *args, "--backend", "libsrtp2",
                                         session=sess)
            assert raw2 == decode(g)
        finally:
            h.quit()


def test_srtp_wrong_mki_is_refused_and_counted(host, tmp_path):
    suite = "AES_CM_128_HMAC_SHA1_80"
    g = g711(0.5)
    f = write_file(tmp_path / "in.g711", g)
    k = key_b64(suite, 1)
    raw, _, closed, _ = record(host, "m", f, "--suite", suite, "--key", k, "--mki", "02",
                               session=dict(suite=suite, rxkey=k, txkey=k, rxmki="01",
                                            txmki="01"))
    assert raw == b"" and closed["rtp_in"] == 0 and closed["srtp_auth"] == 25


def test_loss_reorder_duplicates_give_the_right_timeline(host, tmp_path):
    g = g711(2.0, seed=5)
    f = write_file(tmp_path / "in.g711", g)
    # 100 packets: 10 and 11 lost, 20/21 swapped, 30 sent 4 packets late,
    # 40 duplicated, 60 replayed 8 packets later (inside the window).
    raw, sent, closed, _ = record(host, "r", f, "--drop", "10,11", "--swap", "20", "--late",
                                  "30:4", "--dup", "40", "--replay", "60:8")
    want = bytearray(decode(g))
    for i in (10, 11):  # lost: a gap of zeros in its place
        want[i * 320:(i + 1) * 320] = bytes(320)
    assert raw == bytes(want)
    assert closed["lost"] == 2
    assert closed["duplicates"] == 2
    assert closed["rtp_in"] == 98


def test_ssrc_change_and_timestamp_jump_start_new_segments(host, tmp_path):
    g = g711(2.0, seed=9)
    f = write_file(tmp_path / "in.g711", g)
    # At packet 30 a new SSRC (new seq and a timestamp far away), at 70 a
    # timestamp jump of 10 minutes on the same SSRC: each continues right
    # after what was written, no gap, no overlap.
    raw, _, closed, _ = record(host, "j", f, "--ssrc-change", "30", "--ts-jump", "70:4800000")
    assert raw == decode(g)
    assert closed["ssrc_changes"] == 2


def test_roc_rollover_srtp(host, tmp_path):
    suite = "AEAD_AES_128_GCM"
    g = g711(3.0, seed=13)
    f = write_file(tmp_path / "in.g711", g)
    k = key_b64(suite, 4)
    raw, _, closed, _ = record(host, "roc", f, "--suite", suite, "--key", k, "--seq", "65500",
                               "--drop", "40", "--swap", "34",
                               session=dict(suite=suite, rxkey=k, txkey=k))
    want = bytearray(decode(g))
    want[40 * 320:41 * 320] = bytes(320)
    assert raw == bytes(want)
    assert closed["srtp_auth"] == 0 and closed["rtp_in"] == 149


def test_replayed_and_tampered_srtp_dropped_without_trace(host, tmp_path):
    suite = "AES_CM_128_HMAC_SHA1_80"
    g = g711(3.0, seed=21)
    f = write_file(tmp_path / "in.g711", g)
    k = key_b64(suite, 5)
    # Replays: inside the window (EALREADY) and 138 behind (ESTALE).
    raw, _, closed, _ = record(host, "t", f, "--suite", suite, "--key", k, "--tamper",
                               "5,6,7", "--replay", "10:3,11:138,50:2",
                               session=dict(suite=suite, rxkey=k, txkey=k))
    assert raw == decode(g)
    assert closed["srtp_auth"] == 3
    assert closed["srtp_replay"] == 3
    ev = host.events("srtp_fail", "t")
    assert ev and sum(e["auth"] for e in ev) == 3


def test_strangers_and_wrong_port_dropped_and_counted(host, tmp_path):
    g = g711(2.0, seed=17)
    f = write_file(tmp_path / "in.g711", g)
    sport = src_port(host)
    port = host.new("x", remote=f"127.0.0.1:{sport}")
    host.rec("x", "x")
    noise = write_file(tmp_path / "noise.g711", g711(1.0, seed=99))
    # A third address, and the right address from a wrong port, both
    # "before" and during the genuine stream, with continuing seq numbers.
    rtp_send(port, "--from", "127.0.0.2:0", "--payload", noise, "--rate", "0",
                 "--seq", "1000", "--ts", "160000")
    rtp_send(port, "--from", f"127.0.0.1:{sport + 2}", "--payload", noise, "--rate", "0",
                 "--seq", "1050", "--ts", "168000")
    rtp_send(port, "--from", f"127.0.0.1:{sport}", "--payload", f, "--rate", "0")
    time.sleep(0.3)
    host.stop_rec("x")
    closed = host.free("x")
    assert host.raw("x") == decode(g)
    assert closed["strangers"] == 100
    assert closed["rtp_in"] == 100
    assert host.events("strangers", "x")


def test_plain_rtp_port_moves_once_only_when_symmetric(host, tmp_path):
    g = g711(1.0, seed=2)
    f = write_file(tmp_path / "in.g711", g)
    sport = src_port(host)
    for sym in (0, 1):
        name = f"n{sym}"
        port = host.new(name, remote=f"127.0.0.1:{sport}", sym=sym)
        host.rec(name, name)
        # The gateway's NAT moved the port: packets come from sport + 10.
        rtp_send(port, "--from", f"127.0.0.1:{sport + 10}", "--payload", f, "--rate", "0")
        # Then another move: never allowed twice.
        rtp_send(port, "--from", f"127.0.0.1:{sport + 12}", "--payload", f, "--rate", "0",
                     "--seq", "2000")
        time.sleep(0.3)
        host.stop_rec(name)
        closed = host.free(name)
        if sym:
            assert host.raw(name) == decode(g) and closed["strangers"] == 50
        else:
            assert host.raw(name) == b"" and closed["strangers"] == 100


def test_srtp_port_moves_only_after_authentication(host, tmp_path):
    suite = "AES_CM_128_HMAC_SHA1_80"
    g = g711(1.0, seed=4)
    f = write_file(tmp_path / "in.g711", g)
    k = key_b64(suite, 7)
    sport = src_port(host)
    port = host.new("sm", remote=f"127.0.0.1:{sport}", suite=suite, rxkey=k, txkey=k)
    host.rec("sm", "sm")
    # From a new port with a wrong key: no move, counted as auth failures.
    bad = key_b64(suite, 8)
    rtp_send(port, "--from", f"127.0.0.1:{sport + 10}", "--payload", f, "--rate", "0",
                 "--suite", suite, "--key", bad)
    # From the new port with the right key: the port moves, audio recorded.
    rtp_send(port, "--from", f"127.0.0.1:{sport + 20}", "--payload", f, "--rate", "0",
                 "--suite", suite, "--key", k, "--seq", "5000")
    time.sleep(0.3)
    host.stop_rec("sm")
    closed = host.free("sm")
    assert host.raw("sm") == decode(g)
    assert closed["srtp_auth"] == 50 and closed["rtp_in"] == 50


def test_rfc4733_info_and_inband_digits_each_once(host, tmp_path):
    sport = src_port(host)
    # RFC 4733: three digits, each with updates and three end packets, one
    # end packet also replayed late; INFO sends the same "5" again (a
    # gateway doing both): reported once.
    port = host.new("d", remote=f"127.0.0.1:{sport}")
    rtp_send(port, "--from", f"127.0.0.1:{sport}", "--tone", "440:1500", "--dtmf",
                 "5@200:120,#@600:80,9@1000:200", "--rate", "0")
    host.send("dtmf d 5 120")
    host.send("dtmf d 7 100")
    time.sleep(0.5)
    digits = [(e["digit"], e["source"]) for e in host.events("dtmf", "d")]
    assert digits == [("5", "rfc4733"), ("#", "rfc4733"), ("9", "rfc4733"), ("7", "info")]
    host.free("d")
    # In-band (no telephone-event negotiated): spandsp detects the tones.
    port = host.new("ib", remote=f"127.0.0.1:{sport}", te=-1)
    rtp_send(port, "--from", f"127.0.0.1:{sport}", "--silence", "2000", "--inband",
                 "1@200:100,2@500:100,*@900:150", "--rate", "1")
    time.sleep(0.5)
    got = [(e["digit"], e["source"]) for e in host.events("dtmf", "ib")]
    assert got == [("1", "inband"), ("2", "inband"), ("*", "inband")]
    host.free("ib")


def test_prompt_played_decodes_with_the_expected_length(host, tmp_path):
    import wave
    rport = src_port(host)
    rx = Receiver(rport, "--timeout", "1500", out=tmp_path / "heard.raw")
    host.new("pl", remote=f"127.0.0.1:{rport}")
    host.send("play pl 42 prompt:leave-message silence:200 prompt:beep digits:12")
    done = host.wait("play_done", "pl", timeout=20)
    assert done["token"] == 42 and done["stopped"] is False
    res = rx.result()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lens = []
    pcm = b""
    for n in ("leave-message", "beep", "digit-1", "digit-2"):
        with wave.open(os.path.join(root, "data", "prompts", n + ".wav")) as w:
            d = w.readframes(w.getnframes())
        lens.append(len(d) // 2)
        pcm += d if n != "beep" else b""
        if n == "leave-message":
            pcm += bytes(200 * 16)
        if n == "beep":
            beep = d
    total = lens[0] + 1600 + lens[1] + lens[2] + lens[3]
    frames_sent = -(-total // 160)
    assert res["samples"] == frames_sent * 160
    assert res["markers"] == 1 and res["srtp_fail"] == 0
    heard = rx.pcm()
    # The first prompt arrives exactly as G.711 carries it.
    first = audioop_roundtrip(pcm[:lens[0] * 2])
    assert heard[:len(first)] == first
    # The beep is a tone of 1 kHz.
    b0 = (lens[0] + 1600) * 2
    assert abs(dominant_hz(heard[b0:b0 + lens[1] * 2]) - 1000) < 20
    host.free("pl")


def test_recording_armed_behind_the_beep_starts_when_its_last_frame_is_sent(host, tmp_path):
    """A recording started with after_play while a beep plays takes nothing
    said during the beep and everything from its end — without waiting for
    its controller to handle PLAY_DONE (this host never acts on it): the
    call flow's words right after the beep are kept however busy the
    control loop is."""
    g = g711(2.0, seed=11)
    f = write_file(tmp_path / "talk.g711", g)
    sport = src_port(host)
    port = host.new("ap", remote=f"127.0.0.1:{sport}")
    # the beep and the armed recording in one write: both reach the media
    # thread at once, then the caller talks from the first millisecond
    host.send("play ap 7 tone:1000:600\nrec ap ap after_play=1")
    host.wait("ok", cmd="rec")
    sent = rtp_send(port, "--from", f"127.0.0.1:{sport}", "--payload", f, "--rate", "1")
    assert sent["sent"] == 100
    time.sleep(0.3)
    stopped = host.stop_rec("ap")
    host.free("ap")
    raw = host.raw("ap")
    pcm = decode(g)
    # a whole suffix of what was sent, from the frame after the beep
    assert raw and len(raw) % 320 == 0 and stopped["error"] == 0
    skipped = (len(pcm) - len(raw)) // 320
    assert raw == pcm[skipped * 320:], "the recording is not one unbroken end of what was sent"
    # the beep lasted 600 ms = 30 frames; the sender started with it
    assert 20 <= skipped <= 40, f"{skipped} frames of 20 ms were not recorded"
    assert stopped["audio_ms"] == len(raw) // 16


def audioop_roundtrip(pcm):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    return audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)


def test_inactivity_timeout(tmp_path):
    h = MediaHost(tmp_path / "spool", "--threads", "1", "--rtp-timeout", "1000")
    try:
        from conftest import free_port
        import socket
        sport = free_port(kind=socket.SOCK_DGRAM)
        port = h.new("t", remote=f"127.0.0.1:{sport}")
        # Life: RTCP alone keeps it alive.
        rtp_send(port, "--from", f"127.0.0.1:{sport}", "--tone", "440:600", "--rate", "1")
        t0 = time.time()
        h.wait("timeout", "t", timeout=10)
        assert time.time() - t0 >= 0.9
        assert len(h.events("timeout", "t")) == 1
        h.free("t")
    finally:
        h.quit()


def test_kill9_keeps_audio_up_to_half_a_second_before(tmp_path):
    """R11: kill -9 of the process mid-recording. The .raw holds every sample
    received up to at most 0.5 s before the kill, bit-exact (with the
    default spool_flush of 250 ms). The sender logs the moment each packet
    leaves (CLOCK_MONOTONIC, the clock of time.monotonic()); the packets that
    left more than 0.5 s before the kill must all be on disk."""
    import json
    from media_util import TESTRTP
    h = MediaHost(tmp_path / "spool", "--threads", "1")
    g = g711(6.0, seed=31)
    f = write_file(tmp_path / "in.g711", g)
    sport = src_port(h)
    port = h.new("k", remote=f"127.0.0.1:{sport}")
    h.rec("k", "k")
    # Real time; the kill comes once packet 150 (3.0 s of audio) left.
    s = subprocess.Popen([TESTRTP, "send", "--to", f"127.0.0.1:{port}", "--from",
                          f"127.0.0.1:{sport}", "--payload", f, "--rate", "1", "--mark-at",
                          "149", "--log-sent"], stdout=subprocess.PIPE, text=True)
    sent_us = {}
    for line in s.stdout:
        if '"mark"' in line:
            break
        ev = json.loads(line)
        sent_us[ev["i"]] = ev["us"]
    os.kill(h.p.pid, signal.SIGKILL)
    killed_us = time.monotonic() * 1e6
    h.p.wait()
    s.kill()
    s.wait()
    assert len(sent_us) == 150
    # Packets are sent in order (no impairment): the audio due on disk is
    # that of every packet that left at least 0.5 s before the kill.
    due = [i for i, us in sent_us.items() if us <= killed_us - 500000]
    due_bytes = (max(due) + 1) * 320
    raw = h.raw("k")
    want = decode(g)
    assert raw == want[:len(raw)], "what is on disk is not exactly what was sent"
    assert len(raw) >= due_bytes, (f"{len(raw) / 16000:.3f} s on disk, but "
                                   f"{due_bytes / 16000:.3f} s arrived 0.5 s before the kill")
    assert os.path.exists(os.path.join(h.spool, "k.json"))


def test_write_fault_stops_only_that_recording(tmp_path):
    """A recording whose writes fail (the write-fault hook: ENOSPC after 40 KB
    to files named *full*) stops with its audio up to then intact; the other
    recording and the other calls go on."""
    h = MediaHost(tmp_path / "spool", "--threads", "2", "--fail-after", "40000",
                  "--fail-file", "full")
    try:
        g = g711(3.0, seed=41)
        f = write_file(tmp_path / "in.g711", g)
        sa, sb = src_port(h), None
        pa = h.new("a", remote=f"127.0.0.1:{sa}")
        sb = sa + 2
        pb = h.new("b", remote=f"127.0.0.1:{sb}")
        h.rec("a", "full-a")
        h.rec("b", "ok-b")
        procs = [subprocess.Popen([__import__("media_util").TESTRTP, "send", "--to",
                                   f"127.0.0.1:{p}", "--from", f"127.0.0.1:{s}", "--payload", f,
                                   "--rate", "2"], stdout=subprocess.DEVNULL)
                 for p, s in ((pa, sa), (pb, sb))]
        stopped = h.wait("record_stopped", "a", timeout=20)
        assert stopped["error"] == 28  # ENOSPC
        for p in procs:
            p.wait(30)
        time.sleep(0.3)
        # b is still recording and the call of a still hears DTMF.
        h.send("dtmf a 4")
        h.wait("dtmf", "a", digit="4")
        sb_ = h.stop_rec("b")
        assert sb_["error"] == 0
        assert h.raw("ok-b") == decode(g)
        raw = h.raw("full-a")
        assert len(raw) == 40000 and raw == decode(g)[:40000]
        assert stopped["bytes"] == 40000
        assert any("event=1141" in l for l in h.stderr)
        h.free("a")
        h.free("b")
    finally:
        h.quit()


def _can_mount_tmpfs(tmp_path):
    d = tmp_path / "mnt-probe"
    d.mkdir()
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        f"mount -t tmpfs -o size=64k tmpfs {d}"], capture_output=True)
    return r.returncode == 0


def test_full_tmpfs_stops_recordings_not_the_engine(tmp_path):
    """A real full disk: the spool on a 192 KiB tmpfs (a mount namespace of
    its own). Both recordings stop with ENOSPC, their audio up to then intact;
    the engine and a third call go on."""
    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("cannot mount a tmpfs here (the write-fault hook test covers it)")
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               f'mount -t tmpfs -o size=192k,mode=0700 tmpfs "{spool}" && exec "$0" "$@"']
    h = MediaHost(spool, "--threads", "2", wrapper=wrapper)
    try:
        g = g711(8.0, seed=43)
        f = write_file(tmp_path / "in.g711", g)
        sa = src_port(h)
        sb, sc = sa + 2, sa + 4
        pa = h.new("a", remote=f"127.0.0.1:{sa}")
        pb = h.new("b", remote=f"127.0.0.1:{sb}")
        pc = h.new("c", remote=f"127.0.0.1:{sc}")
        h.rec("a", "a")
        h.rec("b", "b")
        procs = [subprocess.Popen([__import__("media_util").TESTRTP, "send", "--to",
                                   f"127.0.0.1:{p}", "--from", f"127.0.0.1:{s}", "--payload", f,
                                   "--rate", "4"], stdout=subprocess.DEVNULL)
                 for p, s in ((pa, sa), (pb, sb))]
        ea = h.logged("record_stopped", "a", timeout=30)
        eb = h.logged("record_stopped", "b", timeout=30)
        for p in procs:
            p.wait(30)
        assert ea["error"] == 28 and eb["error"] == 28
        # The files are in the namespace's tmpfs: read them through the
        # process's root.
        root = f"/proc/{h.p.pid}/root"
        for n, ev in (("a", ea), ("b", eb)):
            with open(f"{root}{spool}/{n}.raw", "rb") as fh:
                raw = fh.read()
            assert len(raw) == ev["bytes"] and len(raw) > 16000
            assert raw == decode(g)[:len(raw)]
        # The third call still works, and so does the call of a whose
        # recording stopped.
        rtp_send(pc, "--from", f"127.0.0.1:{sc}", "--tone", "440:400", "--dtmf", "8@100:80",
                 "--rate", "0")
        h.wait("dtmf", "c", digit="8")
        rtp_send(pa, "--from", f"127.0.0.1:{sa}", "--tone", "440:400", "--dtmf", "2@100:80",
                 "--rate", "0")
        h.wait("dtmf", "a", digit="2")
        # Room again (b's file removed): a new recording is written whole.
        os.unlink(f"{root}{spool}/b.raw")
        g2 = g711(1.0, seed=44)
        f2 = write_file(tmp_path / "in2.g711", g2)
        h.rec("c", "c2")
        rtp_send(pc, "--from", f"127.0.0.1:{sc}", "--payload", f2, "--rate", "0", "--seq",
                 "3000", "--ts", "900000")
        time.sleep(0.3)
        st = h.stop_rec("c")
        assert st["error"] == 0, st
        with open(f"{root}{spool}/c2.raw", "rb") as fh:
            assert fh.read() == decode(g2)
        for n in "abc":
            h.free(n)
    finally:
        h.quit()


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_independent_libsrtp2_sender_recorded_bit_exact(host, tmp_path, suite):
    """om-srtp2-send builds RTP itself and protects it with libsrtp2's own
    srtp_protect_mki (nothing of openum linked): every suite, with and
    without an MKI, recorded bit-exact by openum (default backend)."""
    from media_util import SRTP2SEND
    g = g711(1.0, seed=19)
    f = write_file(tmp_path / "in.g711", g)
    for mki in ("", "7f", "00010203"):
        k = key_b64(suite, 9)
        sport = src_port(host)
        sess = dict(remote=f"127.0.0.1:{sport}", suite=suite, rxkey=k, txkey=k)
        args = [SRTP2SEND, "--from", f"127.0.0.1:{sport}", "--suite", suite, "--key", k,
                "--payload", f, "--seq", "65520"]
        if mki:
            sess.update(rxmki=mki, txmki=mki)
            args += ["--mki", mki]
        name = f"l{len(mki)}"
        port = host.new(name, **sess)
        host.rec(name, name)
        p = subprocess.run(args + ["--to", f"127.0.0.1:{port}"], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        time.sleep(0.3)
        host.stop_rec(name)
        closed = host.free(name)
        assert host.raw(name) == decode(g), f"{suite} mki={mki!r}"
        assert closed["srtp_auth"] == 0 and closed["rtp_in"] == 50


def test_sipp_rtp_stream_recorded_with_its_dominant_frequency(host, tmp_path):
    """A third-party sender: sipp calls (a minimal UAS in this test answers
    with the engine's port) and plays a µ-law WAV with rtp_stream; the
    recording has the tone's frequency and length."""
    import re
    import socket
    import threading
    from conftest import free_port
    wav = str(tmp_path / "tone.wav")
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", wav, "synth", "3",
                    "sine", "697", "vol", "0.5"], check=True)
    uas = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    uas.bind(("127.0.0.1", 0))
    uas_port = uas.getsockname()[1]
    state = {}

    def serve():
        uas.settimeout(30)
        while True:
            try:
                data, peer = uas.recvfrom(65536)
            except OSError:
                return
            msg = data.decode(errors="replace")
            head, _, body = msg.partition("\r\n\r\n")
            lines = head.split("\r\n")
            method = lines[0].split(" ")[0]
            keep = [l for l in lines[1:] if l.split(":")[0].lower() in
                    ("via", "from", "to", "call-id", "cseq")]
            if method == "INVITE":
                rport = int(re.search(r"m=audio (\d+)", body).group(1))
                host.send(f"new sipp local=127.0.0.1 remote=127.0.0.1:{rport} te=-1")
                port = host.wait("port", "sipp")["port"]
                host.rec("sipp", "sipp")
                state["port"] = port
                sdp = (f"v=0\r\no=um 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                       f"t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
                hdrs = [h + (";tag=um1" if h.lower().startswith("to:") else "") for h in keep]
                resp = ("SIP/2.0 200 OK\r\n" + "\r\n".join(hdrs) +
                        f"\r\nContact: <sip:vm@127.0.0.1:{uas_port}>\r\n"
                        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
                        + sdp)
                uas.sendto(resp.encode(), peer)
            elif method == "BYE":
                resp = "SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
                uas.sendto(resp.encode(), peer)
                state["bye"] = True
                return

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    scen = os.path.join(os.path.dirname(__file__), "sipp", "uac_rtp_stream.xml")
    mp = src_port(host)
    p = subprocess.run(["sipp", f"127.0.0.1:{uas_port}", "-sf", scen, "-m", "1", "-t", "u1",
                        "-i", "127.0.0.1", "-p", str(free_port(kind=socket.SOCK_DGRAM)),
                        "-mp", str(mp), "-nostdin", "-timeout", "30"],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    t.join(10)
    uas.close()
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    time.sleep(0.3)
    host.stop_rec("sipp")
    closed = host.free("sipp")
    raw = host.raw("sipp")
    assert closed["strangers"] == 0, closed
    assert abs(len(raw) / 16000 - 3.0) < 0.05, len(raw)
    assert abs(dominant_hz(raw) - 697) < 5


def test_silence_detection_limit_and_voiced_ms(host, tmp_path):
    """The audio analysis the call flows need: voiced ms against a dBov
    threshold, RECORD_SILENCE after silence_timeout (a pause counts even
    when the gateway sends nothing), and a maximum length that stops the
    recording at exactly that many samples."""
    sport = src_port(host)
    # 1 s of a tone at about -11 dBov, then 1 s of digital silence.
    tone = g711(1.0, freq=700)
    quiet = bytes([0xFF]) * 8000  # µ-law silence
    f = write_file(tmp_path / "tq.g711", tone + quiet)
    port = host.new("v", remote=f"127.0.0.1:{sport}")
    host.rec("v", "v", silence=-40, silence_ms=600)
    rtp_send(port, "--from", f"127.0.0.1:{sport}", "--payload", f, "--rate", "1")
    sil = host.wait("record_silence", "v", timeout=10)
    assert 900 <= sil["voiced_ms"] <= 1100, sil
    st = host.stop_rec("v")
    assert 900 <= st["voiced_ms"] <= 1100 and st["audio_ms"] == 2000, st
    host.free("v")
    # max_ms: 700 ms of a 2 s stream, cut exactly.
    g = g711(2.0, seed=8)
    f2 = write_file(tmp_path / "in.g711", g)
    port = host.new("lim", remote=f"127.0.0.1:{sport}")
    host.rec("lim", "lim", max_ms=700)
    rtp_send(port, "--from", f"127.0.0.1:{sport}", "--payload", f2, "--rate", "0")
    lim = host.wait("record_limit", "lim")
    st = host.wait("record_stopped", "lim")
    assert lim["audio_ms"] == 700 and st["bytes"] == 700 * 16 and st["error"] == 0
    assert host.raw("lim") == decode(g)[:700 * 16]
    host.free("lim")


def test_rtcp_mux_and_rtcp_reports(host, tmp_path):
    """rtcp-mux (RFC 5761): RTCP on the RTP port is told apart and counted,
    the engine sends its reports there too; without mux, RTCP from the
    next port is accepted."""
    g = g711(1.0, seed=6)
    f = write_file(tmp_path / "in.g711", g)
    rport = src_port(host)
    rx = Receiver(rport, "--mux", "--timeout", "7000", "--max-ms", "12000",
                  out=tmp_path / "heard.raw")
    port = host.new("mx", remote=f"127.0.0.1:{rport}", mux=1)
    host.rec("mx", "mx")
    sport = src_port(host)
    # The receiver's port doubles as the mux peer: send from another socket
    # to prove RTCP from the RTP port (mux) is taken only from the SDP's port.
    host.send(f"modify mx remote=127.0.0.1:{sport} mux=1")
    rtp_send(port, "--from", f"127.0.0.1:{sport}", "--payload", f, "--rate", "0",
             "--rtcp-every", "10", "--rtcp-to", "mux")
    time.sleep(0.3)
    host.stop_rec("mx")
    closed = host.free("mx")
    assert host.raw("mx") == decode(g)
    assert closed["rtcp_in"] == 5 and closed["strangers"] == 0 and closed["malformed"] == 0
    rx.p.kill()
    # Without mux: RTCP from the next port.
    port = host.new("nm", remote=f"127.0.0.1:{sport}")
    rtp_send(port, "--from", f"127.0.0.1:{sport}", "--payload", f, "--rate", "0",
             "--rtcp-every", "10")
    time.sleep(0.3)
    closed = host.free("nm")
    assert closed["rtcp_in"] == 5 and closed["strangers"] == 0


def test_engine_sends_rtcp_reports(tmp_path):
    """SR while playing, SDES CNAME, BYE at the end — over SRTCP on an SRTP
    call, read back by the test receiver."""
    h = MediaHost(tmp_path / "spool", "--threads", "1")
    try:
        suite = "AEAD_AES_256_GCM"
        k = key_b64(suite, 3)
        rport = src_port(h)
        rx = Receiver(rport, "--suite", suite, "--key", k, "--timeout", "3000",
                      out=tmp_path / "heard.raw")
        h.new("r", remote=f"127.0.0.1:{rport}", suite=suite, rxkey=k, txkey=k)
        h.send("play r 1 tone:440:6500")
        h.wait("play_done", "r", timeout=20)
        closed = h.free("r")
        res = rx.result()
        assert res["srtp_fail"] == 0 and res["rtcp"] >= 2, res
        assert closed["rtcp_out"] >= 2
        assert abs(dominant_hz(rx.pcm()) - 440) < 5
    finally:
        h.quit()


def test_ipv6_session(tmp_path):
    h = MediaHost(tmp_path / "spool", "--threads", "1")
    try:
        g = g711(1.0, seed=12)
        f = write_file(tmp_path / "in.g711", g)
        sport = src_port(h)
        h.send(f"new v6 local=::1 remote=[::1]:{sport}")
        port = h.wait("port", "v6")["port"]
        h.rec("v6", "v6")
        rtp_send(port, "--from", f"[::1]:{sport}", "--payload", f, "--rate", "0", host="::1")
        time.sleep(0.3)
        h.stop_rec("v6")
        closed = h.free("v6")
        assert h.raw("v6") == decode(g) and closed["rtp_in"] == 50
    finally:
        h.quit()


def test_reinvite_hold_new_address_and_keys(host, tmp_path):
    """modify (re-INVITE): the same keys keep the SRTP context (the stream
    goes on across a ROC rollover that happened before the re-INVITE), new
    keys replace it and a new address is followed (the old one is refused);
    hold (inactive) sends nothing while a playlist runs out on time."""
    from media_util import TESTRTP
    suite = "AES_CM_128_HMAC_SHA1_80"
    k1, k2 = key_b64(suite, 1), key_b64(suite, 2)
    g = g711(2.0, seed=14)
    f = write_file(tmp_path / "in.g711", g)
    g3 = g711(1.0, seed=15)
    f3 = write_file(tmp_path / "in3.g711", g3)
    s1 = src_port(host)
    port = host.new("m", remote=f"127.0.0.1:{s1}", suite=suite, rxkey=k1, txkey=k1)
    host.rec("m", "m")
    # 100 packets from seq 65510 (the ROC becomes 1 at packet 26); the
    # sender holds after packet 49 while the re-INVITE with the same keys
    # is applied, then goes on with its own ROC.
    snd = subprocess.Popen([TESTRTP, "send", "--to", f"127.0.0.1:{port}", "--from",
                            f"127.0.0.1:{s1}", "--payload", f, "--rate", "0", "--suite", suite,
                            "--key", k1, "--seq", "65510", "--mark-at", "49", "--pause-at",
                            "49:1000"], stdout=subprocess.PIPE, text=True)
    for line in snd.stdout:
        if '"mark"' in line:
            break
    host.send(f"modify m remote=127.0.0.1:{s1} suite={suite} rxkey={k1} txkey={k1}")
    host.wait("ok", cmd="modify")
    snd.wait(30)
    # New keys and a new address.
    s2 = s1 + 20
    host.send(f"modify m remote=127.0.0.1:{s2} suite={suite} rxkey={k2} txkey={k2}")
    host.wait("ok", cmd="modify")
    rtp_send(port, "--from", f"127.0.0.1:{s1}", "--payload", f3, "--rate", "0", "--suite", suite,
             "--key", k1, "--seq", "74", "--ts", "176000")  # the old key: refused
    rtp_send(port, "--from", f"127.0.0.1:{s2}", "--payload", f3, "--rate", "0", "--suite", suite,
             "--key", k2, "--seq", "74", "--ts", "176000")
    time.sleep(0.3)
    host.stop_rec("m")
    closed = host.sstats("m")
    raw = host.raw("m")
    want = decode(g) + decode(g3)
    assert raw == want
    assert closed["srtp_auth"] == 50 and closed["rtp_in"] == 150 and closed["lost"] == 0
    # Hold: inactive — a playlist runs out on time without a packet.
    rport = src_port(host)
    rx = Receiver(rport, "--timeout", "1500", "--wait", "3000")
    host.send(f"modify m remote=127.0.0.1:{rport} dir=inactive suite={suite} rxkey={k2} "
              f"txkey={k2}")
    host.wait("ok", cmd="modify")
    host.send("play m 5 tone:500:600")
    host.wait("play_done", "m", token=5)
    res = rx.result()
    assert res["packets"] == 0
    host.free("m")


def test_slow_disk_bounds_memory_and_stops_only_what_overflows(tmp_path):
    """A disk slower than the calls fill it: audio waiting for it is bounded
    (here 100 KB); a recording that would go past stops with ENOBUFS and
    event 1141, its audio up to then written and intact; the engine and
    other calls go on."""
    h = MediaHost(tmp_path / "spool", "--threads", "1", "--slow-write-ms", "400",
                  "--queue-max", "100000")
    try:
        g = g711(6.0, seed=51)
        f = write_file(tmp_path / "in.g711", g)
        sa = src_port(h)
        ports = [h.new(n, remote=f"127.0.0.1:{sa + 2 * i}") for i, n in enumerate("ab")]
        pc = h.new("c", remote=f"127.0.0.1:{sa + 4}")
        for n in "ab":
            h.rec(n, n)
        procs = [subprocess.Popen([__import__("media_util").TESTRTP, "send", "--to",
                                   f"127.0.0.1:{p}", "--from", f"127.0.0.1:{sa + 2 * i}",
                                   "--payload", f, "--rate", "4"], stdout=subprocess.DEVNULL)
                 for i, p in enumerate(ports)]
        for p in procs:
            p.wait(60)
        for n in "ab":
            h.send(f"recstop {n}")  # a no-op for one that stopped already
        stops = [h.logged("record_stopped", n, timeout=60) for n in "ab"]
        assert any(s["error"] == 105 for s in stops), stops  # ENOBUFS
        for n, s in zip("ab", stops):
            raw = h.raw(n)
            assert len(raw) == s["bytes"] and raw == decode(g)[:len(raw)]
        assert any("event=1141" in l and "No buffer space" in l for l in h.stderr)
        rtp_send(pc, "--from", f"127.0.0.1:{sa + 4}", "--tone", "440:400", "--dtmf", "3@100:80",
                 "--rate", "0")
        h.wait("dtmf", "c", digit="3")
        for n in "abc":
            h.free(n)
    finally:
        h.quit()


def test_a_burst_on_more_sockets_than_one_turn_reads_is_read_to_the_end(tmp_path):
    """The receive path reads each ready socket a batch at a time (edge-
    triggered epoll, recvmmsg) and comes back to sockets that may hold more.
    Here more sockets hold more than a batch than one turn of the loop takes
    (the engine is stopped while 20 packets queue on each of 300 sessions of
    one media thread, then resumed, and nothing more is sent): every packet
    of every session must still be read — none left waiting in a socket for
    a packet that never comes."""
    import socket
    import struct
    from media_util import _port_range
    nsess, per = 300, 20
    h = MediaHost(tmp_path / "spool", "--threads", "1", ports=_port_range(2 * nsess + 100))
    try:
        sport = src_port(h)
        ports = [h.new(f"b{i}", remote=f"127.0.0.1:{sport}") for i in range(nsess)]
        payload = g711(per * 0.02, seed=61)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.bind(("127.0.0.1", sport))
        os.kill(h.p.pid, signal.SIGSTOP)
        try:
            for i, port in enumerate(ports):
                for k in range(per):
                    hdr = struct.pack("!BBHII", 0x80, 0, 1000 + k, 160 * k, 0x5000 + i)
                    tx.sendto(hdr + payload[k * 160:(k + 1) * 160], ("127.0.0.1", port))
        finally:
            os.kill(h.p.pid, signal.SIGCONT)
        tx.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            h.send("stats")
            st = h.wait("stats")
            if st["rtp_in"] >= nsess * per:
                break
            time.sleep(0.2)
        short = []
        for i in range(nsess):
            c = h.free(f"b{i}")
            if c["rtp_in"] != per or c["strangers"] or c["malformed"]:
                short.append((i, c["rtp_in"]))
        assert not short, f"sessions that did not get all {per} packets: {short[:10]} …"
    finally:
        h.quit()


def test_comfort_noise_and_srtcp_are_life_and_dtx_is_silence(tmp_path):
    """RFC 3389 comfort noise (DTX: one CN packet every 100 ms for 1.5 s) and,
    on an SRTP call, SRTCP alone (no RTP for 1.5 s) keep a call alive past
    an rtp_timeout of 1 s; the pause is silence in the recording, the audio
    after it lands at its place; the timeout comes once the peer is silent
    for good."""
    import json
    from media_util import TESTRTP
    h = MediaHost(tmp_path / "spool", "--threads", "1", "--rtp-timeout", "1000")
    try:
        g = g711(3.0, seed=71)
        f = write_file(tmp_path / "in.g711", g)
        want = bytearray(decode(g))
        want[25 * 320:100 * 320] = bytes(75 * 320)  # frames 25..99: the pause
        suite = "AES_CM_128_HMAC_SHA1_80"
        k = key_b64(suite, 12)
        # (name, session, sender arguments, packet index well after the pause)
        cases = [("cn", {}, ["--cn", "25:75"], 50),
                 ("srtcp", dict(suite=suite, rxkey=k, txkey=k),
                  ["--mute", "25:75", "--rtcp-every", "5", "--suite", suite, "--key", k], 60)]
        for name, sess, extra, after in cases:
            sport = src_port(h)
            port = h.new(name, remote=f"127.0.0.1:{sport}", **sess)
            h.rec(name, name)
            s = subprocess.Popen([TESTRTP, "send", "--to", f"127.0.0.1:{port}", "--from",
                                  f"127.0.0.1:{sport}", "--payload", f, "--rate", "1",
                                  "--log-sent", *extra], stdout=subprocess.PIPE, text=True)
            for line in s.stdout:
                if json.loads(line).get("i") == after:
                    break
            # The stream is live again after the pause: no timeout so far.
            assert not h.events("timeout", name), f"{name}: the pause was taken for a hang-up"
            s.stdout.read()
            assert s.wait(30) == 0
            h.wait("timeout", name, timeout=10)
            st = h.stop_rec(name)
            closed = h.free(name)
            assert h.raw(name) == bytes(want), f"{name}: the pause is not silence in place"
            assert st["audio_ms"] == 3000
            assert len(h.events("timeout", name)) == 1
            if name == "cn":
                assert closed["rtp_in"] == 75 + 15 and closed["malformed"] == 0, closed
            else:
                assert closed["rtcp_in"] == 30 and closed["srtp_auth"] == 0, closed
    finally:
        h.quit()


def test_digits_once_whichever_way_comes_first_and_repeats_kept(host, tmp_path):
    """One digit stream per call: a key press sent by INFO first and then by
    RFC 4733 is reported once (by INFO); the same key pressed twice is two
    digits (two RFC 4733 events with their own timestamps, each with three
    end packets; two INFO requests); a duplicate of an end packet is
    dropped and counted."""
    sport = src_port(host)
    port = host.new("o", remote=f"127.0.0.1:{sport}")
    host.send("dtmf o 3 100")
    host.wait("dtmf", "o", digit="3")
    # Packet 15 is the first end packet of the "3" (frames 5..10).
    rtp_send(port, "--from", f"127.0.0.1:{sport}", "--tone", "440:1200", "--dtmf",
             "3@100:100,6@400:100,6@700:100", "--dup", "15", "--rate", "0")
    for _ in range(2):
        host.wait("dtmf", "o", digit="6")
    host.send("dtmf o 1 100")
    host.send("dtmf o 1 100")
    for _ in range(2):
        host.wait("dtmf", "o", digit="1")
    closed = host.free("o")
    got = [(e["digit"], e["source"]) for e in host.events("dtmf", "o")]
    assert got == [("3", "info"), ("6", "rfc4733"), ("6", "rfc4733"), ("1", "info"),
                   ("1", "info")], got
    assert closed["duplicates"] == 1, closed


def test_port_move_never_the_ip_and_once_over_srtp(host, tmp_path):
    """R10: the NAT exception moves the port, never the IP: an SRTP packet
    that authenticates (the right key) from another IP, and plain RTP from
    another IP with rtp_symmetric on, are strangers — dropped, counted, no
    trace. Over SRTP too the port moves only once: after the move to an
    authenticated port, a further port with the right key is refused."""
    suite = "AES_CM_128_HMAC_SHA1_80"
    g = g711(1.0, seed=81)
    f = write_file(tmp_path / "in.g711", g)
    noise = write_file(tmp_path / "noise.g711", g711(1.0, seed=82))
    k = key_b64(suite, 13)
    sport = src_port(host)
    port = host.new("ip", remote=f"127.0.0.1:{sport}", suite=suite, rxkey=k, txkey=k)
    host.rec("ip", "ip")
    rtp_send(port, "--from", f"127.0.0.2:{sport}", "--payload", noise, "--rate", "0",
             "--suite", suite, "--key", k, "--ssrc", "1111")
    rtp_send(port, "--from", f"127.0.0.1:{sport + 20}", "--payload", f, "--rate", "0",
             "--suite", suite, "--key", k, "--seq", "5000")
    rtp_send(port, "--from", f"127.0.0.1:{sport + 40}", "--payload", noise, "--rate", "0",
             "--suite", suite, "--key", k, "--seq", "6000", "--ts", "300000")
    time.sleep(0.3)
    host.stop_rec("ip")
    closed = host.free("ip")
    assert host.raw("ip") == decode(g)
    assert closed["strangers"] == 100 and closed["rtp_in"] == 50 and closed["srtp_auth"] == 0
    # Plain RTP with rtp_symmetric: another IP is never a NAT move.
    port = host.new("ips", remote=f"127.0.0.1:{sport}", sym=1)
    host.rec("ips", "ips")
    rtp_send(port, "--from", f"127.0.0.2:{sport + 10}", "--payload", noise, "--rate", "0")
    rtp_send(port, "--from", f"127.0.0.1:{sport}", "--payload", f, "--rate", "0",
             "--seq", "3000")
    time.sleep(0.3)
    host.stop_rec("ips")
    closed = host.free("ips")
    assert host.raw("ips") == decode(g)
    assert closed["strangers"] == 50 and closed["rtp_in"] == 50
