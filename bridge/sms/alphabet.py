"""The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 6.2.1,
through the `gsm0338` codec) and septet packing with leading fill bits (6.1.2.1)."""

from __future__ import annotations

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

CODEC = "gsm03.38"
ESCAPE = 0x1B


def to_septets(text: str) -> bytes | None:
    """One septet per basic character, two (ESC + code) per extension character;
    None when the text has a character outside both tables. The codec maps U+001B to
    the escape septet itself, which a reader takes as the start of an extension
    character and drops: ESC is no character of the alphabet here (UCS-2 carries it)."""
    if "\x1b" in text:
        return None
    try:
        return text.encode(CODEC)
    except UnicodeEncodeError:
        return None


def char_septets(char: str) -> int | None:
    """How many septets `char` takes: 1, 2 (extension table) or None (not GSM)."""
    septets = to_septets(char)
    return None if septets is None else len(septets)


def from_septets(septets: bytes) -> str:
    """Septet values (unpacked) to text; an unknown extension code becomes U+FFFD."""
    text: str = septets.decode(CODEC, errors="replace")
    return text


def pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets LSB first, after `fill_bits` zero bits (alignment after a UDH)."""
    out = bytearray()
    acc = 0
    bits = fill_bits
    for septet in septets:
        acc |= (septet & 0x7F) << bits
        bits += 7
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """The first `count` septets of `data`, skipping `fill_bits` leading bits."""
    out = bytearray()
    acc = 0
    bits = -fill_bits
    for octet in data:
        if bits < 0:
            acc = octet >> -bits
            bits += 8
        else:
            acc |= octet << bits
            bits += 8
        while bits >= 7 and len(out) < count:
            out.append(acc & 0x7F)
            acc >>= 7
            bits -= 7
        if len(out) >= count:
            break
    return bytes(out)
