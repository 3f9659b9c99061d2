"""The module's status (signal, registration, operator, identity): `modem/status` and
the retained `<base>/<modem>/status` topic."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bridge.at import commands as at
from bridge.modem import Exchange
from bridge.services.base import Request, ServiceContext, action

REGISTRATION = {
    "0": "not_registered",
    "1": "home",
    "2": "searching",
    "3": "denied",
    "4": "unknown",
    "5": "roaming",
}


def signal_dbm(rssi: int) -> int | None:
    """27.007: 0 -> -113 dBm ... 31 -> -51 dBm, 99 unknown."""
    return None if not 0 <= rssi <= 31 else -113 + 2 * rssi


def parse_csq(value: str | None) -> tuple[int | None, int | None]:
    m = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*", value or "")
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


REGISTERED = frozenset({"home", "roaming"})


def parse_creg(value: str | None) -> str:
    """The answer to AT+CREG? (`<n>,<stat>[,...]`) as a registration word."""
    parts = [p.strip() for p in (value or "").split(",")]
    return REGISTRATION.get(parts[1], "unknown") if len(parts) >= 2 else "unknown"


def creg_urc_registered(value: str) -> bool:
    """`+CREG: <stat>` (AT+CREG=1; `<stat>,<lac>,<ci>` with =2): registered or not."""
    stat = value.split(",")[0].strip()
    return REGISTRATION.get(stat) in REGISTERED


def parse_cops(value: str | None) -> str | None:
    m = re.search(r'"([^"]*)"', value or "")
    return m.group(1) if m else None


def read_status(ctx: ServiceContext) -> dict[str, Any]:
    """Read signal, registration and operator now; identity from initialisation."""
    csq = ctx.run(Exchange(at.execute("+CSQ"), info=("+CSQ",)))
    creg = ctx.run(Exchange(at.read("+CREG"), info=("+CREG",)))
    cops = ctx.run(Exchange(at.read("+COPS"), info=("+COPS",)))
    rssi, ber = parse_csq(csq.first("+CSQ:"))
    identity = ctx.identity
    return {
        "signal_dbm": None if rssi is None else signal_dbm(rssi),
        "rssi": rssi,
        "ber": ber,
        "registration": parse_creg(creg.first("+CREG:")),
        "operator": parse_cops(cops.first("+COPS:")),
        "imei": identity.imei if identity else None,
        "model": identity.model if identity else None,
        "revision": identity.revision if identity else None,
        "updated": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }


class StatusRequest(Request):
    pass


@action("modem", "status", StatusRequest, side_effects=False, commits_on=())
def modem_status(ctx: ServiceContext, request: StatusRequest) -> dict[str, Any]:
    return read_status(ctx)
