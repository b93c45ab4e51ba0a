"""Small SIP helpers for component tests: build requests, talk over TCP."""
import socket
import time
import uuid


def options(host="127.0.0.1", port=5060, src="127.0.0.1", extra=b"", branch=None, cseq=1):
    branch = branch or "z9hG4bK" + uuid.uuid4().hex[:12]
    return (f"OPTIONS sip:um@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP {src}:5999;branch={branch}\r\n"
            f"From: <sip:gw@{src}>;tag=gw1\r\n"
            f"To: <sip:um@{host}:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@{src}\r\n"
            f"CSeq: {cseq} OPTIONS\r\n"
            "Max-Forwards: 70\r\n").encode() + extra + b"Content-Length: 0\r\n\r\n"


def request(method, host="127.0.0.1", port=5060, src="127.0.0.1", extra=b"", body=b""):
    branch = "z9hG4bK" + uuid.uuid4().hex[:12]
    return (f"{method} sip:100@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP {src}:5999;branch={branch}\r\n"
            f"From: <sip:gw@{src}>;tag=gw1\r\n"
            f"To: <sip:100@{host}:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@{src}\r\n"
            f"CSeq: 1 {method}\r\n"
            f"Contact: <sip:gw@{src}:5999;transport=tcp>\r\n"
            "Max-Forwards: 70\r\n").encode() + extra + \
        f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def connect(port, src="127.0.0.1", host="127.0.0.1", timeout=5, rcvbuf=None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((src, 0))
    s.connect((host, port))
    return s


def read_response(s, timeout=5):
    """One SIP response from a stream socket: (status, headers text, raw) or
    None when the connection closed without one."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode(errors="replace"), data


def closed_without_answer(s, timeout=5):
    """True when the peer closes (or resets) without sending a byte."""
    s.settimeout(timeout)
    try:
        return s.recv(65536) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def header(head, name):
    for line in head.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return None


def wait_for(fn, timeout=10, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return fn()
