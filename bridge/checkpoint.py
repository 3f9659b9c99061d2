"""WAL checkpoints of the request journal, off the request path.

SQLite checkpoints a WAL database by itself every ~1000 pages, inside whichever commit
crosses the mark, and a checkpoint ends with an fsync: a millisecond or more here, tens
on an SD card, added to that one request's answer. So the journal's connection never
checkpoints; this thread does, on a connection of its own, after every so many commits,
while requests go on (a passive checkpoint waits for no writer, and SQLite releases the
GIL while it works). If it cannot run, the journal checkpoints inline as SQLite would.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("bridge.journal")

CHECKPOINT_EVERY = 200  # commits between two checkpoints (a few 4 KiB pages each)
PASSIVE = "PRAGMA wal_checkpoint(PASSIVE)"


class Checkpointer:
    """Counts the journal's commits and checkpoints its WAL every CHECKPOINT_EVERY."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._due = threading.Event()
        self._stopping = False
        self._commits = 0
        self.failed = False  # no connection of its own: the journal checkpoints inline
        self.checkpoints = 0  # done so far (for tests)
        self._thread = threading.Thread(target=self._loop, name="journal-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> bool:
        """One more commit (the journal's lock held). True when a checkpoint is due and
        this thread cannot do it: the caller does it on its own connection."""
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY:
            return False
        self._commits = 0
        self._due.set()
        return self.failed

    def close(self) -> None:
        self._stopping = True
        self._due.set()
        self._thread.join(timeout=10)

    def _open(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self._path), isolation_level=None)

    def _loop(self) -> None:
        try:
            db = self._open()
        except sqlite3.Error as exc:
            log.error("journal checkpoints on their own thread unavailable (%s): inline", exc)
            self.failed = True
            return
        try:
            while True:
                self._due.wait()
                self._due.clear()
                if self._stopping:
                    return
                try:
                    db.execute(PASSIVE).fetchone()
                    self.checkpoints += 1
                except sqlite3.Error as exc:
                    log.warning("journal checkpoint failed: %s", exc)
        finally:
            db.close()
