"""HTTP (seed chapter 6): AT+CHTTPACT sends the host's raw request over TCP and
streams the raw response back as ``+CHTTPACT: DATA, <len>`` blocks.

The module neither builds nor parses HTTP: the request is the bytes the host sent
in data mode, the response is whatever the server sends until it closes the
connection (so the host should ask for ``Connection: close``).

The exchange, with ``OK`` after the request's Ctrl-Z as the seed's examples print it::

    AT+CHTTPACT="<address>",<port>
    +CHTTPACT: REQUEST
    <request, 03 and 1A escaped with 03><Ctrl-Z>
    OK
    +CHTTPACT: DATA, <len>      (then <len> raw bytes; repeated, at most 1024 each)
    +CHTTPACT: 0                (or +CHTTPACT: <err> for a failure after OK)

Failures before the request is complete answer ``+CME ERROR: <err>``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Mapping

from bridge.emulator.api import ArgError, Command, Handler, Host, ModuleContext

# <err> codes of seed section 6.2, with the texts AT+CMEE=2 shows.
UNKNOWN_ERROR = 220
BUSY = 221
RESOLVE_FAILED = 222
TIMEOUT = 223
TRANSFER_FAILED = 224
INVALID_PARAMETER = 226
NETWORK_ERROR = 227
ERROR_TEXTS = {
    220: "Unknown error for HTTP",
    221: "HTTP task is busy",
    222: "Failed to resolve server address",
    223: "HTTP timeout",
    224: "Failed to transfer data",
    225: "Memory error",
    226: "Invalid parameter",
    227: "Network error",
}

BLOCK_SIZE = 1024
REQUEST_IDLE_TIMEOUT = 60.0  # host silent this long in data mode: the request is abandoned
CONNECT_TIMEOUT = 120.0  # "Socket connect: 2 minutes" (SIM52xx HTTP application note)
TRANSFER_TIMEOUT = 3600.0  # "HTTP transferring timer: 1 hour" (same note)
_STOP_JOIN_TIMEOUT = 5.0


class HttpTransfer:
    """One request/response exchange on its own thread, reporting by URC.

    `stop()` silences it for good: after it returns, nothing more reaches the host."""

    def __init__(
        self, ctx: ModuleContext, address: str, port: int, request: bytes, forced: int | None
    ) -> None:
        self._ctx = ctx
        self._address = address
        self._port = port
        self._request = request
        self._forced = forced
        self._lock = threading.Lock()  # held while writing, so stop() waits for a block to end
        self._stopped = False
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="emulator-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._sock is not None:
                # shutdown, unlike close, wakes a recv() blocked in the transfer thread.
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(_STOP_JOIN_TIMEOUT)

    def _run(self) -> None:
        try:
            result = self._exchange()
        finally:
            with self._lock:
                if self._sock is not None:
                    self._sock.close()
        self._report(f"+CHTTPACT: {result}")

    def _exchange(self) -> int:
        if self._forced is not None:
            return self._forced
        ip = self._ctx.resolve(self._address)
        if ip is None:
            return RESOLVE_FAILED
        try:
            sock = socket.create_connection((ip, self._port), timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            return TIMEOUT
        except OSError:
            return NETWORK_ERROR  # refused, unreachable: the server cannot be reached
        with self._lock:
            self._sock = sock
            if self._stopped:
                return UNKNOWN_ERROR  # never reported: stop() silenced us
        try:
            sock.sendall(self._request)
        except TimeoutError:
            return TIMEOUT
        except OSError:
            return TRANSFER_FAILED
        return self._relay_response(sock)

    def _relay_response(self, sock: socket.socket) -> int:
        deadline = time.monotonic() + TRANSFER_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return TIMEOUT
            sock.settimeout(remaining)
            try:
                block = sock.recv(BLOCK_SIZE)
            except TimeoutError:
                return TIMEOUT
            except OSError:
                return TRANSFER_FAILED
            if not block:
                return 0
            if not self._report(f"+CHTTPACT: DATA, {len(block)}", block):
                return UNKNOWN_ERROR  # stopped; never reported

    def _report(self, line: str, payload: bytes = b"") -> bool:
        """Send a line (and the payload its DATA header announces); False once stopped."""
        with self._lock:
            if self._stopped:
                return False
            self._ctx.urc(line)
            if payload:
                self._ctx.send_raw(payload)
            return True


class HttpService:
    """AT+CHTTPACT: one HTTP exchange at a time."""

    name = "http"

    def __init__(self, ctx: ModuleContext) -> None:
        self._ctx = ctx
        self._transfer: HttpTransfer | None = None

    def commands(self) -> Mapping[str, Handler]:
        return {"+CHTTPACT": self._chttpact}

    def reset(self) -> None:
        if self._transfer is not None:
            self._transfer.stop()
            self._transfer = None

    def _chttpact(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line('+CHTTPACT: "ADDRESS",(1-65535)')
            host.ok()
            return
        if cmd.form != "write":
            host.error()
            return
        try:
            target = _target(cmd)
        except ArgError:
            host.error()
            return
        if target is None:
            _fail(host, INVALID_PARAMETER)
            return
        if self._transfer is not None and self._transfer.running():
            _fail(host, BUSY)
            return
        forced = self._ctx.faults.forced_failure("http")
        host.line("+CHTTPACT: REQUEST")
        request = host.read_escaped(REQUEST_IDLE_TIMEOUT)
        if request is None:
            _fail(host, TIMEOUT)
            return
        if not request:
            _fail(host, INVALID_PARAMETER)
            return
        host.ok()
        code = None if forced is None else _as_code(forced)
        self._transfer = HttpTransfer(self._ctx, *target, request, code)
        self._transfer.start()


def _target(cmd: Command) -> tuple[str, int] | None:
    """("<address>", <port>) of the write form; None when the values are not valid."""
    args = cmd.args()
    if len(args) != 2:
        return None
    address, port = args
    if not isinstance(address, str) or not address or not isinstance(port, int):
        return None
    if not 1 <= port <= 65535:
        return None
    return address, port


def _as_code(forced: str | int) -> int:
    try:
        return int(forced)
    except ValueError:
        return UNKNOWN_ERROR


def _fail(host: Host, code: int) -> None:
    host.cme_error(code, ERROR_TEXTS[code])


SERVICE = HttpService
