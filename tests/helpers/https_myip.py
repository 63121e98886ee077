"""A tiny HTTPS "what is my IP" service: https_myip.py CERT KEY ADDR PORT BODY.

Answers every GET with BODY (and a newline), prints "ready" once listening,
and logs each request's User-Agent on stdout. Stops when killed.
"""

import http.server
import ssl
import sys

cert, key, addr, port, body = sys.argv[1:6]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        payload = (body + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        print(f"GET {self.path} {self.headers.get('User-Agent')}", flush=True)

    def log_message(self, *args: object) -> None:
        pass


server = http.server.HTTPServer((addr, int(port)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
