"""The module's UART as a pseudo-terminal whose slave is symlinked where a host expects a device.

A host opens the link with pyserial like a real port. Output written while no one
has the slave open is dropped, as bytes on a UART nobody listens to are; output
to a host that is not reading waits, as with hardware flow control.
"""

from __future__ import annotations

import contextlib
import os
import select
import termios
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

_POLL_S = 0.05
_CHUNK = 4096


class Port:
    """One pty at a time at `link`; `open()` again after `close()` gives a new one (replug)."""

    def __init__(
        self,
        link: Path,
        on_input: Callable[[bytes, threading.Event], None],
        rate: Callable[[], int | None],
    ) -> None:
        self.link = link
        self._on_input = on_input
        self._rate = rate
        self._fd_lock = threading.Lock()
        self._read_lock = threading.Lock()  # held from a read until its bytes are handed on
        self._master: int | None = None
        self._closing = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def is_open(self) -> bool:
        return self._master is not None

    def open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        slave_path = os.ttyname(slave)
        # The slave is closed again at once: a host's open/close is then visible as
        # POLLHUP on the master, and termios settings persist while the master lives.
        os.close(slave)
        os.set_blocking(master, False)
        if self.link.is_symlink():
            self.link.unlink()  # a stale link from an emulator that did not stop cleanly
        try:
            self.link.symlink_to(slave_path)
        except OSError:
            os.close(master)
            raise
        closing = threading.Event()
        with self._fd_lock:
            self._master = master
            self._closing = closing
        self._reader = threading.Thread(
            target=self._read_loop, args=(master, closing), name="emulator-port-reader", daemon=True
        )
        self._reader.start()

    def close(self) -> None:
        """Unplug: the link goes away, the pty closes, a blocked writer gives up."""
        self._closing.set()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=5)  # before the fd is closed, so its number is not reused under it
        with self._fd_lock:
            master, self._master = self._master, None
            if master is not None:
                os.close(master)
        if self.link.is_symlink():
            self.link.unlink()

    def discard_input(self, then: Callable[[], None]) -> None:
        """Drop what the host sent that no one has taken yet, as a module's UART loses it
        on reset; `then` runs while no read can be handed on."""
        with self._read_lock:
            master = self._master
            if master is not None:
                with contextlib.suppress(OSError):
                    termios.tcflush(master, termios.TCIFLUSH)
            then()

    def write(self, data: bytes) -> None:
        """Send bytes to the host, paced by the throttle; never raises."""
        with self._fd_lock:
            master, closing = self._master, self._closing
            if master is None:
                return
            view = memoryview(data)
            rate, started, sent = None, 0.0, 0
            while view:
                if self._rate() != rate:  # a new throttle applies from the next piece on
                    rate, started, sent = self._rate(), time.monotonic(), 0
                piece = view[: max(1, rate // 50)] if rate else view
                if not self._write_all(master, piece, closing):
                    return
                view = view[len(piece) :]
                sent += len(piece)
                if rate:
                    # Pace against a schedule so the mean rate holds whatever each write costs.
                    delay = started + sent / rate - time.monotonic()
                    if delay > 0 and closing.wait(delay):
                        return

    def _write_all(self, master: int, data: memoryview, closing: threading.Event) -> bool:
        view = data
        poller = select.poll()
        poller.register(master, select.POLLOUT)
        while view:
            if closing.is_set():
                return False
            events = poller.poll(_POLL_S * 1000)
            if not events:
                continue  # the host is not reading: wait like flow control would
            if events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return False  # no one has the slave open: the bytes are lost
            try:
                n = os.write(master, view)
            except BlockingIOError:
                continue
            except OSError:
                return False  # EIO and the like: the other side is gone, as on a dead UART
            view = view[n:]
        return True

    def _read_loop(self, master: int, closing: threading.Event) -> None:
        poller = select.poll()
        poller.register(master, select.POLLIN)
        while not closing.is_set():
            try:
                events = poller.poll(_POLL_S * 1000)
            except (OSError, ValueError):
                return
            if not events:
                continue
            if not events[0][1] & select.POLLIN:
                closing.wait(_POLL_S)  # hang-up: no host; check again shortly
                continue
            with self._read_lock:
                try:
                    data = os.read(master, _CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    self._on_input(data, closing)
                    continue
            if closing.wait(_POLL_S):
                return
