"""`bridge.emulator.api.Host` over the port: how a command handler answers and reads data.

One `PortHost` serves one command line; it carries the epoch the line arrived in,
so an answer or a data-mode read cut off by an unplug or reboot goes nowhere.
Read timeouts are idle timeouts: they restart with every byte that arrives, so a
large transfer at UART speed is not cut off while it is flowing.
"""

from __future__ import annotations

from collections.abc import Callable

from bridge.emulator.inbox import Inbox
from bridge.emulator.output import Output

CTRL_C = 0x03
CTRL_Z = 0x1A
ESC = 0x1B
_CHUNK = 4096


class PortHost:
    """The host as one command handler sees it."""

    def __init__(self, output: Output, inbox: Inbox, cmee: Callable[[], int]) -> None:
        self._output = output
        self._inbox = inbox
        self._cmee = cmee
        self._out_epoch = output.epoch
        self._in_epoch = inbox.epoch

    def line(self, text: str) -> None:
        self._output.line(text, self._out_epoch)

    def ok(self) -> None:
        self.line("OK")

    def error(self) -> None:
        self.line("ERROR")

    def cme_error(self, code: int, text: str) -> None:
        mode = self._cmee()
        if mode == 1:
            self.line(f"+CME ERROR: {code}")
        elif mode == 2:
            self.line(f"+CME ERROR: {text}")
        else:
            self.error()

    def raw(self, data: bytes) -> None:
        self._output.raw(data, self._out_epoch)

    def prompt(self, text: str = ">") -> None:
        self._output.prompt(text, self._out_epoch)

    def read_some(self, max_n: int, timeout: float) -> bytes | None:
        """Up to `max_n` bytes once any arrive; None on timeout or when the work was dropped.
        (For handlers that stream a long data phase instead of holding it in memory.)"""
        data = self._inbox.read(max_n, timeout, self._in_epoch)
        return data or None

    def read_exact(self, n: int, timeout: float) -> bytes | None:
        got = bytearray()
        while len(got) < n:
            data = self.read_some(min(_CHUNK, n - len(got)), timeout)
            if data is None:
                return None
            got += data
        return bytes(got)

    def read_escaped(self, timeout: float) -> bytes | None:
        got = bytearray()
        escaped = False
        while True:
            data = self.read_some(_CHUNK, timeout)
            if data is None:
                return None
            for i, byte in enumerate(data):
                if escaped:
                    got.append(byte)
                    escaped = False
                elif byte == CTRL_C:
                    escaped = True
                elif byte == CTRL_Z:
                    self._inbox.unread(data[i + 1 :], self._in_epoch)
                    return bytes(got)
                else:
                    got.append(byte)

    def read_text(self, timeout: float) -> bytes | None:
        got = bytearray()
        while True:
            data = self.read_some(_CHUNK, timeout)
            if data is None:
                return None
            for i, byte in enumerate(data):
                if byte == ESC:
                    self._inbox.unread(data[i + 1 :], self._in_epoch)
                    return None
                if byte == CTRL_Z:
                    self._inbox.unread(data[i + 1 :], self._in_epoch)
                    return bytes(got + data[:i])
            got += data
