"""Joining the parts of concatenated messages, whatever order they arrive in.

Pure apart from its JSON file: the caller passes the time in. Parts are kept by
sender and reference until the last one comes or `timeout` seconds pass (then the
message is given out incomplete). Every part published is remembered for as long as
it is still in the module's storage (`keep_only` after each full read of it), so a part
read again (after a restart, or kept with `delete_after_read = false`) is not
published twice, however old it is. The state is written to `path` after
every change: a restart between two parts loses nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge.sms.pdu_in import Concat, Deliver, join_texts
from bridge.statefile import read_json, write_json

VERSION = 1
MAX_SEEN = 5000


@dataclass(frozen=True)
class IncomingPart:
    """One message or part as read from the module."""

    sender: str
    sent: datetime
    text: str
    concat: Concat | None = None
    storage_index: int | None = None

    @classmethod
    def from_deliver(cls, deliver: Deliver, storage_index: int | None = None) -> IncomingPart:
        return cls(deliver.sender, deliver.sent, deliver.text, deliver.concat, storage_index)

    def seen_key(self) -> str:
        """Names this part and no other: a sender reuses references, never a
        timestamp with the same reference and part number."""
        head = f"{self.sender}|{self.sent.isoformat()}"
        if self.concat is None:
            digest = hashlib.sha256(self.text.encode("utf-16-be", "surrogatepass")).hexdigest()
            return f"{head}|{digest[:16]}"
        c = self.concat
        return f"{head}|{c.bits}|{c.reference}|{c.total}|{c.seq}"

    def group_key(self) -> str:
        c = self.concat
        assert c is not None
        return f"{self.sender}|{c.bits}|{c.reference}|{c.total}"


@dataclass(frozen=True)
class Message:
    """A whole message, or what arrived of one before the timeout."""

    sender: str
    sent: datetime
    text: str
    parts: int
    missing: tuple[int, ...] = ()
    storage_indexes: tuple[int, ...] = ()
    keys: tuple[str, ...] = ()  # its parts' seen keys, for `Reassembler.published`

    @property
    def complete(self) -> bool:
        return not self.missing


@dataclass
class _Group:
    sender: str
    total: int
    first_seen: float
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "sender": self.sender,
            "total": self.total,
            "first_seen": self.first_seen,
            "parts": {str(k): v for k, v in self.parts.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Group:
        parts = {int(k): dict(v) for k, v in data["parts"].items()}
        return cls(str(data["sender"]), int(data["total"]), float(data["first_seen"]), parts)

    def message(self) -> Message:
        present = sorted(self.parts)
        first = self.parts[present[0]]
        indexes = tuple(
            self.parts[n]["index"] for n in present if self.parts[n].get("index") is not None
        )
        return Message(
            sender=self.sender,
            sent=datetime.fromisoformat(first["sent"]),
            text=join_texts([self.parts[n]["text"] for n in present]),
            parts=self.total,
            missing=tuple(n for n in range(1, self.total + 1) if n not in self.parts),
            storage_indexes=indexes,
            keys=tuple(str(p["key"]) for p in self.parts.values() if p.get("key")),
        )


class Reassembler:
    """See the module docstring."""

    def __init__(self, timeout: float, path: Path | None = None):
        self.timeout = timeout
        self._path = path
        self._groups: dict[str, _Group] = {}
        self._seen: dict[str, float] = {}
        if path is not None:
            self._load(path)

    def add(self, part: IncomingPart, now: float) -> Message | None:
        """Take a part; the whole message when this completed it (or was a single
        message), None while parts are missing or when it was published before.

        A message given out counts as seen only once the caller says it is
        `published`: until then a crash repeats it rather than loses it."""
        key = part.seen_key()
        if key in self._seen:
            return None
        if part.concat is None:
            indexes = () if part.storage_index is None else (part.storage_index,)
            text = join_texts([part.text])
            return Message(part.sender, part.sent, text, 1, (), indexes, (key,))
        group_key = part.group_key()
        group = self._groups.setdefault(
            group_key, _Group(part.sender, part.concat.total, first_seen=now)
        )
        group.parts[part.concat.seq] = {
            "text": part.text,
            "sent": part.sent.isoformat(),
            "index": part.storage_index,
            "key": key,
        }
        if len(group.parts) < group.total:
            self._save()
            return None
        del self._groups[group_key]  # saved with `published`
        return group.message()

    def expire(self, now: float) -> list[Message]:
        """The messages whose missing parts did not come within `timeout`."""
        late = [k for k, g in self._groups.items() if now - g.first_seen >= self.timeout]
        return [self._groups.pop(k).message() for k in late]  # saved with `published`

    def seen(self, key: str) -> bool:
        return key in self._seen

    def published(self, keys: tuple[str, ...], now: float) -> None:
        """The event for these parts (or a whole undecodable PDU's key) was handed to the
        publisher: from now on reading them again gives nothing."""
        for key in keys:
            self._seen[key] = now
        self._cap()
        self._save()

    def next_expiry(self) -> float | None:
        """When `expire` will next have something to give, or None."""
        if not self._groups:
            return None
        return min(g.first_seen for g in self._groups.values()) + self.timeout

    @property
    def waiting(self) -> int:
        """Messages with parts still missing."""
        return len(self._groups)

    def keep_only(self, stored: set[str]) -> None:
        """After reading the whole storage: forget the parts no longer in it (deleted, or
        never stored: routed whole). Age alone never forgets a part still stored."""
        gone = [k for k in self._seen if k not in stored]
        for k in gone:
            del self._seen[k]
        if gone:
            self._save()

    def _cap(self) -> None:
        """A bound for a module never read whole (no `online` for months)."""
        while len(self._seen) > MAX_SEEN:
            del self._seen[next(iter(self._seen))]

    def _save(self) -> None:
        if self._path is None:
            return
        write_json(
            self._path,
            {
                "version": VERSION,
                "groups": {k: g.to_json() for k, g in self._groups.items()},
                "seen": self._seen,
            },
        )

    def _load(self, path: Path) -> None:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return
        try:
            self._groups = {k: _Group.from_json(v) for k, v in data["groups"].items()}
            self._seen = {str(k): float(v) for k, v in data["seen"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            self._groups, self._seen = {}, {}  # a damaged file: start afresh
