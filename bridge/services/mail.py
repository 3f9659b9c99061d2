"""A fetched e-mail parsed with the stdlib `email` package into what pop3/get answers: the
main headers, the readable text and the attachments' names and sizes.

The message is fed chunk by chunk as it comes off the port; the parser keeps what it needs
(the `email` model holds the message), nothing else keeps a second copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesFeedParser
from html.parser import HTMLParser
from typing import Any, cast

HEADERS = ("from", "to", "subject", "date")


@dataclass(frozen=True)
class Attachment:
    name: str | None  # None when the part names no file (an inline image, say)
    size: int  # decoded bytes (what the file would hold), not the base64 text

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size}


@dataclass(frozen=True)
class MailSummary:
    headers: dict[str, str]  # from, to, subject, date: decoded, "" when absent
    text: str  # the text/plain body, or the HTML body's text when there is none
    attachments: list[Attachment] = field(default_factory=list)


class MailReader:
    """Parses a message given in chunks; `close()` returns the summary."""

    def __init__(self) -> None:
        self._parser = BytesFeedParser(policy=policy.default)

    def feed(self, chunk: bytes) -> None:
        self._parser.feed(chunk)

    def close(self) -> MailSummary:
        message = cast(EmailMessage, self._parser.close())
        body = _body(message)
        return MailSummary(
            headers={name: header_text(message, name) for name in HEADERS},
            text=_text(body),
            attachments=_attachments(message, body),
        )


def header_text(message: EmailMessage, name: str) -> str:
    """A header decoded (RFC 2047 words), on one line; the raw value if it will not parse."""
    try:
        value = message.get(name)
        text = "" if value is None else str(value)
    except Exception:  # the header parser can trip on hostile input: show it as it came
        raw = next((v for k, v in message.raw_items() if k.lower() == name), "")
        text = str(raw)
    return " ".join(text.split())


def _body(message: EmailMessage) -> MIMEPart | None:
    return message.get_body(preferencelist=("plain",)) or message.get_body(preferencelist=("html",))


def _text(body: MIMEPart | None) -> str:
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, UnicodeError):  # an unknown or lying charset
        payload = body.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if body.get_content_type() == "text/html":
        return html_text(content)
    return content.replace("\r\n", "\n")  # the wire's line ends are not the text's


def _attachments(message: EmailMessage, body: MIMEPart | None) -> list[Attachment]:
    found: list[Attachment] = []

    def visit(part: MIMEPart) -> None:
        if part is body:
            return
        ctype = part.get_content_type()
        if ctype == "message/rfc822":  # a forwarded mail is one attachment, not its parts
            inner = part.get_payload(0)
            size = len(inner.as_bytes()) if isinstance(inner, MIMEPart) else 0
            found.append(Attachment(part.get_filename(), size))
            return
        if part.is_multipart():
            for sub in part.iter_parts():
                visit(sub)
            return
        # the HTML twin of a text body (multipart/alternative) is no attachment
        if (
            part.get_content_maintype() == "text"
            and not part.is_attachment()
            and part.get_filename() is None
        ):
            return
        payload = part.get_payload(decode=True)
        found.append(
            Attachment(part.get_filename(), len(payload) if isinstance(payload, bytes) else 0)
        )

    visit(message)
    return found


_BLOCK_TAGS = frozenset(
    {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
)


class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The readable text of an HTML body: tags dropped, block elements as line breaks."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
