"""One open AT+CHTTPSOPSE session: a thread that moves bytes between the server
socket and the module's send buffer and receive cache, and raises the URCs.

One thread does both directions on a non-blocking socket (an SSL connection must not
be read and written from two threads at once). The receive cache is bounded: when
it is full the thread stops reading, so a large response waits in the server and
the network, never whole in memory.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Callable

# <result> codes of AT+CHTTPSSEND / AT+CHTTPSRECV (ERRATA; SIM5320 manual 16.5.9).
OK = 0
UNKNOWN_ERROR = 1
BUSY = 2
SERVER_CLOSED = 3
TIMEOUT = 4
TRANSFER_FAILED = 5
MEMORY_ERROR = 6
INVALID_PARAMETER = 7
NETWORK_ERROR = 8

CACHE_LIMIT = 16 * 1024
_IO_SIZE = 16 * 1024
_JOIN_TIMEOUT = 5.0
_BROKEN = select.POLLERR | select.POLLHUP | select.POLLNVAL


class HttpsSession:
    """The connection to one server, shared by the command thread and its own I/O thread.

    The command thread queues data to send, commits, and takes cached data; the I/O
    thread does the socket work and reports by URC. URCs go out under the session's
    lock, so after `close()` returns none can follow."""

    def __init__(self, sock: socket.socket, urc: Callable[[str], None]) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._urc = urc
        self._cond = threading.Condition()
        self._outgoing = bytearray()
        self._cache = bytearray()
        self._send_failure: int | None = None
        self._peer_closed = False
        self._peer_close_reported = False
        self._receiving = False
        self._event_reported = False
        self._commit: tuple[str, int | None] | None = None  # (prefix, forced result)
        self._closing = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)  # a full wake pipe already means "wake up"
        self._thread = threading.Thread(target=self._run, name="emulator-https", daemon=True)

    def start(self) -> None:
        """Begin moving data; after the OK of AT+CHTTPSOPSE, which no URC may precede.
        A reset may have closed the session meanwhile: then there is nothing to start."""
        with self._cond:
            if self._closing:
                return
            self._thread.start()

    # -- the command thread's side ---------------------------------------------------
    def unsent(self) -> int:
        with self._cond:
            return len(self._outgoing)

    def cached(self) -> int:
        with self._cond:
            return len(self._cache)

    def has_room(self, length: int, buffer_limit: int) -> bool:
        with self._cond:
            return len(self._outgoing) + length <= buffer_limit

    def queue(self, data: bytes) -> None:
        """Data for the server; once the server has gone it is lost, and the commit says so."""
        with self._cond:
            if self._peer_closed:
                self._send_failure = self._send_failure or SERVER_CLOSED
            else:
                self._outgoing += data
        self._wake()

    def committing(self) -> bool:
        """Whether a commit still waits for its result."""
        with self._cond:
            return self._commit is not None

    def commit(self, prefix: str, forced: int | None) -> None:
        """Report ``<prefix>: <result>`` once the queued data is sent (`forced`: now)."""
        with self._cond:
            self._commit = (prefix, forced)
        self._wake()

    def take(self, limit: int) -> bytes:
        """Up to `limit` cached bytes; no RECV EVENT until `taken()`."""
        with self._cond:
            self._receiving = True
            block = bytes(self._cache[:limit])
            del self._cache[:limit]
            return block

    def taken(self) -> None:
        """The AT+CHTTPSRECV answer is out: data still cached is announced anew."""
        with self._cond:
            self._receiving = False
            self._event_reported = False
        self._wake()

    def close(self) -> None:
        with self._cond:
            self._closing = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join(_JOIN_TIMEOUT)
        with contextlib.suppress(OSError):
            self._sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # -- the I/O thread --------------------------------------------------------------
    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        poller.register(self._sock, 0)
        watching_socket = True
        while True:
            with self._cond:
                if self._closing:
                    return
                self._report_due()
                want_read = not self._peer_closed and len(self._cache) < CACHE_LIMIT
                want_write = bool(self._outgoing) and self._send_failure is None
                peer_closed = self._peer_closed
            if peer_closed and watching_socket:
                # A dead socket polls as broken forever; only commands matter from now on.
                poller.unregister(self._sock)
                watching_socket = False
            if want_read and self._tls_pending():
                self._receive()  # already decrypted: poll() would not see it
                continue
            if watching_socket:
                poller.modify(
                    self._sock,
                    (select.POLLIN if want_read else 0) | (select.POLLOUT if want_write else 0),
                )
            for fd, events in poller.poll():
                if fd == self._wake_r.fileno():
                    self._drain_wake()
                    continue
                if events & (select.POLLIN | _BROKEN) and want_read:
                    self._receive()
                elif events & _BROKEN:
                    self._broken(NETWORK_ERROR)
                if events & select.POLLOUT and want_write:
                    self._transmit()

    def _report_due(self) -> None:
        """The URCs the state calls for now; called holding the lock."""
        if self._cache and not self._receiving and not self._event_reported:
            self._event_reported = True
            self._urc("+CHTTPS: RECV EVENT")
        if self._commit is not None:
            prefix, forced = self._commit
            result = forced
            if result is None:
                result = self._send_failure
            if result is None and not self._outgoing:
                result = OK
            if result is not None:
                self._commit = None
                self._urc(f"{prefix}: {result}")
        if self._peer_closed and not self._peer_close_reported:
            self._peer_close_reported = True
            self._urc("+CHTTPSNOTIFY: PEER CLOSED")

    def _tls_pending(self) -> bool:
        return isinstance(self._sock, ssl.SSLSocket) and self._sock.pending() > 0

    def _receive(self) -> None:
        with self._cond:
            room = CACHE_LIMIT - len(self._cache)
        try:
            data = self._sock.recv(min(room, _IO_SIZE))
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except OSError:
            self._broken(NETWORK_ERROR)
            return
        with self._cond:
            if data:
                self._cache += data
            else:
                self._end_of_stream(SERVER_CLOSED)

    def _transmit(self) -> None:
        with self._cond:
            chunk = bytes(self._outgoing[:_IO_SIZE])
        try:
            sent = self._sock.send(chunk)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except OSError:
            with self._cond:
                self._send_failure = TRANSFER_FAILED
                self._outgoing.clear()
            return
        with self._cond:
            del self._outgoing[:sent]

    def _broken(self, code: int) -> None:
        with self._cond:
            self._end_of_stream(code)

    def _end_of_stream(self, code: int) -> None:
        """The server is gone (called holding the lock): unsent data never will be."""
        self._peer_closed = True
        if self._outgoing:
            self._send_failure = self._send_failure or code
            self._outgoing.clear()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(64):
                pass
