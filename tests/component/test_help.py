"""Help texts as a newcomer reads them: every command's and sub-command's
--help, and the openum.conf that `openum init` writes. They must not cite
requirement numbers (R1 ... R22) of a document the repository does not
hold; `openum cert --help` says what each sub-command does, what the two
stores are and what --yes confirms; `serve --help` says where it listens."""
import os
import re

import pytest

from conftest import BIN

CITATION = re.compile(r"\bR[0-9]{1,2}\b")


def commands(openum):
    """The top-level commands listed by `openum --help`."""
    out = openum.ok("--help").stdout
    block = out.split("commands:", 1)[1].split("\n\n", 1)[0]
    names = [line.split()[0] for line in block.splitlines() if line.strip()]
    assert len(names) >= 10, out
    return names


def sub_commands(text, cmd):
    """Sub-commands named on the usage lines: "openum CMD SUB ..."."""
    subs = []
    for m in re.finditer(rf"openum {re.escape(cmd)} ([a-z][a-z-]*)", text):
        if m.group(1) not in subs:
            subs.append(m.group(1))
    return subs


def all_help(openum):
    """{argv: help text} for every command and sub-command."""
    texts = {("--help",): openum.ok("--help").stdout}
    for cmd in commands(openum):
        text = openum.ok(cmd, "--help").stdout
        texts[(cmd,)] = text
        for sub in sub_commands(text, cmd):
            texts[(cmd, sub)] = openum.ok(cmd, sub, "--help").stdout
    return texts


def test_no_help_text_cites_requirement_numbers(openum):
    texts = all_help(openum)
    assert ("cert", "request") in texts and ("server", "set") in texts
    bad = {" ".join(k): CITATION.findall(v) for k, v in texts.items() if CITATION.search(v)}
    assert not bad, bad


def test_default_openum_conf_cites_no_requirement_numbers(openum):
    openum.ok("init")
    with open(f"{openum.data}/openum.conf") as f:
        text = f.read()
    assert "sip_tls" in text and "start_secured" in text
    assert not CITATION.findall(text), CITATION.findall(text)


def test_cert_help_explains_every_sub_command_the_stores_and_yes(openum):
    text = openum.ok("cert", "--help").stdout
    subs = sub_commands(text, "cert")
    assert subs == ["list", "show", "new-selfsigned", "request", "import", "export", "remove",
                    "select"], subs
    for sub in subs:
        # one description line each: "  SUB   what it does"
        lines = [l for l in text.splitlines() if re.match(rf"^  {re.escape(sub)}\s{{2,}}\S", l)]
        assert len(lines) == 1, (sub, text)
    # every sub-command the binary accepts is described: an unknown one is refused
    assert openum.run("cert", "frobnicate").returncode == 2
    for word in ("personal store", "trusted store", "--yes"):
        assert word in text, word
    yes = [l for l in text.splitlines() if "--yes" in l and "usage" not in l and "cert import" not in l]
    assert any("confirm" in l for l in yes), text


def test_serve_help_names_foreground_and_default_listeners(openum):
    text = openum.ok("serve", "--help").stdout
    assert "foreground" in text
    assert "5060" in text and "5061" in text and "every interface" in text
    assert "sip_tcp" in text and "sip_tls" in text


def test_mailbox_help_states_the_pin_rules(openum):
    """A newcomer learns the PIN rules before a PIN is refused."""
    text = openum.ok("mailbox", "--help").stdout
    for words in ("easy to guess", "pilot number", "1122", "1234", "2580", "4-24 digits"):
        assert words in text, (words, text)


GLOBAL_OPTIONS = {"--data", "--config", "--json", "--as-owner", "--help", "--version"}
OPTION = re.compile(r"--[a-z][a-z0-9-]*")


def usage_and_text(text):
    """(usage lines, the rest): the usage block ends at the first empty line."""
    head, _, rest = text.partition("\n\n")
    assert head.startswith("usage: openum"), text
    return head, rest


def test_every_option_the_help_mentions_is_on_a_usage_line(openum):
    """An option the text speaks of (e.g. cert's --no-reload) must be on the
    usage line of the command that takes it; a command whose usage says
    [options] lists them in its option table ("  --opt ..."). Another
    command quoted whole in backquotes is no option of this one."""
    bad = {}
    for key, text in all_help(openum).items():
        if key == ("--help",):
            continue
        head, rest = usage_and_text(text)
        known = set(OPTION.findall(head)) | GLOBAL_OPTIONS
        if "[options]" in head:
            for m in re.finditer(r"^ {2,4}(--\S.*?)(?: {2,}|$)", rest, re.M):
                known |= set(OPTION.findall(m.group(1)))  # "  --cert F --key F   ..."
        # another command quoted whole (`openum cert list --store requests`)
        rest = re.sub(r"`openum [^`]*`", "", rest)
        missing = sorted(set(OPTION.findall(rest)) - known)
        if missing:
            bad[" ".join(key)] = missing
    assert not bad, bad


def test_cert_usage_names_no_reload_for_the_sub_commands_that_take_it(openum):
    head, _ = usage_and_text(openum.ok("cert", "--help").stdout)
    lines = {}
    sub = None
    for line in head.splitlines():
        m = re.match(r"^(?:usage:| {6}) openum cert ([a-z-]+)", line)
        sub = m.group(1) if m else sub
        lines[sub] = lines.get(sub, "") + line
    for sub in ("new-selfsigned", "import", "remove"):
        assert "[--no-reload]" in lines[sub], (sub, head)
    # and the usage is true: a sub-command not listed with it refuses it
    r = openum.run("cert", "request", "--fqdn", "um1.example.com", "--out", "x.csr",
                   "--no-reload")
    assert r.returncode == 2 and "does not take --no-reload" in r.stderr, r.stderr
    assert "[--no-reload]" not in lines["request"] and "[--no-reload]" not in lines["export"]


def test_a_sub_command_help_shows_that_sub_command(openum):
    """`openum mailbox messages --help` is about messages, not the whole
    mailbox command: its usage lines only, and what concerns it."""
    text = openum.ok("mailbox", "messages", "--help").stdout
    head, rest = usage_and_text(text)
    assert all("openum mailbox messages EXT" in l for l in head.splitlines()), head
    assert "--export ID --out FILE" in head, head
    assert "--export" in rest and "voice messages" in rest, rest
    for other in ("--pin-file", "--greeting", "mailbox new", "PIN", "scrypt"):
        assert other not in text, (other, text)
    for sub in ("new", "set", "show", "list", "remove", "messages"):
        text = openum.ok("mailbox", sub, "--help").stdout
        head, rest = usage_and_text(text)
        subs = set(re.findall(r"openum mailbox ([a-z]+)", head))
        assert subs == {sub}, (sub, head)
        assert rest.strip(), (sub, text)
    assert "--greeting" in openum.ok("mailbox", "set", "--help").stdout
    assert "--greeting" not in openum.ok("mailbox", "new", "--help").stdout
    # the command's own --help still shows every sub-command
    whole = openum.ok("mailbox", "--help").stdout
    assert set(re.findall(r"openum mailbox ([a-z]+)", usage_and_text(whole)[0])) == {
        "new", "set", "show", "list", "remove", "messages"}
    # with an argument before --help, the same
    assert openum.ok("mailbox", "messages", "1001", "--help").stdout == \
        openum.ok("mailbox", "messages", "--help").stdout


def test_every_sub_command_help_is_about_that_sub_command(openum):
    """dialplan, gateway, server, mailbox and cert: each `CMD SUB --help`
    shows the usage lines of SUB only, and a text; `CMD --help` all of them."""
    texts = all_help(openum)
    seen = 0
    for key, text in texts.items():
        if len(key) != 2:
            continue
        cmd, sub = key
        head, rest = usage_and_text(text)
        assert set(re.findall(rf"openum {re.escape(cmd)} ([a-z][a-z-]*)", head)) == {sub}, \
            (key, head)
        assert rest.strip(), (key, text)
        whole = usage_and_text(texts[(cmd,)])[0]
        for line in head.splitlines():  # the same lines as in the command's help
            assert line[7:] in whole, (key, line)
        seen += 1
    assert seen >= 2 + 5 + 5 + 6 + 8, seen


def restart_keys_of_conf(text):
    """The keys the header of `openum init`'s openum.conf says need a restart."""
    head = text.split("\n[server]", 1)[0]
    part = head.split("restart openum after changing", 1)[1]
    return set(re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b|\bsip_t1\b", part))


def test_keys_that_need_a_restart_agree_in_conf_guide_and_readme(openum):
    """openum.conf's header names the keys a reload cannot change; the
    guide lists the same keys, the README points to both; and a reload
    changing one of them says it takes effect at restart."""
    openum.ok("init")
    with open(f"{openum.data}/openum.conf") as f:
        conf = f.read()
    keys = restart_keys_of_conf(conf)
    assert {"sip_tcp", "sip_tls", "max_connections", "rtp_ports", "media_threads",
            "sip_t1"} <= keys, keys
    assert "metrics_listen" not in keys and "max_calls" not in keys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    guide = open(os.path.join(root, "docs", "guide.md")).read()
    para = guide.split("A reload applies every openum.conf key but these", 1)[1]
    para = para.split("\n- ", 1)[0]
    listed = set(re.findall(r"`([a-z0-9_]+)`", para)) - {"metrics_listen"}
    assert listed == keys, (sorted(listed ^ keys), para)
    readme = open(os.path.join(root, "README.md")).read()
    assert "header" in readme and "section 8" in readme and "takes effect at restart" in readme
    for k in ("sip_tcp", "sip_tls"):
        assert f"`{k}`" in readme.split("read only at start", 1)[0].rsplit("\n\n", 1)[-1]


def test_a_reload_says_which_changes_wait_for_a_restart(server):
    conf = os.path.join(server.data, "openum.conf")
    with open(conf, "a") as f:
        f.write("max_connections = 77\nmax_calls = 9\n")
    ch = server.json("reload")["changes"]
    assert "max_connections 1024 -> 77 (takes effect at restart)" in ch, ch
    assert "max_calls 100 -> 9" in ch and "max_calls 100 -> 9 (" not in ch, ch
    assert server.json("status")["max_calls"] == 9


def usage_lines_by_sub(head, cmd):
    """{sub: [its usage lines, continuation lines joined]} of a usage block."""
    out, cur = {}, None
    for line in head.splitlines():
        m = re.match(rf"^(?:usage:| {{6}}) openum {re.escape(cmd)} ([a-z][a-z-]*)(.*)$", line)
        if m:
            cur = m.group(1)
            out.setdefault(cur, []).append(m.group(2))
        elif cur and line.strip():
            out[cur][-1] += " " + line.strip()
    return out


REFUSED = re.compile(r"unknown option|does not take|takes no value|needs a value")


@pytest.mark.parametrize("cmd", ["dialplan", "gateway", "server", "mailbox", "cert"])
def test_every_option_on_a_usage_line_is_taken_by_that_sub_command(store, tmp_path, monkeypatch,
                                                                   cmd):
    """The reverse of the check above: what a usage line shows, the
    sub-command accepts (its value may still be refused: only "unknown
    option" / "does not take" count here)."""
    head, _ = usage_and_text(store.ok(cmd, "--help").stdout)
    monkeypatch.chdir(tmp_path)  # files the commands may write stay here
    tried = 0
    for sub, lines in usage_lines_by_sub(head, cmd).items():
        for line in lines:
            positional = re.match(r"^((?: [A-Z]+)*)", line).group(1).split()
            for m in re.finditer(r"(--[a-z][a-z0-9-]*)(?:[ =]([A-Z][A-Z0-9]*|[a-z0-9,]+\|\S+))?",
                                 line):
                opt, value = m.group(1), m.group(2)
                argv = [cmd, sub, *(["1001"] * len(positional)), opt]
                if value:
                    argv.append("1")
                if opt != "--no-reload" and "--no-reload" in line:
                    argv.append("--no-reload")  # never a running server's business
                r = store.run(*argv, input="")
                assert not REFUSED.search(r.stderr), (argv, r.stderr)
                tried += 1
    assert tried >= 5, head
