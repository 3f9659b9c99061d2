"""Payloads sent in the module's data modes.

CHTTPACT requests and CFTPPUT uploads: 0x03 is sent as 03 03 and 0x1A as 03 1A, and
a lone 0x1A ends the data. SMTPBODY's `>>` mode: text ended by Ctrl-Z (no escaping
exists there, so the text may not contain Ctrl-Z or ESC).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

ETX = b"\x03"
CTRL_Z = b"\x1a"
ESC = b"\x1b"
END = CTRL_Z


def escape(chunk: bytes) -> bytes:
    """Escape one chunk of payload; chunks can be escaped independently."""
    if ETX not in chunk and CTRL_Z not in chunk:
        return chunk
    return chunk.replace(ETX, ETX + ETX).replace(CTRL_Z, ETX + CTRL_Z)


def escaped_stream(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The escaped chunks of a payload, then the lone Ctrl-Z that ends it."""
    for chunk in chunks:
        if chunk:
            yield escape(chunk)
    yield END


def text_body(text: str, charset: str = "utf-8") -> bytes:
    """An SMTPBODY `>>` body ended by Ctrl-Z; ValueError if it holds Ctrl-Z or ESC,
    which would end or cancel it early."""
    data = text.encode(charset)
    if CTRL_Z in data or ESC in data:
        raise ValueError("body contains Ctrl-Z or ESC")
    return data + CTRL_Z
