"""The sans-IO receiver: bytes from the module in, events out.

No I/O, no clocks, no threads. The caller tells it what the pending command looks
like (`expect`) so it can tell echo from information lines from URCs, and which
prompt a data-mode command will send. Length-framed blocks (`+XXX: DATA,<len>`)
are cut by count, never by line ends. A `+CMGR:`, `+CMGL:`, `+CMT:` or `+CDS:`
header waits for the hexadecimal PDU line after it, and the two come out as one
event (`pdu`). It never raises on any input: what it
cannot use it drops with a `ProtocolError` event and resynchronises on the next
line end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.at.events import (
    DataBlock,
    Echo,
    Event,
    FinalResult,
    InfoLine,
    Prompt,
    ProtocolError,
    ResultKind,
    Urc,
)

MAX_LINE = 64 * 1024
"""A line longer than this without a line end is dropped (garbage, a lost CRLF)."""

MAX_BLOCK = 1024 * 1024
"""A DATA header announcing more than this is not believed (real blocks are <= 4 KiB)."""

# `+CFTPGET: DATA,1020`, `+CHTTPACT: DATA, 249`, `+CFTPGET: DATA, 1020,`, `DATA,015`
_DATA_HEADER = re.compile(rb"(\+[A-Z0-9]+):[ \t]*DATA[ \t]*,[ \t]*(\d{1,9})[ \t]*,?[ \t]*\r*")

_FINAL_WORDS = {kind.value.encode(): kind for kind in ResultKind if not kind.value.startswith("+")}

KNOWN_URCS: tuple[str, ...] = (
    "START",
    "RDY",
    "+STIN:",
    "+CPIN:",
    "OPL DONE",
    "PNN DONE",
    "SMS DONE",
    "PB DONE",
    "RING",
    "+CREG:",
    "+CGREG:",
    "+CMTI:",
    "+CMT:",
    "+CDS:",
    "+CLIP:",
    "+CGEV:",
    "+CDSI:",
    "+CUSD:",
    "VOICE CALL:",
    "+SMTP:",
    "+CHTTPS:",
    "+CHTTPSNOTIFY:",
    "+CFTPSNOTIFY:",
    "+CPSI:",
    "+SIMCARD:",
)
"""Lines that are unsolicited even while a command with free-form answers (ATI,
AT+CGSN) is pending."""

PDU_FOLLOWS = (b"+CMT:", b"+CDS:", b"+CMGR:", b"+CMGL:")
"""Headers whose next line is a hexadecimal PDU (27.005 in PDU mode): the receiver
gives the two lines as one event."""

_HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the pending command's answer looks like.

    `info_prefixes`: lines starting with one of these are its information lines;
    None means every line that is not a known URC is (ATI, AT+CGSN, AT+FSLS).
    `prompt`: the data-mode prompt it will send (`>` or `>>`), if any.
    """

    command: str
    info_prefixes: tuple[str, ...] | None = ()
    prompt: str | None = None


class Receiver:
    """Decodes the module's byte stream into `Event`s; see the module docstring."""

    def __init__(self, *, max_line: int = MAX_LINE, max_block: int = MAX_BLOCK) -> None:
        self._rest = bytearray()  # bytes not yet used (a partial line)
        self._max_line = max_line
        self._max_block = max_block
        self._block_name = ""
        self._block_left = 0  # > 0 while inside a length-framed block
        self._block_parts: list[bytes] = []
        # Exact header lines seen before -> (name, length): most blocks repeat
        # `+CFTPGET: DATA,1024`, and a dict lookup beats the regex.
        self._seen_headers: dict[bytes, tuple[str, int]] = {}
        self._skipping = False  # dropping an over-long line until its end
        self._echo: bytes | None = None
        self._info: tuple[bytes, ...] | None = ()
        self._prompt: bytes | None = None
        self._held: InfoLine | Urc | None = None  # a header waiting for its PDU line

    # -- what the caller tells us -------------------------------------------------

    def expect(self, expectation: Expectation) -> None:
        """A command was just sent: recognise its echo, its information lines and
        its prompt. Holds until its final result (the prompt until it arrives)."""
        self._echo = expectation.command.strip().encode("ascii", "replace").upper()
        self._info = (
            None
            if expectation.info_prefixes is None
            else tuple(p.encode() for p in expectation.info_prefixes)
        )
        self._prompt = expectation.prompt.encode() if expectation.prompt else None

    def idle(self) -> None:
        """No command is pending any more (e.g. it timed out): every line is a URC."""
        self._echo = None
        self._info = ()
        self._prompt = None

    @property
    def in_block(self) -> bool:
        """True while the bytes of a length-framed block are still due."""
        return self._block_left > 0

    def abandon_block(self) -> list[Event]:
        """The block in progress will never be finished (the module stopped or
        rebooted mid-payload): drop it and read what arrived of it as lines, so a
        boot URC swallowed as payload (`START`) is still seen. The caller should
        treat lines from here as suspect."""
        if not self._block_left:
            return []
        partial = b"".join(self._block_parts)
        error = ProtocolError(
            f"{self._block_name} block cut short: {self._block_left} bytes never came",
            len(partial),
        )
        self._block_parts = []
        self._block_left = 0
        self.idle()
        return [error, *self.feed(partial)]

    # -- bytes in, events out -----------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Take the next bytes read from the port; return the events they complete."""
        # One tight loop: a 1.8 MB/s link must never be limited by parsing, and a
        # 64 MiB download is 65536 blocks (see bench/parser.py).
        buf = self._joined(data)
        if buf is None:
            return self._overflow_check()
        rest = self._rest
        events: list[Event] = []
        append = events.append
        left = self._block_left
        name = self._block_name
        parts = self._block_parts
        pos = 0
        end = len(buf)
        while True:
            if left:
                avail = end - pos
                if left > avail:
                    parts.append(buf[pos:end])
                    left -= avail
                    pos = end
                    break
                payload = buf[pos : pos + left]
                pos += left
                left = 0
                if parts:
                    parts.append(payload)
                    payload = b"".join(parts)
                    parts.clear()
                append(DataBlock(name, payload))
            if pos >= end:
                break
            nl = buf.find(b"\n", pos)
            if nl < 0:
                pos = self._partial(buf, pos, end, events)
                break
            if self._skipping:
                self._skipping = False
            elif nl - pos > self._max_line:
                append(ProtocolError(f"line longer than {self._max_line} bytes", nl - pos))
            elif buf[pos] == 0x2B:  # "+": try the DATA header fast path first
                opened = self._plus_line(buf[pos:nl], events)
                if opened is not None:
                    name, left = opened
            else:
                line = buf[pos:nl].strip()
                if line:
                    self._line(line, events)
            pos = nl + 1
        self._block_left = left
        self._block_name = name
        if pos < end:
            rest += buf[pos:]
        return events

    def _joined(self, data: bytes) -> bytes | None:
        """`data` after what is left of the last read; None while that is still one
        unfinished line (kept, with no rescans and no copies of the rest)."""
        if type(data) is not bytes:
            data = bytes(data)  # a memoryview's `in` compares ints, not bytes
        rest = self._rest
        if not rest:
            return data
        if not self._block_left and self._prompt is None and b"\n" not in data:
            rest += data
            return None
        rest += data
        buf = bytes(rest)
        rest.clear()
        return buf

    def _plus_line(self, raw: bytes, events: list[Event]) -> tuple[str, int] | None:
        """A line starting with `+`: (block name, length) when it opens a DATA block,
        else it is handled as a line. Known headers skip the regular expression."""
        known = self._seen_headers.get(raw)
        if known is not None:
            self._echo = None
            return known
        m = _DATA_HEADER.fullmatch(raw)
        if m is None:
            self._line(raw.strip(), events)
            return None
        bname, digits = m.groups()
        length = int(digits)
        opened = self._data_header(bname, length, len(raw), events)
        if opened is None:
            return None
        if len(self._seen_headers) < 64:
            self._seen_headers[raw] = (opened, length)
        return opened, length

    def _overflow_check(self) -> list[Event]:
        if self._skipping:
            self._rest.clear()
        elif len(self._rest) > self._max_line:
            dropped = len(self._rest)
            self._rest.clear()
            self._skipping = True
            return [ProtocolError(f"line longer than {self._max_line} bytes", dropped)]
        return []

    def _data_header(self, name: bytes, length: int, size: int, events: list[Event]) -> str | None:
        """The slow path of a DATA header: a new name, an empty or impossible block.
        Returns the block's name when a block now follows."""
        if length > self._max_block:
            events.append(ProtocolError(f"block of {length} bytes announced", size))
            return None
        self._echo = None
        text = name.decode()
        if not length:
            events.append(DataBlock(text, b""))
            return None
        return text

    def _partial(self, buf: bytes, pos: int, end: int, events: list[Event]) -> int:
        """No line end in what is left: a prompt, an over-long line, or wait for more."""
        rest = end - pos
        if self._skipping:
            return end
        prompt = self._prompt
        if prompt is not None and rest <= len(prompt) + 2 and bytes(buf[pos:end]).strip() == prompt:
            events.append(Prompt(prompt.decode()))
            self._prompt = None
            self._echo = None
            return end
        if rest > self._max_line:
            events.append(ProtocolError(f"line longer than {self._max_line} bytes", rest))
            self._skipping = True
            return end
        return pos

    def _line(self, line: bytes, events: list[Event]) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if _HEX_DIGITS.issuperset(line):
                held.pdu = line.decode("ascii")
                events.append(held)
                return
            events.append(held)  # no PDU came (an empty slot, text mode): the header alone
        if self._prompt is not None and line == self._prompt:
            events.append(Prompt(line.decode()))
            self._prompt = None
            self._echo = None
            return
        word = _FINAL_WORDS.get(line)
        final = None if word is None else FinalResult(word)
        if final is None and line[:3] == b"+CM" and line[4:11] == b" ERROR:":
            kind = ResultKind.CME_ERROR if line[3:4] == b"E" else ResultKind.CMS_ERROR
            if line[3:4] in (b"E", b"S"):
                final = FinalResult(kind, line[11:].strip().decode("utf-8", "replace"))
        if final is not None:
            events.append(final)
            self.idle()
            return
        text = line.decode("utf-8", "replace")
        echo = self._echo
        if echo is not None:
            self._echo = None
            # the ESC a probe sends first may come back before the echoed command
            if line.lstrip(b"\x1b").upper() == echo:
                events.append(Echo(text))
                return
        info = self._info
        if info is None:
            is_info = not text.startswith(KNOWN_URCS)
        else:
            is_info = bool(info) and line.startswith(info)
        event = InfoLine(text) if is_info else Urc(text)
        if line.startswith(PDU_FOLLOWS):
            self._held = event
        else:
            events.append(event)
