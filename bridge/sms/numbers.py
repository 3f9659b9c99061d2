"""Phone numbers: the check every destination passes, and the TP-address field
(3GPP TS 23.040 9.1.2.5) in both directions."""

from __future__ import annotations

import re

from bridge.sms import alphabet
from bridge.sms.errors import InvalidNumber, PduError

_INTERNATIONAL = re.compile(r"\+[0-9]{3,20}")
_NATIONAL = re.compile(r"[0-9]{3,20}")  # ASCII digits: "\\d" takes any script's

TOA_INTERNATIONAL = 0x91  # type of number "international", numbering plan ISDN/E.164
TOA_UNKNOWN = 0x81  # type of number "unknown", numbering plan ISDN/E.164
TON_INTERNATIONAL = 1
TON_ALPHANUMERIC = 5

_SEMI_OCTET = "0123456789*#abc"


def check_number(number: str) -> str:
    """The number as sent: `+` and 3-20 digits (international), or 3-20 digits
    (a national number such as 01511234567, or a short code), sent as type unknown
    so the network reads it as dialled."""
    if _INTERNATIONAL.fullmatch(number) or _NATIONAL.fullmatch(number):
        return number
    raise InvalidNumber(
        "must be + and 3 to 20 digits (international), or 3 to 20 digits (national or short code)"
    )


def encode_address(number: str) -> bytes:
    """TP-DA of a checked number: digit count, type of address, swapped semi-octets."""
    digits = check_number(number).lstrip("+")
    toa = TOA_INTERNATIONAL if number.startswith("+") else TOA_UNKNOWN
    padded = digits + "F" * (len(digits) % 2)
    swapped = bytes(int(padded[i + 1] + padded[i], 16) for i in range(0, len(padded), 2))
    return bytes((len(digits), toa)) + swapped


def decode_address(pdu: bytes, pos: int) -> tuple[str, int]:
    """The address at `pos` (length in semi-octets, type, value) and the position
    after it. International numbers get their `+`; alphanumeric senders
    (`MMoney`) are GSM 7-bit text."""
    if pos + 2 > len(pdu):
        raise PduError("address cut short")
    length, toa = pdu[pos], pdu[pos + 1]
    size = (length + 1) // 2
    value = pdu[pos + 2 : pos + 2 + size]
    if len(value) < size:
        raise PduError("address cut short")
    ton = (toa >> 4) & 0x07
    if ton == TON_ALPHANUMERIC:
        text = alphabet.from_septets(alphabet.unpack(value, length * 4 // 7))
        return text, pos + 2 + size
    digits = semi_octets(value)[:length]
    prefix = "+" if ton == TON_INTERNATIONAL and digits else ""
    return prefix + digits, pos + 2 + size


def semi_octets(value: bytes) -> str:
    """BCD digits, low nibble first (`*`, `#`, a-c for 0xA-0xE); 0xF is filler."""
    out = []
    for octet in value:
        for nibble in (octet & 0x0F, octet >> 4):
            if nibble < 0x0F:
                out.append(_SEMI_OCTET[nibble])
    return "".join(out)
