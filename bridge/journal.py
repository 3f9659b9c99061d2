"""The request journal: every request written down before the broker hears its PUBACK,
so that a crash (power cut, `kill -9`) never leaves one unanswered or runs one twice.

A SQLite database in `files.state_dir` (WAL, synchronous=NORMAL: a power cut may lose
the last few commits, a process crash none). States: received -> running -> answered ->
acknowledged (the broker has the response; written with the next write), or received ->
forwarded (a pool job the broker has passed on to another bridge). `running` is written
for requests with side effects only: one without is run again after a crash whether it
had started or not. One connection behind one lock; every method is a short write or
read and never waits on anything else, so no serial I/O and no paho lock is ever held
with it. The journal never raises into the bridge: a broken database is moved aside and
replaced, a failing write is logged.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bridge.checkpoint import PASSIVE, Checkpointer

log = logging.getLogger("bridge.journal")
T = TypeVar("T")

FILE_NAME = "journal.db"
KEEP_SECONDS = 24 * 3600  # finished entries are kept a day (the broker session's life)
KEEP_BYTES = 64 * 1024 * 1024  # ... and at most this much payload, the oldest go first
PRUNE_EVERY = 500  # requests between two prunes
# A redelivery is of a request whose PUBACK a broken connection (or a crash) lost: one of
# the last few admitted, at most the broker's in-flight window. Looked for this far back.
DUP_WINDOW = 10_000
CORRUPT_KEPT = 3  # copies of damaged journals kept for a post-mortem, the newest

RECEIVED = "received"
RUNNING = "running"
ANSWERED = "answered"
ACKNOWLEDGED = "acknowledged"
FORWARDED = "forwarded"  # a pool job handed to another bridge, which the broker has

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    response_topic TEXT,          -- MQTT 5 Response Topic of the request
    correlation BLOB,             -- MQTT 5 Correlation Data of the request
    mid INTEGER NOT NULL,         -- the broker's packet id, to recognise a redelivery
    arrived REAL NOT NULL,        -- unix time
    state TEXT NOT NULL,
    committed INTEGER NOT NULL DEFAULT 0,  -- its first side-effecting command was sent
    reply_topic TEXT,
    reply BLOB,
    answered REAL
);
-- No secondary index: each would be one more page written by every request's commits
-- (~25 us of its admission, ~15 of its answer). What searches the table is rare: the
-- restart's scan for open entries, and a redelivery's lookup in the last DUP_WINDOW.
DROP INDEX IF EXISTS requests_state;
DROP INDEX IF EXISTS requests_topic;
"""


@dataclass(frozen=True)
class Entry:
    """A journaled request as a restart finds it."""

    id: int
    topic: str
    payload: bytes
    response_topic: str | None
    correlation: bytes | None
    state: str
    committed: bool
    reply_topic: str | None
    reply: bytes | None

    def may_have_happened(self, commits_on: tuple[str, ...]) -> bool:
        """Whether its effect may have happened: a committing command was sent, or, for
        an action that names none (modem/at, modem/restart), it had started."""
        return self.committed or (not commits_on and self.state == RUNNING)


class Journal:
    """See the module docstring. `Journal.open(state_dir)` never fails."""

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self.path = path
        self._db = connection
        self._lock = threading.Lock()
        self._since_prune = 0
        self._acked: list[int] = []  # delivered, not yet written (see `delivered`)
        self._broken = False
        self._checkpointer = Checkpointer(path) if path is not None else None

    @classmethod
    def open(cls, state_dir: Path) -> Journal:
        """The journal in `state_dir`; a corrupt one is moved aside and a fresh one
        started; when even that fails, a journal in memory (logged) keeps the bridge up."""
        path = state_dir / FILE_NAME
        try:
            _private_dir(state_dir)
            try:
                return cls(_connect(path), path)
            except sqlite3.DatabaseError as exc:
                _move_aside(path, exc)
                return cls(_connect(path), path)
        except (OSError, sqlite3.Error) as exc:
            log.error("request journal unavailable in %s (%s): kept in memory only", path, exc)
            return cls.in_memory()

    @classmethod
    def in_memory(cls) -> Journal:
        """A journal that dies with the process: the fallback, and a benchmark baseline."""
        return cls(_connect(Path(":memory:")), None)

    def close(self) -> None:
        self.flush()
        if self._checkpointer is not None:
            self._checkpointer.close()
        with self._lock:
            self._db.close()

    # -- the life of a request ------------------------------------------------------

    def admit(
        self,
        topic: str,
        payload: bytes,
        *,
        response_topic: str | None,
        correlation: bytes | None,
        mid: int,
        dup: bool,
    ) -> int | None:
        """Journal a request as `received` and return its id; None when it is the
        broker's redelivery of one already journaled (DUP set, same topic, payload and
        packet id: its PUBACK never reached the broker): it must not run again."""

        def work(db: sqlite3.Connection) -> int | None:
            if dup:
                row = db.execute(
                    "SELECT id FROM requests WHERE id > (SELECT MAX(id) FROM requests) - ?"
                    " AND topic = ? AND payload = ? AND mid = ? AND arrived > ?"
                    " ORDER BY id DESC LIMIT 1",
                    (DUP_WINDOW, topic, payload, mid, time.time() - KEEP_SECONDS),
                ).fetchone()
                if row is not None:
                    log.info("request %s on %s redelivered: not run again", row[0], topic)
                    return None
            cursor = db.execute(
                "INSERT INTO requests (topic, payload, response_topic, correlation, mid,"
                " arrived, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (topic, payload, response_topic, correlation, mid, time.time(), RECEIVED),
            )
            self._since_prune += 1
            return cursor.lastrowid

        failed: int | None = 0  # not journaled (logged): run it all the same
        return self._write(work, failed)

    def running(self, entry: int) -> None:
        self._update(
            "UPDATE requests SET state = ? WHERE id = ? AND state = ?", (RUNNING, entry, RECEIVED)
        )

    def committed(self, entry: int) -> None:
        """Its first side-effecting AT command is about to go out. This one write is
        synced (synchronous=FULL) even against a power cut: a lost mark would make a
        restart say an e-mail did not go out when it may have."""
        with self._lock:
            try:
                self._db.execute("PRAGMA synchronous=FULL")
                try:
                    with self._db:
                        self._db.execute("UPDATE requests SET committed = 1 WHERE id = ?", (entry,))
                finally:
                    self._db.execute("PRAGMA synchronous=NORMAL")
                self._count_commit()
            except sqlite3.Error as exc:
                self._failed(exc)

    def answered(self, entry: int, reply_topic: str, reply: bytes) -> None:
        """The response is handed to the broker connection: journaled before (a request
        with side effects) or after (one without, whose PUBACK may be written already:
        `acknowledged` is kept)."""
        self._update(
            "UPDATE requests SET state = CASE state WHEN ? THEN state ELSE ? END,"
            " reply_topic = ?, reply = ?, answered = ? WHERE id = ?",
            (ACKNOWLEDGED, ANSWERED, reply_topic, reply, time.time(), entry),
        )

    def delivered(self, entry: int) -> None:
        """The broker acknowledged the response. Written with the next write (the next
        request's admission) or by `flush`, which the router calls when idle: one commit
        fewer per request. A crash before then sends the response again at the next
        start, as a PUBACK lost on the way would."""
        with self._lock:
            self._acked.append(entry)

    def flush(self) -> None:
        """Write the delivered marks still held."""
        if self._acked:
            self._write(lambda db: None, None)

    def forwarded(self, entry: int, topic: str) -> None:
        """The broker has this pool job forwarded on `topic`: the other bridge answers it."""
        self._update(
            "UPDATE requests SET state = ?, reply_topic = ?, answered = ? WHERE id = ?",
            (FORWARDED, topic, time.time(), entry),
        )

    # -- after a restart --------------------------------------------------------------

    def unfinished(self) -> list[Entry]:
        """Requests without a response (received or running), oldest first."""
        return self._entries("state IN (?, ?)", (RECEIVED, RUNNING))

    def unsent(self) -> list[Entry]:
        """Responses the broker never acknowledged, oldest first."""
        return self._entries("state = ?", (ANSWERED,))

    def pending_responses(self) -> int:
        self.flush()
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM requests WHERE state = ?", (ANSWERED,)
                ).fetchone()
            except sqlite3.Error as exc:
                self._failed(exc)
                return 0
        return int(row[0])

    # -- housekeeping -----------------------------------------------------------------

    def prune_due(self) -> bool:
        return self._since_prune >= PRUNE_EVERY

    def prune(self, now: float | None = None) -> int:
        """Forget what is older than a day, then the oldest finished entries beyond
        KEEP_BYTES; unfinished ones stay for the restart to deal with."""
        now = time.time() if now is None else now

        def work(db: sqlite3.Connection) -> int:
            self._since_prune = 0
            gone = db.execute("DELETE FROM requests WHERE arrived < ?", (now - KEEP_SECONDS,))
            removed = gone.rowcount
            total = db.execute(
                "SELECT COALESCE(SUM(LENGTH(payload) + COALESCE(LENGTH(reply), 0)), 0)"
                " FROM requests"
            ).fetchone()[0]
            if total > KEEP_BYTES:
                removed += self._trim(db, total - KEEP_BYTES)
            return int(removed)

        return self._write(work, 0)

    def _trim(self, db: sqlite3.Connection, excess: int) -> int:
        rows = db.execute(
            "SELECT id, LENGTH(payload) + COALESCE(LENGTH(reply), 0) FROM requests"
            " WHERE state IN (?, ?) ORDER BY id",
            (ACKNOWLEDGED, FORWARDED),
        )
        doomed: list[int] = []
        for entry, size in rows:
            if excess <= 0:
                break
            doomed.append(entry)
            excess -= size
        db.executemany("DELETE FROM requests WHERE id = ?", [(e,) for e in doomed])
        return len(doomed)

    # -- plumbing -----------------------------------------------------------------------

    def _write(self, work: Callable[[sqlite3.Connection], T], failed: T) -> T:
        """`work` as one transaction under the lock, with the delivered marks held; on
        a failure (logged) `failed`, the marks kept for the next."""
        with self._lock:
            try:
                with self._db:
                    done = work(self._db)
                    if self._acked:
                        self._db.executemany(
                            "UPDATE requests SET state = ? WHERE id = ?",
                            [(ACKNOWLEDGED, entry) for entry in self._acked],
                        )
                self._acked.clear()
                self._count_commit()
                return done
            except sqlite3.Error as exc:
                self._failed(exc)
                return failed

    def _count_commit(self) -> None:
        """The lock held: a checkpoint may be due (bridge/checkpoint.py)."""
        if self._checkpointer is not None and self._checkpointer.committed():
            self._db.execute(PASSIVE).fetchone()  # its thread cannot: here, as SQLite would

    def _update(self, sql: str, params: tuple[object, ...]) -> None:
        self._write(lambda db: db.execute(sql, params), None)

    def _entries(self, where: str, params: tuple[object, ...]) -> list[Entry]:
        self.flush()
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, topic, payload, response_topic, correlation, state, committed,"
                    f" reply_topic, reply FROM requests WHERE {where} ORDER BY id",
                    params,
                ).fetchall()
            except sqlite3.Error as exc:
                self._failed(exc)
                return []
        return [
            Entry(r[0], r[1], bytes(r[2]), r[3], r[4], r[5], bool(r[6]), r[7], r[8]) for r in rows
        ]

    def _failed(self, exc: sqlite3.Error) -> None:
        if not self._broken:
            log.error("request journal write failed (%s): requests are still served", exc)
        self._broken = True


def _private_dir(state_dir: Path) -> None:
    """`state_dir` readable by the bridge's user only: the journal holds requests whole,
    passwords included (a re-run after a crash needs them)."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if state_dir.stat().st_mode & 0o077:
        log.info("state_dir %s: access for group and others removed", state_dir)
        state_dir.chmod(0o700)


def _move_aside(path: Path, exc: sqlite3.DatabaseError) -> None:
    """A damaged journal (and its -wal, -shm) out of the way; the newest few are kept."""
    aside = path.with_name(f"{FILE_NAME}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    log.error("request journal %s is unreadable (%s): moved to %s", path, exc, aside)
    for suffix in ("", "-wal", "-shm"):
        moved = Path(f"{path}{suffix}")
        if moved.exists():
            moved.replace(Path(f"{aside}{suffix}"))
    copies = sorted(path.parent.glob(f"{FILE_NAME}.corrupt-*[0-9]"), reverse=True)
    for old in copies[CORRUPT_KEPT:]:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{old}{suffix}").unlink(missing_ok=True)


def _connect(path: Path) -> sqlite3.Connection:
    """Open, check and set up; raises sqlite3.DatabaseError for a damaged file. The file
    is the user's alone (its -wal and -shm get the same mode from SQLite)."""
    if path.name != ":memory:":
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        path.chmod(0o600)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA wal_autocheckpoint=0")  # bridge/checkpoint.py does them
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {verdict}")
        db.executescript(_SCHEMA)
    except BaseException:
        db.close()
        raise
    # the context manager `with db:` commits; outside it statements autocommit
    db.isolation_level = "DEFERRED"
    return db
