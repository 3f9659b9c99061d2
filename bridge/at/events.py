"""What the receiver produces: small events, one per thing the module said.

Immutable by convention, not `frozen=True`: a frozen dataclass costs ~300 ns more
to build, and a 64 MiB download is 65536 DataBlocks (bench/parser.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ResultKind(Enum):
    """The final result codes that end a command (V.25ter and 3GPP 27.007)."""

    OK = "OK"
    ERROR = "ERROR"
    CME_ERROR = "+CME ERROR"
    CMS_ERROR = "+CMS ERROR"
    NO_CARRIER = "NO CARRIER"
    BUSY = "BUSY"
    NO_ANSWER = "NO ANSWER"
    NO_DIALTONE = "NO DIALTONE"


@dataclass(slots=True)
class FinalResult:
    """The line that ends a command; `detail` is the `<n|text>` of +CME/+CMS ERROR."""

    kind: ResultKind
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind is ResultKind.OK


@dataclass(slots=True)
class InfoLine:
    """A line answering the pending command (matches its information rule).
    `pdu` is the hexadecimal PDU line that follows a `+CMGR:` or `+CMGL:` header."""

    text: str
    pdu: str | None = None


@dataclass(slots=True)
class Urc:
    """A line that is not the pending command's: an unsolicited result code, or a
    result the module reports after OK (`+SMTP: SUCCESS`, `+CFTPGET: 0`).
    `pdu` is the second line of a two-line URC (`+CMT:`, `+CDS:`)."""

    text: str
    pdu: str | None = None

    @property
    def name(self) -> str:
        """`+SMTP` for `+SMTP: SUCCESS`; the whole text for bare words like `RING`."""
        head, sep, _ = self.text.partition(":")
        return head.strip() if sep else self.text

    @property
    def value(self) -> str:
        """`SUCCESS` for `+SMTP: SUCCESS`; empty for bare words."""
        _, sep, tail = self.text.partition(":")
        return tail.strip() if sep else ""


@dataclass(slots=True)
class Echo:
    """The module repeating the command line it received (echo is on)."""

    text: str


@dataclass(slots=True)
class Prompt:
    """A data-mode prompt sent without a line end: `>` or `>>`."""

    text: str


@dataclass(slots=True)
class DataBlock:
    """A length-framed binary block: `+CFTPGET: DATA,<len>` then exactly `<len>` bytes.
    `name` is the prefix (`+CFTPGET`); `payload` is the bytes, whatever they contain."""

    name: str
    payload: bytes


@dataclass(slots=True)
class ProtocolError:
    """Input the receiver had to drop (an over-long line, an impossible length);
    it resynchronises on the next line end and goes on."""

    reason: str
    dropped: int


Event = FinalResult | InfoLine | Urc | Echo | Prompt | DataBlock | ProtocolError
