"""What sms/send leaves behind for later, per modem, in `<state_dir>/sms-sent-<modem>.json`:
the concatenation reference counter (so two long messages in a row, even across a
restart, never share a reference) and the sends waiting for a delivery report.

A report names its message by TP-MR (0-255, `+CMGS: <mr>`) and the recipient as the
network writes it; the ledger gives back the number as the request spelled it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.statefile import read_json, write_json

MAX_AWAITED = 256  # TP-MR has 256 values: an older entry with the same one is stale anyway
KEEP_AWAITED = 7 * 86400.0  # an SMSC gives up on a message long before this
MATCH_DIGITS = 7  # "01511234567" and "+491511234567" name the same subscriber

_lock = threading.Lock()  # one worker per modem, but a report may come on another modem's


def _tail(number: str) -> str:
    digits = "".join(c for c in number if c.isascii() and c.isdigit())
    return digits[-MATCH_DIGITS:]


@dataclass(frozen=True)
class Awaited:
    reference: int
    to: str  # as the request spelled it


class SentLedger:
    """See the module docstring; every method reads and writes the file under a lock."""

    def __init__(self, state_dir: Path, modem_id: str) -> None:
        self.path = state_dir / f"sms-sent-{modem_id}.json"

    def _load(self) -> dict[str, Any]:
        data = read_json(self.path)
        if not isinstance(data, dict):
            return {"concat": 0, "awaited": []}
        concat = data.get("concat")
        awaited = data.get("awaited")
        return {
            "concat": concat if isinstance(concat, int) else 0,
            "awaited": [a for a in awaited if _entry_ok(a)] if isinstance(awaited, list) else [],
        }

    def next_concat_reference(self) -> int:
        """1-255, then round again (0 is left out: some phones treat it as "none")."""
        with _lock:
            data = self._load()
            reference = int(data["concat"]) % 255 + 1
            data["concat"] = reference
            write_json(self.path, data)
        return reference

    def await_reports(self, to: str, references: list[int]) -> None:
        """Remember the parts of a send that asked for delivery reports."""
        now = time.time()
        with _lock:
            data = self._load()
            fresh = set(references)
            kept = [a for a in data["awaited"] if a[0] not in fresh and now - a[2] < KEEP_AWAITED]
            kept += [[r, to, now] for r in references]
            data["awaited"] = kept[-MAX_AWAITED:]
            write_json(self.path, data)

    def match_report(self, reference: int, recipient: str) -> Awaited | None:
        """The send this report is for (and forget it), or None when none matches."""
        with _lock:
            data = self._load()
            for entry in data["awaited"]:
                if entry[0] == reference and _tail(entry[1]) == _tail(recipient):
                    data["awaited"].remove(entry)
                    write_json(self.path, data)
                    return Awaited(reference, entry[1])
        return None


def _entry_ok(entry: object) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 3
        and isinstance(entry[0], int)
        and isinstance(entry[1], str)
        and isinstance(entry[2], int | float)
    )
