"""docs/guide.md against the real software, so that the guide cannot drift:
- the events reference equals src/core/events.c's table (scripts/events-doc
  --check) and the binary's own list, and every event has a troubleshooting
  entry;
- every `openum ...` command line in it names a real command, sub-command
  and options;
- the snippets marked `<!-- checked: NAME -->` run as written (names and
  addresses replaced by the test's): Kamailio's tls.cfg and kamailio.cfg
  with a client certificate relay an OPTIONS over mutual TLS to `openum
  serve` (and do not with an untrusted certificate or the wrong ca_list),
  baresip's TLS lines get 200 from it, and the openssl OPTIONS ping works;
- what could not be checked is marked as coming from the vendor's
  documentation, and the sections later work fills in are there."""
import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import uuid

import pytest

from conftest import ROOT, free_port
from pki import PKI
from sip_util import wait_for

GUIDE = os.path.join(ROOT, "docs", "guide.md")
FQDN = "um1.example.com"


def guide():
    with open(GUIDE) as f:
        return f.read()


def blocks(text):
    """[(checked-name or None, info string, body)] of the fenced code blocks."""
    out = []
    for m in re.finditer(r"(?:<!-- checked: ([\w.-]+) -->\n)?```([^\n]*)\n(.*?)```", text,
                         re.S):
        out.append((m.group(1), m.group(2).strip(), m.group(3)))
    return out


def checked(name):
    found = [b for n, _, b in blocks(guide()) if n == name]
    assert len(found) == 1, f"docs/guide.md: one block marked 'checked: {name}'"
    return found[0]


# ------------------------------------------------------------- events

def table_rows(text):
    body = text.split("<!-- events-table:", 1)[1].split("<!-- events-table end -->", 1)[0]
    rows = {}
    for line in body.splitlines():
        m = re.match(r"\| (\d{4}) \| (\w+) \| `([\w-]+)` \| (.*) \| (yes|no) \|$", line)
        if m:
            rows[int(m.group(1))] = (m.group(2), m.group(3), m.group(4))
    return rows


def test_events_reference_is_generated_from_events_c():
    r = subprocess.run([os.path.join(ROOT, "scripts", "events-doc"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_events_reference_matches_the_binary(openum):
    text = openum.ok("events", "--help").stdout.split("Event IDs:", 1)[1]
    binary = {}
    for line in text.splitlines():
        m = re.match(r"\s+(\d{4}) (\w+)\s+(.*)$", line)
        if m:
            binary[int(m.group(1))] = (m.group(2), m.group(3))
    rows = table_rows(guide())
    assert len(binary) >= 20
    assert {k: (v[0], v[2]) for k, v in rows.items()} == binary


def test_every_event_has_a_troubleshooting_entry():
    text = guide()
    rows = table_rows(text)
    trouble = text.split("## 11 Troubleshooting by event ID", 1)[1]
    covered = set()
    for head in re.findall(r"^### (.*)$", trouble, re.M):
        ids = head.split("—")[0]
        for a, b in re.findall(r"(\d{4})(?:[–-](\d{4}))?", ids):
            lo, hi = int(a), int(b or a)
            covered |= {i for i in rows if lo <= i <= hi}
            assert lo in rows and hi in rows, f"troubleshooting names unknown event {head}"
    assert covered == set(rows), sorted(set(rows) - covered)


# ------------------------------------------------------------- commands

def command_lines(text):
    """Every `openum ...` command line of the guide's shell blocks and inline code."""
    lines = []
    for _, info, body in blocks(text):
        if info not in ("sh", ""):
            continue
        for line in body.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("openum "):
                lines.append(line)
    for m in re.finditer(r"`(openum [^`]*)`", text.replace("\n", " ")):
        if "..." not in m.group(1) and "COMMAND" not in m.group(1):
            lines.append(m.group(1))
    return lines


def help_of(openum, *args):
    p = openum.run(*args, "--help")
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


@pytest.mark.parametrize("doc", ["docs/guide.md", "README.md"])
def test_every_openum_command_in_the_guide_exists_with_its_options(openum, doc):
    with open(os.path.join(ROOT, doc)) as f:
        text = f.read()
    # the placeholders for later work name commands that do not exist yet
    text = re.sub(r"<!-- calls:.*?\n\n", "", text, flags=re.S)
    lines = command_lines(text)
    assert len(lines) >= (40 if doc.endswith("guide.md") else 8), lines
    top = help_of(openum)
    global_opts = set(re.findall(r"--[a-z-]+", top))
    for line in lines:
        argv = shlex.split(line)[1:]
        rest, i = [], 0
        while i < len(argv):  # global options may appear anywhere
            if argv[i] in ("--data", "--config"):
                i += 2
                continue
            if argv[i] not in ("--json", "--as-owner"):
                rest.append(argv[i])
            i += 1
        cmd = rest[0]
        assert re.search(rf"^  {cmd} ", top, re.M), f"no command '{cmd}': {line}"
        text = help_of(openum, cmd)
        subs = set(re.findall(rf"openum {cmd} ([a-z][a-z-]*)", text))
        if subs and len(rest) > 1 and not rest[1].startswith("-"):
            if rest[1] in subs:
                text += help_of(openum, cmd, rest[1])
            else:
                assert cmd == "cert" and rest[1] in ("--help",), f"no '{cmd} {rest[1]}': {line}"
        for opt in (a.split("=")[0] for a in rest if a.startswith("--")):
            assert opt in text or opt in global_opts, f"'{opt}' unknown to '{cmd}': {line}"


def test_unchecked_snippets_are_marked_and_later_sections_exist():
    text = guide()
    for vendor in ("AudioCodes", "Cisco CUBE", "Asterisk", "FreeSWITCH"):
        head = re.search(rf"^### 5\.\d {vendor}.*$", text, re.M)
        assert head and "from the vendor's documentation" in head.group(0), vendor
    assert "not run here" in text.split("## 9 IPsec", 1)[1].split("## 10", 1)[0]
    assert "exclude the IP gateways and IP PBXs" in text
    assert "<!-- calls:" in text
    # the eight steps of the seed, each mapped to openum
    steps = text.split("## 2 The eight steps", 1)[1].split("## 3", 1)[0]
    assert [int(n) for n in re.findall(r"^\| (\d) \|", steps, re.M)] == list(range(1, 9))


# ------------------------------------------------------------- a secured server

@pytest.fixture
def world(store, tmp_path):
    """openum secured for um1.example.com with its self-signed certificate
    exported (the gateways' um1.pem); gateway pbx1 at 127.0.0.1 identified
    by its certificate from the test CA; a certificate of an unknown CA."""
    w = type("World", (), {})()
    w.o = store
    w.tls = free_port()
    store.conf(f"fqdn = {FQDN}\nsip_tcp = 127.0.0.1:{free_port()}\n"
               f"sip_tls = 127.0.0.1:{w.tls}\nevents_interval = 1\n")
    pki = PKI(tmp_path / "pki")
    w.ca = pki.ca("ca", "Example Voice CA")
    w.pbx1 = pki.leaf("pbx1", w.ca, cn="pbx1.example.com", dns=["pbx1.example.com"])
    other = pki.ca("other", "Other CA")
    w.rogue = pki.leaf("rogue", other, cn="pbx1.example.com", dns=["pbx1.example.com"])
    w.other_ca = other.cert_path
    store.ok("dialplan", "new", "main", "--digits", "4", "--security", "secured",
             "--no-reload")
    store.ok("server", "set", "--dialplans", "main", "--no-reload")
    sha1 = store.json("cert", "new-selfsigned", "--fqdn", FQDN, "--no-reload")["sha1"]
    w.um1 = str(tmp_path / "um1.pem")
    store.ok("cert", "export", sha1[:8], "--out", w.um1)
    store.ok("cert", "import", w.ca.cert_path, "--trusted", "--yes", "--no-reload")
    store.ok("gateway", "new", "pbx1", "--address", "127.0.0.1", "--tls-name",
             "pbx1.example.com", "--dialplan", "main", "--no-reload")
    w.proc = store.serve()
    assert store.json("status")["mode"] == "secured"
    return w


def answered(o):
    return o.json("status")["sip"]["answered"]


def rejected_1130(o, reason):
    return wait_for(lambda: [e for e in o.events("--id", "1130")
                             if e["fields"]["reason"] == reason], timeout=10)


# ------------------------------------------------------------- Kamailio

KAMAILIO_MODULES = (glob.glob("/usr/lib/*/kamailio/modules") + ["/usr/lib/kamailio/modules"])[0]


def kamailio_options(w, tmp_path, cert, ca_list):
    """Kamailio configured from the guide's two snippets: an OPTIONS sent to
    it over UDP is relayed to openum by route(OPENUM). Returns the final
    status code Kamailio answers."""
    d = tmp_path / ("kam-" + uuid.uuid4().hex[:6])
    d.mkdir()
    tls_cfg = checked("kamailio-tls.cfg")
    for a, b in (("/etc/kamailio/pbx1.pem", cert.cert_path),
                 ("/etc/kamailio/pbx1.key", cert.key_path),
                 ("/etc/kamailio/openum-ca.pem", ca_list)):
        assert a in tls_cfg
        tls_cfg = tls_cfg.replace(a, b)
    (d / "tls.cfg").write_text(tls_cfg)
    udp, ktls = free_port(kind=socket.SOCK_DGRAM), free_port()
    cfg = checked("kamailio.cfg")
    for a, b in (("192.0.2.10:5061", f"127.0.0.1:{ktls}"),
                 (f"{FQDN}:5061", f"127.0.0.1:{w.tls}"),
                 ("/etc/kamailio/tls.cfg", str(d / "tls.cfg"))):
        assert a in cfg
        cfg = cfg.replace(a, b)
    # the rest of a minimal kamailio.cfg around the guide's parts
    (d / "kamailio.cfg").write_text(
        "#!KAMAILIO\ndebug=2\nlog_stderror=yes\nchildren=1\ntcp_children=1\n"
        f"listen=udp:127.0.0.1:{udp}\nmpath=\"{KAMAILIO_MODULES}/\"\n"
        + cfg.replace('modparam("tls"', 'modparam("tm", "fr_timer", 4000)\nmodparam("tls"', 1)
        + "\nrequest_route {\n\troute(OPENUM);\n}\n")
    log = open(d / "kamailio.log", "wb")
    k = subprocess.Popen(["kamailio", "-f", str(d / "kamailio.cfg"), "-DD", "-E"],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: k.poll() is not None or subprocess.run(
            ["ss", "-ltn", f"sport = :{ktls}"], capture_output=True,
            text=True).stdout.count("\n") > 1, timeout=20)
        assert k.poll() is None, (d / "kamailio.log").read_text()[-3000:]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(20)
        port = s.getsockname()[1]
        s.sendto((f"OPTIONS sip:um@{FQDN} SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{uuid.uuid4().hex[:12]}"
                  ";rport\r\nFrom: <sip:phone@pbx1.example.com>;tag=k1\r\n"
                  f"To: <sip:um@{FQDN}>\r\nCall-ID: {uuid.uuid4().hex}@kamailio.test\r\n"
                  "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(),
                 ("127.0.0.1", udp))
        while True:
            code = int(s.recv(65536).split(b" ", 2)[1])
            if code >= 200:
                return code
    finally:
        k.terminate()
        try:
            k.wait(20)
        except subprocess.TimeoutExpired:
            k.kill()
            k.wait()


kamailio = pytest.mark.skipif(not shutil.which("kamailio") or not os.path.exists(
    os.path.join(KAMAILIO_MODULES, "tls.so")), reason="kamailio with its tls module missing")


@kamailio
def test_kamailio_from_the_guide_relays_options_over_mutual_tls(world, tmp_path):
    before = answered(world.o)
    assert kamailio_options(world, tmp_path, world.pbx1, world.um1) == 200, world.o.log()[-2000:]
    assert answered(world.o) == before + 1


@kamailio
def test_kamailio_with_an_untrusted_client_certificate_is_refused(world, tmp_path):
    code = kamailio_options(world, tmp_path, world.rogue, world.um1)
    assert code != 200
    assert rejected_1130(world.o, "unknown CA"), world.o.log()[-2000:]
    assert answered(world.o) == 0


@kamailio
def test_kamailio_refuses_openum_without_its_certificate_in_ca_list(world, tmp_path):
    code = kamailio_options(world, tmp_path, world.pbx1, world.other_ca)
    assert code != 200
    assert answered(world.o) == 0


# ------------------------------------------------------------- baresip

@pytest.mark.skipif(not shutil.which("baresip"), reason="baresip missing")
@pytest.mark.parametrize("trusted", [True, False])
def test_baresip_from_the_guide_gets_options_200(world, tmp_path, trusted):
    cert = world.pbx1 if trusted else world.rogue
    conf = checked("baresip-config")
    for a, b in (("/etc/baresip/pbx1-cert-and-key.pem", cert.both_path),
                 ("/etc/baresip/openum-ca.pem", world.um1)):
        assert a in conf
        conf = conf.replace(a, b)
    d = tmp_path / "baresip"
    d.mkdir()
    (d / "config").write_text("module_path /usr/lib/baresip/modules\n"
                              f"sip_listen 127.0.0.1:{free_port()}\n" + conf +
                              "module account.so\nmodule menu.so\nmodule g711.so\n")
    (d / "accounts").write_text("<sip:pbx1@127.0.0.1>;regint=0\n")
    (d / "contacts").write_text("")
    cmd = [b for n, i, b in blocks(guide()) if i == "sh" and "baresip -e" in b][0]
    argv = shlex.split(cmd.strip())
    assert argv[:2] == ["baresip", "-e"]
    r = subprocess.run(["baresip", "-f", str(d), "-s", "-t", "4", "-e",
                        argv[2].replace(f"{FQDN}:5061", f"127.0.0.1:{world.tls}")],
                       capture_output=True, text=True, timeout=60, cwd=d)
    out = r.stdout + r.stderr
    if trusted:
        assert "SIP/2.0 200 OK" in out, out[-3000:] + world.o.log()[-2000:]
    else:
        assert "SIP/2.0 200 OK" not in out
        assert rejected_1130(world.o, "unknown CA")


# ------------------------------------------------------------- the OPTIONS ping

@pytest.mark.parametrize("case", ["ok", "wrong-ca", "untrusted-gateway"])
def test_options_ping_from_the_guide(world, case):
    cmd = checked("options-ping")
    cert = world.rogue if case == "untrusted-gateway" else world.pbx1
    for a, b in ((f"{FQDN}:5061", f"127.0.0.1:{world.tls}"),
                 ("-CAfile um1.pem", "-CAfile " + (world.other_ca if case == "wrong-ca"
                                                   else world.um1)),
                 ("-cert pbx1.pem", "-cert " + cert.cert_path),
                 ("-key pbx1.key", "-key " + cert.key_path)):
        assert a in cmd
        cmd = cmd.replace(a, b)
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
    if case == "ok":
        assert r.stdout.startswith("SIP/2.0 200 OK"), r.stdout + r.stderr
    else:
        assert "SIP/2.0 200" not in r.stdout
    if case == "wrong-ca":
        assert "verify error" in r.stderr or "certificate verify failed" in r.stderr, r.stderr
    if case == "untrusted-gateway":
        assert rejected_1130(world.o, "unknown CA")


@pytest.mark.parametrize("doc", ["docs/guide.md", "README.md", "CONTRIBUTING.md"])
def test_newcomer_documents_cite_no_requirement_numbers(doc):
    """The requirement numbers (R1 ... R22) belong to a document the
    repository does not hold: a newcomer's documents never cite them."""
    with open(os.path.join(ROOT, doc)) as f:
        text = f.read()
    found = re.findall(r".{0,30}\bR[0-9]{1,2}\b.{0,30}", text)
    assert not found, found
