"""Mutual TLS on the TLS listener (R1, R4, R5, R9): a secured start with the
certificate manager, a test PKI made here, gateways identified by their
certificate, and every refusal recorded as event 1130 with its reason.

Clients: openssl s_client and sipsak (third-party), and Python's ssl module
(OpenSSL underneath) where a test needs its own source address: events are
rate-limited per source address, so each refusal comes from its own
127.0.0.x."""
import datetime
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import hashes

from conftest import Openum, free_port
from pki import DAY, NOW, PKI
from sip_util import connect, header, options, wait_for

FQDN = "um.test.example"


# ----------------------------------------------------------------- helpers

def tls_client(port, leaf=None, src="127.0.0.1", ca=None, seclevel=None, version=None):
    """A Python ssl client context (no server check unless ca)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if seclevel is not None:
        ctx.set_ciphers(f"DEFAULT@SECLEVEL={seclevel}")
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if ca:
        ctx.load_verify_locations(ca)
        ctx.check_hostname = True
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if leaf:
        ctx.load_cert_chain(leaf.cert_path, leaf.key_path)
    s = connect(port, src=src)
    return ctx.wrap_socket(s, server_hostname=FQDN)


def read_sip(s, timeout=5):
    """One SIP response (status, head) or None when the peer closed/refused."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return None
            data += chunk
    except (OSError, ssl.SSLError):
        return None
    head = data.partition(b"\r\n\r\n")[0].decode(errors="replace")
    return int(head.split(" ", 2)[1]), head


def tls_options(port, leaf=None, src="127.0.0.1", **kw):
    """OPTIONS over mutual TLS: the status, or None when refused."""
    try:
        s = tls_client(port, leaf, src=src, **kw)
    except (OSError, ssl.SSLError):
        return None
    try:
        s.sendall(options(port=port, src=src))
        r = read_sip(s)
        return r[0] if r else None
    except (OSError, ssl.SSLError):
        return None
    finally:
        s.close()


def s_client(port, args, data, timeout=5):
    """openssl s_client: sends data, returns (stdout until a SIP head, stderr)."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-quiet",
                          "-servername", FQDN, *args], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    try:
        p.stdin.write(data)
        p.stdin.flush()
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in out and time.time() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.1)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
    except BrokenPipeError:
        pass
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
    return out, err.decode(errors="replace")


def rejected(o, src, reason):
    """The 1130 events of one source address with this reason."""
    def find():
        return [e for e in o.events("--id", "1130")
                if e["source"] == src and e["fields"]["reason"] == reason]
    return wait_for(find, timeout=10)


# ----------------------------------------------------------------- the PKI

class World:
    pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    w = World()
    p = w.p = PKI(tmp_path_factory.mktemp("pki"))
    w.root = p.ca("root", "openum Test Root CA")
    w.other = p.ca("other", "Somebody Else's CA")
    w.inter = p.ca("inter", "openum Test Issuing CA", issuer=w.root)
    w.server = p.leaf("server", w.root, cn=FQDN, dns=[FQDN])
    # renewal: valid longer, so the R7 order takes it on the next reload
    w.server2 = p.leaf("server2", w.root, cn=FQDN, dns=[FQDN], not_after=NOW + 700 * DAY)
    w.gw1 = p.leaf("gw1", w.root, cn="gw1.test.example", dns=["gw1.test.example"])
    w.gw1_inter = p.leaf("gw1i", w.inter, cn="gw1.test.example", dns=["gw1.test.example"])
    # an intermediate without a CRL while CRLs are checked
    w.inter2 = p.ca("inter2", "openum Test CA without CRL", issuer=w.root)
    w.gw1_nocrl = p.leaf("gw1nocrl", w.inter2, dns=["gw1.test.example"])
    w.uri = p.leaf("uri", w.root, uris=["sip:uri.test.example"], eku=("client",))
    w.cn_only = p.leaf("cnonly", w.root, cn="cn.test.example", eku=None)
    w.san_not_cn = p.leaf("sannotcn", w.root, cn="gw1.test.example",
                          dns=["elsewhere.test.example"])
    w.unknown_ca = p.leaf("unknownca", w.other, cn="gw1.test.example", dns=["gw1.test.example"])
    w.expired = p.leaf("expired", w.root, dns=["gw1.test.example"],
                       not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    w.future = p.leaf("future", w.root, dns=["gw1.test.example"],
                      not_before=NOW + 10 * DAY, not_after=NOW + 400 * DAY)
    w.revoked = p.leaf("revoked", w.root, dns=["gw1.test.example"])
    w.nobody = p.leaf("nobody", w.root, dns=["nobody.test.example"])
    w.disabled = p.leaf("disabled", w.root, dns=["gw2.test.example"])
    w.wildcard = p.leaf("wildcard", w.root, dns=["*.test.example"])
    w.ambiguous = p.leaf("ambiguous", w.root, dns=["a.test.example", "b.test.example"])
    # the second gateway's name after 64 others: still two gateways
    w.many_names = p.leaf("manynames", w.root, dns=["a.test.example"] + [
        f"n{i}.nowhere.test.example" for i in range(64)] + ["b.test.example"])
    # RFC 5922 §7.1: only "sip" URIs without a user part name a domain
    w.uri_user = p.leaf("uriuser", w.root, uris=["sip:alice@uri.test.example"])
    w.uri_sips = p.leaf("urisips", w.root, uris=["sips:uri.test.example"])
    w.rsa1024 = p.leaf("rsa1024", w.root, dns=["gw1.test.example"], key="rsa1024")
    w.serveronly = p.leaf("serveronly", w.root, dns=["gw1.test.example"], eku=("server",))
    w.emailonly = p.leaf("emailonly", w.root, dns=["gw1.test.example"], eku=("email",))
    w.sha1 = p.leaf("sha1", w.root, dns=["gw1.test.example"], digest=hashes.SHA1())
    w.crl = p.crl("root", w.root, [w.revoked.serial])
    w.crl_inter = p.crl("inter", w.inter, [])
    return w


def make_server(tmp, w, extra_conf=""):
    o = Openum(tmp / "data")
    o.ok("init")
    o.tcp, o.tls = free_port(), free_port()
    o.conf(f"fqdn = {FQDN}\nsip_tcp = 127.0.0.1:{o.tcp}\nsip_tls = 127.0.0.1:{o.tls}\n"
           f"events_interval = 1\nauto_selfsigned = 0\n{extra_conf}")
    o.ok("cert", "import", w.server.both_path, "--no-reload")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("cert", "import", w.crl, "--trusted", "--yes", "--no-reload")
    # a CRL is believed only when a trusted certificate signed it
    o.ok("cert", "import", w.inter.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("cert", "import", w.crl_inter, "--trusted", "--yes", "--no-reload")
    o.ok("dialplan", "new", "dpsec", "--digits", "3", "--security", "sipsecured")
    o.ok("dialplan", "new", "dp1", "--digits", "3")
    for name, addr, tls_name, extra in [
            ("gw1", "127.0.0.5", "gw1.test.example", []),
            ("gw2", "127.0.0.6", "gw2.test.example", ["--status", "disabled"]),
            ("gwa", "127.0.0.7", "a.test.example", []),
            ("gwb", "127.0.0.8", "b.test.example", []),
            ("gwuri", "127.0.0.9", "uri.test.example", []),
            ("gwcn", "127.0.0.10", "cn.test.example", [])]:
        o.ok("gateway", "new", name, "--address", addr, "--tls-name", tls_name, "--port", "5061",
             "--transport", "tls", "--dialplan", "dpsec", *extra)
    # an Unsecured plan's gateway over TLS is admitted too
    o.ok("gateway", "set", "gwcn", "--dialplan", "dp1")
    o.ok("server", "set", "--dialplans", "dpsec,dp1")
    o.proc = o.serve()
    return o


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    o = make_server(tmp_path_factory.mktemp("srv"), pki)
    yield o
    # a clean exit: no sanitizer report, no leak of sessions or contexts
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


@pytest.fixture
def strict(tmp_path, pki):
    o = make_server(tmp_path, pki, "strict_eku = 1\n")
    yield o
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


# ------------------------------------------------------------------- start

def test_secured_start_logs_mode_and_certificate(srv, pki):
    st = srv.json("status")
    assert st["mode"] == "secured"
    assert st["sip"]["tls_listeners"] == 1
    ev = srv.events("--id", "1112")
    assert ev and str(srv.tls) in ev[0]["fields"]["sip_tls"]
    ev = srv.events("--id", "1114")
    assert ev, srv.log()
    sha1 = pki.server.cert.fingerprint(hashes.SHA1()).hex().upper()
    assert ev[-1]["fields"]["sha1"] == sha1
    assert st["certificate"]["sha1"] == sha1


def test_secured_start_without_certificate_fails_clearly(tmp_path):
    o = Openum(tmp_path / "data")
    o.ok("init")
    o.conf(f"fqdn = {FQDN}\nsip_tcp = 127.0.0.1:{free_port()}\n"
           f"sip_tls = 127.0.0.1:{free_port()}\nstart_secured = 1\nauto_selfsigned = 0\n")
    p = o.serve(wait=False)
    assert p.wait(30) == 1
    assert "no usable certificate" in o.log()


def test_secured_start_generates_selfsigned_when_allowed(tmp_path, pki):
    o = Openum(tmp_path / "data")
    o.ok("init")
    port = free_port()
    o.conf(f"fqdn = {FQDN}\nsip_tcp = 127.0.0.1:{free_port()}\n"
           f"sip_tls = 127.0.0.1:{port}\nstart_secured = 1\n")
    p = o.serve()
    try:
        assert o.events("--id", "1122") and o.events("--id", "1114")
        # the generated certificate is what the listener presents
        der = ssl.get_server_certificate(("127.0.0.1", port))
        assert "BEGIN CERTIFICATE" in der
    finally:
        o.stop(p)
        o.close()


# ---------------------------------------------------------------- accepted

def test_s_client_gateway_certificate_gets_options_200(srv, pki):
    out, err = s_client(srv.tls, ["-cert", pki.gw1.cert_path, "-key", pki.gw1.key_path,
                                  "-CAfile", pki.root.cert_path, "-verify_return_error"],
                        options(port=srv.tls))
    assert out.startswith(b"SIP/2.0 200 "), (out, err, srv.log()[-3000:])
    assert b"CSeq: 1 OPTIONS" in out


def test_python_client_verifies_server_chain_and_gets_200(srv, pki):
    assert tls_options(srv.tls, pki.gw1, src="127.0.0.20", ca=pki.root.cert_path) == 200


def test_tls12_gateway_gets_200_and_connection_stays(srv, pki):
    s = tls_client(srv.tls, pki.gw1, src="127.0.0.21", version=ssl.TLSVersion.TLSv1_2)
    assert s.version() == "TLSv1.2"
    assert s.cipher()[0].startswith("ECDHE-") and "GCM" in s.cipher()[0]
    for cseq in (1, 2, 3):
        s.sendall(options(port=srv.tls, src="127.0.0.21", cseq=cseq))
        st, head = read_sip(s)
        assert st == 200 and header(head, "CSeq") == f"{cseq} OPTIONS"
    s.close()


def test_uri_san_and_cn_without_san_identify_gateways(srv, pki):
    assert tls_options(srv.tls, pki.uri, src="127.0.0.22") == 200
    # CN only (no SAN, no EKU), on an Unsecured plan: admitted over TLS
    assert tls_options(srv.tls, pki.cn_only, src="127.0.0.23") == 200


def test_intermediate_chain_sent_by_gateway(srv, pki):
    assert tls_options(srv.tls, pki.gw1_inter, src="127.0.0.24") == 200


def test_certificate_request_names_trusted_cas(srv, pki):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{srv.tls}", "-tls1_2",
                        "-cert", pki.gw1.cert_path, "-key", pki.gw1.key_path],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    names = r.stdout.split("Acceptable client certificate CA names", 1)[1].split("---")[0]
    assert "openum Test Root CA" in names
    # the server sends its full chain and no session ticket
    assert "Session-ID:" in r.stdout and "TLS session ticket:" not in r.stdout


def test_trusted_store_too_large_for_the_ca_names_still_handshakes(fresh, pki, tmp_path):
    """1,500 trusted CAs (130 KB of names) do not fit in a CertificateRequest
    (16-bit length): every handshake used to fail with an internal error
    once such a bundle was imported. Now none are listed and gateways
    still get in."""
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    k = ec.generate_private_key(ec.SECP256R1())
    pem = []
    for i in range(1500):
        n = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME,
                                            f"Bundle Root CA {i:05d} of a large trust bundle"),
                        cx509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bundle Org")])
        c = (cx509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())
             .serial_number(i + 1).not_valid_before(NOW - DAY).not_valid_after(NOW + 900 * DAY)
             .add_extension(cx509.BasicConstraints(ca=True, path_length=None), critical=True)
             .sign(k, hashes.SHA256()))
        pem.append(c.public_bytes(serialization.Encoding.PEM))
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join(pem))
    assert tls_options(fresh.tls, pki.gw1, src="127.0.0.76") == 200
    fresh.ok("cert", "import", str(bundle), "--trusted", "--yes")
    assert wait_for(lambda: "CertificateRequest" in fresh.log())
    assert tls_options(fresh.tls, pki.gw1, src="127.0.0.77") == 200, fresh.log()[-2000:]
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{fresh.tls}",
                        "-cert", pki.gw1.cert_path, "-key", pki.gw1.key_path],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert "No client certificate CA names sent" in r.stdout, r.stdout[-2000:]


@pytest.mark.skipif(not shutil.which("sipp") or not shutil.which("socat"),
                    reason="sipp or socat missing")
def test_sipp_through_socat_tls_bridge(srv, pki, tmp_path):
    """Debian's sipp has no TLS: socat holds the mutual TLS connection (and
    checks our certificate and name), sipp speaks TCP to socat."""
    here = os.path.dirname(os.path.abspath(__file__))
    bridge = free_port()
    sc = subprocess.Popen(["socat", f"TCP-LISTEN:{bridge},bind=127.0.0.1,reuseaddr",
                           f"OPENSSL:127.0.0.1:{srv.tls},cert={pki.gw1.cert_path},"
                           f"key={pki.gw1.key_path},cafile={pki.root.cert_path},verify=1,"
                           f"commonname={FQDN}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: subprocess.run(["ss", "-ltn", f"sport = :{bridge}"],
                                        capture_output=True, text=True).stdout.count("\n") > 1)
        before = srv.json("status")["sip"]["answered"]
        p = subprocess.run(["sipp", "-sf", os.path.join(here, "sipp", "options.xml"), "-t", "t1",
                            "-i", "127.0.0.1", "-p", str(free_port()), "-m", "20", "-r", "50",
                            "-timeout", "20", "-timeout_error", "-nostdin",
                            f"127.0.0.1:{bridge}"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:] + srv.log()[-2000:]
        assert srv.json("status")["sip"]["answered"] >= before + 20
    finally:
        sc.kill()
        sc.wait()


def baresip_options(tmp_path, port, leaf, ca):
    """baresip (its own SIP/TLS stack, libre) sends one OPTIONS over TLS with
    a client certificate; returns its output."""
    d = tmp_path / "baresip"
    d.mkdir(exist_ok=True)
    (d / "config").write_text(
        "module_path /usr/lib/baresip/modules\n"
        f"sip_listen 127.0.0.1:{free_port()}\n"
        f"sip_certificate {leaf.both_path}\n"
        f"sip_cafile {ca}\n"
        "module account.so\nmodule menu.so\nmodule g711.so\n")
    (d / "accounts").write_text("<sip:gw@127.0.0.1>;regint=0\n")
    (d / "contacts").write_text("")
    r = subprocess.run(["baresip", "-f", str(d), "-s", "-t", "4", "-e",
                        f"/options sip:um@127.0.0.1:{port};transport=tls"],
                       capture_output=True, text=True, timeout=60, cwd=d)
    return r.stdout + r.stderr


@pytest.mark.skipif(not shutil.which("baresip"), reason="baresip missing")
def test_baresip_gateway_certificate_gets_options_200(srv, pki, tmp_path):
    out = baresip_options(tmp_path, srv.tls, pki.gw1, pki.root.cert_path)
    assert "SIP/2.0 200 OK" in out, out[-3000:] + srv.log()[-2000:]


@pytest.mark.skipif(not shutil.which("baresip"), reason="baresip missing")
def test_baresip_unknown_ca_refused(strict, pki, tmp_path):
    out = baresip_options(tmp_path, strict.tls, pki.unknown_ca, pki.root.cert_path)
    assert "SIP/2.0 200 OK" not in out
    assert rejected(strict, "127.0.0.1", "unknown CA"), strict.log()[-2000:]


def test_sipsak_without_client_certificate_refused(strict, pki):
    """Debian's sipsak is built on GnuTLS without a way to present a client
    certificate (--tls-client-cert sets none): it can only show the refusal."""
    r = subprocess.run(["sipsak", "--transport=tls", "-s", f"sip:um@127.0.0.1:{strict.tls}",
                        f"--tls-ca-cert={pki.root.cert_path}"],
                       capture_output=True, text=True, timeout=30)
    assert "200 OK" not in r.stdout
    assert rejected(strict, "127.0.0.1", "no client certificate"), strict.log()[-2000:]


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("leaf,src,reason", [
    (None, "127.0.0.31", "no client certificate"),
    ("unknown_ca", "127.0.0.32", "unknown CA"),
    ("expired", "127.0.0.33", "certificate expired"),
    ("future", "127.0.0.34", "certificate not yet valid"),
    ("revoked", "127.0.0.35", "certificate revoked"),
    ("nobody", "127.0.0.36", "name matches no gateway"),
    ("disabled", "127.0.0.37", "name matches a disabled gateway"),
    ("wildcard", "127.0.0.38", "wildcard name not accepted"),
    ("ambiguous", "127.0.0.39", "name matches more than one gateway"),
    ("san_not_cn", "127.0.0.40", "name matches no gateway"),
    ("emailonly", "127.0.0.41", "certificate not for client authentication"),
    ("many_names", "127.0.0.61", "name matches more than one gateway"),
    ("uri_user", "127.0.0.62", "name matches no gateway"),
    ("uri_sips", "127.0.0.63", "name matches no gateway"),
])
def test_refused_with_reason(srv, pki, leaf, src, reason):
    cert = getattr(pki, leaf) if leaf else None
    assert tls_options(srv.tls, cert, src=src) is None
    ev = rejected(srv, src, reason)
    assert ev, (srv.events("--id", "1130"), srv.log()[-3000:])
    assert ev[0]["fields"]["peer"].startswith(src + ":")
    if cert:
        # every refusal names the certificate: chain failures too (the
        # handshake failed before OpenSSL kept a peer certificate)
        f = ev[0]["fields"]
        assert "O=openum tests" in f["subject"], f
        assert f["issuer"] == cert.cert.issuer.rfc4514_string(), f


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_refusals_by_both_versions(srv, pki, version):
    src = "127.0.0.42" if version == ssl.TLSVersion.TLSv1_2 else "127.0.0.43"
    assert tls_options(srv.tls, pki.expired, src=src, version=version) is None
    assert rejected(srv, src, "certificate expired")


def test_rsa1024_refused_under_default_level(srv, pki):
    assert tls_options(srv.tls, pki.rsa1024, src="127.0.0.44", seclevel=0) is None
    assert rejected(srv, "127.0.0.44", "key too small")


def test_sha1_signature_refused_under_default_level(srv, pki):
    assert tls_options(srv.tls, pki.sha1, src="127.0.0.45", seclevel=0) is None
    ev = rejected(srv, "127.0.0.45", "digest too weak")
    assert ev[0]["fields"]["subject"] == pki.sha1.cert.subject.rfc4514_string()
    assert ev[0]["fields"]["issuer"] == pki.sha1.cert.issuer.rfc4514_string()


def test_tls11_forced_refused_as_protocol_version(srv, pki):
    out, err = s_client(srv.tls, ["-cert", pki.gw1.cert_path, "-key", pki.gw1.key_path,
                                  "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
                        options(port=srv.tls))
    assert b"SIP/2.0" not in out
    assert rejected(srv, "127.0.0.1", "protocol version"), srv.log()[-2000:]


def test_plain_tcp_to_tls_port_is_a_handshake_failure(srv):
    s = connect(srv.tls, src="127.0.0.46")
    s.sendall(options(port=srv.tls, src="127.0.0.46"))
    assert read_sip(s) is None
    assert rejected(srv, "127.0.0.46", "protocol version") or \
        rejected(srv, "127.0.0.46", "handshake failed")


# ---------------------------------------------------------------- EKU

def test_serverauth_only_passes_with_1133(srv, pki):
    assert tls_options(srv.tls, pki.serveronly, src="127.0.0.50") == 200
    ev = wait_for(lambda: [e for e in srv.events("--id", "1133")
                           if e["source"] == "127.0.0.50"])
    assert ev and ev[0]["fields"]["gateway"] == "gw1" and ev[0]["fields"]["strict_eku"] == "0"


def test_serverauth_only_refused_under_strict_eku(strict, pki):
    assert tls_options(strict.tls, pki.serveronly, src="127.0.0.51") is None
    assert rejected(strict, "127.0.0.51", "certificate not for client authentication")
    assert wait_for(lambda: strict.events("--id", "1133"))
    # a clientAuth certificate still passes
    assert tls_options(strict.tls, pki.gw1, src="127.0.0.52") == 200


# ---------------------------------------------------------------- over TCP

def test_tcp_still_refuses_sipsecured_plan_with_403(srv):
    s = connect(srv.tcp, src="127.0.0.5")
    s.sendall(options(port=srv.tcp, src="127.0.0.5"))
    st, head = read_sip(s)
    assert st == 403


# ---------------------------------------------------------------- reload

@pytest.fixture
def fresh(tmp_path, pki):
    o = make_server(tmp_path, pki)
    yield o
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


def peer_der(s):
    return s.getpeercert(binary_form=True)


def test_certificate_swap_keeps_open_connection_new_one_sees_new_cert(fresh, pki):
    from cryptography.hazmat.primitives.serialization import Encoding
    old_der = pki.server.cert.public_bytes(Encoding.DER)
    new_der = pki.server2.cert.public_bytes(Encoding.DER)
    s = tls_client(fresh.tls, pki.gw1, src="127.0.0.60")
    assert peer_der(s) == old_der
    s.sendall(options(port=fresh.tls, src="127.0.0.60"))
    assert read_sip(s)[0] == 200
    # a renewed certificate imported: the CLI reloads the server, and 1114
    # names the new one (its source is the certificate, so the rate limit
    # never hides a change)
    p = fresh.ok("cert", "import", pki.server2.both_path)
    sha1 = pki.server2.cert.fingerprint(hashes.SHA1()).hex().upper()
    ev = wait_for(lambda: [e for e in fresh.events("--id", "1114")
                           if e["fields"].get("sha1") == sha1])
    assert ev, fresh.log()[-2000:]
    rl = wait_for(lambda: [e for e in fresh.events("--id", "1180")
                           if sha1 in e["fields"].get("changes", "")])
    assert rl, fresh.events("--id", "1180")
    # the open connection keeps working on its session
    s.sendall(options(port=fresh.tls, src="127.0.0.60", cseq=2))
    assert read_sip(s)[0] == 200
    s.close()
    # a new connection sees the new certificate
    s2 = tls_client(fresh.tls, pki.gw1, src="127.0.0.61", ca=pki.root.cert_path)
    assert peer_der(s2) == new_der
    s2.sendall(options(port=fresh.tls, src="127.0.0.61"))
    assert read_sip(s2)[0] == 200
    s2.close()
    assert fresh.json("status")["certificate"]["sha1"] == sha1


def test_disabled_gateway_loses_open_tls_connection(fresh, pki):
    s = tls_client(fresh.tls, pki.gw1, src="127.0.0.62")
    s.sendall(options(port=fresh.tls, src="127.0.0.62"))
    assert read_sip(s)[0] == 200
    fresh.ok("gateway", "set", "gw1", "--status", "disabled")
    try:
        s.sendall(options(port=fresh.tls, src="127.0.0.62", cseq=2))
    except OSError:
        pass
    assert read_sip(s) is None
    ev = rejected(fresh, "127.0.0.62", "name matches a disabled gateway")
    assert ev and ev[0]["fields"]["when"] == "reload"
    # and a new connection is refused
    assert tls_options(fresh.tls, pki.gw1, src="127.0.0.63") is None
    assert rejected(fresh, "127.0.0.63", "name matches a disabled gateway")


def test_removed_ca_refuses_open_and_new_connections(fresh, pki):
    s = tls_client(fresh.tls, pki.gw1, src="127.0.0.64")
    s.sendall(options(port=fresh.tls, src="127.0.0.64"))
    assert read_sip(s)[0] == 200
    root_sha1 = pki.root.cert.fingerprint(hashes.SHA1()).hex().upper()
    fresh.ok("cert", "remove", root_sha1, "--force")
    fresh.ok("reload")
    try:
        s.sendall(options(port=fresh.tls, src="127.0.0.64", cseq=2))
    except OSError:
        pass
    assert read_sip(s) is None
    ev = rejected(fresh, "127.0.0.64", "unknown CA")
    assert ev and ev[0]["fields"]["when"] == "reload", fresh.events("--id", "1130")
    assert tls_options(fresh.tls, pki.gw1, src="127.0.0.65") is None
    assert rejected(fresh, "127.0.0.65", "unknown CA")


# ---------------------------------------------------------------- storms

def client_hello():
    """The first flight of a TLS 1.3 client, as bytes (Python ssl over BIOs)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=FQDN)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


@pytest.fixture
def roomy(tmp_path, pki):
    """Room for 300 handshakes in progress (the default is 128)."""
    o = make_server(tmp_path, pki, "max_handshakes = 300\n")
    yield o
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


def test_handshake_storm_is_spread_over_loop_turns(roomy):
    """200 ClientHellos at once: the handshake budget puts some off to later
    loop turns, yet every peer gets its server flight and the control
    socket keeps answering."""
    fresh = roomy
    hello = client_hello()
    socks = []
    for i in range(200):
        s = connect(fresh.tls, src=f"127.0.1.{i % 250 + 1}")
        socks.append(s)
    for s in socks:
        s.sendall(hello)
    assert fresh.json("status")["state"] == "running"
    got = 0
    for s in socks:
        s.settimeout(10)
        try:
            if s.recv(5)[:1] == b"\x16":  # a handshake record: ServerHello
                got += 1
        except OSError:
            pass
        s.close()
    assert got == 200
    st = fresh.json("status")["sip"]
    assert st["tls_deferred"] > 0, st


# ---------------------------------------------------------------- context

def test_tls13_sends_no_session_ticket(srv, pki):
    s = tls_client(srv.tls, pki.gw1, src="127.0.0.70", version=ssl.TLSVersion.TLSv1_3)
    s.sendall(options(port=srv.tls, src="127.0.0.70"))
    assert read_sip(s)[0] == 200
    assert s.version() == "TLSv1.3"
    assert s.session is None or not s.session.has_ticket
    s.close()


def test_intermediate_alone_is_an_anchor(fresh, pki, tmp_path):
    """Only the issuing CA trusted (not its root), the gateway sending its
    certificate alone: partial-chain verification accepts it."""
    from cryptography.hazmat.primitives.serialization import Encoding
    inter = tmp_path / "inter-only.pem"
    inter.write_bytes(pki.inter.cert.public_bytes(Encoding.PEM))
    leaf_only = tmp_path / "leaf-only.pem"
    leaf_only.write_bytes(pki.gw1_inter.cert.public_bytes(Encoding.PEM))
    fresh.ok("cert", "import", str(inter), "--trusted", "--yes", "--no-reload")
    fresh.ok("cert", "remove", pki.root.cert.fingerprint(hashes.SHA1()).hex().upper(),
             "--force", "--no-reload")
    fresh.ok("reload")

    class Leaf:
        cert_path, key_path = str(leaf_only), pki.gw1_inter.key_path
    assert tls_options(fresh.tls, Leaf, src="127.0.0.71") == 200
    # the root's other children are now unknown
    assert tls_options(fresh.tls, pki.gw1, src="127.0.0.72") is None
    assert rejected(fresh, "127.0.0.72", "unknown CA")


def test_ipv4_and_ipv6_tls_listeners(tmp_path, pki):
    o = Openum(tmp_path / "data")
    o.ok("init")
    p4, p6 = free_port(), free_port("::1")
    o.conf(f"fqdn = {FQDN}\nsip_tcp = 127.0.0.1:{free_port()}\n"
           f"sip_tls = 127.0.0.1:{p4},[::1]:{p6}\nstart_secured = 1\nauto_selfsigned = 0\n")
    o.ok("cert", "import", pki.server.both_path, "--no-reload")
    o.ok("cert", "import", pki.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("dialplan", "new", "dp1", "--digits", "3")
    o.ok("gateway", "new", "gw1", "--address", "127.0.0.5", "--tls-name", "gw1.test.example",
         "--port", "5061", "--transport", "tls", "--dialplan", "dp1")
    p = o.serve()
    try:
        assert o.json("status")["sip"]["tls_listeners"] == 2
        assert tls_options(p4, pki.gw1, src="127.0.0.1") == 200
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(pki.gw1.cert_path, pki.gw1.key_path)
        s = ctx.wrap_socket(connect(p6, src="::1", host="::1"), server_hostname=FQDN)
        s.sendall(options(host="[::1]", port=p6, src="[::1]"))
        assert read_sip(s)[0] == 200
        s.close()
    finally:
        assert o.stop(p) == 0, o.log()[-2000:]
        o.close()


def test_stalled_handshake_is_cut_with_1130(tmp_path, pki):
    o = make_server(tmp_path, pki, "tls_handshake_timeout = 1\n")
    try:
        hello = client_hello()
        s = connect(o.tls, src="127.0.0.74")
        s.sendall(hello[:20])  # half a ClientHello, then nothing
        assert read_sip(s, timeout=5) is None
        assert rejected(o, "127.0.0.74", "handshake too slow")
        assert o.json("status")["sip"]["closed_handshake"] >= 1
    finally:
        assert o.stop(o.proc) == 0, o.log()[-2000:]
        o.close()


def test_reload_to_secured_opens_tls_listener(tmp_path, pki):
    """R9 beyond: associating a SIPSecured plan takes effect on reload."""
    o = Openum(tmp_path / "data")
    o.ok("init")
    port = free_port()
    o.conf(f"fqdn = {FQDN}\nsip_tcp = 127.0.0.1:{free_port()}\nsip_tls = 127.0.0.1:{port}\n"
           "auto_selfsigned = 0\nevents_interval = 1\n")
    o.ok("cert", "import", pki.server.both_path, "--no-reload")
    o.ok("cert", "import", pki.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("dialplan", "new", "dpsec", "--digits", "3", "--security", "sipsecured")
    o.ok("gateway", "new", "gw1", "--address", "127.0.0.5", "--tls-name", "gw1.test.example",
         "--port", "5061", "--transport", "tls", "--dialplan", "dpsec")
    p = o.serve()
    try:
        st = o.json("status")
        assert st["mode"] == "unsecured" and st["sip"]["tls_listeners"] == 0
        assert tls_options(port, pki.gw1, src="127.0.0.80") is None
        o.ok("server", "set", "--dialplans", "dpsec")
        st = o.json("status")
        assert st["mode"] == "secured" and st["sip"]["tls_listeners"] == 1, o.log()[-2000:]
        assert tls_options(port, pki.gw1, src="127.0.0.81") == 200
        assert o.events("--id", "1114")
    finally:
        assert o.stop(p) == 0, o.log()[-2000:]
        o.close()


def test_pin_through_server_set_takes_effect_on_running_server(fresh, pki):
    """`openum server set --certificate` (the directory's pin) overrides the
    automatic order on a running server: the next handshake presents the
    pinned certificate and 1114 says pinned=yes."""
    from cryptography.hazmat.primitives.serialization import Encoding
    fresh.ok("cert", "import", pki.server2.both_path, "--no-reload")
    fresh.ok("reload")
    s = tls_client(fresh.tls, pki.gw1, src="127.0.0.62")
    in_use = peer_der(s)
    s.close()
    other = pki.server if in_use == pki.server2.cert.public_bytes(Encoding.DER) else pki.server2
    sha1 = other.cert.fingerprint(hashes.SHA1()).hex().upper()
    fresh.ok("server", "set", "--certificate", sha1)
    ev = wait_for(lambda: [e for e in fresh.events("--id", "1114")
                           if e["fields"].get("sha1") == sha1 and e["fields"]["pinned"] == "yes"])
    assert ev
    s = tls_client(fresh.tls, pki.gw1, src="127.0.0.63")
    assert peer_der(s) == other.cert.public_bytes(Encoding.DER)
    s.close()
    # back to automatic
    fresh.ok("server", "set", "--certificate", "auto")
    s = tls_client(fresh.tls, pki.gw1, src="127.0.0.64")
    assert peer_der(s) == in_use
    s.close()


# ------------------------------------------------------ revocation policy

def test_crl_of_the_root_revokes_an_issuing_ca(fresh, pki):
    """A two-level chain: the root's CRL revokes the issuing CA, so every
    gateway certificate it issued is refused as revoked (CRL check of the
    whole chain), and the event names the gateway's certificate and the
    revoked CA."""
    p = pki.p
    root = p.ca("root9", "openum Test Root Nine")
    issuing = p.ca("issuing9", "openum Test Issuing Nine", issuer=root)
    gw = p.leaf("gw9", issuing, cn="gw1.test.example", dns=["gw1.test.example"])
    fresh.ok("cert", "import", root.cert_path, "--trusted", "--yes")
    assert tls_options(fresh.tls, gw, src="127.0.0.81") == 200
    crl = p.crl("root9", root, [issuing.serial])
    fresh.ok("cert", "import", crl, "--trusted", "--yes")  # reloads the server
    assert tls_options(fresh.tls, gw, src="127.0.0.82") is None
    ev = rejected(fresh, "127.0.0.82", "certificate revoked")
    f = ev[0]["fields"]
    assert "depth 1" in f["detail"] and "openum Test Issuing Nine" in f["detail"], f
    assert f["subject"] == gw.cert.subject.rfc4514_string()
    assert f["issuer"] == issuing.cert.subject.rfc4514_string()
    # trusting the issuing CA itself does not bypass the root's CRL
    fresh.ok("cert", "import", issuing.cert_path, "--trusted", "--yes")
    assert tls_options(fresh.tls, gw, src="127.0.0.83") is None
    assert rejected(fresh, "127.0.0.83", "certificate revoked")


def test_ca_without_crl_is_not_checked_and_import_says_so(srv, pki, tmp_path):
    """The documented behaviour for a CA that publishes no CRL: its
    certificates are accepted without a revocation check while other CAs'
    CRLs are checked (not "one CRL anywhere makes every CA without one
    fail"), and `cert import` says so."""
    assert tls_options(srv.tls, pki.gw1_nocrl, src="127.0.0.47") == 200
    # the root's CRL is still checked for the root's own children
    assert tls_options(srv.tls, pki.revoked, src="127.0.0.48") is None
    assert rejected(srv, "127.0.0.48", "certificate revoked")
    o = Openum(tmp_path / "data")
    o.ok("init")
    r = o.ok("cert", "import", pki.root.cert_path, "--trusted", "--yes")
    assert "no revocation list here for" in r.stdout and "openum Test Root CA" in r.stdout
    assert "not checked for revocation" in r.stdout
    r = o.ok("cert", "import", pki.crl, "--trusted", "--yes")
    assert "revocation list" in r.stdout and "1 revoked" in r.stdout
    assert "no revocation list here for" not in r.stdout


def test_stale_crl_refuses_with_its_own_reason(fresh, pki):
    p = pki.p
    root = p.ca("root10", "openum Test Root Ten")
    gw = p.leaf("gw10", root, cn="gw1.test.example", dns=["gw1.test.example"])
    now = datetime.datetime.now(datetime.timezone.utc)
    crl = p.crl("root10", root, [], next_update=now + datetime.timedelta(seconds=6),
                last_update=now - datetime.timedelta(seconds=2))
    fresh.ok("cert", "import", root.cert_path, "--trusted", "--yes", "--no-reload")
    fresh.ok("cert", "import", crl, "--trusted", "--yes")
    assert tls_options(fresh.tls, gw, src="127.0.0.84") == 200
    deadline = time.time() + 30
    while datetime.datetime.now(datetime.timezone.utc) < now + datetime.timedelta(seconds=7):
        assert time.time() < deadline
        time.sleep(0.2)
    assert tls_options(fresh.tls, gw, src="127.0.0.85") is None
    ev = rejected(fresh, "127.0.0.85", "CRL is stale")
    assert ev and "openum Test Root Ten" in ev[0]["fields"]["issuer"]
    # importing it again is refused: a stale CRL is not news
    r = fresh.run("cert", "import", crl, "--trusted", "--yes")
    assert r.returncode == 1 and "stale" in r.stderr


def test_crl_not_signed_by_a_trusted_ca_is_refused(fresh, pki, tmp_path):
    """A CRL is believed only when a trusted certificate signed it: a forged
    one (right issuer name, another key) or one of a CA nobody trusts is
    refused at import and would never cut gateways off."""
    p = pki.p
    impostor = p.ca("impostor", "openum Test Root CA")  # same name, other key
    forged = p.crl("forged", impostor, [pki.gw1.serial])
    r = fresh.run("cert", "import", forged, "--trusted", "--yes")
    assert r.returncode == 1 and "does not verify" in r.stderr
    foreign = p.crl("foreign", pki.other, [pki.gw1.serial])
    r = fresh.run("cert", "import", foreign, "--trusted", "--yes")
    assert r.returncode == 1 and "signed by no trusted certificate" in r.stderr
    assert not os.listdir(os.path.join(fresh.data, "certs", "crl")) or all(
        f.endswith(".pem") for f in os.listdir(os.path.join(fresh.data, "certs", "crl")))
    assert tls_options(fresh.tls, pki.gw1, src="127.0.0.86") == 200


def test_handshake_under_way_during_a_reload_meets_the_new_trust(fresh, pki):
    """A TLS 1.2 handshake held open before the client's last flight; the
    root is removed (the CLI reloads the running server); the rest of the
    handshake is refused: it is verified against the trust in force when it
    completes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.gw1.cert_path, pki.gw1.key_path)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=FQDN)
    s = connect(fresh.tls, src="127.0.0.87")
    s.settimeout(10)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    s.sendall(out.read())
    flight = b""
    while not flight:
        inc.write(s.recv(65536))
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        flight = out.read()
    # the client's Certificate record first, then the trust goes
    first = 5 + int.from_bytes(flight[3:5], "big")
    s.sendall(flight[:first])
    root_sha1 = pki.root.cert.fingerprint(hashes.SHA1()).hex().upper()
    fresh.ok("cert", "remove", root_sha1)
    s.sendall(flight[first:])
    refused = False
    try:
        data = s.recv(65536)
        inc.write(data)
        obj.do_handshake()
        obj.write(options(port=fresh.tls, src="127.0.0.87"))
        s.sendall(out.read())
        refused = not s.recv(65536)
    except (OSError, ssl.SSLError):
        refused = True
    s.close()
    assert refused
    assert rejected(fresh, "127.0.0.87", "unknown CA")


def test_tls_name_with_root_dot_matches(fresh, pki):
    """A gateway TLS name written with the trailing dot is the same name (it
    used to be accepted by the CLI and then match no certificate); and a
    certificate carrying the name with the dot matches too."""
    fresh.ok("gateway", "set", "gw1", "--tls-name", "gw1.test.example.")
    assert fresh.json("gateway", "show", "gw1")["tls_name"] == "gw1.test.example"
    assert tls_options(fresh.tls, pki.gw1, src="127.0.0.88") == 200
    dotted = pki.p.leaf("gw1dot", pki.root, dns=["GW1.test.example."])
    assert tls_options(fresh.tls, dotted, src="127.0.0.89") == 200


# ------------------------------------------- a gateway's own certificate as an anchor

def device_cases(pki, tag):
    """Gateway A's own self-signed certificate, a CA certificate two ways
    (`openssl req -x509` with a SAN; keyCertSign and the name only in the CN),
    and what A's key can make for gateway B's name: a leaf, and a leaf under an
    intermediate CA it made."""
    out = []
    for i, (san, kcs) in enumerate([(True, False), (False, True)]):
        a = pki.p.device(f"{tag}-a{i}", "a.test.example", san=san, key_cert_sign=kcs)
        forged = pki.p.leaf(f"{tag}-forged{i}", a, cn="b.test.example", dns=["b.test.example"])
        sub = pki.p.ca(f"{tag}-sub{i}", "Issuing CA made with A's key", issuer=a)
        forged_sub = pki.p.leaf(f"{tag}-forgedsub{i}", sub, dns=["b.test.example"])
        out.append((a, forged, forged_sub))
    return out


def test_gateway_self_signed_ca_vouches_for_itself_only(fresh, pki):
    """The seed's self-signed route trusts each gateway's own certificate. When
    that certificate is also a CA certificate, the key of gateway A must not
    be able to issue a certificate openum accepts as gateway B: A's
    certificate is an anchor for itself only. A still gets in, B's own
    certificate (from the enterprise root) too."""
    b_real = pki.p.leaf("b-real", pki.root, dns=["b.test.example"])
    for i, (a, forged, forged_sub) in enumerate(device_cases(pki, "in")):
        r = fresh.ok("cert", "import", a.cert_path, "--trusted", "--yes")
        assert "trusted for itself only" in r.stdout, r.stdout
        assert tls_options(fresh.tls, a, src=f"127.0.2.{10 * i + 1}") == 200
        for k, leaf in enumerate((forged, forged_sub)):
            src = f"127.0.2.{10 * i + 2 + k}"
            assert tls_options(fresh.tls, leaf, src=src) is None
            ev = rejected(fresh, src, "unknown CA")
            d = ev[0]["fields"]["detail"]
            assert "a gateway's own certificate" in d and "CN=a.test.example" in d, d
        assert tls_options(fresh.tls, b_real, src=f"127.0.2.{10 * i + 4}") == 200
        fresh.ok("cert", "remove", a.cert.fingerprint(hashes.SHA1()).hex().upper(), "--no-reload")


def test_gateway_self_signed_ca_open_connection_cut_when_trusted(fresh, pki):
    """An open connection of A itself survives the re-check of a reload
    (om_tls_chain_verify applies the same rule)."""
    a, forged, _ = device_cases(pki, "rc")[0]
    fresh.ok("cert", "import", a.cert_path, "--trusted", "--yes")
    s = tls_client(fresh.tls, a, src="127.0.2.41")
    s.sendall(options(port=fresh.tls, src="127.0.2.41"))
    assert read_sip(s)[0] == 200
    fresh.ok("reload")
    s.sendall(options(port=fresh.tls, src="127.0.2.41"))
    assert read_sip(s)[0] == 200
    s.close()


class PlainTlsServer:
    """A TLS listener presenting `leaf` (with its chain file); it asks for no
    client certificate, answers the first request 200 and nothing else."""

    def __init__(self, leaf):
        import threading
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(leaf.cert_path, leaf.key_path)
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(4)
        self.port = self.s.getsockname()[1]
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            try:
                c.settimeout(5)
                t = self.ctx.wrap_socket(c, server_side=True)
                req = t.recv(65536).decode(errors="replace").split("\r\n")
                # 200 to the OPTIONS, so that the client's TLS step ends "ok"
                keep = [h for h in req if h.split(":")[0].lower() in (
                    "via", "from", "to", "call-id", "cseq")]
                t.sendall(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) +
                           "\r\nContent-Length: 0\r\n\r\n").encode())
                t.recv(65536)
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    def close(self):
        self.s.close()


def connectivity(port, name, ca, client, tmp_path):
    from conftest import BIN
    import json
    p = subprocess.run([BIN, "test-connectivity", "--json", "--server", f"127.0.0.1:{port}",
                        "--secured", "--cert", client.cert_path, "--key", client.key_path,
                        "--ca", ca, "--tls-name", name, "--timeout", "5"],
                       capture_output=True, text=True, timeout=90,
                       env={k: v for k, v in os.environ.items() if k != "OPENUM_DATA"})
    doc = json.loads(p.stdout)
    return next(s for s in doc["steps"] if s["name"] == "tls")


def test_outbound_client_takes_a_gateway_certificate_for_itself_only(pki, tmp_path):
    """The client side (src/tls/client.c, here through openum
    test-connectivity) verifies a gateway's server certificate with the same
    rule: A's own certificate vouches for A only."""
    b_real = pki.p.leaf("ob-b-real", pki.root, dns=["b.test.example"])
    for i, (a, forged, forged_sub) in enumerate(device_cases(pki, "out")):
        ca = tmp_path / f"ca{i}.pem"
        ca.write_bytes(open(a.cert_path, "rb").read() + open(pki.root.cert_path, "rb").read())
        for leaf, name, good in [(a, "a.test.example", True), (forged, "b.test.example", False),
                                 (forged_sub, "b.test.example", False),
                                 (b_real, "b.test.example", True)]:
            srv = PlainTlsServer(leaf)
            try:
                st = connectivity(srv.port, name, str(ca), pki.gw1, tmp_path)
            finally:
                srv.close()
            if good:
                assert st["result"] == "ok", json.dumps(st)
            else:
                assert st["result"] == "failed", st
                assert "a gateway's own certificate" in st["reason"], st


def test_outbound_name_check_ignores_the_root_dot(pki, tmp_path):
    """The client side checks a gateway's server certificate with the names
    the inbound path extracts: "b.test.example." and "b.test.example" are one
    name, written either way in the certificate or in the TLS name."""
    plain = pki.p.leaf("dot-b", pki.root, dns=["b.test.example"])
    dotted = pki.p.leaf("dot-b-dotted", pki.root, dns=["B.test.example."])
    for leaf, name in [(plain, "b.test.example."), (dotted, "b.test.example"),
                       (dotted, "b.test.example.")]:
        srv = PlainTlsServer(leaf)
        try:
            st = connectivity(srv.port, name, pki.root.cert_path, pki.gw1, tmp_path)
        finally:
            srv.close()
        assert st["result"] == "ok", json.dumps(st)
    srv = PlainTlsServer(plain)
    try:
        st = connectivity(srv.port, "c.test.example.", pki.root.cert_path, pki.gw1, tmp_path)
    finally:
        srv.close()
    assert st["result"] == "failed" and "does not carry the name" in st["reason"], st
