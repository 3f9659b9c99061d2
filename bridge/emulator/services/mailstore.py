"""Where AT+POP3GET puts a retrieved e-mail in the module's file system (seed 4.6):
``C:/Email/<YYMMDDHHMMSS>/`` holding ``EMAIL000.TXT`` (header and body text), each
attachment under its own name, and ``<YYMMDDHHMMSS>.eml`` (the whole message) as
<get_type> asks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from bridge.emulator.api import ModuleFS

PARSED = 1  # body file and attachments
WHOLE = 2  # the .eml file
BOTH = 3
GET_TYPES = (PARSED, WHOLE, BOTH)
MAIL_ROOT = "Email"
_REFUSED = re.compile(r'[\\/:*?"<>|,;\x00-\x1f]')  # characters module file names cannot hold
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLDER_TRIES = 3600


@dataclass(frozen=True)
class SavedMail:
    """Where a fetched mail went, for the result line and for AT+POP3READ."""

    folder: str  # "C:/Email/090901120000/", as the result line prints it
    reported: str  # the <mail_file> of the result line
    readable: str  # "090901120000/EMAIL000.TXT": what AT+POP3READ reads

    def result_line(self) -> str:
        return f"{self.folder}, {self.reported}"


class UnreadableMail(ValueError):
    """The message does not parse into a body and attachments."""


def save_mail(fs: ModuleFS, drive: str, when: datetime, raw: bytes, get_type: int) -> SavedMail:
    """Store `raw` as <get_type> says. UnreadableMail when it does not parse; OSError or
    ValueError when the file system refuses."""
    parsed = _parse(raw) if get_type in (PARSED, BOTH) else None
    stamp, folder = _new_folder(fs, drive, when)
    mail_file = ""
    if parsed is not None:
        text, attachments = parsed
        mail_file = _mail_file_name({name.lower() for name, _ in attachments})
        _write(fs, folder + mail_file, text)
        for name, data in attachments:
            _write(fs, folder + name, data)
    eml = f"{stamp}.eml"
    if get_type in (WHOLE, BOTH):
        _write(fs, folder + eml, raw)
    # seed 4.6: with <get_type> 3 the .eml is saved but not reported
    reported = mail_file if mail_file else eml
    return SavedMail(folder, reported, f"{stamp}/{reported}")


def _parse(raw: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The EMAILnnn.TXT content and the attachments (name, bytes) of a message."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        return _header_block(raw) + _body_text(message), _attachments(message)
    except Exception as exc:  # the email package fails on broken mail in many ways
        raise UnreadableMail(str(exc)) from exc


def mail_path(drive: str, readable: str) -> str:
    """The module path of a <mail_file> as AT+POP3READ names it ("<dir>/<file>")."""
    return f"{drive}:/{MAIL_ROOT}/{readable}"


def _new_folder(fs: ModuleFS, drive: str, when: datetime) -> tuple[str, str]:
    # the folder is named after the clock; two mails in one second take the next free second
    for second in range(_FOLDER_TRIES):
        stamp = (when + timedelta(seconds=second)).strftime("%y%m%d%H%M%S")
        folder = f"{drive}:/{MAIL_ROOT}/{stamp}/"
        host = fs.host_path(folder)
        if not host.exists():
            host.mkdir(parents=True)
            return stamp, folder
    raise OSError("no free mail folder name")


def _write(fs: ModuleFS, module_path: str, data: bytes) -> None:
    fs.host_path(module_path).write_bytes(data)


def _header_block(raw: bytes) -> bytes:
    """The header lines exactly as received, and the blank line after them."""
    end = _HEADER_END.search(raw)
    return raw + b"\r\n" if end is None else raw[: end.end()]


def _body_text(message: EmailMessage) -> bytes:
    """The text body with its transfer encoding undone, in its own charset."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return b""
    payload = body.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _attachments(message: EmailMessage) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    taken: set[str] = set()
    for number, part in enumerate(message.iter_attachments(), start=1):
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else part.as_bytes()
        name = _unique(_file_name(part.get_filename(), number), taken)
        taken.add(name.lower())
        found.append((name, data))
    return found


def _file_name(given: str | None, number: int) -> str:
    name = _REFUSED.sub("_", given or "").strip(" .")
    return name or f"ATTACH{number:03d}.DAT"


def _unique(name: str, taken: set[str]) -> str:
    if name.lower() not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    for n in range(1, 1000):
        candidate = f"{stem}({n}){dot}{ext}"
        if candidate.lower() not in taken:
            return candidate
    raise OSError(f"too many attachments named {name!r}")


def _mail_file_name(attachment_names: set[str]) -> str:
    """EMAIL000.TXT, or the next number when an attachment already has that name (seed 4.6)."""
    for n in range(1000):
        name = f"EMAIL{n:03d}.TXT"
        if name.lower() not in attachment_names:
            return name
    raise OSError("no free e-mail file name")
