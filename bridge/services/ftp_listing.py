"""Reading an FTP server's LIST output: unix `ls -l` lines and MS-DOS (IIS) lines.

LIST has no standard format, so each entry keeps its `raw` line; what can be read from
it (name, type, size, modification time) is given as well, None where it cannot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
TYPES = {"d": "dir", "-": "file", "l": "link"}

# `-rw-r--r--  1 user group  2017 Sep  1 17:24 name` (the name may hold spaces)
_UNIX = re.compile(
    r"(?P<mode>[-dlbcps][-rwxsStTl]{9}[.+@]?)\s+\d+\s+\S+\s+(?:\S+\s+)?(?P<size>\d+)\s+"
    r"(?P<month>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+(?P<when>\d{1,2}:\d{2}|\d{4})\s(?P<name>.+)"
)
# `09-01-26  06:01PM       <DIR>          name` or `... 2017 name`
_DOS = re.compile(
    r"(?P<month>\d{2})-(?P<day>\d{2})-(?P<year>\d{2,4})\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})"
    r"(?P<ampm>[AaPp][Mm])?\s+(?:(?P<dir><DIR>)|(?P<size>\d+))\s+(?P<name>.+)"
)


@dataclass(frozen=True)
class ListEntry:
    name: str
    type: str  # file, dir, link or unknown
    size: int | None
    modified: str | None  # ISO 8601 (to the minute, or the date alone when that is all)
    raw: str

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "size": self.size,
            "modified": self.modified,
            "raw": self.raw,
        }


def parse_listing(data: bytes, now: datetime | None = None) -> list[ListEntry]:
    """Every entry of a LIST answer except `.`, `..` and the `total` line."""
    now = now or datetime.now(UTC)
    entries = []
    for line in data.decode("utf-8", "replace").splitlines():
        raw = line.rstrip("\r\n")
        if not raw.strip() or raw.lower().startswith("total "):
            continue
        entry = parse_line(raw, now)
        if entry.name not in (".", ".."):
            entries.append(entry)
    return entries


def parse_line(raw: str, now: datetime) -> ListEntry:
    m = _UNIX.fullmatch(raw.strip())
    if m is not None:
        kind = TYPES.get(m["mode"][0], "unknown")
        name = m["name"]
        if kind == "link" and " -> " in name:
            name = name.split(" -> ", 1)[0]
        return ListEntry(name, kind, int(m["size"]), _unix_time(m, now), raw)
    m = _DOS.fullmatch(raw.strip())
    if m is not None:
        size = None if m["dir"] else int(m["size"])
        return ListEntry(m["name"], "dir" if m["dir"] else "file", size, _dos_time(m), raw)
    return ListEntry(raw.strip(), "unknown", None, None, raw)


def _unix_time(m: re.Match[str], now: datetime) -> str | None:
    month = MONTHS.get(m["month"].lower())
    if month is None:
        return None
    day, when = int(m["day"]), m["when"]
    try:
        if ":" not in when:
            return datetime(int(when), month, day).date().isoformat()
        hour, minute = (int(p) for p in when.split(":"))
        # ls leaves the year out for the last six months: the latest such date not in the
        # future (a day of slack for clocks and time zones)
        stamp = datetime(now.year, month, day, hour, minute)
        if stamp > now.replace(tzinfo=None) + timedelta(days=1):
            stamp = stamp.replace(year=now.year - 1)
        return stamp.isoformat(timespec="minutes")
    except ValueError:  # 30 Feb, a leap day in a wrong year
        return None


def _dos_time(m: re.Match[str]) -> str | None:
    year = int(m["year"])
    if year < 100:
        year += 2000 if year < 70 else 1900
    hour = int(m["hour"])
    if m["ampm"]:
        hour = hour % 12 + (12 if m["ampm"].lower() == "pm" else 0)
    try:
        stamp = datetime(year, int(m["month"]), int(m["day"]), hour, int(m["minute"]))
    except ValueError:
        return None
    return stamp.isoformat(timespec="minutes")
