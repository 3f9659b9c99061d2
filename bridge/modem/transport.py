"""The serial port: opened exclusively, read in bulk, written under one lock."""

from __future__ import annotations

import contextlib
import threading

import serial

READ_TIMEOUT = 0.2  # how often a blocked read looks up to see if it should stop
WRITE_TIMEOUT = 10.0  # a module that stops reading must not block a writer forever


class TransportError(Exception):
    """The port failed: unplugged, gone, or refusing I/O."""


class SerialTransport:
    """One open port. Reads return what is waiting (at least one byte, or nothing
    after READ_TIMEOUT): never a busy loop, never byte at a time."""

    def __init__(self, path: str, baudrate: int) -> None:
        self.path = path
        try:
            self._port = serial.Serial(
                path,
                baudrate,
                timeout=READ_TIMEOUT,
                write_timeout=WRITE_TIMEOUT,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot open {path}: {exc}") from exc
        self._write_lock = threading.Lock()

    def read(self) -> bytes:
        try:
            waiting = self._port.in_waiting
            data = bytes(self._port.read(waiting or 1))
            if not waiting and data:
                # woken by the first byte: its line came with it, so take that too and
                # hand the receiver one whole answer instead of a byte and the rest
                rest = self._port.in_waiting
                if rest:
                    data += self._port.read(rest)
            return data
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            # TypeError/AttributeError: pyserial after the fd was closed under it
            raise TransportError(f"read from {self.path} failed: {exc}") from exc

    def write(self, data: bytes) -> None:
        with self._write_lock:
            try:
                self._port.write(data)
            except serial.SerialTimeoutException as exc:
                raise TransportError(f"write to {self.path} timed out") from exc
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                raise TransportError(f"write to {self.path} failed: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()
