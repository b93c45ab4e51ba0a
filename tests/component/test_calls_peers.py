"""Third-party gateways over mutual TLS with mandatory SRTP (R3, R5, R10):
baresip and linphone call a Secured plan, the call is answered with SRTP,
media flows both ways (each side decrypts what the other sends: baresip's
and linphone's own RTP statistics, openum's media counters), and the call
ends with a BYE from either side.

Our Contact names the server's FQDN (never an IP): baresip resolves it
through a DNS server of the test; linphone (no such setting) runs in a
mount namespace with its own /etc/hosts, and, because it takes its media
address from the machine's interfaces, in a network namespace with only
loopback, shared with the `openum serve` it calls."""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from calls_util import FQDN, calls, wait_calls
from conftest import BIN, free_port
from dns_server import DnsServer
from pki import PKI
from sip_util import wait_for
from test_calls_tls import GW, W, secured_store



@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    w = W()
    p = PKI(tmp_path_factory.mktemp("pki"))
    w.root = p.ca("root", "openum Test Root CA")
    w.server = p.leaf("server", w.root, cn=FQDN, dns=[FQDN])
    w.gw = {k: p.leaf("gw" + k, w.root, cn=v[1], dns=[v[1]]) for k, v in GW.items()}
    return w


def counters(o):
    return o.json("status")["calls"]


# ------------------------------------------------------------ baresip

def baresip(tmp, leaf, ca, dns, target):
    d = tmp / "baresip"
    d.mkdir(exist_ok=True)
    (d / "config").write_text(
        "module_path /usr/lib/baresip/modules\n"
        f"sip_listen 127.0.0.1:{free_port()}\n"
        f"sip_certificate {leaf.both_path}\n"
        f"sip_cafile {ca.cert_path}\n"
        "net_interface 127.0.0.1\n"
        f"dns_server 127.0.0.1:{dns.port}\n"
        # ausine (a 440 Hz source) runs at 48 kHz stereo; baresip resamples
        "ausrc_srate 48000\nausrc_channels 2\n"
        "audio_source ausine,440\naudio_player aubridge,nil\n"
        "module g711.so\nmodule srtp.so\nmodule ausine.so\nmodule aubridge.so\n"
        "module account.so\nmodule menu.so\n")
    (d / "accounts").write_text(
        "<sip:gw@127.0.0.1;transport=tls>;mediaenc=srtp-mand;regint=0;audio_codecs=PCMU\n")
    (d / "contacts").write_text("")
    return subprocess.Popen(["baresip", "-f", str(d), "-s", "-e", f"/dial {target}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=d)


def baresip_stop(p):
    p.send_signal(signal.SIGINT)
    try:
        out, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out


def received_rate(out):
    """baresip's status line "audio=TX/RX (bit/s)": the highest RX rate seen.
    The SRTP module drops what fails authentication before the audio stream
    counts it, so RX > 0 means openum's SRTP was decrypted."""
    return max([int(x) for x in re.findall(r"audio=\d+/(\d+) \(bit/s\)", out)] + [0])


@pytest.mark.skipif(not shutil.which("baresip"), reason="baresip missing")
@pytest.mark.parametrize("who_hangs_up", ["baresip", "openum"])
def test_baresip_mutual_tls_mandatory_srtp(tmp_path, pki, who_hangs_up):
    dns = DnsServer()
    dns.records = {FQDN: ("127.0.0.1", 60)}
    o = secured_store(tmp_path, pki)
    o.proc = o.serve()
    p = baresip(tmp_path, pki.gw["x"], pki.root, dns,
                f"sip:2001@127.0.0.1:{o.tls};transport=tls")
    try:
        c = wait_for(lambda: [c for c in calls(o) if c["state"] == "confirmed"], timeout=20)
        assert c, o.log()[-2000:]
        c = c[0]
        assert c["gateway"] == "gwx" and c["transport"] == "tls"
        assert c["security_mode"] == "secured" and c["media"] == "srtp"
        assert c["srtp_suite"] == "AES_CM_128_HMAC_SHA1_80"
        # baresip's SRTP reaches openum and decrypts; openum's 1 s tone goes back
        assert wait_for(lambda: counters(o)["rtp_in"] >= 100, timeout=10), counters(o)
        assert wait_for(lambda: counters(o)["rtp_out"] >= 50, timeout=10), counters(o)
        # baresip's status line (once a second) averages over a few seconds
        assert wait_for(lambda: counters(o)["rtp_in"] >= 220, timeout=10), counters(o)
        if who_hangs_up == "openum":
            before = counters(o)
            assert o.stop(o.proc) == 0, o.log()[-3000:]
        out = baresip_stop(p)
    finally:
        if p.poll() is None:
            p.kill()
        dns.running = False
    assert received_rate(out) > 8000, out[-2000:]
    if who_hangs_up == "openum":
        # its BYE reached baresip's SIP stack, which answered 200
        assert re.search(r"BYE sip:\S+ SIP/2.0", out), out[-3000:]
        assert re.search(r"SIP/2.0 200 OK\r?\n(?:[^\n]*\n)*?CSeq: \d+ BYE", out), out[-3000:]
        assert before["active"] == 1
    else:
        assert wait_for(lambda: counters(o)["ended_by_gateway"] == 1 and counters(o)), \
            counters(o)
        assert counters(o)["active"] == 0
        assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


# ------------------------------------------------------------ linphone

def serve_in_netns(o, tmp):
    """`openum serve` in a network namespace of its own (loopback only)."""
    log = open(os.path.join(os.path.dirname(o.data), "serve.log"), "ab")
    p = subprocess.Popen(["unshare", "-n", "sh", "-c",
                          f"ip link set lo up && exec {BIN} serve --data {o.data}"],
                         stdout=log, stderr=subprocess.STDOUT)
    o.procs.append(p)
    o.wait_ready(p)
    return p


def linphone(tmp, o, leaf, ca):
    home = tmp / "home"
    (home / ".local" / "share" / "linphone").mkdir(parents=True)
    rc = home / "linphonerc"
    rc.write_text(
        "[sip]\nsip_port=-1\nsip_tcp_port=-1\n"
        f"sip_tls_port={free_port()}\n"
        "use_ipv6=0\nipv6_migration_done=1\n"
        "verify_server_certs=1\nverify_server_cn=1\n"
        f"root_ca={ca.cert_path}\n"
        f"client_cert_chain={leaf.cert_path}\nclient_cert_key={leaf.key_path}\n"
        "media_encryption=srtp\nmedia_encryption_mandatory=1\n"
        f"[rtp]\naudio_rtp_port={free_port() & ~1}\n"
        "[sound]\nechocancellation=0\n")
    hosts = tmp / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {FQDN}\n")
    log = tmp / "linphone.log"
    cmd = f"mount --bind {hosts} /etc/hosts && exec linphonec -c {rc} -d 6 -l {log}"
    p = subprocess.Popen(["nsenter", "-t", str(o.proc.pid), "-n", "unshare", "-m", "sh", "-c",
                          cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         env=dict(os.environ, HOME=str(home)))
    return p, log


def say(p, line):
    p.stdin.write(line + "\n")
    p.stdin.flush()


def ortp_received(log):
    """linphone's RTP statistics at the end of the call: packets received
    (decrypted and delivered)."""
    text = open(log, errors="replace").read()
    m = re.findall(r"received\s+(\d+) packets", text)
    return int(m[0]) if m else 0, text


@pytest.mark.skipif(not shutil.which("linphonec"), reason="linphone-cli missing")
@pytest.mark.parametrize("who_hangs_up", ["linphone", "openum"])
def test_linphone_mutual_tls_mandatory_srtp(tmp_path, pki, who_hangs_up):
    o = secured_store(tmp_path, pki)
    o.proc = serve_in_netns(o, tmp_path)
    wav = str(tmp_path / "tone.wav")
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", wav, "synth", "10", "sine",
                    "440"], check=True)
    p, log = linphone(tmp_path, o, pki.gw["x"], pki.root)
    try:
        time.sleep(1)
        say(p, "soundcard use files")
        say(p, f"call sip:2001@{FQDN}:{o.tls};transport=tls")
        c = wait_for(lambda: [c for c in calls(o) if c["state"] == "confirmed"], timeout=20)
        assert c, o.log()[-2000:]
        c = c[0]
        assert c["transport"] == "tls" and c["media"] == "srtp" and c["gateway"] == "gwx"
        assert c["remote_media"].startswith("127.0.0.1:")
        say(p, f"play {wav}")
        assert wait_for(lambda: counters(o)["rtp_in"] >= 100, timeout=10), counters(o)
        assert wait_for(lambda: counters(o)["rtp_out"] >= 50, timeout=10), counters(o)
        # baresip's status line (once a second) averages over a few seconds
        assert wait_for(lambda: counters(o)["rtp_in"] >= 220, timeout=10), counters(o)
        if who_hangs_up == "openum":
            assert o.stop(o.proc) == 0, o.log()[-3000:]
            time.sleep(1)
        else:
            say(p, "terminate")
            assert wait_for(lambda: counters(o)["ended_by_gateway"] == 1, timeout=10)
        say(p, "quit")
        try:
            p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
    finally:
        if p.poll() is None:
            p.kill()
    got, text = ortp_received(log)
    assert got >= 40, text[-3000:]
    if who_hangs_up == "openum":
        assert re.search(r"BYE sip:\S+ SIP/2.0", text)
        assert "receiving call response" not in text.split("BYE sip:")[-1][:0]  # noqa: the BYE came to it
        assert re.search(r"\[server\] \[BYE\] transaction", text), text[-3000:]
    else:
        assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()
