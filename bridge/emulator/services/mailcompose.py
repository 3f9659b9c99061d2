"""The e-mail the SMTP client sends, built from the AT+SMTP* settings with the stdlib
`email` package: From/To/Cc/Subject/Date headers, the body in its SMTPBCH charset and
the SMTPFILE attachments base64-encoded. Bcc recipients appear only in the envelope."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path


class ComposeError(ValueError):
    """The settings do not make a valid message (an address that does not parse)."""


@dataclass(frozen=True)
class Mailbox:
    """An address with its display name, as AT+SMTPFROM and AT+SMTPRCPT set them."""

    address: str
    name: str = ""

    def header_value(self) -> Address:
        try:
            return Address(display_name=self.name, addr_spec=self.address)
        except (ValueError, HeaderParseError) as exc:
            raise ComposeError(f"not an e-mail address: {self.address!r}") from exc


@dataclass(frozen=True)
class Attachment:
    """An AT+SMTPFILE selection: the module's name for the file and where it lives."""

    module_path: str  # as AT+SMTPFILE? prints it: "C:/file1.txt"
    host_path: Path

    @property
    def name(self) -> str:
        return self.module_path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class OutgoingMail:
    """Everything one AT+SMTPSEND sends, fixed when the send starts."""

    sender: Mailbox
    to: tuple[Mailbox, ...]
    cc: tuple[Mailbox, ...]
    bcc: tuple[Mailbox, ...]
    subject: str
    body: bytes
    charset: str
    attachments: tuple[Attachment, ...]
    date: datetime

    def envelope_recipients(self) -> list[str]:
        """RCPT TO addresses: every To, Cc and Bcc address once, in that order."""
        return list(dict.fromkeys(m.address for m in (*self.to, *self.cc, *self.bcc)))

    def to_bytes(self) -> bytes:
        """The message as sent after DATA (CRLF line ends); reads the attachment files."""
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = self.sender.header_value()
        if self.to:
            msg["To"] = [m.header_value() for m in self.to]
        if self.cc:
            msg["Cc"] = [m.header_value() for m in self.cc]
        msg["Subject"] = self.subject
        msg["Date"] = format_datetime(self.date)
        _set_body(msg, self.body, self.charset)
        if self.attachments:
            msg.make_mixed()
        for attachment in self.attachments:
            kind = mimetypes.guess_type(attachment.name)[0] or "application/octet-stream"
            maintype, subtype = kind.split("/", 1)
            # bytes always go base64, whatever their type: the module does not re-encode text
            part = EmailMessage(policy=policy.SMTP)
            part.set_content(
                attachment.host_path.read_bytes(),
                maintype=maintype,
                subtype=subtype,
                disposition="attachment",
                filename=attachment.name,
            )
            del part["MIME-Version"]  # belongs in the message header only
            msg.attach(part)
        return msg.as_bytes()


def _set_body(msg: EmailMessage, body: bytes, charset: str) -> None:
    try:
        text = body.decode(charset)
    except (LookupError, UnicodeDecodeError):
        # a charset Python does not know (or bytes not in it): send the bytes as they are
        msg.set_content(body, maintype="text", subtype="plain", params={"charset": charset})
        return
    # 8-bit text goes base64 so that a server without 8BITMIME takes it unchanged; for ASCII
    # the email package picks 7bit, or quoted-printable when a line is too long for SMTP
    msg.set_content(text, charset=charset, cte=None if body.isascii() else "base64")
