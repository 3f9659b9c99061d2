"""Decoding what the network delivers (3GPP TS 23.040): SMS-DELIVER (9.2.2.1) and
SMS-STATUS-REPORT (9.2.2.3), each PDU starting with the SMSC field as the module
gives it after `+CMT:`, `+CDS:`, `+CMGR:` and `+CMGL:`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bridge.sms import alphabet
from bridge.sms.errors import PduError
from bridge.sms.numbers import decode_address
from bridge.sms.timestamp import SIZE as TS_SIZE
from bridge.sms.timestamp import decode_timestamp

MTI_DELIVER = 0x00
MTI_STATUS_REPORT = 0x02
UDHI = 0x40
IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08


@dataclass(frozen=True)
class Concat:
    """The concatenation header: which message (`reference`, 8 or 16 bits) and
    which part of how many."""

    reference: int
    total: int
    seq: int
    bits: int = 8


@dataclass(frozen=True)
class Deliver:
    """An incoming message or part. `text` may end or start with half of a
    surrogate pair when the sender split one; `join_texts` mends it."""

    sender: str
    sent: datetime
    text: str
    encoding: str  # "gsm", "ucs2" or "8bit"
    concat: Concat | None = None
    message_class: int | None = None
    data: bytes | None = None  # the raw user data of an 8-bit message


@dataclass(frozen=True)
class StatusReport:
    """A delivery report for the message whose TP-MR (`+CMGS: <mr>`) is `reference`."""

    reference: int
    recipient: str
    sent: datetime
    discharged: datetime
    status: int

    @property
    def outcome(self) -> str:
        """`delivered`, `pending` (the SMSC still tries) or `failed` (9.2.3.15)."""
        if self.status < 0x20:
            return "delivered"
        if self.status < 0x40:
            return "pending"
        return "failed"


def decode_pdu(hex_pdu: str) -> Deliver | StatusReport:
    """Decode one PDU line; PduError for anything else or anything malformed."""
    try:
        pdu = bytes.fromhex(hex_pdu.strip())
    except ValueError:
        raise PduError("not a hexadecimal PDU") from None
    if not pdu:
        raise PduError("empty PDU")
    pos = 1 + pdu[0]  # skip the SMSC field
    if pos >= len(pdu):
        raise PduError("PDU cut short after the SMSC")
    try:
        mti = pdu[pos] & 0x03
        if mti == MTI_DELIVER:
            return _deliver(pdu, pos)
        if mti == MTI_STATUS_REPORT:
            return _status_report(pdu, pos)
    except IndexError:
        raise PduError("PDU cut short") from None
    raise PduError(f"message type {mti} is neither SMS-DELIVER nor SMS-STATUS-REPORT")


def _deliver(pdu: bytes, pos: int) -> Deliver:
    first = pdu[pos]
    sender, pos = decode_address(pdu, pos + 1)
    dcs = pdu[pos + 1]
    sent = decode_timestamp(pdu, pos + 2)
    pos += 2 + TS_SIZE
    encoding, message_class = data_coding(dcs)
    udl = pdu[pos]
    ud = pdu[pos + 1 :]
    concat, text, data = _user_data(ud, udl, encoding, bool(first & UDHI))
    return Deliver(sender, sent, text, encoding, concat, message_class, data)


def _status_report(pdu: bytes, pos: int) -> StatusReport:
    reference = pdu[pos + 1]
    recipient, pos = decode_address(pdu, pos + 2)
    sent = decode_timestamp(pdu, pos)
    discharged = decode_timestamp(pdu, pos + TS_SIZE)
    status = pdu[pos + 2 * TS_SIZE]
    return StatusReport(reference, recipient, sent, discharged, status)


def data_coding(dcs: int) -> tuple[str, int | None]:
    """Alphabet and message class from TP-DCS (3GPP TS 23.038 4)."""
    group = dcs >> 4
    if group <= 0x07:  # general data coding (0x40-0x7F: marked for automatic deletion)
        if dcs & 0x20:
            return "8bit", None  # compressed: not readable as text
        alphabet_bits = (dcs >> 2) & 0x03
        encoding = {0: "gsm", 1: "8bit", 2: "ucs2"}.get(alphabet_bits, "gsm")
        return encoding, (dcs & 0x03) if dcs & 0x10 else None
    if group in (0x0C, 0x0D):
        return "gsm", None  # message waiting indication, GSM text
    if group == 0x0E:
        return "ucs2", None
    if group == 0x0F:
        return ("8bit" if dcs & 0x04 else "gsm"), dcs & 0x03
    return "gsm", None  # reserved groups: read as the default alphabet (23.038 4)


def _user_data(
    ud: bytes, udl: int, encoding: str, has_header: bool
) -> tuple[Concat | None, str, bytes | None]:
    header_octets = 1 + ud[0] if has_header and ud else 0
    if header_octets > len(ud):
        raise PduError("user data header longer than the user data")
    concat = _concat(ud[1:header_octets]) if header_octets else None
    if encoding == "gsm":
        header_bits = header_octets * 8
        fill = (7 - header_bits % 7) % 7
        count = udl - (header_bits + fill) // 7
        septets = alphabet.unpack(ud[header_octets:], max(count, 0), fill)
        return concat, alphabet.from_septets(septets), None
    body = ud[header_octets:udl]
    if encoding == "ucs2":
        return concat, body[: len(body) & ~1].decode("utf-16-be", "surrogatepass"), None
    return concat, "", bytes(body)


def _concat(header: bytes) -> Concat | None:
    """The concatenation element among the header's information elements."""
    pos = 0
    while pos + 2 <= len(header):
        iei, length = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + length]
        if iei == IEI_CONCAT_8 and length == 3 and len(value) == 3:
            return _valid(Concat(value[0], value[1], value[2], 8))
        if iei == IEI_CONCAT_16 and length == 4 and len(value) == 4:
            return _valid(Concat(value[0] << 8 | value[1], value[2], value[3], 16))
        pos += 2 + length
    return None


def _valid(concat: Concat) -> Concat | None:
    """23.040 9.2.3.24.1: a part number of 0 or above the total means the element
    is ignored, and so is a total of 0."""
    return concat if 0 < concat.seq <= concat.total else None


def join_texts(texts: list[str]) -> str:
    """Join part texts, mending a surrogate pair a sender split between two parts;
    a half pair with no other half becomes U+FFFD."""
    joined = "".join(texts)
    return joined.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
