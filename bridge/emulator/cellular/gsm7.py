"""The GSM 03.38 default alphabet and packing as the emulated network does them: a
table of its own and bit lists (not the bridge's accumulator), checked by tests
against published PDUs."""

from __future__ import annotations

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENDED = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~",
            0x3E: "]", 0x40: "|", 0x65: "€"}  # fmt: skip
ESC = 0x1B
_CODE_OF = {ch: i for i, ch in enumerate(BASIC) if i != ESC}
_EXT_CODE_OF = {ch: code for code, ch in EXTENDED.items()}
assert len(BASIC) == 128


def septet_codes(text: str) -> list[int] | None:
    """The codes of `text` (ESC + code for the extension table); None if a character
    has no place in either table."""
    codes: list[int] = []
    for ch in text:
        if ch in _CODE_OF:
            codes.append(_CODE_OF[ch])
        elif ch in _EXT_CODE_OF:
            codes += [ESC, _EXT_CODE_OF[ch]]
        else:
            return None
    return codes


def text_of(codes: list[int]) -> str:
    out = []
    escaped = False
    for code in codes:
        if escaped:
            out.append(EXTENDED.get(code, BASIC[code]))  # 23.038: unknown -> the basic char
            escaped = False
        elif code == ESC:
            escaped = True
        else:
            out.append(BASIC[code])
    return "".join(out)


def pack(codes: list[int], fill_bits: int = 0) -> bytes:
    """Septets into octets, least significant bit first, after `fill_bits` zeros."""
    bits = [0] * fill_bits
    for code in codes:
        bits += [(code >> i) & 1 for i in range(7)]
    bits += [0] * (-len(bits) % 8)
    return bytes(
        sum(bit << i for i, bit in enumerate(bits[start : start + 8]))
        for start in range(0, len(bits), 8)
    )


def unpack(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    bits = [(octet >> i) & 1 for octet in data for i in range(8)][fill_bits:]
    return [
        sum(bit << i for i, bit in enumerate(bits[7 * n : 7 * n + 7]))
        for n in range(min(count, len(bits) // 7))
    ]


def bcd_swap(digits: str) -> bytes:
    """ "12345" -> 21 43 F5: two digits an octet, the first in the low nibble."""
    padded = digits + ("F" if len(digits) % 2 else "")
    return bytes.fromhex("".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2)))


def bcd_unswap(data: bytes) -> str:
    hexed = data.hex().upper()
    return "".join(hexed[i + 1] + hexed[i] for i in range(0, len(hexed), 2)).rstrip("F")
