"""HTTPS (seed chapter 7, command names and result codes per ERRATA): a stack the
host acquires, one session to a server, a send buffer the module drains in the
background, and a receive cache the host empties with AT+CHTTPSRECV.

Choices where the documents differ or say nothing:

- ``AT+CHTTPSSEND`` is the command (real modules, the SIM5320 manuals); the seed's
  ``AT+CHTTPSEND`` is accepted too and answered with its own prefix.
- ``AT+CHTTPSRECV=<max>`` answers ``OK`` first (as the seed prints it), then at most
  one ``+CHTTPSRECV: DATA,<len>`` block of up to min(<max>, 4096) cached bytes,
  then ``+CHTTPSRECV: 0``.
- Like the module, the client does not verify the server's certificate, unless a CA
  chain is set (AT+CSSLCA, `bridge.emulator.certificates`) or ``SIM5360_EMULATOR_CAFILE``
  names a CA file; then certificate and host name are checked and a failure makes
  OPSE answer ERROR.
- A forced failure (fault injection) fails the next commit: ``AT+CHTTPSSEND``
  answers ``OK`` then ``+CHTTPSSEND: <code>``.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Mapping

from bridge.emulator.api import ArgError, Command, Handler, Host, ModuleContext
from bridge.emulator.services.https_session import UNKNOWN_ERROR, HttpsSession

CALL_LIMIT = 4096  # bytes per AT+CHTTPSSEND=<len> and per AT+CHTTPSRECV call (ERRATA)
SEND_BUFFER_LIMIT = 32 * 1024  # the application note waits above ~10 KiB; refuse beyond this
DATA_IDLE_TIMEOUT = 60.0  # host silent this long after ">": the send is abandoned
OPEN_TIMEOUT = 120.0  # connect and handshake
CAFILE_ENV = "SIM5360_EMULATOR_CAFILE"

HTTP_SERVER = 1
HTTPS_SERVER = 2

# AT+CHTTPSSTATE <state> values (SIM5320 manual V2.02, 16.5.7) this emulator goes through.
STATE_NONE = 0
STATE_ACQUIRED = 1
STATE_SESSION_OPEN = 7


class HttpsService:
    """AT+CHTTPSSTART/STOP/OPSE/CLSE/SEND/RECV/STATE over one session at a time."""

    name = "https"

    def __init__(self, ctx: ModuleContext) -> None:
        self._ctx = ctx
        self._started = False
        self._session: HttpsSession | None = None

    def commands(self) -> Mapping[str, Handler]:
        return {
            "+CHTTPSSTART": self._start,
            "+CHTTPSSTOP": self._stop,
            "+CHTTPSOPSE": self._open,
            "+CHTTPSCLSE": self._close,
            "+CHTTPSSEND": self._send,
            "+CHTTPSEND": self._send,  # the seed's spelling
            "+CHTTPSRECV": self._receive,
            "+CHTTPSSTATE": self._state,
        }

    def reset(self) -> None:
        self._close_session()
        self._started = False

    def _close_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _start(self, cmd: Command, host: Host) -> None:
        if cmd.form != "exec" or self._started:
            host.error()
            return
        self._started = True
        host.ok()

    def _stop(self, cmd: Command, host: Host) -> None:
        if cmd.form != "exec" or not self._started:
            host.error()
            return
        self._close_session()
        self._started = False
        host.ok()

    def _open(self, cmd: Command, host: Host) -> None:
        if cmd.form != "write" or not self._started or self._session is not None:
            host.error()
            return
        try:
            target = _open_target(cmd)
        except ArgError:
            target = None
        if target is None:
            host.error()
            return
        server, port, server_type = target
        ip = self._ctx.resolve(server)
        if ip is None:
            host.error()
            return
        try:
            tls_name = server if server_type == HTTPS_SERVER else None
            sock = _connect(ip, port, tls_name, self._ctx.tls_trust())
        except (OSError, ssl.SSLError):
            host.error()
            return
        self._session = HttpsSession(sock, self._ctx.urc)
        host.ok()
        self._session.start()

    def _close(self, cmd: Command, host: Host) -> None:
        if cmd.form != "exec" or self._session is None:
            host.error()
            return
        self._close_session()
        host.ok()

    def _send(self, cmd: Command, host: Host) -> None:
        prefix = cmd.name  # "+CHTTPSSEND", or the seed's "+CHTTPSEND"
        if cmd.form == "test":
            host.line(f"{prefix}: (1-{CALL_LIMIT})")
            host.ok()
        elif cmd.form == "read":
            unsent = 0 if self._session is None else self._session.unsent()
            host.line(f"{prefix}: {unsent}")
            host.ok()
        elif cmd.form == "write":
            self._send_data(cmd, host)
        elif self._session is None:
            host.error()
        else:
            if self._session.committing():
                host.error()
                return
            forced = self._ctx.faults.forced_failure("https")
            host.ok()  # before the commit: its result may be due at once
            self._session.commit(prefix, None if forced is None else _as_code(forced))

    def _send_data(self, cmd: Command, host: Host) -> None:
        session = self._session
        try:
            args = cmd.args()
        except ArgError:
            args = []
        length = args[0] if len(args) == 1 else None
        if (
            session is None
            or not isinstance(length, int)
            or not 1 <= length <= CALL_LIMIT
            or not session.has_room(length, SEND_BUFFER_LIMIT)
        ):
            host.error()
            return
        host.prompt(">")
        data = host.read_exact(length, DATA_IDLE_TIMEOUT)
        if data is None:
            host.error()
            return
        host.ok()  # first: once queued, the data leaves and the answer may be announced
        session.queue(data)

    def _receive(self, cmd: Command, host: Host) -> None:
        session = self._session
        if cmd.form == "read":
            cached = 0 if session is None else session.cached()
            host.line(f"+CHTTPSRECV: LEN,{cached}")
            host.ok()
            return
        try:
            args = cmd.args() if cmd.form == "write" else []
        except ArgError:
            args = []
        wanted = args[0] if len(args) == 1 else None
        if session is None or not isinstance(wanted, int) or wanted < 1:
            host.error()
            return
        block = session.take(min(wanted, CALL_LIMIT))
        try:
            host.ok()
            if block:
                host.line(f"+CHTTPSRECV: DATA,{len(block)}")
                host.raw(block)
            host.line("+CHTTPSRECV: 0")
        finally:
            session.taken()

    def _state(self, cmd: Command, host: Host) -> None:
        if cmd.form != "exec":
            host.error()
            return
        if self._session is not None:
            state = STATE_SESSION_OPEN
        elif self._started:
            state = STATE_ACQUIRED
        else:
            state = STATE_NONE
        host.line(f"+CHTTPSSTATE: {state}")
        host.ok()


def _open_target(cmd: Command) -> tuple[str, int, int] | None:
    """("<host>", <port>, <server_type>) of AT+CHTTPSOPSE; None when not valid."""
    args = cmd.args()
    if len(args) == 2:
        args.append(HTTPS_SERVER)
    if len(args) != 3:
        return None
    server, port, server_type = args
    if not isinstance(server, str) or not server or not isinstance(port, int):
        return None
    if not 1 <= port <= 65535 or server_type not in (HTTP_SERVER, HTTPS_SERVER):
        return None
    return server, port, server_type


def _connect(
    ip: str, port: int, tls_name: str | None, trust: ssl.SSLContext | None
) -> socket.socket:
    """A connected socket, TLS-wrapped (handshake done) when `tls_name` is given."""
    sock = socket.create_connection((ip, port), timeout=OPEN_TIMEOUT)
    if tls_name is None:
        return sock
    try:
        return (trust or _client_context()).wrap_socket(sock, server_hostname=tls_name)
    except BaseException:
        sock.close()
        raise


def _client_context() -> ssl.SSLContext:
    cafile = os.environ.get(CAFILE_ENV)
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _as_code(forced: str | int) -> int:
    try:
        return int(forced)
    except ValueError:
        return UNKNOWN_ERROR


SERVICE = HttpsService
