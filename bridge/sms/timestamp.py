"""TP-SCTS / TP-DT (3GPP TS 23.040 9.2.3.11): seven swapped-BCD octets, the last the
zone in quarter hours with its sign; kept with its zone, not moved to UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bridge.sms.errors import PduError

SIZE = 7
CENTURY_PIVOT = 80  # two-digit years from 80 are 19xx


def _bcd(octet: int) -> int:
    low, high = octet & 0x0F, octet >> 4
    if low > 9 or high > 9:
        raise PduError(f"timestamp octet {octet:02X} is not BCD")
    return low * 10 + high


def decode_timestamp(pdu: bytes, pos: int) -> datetime:
    """The timestamp at `pos`, an aware datetime in the sender's zone."""
    raw = pdu[pos : pos + SIZE]
    if len(raw) < SIZE:
        raise PduError("timestamp cut short")
    year, month, day, hour, minute, second = (_bcd(o) for o in raw[:6])
    zone = raw[6]
    quarters = _bcd(zone & 0xF7)
    sign = -1 if zone & 0x08 else 1
    try:
        offset = timezone(timedelta(minutes=sign * 15 * quarters))
        century = 1900 if year >= CENTURY_PIVOT else 2000
        return datetime(century + year, month, day, hour, minute, second, tzinfo=offset)
    except ValueError as exc:
        raise PduError(f"impossible timestamp: {exc}") from None
