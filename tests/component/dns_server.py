"""A tiny authoritative DNS server on loopback for tests: answers A and
AAAA queries from a dict {name: (ip, ttl)} that the test may change.
Queries for a name in `hold` are kept unanswered until release()."""
import socket
import struct
import threading


class DnsServer:
    def __init__(self, host="127.0.0.1"):
        self.records = {}
        self.queries = []
        self.hold = set()
        self.held = []  # (query, peer) not answered yet
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                if self._name(data) in self.hold:
                    self.queries.append((self._name(data), None))
                    self.held.append((data, peer))
                    continue
                self.sock.sendto(self._answer(data), peer)
            except Exception:
                pass

    @staticmethod
    def _name(q):
        pos, labels = 12, []
        while q[pos]:
            n = q[pos]
            labels.append(q[pos + 1:pos + 1 + n].decode().lower())
            pos += n + 1
        return ".".join(labels)

    def release(self):
        """Answer every held query now (from the records as they are)."""
        self.hold = set()
        held, self.held = self.held, []
        for data, peer in held:
            self.sock.sendto(self._answer(data), peer)

    def _answer(self, q):
        qid, flags, qd = struct.unpack("!HHH", q[:6])
        pos, labels = 12, []
        while q[pos]:
            n = q[pos]
            labels.append(q[pos + 1:pos + 1 + n].decode().lower())
            pos += n + 1
        qtype, qclass = struct.unpack("!HH", q[pos + 1:pos + 5])
        question = q[12:pos + 5]
        name = ".".join(labels)
        self.queries.append((name, qtype))
        rec = self.records.get(name)
        answers = b""
        count = 0
        rcode = 3  # NXDOMAIN
        if rec:
            rcode = 0
            ip, ttl = rec
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            want = 28 if fam == socket.AF_INET6 else 1
            if qtype == want:
                rdata = socket.inet_pton(fam, ip)
                answers = struct.pack("!HHHIH", 0xC00C, want, 1, ttl, len(rdata)) + rdata
                count = 1
        hdr = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, count, 0, 0)
        return hdr + question + answers

    def close(self):
        self.running = False
        self.sock.close()
        self.thread.join(2)
