"""Real FTP and explicit-TLS FTPS servers (pyftpdlib) on loopback, for tests and the demo.

Each server runs its own IO loop in a thread, on 127.0.0.1 and a free port, with one
user whose home folder a test can inspect and, on request, anonymous read access.
"""

from __future__ import annotations

import secrets
import socket
import threading
from pathlib import Path
from typing import Any

from bridge.testservers.lifecycle import ManagedServer
from bridge.testservers.net import LOOPBACK, free_port, wait_listening
from bridge.testservers.tls import TestCertificates

_POLL_S = 0.05
_PASSIVE_PORTS = 16


def free_port_range(count: int, attempts: int = 50) -> list[int]:
    """`count` consecutive TCP ports free on 127.0.0.1 right now (for passive data)."""
    for _ in range(attempts):
        base = free_port()
        if base + count > 65535:
            continue
        if all(_bindable(p) for p in range(base, base + count)):
            return list(range(base, base + count))
    raise RuntimeError(f"no {count} consecutive free ports on {LOOPBACK}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


class FtpTestServer(ManagedServer):
    """A pyftpdlib server with one read-write user; with `certificates`, explicit FTPS
    (AUTH TLS) that requires TLS on the control and data connections."""

    def __init__(
        self,
        home: Path,
        *,
        user: str = "bridge",
        password: str | None = None,
        anonymous_home: Path | None = None,
        certificates: TestCertificates | None = None,
    ) -> None:
        self.home = home
        self.user = user
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.anonymous_home = anonymous_home
        self.certificates = certificates
        self.host = LOOPBACK
        self.port = 0
        self.passive_ports: list[int] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def tls(self) -> bool:
        return self.certificates is not None

    def __repr__(self) -> str:  # never the password
        kind = "FTPS" if self.tls else "FTP"
        return f"<{kind} test server {self.host}:{self.port} user={self.user!r} home={self.home}>"

    def start(self) -> FtpTestServer:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

        self.home.mkdir(parents=True, exist_ok=True)
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.user, self.password, str(self.home), perm="elradfmwMT")
        if self.anonymous_home is not None:
            self.anonymous_home.mkdir(parents=True, exist_ok=True)
            authorizer.add_anonymous(str(self.anonymous_home), perm="elr")
        self.passive_ports = free_port_range(_PASSIVE_PORTS)
        # A class per server: pyftpdlib keeps its settings (and the TLS context) on the class.
        settings = self._handler_settings()
        settings["authorizer"] = authorizer
        handler = type("BridgeTestFtpHandler", (self._handler_base(),), settings)
        self.port = free_port()
        # An IO loop of its own: the default one is a process-wide singleton.
        self._server = FTPServer((self.host, self.port), handler, ioloop=IOLoop())
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._serve, name=f"ftp-test-server-{self.port}", daemon=True
        )
        self._thread.start()
        wait_listening(self.port)
        return self

    def _handler_base(self) -> type:
        if self.certificates is None:
            from pyftpdlib.handlers import FTPHandler

            return FTPHandler  # type: ignore[no-any-return]
        from pyftpdlib.handlers import TLS_FTPHandler

        return TLS_FTPHandler  # type: ignore[no-any-return]

    def _handler_settings(self) -> dict[str, object]:
        settings: dict[str, object] = {
            "passive_ports": self.passive_ports,
            "banner": "sim5360-bridge test FTP server ready.",
            # pyftpdlib waits 3 s before answering a bad login; tests need not.
            "auth_failed_timeout": 0.05,
            "timeout": 60,
        }
        if self.certificates is not None:
            settings.update(
                certfile=str(self.certificates.server_cert),
                keyfile=str(self.certificates.server_key),
                ssl_context=None,
                tls_control_required=True,
                tls_data_required=True,
            )
        return settings

    def _serve(self) -> None:
        server = self._server
        try:
            while not self._stop.is_set():
                server.ioloop.loop(timeout=_POLL_S, blocking=False)
        finally:
            server.close_all()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
