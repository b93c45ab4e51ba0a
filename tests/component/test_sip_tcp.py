"""SIP over TCP (R1, R2, R4): the real `openum serve` answering a trusted
gateway, dropping everyone else, and holding every bound, with our own
client and with sipsak and sipp."""
import csv
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import SHARED, free_port
from sip_util import (closed_without_answer, connect, header, options, read_response, request,
                      wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def gw(store):
    """Server on a free port; gateway gw1 = 127.0.0.1 (Unsecured plan dp1);
    gw-sec = 127.0.0.3 on a SIPSecured plan; 127.0.0.2 is nobody."""
    port = free_port()
    store.port = port
    store.conf(f"fqdn = um.test.example\nsip_tcp = 127.0.0.1:{port}\nevents_interval = 1\n"
               "sip_message_timeout = 2\ntcp_idle_timeout = 30\nmax_connections_per_peer = 50\n")
    store.ok("dialplan", "new", "dp1", "--digits", "3")
    store.ok("dialplan", "new", "dpsec", "--digits", "3", "--security", "sipsecured")
    store.ok("gateway", "new", "gw1", "--address", "127.0.0.1", "--dialplan", "dp1")
    store.ok("gateway", "new", "gwsec", "--address", "127.0.0.3", "--tls-name",
             "gw.sec.example", "--port", "5061", "--transport", "tls", "--dialplan", "dpsec")
    store.proc = store.serve()
    return store


def status(o):
    return o.json("status")


def test_options_from_gateway_gets_200(gw):
    s = connect(gw.port)
    s.sendall(options(port=gw.port))
    st, head, _ = read_response(s)
    assert st == 200
    assert "OPTIONS" in header(head, "Allow")
    assert header(head, "Accept") == "application/sdp"
    assert header(head, "Supported") is not None
    assert ";tag=" in header(head, "To")
    assert header(head, "Call-ID") and header(head, "CSeq") == "1 OPTIONS"
    # the connection stays usable for the next request
    s.sendall(options(port=gw.port, cseq=2))
    assert read_response(s)[0] == 200
    s.close()


def test_untrusted_address_dropped_without_answer(gw):
    for _ in range(5):
        s = connect(gw.port, src="127.0.0.2")
        try:
            s.sendall(options(port=gw.port, src="127.0.0.2"))
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_without_answer(s)
        s.close()
    ev = wait_for(lambda: gw.events("--id", "1131"))
    assert ev[0]["source"] == "127.0.0.2" and ev[0]["fields"]["transport"] == "tcp"
    # rate-limited: one line, the rest counted in the summary
    def counted():
        ev = gw.events("--id", "1131")
        return ev if sum(e["suppressed"] for e in ev) + len(ev) >= 5 else None
    ev = wait_for(counted, timeout=10)
    assert ev and len(ev) <= 2
    assert status(gw)["sip"]["untrusted_dropped"] >= 5


def test_ipv4_mapped_or_other_loopback_is_not_the_gateway(gw):
    """The trust check compares binary addresses: 127.0.0.10 is not 127.0.0.1."""
    s = connect(gw.port, src="127.0.0.10")
    s.sendall(options(port=gw.port))
    assert closed_without_answer(s)


def test_sipsecured_gateway_over_tcp_gets_403(gw):
    s = connect(gw.port, src="127.0.0.3")
    s.sendall(options(port=gw.port, src="127.0.0.3"))
    st, head, _ = read_response(s)
    assert st == 403
    ev = wait_for(lambda: gw.events("--id", "1132"))
    assert ev[0]["fields"]["gateway"] == "gwsec" and ev[0]["fields"]["transport"] == "tcp"


def test_disabling_gateway_stops_answers_on_open_connection(gw):
    s = connect(gw.port)
    s.sendall(options(port=gw.port))
    assert read_response(s)[0] == 200
    p = gw.ok("gateway", "set", "gw1", "--status", "disabled")
    assert "reloaded" in p.stdout
    try:
        s.sendall(options(port=gw.port, cseq=2))
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_without_answer(s)
    s2 = connect(gw.port)
    try:
        s2.sendall(options(port=gw.port))
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_without_answer(s2)
    # enabled again: answered again, without a restart
    gw.ok("gateway", "set", "gw1", "--status", "enabled")
    s3 = connect(gw.port)
    s3.sendall(options(port=gw.port))
    assert read_response(s3)[0] == 200


def test_nonewcalls_lets_options_through_but_refuses_invite(gw):
    gw.ok("gateway", "set", "gw1", "--status", "nonewcalls")
    s = connect(gw.port)
    s.sendall(options(port=gw.port))
    assert read_response(s)[0] == 200
    s.sendall(request("INVITE", port=gw.port))
    # 100 Trying first (RFC 3261 §17.2.1), then the refusal
    data, deadline = b"", time.time() + 5
    while b"SIP/2.0 503 " not in data and time.time() < deadline:
        data += s.recv(65536)
    assert b"SIP/2.0 503 " in data and b"Retry-After:" in data


def test_unknown_require_gets_420_with_unsupported(gw):
    s = connect(gw.port)
    s.sendall(options(port=gw.port, extra=b"Require: foo, 100rel\r\n"))
    st, head, _ = read_response(s)
    assert st == 420
    uns = header(head, "Unsupported")
    assert "foo" in uns and "100rel" in uns


@pytest.mark.parametrize("method,code", [("REGISTER", 405), ("SUBSCRIBE", 405),
                                         ("FROBNICATE", 501)])
def test_methods_not_served_yet(gw, method, code):
    s = connect(gw.port)
    s.sendall(request(method, port=gw.port))
    st, head, _ = read_response(s)
    assert st == code
    assert "OPTIONS" in header(head, "Allow")


def test_ack_is_never_answered_and_cancel_gets_481(gw):
    s = connect(gw.port)
    s.sendall(request("ACK", port=gw.port))
    s.sendall(request("CANCEL", port=gw.port))
    assert read_response(s)[0] == 481


def test_crlf_keepalive_ping_gets_pong(gw):
    s = connect(gw.port)
    s.sendall(b"\r\n\r\n")
    s.settimeout(5)
    assert s.recv(10) == b"\r\n"
    s.sendall(options(port=gw.port))
    assert read_response(s)[0] == 200


def test_malformed_request_gets_400_connection_stays(gw):
    bad = options(port=gw.port).replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
    s = connect(gw.port)
    s.sendall(bad)
    assert read_response(s)[0] == 400
    s.sendall(options(port=gw.port))
    assert read_response(s)[0] == 200


def test_bad_version_gets_505(gw):
    s = connect(gw.port)
    s.sendall(options(port=gw.port).replace(b"SIP/2.0\r\nVia", b"SIP/7.0\r\nVia", 1))
    r = read_response(s)
    assert r is None or r[0] == 505


def test_negative_content_length_closes(gw):
    s = connect(gw.port)
    s.sendall(options(port=gw.port).replace(b"Content-Length: 0", b"Content-Length: -999"))
    assert closed_without_answer(s)


def test_conflicting_content_length_closes(gw):
    s = connect(gw.port)
    s.sendall(options(port=gw.port).replace(b"Content-Length: 0",
                                            b"Content-Length: 13\r\nContent-Length: 5"))
    assert closed_without_answer(s)


def test_oversized_message_closes(gw):
    s = connect(gw.port)
    big = options(port=gw.port, extra=b"X-Pad: " + b"a" * 70000 + b"\r\n")
    try:
        s.sendall(big)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = read_response(s)
    assert r is None or r[0] in (413, 513)
    assert status(gw)["state"] == "running"


def test_ten_thousand_headers(gw):
    s = connect(gw.port)
    extra = b"".join(b"X-H%d: v\r\n" % i for i in range(10000))
    try:
        s.sendall(options(port=gw.port, extra=extra))
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = read_response(s)
    assert r is None or r[0] == 513
    s2 = connect(gw.port)
    s2.sendall(options(port=gw.port))
    assert read_response(s2)[0] == 200


def test_content_length_larger_than_body_times_out(gw):
    s = connect(gw.port)
    s.sendall(options(port=gw.port).replace(b"Content-Length: 0", b"Content-Length: 9999"))
    t0 = time.time()
    assert closed_without_answer(s, timeout=15)
    assert time.time() - t0 < 14
    assert status(gw)["sip"]["closed_partial"] >= 1


def test_slow_drip_sender_is_cut_off(gw):
    s = connect(gw.port)
    msg = options(port=gw.port)
    cut = False
    for b in msg[:40]:
        try:
            s.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            cut = True
            break
        time.sleep(0.5)
        s.setblocking(False)
        try:
            if s.recv(10) == b"":
                cut = True
                break
        except BlockingIOError:
            pass
        except ConnectionResetError:
            cut = True
            break
        s.setblocking(True)
    assert cut, "a one-byte-every-half-second sender must be cut off"
    assert status(gw)["sip"]["closed_partial"] >= 1


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_thousand_connections_from_one_address(gw):
    before = _rss_kb(gw.proc.pid)
    socks = []
    for _ in range(1000):
        try:
            socks.append(connect(gw.port, timeout=2))
        except OSError:
            break
    time.sleep(0.5)
    st = status(gw)["sip"]
    assert st["tcp_connections"] <= 50, "per-peer cap"
    assert st["over_limit"] >= 900
    # the ones inside the cap still work
    answered = 0
    for s in socks:
        try:
            s.sendall(options(port=gw.port))
            r = read_response(s, timeout=1)
            answered += bool(r and r[0] == 200)
        except OSError:
            pass
        s.close()
    assert answered >= 40
    assert wait_for(lambda: status(gw)["sip"]["tcp_connections"] == 0)
    s = connect(gw.port)
    s.sendall(options(port=gw.port))
    assert read_response(s)[0] == 200
    after = _rss_kb(gw.proc.pid)
    # memory back near the baseline (sanitizer build: generous margin)
    assert after - before < 64 * 1024, (before, after)


def test_reader_that_never_reads_is_disconnected(gw):
    """Bounded write queue: pipelining requests without reading the answers
    ends with the connection closed, not with the server's memory growing."""
    s = connect(gw.port, rcvbuf=4096, timeout=30)
    msg = options(port=gw.port) * 50
    sent = 0
    try:
        for _ in range(2000):
            s.sendall(msg)
            sent += 50
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    assert wait_for(lambda: status(gw)["sip"]["closed_overflow"] >= 1, timeout=60)
    assert status(gw)["state"] == "running"


def _manifest(folder):
    with open(os.path.join(SHARED, "corpora", folder, "manifest.tsv")) as f:
        return list(csv.DictReader(f, delimiter="\t"))


# The RFC lets an element refuse these with 400 or tolerate them.
EITHER = {"ipv6-bug-abnf-3-colons", "port-ambiguous", "via-received-param-with-delim",
          "regescrt", "inv2543"}
EXACT = {"badvers": {505}, "unkscm": {416}, "novelsc": {416}, "bext01": {420},
         "zeromf": {200}, "lwsdisp": {200}, "esc02": {501}, "intmeth": {501},
         "mismatch01": {400}, "mismatch02": {400}, "insuf": {400}, "multi01": {400},
         "badinv01": {400}, "lwsstart": {400}, "ltgtruri": {400}, "escruri": {400}}
RESPONSES = {"unreason", "noreason", "scalarlg", "bigcode", "bcast"}
CLOSE = {"ncl", "mcl01", "clerr"}


@pytest.mark.parametrize("row", _manifest("rfc4475") + _manifest("rfc5118"),
                         ids=lambda r: r["name"])
def test_torture_messages_over_tcp(gw, row):
    name = row["name"]
    folder = "rfc4475" if os.path.exists(os.path.join(SHARED, "corpora", "rfc4475",
                                                       name + ".dat")) else "rfc5118"
    data = open(os.path.join(SHARED, "corpora", folder, name + ".dat"), "rb").read()
    s = connect(gw.port)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    if name in RESPONSES:
        # a stray response is never answered
        s.settimeout(1)
        try:
            assert s.recv(100) == b""
        except socket.timeout:
            pass
    elif name in CLOSE:
        assert closed_without_answer(s, timeout=10)
    else:
        r = read_response(s, timeout=5)
        if name in EXACT:
            assert r is not None and r[0] in EXACT[name], (name, r and r[1])
        elif name in EITHER:
            assert r is not None and r[0] != 500, (name, r)
        elif row["expected"] == "invalid-must-reject":
            assert r is None or r[0] in (400, 505, 513, 414, 413, 416), (name, r and r[1])
        else:
            assert r is not None and (r[0] < 500 or r[0] == 501), (name, r and r[1])
            assert r[0] != 400, (name, r[1])
    s.close()
    assert status(gw)["state"] == "running"


def test_sipsak_options(gw):
    p = subprocess.run(["sipsak", "--transport=tcp", "-s", f"sip:um@127.0.0.1:{gw.port}", "-v"],
                       capture_output=True, text=True, timeout=30)
    assert "200 OK" in p.stdout, p.stdout + p.stderr


def test_sipsak_from_untrusted_address_gets_nothing(gw):
    # sipsak binds its own address with -l PORT only; use a second loopback
    # address through a network-namespace-free trick: a gateway list that
    # does not contain 127.0.0.1 any more.
    gw.ok("gateway", "set", "gw1", "--address", "127.0.0.9")
    p = subprocess.run(["sipsak", "--transport=tcp", "-s", f"sip:um@127.0.0.1:{gw.port}", "-v"],
                       capture_output=True, text=True, timeout=30)
    assert "200 OK" not in p.stdout
    assert wait_for(lambda: gw.events("--id", "1131"))


@pytest.mark.skipif(not shutil.which("sipp"), reason="sipp (sip-tester) missing")
def test_sipp_options_over_tcp(gw, tmp_path):
    p = subprocess.run(["sipp", "-sf", os.path.join(HERE, "sipp", "options.xml"), "-t", "t1",
                        "-i", "127.0.0.1", "-p", str(free_port()), "-m", "20", "-r", "50",
                        "-timeout", "20", "-timeout_error", "-nostdin",
                        f"127.0.0.1:{gw.port}"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert status(gw)["sip"]["answered"] >= 20


def test_gateway_fqdn_resolved_and_re_resolved_after_ttl(store):
    """R4: an FQDN gateway address is resolved (c-ares) and re-resolved when
    its TTL runs out: the new address is trusted, the old one no longer."""
    from dns_server import DnsServer
    dns = DnsServer()
    try:
        dns.records["gw.dns.test"] = ("127.0.0.5", 5)
        port = free_port()
        store.conf(f"sip_tcp = 127.0.0.1:{port}\ndns_servers = 127.0.0.1:{dns.port}\n"
                   "events_interval = 1\n")
        store.ok("dialplan", "new", "dp1", "--digits", "3")
        store.ok("gateway", "new", "gwdns", "--address", "gw.dns.test", "--dialplan", "dp1")
        store.serve()
        s = connect(port, src="127.0.0.5")
        s.sendall(options(port=port, src="127.0.0.5"))
        assert read_response(s)[0] == 200
        s.close()
        dns.records["gw.dns.test"] = ("127.0.0.6", 5)

        def moved():
            s = connect(port, src="127.0.0.6")
            try:
                s.sendall(options(port=port, src="127.0.0.6"))
                r = read_response(s, timeout=1)
            except OSError:
                r = None
            s.close()
            return r and r[0] == 200
        assert wait_for(moved, timeout=20, interval=0.5)
        s = connect(port, src="127.0.0.5")
        try:
            s.sendall(options(port=port, src="127.0.0.5"))
        except OSError:
            pass
        assert closed_without_answer(s)
        assert len([q for q in dns.queries if q[0] == "gw.dns.test"]) >= 2
    finally:
        dns.close()


def test_gateway_fqdn_kept_when_dns_fails(store):
    from dns_server import DnsServer
    dns = DnsServer()
    try:
        dns.records["gw.dns.test"] = ("127.0.0.7", 5)
        port = free_port()
        store.conf(f"sip_tcp = 127.0.0.1:{port}\ndns_servers = 127.0.0.1:{dns.port}\n")
        store.ok("dialplan", "new", "dp1", "--digits", "3")
        store.ok("gateway", "new", "gwdns", "--address", "gw.dns.test", "--dialplan", "dp1")
        store.serve()
        n = len(dns.queries)
        dns.records.clear()  # NXDOMAIN from now on
        assert wait_for(lambda: len(dns.queries) > n + 1, timeout=20, interval=0.5)
        s = connect(port, src="127.0.0.7")
        s.sendall(options(port=port, src="127.0.0.7"))
        assert read_response(s)[0] == 200
    finally:
        dns.close()


def test_ipv6_listener_and_gateway(store):
    """R1: IPv4 and IPv6 listeners at once; an IPv6 gateway is trusted by
    its address, and an IPv4 gateway's address does not make ::1 trusted."""
    p4, p6 = free_port(), free_port("::1")
    store.conf(f"sip_tcp = 127.0.0.1:{p4},[::1]:{p6}\n")
    store.ok("dialplan", "new", "dp1", "--digits", "3")
    store.ok("gateway", "new", "gw4", "--address", "127.0.0.1", "--dialplan", "dp1")
    store.serve()
    s = connect(p6, src="::1", host="::1")
    try:
        s.sendall(options(host="[::1]", port=p6, src="[::1]"))
    except OSError:
        pass
    assert closed_without_answer(s)
    store.ok("gateway", "new", "gw6", "--address", "::1", "--dialplan", "dp1")
    s = connect(p6, src="::1", host="::1")
    s.sendall(options(host="[::1]", port=p6, src="[::1]"))
    assert read_response(s)[0] == 200
    s = connect(p4)
    s.sendall(options(port=p4))
    assert read_response(s)[0] == 200
