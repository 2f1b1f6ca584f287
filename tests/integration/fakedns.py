"""A tiny DNS server for tests (UDP, 127.0.0.1): every MX question gets
`10 mx.<name>`, every A question 127.0.0.1, anything else no data. Enough
to send the queue worker to a port on localhost. Runs in a thread."""
import socket
import struct
import threading


def _name_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _question(data):
    i = 12
    labels = []
    while data[i] != 0:
        n = data[i]
        labels.append(data[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, qclass = struct.unpack("!HH", data[i + 1:i + 5])
    return ".".join(labels), qtype, data[12:i + 5]


class FakeDNS:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                name, qtype, q = _question(data)
            except (IndexError, struct.error):
                continue
            answers = []
            if qtype == 15:     # MX
                rdata = struct.pack("!H", 10) + _name_wire("mx." + name)
                answers.append((15, rdata))
            elif qtype == 1 and name.startswith("mx."):
                answers.append((1, socket.inet_aton("127.0.0.1")))
            # id, flags (QR RD RA), qd, an, ns, ar
            head = data[:2] + struct.pack("!HHHHH", 0x8180 | (data[2] & 1) << 8,
                                          1, len(answers), 0, 0)
            body = q
            for t, rdata in answers:
                body += b"\xc0\x0c" + struct.pack("!HHIH", t, 1, 60, len(rdata)) + rdata
            self.sock.sendto(head + body, peer)

    def close(self):
        self.sock.close()
