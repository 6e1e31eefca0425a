"""A webhook receiver for Tollgate's approval-webhook tests (standard library only).

Usage:
    python webhook_receiver.py --out FILE [--fail-first N] [--tls-cert PEM --tls-key PEM]
Listens on 127.0.0.1 on a free port (HTTPS with a certificate), prints the port on stdout, and
appends one JSON line per POST to FILE: {"path", "headers" (lower-case names), "body", "status"}.
The first N requests are answered 500 (to exercise retries), the others 204.
"""

import argparse
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--fail-first", type=int, default=0)
parser.add_argument("--tls-cert")
parser.add_argument("--tls-key")
args = parser.parse_args()
lock = threading.Lock()
seen = 0


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        global seen
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        with lock:
            seen += 1
            status = 500 if seen <= args.fail_first else 204
            record = {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "status": status,
            }
            with open(args.out, "a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
if args.tls_cert:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
