"""Which mails pop3/check has already announced, per modem, in
`<state_dir>/seen-mail-<modem>.json`.

The module's POP3 client has no UIDL, and message numbers shift when mail is deleted, so
a mail is known by a digest of (from, date, subject, size). The file keeps only the mails
still on the server, so it stays as small as the mailbox.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("bridge.services.pop3")


def mail_key(sender: str, date: str, subject: str, size: int) -> str:
    text = "\x00".join((sender, date, subject, str(size)))
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


class SeenMail:
    """The set of mail keys announced so far; `replace()` stores the current set."""

    def __init__(self, state_dir: Path, modem_id: str) -> None:
        self.path = state_dir / f"seen-mail-{modem_id}.json"

    def load(self) -> set[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as exc:
            # a damaged file means announcing mail again, not failing every check
            log.warning("ignoring unreadable %s: %s", self.path.name, exc)
            return set()
        keys = data.get("seen") if isinstance(data, dict) else None
        return {k for k in keys if isinstance(k, str)} if isinstance(keys, list) else set()

    def replace(self, keys: set[str]) -> None:
        """Writes the set atomically: a crash leaves the old file or the new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".seen-mail-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"seen": sorted(keys)}, out)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
