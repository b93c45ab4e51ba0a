"""The README's first command, `scripts/demo`, with this build's binary: it
exits 0 after the secured ping (200) and the refused plain-TCP one (403),
on free ports, and removes its temporary store (private keys included)
unless --keep."""
import os
import re
import shutil
import subprocess

from conftest import BIN, ROOT


def demo(*args):
    env = dict(os.environ, OPENUM_BIN=BIN)
    for k in ("OPENUM_DATA", "OPENUM_CONFIG", "OPENUM_DEMO_TCP", "OPENUM_DEMO_TLS",
              "NOTIFY_SOCKET"):
        env.pop(k, None)
    p = subprocess.run([os.path.join(ROOT, "scripts", "demo"), *args], capture_output=True,
                       text=True, env=env, timeout=120)
    m = re.search(r"^== openum \S+: store (/tmp/openum-demo\.[^/\s]+)/data$", p.stdout, re.M)
    assert m, p.stdout + p.stderr
    return p, m.group(1)


def test_demo_runs_and_removes_its_store():
    p, work = demo()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "answer: SIP/2.0 200 OK" in p.stdout
    assert "answer: SIP/2.0 403" in p.stdout
    assert " 1112 " in p.stdout and " 1132 " in p.stdout
    assert not os.path.exists(work), f"{work} (with private keys) left behind"
    assert not re.search(r"\bR\d+\b", p.stdout), "cites a requirement number"


def test_demo_keep_keeps_the_store():
    p, work = demo("--keep")
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        assert os.path.isfile(os.path.join(work, "data", "openum.db"))
        assert f"kept: {work}" in p.stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_demo_refuses_unknown_options():
    p = subprocess.run([os.path.join(ROOT, "scripts", "demo"), "--bogus"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "usage: scripts/demo" in p.stderr
