"""Progress of a long request, at most a few messages a second and one at the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

MIN_INTERVAL = 0.25  # at most ~4 a second


class ProgressReporter:
    """Turns the action's progress(stage, bytes, total) calls into throttled
    messages with percent and rate; `finish()` sends the final one."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        transaction: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._transaction = transaction
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_sent = -1.0
        self._last: dict[str, Any] | None = None
        self._stage: str | None = None

    def __call__(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        now = self._clock()
        with self._lock:
            new_stage = stage != self._stage
            if new_stage:
                self._stage = stage
                self._started = now  # the rate is of this stage's bytes
            self._last = self._message(stage, done, total, now)
            last_piece = done is not None and done == total
            due = new_stage or last_piece or now - self._last_sent >= MIN_INTERVAL
            if not due:
                return
            self._last_sent = now
            message = self._last
        self._send(message)

    def finish(self) -> None:
        """The final message (stage `done`), only if progress was reported at all."""
        with self._lock:
            last = self._last
            if last is None:
                return
            final = dict(last, stage="done")
        self._send(final)

    def _message(
        self, stage: str, done: int | None, total: int | None, now: float
    ) -> dict[str, Any]:
        elapsed = now - self._started
        percent = None
        if done is not None and total:
            percent = round(100.0 * done / total, 1)
        rate = int(done / elapsed) if done and elapsed > 0 else None
        return {
            "transaction": self._transaction,
            "stage": stage,
            "bytes": done,
            "total": total,
            "percent": percent,
            "rate_bps": rate,
        }
