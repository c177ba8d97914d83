"""A Slack-compatible webhook on loopback that keeps what it is sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Receiver:
    url: str
    messages: list[dict] = field(default_factory=list)
    status: int = 200
    """What it answers: 200, or an error to refuse messages with."""


@contextmanager
def webhook_receiver(path: str = "/services/T000/B000/s3cret-hook") -> Iterator[Receiver]:
    """A receiver at `http://127.0.0.1:<port><path>`: a POST of JSON there is kept, answered `ok`."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == path and receiver.status == 200:
                receiver.messages.append(json.loads(body))
            self.send_response(receiver.status if self.path == path else 404)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
