"""The serial port: opened exclusively, then read and written on its file descriptor
directly, so that whoever waits for the module is the thread the module's bytes wake."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from typing import Protocol

import serial

READ_SIZE = 64 * 1024  # what one read takes at most: a whole answer, or a transfer's burst
WRITE_TIMEOUT = 10.0  # a module that stops reading must not block a writer forever


class TransportError(Exception):
    """The port failed: unplugged, gone, or refusing I/O."""


class Port(Protocol):
    """What the engine needs of a port: a descriptor to wait on, and reads that
    never block (the engine waits with poll, for the port and its own wake-ups)."""

    def fileno(self) -> int: ...

    def read_now(self) -> bytes:
        """What is waiting: b"" when nothing (a tty read with VMIN=0 cannot tell that
        from a device gone; poll can). TransportError when the port failed."""
        ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class SerialTransport:
    """One open port (pyserial opens and configures it; its descriptor is non-blocking)."""

    def __init__(self, path: str, baudrate: int) -> None:
        self.path = path
        try:
            self._port = serial.Serial(path, baudrate, timeout=0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot open {path}: {exc}") from exc
        self._fd = self._port.fileno()
        self._write_lock = threading.Lock()
        self._closed = False

    def fileno(self) -> int:
        return self._fd

    def read_now(self) -> bytes:
        if self._closed:
            raise TransportError(f"{self.path} is closed")
        try:
            data = os.read(self._fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:  # EIO: unplugged
            raise TransportError(f"read from {self.path} failed: {exc}") from exc
        return data

    def write(self, data: bytes) -> None:
        with self._write_lock:
            if self._closed:
                raise TransportError(f"{self.path} is closed")
            view = memoryview(data)
            give_up: float | None = None
            while view:
                try:
                    view = view[os.write(self._fd, view) :]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as exc:
                    raise TransportError(f"write to {self.path} failed: {exc}") from exc
                if view:
                    give_up = give_up or time.monotonic() + WRITE_TIMEOUT
                    self._wait_writable(give_up)

    def _wait_writable(self, give_up: float) -> None:
        left = give_up - time.monotonic()
        writable = select.poll()
        writable.register(self._fd, select.POLLOUT)
        if left <= 0 or not writable.poll(left * 1000):
            raise TransportError(f"write to {self.path} timed out")

    def close(self) -> None:
        self._closed = True
        # a write stuck on a full buffer gives up within WRITE_TIMEOUT; closing under
        # it would let the descriptor's number be reused while it still writes
        locked = self._write_lock.acquire(timeout=WRITE_TIMEOUT)
        try:
            with contextlib.suppress(serial.SerialException, OSError):
                self._port.close()
        finally:
            if locked:
                self._write_lock.release()
