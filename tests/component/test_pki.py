"""The certificate lifecycle as a PKI administrator tries it (issue 18):
what counts as valid and why every other certificate loses (the selection
table), chains in issuer order and completed from the trusted store,
certificates re-issued for a stored key, pins that name one certificate,
trust removals that take effect like additions, CRLs that are listed,
removed and watched, the limits import and load share, PKCS#12 protection,
key files others can read, what `openum status` shows, pending requests —
and the seed's three certificate routes end to end against a running
server with `openssl s_client -showcerts` and Python's ssl.

Every PKI is made here (pki.py); every port is free; every server is the
real `openum serve`."""
import datetime
import hashlib
import json
import os
import pwd
import re
import shutil
import sqlite3
import ssl
import subprocess
import tempfile
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from conftest import BIN, Openum, free_port
from pki import DAY, NOW, PKI
from sip_util import connect, options, wait_for

FQDN = "um.pki.example"
GW = "gw1.pki.example"


def sha1(issued):
    return issued.cert.fingerprint(hashes.SHA1()).hex().upper()


def pem_of(*certs):
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write(path, data, mode=0o600):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return str(path)


def new_store(tmp, extra_conf="", fqdn=FQDN):
    o = Openum(tmp / "data")
    o.ok("init")
    o.tcp, o.tls = free_port(), free_port()
    o.conf(f"fqdn = {fqdn}\nsip_tcp = 127.0.0.1:{o.tcp}\nsip_tls = 127.0.0.1:{o.tls}\n"
           f"events_interval = 1\nstart_secured = 1\n{extra_conf}")
    return o


def selection(o):
    return json.loads(o.ok("--json", "cert", "select", "--no-reload").stdout)


def by_sha1(sel):
    return {c["sha1"]: c for c in sel["candidates"]}


def s_client(port, client=None, cafile=None, timeout=30):
    """openssl s_client -showcerts: (returncode, the certificates the server
    sent as subjects, output). The client authenticates with `client`."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts",
            "-servername", FQDN]
    if client:
        args += ["-cert", client.cert_path, "-key", client.key_path]
    if cafile:
        args += ["-CAfile", cafile, "-verify_return_error", "-verify_hostname", FQDN]
    r = subprocess.run(args, input="", capture_output=True, text=True, timeout=timeout)
    chain = re.findall(r"^ \d+ s:(.*)$", r.stdout, re.M)
    return r.returncode, chain, r.stdout + r.stderr


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """One PKI for the module: an enterprise root with an issuing CA, a root
    nobody trusts, CAs with odd validity, gateway certificates."""
    class W:
        pass
    w = W()
    p = w.p = PKI(tmp_path_factory.mktemp("pki"))
    w.root = p.ca("root", "PKI Test Root")
    w.inter = p.ca("inter", "PKI Test Issuing CA", issuer=w.root)
    w.stranger = p.ca("stranger", "Nobody Trusts This Root")
    w.inter_expired = p.ca("interx", "PKI Expired Issuing CA", issuer=w.root,
                           not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    w.inter_expiring = p.ca("intere", "PKI Expiring Issuing CA", issuer=w.root,
                            not_after=NOW + 10 * DAY)
    w.gw = p.leaf("gw", w.root, cn=GW, dns=[GW])
    return w


def serve(o):
    o.proc = o.serve()
    return o


def stop(o):
    assert o.stop(o.proc) == 0, o.log()[-3000:]


# ================================================== 2. what "valid" means

def test_selection_table(w, tmp_path):
    """Every kind of personal certificate, with the rank and the reason
    `cert select` gives it (and `cert show`)."""
    p = w.p
    o = new_store(tmp_path)
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    later = NOW + 365 * DAY
    rows = {
        # trusted CA-issued, serverAuth+clientAuth: first
        "trusted": p.leaf("t-trusted", w.inter, cn=FQDN, dns=[FQDN], not_after=later),
        # the same dates and kind: a tie, ordered by SHA-256
        "tie": p.leaf("t-tie", w.inter, cn=FQDN, dns=[FQDN], not_after=later),
        # both EKUs beat serverAuth only, even when that one lasts longer
        "serveronly": p.leaf("t-serveronly", w.inter, cn=FQDN, dns=[FQDN], eku=("server",),
                             not_after=NOW + 700 * DAY),
        # expires earlier
        "shorter": p.leaf("t-shorter", w.inter, cn=FQDN, dns=[FQDN], not_after=NOW + 100 * DAY),
        # an intermediate that expires soon: still valid (watched, below)
        "expiring_inter": p.leaf("t-expiring", w.inter_expiring, cn=FQDN, dns=[FQDN],
                                 not_after=NOW + 90 * DAY),
        # issued by a root nobody here trusts: not "PKI or commercial"
        "untrusted": p.leaf("t-untrusted", w.stranger, cn=FQDN, dns=[FQDN],
                            not_after=NOW + 900 * DAY),
        # an issuer name no certificate carries
        "invented": p.leaf("t-invented", (x509.Name([x509.NameAttribute(
            NameOID.COMMON_NAME, "Invented Issuing CA")]), ec.generate_private_key(
            ec.SECP256R1())), cn=FQDN, dns=[FQDN], not_after=NOW + 900 * DAY),
        # an intermediate that has expired
        "expired_inter": p.leaf("t-expiredinter", w.inter_expired, cn=FQDN, dns=[FQDN],
                                not_before=NOW - 300 * DAY, not_after=NOW + 900 * DAY),
        # a certificate for another name
        "wrong_fqdn": p.leaf("t-wrongname", w.inter, cn="other.pki.example",
                             dns=["other.pki.example"], not_after=NOW + 900 * DAY),
    }
    for r in rows.values():
        o.ok("cert", "import", r.both_path, "--no-reload")
    ss = json.loads(o.ok("--json", "cert", "new-selfsigned", "--no-reload").stdout)
    # a CA certificate with its key, put there by hand (import refuses it)
    ca_key = w.p.ca("t-ca", "Some CA With Its Key")
    der = ca_key.cert.public_bytes(serialization.Encoding.DER)
    ca_sha256 = ca_key.cert.fingerprint(hashes.SHA256()).hex()
    pdir = os.path.join(o.data, "certs", "personal")
    write(os.path.join(pdir, ca_sha256 + ".pem"), pem_of(ca_key.cert))
    write(os.path.join(pdir, ca_sha256 + ".key"), key_pem(ca_key.key))
    del der

    sel = selection(o)
    c = by_sha1(sel)
    rank = {name: c[sha1(r)]["rank"] for name, r in rows.items()}
    verdict = {name: c[sha1(r)]["verdict"] for name, r in rows.items()}
    detail = {name: c[sha1(r)]["detail"] for name, r in rows.items()}
    tie_first = min(("trusted", "tie"),
                    key=lambda n: rows[n].cert.fingerprint(hashes.SHA256()).hex())
    tie_second = "tie" if tie_first == "trusted" else "trusted"
    assert sel["chosen"] == sha1(rows[tie_first])
    assert verdict[tie_second] == "valid, ranked lower"
    assert "identical dates and kind: ordered by SHA-256" in detail[tie_second]
    # the valid ones, in order
    order = [tie_first, tie_second, "shorter", "expiring_inter", "serveronly"]
    assert [rank[n] for n in order] == sorted(rank[n] for n in order) == [1, 2, 3, 4, 5], rank
    assert "expires earlier" in detail["expiring_inter"]
    assert "expires earlier" in detail["shorter"]
    assert "lacks clientAuth" in detail["serveronly"]
    # self-signed after every CA-issued one, with the reason
    assert c[ss["sha1"]]["rank"] == 6 and c[ss["sha1"]]["verdict"] == "valid, ranked lower"
    assert "self-signed, the chosen one is CA-issued" in c[ss["sha1"]]["detail"]
    # the rest: not valid, each with its reason
    assert verdict["untrusted"] == "its chain does not reach a trusted root"
    assert "Nobody Trusts This Root" in detail["untrusted"]
    assert verdict["invented"] == "its chain does not reach a trusted root"
    assert "Invented Issuing CA" in detail["invented"]
    assert verdict["expired_inter"] == "a certificate of its chain is not valid"
    assert "PKI Expired Issuing CA" in detail["expired_inter"] and "expired" in detail[
        "expired_inter"]
    assert verdict["wrong_fqdn"] == "SAN lacks this server's FQDN"
    assert FQDN in detail["wrong_fqdn"]
    ca_sha1 = sha1(ca_key)
    assert c[ca_sha1]["verdict"] == "a CA certificate, not a server certificate"
    # every invalid one ranks after every valid one
    assert min(rank[n] for n in ("untrusted", "invented", "expired_inter", "wrong_fqdn")) > 6
    # what people read says the same
    human = o.ok("cert", "select", "--no-reload").stdout
    assert human.startswith("chosen " + sel["chosen"])
    assert f"lost   {sha1(rows['untrusted'])}" in human and "Nobody Trusts This Root" in human
    show = o.ok("cert", "show", sha1(rows["invented"])).stdout
    assert "unusable     its chain does not reach a trusted root" in show
    assert "Invented Issuing CA" in show


def test_selection_checks_the_chains_purpose_and_the_key_usage(w, tmp_path):
    """Selection checks what a gateway checks of a TLS server's chain: an
    intermediate whose EKU lacks serverAuth disqualifies the chain, and a
    certificate whose keyUsage lacks digitalSignature (TLS signs with the
    key) is not chosen — each with the reason, in `cert select`, `cert
    show` and event 1128 at start; the valid one is presented (s_client)."""
    p = w.p
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    client_ca = p.ca("p-clientca", "PKI Client-Only Issuing CA", issuer=w.root,
                     eku=("client",))
    server_ca = p.ca("p-serverca", "PKI Server Issuing CA", issuer=w.root,
                     eku=("server", "client"))
    far = NOW + 900 * DAY
    rows = {
        # would rank first (latest expiry): its intermediate is for clientAuth only
        "client_ca": p.leaf("p-leaf-clientca", client_ca, cn=FQDN, dns=[FQDN], not_after=far),
        # keyEncipherment only (RSA): no digitalSignature
        "kenc": p.leaf("p-kenc", w.inter, cn=FQDN, dns=[FQDN], key="rsa2048",
                       key_usage=("key_encipherment",), not_after=far),
        # keyAgreement only (EC)
        "kagree": p.leaf("p-kagree", w.inter, cn=FQDN, dns=[FQDN],
                         key_usage=("key_agreement",), not_after=far),
        # what TLS needs: chosen
        "good": p.leaf("p-good", server_ca, cn=FQDN, dns=[FQDN],
                       key_usage=("digital_signature", "key_encipherment"),
                       not_after=NOW + 300 * DAY),
        # an RSA one with digitalSignature and keyEncipherment: valid, ranked lower
        "rsa_ok": p.leaf("p-rsaok", w.inter, cn=FQDN, dns=[FQDN], key="rsa2048",
                         key_usage=("digital_signature", "key_encipherment"),
                         not_after=NOW + 200 * DAY),
    }
    for r in rows.values():
        o.ok("cert", "import", r.both_path, "--no-reload")
    sel = selection(o)
    c = by_sha1(sel)
    assert sel["chosen"] == sha1(rows["good"]), sel
    assert c[sha1(rows["rsa_ok"])]["verdict"] == "valid, ranked lower"
    v = c[sha1(rows["client_ca"])]
    assert v["verdict"] == "a CA of its chain is not for serverAuth", v
    assert "PKI Client-Only Issuing CA" in v["detail"] and "clientAuth" in v["detail"], v
    for k in ("kenc", "kagree"):
        v = c[sha1(rows[k])]
        assert v["verdict"] == "keyUsage does not allow TLS (no digitalSignature)", v
        assert "digitalSignature" in v["detail"]
    assert "its keyUsage is keyEncipherment:" in c[sha1(rows["kenc"])]["detail"]
    assert "its keyUsage is keyAgreement:" in c[sha1(rows["kagree"])]["detail"]
    # ranked after every valid one
    valid_max = max(c[sha1(rows[k])]["rank"] for k in ("good", "rsa_ok"))
    assert min(c[sha1(rows[k])]["rank"] for k in ("client_ca", "kenc", "kagree")) > valid_max
    show = o.ok("cert", "show", sha1(rows["kenc"])).stdout
    assert "keyUsage does not allow TLS" in show, show
    human = o.ok("cert", "select", "--no-reload").stdout
    assert "PKI Client-Only Issuing CA" in human
    serve(o)
    try:
        ev = wait_for(lambda: [e for e in o.events("--id", "1128")
                               if e["fields"].get("sha1") == sha1(rows["client_ca"])])
        assert ev and "not for serverAuth" in ev[0]["fields"]["reason"], ev
        ev = wait_for(lambda: [e for e in o.events("--id", "1128")
                               if e["fields"].get("sha1") == sha1(rows["kenc"])])
        assert ev and "digitalSignature" in ev[0]["fields"]["reason"], ev
        rc, chain, out = s_client(o.tls, client=w.gw, cafile=w.root.cert_path)
        assert chain and "PKI Server Issuing CA" in chain[1], out
    finally:
        stop(o)


def test_too_weak_says_which_key_or_signature(w, tmp_path):
    """At tls_security_level 2 a certificate the TLS context refuses says
    what is weak and where: its own RSA-1024 key, its SHA-1 signature, or
    the RSA-1024 key of the intermediate it is sent with."""
    o = new_store(tmp_path)
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    small = w.p.leaf("weak-key", w.root, cn=FQDN, dns=[FQDN], key="rsa1024")
    sha1sig = w.p.leaf("weak-sig", w.root, cn=FQDN, dns=[FQDN], digest=hashes.SHA1())
    weak_ca = w.p.ca("weak-ca", "PKI Weak Issuing CA", issuer=w.root, key="rsa1024")
    under = w.p.leaf("weak-under", weak_ca, cn=FQDN, dns=[FQDN])
    for leaf in (small, sha1sig, under):
        o.ok("cert", "import", leaf.both_path, "--no-reload")
    r = o.run("--json", "cert", "select", "--no-reload")
    assert r.returncode == 1  # nothing usable
    got = by_sha1(json.loads(r.stdout))
    verdict = "key or signature too weak for tls_security_level"
    assert got[sha1(small)]["verdict"] == verdict
    assert got[sha1(small)]["detail"] == f"the RSA 1024 key of O=openum tests,CN={FQDN}"
    assert got[sha1(sha1sig)]["verdict"] == verdict
    assert got[sha1(sha1sig)]["detail"].startswith(f"the signature of O=openum tests,CN={FQDN}")
    assert "sha1" in got[sha1(sha1sig)]["detail"].lower()
    assert got[sha1(under)]["verdict"] == verdict
    assert got[sha1(under)]["detail"] == \
        "the RSA 1024 key of O=openum tests,CN=PKI Weak Issuing CA"


def test_generated_when_nothing_is_valid_and_untrusted_ca_never_outranks(w, tmp_path):
    """Only a certificate from a CA nobody here trusts: a secured start
    generates a self-signed one (1122) instead of presenting it, and says
    why it was not taken (1128)."""
    o = new_store(tmp_path)
    bad = w.p.leaf("g-untrusted", w.stranger, cn=FQDN, dns=[FQDN], not_after=NOW + 900 * DAY)
    o.ok("cert", "import", bad.both_path, "--no-reload")
    serve(o)
    try:
        st = o.json("status")
        assert st["certificate"]["sha1"] != sha1(bad)
        assert st["certificate"]["kind"] == "self-signed"
        assert wait_for(lambda: o.events("--id", "1122"))
        ev = wait_for(lambda: [e for e in o.events("--id", "1128")
                               if e["fields"]["sha1"] == sha1(bad)])
        assert ev and "Nobody Trusts This Root" in ev[0]["fields"]["detail"]
        # a valid self-signed one is never outranked by it either
        sel = selection(o)
        assert sel["chosen"] == st["certificate"]["sha1"]
    finally:
        stop(o)


def test_ca_certificate_with_its_key_is_refused(w, tmp_path):
    o = new_store(tmp_path)
    personal = os.path.join(o.data, "certs", "personal")
    r = o.run("cert", "import", w.inter.both_path)
    assert r.returncode == 1
    assert "CA certificate" in r.stderr and "does not belong on a UM server" in r.stderr
    assert not os.path.isdir(personal) or not os.listdir(personal)
    # a keyCertSign-only CA (no basic constraints CA:TRUE) is a CA too
    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, FQDN)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(k.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + 100 * DAY)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(FQDN)]), critical=False)
            .sign(k, hashes.SHA256()))
    f = write(tmp_path / "kcs.pem", pem_of(cert) + key_pem(k))
    r = o.run("cert", "import", f)
    assert r.returncode == 1 and "keyCertSign" in r.stderr


def test_wrong_fqdn_only_as_last_resort_with_error(w, tmp_path):
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    other = w.p.leaf("wf-other", w.root, cn="other.pki.example", dns=["other.pki.example"])
    o.ok("cert", "import", other.both_path, "--no-reload")
    sel = selection(o)
    assert sel["chosen"] == sha1(other) and sel["wrong_name"] is True
    assert "ERROR: its SAN lacks" in o.ok("cert", "select", "--no-reload").stdout
    serve(o)
    try:
        ev = wait_for(lambda: [e for e in o.events("--id", "1128") if e["level"] == "error"])
        assert ev and ev[0]["fields"]["fqdn"] == FQDN
        # a right one arrives: it wins at once
        right = w.p.leaf("wf-right", w.root, cn=FQDN, dns=[FQDN], not_after=NOW + 30 * DAY)
        o.ok("cert", "import", right.both_path)
        assert o.json("status")["certificate"]["sha1"] == sha1(right)
    finally:
        stop(o)


# ================================================== 3. chains

def test_chain_stored_and_sent_in_issuer_order(w, tmp_path):
    """A file with the root, then the leaf's key, the issuing CA, an
    unrelated certificate and the leaf, in that order: the chain is stored
    leaf, issuing CA, root; the stranger is dropped with a note; the server
    sends leaf then issuing CA (no root) — openssl s_client -showcerts."""
    leaf = w.p.leaf("o-leaf", w.inter, cn=FQDN, dns=[FQDN])
    mixed = write(tmp_path / "mixed.pem", pem_of(w.root.cert) + key_pem(leaf.key) +
                  pem_of(w.inter.cert, w.stranger.cert, leaf.cert))
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    r = o.ok("cert", "import", mixed, "--no-reload")
    assert "chain: 2 certificate(s) stored in issuer order" in r.stdout
    assert "dropped" in r.stdout and "Nobody Trusts This Root" in r.stdout
    show = json.loads(o.ok("--json", "cert", "show", sha1(leaf)).stdout)
    assert [("Issuing" in s, "Root" in s) for s in show["chain"]] == [(True, False),
                                                                     (False, True)]
    assert len(show["sends"]) == 1 and "PKI Test Issuing CA" in show["sends"][0]
    serve(o)
    try:
        rc, chain, out = s_client(o.tls, client=w.gw, cafile=w.root.cert_path)
        assert len(chain) == 2, out
        assert FQDN in chain[0] and "PKI Test Issuing CA" in chain[1]
        assert "Verify return code: 0 (ok)" in out
    finally:
        stop(o)


def test_missing_intermediate_completed_from_trusted_store(w, tmp_path):
    """The issued certificate alone (no chain): the issuing CA, when it is in
    the trusted store, completes the chain the server sends (today only the
    leaf went out and gateways failed with "unable to verify the first
    certificate")."""
    leaf = w.p.leaf("m-leaf", w.inter, cn=FQDN, dns=[FQDN])
    alone = write(tmp_path / "alone.pem", pem_of(leaf.cert) + key_pem(leaf.key))
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    # without the issuing CA anywhere: warned at import and select
    r = o.ok("cert", "import", alone, "--no-reload")
    assert "warning: the server cannot use it" in r.stdout
    assert "PKI Test Issuing CA" in r.stdout
    r = o.run("cert", "select", "--no-reload")
    assert r.returncode == 1 and "PKI Test Issuing CA" in r.stdout
    # ... and at start
    r = o.run("serve", "--data", o.data, timeout=30)
    assert r.returncode != 0 and "no usable certificate" in r.stderr
    assert any(e["fields"]["sha1"] == sha1(leaf) for e in o.events("--id", "1128"))
    # the issuing CA in the trusted store: completed, and said so
    inter_only = write(tmp_path / "inter.pem", pem_of(w.inter.cert))
    o.ok("cert", "import", inter_only, "--trusted", "--yes", "--no-reload")
    sel = selection(o)
    assert sel["chosen"] == sha1(leaf)
    assert len(sel["sends"]) == 1 and "PKI Test Issuing CA" in sel["sends"][0]
    assert "chain completed from the trusted store" in o.ok("cert", "select",
                                                            "--no-reload").stdout
    serve(o)
    try:
        rc, chain, out = s_client(o.tls, client=w.gw, cafile=w.root.cert_path)
        assert len(chain) == 2 and "PKI Test Issuing CA" in chain[1], out
        assert "Verify return code: 0 (ok)" in out
        # Python's ssl, trusting only the root, verifies the server too
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(w.root.cert_path)
        ctx.load_cert_chain(w.gw.cert_path, w.gw.key_path)
        with ctx.wrap_socket(connect(o.tls), server_hostname=FQDN) as s:
            assert s.getpeercert()["subjectAltName"] == (("DNS", FQDN),)
    finally:
        stop(o)


def test_reimport_without_chain_keeps_it_and_reissue_pairs_with_stored_key(w, tmp_path):
    """The enterprise PKI's steps, then the CA renews the same CSR: the new
    certificate, imported alone, is paired with the key already stored; the
    old one re-imported without its chain keeps the chain."""
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    csr = tmp_path / "um.csr"
    o.ok("cert", "request", "--fqdn", FQDN, "--out", str(csr))
    req = x509.load_pem_x509_csr(csr.read_bytes())
    first = w.p.leaf("r-first", w.inter, cn=FQDN, dns=[FQDN], pubkey=req.public_key(),
                     not_after=NOW + 200 * DAY)
    r = o.ok("cert", "import", first.cert_path, "--no-reload")  # with its chain
    assert "matched to the key of the request" in r.stdout
    assert "chain: 2 certificate(s)" in r.stdout
    r = o.ok("cert", "import", first.alone_path, "--no-reload")
    assert "the chain stored before is kept" in r.stdout
    assert len(json.loads(o.ok("--json", "cert", "show", sha1(first)).stdout)["chain"]) == 2
    # renewed for the same key, imported alone
    renewed = w.p.leaf("r-renewed", w.inter, cn=FQDN, dns=[FQDN], pubkey=req.public_key(),
                       not_after=NOW + 400 * DAY)
    r = o.ok("cert", "import", renewed.alone_path, "--no-reload")
    assert "paired with the private key already stored" in r.stdout
    c = json.loads(o.ok("--json", "cert", "show", sha1(renewed)).stdout)
    assert c["has_key"] is True
    o.ok("cert", "import", w.inter.alone_path, "--trusted", "--yes", "--no-reload")
    assert selection(o)["chosen"] == sha1(renewed)


# ================================================== 4. pins

def test_pin_prefix_resolved_to_full_thumbprint(w, tmp_path):
    o = new_store(tmp_path)
    a = json.loads(o.ok("--json", "cert", "new-selfsigned", "--no-reload").stdout)
    o.ok("server", "set", "--certificate", a["sha1"][:6].lower(), "--no-reload")
    assert o.json("server", "show")["certificate"] == a["sha1"]


def test_prefix_pin_never_turns_ambiguous_nor_fails_a_reload_or_start(w, tmp_path):
    """A pin kept as a short prefix (older versions kept what was typed):
    an import turns it into the full thumbprint first; and where it already
    names several certificates, a start and a reload still work (the
    automatic order, 1125 at error level naming the cause)."""
    o = new_store(tmp_path)
    made = []
    while True:
        made.append(json.loads(o.ok("--json", "cert", "new-selfsigned", "--no-reload")
                               .stdout)["sha1"])
        firsts = [m[0] for m in made]
        dup = [f for f in set(firsts) if firsts.count(f) > 1]
        if dup:
            break
        assert len(made) < 20
    o.ok("server", "set", "--certificate", made[0], "--no-reload")  # the row exists
    db = sqlite3.connect(os.path.join(o.data, "openum.db"))
    db.execute("UPDATE servers SET pinned_certificate = ? WHERE id = 1", (dup[0],))
    db.commit()
    db.close()
    sel = selection(o)
    assert sel["chosen"] in made  # the automatic order: no failure
    serve(o)
    try:
        assert o.json("status")["certificate"]["sha1"] in made
        ev = wait_for(lambda: o.events("--id", "1125"))
        assert "prefix" in ev[0]["fields"]["reason"] and ev[0]["level"] == "error"
        o.ok("reload")
    finally:
        stop(o)
    # a prefix that names one certificate becomes the full thumbprint at
    # the next import, before anything is added
    one = [m for m in made if m[0] not in dup][0] if any(m[0] not in dup for m in made) \
        else None
    if one:
        db = sqlite3.connect(os.path.join(o.data, "openum.db"))
        db.execute("UPDATE servers SET pinned_certificate = ? WHERE id = 1", (one[:4],))
        db.commit()
        db.close()
        extra = w.p.leaf("pin-extra", w.root, cn=FQDN, dns=[FQDN])
        r = o.ok("cert", "import", extra.both_path, "--no-reload")
        assert "is now the full thumbprint" in r.stderr
        assert o.json("server", "show")["certificate"] == one


def test_a_new_certificate_gateways_do_not_trust_yet_is_warned_about(w, tmp_path):
    """R7: a newly added certificate the gateways do not trust yet must not
    be taken by surprise. When it outranks the one in use — a second
    self-signed one, or one issued under another root — the command says
    that gateways will refuse it and how to keep the current one (the pin);
    a renewal under the same root says nothing."""
    o = new_store(tmp_path)
    o.ok("cert", "new-selfsigned", "--fqdn", FQDN, "--no-reload")
    first = o.json("cert", "list", "--store", "personal")[0]["sha1"]
    r = o.ok("cert", "new-selfsigned", "--fqdn", FQDN, "--days", "800", "--no-reload")
    second = [c["sha1"] for c in o.json("cert", "list", "--store", "personal")
              if c["sha1"] != first][0]
    assert (f"gateways that trust the certificate in use ({first}) refuse {second} until "
            "it is in their trusted root store" in r.stdout), r.stdout
    assert f"openum server set --certificate {first}" in r.stdout
    # pinned as advised: the next one changes nothing, and says nothing
    o.ok("server", "set", "--certificate", second, "--no-reload")
    r = o.ok("cert", "new-selfsigned", "--fqdn", FQDN, "--days", "900", "--no-reload")
    assert "refuse" not in r.stdout and selection(o)["chosen"] == second
    o.ok("server", "set", "--certificate", "auto", "--no-reload")
    # CA-issued: a root the gateways do not know, then a renewal under it
    other = w.p.ca("other-root", "PKI Other Root")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("cert", "import", other.cert_path, "--trusted", "--yes", "--no-reload")
    a = w.p.leaf("swap-a", w.root, cn=FQDN, dns=[FQDN], not_after=NOW + 1000 * DAY)
    o.ok("cert", "import", a.both_path, "--no-reload")
    assert selection(o)["chosen"] == sha1(a)
    b = w.p.leaf("swap-b", other, cn=FQDN, dns=[FQDN], not_after=NOW + 1100 * DAY)
    r = o.ok("cert", "import", b.both_path, "--no-reload")
    assert f"refuse {sha1(b)} until they trust" in r.stdout and "PKI Other Root" in r.stdout
    assert "PKI Test Root" in r.stdout and f"--certificate {sha1(a)}" in r.stdout
    renewal = w.p.leaf("swap-b2", other, cn=FQDN, dns=[FQDN], not_after=NOW + 1200 * DAY)
    r = o.ok("cert", "import", renewal.both_path, "--no-reload")
    assert "it is now the certificate the server uses" in r.stdout
    assert "refuse" not in r.stdout, r.stdout


def test_start_failure_names_the_real_cause(w, tmp_path):
    o = new_store(tmp_path, "auto_selfsigned = 1\n")
    a = json.loads(o.ok("--json", "cert", "new-selfsigned", "--no-reload").stdout)
    o.ok("server", "set", "--certificate", a["sha1"], "--no-reload")
    for f in os.listdir(os.path.join(o.data, "certs", "personal")):
        os.unlink(os.path.join(o.data, "certs", "personal", f))
    r = o.run("serve", "--data", o.data, timeout=30)
    assert r.returncode != 0
    assert "pinned certificate" in r.stderr and "auto_selfsigned = 1" not in r.stderr
    o2 = new_store(tmp_path / "two", "auto_selfsigned = 0\n")
    r = o2.run("serve", "--data", o2.data, timeout=30)
    assert r.returncode != 0 and "auto_selfsigned = 0" in r.stderr


# ================================================== 5. trust removed

def test_trust_removal_takes_effect_like_an_addition(w, tmp_path):
    """`cert remove` of a trusted root reloads a running server: the removed
    CA's gateway is refused at once (its open connection closed, a new one
    refused) and 1180 names what changed; a CRL removed reloads too."""
    o = new_store(tmp_path, "auto_selfsigned = 1\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    crl = w.p.crl("rm-root", w.root, [])
    o.ok("cert", "import", crl, "--trusted", "--yes", "--no-reload")
    o.ok("dialplan", "new", "dp", "--digits", "3", "--security", "sipsecured", "--no-reload")
    o.ok("gateway", "new", "gw1", "--address", "127.0.0.5", "--tls-name", GW, "--dialplan",
         "dp", "--no-reload")
    o.ok("server", "set", "--dialplans", "dp", "--no-reload")
    serve(o)
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(w.gw.cert_path, w.gw.key_path)
        s = ctx.wrap_socket(connect(o.tls, src="127.0.0.5"), server_hostname=FQDN)
        s.sendall(options(port=o.tls, src="127.0.0.5"))
        assert s.recv(65536).startswith(b"SIP/2.0 200")
        crl_sha1 = o.json("cert", "list", "--store", "crl")[0]["sha1"]
        r = o.ok("cert", "remove", crl_sha1, "--yes")
        assert "running server reloaded" in r.stdout
        ev = wait_for(lambda: [e for e in o.events("--id", "1180")
                               if "CRL of" in e["fields"]["changes"]])
        assert "trusted - CRL of" in ev[-1]["fields"]["changes"]
        r = o.ok("cert", "remove", sha1(w.root))
        assert "running server reloaded" in r.stdout
        ev = wait_for(lambda: [e for e in o.events("--id", "1180")
                               if "PKI Test Root" in e["fields"]["changes"]])
        assert "trusted - " in ev[-1]["fields"]["changes"]
        # the open connection is gone, a new one refused
        s.settimeout(5)
        try:
            s.sendall(options(port=o.tls, src="127.0.0.5"))
            gone = s.recv(65536) == b""
        except OSError:
            gone = True
        assert gone
        s.close()
        with pytest.raises((OSError, ssl.SSLError)):
            s2 = ctx.wrap_socket(connect(o.tls, src="127.0.0.5"), server_hostname=FQDN)
            s2.sendall(options(port=o.tls, src="127.0.0.5"))
            if not s2.recv(65536):
                raise OSError("closed")
    finally:
        stop(o)


def test_trust_change_that_takes_the_certificate_in_use_away_is_said(w, tmp_path):
    """A CRL of the root that revokes the issuing CA of the server's own
    certificate, or the root removed, makes the running server present
    another certificate: the command that made the change says so (which
    one, and why the old one cannot be used), and the server does what it
    said."""
    o = new_store(tmp_path, "auto_selfsigned = 1\n")
    issued = w.p.leaf("um-inter", w.inter, cn=FQDN, dns=[FQDN])
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("cert", "import", issued.both_path, "--no-reload")
    o.ok("cert", "new-selfsigned", "--fqdn", FQDN, "--no-reload")
    mine = [c["sha1"] for c in o.json("cert", "list", "--store", "personal")
            if c["sha1"] != sha1(issued)][0]
    serve(o)
    try:
        assert o.json("status")["certificate"]["sha1"] == sha1(issued)
        crl = w.p.crl("rev-inter", w.root, [w.inter.serial])
        r = o.ok("cert", "import", crl, "--trusted", "--yes")
        assert (f"the certificate in use {sha1(issued)} can no longer be used: revoked"
                in r.stdout), r.stdout
        assert "PKI Test Issuing CA" in r.stdout
        assert f"the server will present {mine} instead (self-signed" in r.stdout
        assert wait_for(lambda: o.json("status")["certificate"]["sha1"] == mine)
        # the CRL removed: the CA-issued one is back
        crl_sha1 = o.json("cert", "list", "--store", "crl")[0]["sha1"]
        r = o.ok("cert", "remove", crl_sha1, "--yes")
        assert f"the server will present {sha1(issued)} now (CA-issued)" in r.stdout, r.stdout
        assert wait_for(lambda: o.json("status")["certificate"]["sha1"] == sha1(issued))
        # the root removed: its chain reaches no trusted root any more
        r = o.ok("cert", "remove", sha1(w.root))
        assert (f"the certificate in use {sha1(issued)} can no longer be used: its chain "
                "does not reach a trusted root" in r.stdout), r.stdout
        assert f"the server will present {mine} instead" in r.stdout
        assert wait_for(lambda: o.json("status")["certificate"]["sha1"] == mine)
        # a trust change that leaves the certificate in use alone says nothing
        r = o.ok("cert", "import", w.stranger.cert_path, "--trusted", "--yes")
        assert "certificate in use" not in r.stdout and "will present" not in r.stdout
    finally:
        stop(o)


def test_trusting_a_device_certificate_that_is_a_ca_is_warned_about(w, tmp_path):
    """The seed's self-signed route trusts each gateway's own certificate.
    One made like `openssl req -x509` makes it (CA:TRUE) lets whoever holds
    its key issue certificates openum accepts for any gateway's name: the
    import says so before anything is trusted. A CA whose name is no host
    name, and a device certificate with CA:FALSE, get no such warning."""
    o = new_store(tmp_path)
    device = w.p.ca("device-ca", "gw9.pki.example")  # self-signed, CA:TRUE, a host name
    r = o.run("cert", "import", device.cert_path, "--trusted")
    assert r.returncode == 1  # nothing trusted without --yes
    assert "device's own certificate (it names gw9.pki.example)" in r.stdout, r.stdout
    assert "CA:FALSE" in r.stdout
    r = o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    assert "device's own certificate" not in r.stdout
    o.ok("cert", "new-selfsigned", "--fqdn", "gw8.pki.example", "--no-reload")
    mine = [c for c in o.json("cert", "list", "--store", "personal")][0]["sha1"]
    pem = tmp_path / "gw8.pem"
    o.ok("cert", "export", mine, "--out", str(pem))
    r = o.ok("cert", "import", str(pem), "--trusted", "--yes", "--no-reload")
    assert "device's own certificate" not in r.stdout, r.stdout


def test_selection_takes_a_gateways_own_certificate_for_itself_only(w, tmp_path):
    """The rule of the TLS module holds for this server's own chain too: a
    certificate issued with the key of a gateway's self-signed certificate
    (trusted for that gateway alone) is not "CA-issued": it does not reach a
    trusted root, and the reason says why."""
    o = new_store(tmp_path)
    dev = w.p.device("sel-dev", "gw7.pki.example", san=False, key_cert_sign=True)
    o.ok("cert", "import", dev.cert_path, "--trusted", "--yes", "--no-reload")
    mine = w.p.leaf("sel-dev-leaf", dev, cn=FQDN, dns=[FQDN], not_after=NOW + 900 * DAY)
    o.ok("cert", "import", mine.both_path, "--no-reload")
    ss = json.loads(o.ok("--json", "cert", "new-selfsigned", "--no-reload").stdout)
    sel = selection(o)
    c = by_sha1(sel)
    assert sel["chosen"] == ss["sha1"], sel
    v = c[sha1(mine)]
    assert v["verdict"] == "its chain does not reach a trusted root", v
    assert "gateway's own certificate" in v["detail"] and "gw7.pki.example" in v["detail"], v


# ================================================== 6. CRLs

def test_crls_listed_removed_and_watched(w, tmp_path):
    o = new_store(tmp_path)
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    now = datetime.datetime.now(datetime.timezone.utc)
    # a 4-day CRL with a day left: its next update is near
    near = w.p.crl("near", w.root, [w.gw.serial], last_update=now - 3 * DAY,
                   next_update=now + DAY)
    o.ok("cert", "import", near, "--trusted", "--yes", "--no-reload")
    crls = o.json("cert", "list", "--store", "crl")
    assert len(crls) == 1 and crls[0]["revoked"] == 1 and crls[0]["believed"] is True
    human = o.ok("cert", "list", "--store", "crl").stdout
    assert "PKI Test Root" in human and "next update" in human
    trusted = o.ok("cert", "show", sha1(w.root)).stdout
    assert "CRL          " + crls[0]["sha1"] in trusted
    serve(o)
    try:
        ev = wait_for(lambda: o.events("--id", "1126"))
        assert ev and "PKI Test Root" in ev[0]["fields"]["issuer"]
        # one about to go stale, then stale: 1127 at the next reload
        soon = w.p.crl("soon", w.root, [], last_update=now - datetime.timedelta(seconds=5),
                       next_update=datetime.datetime.now(datetime.timezone.utc) +
                       datetime.timedelta(seconds=4))
        o.ok("cert", "import", soon, "--trusted", "--yes")
        deadline = time.time() + 30
        while datetime.datetime.now(datetime.timezone.utc) < now + datetime.timedelta(
                seconds=6):
            assert time.time() < deadline
            time.sleep(0.2)
        o.ok("reload")
        ev = wait_for(lambda: o.events("--id", "1127"))
        assert ev and ev[0]["level"] == "error"
        for c in o.json("cert", "list", "--store", "crl"):
            o.ok("cert", "remove", c["sha1"], "--yes")
        assert o.json("cert", "list", "--store", "crl") == []
    finally:
        stop(o)


def gw_options(o, w, src="127.0.0.5"):
    """OPTIONS over mutual TLS as gateway gw1 (Python ssl): the status, or
    None when refused."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(w.gw.cert_path, w.gw.key_path)
    try:
        s = ctx.wrap_socket(connect(o.tls, src=src), server_hostname=FQDN)
        s.settimeout(5)
        s.sendall(options(port=o.tls, src=src))
        data = s.recv(65536)
        s.close()
    except (OSError, ssl.SSLError):
        return None
    return int(data.split(b" ", 2)[1]) if data.startswith(b"SIP/2.0 ") else None


def at_terminal(o, typed, *args):
    """openum with a terminal on stdin and stderr (a pty) where `typed` was
    typed; stdout captured."""
    import pty
    m, sl = pty.openpty()
    os.write(m, typed)
    e = {k: v for k, v in os.environ.items() if k not in ("OPENUM_DATA", "OPENUM_CONFIG")}
    try:
        return subprocess.run([BIN, *args, "--data", o.data], stdin=sl, stdout=subprocess.PIPE,
                              stderr=sl, env=e, timeout=60)
    finally:
        os.close(sl)
        os.close(m)


def test_removing_a_crl_is_confirmed_and_takes_effect_at_once(w, tmp_path):
    """Removing a CRL widens trust (what it revoked is accepted again): like
    trusting a root it is shown and needs --yes (or a yes typed at the
    terminal); then a running server reloads, and the gateway it revoked gets
    in at once."""
    o = new_store(tmp_path, "auto_selfsigned = 1\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    crl = w.p.crl("rm-revoking", w.root, [w.gw.serial])
    o.ok("cert", "import", crl, "--trusted", "--yes", "--no-reload")
    o.ok("dialplan", "new", "dp", "--digits", "3", "--security", "sipsecured", "--no-reload")
    o.ok("gateway", "new", "gw1", "--address", "127.0.0.5", "--tls-name", GW, "--dialplan",
         "dp", "--no-reload")
    o.ok("server", "set", "--dialplans", "dp", "--no-reload")
    serve(o)
    try:
        assert gw_options(o, w) is None  # revoked
        crl_sha1 = o.json("cert", "list", "--store", "crl")[0]["sha1"]
        r = o.run("cert", "remove", crl_sha1)  # no terminal: --yes is needed
        assert r.returncode == 1, r.stdout + r.stderr
        assert "would remove the revocation list" in r.stdout and "PKI Test Root" in r.stdout
        assert "revoked      1" in r.stdout and "accepted again" in r.stdout
        assert "--yes" in r.stderr and "nothing removed" in r.stderr
        assert len(o.json("cert", "list", "--store", "crl")) == 1
        assert gw_options(o, w, src="127.0.0.6") is None
        # at a terminal it asks: "n" removes nothing, "y" removes it
        assert at_terminal(o, b"n\n", "cert", "remove", crl_sha1).returncode == 1
        assert len(o.json("cert", "list", "--store", "crl")) == 1
        r = at_terminal(o, b"y\n", "cert", "remove", crl_sha1)
        assert r.returncode == 0 and b"running server reloaded" in r.stdout, r.stdout
        assert o.json("cert", "list", "--store", "crl") == []
        ev = wait_for(lambda: [e for e in o.events("--id", "1180")
                               if "trusted - CRL of" in e["fields"]["changes"]])
        assert ev
        assert gw_options(o, w, src="127.0.0.7") == 200
    finally:
        stop(o)


def test_newer_crl_replaces_older_and_older_is_refused(w, tmp_path):
    """A CA's newest CRL is the one in force (RFC 5280 §5): importing it
    replaces the older one (which would otherwise be reported stale every
    day), and importing an older one again is refused (it would hide the
    revocations made since). A store that still holds a replaced, stale
    list (written by an older version) raises no 1127 for it and refuses
    no gateway."""
    o = new_store(tmp_path)
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    now = datetime.datetime.now(datetime.timezone.utc)
    old = w.p.crl("old", w.root, [], last_update=now - 3 * DAY, next_update=now + 2 * DAY)
    new = w.p.crl("new", w.root, [], last_update=now - DAY, next_update=now + 6 * DAY)
    o.ok("cert", "import", old, "--trusted", "--yes", "--no-reload")
    old_sha1 = o.json("cert", "list", "--store", "crl")[0]["sha1"]
    r = o.ok("cert", "import", new, "--trusted", "--yes", "--no-reload")
    assert f"it replaces the revocation list {old_sha1}" in r.stdout, r.stdout
    crls = o.json("cert", "list", "--store", "crl")
    assert len(crls) == 1 and crls[0]["sha1"] != old_sha1
    r = o.run("cert", "import", old, "--trusted", "--yes", "--no-reload")
    assert r.returncode == 1 and "not newer than the one here" in r.stderr, r.stderr
    assert o.json("cert", "list", "--store", "crl") == crls
    # the same list again is no rollback
    o.ok("cert", "import", new, "--trusted", "--yes", "--no-reload")
    # an older version kept a replaced list that is stale by now
    stale = w.p.crl("stale", w.root, [], last_update=now - 9 * DAY, next_update=now - 2 * DAY)
    der = x509.load_pem_x509_crl(open(stale, "rb").read()).public_bytes(
        serialization.Encoding.DER)
    write(os.path.join(o.data, "certs", "crl", hashlib.sha256(der).hexdigest() + ".pem"),
          open(stale, "rb").read())
    assert len(o.json("cert", "list", "--store", "crl")) == 2
    o.ok("dialplan", "new", "dp", "--digits", "3", "--security", "sipsecured", "--no-reload")
    o.ok("gateway", "new", "gw1", "--address", "127.0.0.5", "--tls-name", GW, "--dialplan",
         "dp", "--no-reload")
    o.ok("server", "set", "--dialplans", "dp", "--no-reload")
    serve(o)
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(w.gw.cert_path, w.gw.key_path)
        s = ctx.wrap_socket(connect(o.tls, src="127.0.0.5"), server_hostname=FQDN)
        s.sendall(options(port=o.tls, src="127.0.0.5"))
        assert s.recv(65536).startswith(b"SIP/2.0 200")
        s.close()
        o.ok("reload")
        wait_for(lambda: len(o.events("--id", "1180")) >= 1)
        assert o.events("--id", "1127") == []
    finally:
        stop(o)


def crl_with(path, ca, this_update, next_update, ext=None):
    """A CRL of `ca` with one extra extension (delta indicator, IDP)."""
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
         .last_update(this_update).next_update(next_update))
    if ext is not None:
        b = b.add_extension(ext, critical=True)
    crl = b.sign(ca.key, hashes.SHA256())
    return write(path, crl.public_bytes(serialization.Encoding.PEM), 0o644)


def test_delta_and_partitioned_crls_never_replace_the_complete_one(w, tmp_path):
    """A delta CRL is refused (verification uses the complete CRL only: a
    delta alone would cut the CA's gateways off); CRLs of one CA for
    different distribution points (a partitioned CRL) are all kept."""
    o = new_store(tmp_path)
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    now = datetime.datetime.now(datetime.timezone.utc)
    base = crl_with(tmp_path / "base.pem", w.root, now - 2 * DAY, now + 5 * DAY)
    o.ok("cert", "import", base, "--trusted", "--yes", "--no-reload")
    delta = crl_with(tmp_path / "delta.pem", w.root, now - DAY, now + DAY,
                     x509.DeltaCRLIndicator(1))
    r = o.run("cert", "import", delta, "--trusted", "--yes", "--no-reload")
    assert r.returncode == 1 and "delta CRL" in r.stderr, r.stderr
    assert len(o.json("cert", "list", "--store", "crl")) == 1

    def idp(uri):
        return x509.IssuingDistributionPoint(
            full_name=[x509.UniformResourceIdentifier(uri)], relative_name=None,
            only_contains_user_certs=False, only_contains_ca_certs=False,
            only_some_reasons=None, indirect_crl=False, only_contains_attribute_certs=False)
    p1 = crl_with(tmp_path / "p1.pem", w.root, now - DAY, now + 5 * DAY, idp("http://c/1.crl"))
    p2 = crl_with(tmp_path / "p2.pem", w.root, now - DAY + datetime.timedelta(hours=1),
                  now + 5 * DAY, idp("http://c/2.crl"))
    for f in (p1, p2):
        r = o.ok("cert", "import", f, "--trusted", "--yes", "--no-reload")
        assert "it replaces" not in r.stdout, r.stdout
    assert len(o.json("cert", "list", "--store", "crl")) == 3
    # a newer list of the first partition replaces that one only
    p1b = crl_with(tmp_path / "p1b.pem", w.root, now - datetime.timedelta(hours=1),
                   now + 5 * DAY, idp("http://c/1.crl"))
    r = o.ok("cert", "import", p1b, "--trusted", "--yes", "--no-reload")
    assert r.stdout.count("it replaces") == 1
    assert len(o.json("cert", "list", "--store", "crl")) == 3


# ================================================== 7. one set of limits

def test_what_import_accepts_the_loader_loads(w, tmp_path):
    """A large bundle (the server's certificate, its key and chain among
    thousands of other certificates, over 5 MiB) is imported and then
    loaded at every start: it used to be stored whole and skipped by the
    loader's smaller limit."""
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    leaf = w.p.leaf("big-leaf", w.inter, cn=FQDN, dns=[FQDN])
    filler = pem_of(w.stranger.cert) * 9000
    path = write(tmp_path / "bundle.pem", filler + open(leaf.both_path, "rb").read())
    assert os.path.getsize(path) > 5 << 20
    r = o.ok("cert", "import", path, "--no-reload", timeout=120)
    assert "dropped" in r.stdout and "chain: 2 certificate(s)" in r.stdout
    serve(o)  # a fresh process loads the store
    try:
        assert o.json("status")["certificate"]["sha1"] == sha1(leaf)
    finally:
        stop(o)
    assert [c["sha1"] for c in o.json("cert", "list", "--store", "personal")] == [sha1(leaf)]


def test_pkcs12_protection_is_current_also_with_legacy(w, tmp_path):
    o = new_store(tmp_path)
    c = json.loads(o.ok("--json", "cert", "new-selfsigned", "--no-reload").stdout)
    pw = write(tmp_path / "pw", b"Secret-pfx-1\n")
    out = {}
    for kind in ("modern", "legacy"):
        f = tmp_path / f"{kind}.pfx"
        o.ok("cert", "export", c["sha1"], "--out", str(f), "--format", "pfx", "--with-key",
             "--password-file", pw, *(["--legacy"] if kind == "legacy" else []))
        info = subprocess.run(["openssl", "pkcs12", "-info", "-noout", "-legacy", "-in", str(f),
                               "-passin", "pass:Secret-pfx-1"], capture_output=True, text=True)
        assert info.returncode == 0, info.stderr
        out[kind] = info.stderr + info.stdout
    assert re.search(r"MAC: sha256, Iteration 2048", out["modern"]), out["modern"]
    assert "AES-256-CBC" in out["modern"] and "Iteration 2048" in out["modern"]
    # --legacy: the ciphers old gateways need, the same iteration counts
    assert re.search(r"MAC: sha1, Iteration 2048", out["legacy"]), out["legacy"]
    assert "TripleDES" in out["legacy"] or "3DES" in out["legacy"] or \
        "3-KeyTripleDES" in out["legacy"]
    assert "Iteration 1\n" not in out["legacy"] and "Iteration 1," not in out["legacy"]


def test_corrupt_key_is_reported_as_corrupt(w, tmp_path):
    o = new_store(tmp_path)
    leaf = w.p.leaf("corrupt", w.root, cn=FQDN, dns=[FQDN])
    text = open(leaf.both_path).read()
    lines = text.splitlines()
    i = [n for n, l in enumerate(lines) if "BEGIN PRIVATE KEY" in l][0]
    lines[i + 1] = "A" * len(lines[i + 1])
    f = write(tmp_path / "corrupt.pem", ("\n".join(lines) + "\n").encode())
    r = o.run("cert", "import", f)
    assert r.returncode == 1
    assert "corrupt" in r.stderr and "--password-file" not in r.stderr


# ================================================== 11.7: key files others read

def test_key_file_readable_by_others_is_refused(w, tmp_path):
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    c = json.loads(o.ok("--json", "cert", "new-selfsigned", "--no-reload").stdout)
    key = os.path.join(o.data, "certs", "personal", c["sha256"] + ".key")
    os.chmod(key, 0o644)
    r = o.run("cert", "select", "--no-reload")
    assert r.returncode == 1
    assert "private key file readable by others: refused" in r.stdout and "0644" in r.stdout
    r = o.run("serve", "--data", o.data, timeout=30)
    assert r.returncode != 0
    ev = o.events("--id", "1129")
    assert ev and ev[0]["level"] == "error" and "0644" in ev[0]["fields"]["detail"]
    os.chmod(key, 0o600)
    assert selection(o)["chosen"] == c["sha1"]


# ================================================== 8. what the administrator sees

def test_status_text_shows_certificate_and_days_left(w, tmp_path):
    o = new_store(tmp_path)
    c = json.loads(o.ok("--json", "cert", "new-selfsigned", "--days", "40",
                        "--no-reload").stdout)
    serve(o)
    try:
        text = o.ok("status").stdout
        line = [l for l in text.splitlines() if l.startswith("certificate ")][0]
        assert c["sha1"] in line and re.search(r"\b(39|40) days left", line), text
    finally:
        stop(o)


def test_pending_requests_listed_and_removed(w, tmp_path):
    o = new_store(tmp_path)
    o.ok("cert", "request", "--fqdn", FQDN, "--out", str(tmp_path / "a.csr"))
    o.ok("cert", "request", "--fqdn", "um2.pki.example", "--out", str(tmp_path / "b.csr"))
    reqs = o.json("cert", "list", "--store", "requests")
    assert len(reqs) == 2 and {r["subject"] for r in reqs} == {"CN=" + FQDN,
                                                               "CN=um2.pki.example"}
    human = o.ok("cert", "list", "--store", "requests").stdout
    assert "waiting for" in human
    victim = [r for r in reqs if r["subject"] == "CN=um2.pki.example"][0]
    r = o.ok("cert", "remove", victim["id"][:12])
    assert "pending request" in r.stdout
    left = o.json("cert", "list", "--store", "requests")
    assert [x["id"] for x in left] == [r2["id"] for r2 in reqs if r2 is not victim]
    assert not os.path.exists(os.path.join(o.data, "certs", "requests", victim["id"] + ".key"))


# ================================================== the seed's three routes

def route_server(o, w):
    o.ok("dialplan", "new", "dp", "--digits", "3", "--security", "sipsecured", "--no-reload")
    o.ok("gateway", "new", "gw1", "--address", "127.0.0.5", "--tls-name", GW, "--dialplan",
         "dp", "--no-reload")
    o.ok("server", "set", "--dialplans", "dp", "--no-reload")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    return serve(o)


def gateway_options(o, w, cafile):
    """A gateway that checks the server against cafile (Python ssl) and sends
    OPTIONS over mutual TLS: the status."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    ctx.load_cert_chain(w.gw.cert_path, w.gw.key_path)
    with ctx.wrap_socket(connect(o.tls, src="127.0.0.5"), server_hostname=FQDN) as s:
        s.sendall(options(port=o.tls, src="127.0.0.5"))
        return int(s.recv(65536).split(b" ", 2)[1])


def test_route_self_signed_exchange(w, tmp_path):
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    c = json.loads(o.ok("--json", "cert", "new-selfsigned", "--no-reload").stdout)
    exported = tmp_path / "um.pem"
    o.ok("cert", "export", c["sha1"], "--out", str(exported))
    route_server(o, w)
    try:
        rc, chain, out = s_client(o.tls, client=w.gw, cafile=str(exported))
        assert "Verify return code: 0 (ok)" in out and len(chain) == 1, out
        assert gateway_options(o, w, str(exported)) == 200
    finally:
        stop(o)


def test_route_enterprise_pki_via_request(w, tmp_path):
    """cert request → the issuing CA signs → import the issued certificate
    alone → the server sends it with the issuing CA; a gateway that trusts
    only the root verifies it."""
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    csr = tmp_path / "um.csr"
    o.ok("cert", "request", "--fqdn", FQDN, "--out", str(csr))
    req = x509.load_pem_x509_csr(csr.read_bytes())
    issued = w.p.leaf("e-issued", w.inter, cn=FQDN, dns=[FQDN], pubkey=req.public_key())
    r = o.ok("cert", "import", issued.alone_path, "--no-reload")
    assert "matched to the key of the request" in r.stdout
    o.ok("cert", "import", w.inter.alone_path, "--trusted", "--yes", "--no-reload")
    route_server(o, w)
    try:
        rc, chain, out = s_client(o.tls, client=w.gw, cafile=w.root.cert_path)
        assert len(chain) == 2 and "PKI Test Issuing CA" in chain[1], out
        assert "Verify return code: 0 (ok)" in out
        assert gateway_options(o, w, w.root.cert_path) == 200
    finally:
        stop(o)


@pytest.mark.parametrize("form", ["PEM", "DER"])
def test_route_enterprise_pki_with_a_p7b_chain(w, tmp_path, form):
    """A Windows CA's "download certificate chain" (or a commercial CA's
    .p7b): PKCS#7 certs-only, PEM or DER, the root first. It is matched to
    the request's key, the chain stored in issuer order without the need of
    a trusted intermediate, and sent to gateways that trust only the
    root."""
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    csr = tmp_path / "um.csr"
    o.ok("cert", "request", "--fqdn", FQDN, "--out", str(csr))
    req = x509.load_pem_x509_csr(csr.read_bytes())
    issued = w.p.leaf(f"p7-issued-{form}", w.inter, cn=FQDN, dns=[FQDN],
                      pubkey=req.public_key())
    p7b = tmp_path / "issued.p7b"
    args = ["openssl", "crl2pkcs7", "-nocrl", "-certfile", w.root.alone_path, "-certfile",
            w.inter.alone_path, "-certfile", issued.alone_path, "-outform", form,
            "-out", str(p7b)]
    subprocess.run(args, check=True, capture_output=True)
    r = o.ok("cert", "import", str(p7b), "--no-reload")
    assert "matched to the key of the request" in r.stdout, r.stdout
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    sel = selection(o)
    assert sel["chosen"] == sha1(issued)
    route_server(o, w)
    try:
        rc, chain, out = s_client(o.tls, client=w.gw, cafile=w.root.cert_path)
        assert len(chain) == 2 and "PKI Test Issuing CA" in chain[1], out
        assert "Verify return code: 0 (ok)" in out
    finally:
        stop(o)


def test_damaged_certificate_is_not_blamed_on_the_key(w, tmp_path):
    """A PEM file whose key is fine and whose certificate block is damaged
    (a transfer that broke a line) says the certificate is damaged, not
    that the private key is corrupt or protected."""
    o = new_store(tmp_path)
    leaf = w.p.leaf("damaged", w.root, cn=FQDN, dns=[FQDN])
    lines = open(leaf.both_path).read().splitlines()
    i = [n for n, l in enumerate(lines) if "BEGIN CERTIFICATE" in l][0]
    lines[i + 2] = "%%%" + lines[i + 2][3:]
    f = write(tmp_path / "damaged.pem", ("\n".join(lines) + "\n").encode())
    before = o.json("cert", "list")
    for extra in ([], ["--trusted", "--yes"]):
        r = o.run("cert", "import", f, *extra)
        assert r.returncode == 1, r.stdout
        if extra:
            continue  # --trusted refuses a file with a key first
        assert "a certificate or revocation list in it is damaged" in r.stderr, r.stderr
        assert "corrupt" not in r.stderr and "--password-file" not in r.stderr
    # without a key: damaged too, not "not a certificate file"
    g = write(tmp_path / "damaged-alone.pem",
              ("\n".join(lines[:[n for n, l in enumerate(lines)
                                 if "END CERTIFICATE" in l][0] + 1]) + "\n").encode())
    r = o.run("cert", "import", g, "--trusted", "--yes")
    assert r.returncode == 1 and "is damaged" in r.stderr, r.stderr
    assert o.json("cert", "list") == before


def test_route_commercial_ca_with_intermediate(w, tmp_path):
    """A PKCS#12 from a commercial CA: key, leaf, intermediate and root in
    any order; the root trusted as the seed's trusted root store has it;
    the server sends leaf then intermediate."""
    p = w.p
    croot = p.ca("c-root", "Commercial Test Root")
    cinter = p.ca("c-inter", "Commercial Test Intermediate", issuer=croot)
    leaf = p.leaf("c-leaf", cinter, cn=FQDN, dns=[FQDN])
    pfx = pkcs12.serialize_key_and_certificates(
        b"um", leaf.key, leaf.cert, [croot.cert, cinter.cert],
        serialization.BestAvailableEncryption(b"Commercial-1"))
    f = write(tmp_path / "commercial.pfx", pfx)
    pw = write(tmp_path / "pw", b"Commercial-1\n")
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    r = o.ok("cert", "import", f, "--password-file", pw, "--no-reload")
    assert "chain: 2 certificate(s) stored in issuer order" in r.stdout
    assert "its root" in r.stdout and "Commercial Test Root" in r.stdout  # not trusted yet
    o.ok("cert", "import", croot.alone_path, "--trusted", "--yes", "--no-reload")
    assert selection(o)["chosen"] == sha1(leaf)
    route_server(o, w)
    try:
        rc, chain, out = s_client(o.tls, client=w.gw, cafile=croot.alone_path)
        assert len(chain) == 2 and "Commercial Test Intermediate" in chain[1], out
        assert "Verify return code: 0 (ok)" in out
        assert gateway_options(o, w, croot.alone_path) == 200
    finally:
        stop(o)


def test_expiring_intermediate_is_watched(w, tmp_path):
    """The chain certificate expiring in 10 days gets the 30-day warning
    (1120) like the certificate in use."""
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    leaf = w.p.leaf("x-leaf", w.inter_expiring, cn=FQDN, dns=[FQDN], not_after=NOW + 300 * DAY)
    o.ok("cert", "import", leaf.both_path, "--no-reload")
    serve(o)
    try:
        ev = wait_for(lambda: [e for e in o.events("--id", "1120")
                               if "chain_subject" in e["fields"]])
        assert ev and "PKI Expiring Issuing CA" in ev[0]["fields"]["chain_subject"]
        assert ev[0]["fields"]["days_left"] in ("9", "10")
    finally:
        stop(o)


def test_trusted_intermediates_are_watched_like_roots(w, tmp_path):
    """A gateway-side issuing CA in the trusted store (it issues the gateways'
    certificates, not the server's) is watched like a root: 1124 before and
    after its expiry, with its days left and whether it is a root or an
    intermediate; `openum status` (text and JSON) and the metrics show the
    nearest expiry of the trusted store."""
    o = new_store(tmp_path, "auto_selfsigned = 1\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    soon = w.p.ca("gw-inter-soon", "PKI Gateway Issuing CA Soon", issuer=w.root,
                  not_after=NOW + 12 * DAY)
    gone = w.p.ca("gw-inter-gone", "PKI Gateway Issuing CA Gone", issuer=w.root,
                  not_before=NOW - 400 * DAY, not_after=NOW - 3 * DAY)
    for ca in (soon, gone):
        o.ok("cert", "import", ca.alone_path, "--trusted", "--yes", "--no-reload")
    serve(o)
    try:
        ev = wait_for(lambda: {e["fields"]["subject"]: e for e in o.events("--id", "1124")
                               if "Gateway Issuing" in e["fields"]["subject"]}
                      if len([e for e in o.events("--id", "1124")
                              if "Gateway Issuing" in e["fields"]["subject"]]) >= 2 else None)
        assert ev, o.events("--id", "1124")
        e = next(v for k, v in ev.items() if "Soon" in k)
        assert e["fields"]["days_left"] in ("11", "12") and e["level"] == "warning", e
        assert e["fields"]["kind"] == "intermediate", e
        e = next(v for k, v in ev.items() if "Gone" in k)
        assert e["fields"]["days_left"] in ("-3", "-4") and e["level"] == "error", e
        assert "has expired" in e["message"], e
        st = o.json("status")
        t = st["trusted_expiry"]
        assert "Gone" in t["subject"] and t["kind"] == "intermediate", t
        assert t["days_left"] in (-3, -4), t
        text = o.ok("status").stdout
        assert "trusted next" in text and "PKI Gateway Issuing CA Gone" in text, text
        assert "intermediate" in text and "expired" in text, text
    finally:
        stop(o)


def test_trusted_ca_in_the_sent_chain_gets_both_warnings(w, tmp_path):
    """An issuing CA that is in the trusted store (its gateways are refused
    once it expires: 1124) and in the chain the server sends (the server's
    certificate goes down with it: 1120) gets both warnings; one used to
    silence the other."""
    o = new_store(tmp_path, "auto_selfsigned = 0\n")
    o.ok("cert", "import", w.root.cert_path, "--trusted", "--yes", "--no-reload")
    o.ok("cert", "import", w.inter_expiring.alone_path, "--trusted", "--yes", "--no-reload")
    leaf = w.p.leaf("y-leaf", w.inter_expiring, cn=FQDN, dns=[FQDN], not_after=NOW + 300 * DAY)
    o.ok("cert", "import", leaf.both_path, "--no-reload")
    serve(o)
    try:
        chain = wait_for(lambda: [e for e in o.events("--id", "1120")
                                  if "chain_subject" in e["fields"]])
        assert chain and "PKI Expiring Issuing CA" in chain[0]["fields"]["chain_subject"]
        trusted = wait_for(lambda: [e for e in o.events("--id", "1124")
                                    if "PKI Expiring Issuing CA" in e["fields"]["subject"]])
        assert trusted and trusted[0]["fields"]["days_left"] in ("9", "10"), \
            o.events("--id", "1124")
    finally:
        stop(o)


# ================================================== root and the store's owner

@pytest.fixture
def owned_store():
    """A store that belongs to a service user, reachable by it."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = f"openum-pki-{os.getpid()}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)
    parent = tempfile.mkdtemp(prefix="openum-pki-owner-")
    os.chmod(parent, 0o711)
    o = Openum(os.path.join(parent, "data"))
    user = pwd.getpwnam(name)
    try:
        o.ok("init")
        for root, dirs, files in os.walk(o.data):
            for n in dirs + files:
                os.chown(os.path.join(root, n), user.pw_uid, user.pw_gid)
        os.chown(o.data, user.pw_uid, user.pw_gid)
        o.user = user
        yield o
    finally:
        o.close()
        shutil.rmtree(parent, ignore_errors=True)
        subprocess.run(["userdel", name], capture_output=True)


def test_as_owner_reads_root_private_files_and_leaves_no_root_file(w, owned_store, tmp_path):
    """Run as root with --as-owner, the certificate file and its password
    are read with root's rights (a PFX in root's private folder), then
    openum acts as the owner: every file of the store belongs to it. An
    --out the owner cannot write says why."""
    o = owned_store
    secret = tmp_path / "root-only"
    secret.mkdir(mode=0o700)
    leaf = w.p.leaf("owned", w.root, cn=FQDN, dns=[FQDN])
    pw = write(secret / "pfx.pass", b"s3cret-pfx\n")
    pfx = write(secret / "um.pfx", pkcs12.serialize_key_and_certificates(
        b"um", leaf.key, leaf.cert, None,
        serialization.BestAvailableEncryption(b"s3cret-pfx")))
    r = o.run("cert", "import", pfx, "--password-file", pw)
    assert r.returncode == 1 and "--as-owner" in r.stderr
    r = o.run("--as-owner", "cert", "import", pfx, "--password-file", pw)
    assert r.returncode == 0, r.stderr
    assert sha1(leaf) in r.stdout
    o.ok("--as-owner", "cert", "import", w.root.cert_path, "--trusted", "--yes")
    foreign = [os.path.join(d, n) for d, dirs, files in os.walk(o.data) for n in dirs + files
               if os.lstat(os.path.join(d, n)).st_uid != o.user.pw_uid]
    assert not foreign, foreign
    r = o.run("--as-owner", "cert", "export", sha1(leaf), "--out", str(secret / "um.pem"))
    assert r.returncode == 1
    assert f"written as {o.user.pw_name}: give a folder" in r.stderr, r.stderr
    assert not (secret / "um.pem").exists()

