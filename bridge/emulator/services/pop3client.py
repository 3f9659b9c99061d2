"""The module's POP3 session over poplib, each failure mapped to the seed's ``+POP3: <code>``
words (chapter 4). A session that breaks is over: the server deletes nothing then."""

from __future__ import annotations

import contextlib
import poplib
import socket
from collections.abc import Callable
from typing import TypeVar, cast

SUCCESS = "SUCCESS"
ONGOING = "ONGOING"
NETWORK_ERROR = "NETWORK ERROR"
SERVER_ERROR = "SERVER ERROR"
INVALID_USER = "INVALID UN"
INVALID_LOGIN = "INVALID UN/PWD"
FILE_SYSTEM_ERROR = "FILE SYSTEM ERROR"
FAILURE = "FAILURE"

T = TypeVar("T")
_EOF = b"-ERR EOF"  # what poplib raises when the server closes the connection


class Pop3Failure(Exception):
    """The operation ends with this module result code; `session_lost` when the session
    cannot be used any more (the module then counts as logged out)."""

    def __init__(self, code: str, session_lost: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.session_lost = session_lost


class Pop3Session:
    """A logged-in POP3 session; `abort()` (AT+POP3STOP) may come from another thread."""

    def __init__(self, pop: poplib.POP3) -> None:
        self._pop = pop

    @classmethod
    def login(
        cls, address: str, port: int, user: str, password: str, timeout: float
    ) -> Pop3Session:
        """Connect and log in (AT+POP3IN); Pop3Failure with the seed's code otherwise."""
        try:
            pop = poplib.POP3(address, port, timeout=timeout)
        except poplib.error_proto as exc:
            raise Pop3Failure(SERVER_ERROR, session_lost=True) from exc
        except OSError as exc:
            raise Pop3Failure(NETWORK_ERROR, session_lost=True) from exc
        session = cls(pop)
        session._login_step(lambda: pop.user(user), INVALID_USER)
        session._login_step(lambda: pop.pass_(password), INVALID_LOGIN)
        return session

    def _login_step(self, step: Callable[[], object], refused: str) -> None:
        try:
            step()
        except poplib.error_proto as exc:
            lost = exc.args[:1] == (_EOF,)
            self.abort()
            raise Pop3Failure(SERVER_ERROR if lost else refused, session_lost=True) from exc
        except OSError as exc:
            self.abort()
            raise Pop3Failure(_os_code(exc), session_lost=True) from exc

    def stat(self) -> tuple[int, int]:
        return self._call(self._pop.stat)

    def list_all(self) -> list[tuple[int, int]]:
        _, lines, _ = self._call(self._pop.list)
        return [_id_and_size(line) for line in lines]

    def list_one(self, msg_id: int) -> tuple[int, int]:
        # poplib's stubs type only the whole-list form; LIST <id> answers one line
        reply = self._call(lambda: cast(bytes, self._pop.list(msg_id)))
        # "+OK <id> <size>"
        return _id_and_size(reply.split(maxsplit=1)[1])

    def header(self, msg_id: int) -> bytes:
        _, lines, _ = self._call(lambda: self._pop.top(msg_id, 0))
        return b"\r\n".join(lines) + b"\r\n"

    def retrieve(self, msg_id: int) -> bytes:
        _, lines, _ = self._call(lambda: self._pop.retr(msg_id))
        return b"\r\n".join(lines) + b"\r\n"

    def delete(self, msg_id: int) -> None:
        self._call(lambda: self._pop.dele(msg_id))

    def logout(self) -> None:
        """QUIT: the server deletes the marked messages now (and only now)."""
        try:
            self._call(self._pop.quit)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the connection without QUIT: nothing marked is deleted."""
        sock = self._pop.sock  # None once poplib has closed it (after QUIT)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._pop.close()

    def _call(self, operation: Callable[[], T]) -> T:
        try:
            result = operation()
        except poplib.error_proto as exc:
            if exc.args[:1] == (_EOF,) or "line too long" in str(exc):
                self.abort()
                raise Pop3Failure(SERVER_ERROR, session_lost=True) from exc
            raise Pop3Failure(SERVER_ERROR) from exc  # -ERR: e.g. no such message
        except OSError as exc:
            self.abort()
            raise Pop3Failure(_os_code(exc), session_lost=True) from exc
        return result


def _os_code(exc: OSError) -> str:
    # a server that stops answering is a SERVER ERROR in the seed; a broken link a NETWORK ERROR
    return SERVER_ERROR if isinstance(exc, TimeoutError) else NETWORK_ERROR


def _id_and_size(line: bytes) -> tuple[int, int]:
    msg_id, size = line.split()[:2]
    return int(msg_id), int(size)
