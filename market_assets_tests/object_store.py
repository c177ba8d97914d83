"""An S3-compatible server on loopback (moto's server mode), and a proxy in front of it that makes
uploads fail on demand: the object store of the lake's tests, healthy or not."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from moto.server import ThreadedMotoServer

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

UPLOADS = frozenset({"PUT", "POST"})
"""The methods of an upload (a PUT of an object; the parts of a multipart upload are PUTs and POSTs)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def s3_server() -> Iterator[str]:
    """A moto S3 server on a free loopback port; yields its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


class FaultyObjectStore:
    """A proxy to `upstream` that fails uploads on demand (`fail`): with `503 SlowDown`
    (`"error"`) or with no answer for `hang_seconds` (`"hang"`). Every other request, and every
    upload while healthy, passes through unchanged. `faults` counts the uploads it failed."""

    def __init__(self, upstream: str, hang_seconds: float = 3.0) -> None:
        self.upstream = urlsplit(upstream)
        self.hang_seconds = hang_seconds
        self.faults = 0
        self._fault: str | None = None
        self._passing = 0
        self._failing: int | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultyObjectStore:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, kind: str, after: int = 0, count: int | None = None) -> None:
        """Let `after` more uploads through, then fail `count` of them (all, by default) with `kind`."""
        with self._lock:
            self._fault, self._passing, self._failing, self.faults = kind, after, count, 0

    def heal(self) -> None:
        """Pass every request from now on."""
        with self._lock:
            self._fault = None

    def failing(self, method: str) -> str | None:
        """The fault to answer this request with, counted, or None to pass it on."""
        with self._lock:
            if self._fault is None or method not in UPLOADS:
                return None
            if self._passing:
                self._passing -= 1
                return None
            if self._failing is not None and self.faults >= self._failing:
                return None
            self.faults += 1
            return self._fault


_SLOW_DOWN = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>'


def _handler(proxy: FaultyObjectStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            declared = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(declared)
            if len(body) < declared:  # the client went away: forward nothing, as a store would store nothing
                raise ConnectionError(f"{self.command} {self.path}: {len(body)} of {declared} bytes")
            return body

        def _forward(self) -> None:
            try:
                body = self._body()
            except (ConnectionError, ValueError):
                self.close_connection = True
                return
            fault = proxy.failing(self.command)
            if fault == "hang":
                time.sleep(proxy.hang_seconds)
                self.close_connection = True
                return
            if fault == "error":
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(_SLOW_DOWN)))
                self.end_headers()
                self.wfile.write(_SLOW_DOWN)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "content-length")}
            if body or self.command in UPLOADS:
                headers["Content-Length"] = str(len(body))
            upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
            finally:
                upstream.close()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                    self.send_header(name, value)
            # A HEAD answer says the object's length without its body.
            length = answer.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
            self.send_header("Content-Length", length or "0")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

    return Handler
