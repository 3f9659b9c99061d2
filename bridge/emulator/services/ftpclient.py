"""The module's FTP client stack, shared by the FTP (chapter 5) and FTPS (chapter 8) services.

A real ftplib session to a real server: names resolved only through the module's host
table, passive or active data connections, explicit TLS, and every failure sorted into
the few kinds the module reports; each service turns a kind into its own result code.
"""

from __future__ import annotations

import contextlib
import enum
import ftplib
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from bridge.emulator.api import ModuleContext

BLOCK = 1024
"""Bytes per ``DATA,<len>`` block the module sends to the host."""

CAFILE_ENV = "SIM5360_EMULATOR_CAFILE"
NETWORK_TIMEOUT_S = 30.0
"""How long the stack waits for the server at any step (connect, reply, data)."""


class Failure(enum.Enum):
    """Why an FTP(S) operation failed, before a service picks its code for it."""

    UNKNOWN = "unknown"
    RESOLVE = "resolve"
    NETWORK = "network"
    TIMEOUT = "timeout"
    LOGIN = "login"
    TLS_VERIFY = "tls verify"
    REJECTED = "rejected"
    SERVER_CLOSED = "server closed"
    TRANSFER = "transfer"
    READ_FILE = "read file"
    WRITE_FILE = "write file"


class FtpFailed(Exception):
    """An operation failed; `reason` is the server's reply or the socket error, never a secret."""

    def __init__(self, failure: Failure, reason: str) -> None:
        super().__init__(f"{failure.value}: {reason}")
        self.failure = failure
        self.reason = reason


class TlsMode(enum.Enum):
    """How the control connection is secured (AT+CFTPSLOGIN's <server_type>)."""

    PLAIN = 0
    AUTH_SSL = 1
    AUTH_TLS = 2


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to log in."""

    server: str
    port: int
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class DataOptions:
    """How data connections are made: PASV or PORT; with PASV, whether to connect to the
    address in the server's reply (AT+CFTPSSINGLEIP=0) or to the control peer (=1)."""

    passive: bool = True
    trust_pasv_address: bool = False


def client_tls_context(trust: ssl.SSLContext | None = None) -> ssl.SSLContext:
    """The module verifies no server certificate unless given a CA chain (AT+CSSLCA, not
    in the seed: `trust`); the emulator also verifies chain and address when
    $SIM5360_EMULATOR_CAFILE names one."""
    if trust is not None:
        return trust
    cafile = os.environ.get(CAFILE_ENV)
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@contextlib.contextmanager
def failures(default: Failure) -> Iterator[None]:
    """Sort what ftplib and the sockets raise into a `Failure`; `default` is the kind for
    a server's refusal at this step (LOGIN while logging in, REJECTED for commands)."""
    try:
        yield
    except FtpFailed:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise FtpFailed(Failure.TLS_VERIFY, exc.verify_message or "certificate") from None
    except ftplib.error_perm as exc:
        raise FtpFailed(default, str(exc)) from None
    except ftplib.error_temp as exc:
        closing = str(exc).startswith("421")
        raise FtpFailed(Failure.SERVER_CLOSED if closing else default, str(exc)) from None
    except (ftplib.error_reply, ftplib.error_proto) as exc:
        raise FtpFailed(Failure.UNKNOWN, str(exc)) from None
    except TimeoutError as exc:
        raise FtpFailed(Failure.TIMEOUT, str(exc) or "timed out") from None
    except (
        EOFError,
        ConnectionResetError,
        BrokenPipeError,
        ssl.SSLEOFError,
        ssl.SSLZeroReturnError,
    ) as exc:
        raise FtpFailed(Failure.SERVER_CLOSED, type(exc).__name__) from None
    except ssl.SSLError as exc:
        raise FtpFailed(Failure.TRANSFER, exc.reason or "TLS error") from None
    except OSError as exc:
        raise FtpFailed(Failure.NETWORK, exc.strerror or type(exc).__name__) from None


class FtpSession:
    """One logged-in control connection and the transfers made over it."""

    def __init__(self, ftp: ftplib.FTP) -> None:
        self._ftp = ftp
        self._data: socket.socket | None = None  # the transfer in flight, for abandon()

    @classmethod
    def open(
        cls,
        ctx: ModuleContext,
        endpoint: Endpoint,
        data: DataOptions,
        tls: TlsMode = TlsMode.PLAIN,
    ) -> FtpSession:
        """Resolve, connect, secure (explicit FTPS) and log in; raises FtpFailed."""
        address = ctx.resolve(endpoint.server)
        if address is None:
            raise FtpFailed(Failure.RESOLVE, f"unknown host {endpoint.server!r}")
        ftp: ftplib.FTP
        if tls is TlsMode.PLAIN:
            ftp = ftplib.FTP(timeout=NETWORK_TIMEOUT_S, encoding="utf-8")
        else:
            ftp = ftplib.FTP_TLS(
                context=client_tls_context(ctx.tls_trust()),
                timeout=NETWORK_TIMEOUT_S,
                encoding="utf-8",
            )
        ftp.set_pasv(data.passive)
        ftp.trust_server_pasv_ipv4_address = data.trust_pasv_address  # type: ignore[attr-defined]
        try:
            with failures(Failure.NETWORK):
                ftp.connect(address, endpoint.port)
            with failures(Failure.LOGIN):
                if isinstance(ftp, ftplib.FTP_TLS):
                    _secure_control(ftp, tls)
                ftp.login(endpoint.user, endpoint.password)
                if isinstance(ftp, ftplib.FTP_TLS):
                    ftp.prot_p()
        except FtpFailed:
            ftp.close()
            raise
        return cls(ftp)

    def close(self) -> None:
        """QUIT politely when the server still listens; the socket is closed either way."""
        with contextlib.suppress(Exception):
            self._ftp.quit()
        self._ftp.close()

    def abandon(self) -> None:
        """Drop the connections at once (reset) from any thread; shutdown() wakes a
        thread blocked reading them, which close() alone would not."""
        for sock in (self._data, self._ftp.sock):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._ftp.close()

    def set_type(self, type_code: str) -> None:
        with failures(Failure.REJECTED):
            self._ftp.voidcmd(f"TYPE {type_code}")

    def mkd(self, path: str) -> None:
        with failures(Failure.REJECTED):
            self._ftp.mkd(path)

    def rmd(self, path: str) -> None:
        with failures(Failure.REJECTED):
            self._ftp.rmd(path)

    def delete(self, path: str) -> None:
        with failures(Failure.REJECTED):
            self._ftp.delete(path)

    def cwd(self, path: str) -> None:
        with failures(Failure.REJECTED):
            self._ftp.cwd(path)

    def pwd(self) -> str:
        with failures(Failure.REJECTED):
            return self._ftp.pwd()

    def retrieve(self, command: str, emit: Callable[[bytes], None]) -> int:
        """Run RETR/LIST and pass the data connection's bytes on in blocks of at most
        `BLOCK`, as they arrive, never the whole file at once; returns the byte count."""
        total = 0
        with failures(Failure.REJECTED):
            conn = self._ftp.transfercmd(command)
        self._data = conn
        try:
            with failures(Failure.TRANSFER), conn, conn.makefile("rb") as stream:
                while block := stream.read(BLOCK):
                    total += len(block)
                    emit(block)
                _unwrap(conn)
        finally:
            self._data = None
        with failures(Failure.TRANSFER):
            self._ftp.voidresp()
        return total

    def store(self, path: str, source: BinaryIO) -> int:
        """STOR from a file object, in blocks; returns the byte count."""
        upload = self.begin_store(path)
        try:
            while block := source.read(BLOCK * 8):
                upload.send(block)
        except OSError as exc:
            upload.abort()
            raise FtpFailed(Failure.READ_FILE, exc.strerror or type(exc).__name__) from None
        except BaseException:
            upload.abort()
            raise
        upload.finish()
        return upload.sent

    def begin_store(self, path: str) -> Upload:
        """Open a STOR whose data the host sends in pieces (CFTPPUT, CFTPSPUT)."""
        with failures(Failure.REJECTED):
            conn = self._ftp.transfercmd(f"STOR {path}")
        self._data = conn
        return Upload(self, conn)


class Upload:
    """An open STOR data connection; `finish` or `abort` ends it, once."""

    def __init__(self, session: FtpSession, conn: socket.socket) -> None:
        self._session = session
        self._conn = conn
        self._ended = False
        self.sent = 0

    def send(self, data: bytes) -> None:
        with failures(Failure.TRANSFER):
            self._conn.sendall(data)
        self.sent += len(data)

    def finish(self) -> None:
        """Close the data connection and wait for the server's verdict on the file."""
        self._end()
        try:
            with failures(Failure.TRANSFER):
                _unwrap(self._conn)
        finally:
            self._conn.close()
        with failures(Failure.TRANSFER):
            self._session._ftp.voidresp()

    def abort(self) -> None:
        """Give up: the server sees the data connection close early."""
        if self._ended:
            return
        self._end()
        self._conn.close()
        with contextlib.suppress(Exception):
            self._session._ftp.voidresp()

    def _end(self) -> None:
        self._ended = True
        self._session._data = None


def _secure_control(ftp: ftplib.FTP_TLS, tls: TlsMode) -> None:
    if tls is TlsMode.AUTH_TLS:
        ftp.auth()
        return
    # ftplib only sends AUTH TLS; server_type 1 asks for the older AUTH SSL.
    ftp.voidcmd("AUTH SSL")
    assert ftp.sock is not None  # connected before it is secured
    ftp.sock = ftp.context.wrap_socket(ftp.sock, server_hostname=ftp.host)
    ftp.file = ftp.sock.makefile(mode="r", encoding=ftp.encoding)


def _unwrap(conn: socket.socket) -> None:
    if isinstance(conn, ssl.SSLSocket):
        conn.unwrap()
