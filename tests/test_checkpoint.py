"""The journal's WAL is checkpointed on a thread of its own, never inside a request's
commit (where the checkpoint's fsync would add a millisecond or more to one answer)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import bridge.checkpoint as checkpoint
from bridge.journal import FILE_NAME, Journal

PAGE = 4096
SQLITES_MARK = 1000  # pages of WAL at which a default connection checkpoints in a commit


def _requests(journal: Journal, n: int, size: int = 500) -> None:
    for i in range(n):
        entry = journal.admit(
            "t", b"x" * size, response_topic=None, correlation=None, mid=i, dup=False
        )
        assert entry
        journal.answered(entry, "r", b"y" * size)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _checkpointer(journal: Journal) -> checkpoint.Checkpointer:
    assert journal._checkpointer is not None
    return journal._checkpointer


def test_the_journals_own_connection_never_checkpoints(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    try:
        size = (tmp_path / FILE_NAME).stat().st_size
        # not yet due for the thread, but past SQLite's own mark, where a default
        # connection would have checkpointed inside one of these commits
        _requests(journal, (checkpoint.CHECKPOINT_EVERY - 2) // 2, size=24 * 1024)
        assert Path(f"{tmp_path / FILE_NAME}-wal").stat().st_size > SQLITES_MARK * PAGE
        assert (tmp_path / FILE_NAME).stat().st_size == size
        assert _checkpointer(journal).checkpoints == 0
    finally:
        journal.close()


def test_the_checkpoint_thread_copies_the_wal_into_the_database(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    try:
        size = (tmp_path / FILE_NAME).stat().st_size
        _requests(journal, checkpoint.CHECKPOINT_EVERY)
        _wait(lambda: _checkpointer(journal).checkpoints >= 1, "a checkpoint")
        assert (tmp_path / FILE_NAME).stat().st_size > size
    finally:
        journal.close()
    reopened = sqlite3.connect(tmp_path / FILE_NAME)
    count = reopened.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    reopened.close()
    assert count == checkpoint.CHECKPOINT_EVERY


def test_without_its_thread_the_journal_checkpoints_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: checkpoint.Checkpointer) -> sqlite3.Connection:
        raise sqlite3.OperationalError("no connection for the checkpointer")

    monkeypatch.setattr(checkpoint.Checkpointer, "_open", refuse)
    journal = Journal.open(tmp_path)
    try:
        _wait(lambda: _checkpointer(journal).failed, "the checkpointer to give up")
        size = (tmp_path / FILE_NAME).stat().st_size
        _requests(journal, checkpoint.CHECKPOINT_EVERY // 2)
        assert (tmp_path / FILE_NAME).stat().st_size > size
    finally:
        journal.close()
