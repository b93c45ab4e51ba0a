"""The `openum` command and `openum serve` basics (issue: foundation):
store creation, configuration errors, start mode, status, reload, signals,
ownership. Everything through the real binary."""
import json
import os
import select
import shutil
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, Openum, free_port


def test_version_and_help_everywhere(openum):
    assert openum.ok("--version").stdout.startswith("openum ")
    assert "usage: openum" in openum.ok("--help").stdout
    for cmd in ["init", "serve", "status", "reload", "events"]:
        p = openum.ok(cmd, "--help")
        assert f"usage: openum {cmd}" in p.stdout, cmd
    for cmd in ["dialplan", "dialplan new", "dialplan set", "gateway", "gateway new",
                "gateway remove", "server", "server set", "mailbox", "mailbox new", "cert",
                "cert list", "cert import", "cert export", "cert select", "cert new-selfsigned"]:
        p = openum.ok(*cmd.split(), "--help")
        assert "usage: openum " + cmd.split()[0] in p.stdout, cmd
    # help needs no store
    assert not os.path.exists(openum.data)


def test_bad_usage_exits_2(openum):
    assert openum.run("nosuchcommand").returncode == 2
    p = openum.run()  # only --data: no command
    assert p.returncode == 2 and "usage: openum" in p.stderr, p
    assert openum.run("init", "extra").returncode == 2
    assert openum.run("events", "--since", "yesterday-ish").returncode == 2
    assert openum.run("events", "--id", "9999").returncode == 2
    assert openum.run("events", "--level", "loud").returncode == 2
    assert openum.run("serve", "--bogus").returncode == 2
    p = subprocess.run([BIN], capture_output=True, text=True)
    assert p.returncode == 2


@pytest.mark.parametrize("args", [["status"], ["reload"], ["events"], ["serve"]])
def test_commands_without_store_fail_with_path(openum, args):
    p = openum.run(*args)
    assert p.returncode == 1, p
    assert openum.data in p.stderr
    assert "openum init" in p.stderr
    assert not os.path.exists(openum.data), "nothing may be created implicitly"


def test_openum_data_env_is_used(tmp_path):
    d = tmp_path / "envstore"
    p = subprocess.run([BIN, "init"], env={**os.environ, "OPENUM_DATA": str(d)},
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert (d / "openum.db").exists()


def test_init_creates_private_store(openum):
    old = os.umask(0o022)
    try:
        openum.ok("init")
    finally:
        os.umask(old)
    st = os.stat(openum.data)
    assert stat.S_IMODE(st.st_mode) == 0o700
    for root, dirs, files in os.walk(openum.data):
        for d in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode) == 0o700, d
        for f in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode) == 0o600, f
    for sub in ["certs/personal", "certs/trusted", "certs/crl", "spool", "mail"]:
        assert os.path.isdir(os.path.join(openum.data, sub)), sub


def test_init_twice_is_harmless(store):
    conf = os.path.join(store.data, "openum.conf")
    with open(conf, "a") as f:
        f.write("fqdn = kept.example.com\n")
    before = open(conf).read()
    p = store.ok("init")
    assert "already initialised" in p.stdout
    assert open(conf).read() == before
    j = store.json("init")
    assert j["ok"] is True and j["created"] is False


def test_serve_init_creates_store_for_demo(openum):
    openum_dir = openum.data
    assert not os.path.exists(openum_dir)
    env_conf = os.path.join(os.path.dirname(openum_dir), "demo.conf")
    with open(env_conf, "w") as f:
        f.write(f"[server]\nsip_tcp = 127.0.0.1:{free_port()}\n")
    p = openum.serve("--init", "--config", env_conf)
    assert os.path.exists(os.path.join(openum_dir, "openum.db"))
    assert openum.stop(p) == 0


@pytest.mark.parametrize("text,line,needle", [
    ("fqdn = ok.example.com\nnosuchkey = 1\n", 3, "unknown key 'nosuchkey'"),
    ("start_secured = maybe\n", 2, "start_secured must be 0 or 1"),
    ("sip_tcp = 127.0.0.1:70000\n", 2, "port must be 1-65535"),
    ("fqdn = a.example\nfqdn = b.example\n", 3, "set twice (first at line 2)"),
    ("tls_min_version = 1.1\n", 2, "tls_min_version must be 1.2 or 1.3"),
    ("rtp_ports = 30000-20000\n", 2, "rtp_ports"),
    ("srtp_backend = nss\n", 2, "srtp_backend must be openssl or libsrtp2"),
    ("fqdn = bad_name!\n", 2, "fqdn must be a host name"),
    ("just words\n", 2, "expected key = value"),
])
def test_config_errors_name_file_and_line(store, text, line, needle):
    path = store.conf(text)
    p = store.run("serve")
    assert p.returncode == 1
    assert f"{path}:{line}:" in p.stderr, p.stderr
    assert needle in p.stderr, p.stderr


def test_unknown_section_is_an_error(store):
    path = os.path.join(store.data, "openum.conf")
    with open(path, "w") as f:
        f.write("[server]\nfqdn = a.example\n\n[sever]\n")
    p = store.run("serve")
    assert p.returncode == 1 and f"{path}:4: unknown section [sever]" in p.stderr


def test_missing_explicit_config_is_an_error(store):
    p = store.run("serve", "--config", "/nonexistent/openum.conf")
    assert p.returncode == 1 and "/nonexistent/openum.conf" in p.stderr


@pytest.mark.parametrize("start_secured,mode,event", [(0, "unsecured", 1113),
                                                      (1, "secured", 1112)])
def test_start_mode_without_dial_plans(store, start_secured, mode, event):
    """R9: no dial plan associated -> start_secured decides."""
    store.conf(f"start_secured = {start_secured}\nsip_tcp = 127.0.0.1:{free_port()}\n"
               f"sip_tls = 127.0.0.1:{free_port()}\n")
    p = store.serve()
    st = store.json("status")
    assert st["mode"] == mode
    assert "no dial plan" in st["mode_reason"]
    assert store.stop(p) == 0
    ev = store.events("--id", str(event))
    assert len(ev) == 1 and ev[0]["fields"]["reason"].startswith("no dial plan")
    other = 1112 if event == 1113 else 1113
    assert store.events("--id", str(other)) == []


def test_status_reports_running_server(server):
    st = server.json("status")
    assert st["state"] == "running" and st["pid"] == server.proc.pid
    assert st["fqdn"] == "um.test.example"
    assert st["config"].endswith("openum.conf")
    human = server.ok("status").stdout
    assert "um.test.example" in human and "unsecured" in human


def test_bad_reload_keeps_old_configuration(server):
    gen0 = server.json("status")["generation"]
    conf = os.path.join(server.data, "openum.conf")
    good = open(conf).read()
    with open(conf, "w") as f:
        f.write(good.replace("um.test.example", "new.test.example") + "max_calls = lots\n")
    p = server.run("reload")
    assert p.returncode == 1
    assert f"{conf}:" in p.stderr and "max_calls" in p.stderr
    st = server.json("status")
    assert st["fqdn"] == "um.test.example" and st["generation"] == gen0
    assert st["reloads_rejected"] == 1
    ev = server.events("--id", "1181")
    assert ev and "max_calls" in ev[-1]["fields"]["error"]
    # fixed: the reload applies
    with open(conf, "w") as f:
        f.write(good.replace("um.test.example", "new.test.example"))
    r = server.json("reload")
    assert r["ok"] is True and "fqdn" in r["changes"]
    st = server.json("status")
    assert st["fqdn"] == "new.test.example" and st["generation"] == gen0 + 1
    assert server.events("--id", "1180")


def test_reload_lists_every_change(server):
    """`openum reload` and event 1180 name each change: directory objects
    added, removed or changed (a gateway disabled keeps the count), and
    every openum.conf key; items separated by "; " with none trailing."""
    conf = os.path.join(server.data, "openum.conf")
    server.ok("dialplan", "new", "P", "--digits", "4", "--no-reload")
    server.ok("gateway", "new", "gw1", "--address", "127.0.0.2", "--dialplan", "P", "--no-reload")
    server.ok("mailbox", "new", "1001", "--dialplan", "P", "--no-reload")
    first = server.json("reload")["changes"]
    for part in ("dial plan P added", "gateway gw1 added", "mailbox 1001 in P added"):
        assert part in first, first
    server.ok("gateway", "set", "gw1", "--status", "disabled", "--no-reload")
    server.ok("dialplan", "new", "Q", "--digits", "3", "--no-reload")
    server.ok("dialplan", "set", "P", "--pilot", "5000", "--no-reload")
    with open(conf, "a") as f:
        f.write("strict_eku = 1\nmax_calls = 9\n")
    text = open(conf).read().replace("events_interval = 1", "events_interval = 2")
    with open(conf, "w") as f:
        f.write(text)
    r = server.json("reload")
    ch = r["changes"]
    for part in ("gateway gw1: status enabled -> disabled", "dial plan Q added",
                 "dial plan P: pilot (none) -> 5000", "strict_eku 0 -> 1",
                 "events_interval 1 -> 2", "max_calls 100 -> 9"):
        assert part in ch, (part, ch)
    assert not ch.rstrip().endswith(";") and ";;" not in ch, ch
    p = server.ok("reload")
    assert p.stdout.strip() == "reloaded (changes: none)", p.stdout
    ev = [e for e in server.events("--id", "1180") if "strict_eku" in e["fields"]["changes"]]
    assert len(ev) == 1 and ev[0]["fields"]["changes"] == ch


def test_sighup_reloads(server):
    conf = os.path.join(server.data, "openum.conf")
    with open(conf, "a") as f:
        f.write("max_calls = 7\n")
    server.proc.send_signal(1)
    deadline = time.time() + 10
    while time.time() < deadline and server.json("status")["max_calls"] != 7:
        time.sleep(0.1)
    assert server.json("status")["max_calls"] == 7


def test_sigterm_exits_cleanly_and_removes_socket(server):
    sock = os.path.join(server.data, "control.sock")
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert server.stop(server.proc) == 0
    assert not os.path.exists(sock)
    assert server.run("status").returncode == 1


def test_second_server_on_same_store_refused(server):
    p = subprocess.run([BIN, "serve", "--data", server.data], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "another openum serve" in p.stderr
    assert server.json("status")["state"] == "running"


def test_sd_notify_ready(store, tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(20)
    store.conf(f"sip_tcp = 127.0.0.1:{free_port()}\n")
    p = store.serve(env={"NOTIFY_SOCKET": path}, wait=False)
    msgs = []
    while not any("READY=1" in m for m in msgs):
        msgs.append(s.recv(4096).decode())
    store.wait_ready(p)
    p.terminate()
    while not any("STOPPING=1" in m for m in msgs):
        msgs.append(s.recv(4096).decode())
    assert p.wait(20) == 0
    s.close()


def test_control_socket_rejects_garbage_and_unknown(server):
    sock = os.path.join(server.data, "control.sock")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sock)
    c.sendall(b"format-disk\n")
    reply = json.loads(c.recv(4096))
    assert reply == {"ok": False, "error": "unknown command"}
    c.close()
    # an over-long request without newline is cut off
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sock)
    c.settimeout(10)
    try:
        c.sendall(b"x" * 8192)
        data = c.recv(100)
    except (BrokenPipeError, ConnectionResetError):
        data = b""
    assert data == b""
    c.close()
    assert server.json("status")["state"] == "running"


def test_events_with_nothing_to_show_say_so(server):
    """An empty result is a line for people (exit 0), and no line in JSON."""
    assert server.events("--level", "error") == []
    p = server.run("events", "--level", "error")
    assert p.returncode == 0 and p.stdout == "no events at level error or above\n", p
    p = server.run("events", "--id", "1181", "--since", "2999-01-01")
    assert p.returncode == 0, p
    assert p.stdout == "no events with id 1181 since 2999-01-01T00:00:00.000Z\n", p.stdout
    p = server.run("--json", "events", "--level", "error")
    assert p.returncode == 0 and p.stdout == "", p
    # events that exist are listed, without the note
    p = server.run("events", "--level", "info")
    assert p.returncode == 0 and "1113 start-unsecured" in p.stdout, p
    assert "no events" not in p.stdout


def test_events_filters_and_follow(server):
    server.run("reload", check=0)
    evs = server.events()
    ids = [e["id"] for e in evs]
    assert 1113 in ids and 1180 in ids
    assert all(e["id"] == 1180 for e in server.events("--id", "1180"))
    assert server.events("--level", "error") == []
    assert server.events("--since", "2999-01-01") == []
    assert len(server.events("--since", "1h")) == len(evs)
    assert len(server.events("--limit", "1")) == 1
    human = server.ok("events").stdout
    assert "1113 start-unsecured" in human
    # --follow prints events as they come
    f = subprocess.Popen([BIN, "events", "--follow", "--data", server.data, "--id", "1180"],
                         stdout=subprocess.PIPE)
    lines = []
    try:
        time.sleep(0.5)
        server.run("reload", check=0)
        deadline = time.time() + 10
        while time.time() < deadline and len(lines) < 2:
            r, _, _ = select.select([f.stdout], [], [], 0.2)
            if r:
                lines.append(f.stdout.readline())
    finally:
        f.terminate()
        f.wait(10)
    assert len(lines) >= 2


def _make_user(name):
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own a store as another user")
def test_foreign_store_refused_unless_as_owner(tmp_path):
    user = f"omtest{os.getpid() % 100000}"
    _make_user(user)
    try:
        base = tempfile.mkdtemp(prefix="openum-owner-", dir="/tmp")
        os.chmod(base, 0o755)  # the service user must reach its store
        data = os.path.join(base, "svc")
        o = Openum(data)
        o.ok("init")
        subprocess.run(["chown", "-R", f"{user}:{user}", str(data)], check=True)
        before = sorted(os.listdir(data))
        p = o.run("events")
        assert p.returncode == 1 and user in p.stderr and "--as-owner" in p.stderr
        p = o.run("init")
        assert p.returncode == 1 and "--as-owner" in p.stderr
        assert sorted(os.listdir(data)) == before
        o.ok("events", "--as-owner")
        o.ok("init", "--as-owner")
        for root, dirs, files in os.walk(data):
            for n in dirs + files:
                st = os.lstat(os.path.join(root, n))
                assert st.st_uid != 0, f"root-owned file left behind: {n}"
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_control_socket_refuses_other_users(server):
    user = f"omtest{os.getpid() % 100000}b"
    _make_user(user)
    try:
        os.chmod(server.data, 0o711)  # let the other user reach the socket file
        sock = os.path.join(server.data, "control.sock")
        code = ("import socket,sys\n"
                "s=socket.socket(socket.AF_UNIX)\n"
                "try:\n s.connect(sys.argv[1])\nexcept OSError as e:\n print('refused', e.errno); sys.exit(0)\n"
                "s.sendall(b'status\\n'); print('reply', s.recv(100))\n")
        p = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", code, sock],
                           capture_output=True, text=True)
        assert p.stdout.startswith("refused"), p.stdout + p.stderr
    finally:
        os.chmod(server.data, 0o700)
        subprocess.run(["userdel", user], capture_output=True)


def test_server_fqdn_from_directory_overrides_config(server):
    assert server.json("status")["fqdn"] == "um.test.example"
    server.ok("server", "set", "--fqdn", "um2.test.example")
    assert server.json("status")["fqdn"] == "um2.test.example"
    server.ok("server", "set", "--fqdn", "")
    assert server.json("status")["fqdn"] == "um.test.example"


def test_every_allocation_goes_through_om_alloc():
    """The out-of-memory sweeps reach every heap allocation only when none
    bypasses core/alloc (STYLE.md): no malloc/calloc/realloc/free/strdup/
    asprintf/getline... in src/ outside core/alloc.c."""
    import re
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    banned = re.compile(r"(?<![\w.>])(malloc|calloc|realloc|reallocarray|free|strdup|strndup|"
                        r"asprintf|vasprintf|aligned_alloc|posix_memalign|getline|getdelim|"
                        r"open_memstream|scandir)\s*\(")
    found = []
    for root, _, files in os.walk(src):
        for name in files:
            path = os.path.join(root, name)
            if not name.endswith((".c", ".h")) or path.endswith(os.path.join("core", "alloc.c")):
                continue
            text = open(path, encoding="utf-8", errors="replace").read()
            text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments
            text = re.sub(r'"(\\.|[^"\\\n])*"', '""', text)     # strings
            for n, line in enumerate(text.splitlines(), 1):
                if re.sub(r"//.*", "", line) and banned.search(re.sub(r"//.*", "", line)):
                    found.append(f"{os.path.relpath(path, src)}:{n}: {line.strip()}")
    assert not found, "allocations outside om_alloc:\n" + "\n".join(found)


@pytest.mark.parametrize("path,mode,words", [
    ("", 0o750, ["is readable by its group", "chmod 700"]),
    ("", 0o705, ["is readable by others", "chmod 700"]),
    ("certs/trusted", 0o770, ["certs/trusted is writable by its group", "chmod 700"]),
    ("spool", 0o755, ["spool is readable by its group", "chmod 700"]),
    ("openum.db", 0o644, ["openum.db is readable by its group", "chmod 600"]),
    ("openum.conf", 0o622, ["openum.conf is writable by its group", "chmod go-w"]),
])
def test_serve_refuses_a_store_others_can_reach(store, path, mode, words):
    """`serve` checks the data directory's owner and mode before it opens
    anything: a store others can read or write is refused, naming the path
    and the chmod to run; fixed, it starts."""
    store.conf(f"sip_tcp = 127.0.0.1:{free_port()}\nsip_tls = off\n")
    target = os.path.join(store.data, path) if path else store.data
    good = stat.S_IMODE(os.stat(target).st_mode)
    os.chmod(target, mode)
    p = store.run("serve", timeout=30)
    assert p.returncode == 1, p
    for w in words:
        assert w in p.stderr, (w, p.stderr)
    assert not os.path.exists(os.path.join(store.data, "control.sock"))
    os.chmod(target, good)
    proc = store.serve()
    assert store.stop(proc) == 0


def test_serve_refuses_a_store_folder_of_another_user(store):
    store.conf(f"sip_tcp = 127.0.0.1:{free_port()}\nsip_tls = off\n")
    if os.geteuid() != 0:
        pytest.skip("needs root to give a folder to another user")
    mail = os.path.join(store.data, "mail")
    os.chown(mail, 65534, 65534)
    p = store.run("serve", timeout=30)
    assert p.returncode == 1 and "mail belongs to uid 65534" in p.stderr, p.stderr
    os.chown(mail, 0, 0)


def notify_listener(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(20)
    return s, path


def test_sd_notify_watchdog_pings_at_half_the_period(store, tmp_path):
    """With WATCHDOG_USEC set (systemd's WatchdogSec), the control loop sends
    WATCHDOG=1 repeatedly, and still does after a reload; without it, or when
    WATCHDOG_PID names another process, it sends none."""
    s, path = notify_listener(tmp_path)
    store.conf(f"sip_tcp = 127.0.0.1:{free_port()}\n")
    p = store.serve(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}, wait=False)
    msgs = []
    while sum("WATCHDOG=1" in m for m in msgs) < 3 or not any("READY=1" in m for m in msgs):
        msgs.append(s.recv(4096).decode())
    store.wait_ready(p)
    store.ok("reload")
    after = []
    while sum("WATCHDOG=1" in m for m in after) < 2:
        after.append(s.recv(4096).decode())
    assert 'msg="systemd watchdog" interval_ms=200' in store.log()
    p.terminate()
    assert p.wait(20) == 0
    s.close()

    for env in ({}, {"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}):
        o = Openum(tmp_path / f"quiet{len(env)}" / "data")
        o.ok("init")
        o.conf(f"sip_tcp = 127.0.0.1:{free_port()}\n")
        s, path = notify_listener(tmp_path / f"quiet{len(env)}")
        p = o.serve(env={"NOTIFY_SOCKET": path, **env}, wait=False)
        msgs = []
        try:
            while not any("READY=1" in m for m in msgs):
                msgs.append(s.recv(4096).decode())
            o.wait_ready(p)
            o.ok("reload")  # a reload's RELOADING=1/READY=1 come after any early ping
            while sum("READY=1" in m for m in msgs) < 2:
                msgs.append(s.recv(4096).decode())
            p.terminate()
            while not any("STOPPING=1" in m for m in msgs):
                msgs.append(s.recv(4096).decode())
            assert p.wait(20) == 0
        finally:
            o.close()
            s.close()
        assert not any("WATCHDOG=1" in m for m in msgs), (env, msgs)
        assert "systemd watchdog" not in o.log()


def test_test_servers_leave_the_metrics_port_alone(server, tmp_path):
    """The stores the fixtures make turn the metrics listener off (its
    default port is one for the host, and tests run servers at once): two
    servers side by side, one of them on `openum init`'s own openum.conf,
    log nothing about metrics_listen and serve no metrics."""
    other = Openum(tmp_path / "other")
    try:
        other.ok("init")
        with open(os.path.join(other.data, "openum.conf"), "a") as f:
            f.write(f"sip_tcp = 127.0.0.1:{free_port()}\nsip_tls = off\n")
        other.serve()
        for o in (server, other):
            m = o.json("status")["metrics"]
            assert m["listen"] in ("", "off") and m["serving"] is False, m
            assert "metrics_listen" not in o.log(), o.log()
    finally:
        other.close()
