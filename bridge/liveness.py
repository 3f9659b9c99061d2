"""A running job's signs of life, for the watchdog (bridge.mainloop).

A job is stuck when it has been silent for longer than the wait it is in, plus grace.
Its signs of life: a command sent, the module's answer to it, an awaited URC, a
progress report. The wait it is in: what its code gave the command or URC it waits
for (a command's timeout, an e-mail's `timeout`, a restart's), else request_timeout.
A transfer that keeps moving, or a wait within its own bound, is never stuck however
long it takes; a job blocked outside any bound it declared is.
"""

from __future__ import annotations

import time
from collections.abc import Callable

GRACE_MAX = 30.0  # seconds of grace past a wait: as much again as the wait, at most this


class Liveness:
    """Written by the job's thread (and its sinks), read by the main loop's."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last = clock()  # the last sign of life
        self.wait = 0.0  # the bound of the wait the job is in since then; 0: none

    def beat(self) -> None:
        """A sign of life; the job is in no wait (until `waiting`)."""
        self.last, self.wait = self._clock(), 0.0

    def waiting(self, bound: float) -> None:
        """A sign of life, and the job now waits up to `bound` seconds in silence."""
        self.last, self.wait = self._clock(), bound

    def alive(self) -> None:
        """A sign of life within the wait it is in (progress: the wait goes on)."""
        self.last = self._clock()

    def stuck_for(self, now: float, floor: float) -> float | None:
        """Seconds silent when past its wait (at least `floor`, request_timeout) plus
        grace; None while it is not stuck."""
        allowed = max(self.wait, floor)
        silent = now - self.last
        return silent if silent > allowed + min(allowed, GRACE_MAX) else None
