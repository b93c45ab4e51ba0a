"""Fixtures for component tests: the real `openum` binary, temporary stores,
a running `openum serve`, free loopback ports.

The binary comes from $OPENUM_BIN (scripts/test sets it to the sanitizer
build); the shared third-party corpora from $OPENUM_SHARED (../shared)."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("OPENUM_BIN", os.path.join(ROOT, "build-asan", "src", "cli", "openum"))
SHARED = os.environ.get("OPENUM_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))


# an uncommented metrics_listen line of openum.conf
METRICS_KEY = re.compile(r"^\s*metrics_listen\s*=", re.M)


def free_port(host="127.0.0.1", kind=socket.SOCK_STREAM):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Openum:
    """Runs the openum command on one store."""

    def __init__(self, data):
        self.data = str(data)
        self.procs = []

    def run(self, *args, input=None, check=None, env=None, timeout=60, as_user=None):
        cmd = [BIN, *args]
        if "--data" not in args:
            cmd += ["--data", self.data]
        if as_user:
            cmd = ["runuser", "-u", as_user, "--", *cmd]
        e = dict(os.environ)
        e.pop("OPENUM_DATA", None)
        e.pop("OPENUM_CONFIG", None)
        e.pop("NOTIFY_SOCKET", None)
        if env:
            e.update(env)
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, env=e,
                           timeout=timeout)
        if check is not None:
            assert p.returncode == check, (
                f"{' '.join(cmd)} -> {p.returncode}, expected {check}\n"
                f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def ok(self, *args, **kw):
        return self.run(*args, check=0, **kw)

    def json(self, *args, **kw):
        p = self.run(*args, "--json", check=0, **kw)
        return json.loads(p.stdout)

    def conf(self, text):
        """Replace openum.conf (the [server] section body). The metrics
        listener is off unless the text sets metrics_listen: its default
        port (127.0.0.1:9474) is one for the whole host, and servers of
        several tests run at once."""
        path = os.path.join(self.data, "openum.conf")
        if not METRICS_KEY.search(text):
            text += "metrics_listen = off\n"
        with open(path, "w") as f:
            f.write("[server]\n" + text)
        os.chmod(path, 0o600)
        return path

    def metrics_off(self):
        """For a server started on an openum.conf written without conf()
        (the one of `openum init`, or one a test wrote itself): the metrics
        listener off unless the file sets metrics_listen."""
        path = os.path.join(self.data, "openum.conf")
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return
        if os.path.islink(path) or METRICS_KEY.search(text):
            return
        with open(path, "a") as f:
            f.write(("" if text.endswith("\n") or not text else "\n") +
                    "metrics_listen = off\n")

    def serve(self, *extra, env=None, wait=True, prefix=()):
        """prefix: a command to run openum serve under (e.g. `ip netns exec NS`)."""
        e = dict(os.environ)
        e.pop("OPENUM_DATA", None)
        e.pop("NOTIFY_SOCKET", None)
        if env:
            e.update(env)
        if "--config" not in extra:
            self.metrics_off()
        log = open(os.path.join(os.path.dirname(self.data), "serve.log"), "ab")
        p = subprocess.Popen([*prefix, BIN, "serve", "--data", self.data, *extra], stdout=log,
                             stderr=subprocess.STDOUT, env=e)
        self.procs.append(p)
        if wait:
            self.wait_ready(p)
        return p

    def wait_ready(self, p, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if p.poll() is not None:
                raise AssertionError(f"openum serve exited with {p.returncode}:\n{self.log()}")
            r = self.run("status", "--json")
            if r.returncode == 0:
                return json.loads(r.stdout)
            time.sleep(0.1)
        raise AssertionError("openum serve did not become ready\n" + self.log())

    def log(self):
        try:
            with open(os.path.join(os.path.dirname(self.data), "serve.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, p, sig=signal.SIGTERM, timeout=20):
        if p.poll() is None:
            p.send_signal(sig)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("openum serve did not stop on SIGTERM\n" + self.log())

    def events(self, *args):
        p = self.run("events", "--json", *args, check=0)
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture
def openum(tmp_path):
    """An Openum bound to a not-yet-initialised data folder."""
    o = Openum(tmp_path / "data")
    yield o
    o.close()


@pytest.fixture
def store(openum):
    """An initialised store."""
    openum.ok("init")
    return openum


@pytest.fixture
def server(store):
    """A running `openum serve` on an initialised store, on free ports."""
    store.conf(f"fqdn = um.test.example\nsip_tcp = 127.0.0.1:{free_port()}\n"
               f"sip_tls = 127.0.0.1:{free_port()}\nevents_interval = 1\n")
    store.proc = store.serve()
    return store


@pytest.fixture(autouse=True)
def _no_server_left():
    """A failing test must not leave a server running (ports, CPU): every
    store made by calls_util.make_store during the test is closed after it
    (those of module-scoped fixtures, marked module_scoped, by theirs)."""
    import calls_util
    n = len(calls_util.STORES)
    yield
    for o in calls_util.STORES[n:]:
        if not getattr(o, "module_scoped", False):
            o.close()
    del calls_util.STORES[n:]
