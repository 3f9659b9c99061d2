"""Everything the module sends, framed as the module frames it, through one lock.

Responses, URCs from service threads and injected noise share the wire; the lock
keeps each line whole. A ``+...: DATA,<len>`` header reserves the wire for the
thread that sent it until its <len> payload bytes follow, so no URC can land
between a header and its payload (unless a test asks for exactly that).
"""

from __future__ import annotations

import re
import threading
import time

from bridge.emulator.faults import Faults
from bridge.emulator.port import Port

_DATA_HEADER = re.compile(r"\+[A-Z]+: ?DATA, ?(\d+),?")
_RESERVATION_IDLE_S = 5.0  # a payload that never comes frees the wire after this


class Output:
    """The module's transmit side; each write may carry the epoch of the work that made it,
    and writes of an ended epoch (before an unplug or a reboot) are dropped."""

    def __init__(self, port: Port, faults: Faults) -> None:
        self._port = port
        self._faults = faults
        self._cond = threading.Condition()
        self._epoch = 0
        self._owner: int | None = None
        self._left = 0
        self._payload_pos = 0
        self._deadline = 0.0

    @property
    def epoch(self) -> int:
        with self._cond:
            return self._epoch

    def new_epoch(self) -> None:
        with self._cond:
            self._epoch += 1
            self._owner = None
            self._cond.notify_all()

    def line(self, text: str, epoch: int | None = None) -> None:
        with self._cond:
            if not self._claim(epoch):
                return
            if self._owner is not None:
                self._owner = None  # a line from the payload's owner: its payload ended early
                self._cond.notify_all()
            # The noise is decided before the line goes out: a host that reacts to the line
            # (by setting noise, say) must not have its reaction counted against it.
            header = _DATA_HEADER.fullmatch(text)
            if header and int(header.group(1)) > 0:
                self._owner = threading.get_ident()
                self._left = int(header.group(1))
                self._payload_pos = 0
                self._deadline = time.monotonic() + _RESERVATION_IDLE_S
                noise = self._faults.payload_noise(0)
            else:
                noise = self._faults.line_noise()
            self._send(b"\r\n" + text.encode() + b"\r\n" + noise)

    def prompt(self, text: str, epoch: int | None = None) -> None:
        with self._cond:
            if not self._claim(epoch):
                return
            noise = self._faults.prompt_noise()
            self._send(b"\r\n" + text.encode() + noise)

    def raw(self, data: bytes, epoch: int | None = None) -> None:
        with self._cond:
            if not self._claim(epoch):
                return
            if self._owner != threading.get_ident():
                self._send(data)
                return
            while data:
                cut = self._next_noise_offset()
                piece = data if cut is None else data[: max(0, cut - self._payload_pos)]
                piece = piece[: self._left]
                data = data[len(piece) :]
                self._payload_pos += len(piece)
                self._left -= len(piece)
                self._deadline = time.monotonic() + _RESERVATION_IDLE_S
                noise = self._faults.payload_noise(self._payload_pos) if self._left > 0 else b""
                self._send(piece + noise)
                if self._left <= 0:
                    self._owner = None
                    self._cond.notify_all()
                    if data:
                        self._send(data)
                    return

    def _claim(self, epoch: int | None) -> bool:
        """Wait for the wire; False if this write belongs to an ended epoch or the module hangs."""
        me = threading.get_ident()
        while self._owner not in (None, me):
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                self._owner = None
                break
            self._cond.wait(remaining)
        if epoch is not None and epoch != self._epoch:
            return False
        return not self._faults.hanging()

    def _next_noise_offset(self) -> int | None:
        later = [n for n in self._faults.payload_noise_offsets() if n > self._payload_pos]
        return later[0] if later else None

    def _send(self, data: bytes) -> None:
        if data:
            self._port.write(data)
