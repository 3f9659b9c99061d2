"""SMS, USSD and call commands of the SIM5360 (27.005 in PDU mode, 27.007) as
bytes, and their answers and URCs as values. Sans-IO like the rest of bridge/at.

`AT+CNMI` follows the manual's rule (SIM5320 AT manual 7.9): `<mt>` 2 or 3, or
`<ds>` 1, is refused unless `<mode>` is 1; so the bridge asks for indications of
stored messages (`+CMTI`, `+CDSI`) with `<mode>` 2, which the rule allows, and
reads the messages itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.at.commands import ParameterError, integer, string, write

CTRL_Z = b"\x1a"
MAX_PDU_OCTETS = 164  # an SMS-SUBMIT TPDU is at most 164 octets (23.040 9.2.2.2)
_HEX = re.compile(r"(?:[0-9A-F]{2})+")
_USSD_CODE = re.compile(r"[0-9*#+]{1,160}")
_DECIMAL = re.compile(r"[0-9]{1,9}")

CNMI = (2, 1, 0, 2, 0)
"""<mode>=2 (buffer while the link is reserved), <mt>=1 (+CMTI), <bm>=0,
<ds>=2 (+CDSI), <bfr>=0 (flush the buffer when the mode is entered)."""

PDU_MODE = 0
STAT_UNREAD, STAT_READ, STAT_ALL = 0, 1, 4


def cnmi_allowed(mode: int, mt: int, ds: int) -> bool:
    """Section 7.9: `<mt>`=2, `<mt>`=3 or `<ds>`=1 need `<mode>`=1."""
    return mode == 1 or (mt not in (2, 3) and ds != 1)


def cnmi(settings: tuple[int, int, int, int, int] = CNMI) -> bytes:
    mode, mt, bm, ds, bfr = settings
    if not cnmi_allowed(mode, mt, ds):
        raise ValueError(f"AT+CNMI={settings} is refused by the module (manual 7.9)")
    values = (
        integer(mode, field="mode", low=0, high=2),
        integer(mt, field="mt", low=0, high=3),
        integer(bm, field="bm", low=0, high=2),
        integer(ds, field="ds", low=0, high=2),
        integer(bfr, field="bfr", low=0, high=1),
    )
    return write("+CNMI", *values)


def cmgf_pdu() -> bytes:
    return write("+CMGF", integer(PDU_MODE, field="mode", low=0, high=1))


def cpms(memory: str) -> bytes:
    """Read, write and receive storage all in `memory` ("SM" or "ME")."""
    if memory not in ("SM", "ME", "MT"):
        raise ParameterError("storage", "out_of_range", "must be SM, ME or MT")
    mem = string(memory, field="storage")
    return write("+CPMS", mem, mem, mem)


def cpms_read(memory: str) -> bytes:
    """`AT+CPMS=<mem1>`: read and delete from `memory` alone ("SR": the status reports
    a `+CDSI` points at), the other two memories unchanged."""
    if memory not in ("SM", "ME", "MT", "SR"):
        raise ParameterError("storage", "out_of_range", "must be SM, ME, MT or SR")
    return write("+CPMS", string(memory, field="storage"))


def clip(enabled: bool = True) -> bytes:
    """`AT+CLIP=1`: the caller's number after every RING."""
    return write("+CLIP", integer(int(enabled), field="clip", low=0, high=1))


STORAGE = "SM"  # the SIM: every SIM5360 has it; "ME" is firmware-dependent


def setup_commands(memory: str = STORAGE) -> list[bytes]:
    """What the bridge sends after every start and reboot for SMS and calls: PDU
    mode, one storage for reading, writing and receiving, stored-message
    indications, caller identification."""
    return [cmgf_pdu(), cpms(memory), cnmi(), clip()]


def cmgs(tpdu_length: int) -> bytes:
    """`AT+CMGS=<length>`: the TPDU's octets, the SMSC field not counted."""
    return write("+CMGS", integer(tpdu_length, field="length", low=7, high=MAX_PDU_OCTETS))


def pdu_payload(hex_pdu: str) -> bytes:
    """What follows the `>` prompt: the PDU in hex, then Ctrl-Z. Only hex digits
    are let through, so nothing in a PDU can end it early or escape it."""
    if not _HEX.fullmatch(hex_pdu):
        raise ParameterError("pdu", "forbidden_character", "must be upper-case hex octets")
    return hex_pdu.encode("ascii") + CTRL_Z


def cmgr(index: int) -> bytes:
    return write("+CMGR", integer(index, field="index", low=0, high=65535))


def cmgl(stat: int = STAT_ALL) -> bytes:
    return write("+CMGL", integer(stat, field="stat", low=0, high=4))


def cmgd(index: int) -> bytes:
    return write("+CMGD", integer(index, field="index", low=0, high=65535))


def cusd(code: str, dcs: int = 15) -> bytes:
    """`AT+CUSD=1,"<code>",<dcs>`: a USSD code is digits, `*`, `#` and `+` only."""
    if not _USSD_CODE.fullmatch(code):
        raise ParameterError("code", "forbidden_character", "must be digits, *, # and + only")
    return write(
        "+CUSD",
        integer(1, field="n", low=0, high=2),
        string(code, field="code"),
        integer(dcs, field="dcs", low=0, high=255),
    )


def cusd_cancel() -> bytes:
    return write("+CUSD", integer(2, field="n", low=0, high=2))


# -- answers and URCs ------------------------------------------------------------


@dataclass(frozen=True)
class StoredAt:
    """`+CMTI: "SM",3` / `+CDSI: "SR",0`: a message stored at `index` of `memory`."""

    memory: str
    index: int


@dataclass(frozen=True)
class ListedPdu:
    """One `+CMGL: <index>,<stat>,[<alpha>],<length>` entry with its PDU."""

    index: int
    stat: int
    pdu: str


@dataclass(frozen=True)
class UssdReply:
    """`+CUSD: <m>[,<str>,<dcs>]`: `status` is `<m>` (0 done, 1 more wanted, 2
    ended by the network, 4 not supported, 5 network time-out)."""

    status: int
    text: str | None
    dcs: int | None


def _number(text: str) -> int | None:
    """An ASCII decimal (str.isdigit would take "¹" and "٣")."""
    return int(text) if _DECIMAL.fullmatch(text) else None


def _fields(value: str) -> list[str]:
    """Comma-separated fields; commas inside quotes do not split."""
    return [f.strip() for f in re.findall(r'"[^"]*"|[^,]+|(?<=,)(?=,|$)|^(?=,)', value)]


def parse_stored_at(value: str) -> StoredAt | None:
    parts = _fields(value)
    index = _number(parts[1]) if len(parts) >= 2 else None
    return None if index is None else StoredAt(parts[0].strip('"'), index)


def parse_cmgs(value: str) -> int | None:
    """The message reference of `+CMGS: <mr>`."""
    return _number(value.split(",", 1)[0].strip())


def parse_cmgl(entries: list[tuple[str, str]]) -> list[ListedPdu]:
    """`Reply.with_pdus("+CMGL:")` as entries; a malformed header is left out."""
    listed = []
    for header, pdu in entries:
        parts = _fields(header)
        index, stat = (_number(p) for p in [*parts, "", ""][:2])
        if index is not None and stat is not None:
            listed.append(ListedPdu(index, stat, pdu))
    return listed


def parse_clip(value: str) -> str | None:
    """The caller of `+CLIP: "<number>",<type>,…`; None when withheld or empty."""
    parts = _fields(value)
    number = parts[0].strip('"') if parts else ""
    if not number:
        return None
    if len(parts) > 1 and parts[1] == "145" and not number.startswith("+"):
        number = "+" + number
    return number


def parse_cusd(value: str) -> UssdReply | None:
    parts = _fields(value)
    status = _number(parts[0]) if parts else None
    if status is None:
        return None
    text = parts[1].strip('"') if len(parts) > 1 and parts[1] else None
    dcs = _number(parts[2]) if len(parts) > 2 else None
    return UssdReply(status, text, dcs)
