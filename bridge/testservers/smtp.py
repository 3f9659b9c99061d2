"""A real SMTP server for tests and the demo: aiosmtpd on a free port of 127.0.0.1 with
AUTH PLAIN/LOGIN for one account, keeping every message it accepts."""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bridge.testservers.lifecycle import ManagedServer
from bridge.testservers.net import LOOPBACK, free_port

_HOLD_MAX = 60.0  # a held reply is given at the latest after this


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message: the SMTP envelope and the message bytes as received."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)


class _Mailbox:
    """aiosmtpd's handler: stores messages and wakes whoever waits for them."""

    def __init__(self, refused: frozenset[str]) -> None:
        self._refused = refused
        self._mails: list[ReceivedMail] = []
        self._changed = threading.Condition()
        self.open = threading.Event()  # cleared: the end of DATA goes unanswered for now
        self.open.set()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self._refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.open.is_set():
            # wait in a worker thread: the server's event loop keeps serving others
            await asyncio.get_running_loop().run_in_executor(None, self.open.wait, _HOLD_MAX)
        data = envelope.original_content or b""
        mail = ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(data))
        with self._changed:
            self._mails.append(mail)
            self._changed.notify_all()
        return "250 OK"

    def mails(self) -> list[ReceivedMail]:
        with self._changed:
            return list(self._mails)

    def wait_for(self, count: int, timeout: float) -> ReceivedMail:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._mails) >= count, timeout):
                raise TimeoutError(
                    f"SMTP test server: {len(self._mails)} of {count} messages after {timeout}s"
                )
            return self._mails[count - 1]


class _Account:
    """aiosmtpd's authenticator for one user/password (PLAIN and LOGIN)."""

    def __init__(self, user: str, password: str) -> None:
        self._user = user.encode()
        self._password = password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = hmac.compare_digest(data.login, self._user) and hmac.compare_digest(
            data.password, self._password
        )
        # handled=False: aiosmtpd itself answers 535 to a failed login
        return AuthResult(success=ok, handled=False)


class _QuietController(Controller):
    """A Controller whose sessions do not warn that AUTH runs without TLS: on loopback in
    tests that is the point, and the warning per connection would bury real ones."""

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return SMTP(self.handler, **self.SMTP_kwargs)


class _DropKnownNoise(logging.Filter):
    """aiosmtpd warns about AUTH without TLS (deliberate here) and about its own use of a
    deprecated attribute on every login; neither says anything about the test."""

    _NOISE = ("auth_require_tls == False", "Session.login_data is deprecated")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(noise in record.getMessage() for noise in self._NOISE)


_QUIET = _DropKnownNoise()


class SmtpTestServer(ManagedServer):
    """aiosmtpd on 127.0.0.1 (no TLS). With `require_auth` the server refuses mail until the
    client logs in as `user`/`password`; it refuses the `refused` recipient addresses.
    A context manager that stops the server on exit."""

    def __init__(
        self,
        user: str = "user",
        password: str = "secret",
        require_auth: bool = True,
        refused: Iterable[str] = (),
    ) -> None:
        self.host = LOOPBACK
        self.port = 0
        self.user = user
        self._password = password
        self._require_auth = require_auth
        self._mailbox = _Mailbox(frozenset(a.lower() for a in refused))
        self._controller: Controller | None = None

    def start(self) -> None:
        # aiosmtpd logs AUTH LOGIN's base64 answers at DEBUG; passwords stay out of logs
        log = logging.getLogger("mail.log")
        if log.getEffectiveLevel() < logging.INFO:
            log.setLevel(logging.INFO)
        log.addFilter(_QUIET)  # a no-op when already there
        self.port = free_port()
        self._controller = _QuietController(
            self._mailbox,
            hostname=self.host,
            port=self.port,
            server_hostname="smtp.test",
            authenticator=_Account(self.user, self._password),
            auth_required=self._require_auth,
            auth_require_tls=False,
        )
        self._controller.start()

    def hold_replies(self) -> None:
        """From now on leave the end of DATA unanswered (a server that stalls mid-send)."""
        self._mailbox.open.clear()

    def release_replies(self) -> None:
        self._mailbox.open.set()

    def stop(self) -> None:
        self.release_replies()
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def messages(self) -> list[ReceivedMail]:
        """Every message accepted so far, oldest first."""
        return self._mailbox.mails()

    def wait_for_message(self, number: int = 1, timeout: float = 10.0) -> ReceivedMail:
        """The `number`-th message (1-based) once it has arrived; TimeoutError after `timeout`."""
        return self._mailbox.wait_for(number, timeout)
