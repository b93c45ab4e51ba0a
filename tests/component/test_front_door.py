"""The front door under pressure (R4, RFC 3261 §18, RFC 5923, RFC 5626):
flows that never downgrade, budgets that strangers cannot exhaust, a
message timer that measures one message, framing in linear time.

The mutual-TLS world (test PKI, gateways 127.0.0.5 ... 127.0.0.10) is
test_tls.py's; a plain-TCP gateway is added here."""
import socket
import time

import pytest

from conftest import free_port
from sip_util import connect, options, read_response, request, wait_for
from test_tls import make_server, pki, read_sip, tls_client  # noqa: F401  (fixture)


def sip(o):
    return o.json("status")["sip"]


@pytest.fixture(scope="module")
def door(tmp_path_factory, pki):  # noqa: F811
    o = make_server(tmp_path_factory.mktemp("door"), pki)
    # a plain-TCP gateway of the Unsecured plan
    o.ok("gateway", "new", "gwtcp", "--address", "127.0.0.11", "--dialplan", "dp1")
    yield o
    assert o.stop(o.proc) == 0, o.log()[-3000:]
    o.close()


# ------------------------------------------------------------------ flows

def test_tcp_from_a_tls_gateways_address_is_no_flow(door):
    """gwcn is a TLS gateway of an Unsecured plan: its plain-TCP request is
    answered, but the connection never becomes a flow of the gateway."""
    base = sip(door)["flows"]
    s = connect(door.tcp, src="127.0.0.10")
    s.sendall(options(port=door.tcp, src="127.0.0.10"))
    assert read_response(s)[0] == 200
    assert sip(door)["flows"] == base
    # while a plain-TCP gateway's connection is one
    t = connect(door.tcp, src="127.0.0.11")
    t.sendall(options(port=door.tcp, src="127.0.0.11"))
    assert read_response(t)[0] == 200
    assert sip(door)["flows"] == base + 1
    s.close()
    t.close()
    assert wait_for(lambda: sip(door)["flows"] == base)


def _alias(req):
    return req.replace(b";branch=", b";alias;branch=", 1)


def test_alias_ignored_over_plain_tcp(door):
    base = sip(door)["flows_alias"]
    t = connect(door.tcp, src="127.0.0.11")
    t.sendall(_alias(options(port=door.tcp, src="127.0.0.11")))
    assert read_response(t)[0] == 200
    assert sip(door)["flows"] >= 1
    assert sip(door)["flows_alias"] == base
    t.close()


def test_alias_on_mutual_tls_only_for_an_accepted_request(door, pki):  # noqa: F811
    base = sip(door)["flows_alias"]
    s = tls_client(door.tls, pki.gw1, src="127.0.0.5")
    # an INVITE refused (405 today) does not mark the flow
    s.sendall(_alias(request("INVITE", port=door.tls, src="127.0.0.5")))
    assert read_sip(s)[0] >= 300
    assert sip(door)["flows_alias"] == base
    # a request that was not even valid does not either
    bad = _alias(options(port=door.tls, src="127.0.0.5")).replace(b"CSeq: 1 OPTIONS",
                                                                   b"CSeq: x OPTIONS")
    s.sendall(bad)
    assert read_sip(s)[0] == 400
    assert sip(door)["flows_alias"] == base
    # an accepted OPTIONS does
    s.sendall(_alias(options(port=door.tls, src="127.0.0.5")))
    assert read_sip(s)[0] == 200
    assert sip(door)["flows_alias"] == base + 1
    s.close()
    assert wait_for(lambda: sip(door)["flows_alias"] == base)
