"""The emulated network's PDUs: it reads the SMS-SUBMITs the host sends with
AT+CMGS and writes the SMS-DELIVERs and SMS-STATUS-REPORTs it hands the host
(3GPP TS 23.040 9.2.2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.emulator.cellular import gsm7

SMSC = "+491710760000"


class BadPdu(ValueError):
    """Not an SMS-SUBMIT the module would take (+CMS ERROR: 304)."""


@dataclass(frozen=True)
class SubmittedPart:
    """One SMS-SUBMIT as the network understood it."""

    number: str
    text: str
    ucs2: bool
    message_class: int | None
    report_requested: bool
    validity: int | None  # the relative TP-VP octet, if any
    concat: tuple[int, int, int] | None  # (reference, total, seq)


class _Reader:
    """Octets from the front of a PDU, failing as BadPdu when they run out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BadPdu("PDU shorter than its fields")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def octet(self) -> int:
        return self.take(1)[0]


def decode_submit(tpdu: bytes) -> SubmittedPart:
    """Read an SMS-SUBMIT TPDU (the SMSC field already removed)."""
    r = _Reader(tpdu)
    first = r.octet()
    if first & 0x03 != 0x01:
        raise BadPdu("not an SMS-SUBMIT")
    r.octet()  # TP-MR: the module fills in its own
    digits, toa = r.octet(), r.octet()
    number = gsm7.bcd_unswap(r.take((digits + 1) // 2))[:digits]
    if toa & 0x70 == 0x10:
        number = "+" + number
    r.octet()  # TP-PID
    dcs = r.octet()
    vpf = (first >> 3) & 0x03
    validity = r.octet() if vpf == 2 else None
    if vpf in (1, 3):
        r.take(7)
    ucs2, message_class = _dcs(dcs)
    udl = r.octet()
    body = r.data[r.pos :]
    concat, text = _user_data(body, udl, ucs2, bool(first & 0x40))
    return SubmittedPart(number, text, ucs2, message_class, bool(first & 0x20), validity, concat)


def _dcs(dcs: int) -> tuple[bool, int | None]:
    if dcs & 0xF0 == 0xF0:
        return False, dcs & 0x03
    if dcs & 0xC0:
        raise BadPdu(f"data coding scheme {dcs:#04x} not supported here")
    alphabet = (dcs >> 2) & 0x03
    if alphabet == 1:
        raise BadPdu("8-bit data is not text")
    return alphabet == 2, (dcs & 0x03) if dcs & 0x10 else None


def _user_data(
    body: bytes, udl: int, ucs2: bool, has_udh: bool
) -> tuple[tuple[int, int, int] | None, str]:
    udh_len = body[0] + 1 if has_udh and body else 0
    concat = None
    pos = 1
    while pos + 1 < udh_len:
        iei, size = body[pos], body[pos + 1]
        value = body[pos + 2 : pos + 2 + size]
        if iei == 0x00 and size == 3:
            concat = (value[0], value[1], value[2])
        elif iei == 0x08 and size == 4:
            concat = (value[0] * 256 + value[1], value[2], value[3])
        pos += 2 + size
    if ucs2:
        raw = body[udh_len:udl]
        if len(raw) != udl - udh_len or len(raw) % 2:
            raise BadPdu("UCS-2 user data does not match its length")
        return concat, raw.decode("utf-16-be", "surrogatepass")
    skip_bits = udh_len * 8
    header_septets = -(-skip_bits // 7)
    fill = header_septets * 7 - skip_bits
    count = udl - header_septets
    if len(body) * 8 < udl * 7:
        raise BadPdu("GSM user data shorter than its length")
    return concat, gsm7.text_of(gsm7.unpack(body[udh_len:], count, fill))


# -- what the network sends ------------------------------------------------------


def digits_only(text: str) -> bool:
    return bool(text) and text.isascii() and text.isdigit()


def address(number: str) -> bytes:
    """TP-OA/TP-RA: international, national digits, or alphanumeric text."""
    if number.startswith("+") and digits_only(number[1:]):
        return bytes((len(number) - 1, 0x91)) + gsm7.bcd_swap(number[1:])
    if digits_only(number):
        return bytes((len(number), 0x81)) + gsm7.bcd_swap(number)
    codes = gsm7.septet_codes(number) or gsm7.septet_codes("?") or []
    packed = gsm7.pack(codes)
    return bytes((-(-len(codes) * 7 // 4), 0xD0)) + packed


def timestamp(when: datetime) -> bytes:
    """TP-SCTS in the time's own zone, quarter hours with the sign bit."""
    offset = when.utcoffset() or timedelta(0)
    quarters = int(offset.total_seconds()) // 900
    fields = when.strftime("%y%m%d%H%M%S") + f"{abs(quarters):02d}"
    octets = bytearray(gsm7.bcd_swap(fields))
    if quarters < 0:
        octets[6] |= 0x08
    return bytes(octets)


def smsc_field() -> bytes:
    digits = SMSC[1:]
    return bytes(((len(digits) + 1) // 2 + 1, 0x91)) + gsm7.bcd_swap(digits)


def encode_deliver(
    sender: str,
    text: str,
    when: datetime,
    *,
    ucs2: bool,
    concat: tuple[int, int, int] | None = None,
    message_class: int | None = None,
) -> bytes:
    """One SMS-DELIVER, SMSC field first, as the module stores and shows it."""
    udh = b"" if concat is None else bytes((5, 0x00, 3, *concat))
    first = 0x04 | (0x40 if udh else 0)  # no more messages to send; UDHI
    dcs = (0x08 if ucs2 else 0x00) | (0x10 | message_class if message_class is not None else 0)
    if ucs2:
        ud = udh + text.encode("utf-16-be", "surrogatepass")
        udl = len(ud)
    else:
        codes = gsm7.septet_codes(text)
        if codes is None:
            raise ValueError("text not in the GSM alphabet")
        header_septets = -(-len(udh) * 8 // 7)
        ud = udh + gsm7.pack(codes, header_septets * 7 - len(udh) * 8)
        udl = header_septets + len(codes)
    tpdu = bytes((first,)) + address(sender) + bytes((0x00, dcs)) + timestamp(when)
    return smsc_field() + tpdu + bytes((udl,)) + ud


def encode_status_report(
    reference: int, recipient: str, sent: datetime, done: datetime, status: int = 0
) -> bytes:
    """An SMS-STATUS-REPORT for message reference `reference`."""
    tpdu = bytes((0x06, reference)) + address(recipient) + timestamp(sent) + timestamp(done)
    return smsc_field() + tpdu + bytes((status,))


def split_for_delivery(text: str, ucs2: bool | None = None) -> tuple[bool, list[str]]:
    """How the sending phone would cut `text`: GSM if it can (unless told), 160/153
    septets or 70/67 UTF-16 units, never inside an escape or a surrogate pair."""
    if ucs2 is None:
        ucs2 = gsm7.septet_codes(text) is None

    def size(ch: str) -> int:
        if ucs2:
            return len(ch.encode("utf-16-be")) // 2
        return len(gsm7.septet_codes(ch) or [0])

    whole, each = (70, 67) if ucs2 else (160, 153)
    if sum(size(ch) for ch in text) <= whole:
        return ucs2, [text]
    parts, current, used = [], "", 0
    for ch in text:
        if used + size(ch) > each:
            parts.append(current)
            current, used = "", 0
        current += ch
        used += size(ch)
    return ucs2, [*parts, current]
