"""HTTP and HTTPS servers on loopback for tests and the demo: echo, sized, chunked,
status and slow endpoints, with every request recorded for assertions.

Endpoints (any method unless noted):

- ``/echo``: 200, JSON ``{"method", "path", "headers": [[name, value], ...],
  "body_base64"}`` describing the request as received.
- ``/echo/raw``: 200, the request body echoed back with the request's Content-Type
  (``application/octet-stream`` when it has none).
- ``/bytes/<n>``: 200 with ``Content-Length: n`` and ``pattern(0, n)`` as the body.
- ``/chunked/<n>``: the same body sent with ``Transfer-Encoding: chunked``.
- ``/status/<code>``: that status with a short text body.
- ``/slow/<seconds>``: waits (at most 60 s, cut short when the server stops), then 200.

Request bodies must come with ``Content-Length`` (the module's raw requests do).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from bridge.testservers.lifecycle import ManagedServer
from bridge.testservers.net import LOOPBACK

CHUNK_SIZE = 1000  # odd on purpose: chunk borders never align with the module's 1024
SLOW_LIMIT = 60.0


def pattern(offset: int, length: int) -> bytes:
    """`length` bytes of the deterministic body pattern starting at `offset`.

    Modulo a prime so every byte value (0x03, 0x1A, CR, LF included) appears and the
    sequence does not repeat on power-of-two borders where a bug could hide."""
    return bytes((i % 251) for i in range(offset, offset + length))


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server parsed it."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class RequestLog:
    """Requests received so far, shared by the handler threads."""

    def __init__(self) -> None:
        self._items: list[RecordedRequest] = []
        self._changed = threading.Condition()

    def add(self, request: RecordedRequest) -> None:
        with self._changed:
            self._items.append(request)
            self._changed.notify_all()

    def all(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._items)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """The first `count` requests once they have arrived; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._items) >= count, timeout):
                raise TimeoutError(f"{len(self._items)} of {count} requests after {timeout}s")
            return list(self._items[:count])


class _Handler(BaseHTTPRequestHandler):
    """Routes a request to its endpoint after recording it, so a test sees every request
    even when the endpoint fails."""

    protocol_version = "HTTP/1.1"  # chunked responses need it; "Connection: close" still ends
    timeout = 30.0  # a client that goes silent must not hold its thread forever
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(self.command, self.path, list(self.headers.items()), body)
        self.server.log.add(request)
        for route, action in _ROUTES:
            match = route.fullmatch(self.path.split("?", 1)[0])
            if match:
                action(self, request, match)
                return
        self._reply(404, b"no such endpoint\n", "text/plain")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def echo(self, request: RecordedRequest, _: re.Match[str]) -> None:
        described = {
            "method": request.method,
            "path": request.path,
            "headers": [list(h) for h in request.headers],
            "body_base64": base64.b64encode(request.body).decode("ascii"),
        }
        self._reply(200, json.dumps(described).encode(), "application/json")

    def echo_raw(self, request: RecordedRequest, _: re.Match[str]) -> None:
        self._reply(200, request.body, request.header("Content-Type") or "application/octet-stream")

    def sized(self, _: RecordedRequest, match: re.Match[str]) -> None:
        size = int(match.group(1))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        for offset in range(0, size, CHUNK_SIZE):
            self.wfile.write(pattern(offset, min(CHUNK_SIZE, size - offset)))

    def chunked(self, _: RecordedRequest, match: re.Match[str]) -> None:
        size = int(match.group(1))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for offset in range(0, size, CHUNK_SIZE):
            piece = pattern(offset, min(CHUNK_SIZE, size - offset))
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def status(self, _: RecordedRequest, match: re.Match[str]) -> None:
        code = int(match.group(1))
        self._reply(code, f"status {code}\n".encode(), "text/plain")

    def slow(self, _: RecordedRequest, match: re.Match[str]) -> None:
        self.server.stopping.wait(min(float(match.group(1)), SLOW_LIMIT))
        self._reply(200, b"slow\n", "text/plain")


_Action = Callable[[_Handler, RecordedRequest, re.Match[str]], None]
_ROUTES: list[tuple[re.Pattern[str], _Action]] = [
    (re.compile(r"/echo"), _Handler.echo),
    (re.compile(r"/echo/raw"), _Handler.echo_raw),
    (re.compile(r"/bytes/(\d+)"), _Handler.sized),
    (re.compile(r"/chunked/(\d+)"), _Handler.chunked),
    (re.compile(r"/status/([1-5]\d\d)"), _Handler.status),
    (re.compile(r"/slow/(\d+(?:\.\d+)?)"), _Handler.slow),
]


class _Server(ThreadingHTTPServer):
    """The listening side: one thread per connection, TLS handshakes off the accept loop."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self.log = RequestLog()
        self.stopping = threading.Event()
        self.tls = tls
        # Port 0: the kernel picks a free port at bind time, so no other server can race us.
        super().__init__((LOOPBACK, 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host's FQDN, a name lookup tests avoid.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = LOOPBACK, self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        if self.tls is None:
            return conn, addr
        # Handshake on the handler's thread, not in accept(): one silent client must
        # not stall the whole server.
        wrapped = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return wrapped, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-response are normal here (timeouts, resets)."""


class HttpTestServer(ManagedServer):
    """A threading HTTP server (HTTPS when given a server `tls` context) on a free
    loopback port, serving from a thread between start() and stop()."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.host = LOOPBACK
        self.port = 0

    @property
    def scheme(self) -> str:
        return "http" if self._tls is None else "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def requests(self) -> RequestLog:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.log

    def start(self) -> Self:
        self._server = _Server(self._tls)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{self.scheme}-test-server-{self.port}",
            daemon=True,
        )
        self._thread.start()  # the socket listens already; no need to wait for the thread
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None
        self._thread = None
