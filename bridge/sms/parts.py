"""How a text goes out: GSM 7-bit when every character is in the default alphabet
or its extension table, else UCS-2; split into parts that never cut an escape
sequence or a UTF-16 surrogate pair; at most `MAX_PARTS` parts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bridge.sms import alphabet
from bridge.sms.errors import TooLarge

MAX_PARTS = 10


class Encoding(Enum):
    """The alphabet of a message; the values are the units a part holds."""

    GSM = "gsm"
    UCS2 = "ucs2"

    @property
    def single_capacity(self) -> int:
        """Units (septets or UTF-16 code units) in a message of one part."""
        return 160 if self is Encoding.GSM else 70

    @property
    def part_capacity(self) -> int:
        """Units per part of a concatenated message (the 6-octet UDH takes the rest)."""
        return 153 if self is Encoding.GSM else 67


@dataclass(frozen=True)
class PartPlan:
    """The text of each part, in order, and the alphabet they share."""

    encoding: Encoding
    parts: tuple[str, ...]

    @property
    def concatenated(self) -> bool:
        return len(self.parts) > 1


def char_units(char: str, encoding: Encoding) -> int:
    """Septets (1 or 2) or UTF-16 code units (1, or 2 for a surrogate pair)."""
    if encoding is Encoding.GSM:
        return alphabet.char_septets(char) or 0
    return 2 if ord(char) > 0xFFFF else 1


def choose_encoding(text: str) -> Encoding:
    return Encoding.GSM if alphabet.to_septets(text) is not None else Encoding.UCS2


def plan_parts(text: str, max_parts: int = MAX_PARTS) -> PartPlan:
    """Split `text`; TooLarge when it needs more than `max_parts` parts."""
    encoding = choose_encoding(text)
    units = [char_units(c, encoding) for c in text]
    if sum(units) <= encoding.single_capacity:
        return PartPlan(encoding, (text,))
    parts: list[str] = []
    start = used = 0
    for index, size in enumerate(units):
        if used + size > encoding.part_capacity:
            parts.append(text[start:index])
            start, used = index, 0
        used += size
    parts.append(text[start:])
    if len(parts) > max_parts:
        raise TooLarge(len(parts), max_parts)
    return PartPlan(encoding, tuple(parts))


def count_parts(text: str) -> int:
    """How many parts `text` needs, however many that is."""
    return len(plan_parts(text, max_parts=1 << 30).parts)
