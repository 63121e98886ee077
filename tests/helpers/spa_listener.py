"""Print what arrives: spa_listener.py ADDR PORT; one UDP datagram or TCP stream per line (hex).

Listens on UDP and TCP at once (IPv4 or IPv6 address), prints "ready", then
one line ``udp|tcp <hex payload>`` per datagram or finished connection, and
exits after COUNT (third argument, default 1) payloads or 60 seconds.
"""

import selectors
import socket
import sys
import time

addr, port = sys.argv[1], int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 1
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
udp = socket.socket(family, socket.SOCK_DGRAM)
udp.bind((addr, port))
tcp = socket.socket(family, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind((addr, port))
tcp.listen(8)
sel = selectors.DefaultSelector()
sel.register(udp, selectors.EVENT_READ, "udp")
sel.register(tcp, selectors.EVENT_READ, "tcp")
print("ready", flush=True)
deadline = time.monotonic() + 60
seen = 0
while seen < count and time.monotonic() < deadline:
    for key, _ in sel.select(timeout=1):
        if key.data == "udp":
            data = udp.recv(65535)
        else:
            conn, _peer = tcp.accept()
            conn.settimeout(5)
            chunks = []
            while True:
                chunk = conn.recv(65535)
                if not chunk:
                    break
                chunks.append(chunk)
            conn.close()
            data = b"".join(chunks)
        print(f"{key.data} {data.hex()}", flush=True)
        seen += 1
