"""Files given to openum and files it writes, one rule everywhere (issue 18
items 1 and 7, hardening item 7): an output never replaces an existing file
without --force and never a device, FIFO, socket, directory or symbolic
link; an input that is a FIFO, directory or device gets a clear error and
never blocks; secrets come from private regular files or a terminal that
does not echo them. And one set of host-name rules for every name openum
takes (cert request, new-selfsigned, server set --fqdn, gateway TLS names,
openum.conf)."""
import os
import pty
import select
import stat
import subprocess
import time

import pytest

from conftest import BIN

FQDN = "um.example.com"


def snapshot(data):
    out = {}
    root = os.path.join(data, "certs")
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def selfsigned(store):
    store.ok("cert", "new-selfsigned", "--fqdn", FQDN, "--no-reload")
    return store.json("cert", "list", "--store", "personal")[0]


# ------------------------------------------------------------ outputs

@pytest.mark.parametrize("sub", ["export", "request"])
def test_out_never_replaces_an_existing_file_without_force(store, tmp_path, sub):
    c = selfsigned(store)
    out = tmp_path / "existing.pem"
    out.write_text("precious\n")
    args = (["cert", "export", c["sha1"], "--out", str(out)] if sub == "export" else
            ["cert", "request", "--fqdn", FQDN, "--out", str(out)])
    before = snapshot(store.data)
    r = store.run(*args)
    assert r.returncode == 1
    assert "exists already" in r.stderr and "--force" in r.stderr
    assert out.read_text() == "precious\n"
    # nothing made for a refused request: no pending key
    assert snapshot(store.data) == before
    store.ok(*args, "--force")
    assert out.read_text().startswith("-----BEGIN")


@pytest.mark.parametrize("sub", ["export", "request"])
def test_out_never_writes_through_a_device_fifo_link_or_directory(store, tmp_path, sub):
    c = selfsigned(store)
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    target = tmp_path / "target"
    target.write_text("keep\n")
    link = tmp_path / "link"
    link.symlink_to(target)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    dev_before = os.lstat("/dev/null")
    for path, word in [("/dev/null", "device"), (str(fifo), "FIFO"), (str(link), "symbolic link"),
                       (str(tmp_path), "directory")]:
        args = (["cert", "export", c["sha1"], "--out", path] if sub == "export" else
                ["cert", "request", "--fqdn", FQDN, "--out", path])
        for extra in ([], ["--force"]):
            r = store.run(*args, *extra, timeout=20)
            assert r.returncode == 1, (path, extra, r.stderr)
            assert word in r.stderr and "never replaced" in r.stderr
    # /dev/null is still the device (run as root it used to become a file)
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == dev_before.st_rdev
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.path.islink(link)
    assert target.read_text() == "keep\n"
    assert sorted(os.listdir(tmp_path)) == ["fifo", "link", "target"]


def test_request_whose_csr_cannot_be_written_keeps_no_key(store, tmp_path):
    """The CSR is written after its key is stored: a write that fails (here
    a folder that does not exist) leaves no pending request behind."""
    before = snapshot(store.data)
    out = tmp_path / "missing" / "um.csr"
    r = store.run("cert", "request", "--fqdn", FQDN, "--out", str(out))
    assert r.returncode == 1
    assert f"cannot write {out}: No such file or directory" in r.stderr, r.stderr
    assert "no request was kept" in r.stderr
    assert snapshot(store.data) == before
    assert store.json("cert", "list", "--store", "requests") == []
    # an input that is not there: the system's words, no stray "it"
    r = store.run("cert", "import", str(tmp_path / "none.pem"))
    assert r.returncode == 1
    assert f"cannot read {tmp_path / 'none.pem'}: No such file or directory" in r.stderr


# ------------------------------------------------------------- inputs

def test_import_of_a_fifo_or_directory_is_a_clear_error_and_never_blocks(store, tmp_path):
    fifo = tmp_path / "in.pem"
    os.mkfifo(fifo)
    for path, word in [(fifo, "FIFO"), (tmp_path, "directory"), ("/dev/zero", "device")]:
        r = store.run("cert", "import", str(path), timeout=20)
        assert r.returncode == 1 and word in r.stderr, r.stderr


def test_secret_file_fifo_is_refused_without_blocking(store, tmp_path):
    c = selfsigned(store)
    fifo = tmp_path / "pw"
    os.mkfifo(fifo, 0o600)
    r = store.run("cert", "export", c["sha1"], "--out", str(tmp_path / "k.pfx"), "--format",
                  "pfx", "--with-key", "--password-file", str(fifo), timeout=20)
    assert r.returncode == 1
    assert "FIFO" in r.stderr and "'-'" in r.stderr
    assert not (tmp_path / "k.pfx").exists()
    store.ok("dialplan", "new", "U", "--digits", "4", "--no-reload")
    r = store.run("mailbox", "new", "1000", "--dialplan", "U", "--pin-file", str(fifo),
                  "--no-reload", timeout=20)
    assert r.returncode == 1 and "FIFO" in r.stderr
    r = store.run("mailbox", "new", "1000", "--dialplan", "U", "--pin-file", str(tmp_path),
                  "--no-reload", timeout=20)
    assert r.returncode == 1 and "directory" in r.stderr


def run_on_tty(args, typed, timeout=30):
    """Runs args with stdin/stdout/stderr on a pseudo-terminal, types
    `typed` when the prompt appears, returns everything the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(args[0], args)
    shown = b""
    sent = False
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:  # the child closed the terminal: it ended
                _, status = os.waitpid(pid, 0)
                return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")
            shown += chunk
        if not sent and b"not echoed" in shown:
            os.write(fd, typed)
            sent = True
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            try:
                while True:
                    r, _, _ = select.select([fd], [], [], 0.2)
                    if not r:
                        break
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        break
                    shown += chunk
            except OSError:
                pass
            return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("no exit: " + shown.decode(errors="replace"))


def test_pin_file_dash_on_a_terminal_does_not_echo(store):
    store.ok("dialplan", "new", "U", "--digits", "4", "--no-reload")
    code, shown = run_on_tty([BIN, "mailbox", "new", "1000", "--dialplan", "U", "--pin-file",
                              "-", "--no-reload", "--data", store.data], b"739146\n")
    assert code == 0, shown
    assert "not echoed" in shown
    assert "739146" not in shown
    assert store.json("mailbox", "show", "1000")["pin_set"] is True


def test_password_file_dash_on_a_terminal_does_not_echo(store, tmp_path):
    c = selfsigned(store)
    out = tmp_path / "k.pfx"
    code, shown = run_on_tty([BIN, "cert", "export", c["sha1"], "--out", str(out), "--format",
                              "pfx", "--with-key", "--password-file", "-", "--data",
                              store.data], b"s3cret-pfx-pw\n")
    assert code == 0, shown
    assert "s3cret-pfx-pw" not in shown
    r = subprocess.run(["openssl", "pkcs12", "-in", str(out), "-noout", "-passin",
                        "pass:s3cret-pfx-pw"], capture_output=True)
    assert r.returncode == 0


# --------------------------------------------------------- host names

BAD_NAMES = [
    ("a..b.example.com", "two dots"),
    ("192.0.2.10", "IP address"),
    ("x" * 64 + ".example.com", "longer than 63"),
    (".example.com", "starts with a dot"),
    ("*.example.com", "wildcards"),
    ("um1", "not fully qualified"),
]


@pytest.mark.parametrize("name,why", BAD_NAMES)
def test_one_set_of_host_name_rules(store, tmp_path, name, why):
    store.ok("dialplan", "new", "S", "--digits", "4", "--security", "sipsecured", "--no-reload")
    before = snapshot(store.data)
    for args in (["cert", "request", "--fqdn", name, "--out", str(tmp_path / "r.csr")],
                 ["cert", "new-selfsigned", "--fqdn", name, "--no-reload"],
                 ["server", "set", "--fqdn", name, "--no-reload"],
                 ["gateway", "new", "gw", "--address", "192.0.2.1", "--tls-name", name,
                  "--dialplan", "S", "--no-reload"]):
        r = store.run(*args)
        assert r.returncode in (1, 2), (args, r.stdout)
        assert why in r.stderr, (args, r.stderr)
        assert "allocat" not in r.stderr and "memory" not in r.stderr
    assert snapshot(store.data) == before
    assert not (tmp_path / "r.csr").exists()
    store.conf(f"fqdn = {name}\n")
    r = store.run("cert", "new-selfsigned", "--no-reload")
    assert r.returncode != 0 and why in r.stderr


def test_root_dot_is_the_same_name_everywhere(store):
    store.ok("dialplan", "new", "S", "--digits", "4", "--security", "sipsecured", "--no-reload")
    store.ok("gateway", "new", "pbx", "--address", "192.0.2.1", "--tls-name",
             "PBX.Example.Test.", "--dialplan", "S", "--no-reload")
    assert store.json("gateway", "show", "pbx")["tls_name"] == "pbx.example.test"
    store.ok("server", "set", "--fqdn", "UM.Example.Test.", "--no-reload")
    store.ok("cert", "new-selfsigned", "--fqdn", "um.example.test.", "--no-reload")
    c = store.json("cert", "list", "--store", "personal")[0]
    assert c["subject"] == "CN=um.example.test" and c["sans"] == "DNS:um.example.test"
