"""One AT+SMTPSEND over smtplib: the connection and greeting (before the module answers
``+SMTP: OK``), then login and transfer, each failure mapped to the module's result code
(ERRATA: the seed's code table is shifted by one row)."""

from __future__ import annotations

import contextlib
import smtplib
import socket
import threading
from collections.abc import Callable

SUCCESS = "SUCCESS"
ONGOING = "ONGOING"
PARAM_ERROR = "PARAM ERROR"
NETWORK_ERROR = "NETWORK ERROR"
SERVER_ERROR = "SERVER ERROR"
AUTH_REQUIRED = "AUTH REQUIRED"
AUTH_ERROR = "AUTH ERROR"
USER_CANCEL = "USER CANCEL"

_AUTH_NEEDED = 530  # RFC 4954: "Authentication required"
_EHLO_NAME = "sim5360"  # never the host's FQDN: looking it up could leave loopback


class SmtpFailure(Exception):
    """The send ends with this module result code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class SmtpSubmission:
    """A session with one SMTP server; `cancel()` (AT+SMTPSTOP) may come from another thread."""

    def __init__(self, address: str, port: int, timeout: float) -> None:
        self._address = address
        self._port = port
        self._smtp = smtplib.SMTP(local_hostname=_EHLO_NAME, timeout=timeout)
        self._cancelled = threading.Event()

    def connect(self) -> None:
        """Open the session and read the greeting; SmtpFailure when that fails."""
        try:
            self._smtp.connect(self._address, self._port)
        except (smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected) as exc:
            raise SmtpFailure(SERVER_ERROR) from exc
        except OSError as exc:
            raise SmtpFailure(NETWORK_ERROR) from exc

    def send(
        self,
        login: tuple[str, str] | None,
        sender: str,
        recipients: list[str],
        message: Callable[[], bytes],
    ) -> str:
        """Log in if asked, transfer the message, close; the module's result code."""
        try:
            self._transfer(login, sender, recipients, message)
        except SmtpFailure as failure:
            code = failure.code
        except smtplib.SMTPAuthenticationError:
            code = AUTH_ERROR
        except (smtplib.SMTPException, TimeoutError):
            code = SERVER_ERROR
        except OSError:
            code = NETWORK_ERROR
        else:
            code = SUCCESS
        if self._cancelled.is_set() and code != SUCCESS:
            code = USER_CANCEL
        self.close()
        return code

    def _transfer(
        self,
        login: tuple[str, str] | None,
        sender: str,
        recipients: list[str],
        message: Callable[[], bytes],
    ) -> None:
        smtp = self._smtp
        smtp.ehlo_or_helo_if_needed()
        if login is not None:
            smtp.login(*login)
        data = message()
        self._expect(smtp.mail(sender), (250,))
        for recipient in recipients:
            self._expect(smtp.rcpt(recipient), (250, 251))
        smtp.data(data)  # SMTPDataError unless 250
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()  # the server has taken the mail; a lost QUIT changes nothing

    @staticmethod
    def _expect(reply: tuple[int, bytes], good: tuple[int, ...]) -> None:
        code = reply[0]
        if code == _AUTH_NEEDED:
            raise SmtpFailure(AUTH_REQUIRED)
        if code not in good:
            raise SmtpFailure(SERVER_ERROR)

    def cancel(self) -> None:
        """AT+SMTPSTOP: break the session; the send then ends with USER CANCEL."""
        self._cancelled.set()
        sock = self._smtp.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._smtp.close()
