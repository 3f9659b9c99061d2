"""Which mails pop3/check has already announced, per modem, in
`<state_dir>/seen-mail-<modem>.json`.

The module's POP3 client has no UIDL, and message numbers shift when mail is deleted, so
a mail is known by a digest of (from, date, subject, size). The file keeps only the mails
still on the server, so it stays as small as the mailbox.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bridge.statefile import read_json, write_json


def mail_key(sender: str, date: str, subject: str, size: int) -> str:
    text = "\x00".join((sender, date, subject, str(size)))
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


class SeenMail:
    """The set of mail keys announced so far; `replace()` stores the current set."""

    def __init__(self, state_dir: Path, modem_id: str) -> None:
        self.path = state_dir / f"seen-mail-{modem_id}.json"

    def load(self) -> set[str]:
        data = read_json(self.path)  # missing or damaged: mail is announced again
        keys = data.get("seen") if isinstance(data, dict) else None
        return {k for k in keys if isinstance(k, str)} if isinstance(keys, list) else set()

    def replace(self, keys: set[str]) -> None:
        write_json(self.path, {"seen": sorted(keys)})
