"""Bytes received from the host, waiting for the command thread.

The port's reader thread keeps filling it while a handler blocks in a data-mode
read. It is bounded: when full, the reader stops taking bytes from the pty, so a
host sending a large file is held back by the tty as by flow control.
"""

from __future__ import annotations

import threading
import time

_LIMIT = 1 << 20
_SPACE_WAIT_S = 0.05


class Inbox:
    """A byte queue with an epoch: `abort()` makes every waiting and later read of the
    old epoch return None, so work in flight is dropped on unplug or reboot."""

    def __init__(self, limit: int = _LIMIT) -> None:
        self._cond = threading.Condition()
        self._data = bytearray()
        self._limit = limit
        self.epoch = 0

    def feed(self, data: bytes, cancel: threading.Event) -> None:
        with self._cond:
            while len(self._data) >= self._limit and not cancel.is_set():
                self._cond.wait(_SPACE_WAIT_S)
            if cancel.is_set():
                return
            self._data += data
            self._cond.notify_all()

    def abort(self) -> None:
        """Drop what is buffered and end the current epoch."""
        with self._cond:
            self._data.clear()
            self.epoch += 1
            self._cond.notify_all()

    def read(self, max_n: int, timeout: float, epoch: int) -> bytes | None:
        """Up to `max_n` bytes once any are there; b"" if none came within `timeout`;
        None when `epoch` has ended."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._data:
                if self.epoch != epoch:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b""
                self._cond.wait(remaining)
            if self.epoch != epoch:
                return None
            taken = bytes(self._data[:max_n])
            del self._data[:max_n]
            self._cond.notify_all()
            return taken

    def unread(self, data: bytes, epoch: int) -> None:
        """Put back bytes read past the end of what a reader wanted."""
        if not data:
            return
        with self._cond:
            if self.epoch == epoch:
                self._data[:0] = data
                self._cond.notify_all()
