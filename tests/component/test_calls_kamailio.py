"""Kamailio as the IP PBX in front of openum (R4, R10): phones (sipp) call
it over TCP or UDP, it Record-Routes (two entries: it changes transport)
and relays to openum over mutual TLS. The ACK and the phone's BYE reach
openum through Kamailio's route set; openum's own BYE (rtp_timeout) goes
back over Kamailio's connection with both Route entries, and Kamailio
delivers it to the phone."""
import contextlib
import glob
import os
import shutil
import socket
import subprocess

import pytest

from calls_util import FQDN, calls, make_store
from conftest import free_port
from pki import PKI
from sip_util import wait_for
from test_calls_sipp import finish_sipp, tone_wav

HERE = os.path.dirname(os.path.abspath(__file__))
PHONE_IP = "127.0.0.41"
KAM_MODULES = (glob.glob("/usr/lib/*/kamailio/modules") + ["/usr/lib/kamailio/modules"])[0]

pytestmark = pytest.mark.skipif(
    not shutil.which("kamailio") or not shutil.which("sipp")
    or not os.path.exists(os.path.join(KAM_MODULES, "tls.so")),
    reason="kamailio (with tls) or sipp missing")


def kamailio_cfg(d, pki, ports, openum_tls):
    (d / "tls.cfg").write_text(
        "[server:default]\nmethod = TLSv1.2+\n"
        f"certificate = {pki.pbx.cert_path}\nprivate_key = {pki.pbx.key_path}\n"
        f"verify_certificate = yes\nrequire_certificate = yes\nca_list = {pki.root.cert_path}\n"
        "[client:default]\nmethod = TLSv1.2+\nverify_certificate = yes\n"
        "require_certificate = yes\n"
        f"certificate = {pki.pbx.cert_path}\nprivate_key = {pki.pbx.key_path}\n"
        f"ca_list = {pki.root.cert_path}\nserver_name = {FQDN}\n")
    to_openum = f"sip:127.0.0.1:{openum_tls};transport=tls"
    (d / "kamailio.cfg").write_text(f"""#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
enable_tls=yes
listen=udp:127.0.0.1:{ports['udp']}
listen=tcp:127.0.0.1:{ports['tcp']}
listen=tls:127.0.0.1:{ports['tls']}
mpath="{KAM_MODULES}/"
loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "siputils.so"
loadmodule "maxfwd.so"
modparam("tls", "config", "{d / 'tls.cfg'}")
modparam("rr", "enable_double_rr", 1)
modparam("tm", "fr_timer", 4000)

request_route {{
	if (!mf_process_maxfwd_header("10")) {{
		sl_send_reply("483", "Too Many Hops");
		exit;
	}}
	if ($pr == "tcp") {{
		force_tcp_alias();
	}}
	if (has_totag()) {{
		if (loose_route()) {{
			# what is left is openum's Contact: openum's address
			if ($rd == "{FQDN}") {{
				$du = "{to_openum}";
			}}
			t_relay();
			exit;
		}}
		if ($rm == "ACK" && t_check_trans()) {{
			t_relay();
		}}
		exit;
	}}
	if ($rm == "CANCEL") {{
		if (t_check_trans()) {{
			t_relay();
		}}
		exit;
	}}
	# a new call for voicemail: Record-Route and relay over mutual TLS
	record_route();
	$du = "{to_openum}";
	if (!t_relay()) {{
		sl_reply_error();
	}}
	exit;
}}
""")


@contextlib.contextmanager
def kamailio_running(w, tmp):
    """Kamailio (kamailio_cfg with w.ports, w.pbx, w.root) in front of the
    running openum w.o, ready once it listens on its TLS port; on leaving,
    Kamailio is stopped, then openum, which must exit 0."""
    o = w.o
    d = tmp / "kamailio"
    d.mkdir()
    kamailio_cfg(d, w, w.ports, o.tls)
    w.klog = d / "kamailio.log"
    log = open(w.klog, "wb")
    w.k = subprocess.Popen(["kamailio", "-f", str(d / "kamailio.cfg"), "-DD", "-E"],
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: w.k.poll() is not None or subprocess.run(
            ["ss", "-ltn", f"sport = :{w.ports['tls']}"], capture_output=True,
            text=True).stdout.count("\n") > 1, timeout=20)
        assert w.k.poll() is None, w.klog.read_text()[-3000:]
        yield w
    finally:
        w.k.terminate()
        try:
            w.k.wait(20)
        except subprocess.TimeoutExpired:
            w.k.kill()
            w.k.wait()
        log.close()
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


@pytest.fixture
def world(tmp_path):
    w = type("World", (), {})()
    p = PKI(tmp_path / "pki")
    w.root = p.ca("root", "openum Test Root CA")
    w.server = p.leaf("server", w.root, cn=FQDN, dns=[FQDN])
    w.pbx = p.leaf("pbx", w.root, cn="pbx.test.example", dns=["pbx.test.example"])
    w.ports = {"udp": free_port(kind=socket.SOCK_DGRAM), "tcp": free_port(), "tls": free_port()}
    # a Secured plan makes the service secured (TLS listener); the phones
    # behind Kamailio are in the Unsecured one (RTP/AVP over mutual TLS)
    o = make_store(tmp_path, conf="rtp_timeout = 5\n", mailboxes=[("2001", "dp1")],
                   plans=(("dp1", "unsecured"), ("sec", "secured")))
    o.ok("cert", "import", w.server.both_path, "--no-reload")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("gateway", "new", "kamailio", "--address", "127.0.0.1", "--tls-name",
         "pbx.test.example", "--transport", "tls", "--port", str(w.ports["tls"]),
         "--dialplan", "dp1")
    o.ok("server", "set", "--dialplans", "dp1,sec")
    o.proc = o.serve()
    w.o = o
    with kamailio_running(w, tmp_path):
        yield w


def phone(w, tmp, transport, bye_after_ms):
    tone_wav(tmp)
    text = open(os.path.join(HERE, "sipp", "calls_proxy.xml")).read()
    for i, v in enumerate([f"X-Test: kamailio-{transport}", f"sip:2001@{FQDN}", bye_after_ms]):
        text = text.replace(f"[field{i}]", str(v))
    sf = os.path.join(str(tmp), f"proxy-{transport}-{bye_after_ms}.xml")
    with open(sf, "w") as f:
        f.write(text)
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    cmd = ["sipp", f"127.0.0.1:{w.ports[transport]}", "-sf", sf, "-m", "1",
           "-t", "t1" if transport == "tcp" else "u1", "-i", PHONE_IP,
           "-p", str(free_port(PHONE_IP, kind)),
           "-mp", str(free_port(PHONE_IP, socket.SOCK_DGRAM) & ~1),
           "-nostdin", "-timeout", "40", "-timeout_error", "-max_recv_loops", "1000",
           "-trace_err", "-error_file", sf + ".err"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         cwd=str(tmp))
    return finish_sipp(p, sf, 40)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
@pytest.mark.parametrize("who_hangs_up", ["phone", "openum"])
def test_call_through_kamailio_that_record_routes(world, tmp_path, transport, who_hangs_up):
    o = world.o
    # the phone hangs up after 2 s; else openum does, 5 s after the RTP ends
    rc, out = phone(world, tmp_path, transport, 2000 if who_hangs_up == "phone" else 20000)
    assert rc == 0, out + world.klog.read_text()[-3000:] + o.log()[-2000:]
    st = wait_for(lambda: o.json("status")["calls"]["active"] == 0 and o.json("status")["calls"])
    assert st, o.json("status")["calls"]
    assert st["rtp_in"] >= 40, st
    if who_hangs_up == "phone":
        assert st["ended_by_gateway"] == 1 and st["ended_by_us"] == 0, st
    else:
        assert st["ended_by_us"] == 1 and st["ended_by_gateway"] == 0, st
        assert wait_for(lambda: o.events("--id", "1142"))  # the media's rtp_timeout
    assert calls(o) == []
