"""The smtp/send and smtp/stop requests as they arrive, and the checked e-mail they become.

The models only fix the shapes (types, no unknown fields); the module's limits are
checked by `compose()`, so that an over-limit value is `too_large` and a value that
would change a command is `invalid_request`, both naming the field, and both before
the first AT command.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr

from bridge.config import Settings
from bridge.files import FilesArea
from bridge.services.base import Request
from bridge.services.efs import check_name
from bridge.services.errors import invalid, too_large

# The module's limits (seed chapter 3; API.md smtp/send).
ADDRESS_MAX = 128
NAME_MAX = 64
SERVER_MAX = 128
USER_MAX = 128
PASSWORD_MAX = 128
SUBJECT_MAX = 512
BODY_MAX = 5120
QUOTED_BODY_MAX = 512  # AT+SMTPBODY="..." takes this much; more goes through ">>"
CHARSET_MAX = 30
RECIPIENTS_MAX = 5  # per kind
ATTACHMENTS_MAX = 10
ATTACHMENT_BYTES_MAX = 10 * 1024 * 1024
TIMEOUT_MAX = 3600.0

_ADDRESS = re.compile(r'[^@\s"<>,;()\[\]\\]+@[^@\s"<>,;()\[\]\\]+')
_CHARSET = re.compile(r"[A-Za-z0-9._:-]+")
# In the ">>" body a TAB, CR and LF are text; every other control character means
# something to the module (BACKSPACE deletes, Ctrl-Z ends, ESC cancels) or is garbage.
_BODY_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_FORBIDDEN = re.compile(r'["\x00-\x1f\x7f]')


class MailboxField(Request):
    address: str
    name: str = ""


Recipient = str | MailboxField


class AuthField(Request):
    user: str
    password: SecretStr


class SmtpSendRequest(Request):
    """API.md smtp/send; every field may come from `[smtp]` instead."""

    server: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    auth: AuthField | None = None  # omitted: [smtp] user/password; null: no AUTH
    sender: str | MailboxField | None = Field(default=None, alias="from")
    to: list[Recipient] | None = None
    cc: list[Recipient] = Field(default_factory=list)
    bcc: list[Recipient] = Field(default_factory=list)
    subject: str = ""
    body: str = ""
    charset: str = "utf-8"
    attachments: list[str] = Field(default_factory=list)
    timeout: Annotated[float, Field(gt=0, le=TIMEOUT_MAX)] | None = None


class SmtpStopRequest(Request):
    pass


@dataclass(frozen=True)
class Mailbox:
    address: str
    name: str = ""


@dataclass(frozen=True)
class LocalAttachment:
    path: Path
    name: str  # the file's name on the module, and so in the e-mail
    size: int


@dataclass(frozen=True)
class Mail:
    """An e-mail every part of which the module will take."""

    server: str
    port: int
    login: tuple[str, str] | None = field(repr=False)
    sender: Mailbox
    to: tuple[Mailbox, ...]
    cc: tuple[Mailbox, ...]
    bcc: tuple[Mailbox, ...]
    subject: str
    body: str
    charset: str
    attachments: tuple[LocalAttachment, ...]

    @property
    def recipient_count(self) -> int:
        return len(self.to) + len(self.cc) + len(self.bcc)

    @property
    def attachment_bytes(self) -> int:
        return sum(a.size for a in self.attachments)


def _line_text(value: str, field_path: str, limit: int, *, ascii_only: bool) -> str:
    """Text that goes inside a quoted parameter: no quote, no control character."""
    if len(value) > limit:
        raise too_large(field_path, f"longer than {limit} characters", limit)
    bad = _LINE_FORBIDDEN.search(value)
    if bad:
        raise invalid(field_path, f"must not contain {bad.group()!r}")
    if ascii_only and not value.isascii():
        raise invalid(field_path, "must be ASCII")
    return value


def _address(value: str, field_path: str) -> str:
    _line_text(value, field_path, ADDRESS_MAX, ascii_only=True)
    if not _ADDRESS.fullmatch(value):
        raise invalid(field_path, "is not an e-mail address (local@domain)")
    return value


def _mailbox(value: str | MailboxField, field_path: str) -> Mailbox:
    if isinstance(value, str):
        return Mailbox(_address(value, field_path))
    address = _address(value.address, f"{field_path}.address")
    return Mailbox(address, _line_text(value.name, f"{field_path}.name", NAME_MAX, ascii_only=True))


def _recipients(values: list[Recipient], kind: str) -> tuple[Mailbox, ...]:
    if len(values) > RECIPIENTS_MAX:
        raise too_large(kind, f"more than {RECIPIENTS_MAX} recipients", RECIPIENTS_MAX)
    return tuple(_mailbox(v, f"{kind}[{i}]") for i, v in enumerate(values))


def _charset(value: str) -> str:
    if len(value) > CHARSET_MAX:
        raise too_large("charset", f"longer than {CHARSET_MAX} characters", CHARSET_MAX)
    if not _CHARSET.fullmatch(value):
        raise invalid("charset", "must be a character set name such as utf-8")
    try:
        codecs.lookup(value)
    except LookupError:
        raise invalid("charset", f"unknown character set {value!r}") from None
    return value


def _body(value: str, charset: str) -> str:
    if len(value) > BODY_MAX:
        raise too_large("body", f"longer than {BODY_MAX} characters", BODY_MAX)
    bad = _BODY_FORBIDDEN.search(value)
    if bad:
        raise invalid("body", f"must not contain {bad.group()!r}")
    try:
        encoded = value.encode(charset)
    except UnicodeEncodeError:
        raise invalid("body", f"cannot be written in {charset}") from None
    if len(encoded) > BODY_MAX:  # the module counts what it receives: bytes
        raise too_large("body", f"over {BODY_MAX} bytes in {charset}", BODY_MAX)
    return value


def _attachments(values: list[str], files: FilesArea) -> tuple[LocalAttachment, ...]:
    if len(values) > ATTACHMENTS_MAX:
        raise too_large("attachments", f"more than {ATTACHMENTS_MAX} attachments", ATTACHMENTS_MAX)
    found: list[LocalAttachment] = []
    seen: dict[str, int] = {}
    for i, relative in enumerate(values):
        field_path = f"attachments[{i}]"
        path = files.resolve(relative, field=field_path)
        if not path.is_file():
            raise invalid(field_path, "no such file in the files folder")
        # the module sends the file under its own name and takes one name only once
        name = check_name(path.name, field_path)
        if name.lower() in seen:
            raise invalid(field_path, f"same file name as attachments[{seen[name.lower()]}]")
        seen[name.lower()] = i
        found.append(LocalAttachment(path, name, path.stat().st_size))
    total = sum(a.size for a in found)
    if total > ATTACHMENT_BYTES_MAX:
        raise too_large(
            "attachments",
            f"{total} bytes in all, over {ATTACHMENT_BYTES_MAX}",
            ATTACHMENT_BYTES_MAX,
        )
    return tuple(found)


def _login(request: SmtpSendRequest, settings: Settings) -> tuple[str, str] | None:
    if "auth" in request.model_fields_set:
        if request.auth is None:
            return None
        user, password = request.auth.user, request.auth.password.get_secret_value()
        where = "auth"
    else:
        user, password = settings.smtp.user, settings.smtp.password.get_secret_value()
        where = "auth (from [smtp])"
        if not user:
            return None
    _line_text(user, f"{where}.user", USER_MAX, ascii_only=True)
    if not user:
        raise invalid(f"{where}.user", "must not be empty")
    # the password's own text never goes into a message: only what is wrong with it
    if len(password) > PASSWORD_MAX:
        raise too_large(f"{where}.password", f"longer than {PASSWORD_MAX} characters", PASSWORD_MAX)
    if _LINE_FORBIDDEN.search(password) or not password.isascii():
        raise invalid(f"{where}.password", "must be ASCII without quotes or control characters")
    return user, password


def compose(request: SmtpSendRequest, settings: Settings, files: FilesArea) -> Mail:
    """The request merged over `[smtp]` and checked against the module's limits; raises
    ServiceError (`invalid_request`, `too_large`, `forbidden`) naming the field."""
    defaults = settings.smtp
    server = request.server if request.server is not None else defaults.server
    if not server:
        raise invalid("server", "missing, and [smtp] has no default")
    _line_text(server, "server", SERVER_MAX, ascii_only=True)
    if request.sender is not None:
        sender = _mailbox(request.sender, "from")
    elif defaults.from_address:
        sender = Mailbox(
            _address(defaults.from_address, "from"),
            _line_text(defaults.from_name, "from.name", NAME_MAX, ascii_only=True),
        )
    else:
        raise invalid("from", "missing, and [smtp] has no from_address")
    to = _recipients(request.to if request.to is not None else list(defaults.to), "to")
    cc = _recipients(request.cc, "cc")
    bcc = _recipients(request.bcc, "bcc")
    if not (to or cc or bcc):
        raise invalid("to", "no recipient given, and [smtp] has no default ones")
    charset = _charset(request.charset)
    mail = Mail(
        server=server,
        port=request.port if request.port is not None else defaults.port,
        login=_login(request, settings),
        sender=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        subject=_line_text(request.subject, "subject", SUBJECT_MAX, ascii_only=False),
        body=_body(request.body, charset),
        charset=charset,
        attachments=_attachments(request.attachments, files),
    )
    return mail
