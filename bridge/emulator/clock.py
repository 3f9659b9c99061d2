"""The module's real-time clock (AT+CCLK): set once, then it runs with the host's monotonic time."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta, timezone, tzinfo

_CCLK = re.compile(r"(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)(?:([+-])(\d\d))?")


class ModuleClock:
    """Keeps the time the host last set; survives a module reboot like the module's RTC."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._base = datetime.now(UTC)
        self._at = time.monotonic()
        if start is not None:
            self.set(start)

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._lock:
            self._base, self._at = when, time.monotonic()

    def now(self) -> datetime:
        with self._lock:
            return self._base + timedelta(seconds=time.monotonic() - self._at)


def format_cclk(when: datetime) -> str:
    """``yy/MM/dd,hh:mm:ss±zz`` with the zone in quarter hours."""
    offset = when.utcoffset() or timedelta(0)
    quarters = int(offset.total_seconds()) // 900
    sign = "-" if quarters < 0 else "+"
    return when.strftime("%y/%m/%d,%H:%M:%S") + f"{sign}{abs(quarters):02d}"


def parse_cclk(text: str, zone: tzinfo) -> datetime:
    """The inverse of `format_cclk`; without a zone (the manual's second example) the time
    is taken in `zone`, the one the clock had. Raises ValueError for anything else."""
    match = _CCLK.fullmatch(text)
    if match is None:
        raise ValueError(f"not a CCLK time: {text!r}")
    yy, mo, dd, hh, mi, ss, sign, zz = match.groups()
    if zz is not None:
        quarters = int(zz)
        if quarters > 96:
            raise ValueError(f"zone out of range: {text!r}")
        zone = timezone(timedelta(minutes=15 * quarters * (-1 if sign == "-" else 1)))
    return datetime(2000 + int(yy), int(mo), int(dd), int(hh), int(mi), int(ss), tzinfo=zone)
