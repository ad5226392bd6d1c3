"""A node's tiny web server, run inside a node namespace: answers every GET with the node's name.

It stands in for a Service's backend as reached on that node (kube-proxy's role): one process per
(node, service IP), bound to that IP only, so it accepts exactly the traffic the router sends to the
node for that IP. Usage: ``httpnode.py NODE IP PORT READY_FILE``; it is ended by PID (SIGTERM).
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: every request is a new flow

    def do_GET(self) -> None:
        assert isinstance(self.server, Server)
        body = f"{self.server.node}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, node: str, address: tuple[str, int]) -> None:
        self.node = node
        super().__init__(address, Handler)


def main() -> None:
    node, ip, port, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    server = Server(node, (ip, port))
    ready.write_text(f"{node} {ip}:{port}\n")
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
