"""`openum cert` as a black box (R6, R7): the seed's self-signed exchange,
the seed's PKI steps with a test CA made by `openssl ca`, a Windows-style
legacy PFX, and every safety rule of DESIGN.md's operator interface
(exit code, message, nothing changed in the store)."""
import hashlib
import json
import os
import socket
import stat
import subprocess
import time

import pytest
from pathlib import Path

FQDN = "um.example.com"


# ---------------------------------------------------------------- helpers

@pytest.fixture
def store(store):
    """The store of conftest, with this server's FQDN: selection checks that
    a certificate carries it."""
    store.conf(f"fqdn = {FQDN}\n")
    return store


def run(store, *args, input=None):
    return store.run(*args, input=input, timeout=120)


def ok(store, *args):
    return store.run(*args, check=0, timeout=120)


def data(store):
    return Path(store.data)


def ossl(*args, cwd=None, input=None):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=cwd,
                       input=input, timeout=120)
    assert r.returncode == 0, f"openssl {args}: {r.stderr}"
    return r


def certs_json(store, *extra):
    return json.loads(ok(store, "--json", "cert", "list", *extra).stdout)


def snapshot(store):
    """Every file under certs/ with its mode and digest."""
    out = {}
    root = os.path.join(store, "certs")
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = (stat.S_IMODE(os.stat(p).st_mode),
                                                 hashlib.sha256(fh.read()).hexdigest())
    return out


def secret(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_selfsigned(store, fqdn=FQDN, *extra):
    """A new self-signed certificate (the one just made, also when another
    has the same name)."""
    made = json.loads(ok(store, "--json", "cert", "new-selfsigned", "--fqdn", fqdn,
                         "--no-reload", *extra).stdout)
    return [c for c in certs_json(store, "--store", "personal") if c["sha1"] == made["sha1"]][0]


def make_ca(tmp):
    """A test CA driven by `openssl ca` (the seed's enterprise PKI)."""
    ca = tmp / "ca"
    (ca / "newcerts").mkdir(parents=True)
    (ca / "index.txt").write_text("")
    (ca / "serial").write_text("1000\n")
    cnf = ca / "ca.cnf"
    cnf.write_text(f"""
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {ca}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
default_md = sha256
default_days = 365
policy = policy_any
copy_extensions = copy
unique_subject = no
[ policy_any ]
commonName = supplied
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
""")
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(ca / "ca.key"), "-out", str(ca / "ca.pem"), "-days", "3650",
         "-subj", "/CN=openum Test Root CA", "-config", str(cnf), "-extensions", "v3_ca")
    return ca


# ---------------------------------------------------------------- tests

def test_sha1_equals_openssl_fingerprint(store, tmp_path):
    c = new_selfsigned(store)
    assert len(c["sha1"]) == 40
    out = tmp_path / "c.pem"
    ok(store, "cert", "export", c["sha1"][:8], "--out", str(out))
    fp = ossl("x509", "-in", str(out), "-noout", "-fingerprint", "-sha1").stdout
    assert fp.strip().split("=", 1)[1].replace(":", "") == c["sha1"]
    fp256 = ossl("x509", "-in", str(out), "-noout", "-fingerprint", "-sha256").stdout
    assert fp256.strip().split("=", 1)[1].replace(":", "").lower() == c["sha256"]
    # The files are named by SHA-256, the key is 0600, folders 0700.
    pdir = data(store) / "certs" / "personal"
    assert (pdir / (c["sha256"] + ".pem")).exists()
    assert stat.S_IMODE(os.stat(pdir / (c["sha256"] + ".key")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pdir).st_mode) == 0o700
    # What `list` promises.
    for k in ("subject", "sans", "issuer", "serial", "sha1", "sha256", "not_before",
              "not_after", "days_left", "self_signed", "key_type", "eku", "in_use"):
        assert k in c
    assert c["sans"] == "DNS:" + FQDN
    assert c["key_type"] == "EC P-256"
    assert c["eku"] == ["serverAuth", "clientAuth"]
    assert c["in_use"] is True
    human = ok(store, "cert", "show", c["sha1"][:10]).stdout
    assert c["sha1"] in human and c["sha256"] in human and "self-signed" in human


@pytest.mark.parametrize("key,ktype", [("rsa2048", "RSA 2048"), ("rsa3072", "RSA 3072")])
def test_new_selfsigned_rsa(store, key, ktype):
    ok(store, "cert", "new-selfsigned", "--fqdn", FQDN, "--key", key, "--days", "30",
       "--no-reload")
    c = certs_json(store)[0]
    assert c["key_type"] == ktype
    assert 29 <= c["days_left"] <= 30


def test_selfsigned_exchange_s_client_trusts_it(store, tmp_path):
    """Seed, "For mutual TLS to work using self-signed certificates", step 1:
    the server's self-signed certificate, exported and put in the peer's
    trusted root store, lets the peer verify a server presenting it."""
    c = new_selfsigned(store)
    trust = tmp_path / "exported.pem"
    both = tmp_path / "server-with-key.pem"
    ok(store, "cert", "export", c["sha1"], "--out", str(trust))
    assert "PRIVATE KEY" not in trust.read_text()
    ok(store, "cert", "export", c["sha1"], "--out", str(both), "--with-key")
    assert "PRIVATE KEY" in both.read_text()
    assert stat.S_IMODE(os.stat(both).st_mode) == 0o600

    port = free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
                            str(both), "-quiet", "-naccept", "2"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                            "-verify_return_error", "-CAfile", str(trust),
                            "-verify_hostname", FQDN, "-brief"],
                           input="", capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert "Verification: OK" in r.stderr or "Verify return code: 0" in r.stdout
    finally:
        srv.kill()
        srv.wait()

    # Control: without that root the same client refuses the server.
    other = tmp_path / "other"
    other.mkdir()
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(other / "k.pem"), "-out", str(other / "c.pem"), "-days", "2",
         "-subj", "/CN=" + FQDN)
    port = free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
                            str(both), "-quiet", "-naccept", "1"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                            "-verify_return_error", "-CAfile", str(other / "c.pem"), "-brief"],
                           input="", capture_output=True, text=True, timeout=30)
        assert r.returncode != 0
    finally:
        srv.kill()
        srv.wait()


def test_pki_steps_csr_signed_imported_selected(store, tmp_path):
    """Seed, the PKI steps: request, CA signs, import, trust the root; the
    CA-issued certificate is then selected over the self-signed one."""
    ss = new_selfsigned(store)
    ca = make_ca(tmp_path)
    csr = tmp_path / "um.csr"
    ok(store, "cert", "request", "--fqdn", FQDN, "--out", str(csr))
    text = ossl("req", "-in", str(csr), "-noout", "-text", "-verify").stdout
    assert "DNS:" + FQDN in text
    assert "TLS Web Server Authentication" in text and "TLS Web Client Authentication" in text
    # The key stays in the store, 0600.
    keys = list((data(store) / "certs" / "requests").glob("*.key"))
    assert len(keys) == 1 and stat.S_IMODE(os.stat(keys[0]).st_mode) == 0o600
    issued = tmp_path / "issued.pem"
    ossl("ca", "-config", str(ca / "ca.cnf"), "-batch", "-notext", "-in", str(csr), "-out",
         str(issued))

    r = ok(store, "cert", "import", str(issued), "--no-reload")
    assert "matched to the key of the request" in r.stdout
    assert not list((data(store) / "certs" / "requests").glob("*.key"))
    # Step 6: trust the PKI's root (subject + SHA-256 shown, --yes).
    r = ok(store, "cert", "import", str(ca / "ca.pem"), "--trusted", "--yes")
    root_sha256 = ossl("x509", "-in", str(ca / "ca.pem"), "-noout", "-fingerprint",
                       "-sha256").stdout.strip().split("=", 1)[1].replace(":", "").lower()
    assert root_sha256 in r.stdout and "openum Test Root CA" in r.stdout
    assert [c["sha256"] for c in certs_json(store, "--store", "trusted")] == [root_sha256]

    personal = certs_json(store, "--store", "personal")
    ca_issued = [c for c in personal if not c["self_signed"]]
    assert len(ca_issued) == 1 and ca_issued[0]["has_key"]
    sel = json.loads(ok(store, "--json", "cert", "select", "--no-reload").stdout)
    assert sel["chosen"] == ca_issued[0]["sha1"]
    lost = {c["sha1"]: c["verdict"] for c in sel["candidates"]}
    assert lost[ss["sha1"]] == "valid, ranked lower"
    human = ok(store, "cert", "select", "--no-reload").stdout
    assert human.startswith("chosen " + ca_issued[0]["sha1"])
    assert "lost   " + ss["sha1"] in human and "self-signed, the chosen one is CA-issued" in human

    # The issued certificate verifies against the root the way a gateway
    # would check it.
    out = tmp_path / "mine.pem"
    ok(store, "cert", "export", ca_issued[0]["sha1"], "--out", str(out))
    ossl("verify", "-CAfile", str(ca / "ca.pem"), "-purpose", "sslserver", str(out))


def test_legacy_pfx_imports_with_password_file(store, tmp_path):
    """A Windows-style PFX (RC2-40 / 3DES, SHA-1 MAC) as older Windows
    servers and gateways export them."""
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem"),
         "-out", str(tmp_path / "c.pem"), "-days", "100", "-subj", "/CN=win.example.com",
         "-addext", "basicConstraints=critical,CA:FALSE",
         "-addext", "subjectAltName=DNS:win.example.com",
         "-addext", "extendedKeyUsage=serverAuth,clientAuth")
    pw = secret(tmp_path / "pw", "Pa55word!")
    pfx = tmp_path / "win.pfx"
    ossl("pkcs12", "-export", "-legacy", "-inkey", str(tmp_path / "k.pem"), "-in",
         str(tmp_path / "c.pem"), "-out", str(pfx), "-passout", "file:" + pw)
    info = ossl("pkcs12", "-legacy", "-info", "-in", str(pfx), "-noout", "-passin",
                "file:" + pw).stderr
    assert "RC2" in info or "3DES" in info or "TripleDES" in info

    before = snapshot(store.data)
    wrong = secret(tmp_path / "wrong", "nope")
    r = run(store, "cert", "import", str(pfx), "--password-file", wrong, "--no-reload")
    assert r.returncode == 1 and "wrong password" in r.stderr
    r = run(store, "cert", "import", str(pfx), "--no-reload")
    assert r.returncode == 1 and "--password-file" in r.stderr
    assert snapshot(store.data) == before

    r = ok(store, "cert", "import", str(pfx), "--password-file", pw, "--no-reload")
    assert "with its private key" in r.stdout
    c = certs_json(store)[0]
    assert c["subject"] == "CN=win.example.com" and c["has_key"] and c["key_type"] == "RSA 2048"
    assert c["in_use"]
    want = ossl("x509", "-in", str(tmp_path / "c.pem"), "-noout", "-fingerprint",
                "-sha1").stdout.strip().split("=", 1)[1].replace(":", "")
    assert c["sha1"] == want

    # Exported back as a legacy PFX, it opens with the legacy algorithms.
    out = tmp_path / "back.pfx"
    ok(store, "cert", "export", c["sha1"], "--out", str(out), "--format", "pfx",
       "--with-key", "--password-file", pw, "--legacy")
    info = ossl("pkcs12", "-legacy", "-info", "-in", str(out), "-nodes", "-passin",
                "file:" + pw)
    assert "PRIVATE KEY" in info.stdout
    assert "RC2" in info.stderr or "3DES" in info.stderr or "TripleDES" in info.stderr
    # Modern PFX, DER.
    ok(store, "cert", "export", c["sha1"], "--out", str(tmp_path / "m.pfx"), "--format",
       "pfx", "--with-key", "--password-file", pw)
    assert "PRIVATE KEY" in ossl("pkcs12", "-in", str(tmp_path / "m.pfx"), "-nodes", "-passin",
                                 "file:" + pw).stdout
    ok(store, "cert", "export", c["sha1"], "--out", str(tmp_path / "c.der"), "--format",
       "der")
    ossl("x509", "-inform", "DER", "-in", str(tmp_path / "c.der"), "-noout")


# ---------------------------------------------------------------- safety rules

def test_trusted_import_needs_yes_and_shows_subject_sha256(store, tmp_path):
    ca = make_ca(tmp_path)
    before = snapshot(store.data)
    r = run(store, "cert", "import", str(ca / "ca.pem"), "--trusted")
    assert r.returncode == 1
    sha = ossl("x509", "-in", str(ca / "ca.pem"), "-noout", "-fingerprint",
               "-sha256").stdout.strip().split("=", 1)[1].replace(":", "").lower()
    assert sha in r.stdout and "openum Test Root CA" in r.stdout
    assert "--yes" in r.stderr
    assert snapshot(store.data) == before
    assert certs_json(store, "--store", "trusted") == []
    # Without --trusted a keyless CA certificate is not one of ours either.
    r = run(store, "cert", "import", str(ca / "ca.pem"))
    assert r.returncode == 1 and "--trusted" in r.stderr
    assert snapshot(store.data) == before


def test_trusted_import_refuses_private_key(store, tmp_path):
    ca = make_ca(tmp_path)
    both = tmp_path / "ca-with-key.pem"
    both.write_text((ca / "ca.pem").read_text() + (ca / "ca.key").read_text())
    pw = secret(tmp_path / "pw", "pw")
    pfx = tmp_path / "ca.pfx"
    ossl("pkcs12", "-export", "-inkey", str(ca / "ca.key"), "-in", str(ca / "ca.pem"), "-out",
         str(pfx), "-passout", "file:" + pw)
    before = snapshot(store.data)
    r = run(store, "cert", "import", str(both), "--trusted", "--yes")
    assert r.returncode == 1 and "private key" in r.stderr
    r = run(store, "cert", "import", str(pfx), "--trusted", "--yes", "--password-file",
            pw)
    assert r.returncode == 1 and "private key" in r.stderr
    assert snapshot(store.data) == before


def test_export_never_has_key_without_with_key(store, tmp_path):
    c = new_selfsigned(store)
    pw = secret(tmp_path / "pw", "pw")
    for fmt in ("pem", "der", "pfx"):
        out = tmp_path / ("o." + fmt)
        args = ["cert", "export", c["sha1"], "--out", str(out), "--format", fmt]
        if fmt == "pfx":
            args += ["--password-file", pw]
        ok(store, *args)
        data = out.read_bytes()
        assert b"PRIVATE KEY" not in data
        if fmt == "pfx":
            r = ossl("pkcs12", "-in", str(out), "-nodes", "-passin", "file:" + pw)
            assert "PRIVATE KEY" not in r.stdout and "BEGIN CERTIFICATE" in r.stdout
    # A PFX with the key needs a password: usage error, no file.
    out = tmp_path / "k.pfx"
    r = run(store, "cert", "export", c["sha1"], "--out", str(out), "--format", "pfx",
            "--with-key")
    assert r.returncode == 2 and "--password-file" in r.stderr and not out.exists()
    # DER cannot carry the key.
    r = run(store, "cert", "export", c["sha1"], "--out", str(out), "--format", "der",
            "--with-key")
    assert r.returncode == 2 and not out.exists()
    # With a password the PEM key is encrypted.
    out = tmp_path / "enc.pem"
    ok(store, "cert", "export", c["sha1"], "--out", str(out), "--with-key",
       "--password-file", pw)
    assert "ENCRYPTED PRIVATE KEY" in out.read_text()


def test_password_file_readable_by_others_is_refused(store, tmp_path):
    c = new_selfsigned(store)
    pw = secret(tmp_path / "pw", "pw", mode=0o644)
    out = tmp_path / "k.pfx"
    r = run(store, "cert", "export", c["sha1"], "--out", str(out), "--format", "pfx",
            "--with-key", "--password-file", pw)
    assert r.returncode != 0 and not out.exists()
    ok(store, "cert", "export", c["sha1"], "--out", str(tmp_path / "good.pfx"),
       "--format", "pfx", "--with-key", "--password-file", secret(tmp_path / "pw2", "pw"))
    before = snapshot(store.data)
    r = run(store, "cert", "import", str(tmp_path / "good.pfx"), "--password-file", pw)
    assert r.returncode != 0
    assert snapshot(store.data) == before


def test_secret_with_a_nul_byte_or_too_long_is_refused_never_cut(store, tmp_path):
    """A password file is never cut silently: with a NUL byte the key would be
    protected with (or opened by) only what comes before it, and bytes beyond
    the limit would be dropped. Both are refused with a clear error, from a
    file and from standard input; nothing is written."""
    c = new_selfsigned(store)
    out = tmp_path / "k.pfx"
    nul = tmp_path / "nul"
    nul.write_bytes(b"ab\0cdefgh\n")
    os.chmod(nul, 0o600)
    r = run(store, "cert", "export", c["sha1"], "--out", str(out), "--format", "pfx",
            "--with-key", "--password-file", str(nul))
    assert r.returncode == 1 and not out.exists(), r.stderr
    assert "NUL byte" in r.stderr and "at byte 3" in r.stderr, r.stderr
    r = run(store, "cert", "export", c["sha1"], "--out", str(out), "--format", "pfx",
            "--with-key", "--password-file", "-", input="ab\0cd\n")
    assert r.returncode == 1 and "NUL byte" in r.stderr and not out.exists(), r.stderr
    long = tmp_path / "long"
    long.write_bytes(b"x" * 5000 + b"\n")
    os.chmod(long, 0o600)
    r = run(store, "cert", "export", c["sha1"], "--out", str(out), "--format", "pfx",
            "--with-key", "--password-file", str(long))
    assert r.returncode == 1 and "longer than" in r.stderr and not out.exists(), r.stderr
    # the longest that fits, with its line end, is taken whole
    edge = tmp_path / "edge"
    edge.write_bytes(b"y" * 1023 + b"\n")
    os.chmod(edge, 0o600)
    ok(store, "cert", "export", c["sha1"], "--out", str(out), "--format", "pfx", "--with-key",
       "--password-file", str(edge))
    r = ossl("pkcs12", "-in", str(out), "-nodes", "-passin", "pass:" + "y" * 1023)
    assert r.returncode == 0 and "PRIVATE KEY" in r.stdout, r.stderr


def test_remove_in_use_needs_force(store, tmp_path):
    a = new_selfsigned(store, FQDN, "--days", "100")
    b = new_selfsigned(store, FQDN, "--days", "50")
    before = snapshot(store.data)
    r = run(store, "cert", "remove", a["sha1"][:12])
    assert r.returncode == 1 and "in use" in r.stderr and "--force" in r.stderr
    assert snapshot(store.data) == before
    # The one not in use goes without --force.
    ok(store, "cert", "remove", b["sha1"], "--no-reload")
    ok(store, "cert", "remove", a["sha1"], "--force", "--no-reload")
    assert certs_json(store) == []


def test_remove_pinned_needs_force_and_unpins(store, tmp_path):
    a = new_selfsigned(store, FQDN, "--days", "100")
    b = new_selfsigned(store, FQDN, "--days", "50")
    # Pin the one automatic selection would not take, by a prefix of its
    # SHA-1 (the pin lives in the directory).
    ok(store, "server", "set", "--certificate", b["sha1"][:10], "--no-reload")
    sel = json.loads(ok(store, "--json", "cert", "select", "--no-reload").stdout)
    assert sel["chosen"] == b["sha1"] and sel["pinned"]
    lost = {c["sha1"]: c["verdict"] for c in sel["candidates"]}
    assert lost[a["sha1"]] == "valid, another certificate is pinned"
    assert [c["in_use"] for c in certs_json(store) if c["sha1"] == b["sha1"]] == [True]
    before = snapshot(store.data)
    r = run(store, "cert", "remove", b["sha1"])
    assert r.returncode == 1 and "pinned" in r.stderr
    assert snapshot(store.data) == before
    assert json.loads(ok(store, "--json", "server", "show").stdout)["certificate"] != "auto"
    r = ok(store, "cert", "remove", b["sha1"], "--force", "--no-reload")
    assert "pin" in r.stdout
    assert json.loads(ok(store, "--json", "server", "show").stdout)["certificate"] == "auto"
    sel = json.loads(ok(store, "--json", "cert", "select", "--no-reload").stdout)
    assert sel["chosen"] == a["sha1"] and not sel["pinned"]


def test_pin_must_name_a_personal_certificate_with_its_key(store, tmp_path):
    """`server set --certificate` refuses a thumbprint that names nothing
    usable here, and changes nothing."""
    c = new_selfsigned(store)
    for bad in ["0123456789abcdef0123", "ffffffffffffffffffff"]:
        r = run(store, "server", "set", "--certificate", bad, "--no-reload")
        assert r.returncode == 1 and "no certificate" in r.stderr, r.stderr
    assert json.loads(ok(store, "--json", "server", "show").stdout)["certificate"] == "auto"


def test_pinned_but_invalid_is_reported_not_replaced(store, tmp_path):
    """A pinned certificate that disappears from the store (files lost):
    `cert select` says so and chooses nothing (the server raises 1125), it
    does not fall back silently."""
    c = new_selfsigned(store)
    new_selfsigned(store, "other.example.com")
    ok(store, "server", "set", "--certificate", c["sha1"], "--no-reload")
    for f in (data(store) / "certs" / "personal").glob(c["sha256"] + ".*"):
        f.unlink()
    r = run(store, "cert", "select", "--no-reload")
    assert r.returncode == 1
    assert f"ERROR pinned certificate {c['sha1']} is not in the personal store" in r.stdout


def test_ids_and_usage_errors(store, tmp_path):
    new_selfsigned(store)
    before = snapshot(store.data)
    r = run(store, "cert", "show", "ZZZ")
    assert r.returncode == 2
    r = run(store, "cert", "show", "0" * 40)
    assert r.returncode == 1 and "no certificate matches" in r.stderr
    r = run(store, "cert", "frobnicate")
    assert r.returncode == 2
    r = run(store, "cert", "list", "--store", "nowhere")
    assert r.returncode == 2
    r = run(store, "cert", "new-selfsigned", "--key", "dsa")
    assert r.returncode == 2
    r = run(store, "cert", "new-selfsigned", "--fqdn", "bad,name")
    assert r.returncode == 2
    r = run(store, "cert", "import", str(tmp_path / "missing.pem"))
    assert r.returncode == 1
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 not a certificate")
    r = run(store, "cert", "import", str(junk))
    assert r.returncode == 1 and "not a certificate file" in r.stderr
    r = run(store, "cert", "import", str(junk), "--yes")
    assert r.returncode == 2
    assert snapshot(store.data) == before
    r = ok(store, "cert", "--help")
    assert "new-selfsigned" in r.stdout


def test_select_explains_exclusions(store, tmp_path):
    """An expired CA-issued certificate and one without serverAuth lose
    with their reasons; the self-signed one is chosen."""
    ca = make_ca(tmp_path)
    # Expired: openssl ca with explicit dates in the past.
    for name, eku, dates in (("old", "serverAuth", ("20200101000000Z", "20210101000000Z")),
                             ("cli", "clientAuth", None)):
        ossl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(tmp_path / f"{name}.key"), "-out", str(tmp_path / f"{name}.csr"),
             "-subj", f"/CN={name}.example.com", "-addext", f"extendedKeyUsage={eku}")
        extra = ["-startdate", dates[0], "-enddate", dates[1]] if dates else []
        ossl("ca", "-config", str(ca / "ca.cnf"), "-batch", "-notext", "-in",
             str(tmp_path / f"{name}.csr"), "-out", str(tmp_path / f"{name}.pem"), *extra)
        both = tmp_path / f"{name}-both.pem"
        both.write_text((tmp_path / f"{name}.pem").read_text() +
                        (tmp_path / f"{name}.key").read_text())
        ok(store, "cert", "import", str(both), "--no-reload")
    r = run(store, "cert", "select", "--no-reload")
    assert r.returncode == 1  # nothing valid yet
    ss = new_selfsigned(store)
    out = ok(store, "cert", "select", "--no-reload").stdout
    assert out.startswith("chosen " + ss["sha1"])
    assert "CN=old.example.com, CA-issued" in out and ": expired" in out
    assert "EKU lacks serverAuth" in out


def test_select_honours_tls_security_level(store):
    """A certificate the TLS context would refuse at the configured
    tls_security_level is not chosen (RSA-2048 at level 3)."""
    rsa = new_selfsigned(store, FQDN, "--key", "rsa2048")
    assert rsa["usable"] is True
    store.conf(f"fqdn = {FQDN}\ntls_security_level = 3\n")
    r = run(store, "cert", "select", "--no-reload")
    assert r.returncode == 1
    assert "key or signature too weak for tls_security_level" in r.stdout
    c = certs_json(store)[0]
    assert c["usable"] is False and c["in_use"] is False
    ec = new_selfsigned(store, FQDN)
    sel = json.loads(ok(store, "--json", "cert", "select", "--no-reload").stdout)
    assert sel["chosen"] == ec["sha1"]
