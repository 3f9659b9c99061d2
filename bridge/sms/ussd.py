"""The text of a `+CUSD:` reply as its `<dcs>` (a cell-broadcast coding scheme,
3GPP TS 23.038 5) says: UCS-2 arrives as hex, the GSM alphabet as text."""

from __future__ import annotations

import re

_HEX_QUADS = re.compile(r"(?:[0-9A-Fa-f]{4})+")


def is_ucs2_dcs(dcs: int) -> bool:
    """0x11 (UCS-2 preceded by a language) or a general-coding group with alphabet
    bits 10 (0x48 and friends)."""
    if dcs == 0x11:
        return True
    return 0x40 <= dcs <= 0x7F and (dcs >> 2) & 0x03 == 2


def ussd_text(raw: str, dcs: int | None) -> str:
    """Decode `raw`; text that claims UCS-2 but is not hex is returned as it came."""
    if dcs is not None and is_ucs2_dcs(dcs) and _HEX_QUADS.fullmatch(raw):
        return bytes.fromhex(raw).decode("utf-16-be", "replace")
    return raw
