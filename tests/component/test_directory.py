"""The directory through the real `openum` binary (issue 3, R3, R4, R15):
every rule refused with a clear message, the right exit code and the store
unchanged; dry runs; JSON; two processes changing the directory at once;
root acting on a store owned by the service user; a running server picking
up a change through the control socket without a restart."""
import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading

import pytest

from conftest import BIN, Openum

TABLES = ["dialplans", "gateways", "gateway_addresses", "servers", "server_dialplans",
          "mailboxes", "mailbox_policies", "meta"]


def dump(o):
    """Every row of every directory table, to prove that nothing changed."""
    db = sqlite3.connect(f"file:{o.data}/openum.db?mode=ro", uri=True)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    finally:
        db.close()


def integrity(o):
    db = sqlite3.connect(f"file:{o.data}/openum.db?mode=ro", uri=True)
    try:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        fk = db.execute("PRAGMA foreign_key_check").fetchall()
        return ok, fk
    finally:
        db.close()


@pytest.fixture
def directory(store):
    """A store with an Unsecured plan U (pbx, mailbox 1000) and a Secured
    plan S (sbc, by FQDN)."""
    store.ok("dialplan", "new", "U", "--digits", "4", "--no-reload")
    store.ok("dialplan", "new", "S", "--digits", "4", "--security", "secured", "--no-reload")
    store.ok("gateway", "new", "pbx", "--address", "10.0.0.1", "--dialplan", "U", "--no-reload")
    store.ok("gateway", "new", "sbc", "--address", "sbc.example.com", "--dialplan", "S",
             "--no-reload")
    store.ok("mailbox", "new", "1000", "--dialplan", "U", "--name", "Alice", "--no-reload")
    return store


def test_help_everywhere(openum):
    for cmd in ["dialplan", "gateway", "server", "mailbox"]:
        p = openum.ok(cmd, "--help")
        assert f"usage: openum {cmd}" in p.stdout, cmd
    assert not os.path.exists(openum.data)


def test_commands_without_store_fail_clearly(openum):
    p = openum.run("gateway", "list")
    assert p.returncode == 1
    assert "openum init" in p.stderr
    assert not os.path.exists(openum.data)


# (arguments, exit code, words the message must contain)
BROKEN = [
    # R4: a gateway of a SIPSecured/Secured plan needs a TLS name, TLS, 5061
    (["gateway", "new", "gw", "--address", "10.0.0.2", "--dialplan", "S"], 1,
     ["Secured", "5061", "--tls-name"]),
    (["gateway", "new", "gw", "--address", "10.0.0.2", "--dialplan", "S", "--tls-name",
      "gw.example.com", "--port", "5062"], 1, ["port 5061"]),
    (["gateway", "new", "gw", "--address", "10.0.0.2", "--dialplan", "S", "--tls-name",
      "gw.example.com", "--transport", "tcp"], 1, ["must use TLS"]),
    (["gateway", "set", "sbc", "--port", "5060"], 1, ["5061"]),
    (["gateway", "set", "sbc", "--tls-name", "none"], 1, ["TLS name"]),
    (["gateway", "set", "pbx", "--dialplan", "S"], 1, ["Secured"]),
    # switching a plan to SIPSecured/Secured while it has such gateways: listed
    (["dialplan", "set", "U", "--security", "sipsecured"], 1, ["SIPSecured", "pbx"]),
    (["dialplan", "set", "U", "--security", "secured"], 1, ["Secured", "pbx"]),
    # two enabled gateways claiming one TLS name
    (["gateway", "new", "gw", "--address", "10.0.0.2", "--dialplan", "U", "--tls-name",
      "SBC.Example.com", "--transport", "tls"], 1, ["already claimed", "sbc"]),
    (["gateway", "set", "pbx", "--tls-name", "sbc.example.com", "--transport", "tls",
      "--port", "5061"], 1, ["already claimed"]),
    # one address, two trusted gateways (binary compare: IPv4-mapped IPv6)
    (["gateway", "new", "gw", "--address", "::ffff:10.0.0.1", "--dialplan", "U"], 1,
     ["already belongs", "pbx"]),
    # extension length differs from the plan's digits
    (["mailbox", "new", "123", "--dialplan", "U"], 1, ["3 digits", "4-digit"]),
    (["mailbox", "new", "12345", "--dialplan", "U"], 1, ["4-digit"]),
    (["dialplan", "set", "U", "--digits", "5"], 1, ["1000"]),
    # duplicate names (regardless of case)
    (["dialplan", "new", "u", "--digits", "3"], 1, ["already exists"]),
    (["gateway", "new", "PBX", "--address", "10.0.0.9", "--dialplan", "U"], 1,
     ["already exists"]),
    (["mailbox", "new", "1000", "--dialplan", "U"], 1, ["already has a mailbox"]),
    # removing a dial plan still in use
    (["dialplan", "remove", "U"], 1, ["still in use", "pbx", "1000"]),
    (["dialplan", "remove", "S"], 1, ["still in use", "sbc"]),
    # an address that is neither an IP nor a valid FQDN
    (["gateway", "new", "gw", "--address", "10.0.0.256", "--dialplan", "U"], 2, ["neither"]),
    (["gateway", "new", "gw", "--address", "gw_1.example.com", "--dialplan", "U"], 2,
     ["neither"]),
    (["gateway", "new", "gw", "--address", "gw", "--dialplan", "U"], 2, ["neither"]),
    (["gateway", "new", "gw", "--address", "10.0.0.2,*.example.com", "--dialplan", "U"], 2,
     ["neither"]),
    (["gateway", "set", "pbx", "--address", "1.2.3.4.5"], 2, ["neither"]),
    (["gateway", "new", "gw", "--address", "10.0.0.2", "--dialplan", "U", "--tls-name",
      "10.0.0.2", "--transport", "tls"], 2, ["--tls-name"]),
    # ports outside 1-65535
    (["gateway", "new", "gw", "--address", "10.0.0.2", "--dialplan", "U", "--port", "0"], 2,
     ["1-65535"]),
    (["gateway", "new", "gw", "--address", "10.0.0.2", "--dialplan", "U", "--port", "65536"],
     2, ["1-65535"]),
    (["gateway", "new", "gw", "--address", "10.0.0.2", "--dialplan", "U", "--port", "-1"], 2,
     ["1-65535"]),
    (["gateway", "set", "pbx", "--port", "5060x"], 2, ["1-65535"]),
    # a PIN on the command line
    (["mailbox", "new", "1001", "--dialplan", "U", "--pin", "4711"], 2, ["--pin-file"]),
    (["mailbox", "new", "1001", "--dialplan", "U", "--pin=4711"], 2, ["--pin-file"]),
    (["mailbox", "set", "1000", "--pin", "4711"], 2, ["--pin-file"]),
    # other bad values and references
    (["dialplan", "new", "X", "--digits", "21"], 2, ["1 to 20"]),
    (["dialplan", "new", "X", "--digits", "0"], 2, ["1 to 20"]),
    (["dialplan", "new", "X"], 2, ["--digits"]),
    (["dialplan", "new", "X", "--digits", "4", "--security", "tls"], 2, ["unsecured"]),
    (["dialplan", "new", "bad/name", "--digits", "4"], 2, ["invalid dial plan name"]),
    (["gateway", "new", "gw", "--address", "10.0.0.2", "--dialplan", "Nope"], 1,
     ["no dial plan named"]),
    (["gateway", "new", "gw", "--address", "10.0.0.2"], 2, ["--dialplan"]),
    (["gateway", "set", "pbx", "--status", "off"], 2, ["enabled"]),
    (["gateway", "set", "nope", "--status", "disabled"], 1, ["no gateway named"]),
    (["gateway", "set", "pbx"], 2, ["nothing to change"]),
    (["gateway", "new", "gw", "--address", "10.0.0.2", "--dialplan", "U", "--bogus"], 2,
     ["unknown option"]),
    (["mailbox", "new", "1001", "--dialplan", "U", "--email", "alice"], 2, ["--email"]),
    (["mailbox", "new", "10a1", "--dialplan", "U"], 2, ["invalid extension"]),
    (["mailbox", "remove", "1999"], 1, ["no mailbox"]),
    (["server", "set", "--dialplans", "U,Nope"], 1, ["Nope"]),
    (["server", "set", "--certificate", "zz-not-hex"], 2, ["thumbprint"]),
    (["server", "set", "--status", "disabled"], 2, ["nonewcalls"]),
]


@pytest.mark.parametrize("args,code,words", BROKEN, ids=[" ".join(b[0]) for b in BROKEN])
def test_rule_refused_and_store_unchanged(directory, args, code, words):
    before = dump(directory)
    p = directory.run(*args)
    assert p.returncode == code, (p.stdout, p.stderr)
    assert p.stderr.startswith("openum: error: "), p.stderr
    for w in words:
        assert w in p.stderr, (w, p.stderr)
    assert dump(directory) == before, "a refused change modified the store"


def test_pin_file_rules(directory, tmp_path):
    before = dump(directory)
    loose = tmp_path / "pin-loose"
    loose.write_text("483920\n")
    os.chmod(loose, 0o644)
    p = directory.run("mailbox", "new", "1001", "--dialplan", "U", "--pin-file", str(loose))
    assert p.returncode == 1 and "chmod 600" in p.stderr, p.stderr
    weak = tmp_path / "pin-weak"
    os.close(os.open(weak, os.O_CREAT | os.O_WRONLY, 0o600))
    # R14: each common pattern is refused, and the message names the rule
    for pin, rule in (("1111", "one digit repeated"), ("1212", "group of digits repeated"),
                      ("123456", "in sequence"), ("4321", "in sequence"),
                      ("2580", "keypad"), ("10011001", "contains the mailbox's extension"),
                      ("1001", "is the mailbox's extension"), ("1122", "every digit doubled"),
                      ("112233", "every digit doubled")):
        weak.write_text(pin + "\n")
        p = directory.run("mailbox", "new", "1001", "--dialplan", "U", "--pin-file", str(weak))
        assert p.returncode == 2 and "too easy" in p.stderr and rule in p.stderr, (pin, p.stderr)
        assert pin in ("1111", "1212", "2580", "4321", "1122", "112233") or \
            pin not in p.stderr  # the examples in the messages
    assert dump(directory) == before
    # from stdin, stored as a salted scrypt hash; the pepper lives outside the DB
    directory.ok("mailbox", "new", "1001", "--dialplan", "U", "--pin-file", "-",
                 "--no-reload", input="483920\n")
    m = directory.json("mailbox", "show", "1001")
    assert m["pin_set"] is True
    row = dump(directory)["mailboxes"]
    assert "483920" not in repr(row)
    pepper = os.path.join(directory.data, "pepper")
    assert os.stat(pepper).st_mode & 0o777 == 0o600


def test_reload_names_greeting_and_pin_changes(server, tmp_path):
    """The reload report (and 1180) names a change of every greeting slot,
    the recorded name included, and a new PIN over an old one, never the
    PIN itself."""
    server.ok("dialplan", "new", "P", "--digits", "4", "--no-reload")
    pin = tmp_path / "pin"
    os.close(os.open(pin, os.O_CREAT | os.O_WRONLY, 0o600))
    pin.write_text("483920\n")
    server.ok("mailbox", "new", "1001", "--dialplan", "P", "--pin-file", str(pin),
              "--no-reload")
    server.ok("reload")
    wav = tmp_path / "name.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(wav), "synth", "1", "sine",
                    "440"], check=True)
    server.ok("mailbox", "set", "1001", "--greeting", f"name={wav}", "--no-reload")
    server.ok("mailbox", "set", "1001", "--greeting", f"busy={wav}", "--no-reload")
    pin.write_text("739251\n")
    server.ok("mailbox", "set", "1001", "--pin-file", str(pin), "--no-reload")
    ch = server.json("reload")["changes"]
    assert "mailbox 1001 in P: " in ch, ch
    assert "busy greeting (none) -> greetings/" in ch, ch
    assert "recorded name (none) -> greetings/" in ch, ch
    assert "pin changed" in ch, ch
    assert "(null)" not in ch and "483920" not in ch and "739251" not in ch, ch
    ev = server.events("--id", "1180")
    assert ev[-1]["fields"]["changes"] == ch
    assert server.json("reload")["changes"] == "none"


def test_removed_mailbox_takes_its_greetings_not_its_messages(store, tmp_path):
    """`mailbox remove`: the greeting files (the recorded name is someone's
    voice) go with the row, those of other mailboxes stay; the Maildir
    stays (nothing recorded is lost)."""
    store.ok("dialplan", "new", "P", "--digits", "4", "--no-reload")
    store.ok("mailbox", "new", "1001", "--dialplan", "P", "--no-reload")
    store.ok("mailbox", "new", "1002", "--dialplan", "P", "--no-reload")
    wav = tmp_path / "g.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(wav), "synth", "1", "sine",
                    "440"], check=True)
    for ext in ("1001", "1002"):
        for kind in ("busy", "name"):
            store.ok("mailbox", "set", ext, "--greeting", f"{kind}={wav}", "--no-reload")
    uid = store.json("mailbox", "show", "1001")["id"]
    other = store.json("mailbox", "show", "1002")["id"]
    gdir = os.path.join(store.data, "greetings")
    mail = os.path.join(store.data, "mail", uid, "cur")
    os.makedirs(mail, 0o700)
    with open(os.path.join(mail, "1.K0.host:2,S"), "w") as f:
        f.write("Subject: kept\n\nbody\n")
    mine = sorted(f for f in os.listdir(gdir) if f.startswith(uid))
    assert len(mine) == 2
    store.ok("mailbox", "remove", "1001", "--no-reload")
    assert [f for f in os.listdir(gdir) if f.startswith(uid)] == []
    assert len([f for f in os.listdir(gdir) if f.startswith(other)]) == 2
    assert os.listdir(mail) == ["1.K0.host:2,S"]


def test_server_show_names_the_fqdn_in_effect(store):
    """Without `server set --fqdn`, what the server really uses: openum.conf's
    fqdn when the file sets one, else the host name; never a vague "from
    openum.conf" for a key that is commented out."""
    conf = os.path.join(store.data, "openum.conf")
    assert "\n#fqdn = " in open(conf).read()  # init's file: commented out
    out = store.ok("server", "show").stdout
    line = next(l for l in out.splitlines() if l.startswith("fqdn:"))
    assert "from openum.conf" not in line, line
    assert "no fqdn in " + conf in line and "the host name" in line, line
    hostname = socket.gethostname()
    assert line.rstrip().endswith(f"{hostname})"), (line, hostname)
    # the same in what `server set` prints after a change
    out = store.ok("server", "set", "--status", "enabled", "--no-reload").stdout
    assert line in out.splitlines(), out
    # set in the file: that value, and where it comes from
    with open(conf, "a") as f:
        f.write("fqdn = UM7.Example.NET\n")
    out = store.ok("server", "show").stdout
    assert f"fqdn:         (no --fqdn set: fqdn = um7.example.net from {conf})" in out, out
    # set in the directory: it wins, shown as is
    store.ok("server", "set", "--fqdn", "um8.example.org", "--no-reload")
    assert "fqdn:         um8.example.org\n" in store.ok("server", "show").stdout


def test_dry_run_changes_nothing(directory):
    before = dump(directory)
    for args in (["gateway", "new", "gw9", "--address", "10.0.0.9", "--dialplan", "U"],
                 ["gateway", "set", "pbx", "--status", "disabled"],
                 ["dialplan", "new", "D", "--digits", "6"],
                 ["dialplan", "set", "U", "--pilot", "+4930555"],
                 ["mailbox", "new", "1002", "--dialplan", "U"],
                 ["server", "set", "--dialplans", "U,S"]):
        p = directory.ok(*args, "--dry-run")
        assert "dry run: nothing was changed" in p.stdout, p.stdout
        r = directory.json(*args, "--dry-run")
        assert r["ok"] and r["dry_run"] is True
    assert dump(directory) == before


def test_json_round_trip(directory):
    r = directory.json("gateway", "new", "ha", "--address", "10.0.1.1,2001:DB8::7",
                       "--dialplan", "U", "--max-calls", "30", "--outcalls", "yes",
                       "--mwi", "yes", "--no-reload")
    g = r["gateway"]
    assert g["addresses"] == ["10.0.1.1", "2001:db8::7"]
    assert (g["port"], g["transport"], g["tls_name"]) == (5060, "tcp", None)
    assert (g["max_calls"], g["outcalls"], g["mwi"]) == (30, True, True)
    sbc = directory.json("gateway", "show", "SBC")
    # defaults of a Secured plan: TLS, 5061, TLS name from the FQDN address
    assert (sbc["transport"], sbc["port"], sbc["tls_name"]) == ("tls", 5061, "sbc.example.com")
    names = [g["name"] for g in directory.json("gateway", "list")]
    assert names == ["ha", "pbx", "sbc"]
    plans = {p["name"]: p for p in directory.json("dialplan", "list")}
    assert plans["S"]["security"] == "secured" and plans["U"]["digits"] == 4
    mbs = directory.json("mailbox", "list", "--dialplan", "U")
    assert [m["extension"] for m in mbs] == ["1000"] and len(mbs[0]["id"]) == 32
    # same extension in another plan; then --dialplan is needed to pick
    directory.ok("mailbox", "new", "1000", "--dialplan", "S", "--no-reload")
    p = directory.run("mailbox", "show", "1000")
    assert p.returncode == 1 and "--dialplan" in p.stderr
    assert directory.json("mailbox", "show", "1000", "--dialplan", "S")["dialplan"] == "S"
    directory.ok("cert", "new-selfsigned", "--fqdn", "um.example.com", "--no-reload")
    thumb = directory.json("cert", "list", "--store", "personal")[0]["sha1"]
    srv = directory.json("server", "set", "--dialplans", "U,S", "--certificate", thumb,
                         "--no-reload")["server"]
    assert srv["dialplans"] == ["S", "U"] and srv["secured_start"] is True
    assert srv["certificate"] == thumb
    assert directory.json("server", "set", "--certificate", "auto",
                          "--no-reload")["server"]["certificate"] == "auto"
    # removals in order work
    directory.ok("server", "set", "--dialplans", "none", "--no-reload")
    directory.ok("gateway", "remove", "sbc", "--no-reload")
    directory.ok("mailbox", "remove", "1000", "--dialplan", "S", "--no-reload")
    directory.ok("dialplan", "remove", "S", "--no-reload")
    assert [p["name"] for p in directory.json("dialplan", "list")] == ["U"]


def test_disabled_gateway_frees_its_tls_name(directory):
    directory.ok("gateway", "set", "sbc", "--status", "disabled", "--no-reload")
    directory.ok("gateway", "new", "sbc2", "--address", "10.0.0.7", "--dialplan", "S",
                 "--tls-name", "sbc.example.com", "--no-reload")
    before = dump(directory)
    for st in ("enabled", "nonewcalls"):
        p = directory.run("gateway", "set", "sbc", "--status", st)
        assert p.returncode == 1 and "already claimed" in p.stderr
    assert dump(directory) == before


def _race(o, names, results):
    for n in names:
        p = o.run(*n)
        results.append((n, p.returncode, p.stderr))


def test_two_processes_lose_nothing(directory):
    """2 x 50 `gateway new` at once, plus both racing for the same 10
    names: every change lands once, failures say why, the file is intact."""
    jobs = [[], []]
    for k in range(2):
        for i in range(50):
            jobs[k].append(["gateway", "new", f"g{k}-{i}", "--address", f"10.{k + 1}.{i}.1",
                            "--dialplan", "U", "--no-reload"])
        for i in range(10):
            jobs[k].append(["gateway", "new", f"both-{i}", "--address", f"10.9.{i}.{k + 1}",
                            "--dialplan", "U", "--no-reload"])
    results = []
    threads = [threading.Thread(target=_race, args=(directory, j, results)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [r for r in results if r[1] not in (0, 1)]
    assert not bad, bad
    for n, rc, err in results:
        if n[2].startswith("g"):
            assert rc == 0, (n, err)
        elif rc:
            assert "already exists" in err, err
    names = {g["name"] for g in directory.json("gateway", "list")}
    for k in range(2):
        for i in range(50):
            assert f"g{k}-{i}" in names
    assert sum(1 for n in names if n.startswith("both-")) == 10
    assert sum(1 for r in results if r[0][2].startswith("both-") and r[1] == 0) == 10
    assert len(names) == 100 + 10 + 2
    assert integrity(directory) == ("ok", [])


@pytest.fixture
def service_user():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = f"openum-test-{os.getpid()}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture
def service_store(service_user):
    """A store where the service user can reach it (pytest's tmp is 0700)."""
    parent = tempfile.mkdtemp(prefix="openum-owner-")
    os.chmod(parent, 0o711)
    o = Openum(os.path.join(parent, "data"))
    o.ok("init")
    o.ok("dialplan", "new", "U", "--digits", "4", "--no-reload")
    yield o
    o.close()
    shutil.rmtree(parent, ignore_errors=True)


def test_root_leaves_no_root_owned_file(service_store, service_user):
    directory = service_store
    uid, gid = service_user.pw_uid, service_user.pw_gid
    for root, dirs, files in os.walk(directory.data):
        for n in dirs + files:
            os.chown(os.path.join(root, n), uid, gid)
    os.chown(directory.data, uid, gid)
    before = dump(directory)
    p = directory.run("gateway", "new", "gw", "--address", "10.0.0.5", "--dialplan", "U")
    assert p.returncode == 1, p.stderr
    assert "--as-owner" in p.stderr and service_user.pw_name in p.stderr
    assert dump(directory) == before
    # with --as-owner: changes made, including a first PIN (pepper file) and the WAL
    directory.ok("--as-owner", "gateway", "new", "gw", "--address", "10.0.0.5",
                 "--dialplan", "U")
    directory.ok("--as-owner", "mailbox", "new", "1001", "--dialplan", "U", "--pin-file",
                 "-", input="483920\n")
    directory.ok("--as-owner", "dialplan", "set", "U", "--pilot", "5000")
    # a PIN file private to root is read before openum drops to the owner
    fd, pinfile = tempfile.mkstemp()
    os.write(fd, b"918273\n")
    os.close(fd)
    try:
        directory.ok("--as-owner", "mailbox", "set", "1001", "--pin-file", pinfile)
    finally:
        os.unlink(pinfile)
    assert {g["name"] for g in directory.json("--as-owner", "gateway", "list")} >= {"gw"}
    foreign = []
    for root, dirs, files in os.walk(directory.data):
        for n in dirs + files + ["."]:
            path = os.path.join(root, n)
            st = os.lstat(path)
            if st.st_uid != uid:
                foreign.append((path, st.st_uid))
    assert not foreign, foreign
    assert os.path.exists(os.path.join(directory.data, "pepper"))
    p = directory.run("gateway", "list", as_user=service_user.pw_name)
    assert p.returncode == 0 and "gw" in p.stdout, p.stderr


def test_serve_picks_up_gateway_change_without_restart(server):
    st = server.json("status")
    pid, gen, dgen = st["pid"], st["generation"], st["directory"]["generation"]
    assert st["directory"]["gateways"] == 0
    server.ok("dialplan", "new", "U", "--digits", "4")
    p = server.ok("gateway", "new", "pbx", "--address", "127.0.0.2", "--dialplan", "U")
    assert "running server reloaded" in p.stdout, p.stdout
    st = server.json("status")
    assert st["pid"] == pid, "the server was restarted"
    assert st["directory"]["gateways"] == 1
    assert st["directory"]["generation"] > dgen and st["generation"] > gen
    # --no-reload: saved, not applied until a reload
    p = server.ok("gateway", "new", "pbx2", "--address", "127.0.0.3", "--dialplan", "U",
                  "--no-reload")
    assert "openum reload" in p.stdout
    assert server.json("status")["directory"]["gateways"] == 1
    server.ok("reload")
    assert server.json("status")["directory"]["gateways"] == 2
    # R9 on reload: associating a Secured plan makes the server secured
    r = server.json("server", "set", "--dialplans", "U")
    assert r["reload"] == "done"
    assert server.json("status")["mode"] == "unsecured"
    server.ok("dialplan", "new", "S", "--digits", "4", "--security", "secured")
    server.ok("server", "set", "--dialplans", "U,S")
    st = server.json("status")
    assert st["mode"] == "secured" and "SIPSecured or Secured" in st["mode_reason"]
    server.ok("server", "set", "--dialplans", "U")
    assert server.json("status")["mode"] == "unsecured"
    # a store broken behind openum's back: the reload is refused, the old view stays
    db = sqlite3.connect(os.path.join(server.data, "openum.db"))
    db.execute("UPDATE gateway_addresses SET host = '127.0.0.2' WHERE host = '127.0.0.3'")
    db.commit()
    db.close()
    p = server.run("reload")
    assert p.returncode == 1, (p.stdout, p.stderr)
    st = server.json("status")
    assert st["pid"] == pid and st["directory"]["gateways"] == 2
    assert st["reloads_rejected"] >= 1


def test_store_from_before_the_directory_is_migrated(store):
    """A schema-1 store (events and meta only, as the foundation made it):
    the first directory command migrates it, keeps its rows and works."""
    path = os.path.join(store.data, "openum.db")
    db = sqlite3.connect(path)
    for t in ["mailboxes", "mailbox_policies", "server_dialplans", "servers",
              "gateway_addresses", "gateways", "dialplans"]:
        db.execute(f"DROP TABLE {t}")
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO events (time_ms, id, level, source, message) "
               "VALUES (1, 1113, 'info', 'server', 'kept across the migration')")
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('sample', 'kept')")
    db.commit()
    db.close()
    assert store.json("dialplan", "list") == []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert db.execute("PRAGMA user_version").fetchone()[0] >= 2
    assert db.execute("SELECT count(*) FROM events WHERE message = "
                      "'kept across the migration'").fetchone()[0] == 1
    assert db.execute("SELECT value FROM meta WHERE key = 'sample'").fetchone()[0] == "kept"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    store.ok("dialplan", "new", "U", "--digits", "4", "--no-reload")
    store.ok("gateway", "new", "pbx", "--address", "10.0.0.1", "--dialplan", "U",
             "--no-reload")


def test_rtp_symmetric_on_a_dial_plan(server):
    """--rtp-symmetric (R10's NAT exception, off by default): shown, changed,
    refused when not yes/no, and reported by the reload."""
    server.ok("dialplan", "new", "N", "--digits", "4", "--no-reload")
    assert server.json("dialplan", "show", "N")["rtp_symmetric"] is False
    server.json("reload")
    p = server.run("dialplan", "set", "N", "--rtp-symmetric", "maybe", "--no-reload")
    assert p.returncode == 2 and "use yes or no" in p.stderr
    server.ok("dialplan", "set", "N", "--rtp-symmetric", "yes", "--no-reload")
    assert server.json("dialplan", "show", "N")["rtp_symmetric"] is True
    assert "rtp symmetric: yes" in server.ok("dialplan", "show", "N").stdout
    assert "dial plan N: rtp symmetric no -> yes" in server.json("reload")["changes"]
    server.ok("dialplan", "new", "M", "--digits", "3", "--rtp-symmetric", "yes", "--no-reload")
    assert server.json("dialplan", "show", "M")["rtp_symmetric"] is True
