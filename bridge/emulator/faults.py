"""Fault injection: the ways a real module misbehaves, on demand and deterministically.

Tests and the `emulate` command drive these to prove the bridge survives a module
that is unplugged, reboots on its own, hangs, is slow, or mixes noise into its output.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Literal, Protocol

SERVICES = ("smtp", "pop3", "ftp", "ftps", "http", "https")
NoisePlace = Literal["lines", "prompt", "payload"]


class Wiring(Protocol):
    """What faults do to the emulator itself."""

    def unplug(self) -> None: ...

    def replug(self, power_cycle: bool) -> None: ...

    def reboot(self) -> None: ...

    def emit(self, data: bytes) -> None: ...


@dataclass
class Noise:
    """Bytes slipped into the output at a place a test chooses.

    place "lines": after every `every`-th line sent from when it is set (info lines,
    results and URCs alike; DATA headers are not counted, their payload comes next);
    "prompt": right after each prompt;
    "payload": `every` bytes into each DATA payload (0: right after its header)."""

    place: NoisePlace
    data: bytes
    every: int
    times: int | None  # how many more injections; None: until cleared
    seen: int = 0  # lines counted since the noise was set


def as_noise_bytes(noise: str | bytes) -> bytes:
    """Text is a URC line (framed like one); bytes are garbage sent as they are."""
    if isinstance(noise, str):
        return b"\r\n" + noise.encode() + b"\r\n"
    return noise


class Faults:
    """The fault switches; also `bridge.emulator.api.Faults` for the services."""

    def __init__(self, wiring: Wiring) -> None:
        self._wiring = wiring
        self._lock = threading.Lock()
        self._failures: dict[str, str | int] = {}
        self._hang_until: float | None = None
        self._hung = False
        self._rate: int | None = None
        self._noise: list[Noise] = []

    # -- api.Faults ---------------------------------------------------------------
    def forced_failure(self, service: str) -> str | int | None:
        with self._lock:
            return self._failures.pop(service, None)

    def fail_service(self, service: str, code: str | int) -> None:
        """The next operation of `service` fails once with `code`."""
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; one of {SERVICES}")
        with self._lock:
            self._failures[service] = code

    # -- the port -----------------------------------------------------------------
    def unplug(self) -> None:
        """The USB cable is pulled: the link disappears, work in flight is lost."""
        self._wiring.unplug()

    def replug(self, power_cycle: bool = False) -> None:
        """Plugged back in: a new pty at the same link; a power cycle also reboots."""
        self._wiring.replug(power_cycle)

    def reboot(self) -> None:
        """A spontaneous reboot: boot URCs mid-operation, all module state reset."""
        self._wiring.reboot()

    def hang(self, seconds: float | None = None) -> None:
        """Stop answering: input swallowed, nothing sent, for `seconds` or until unhang()."""
        with self._lock:
            self._hung = True
            self._hang_until = None if seconds is None else time.monotonic() + seconds

    def unhang(self) -> None:
        with self._lock:
            self._hung = False
            self._hang_until = None

    def hanging(self) -> bool:
        with self._lock:
            if self._hung and self._hang_until is not None and time.monotonic() >= self._hang_until:
                self._hung = False
                self._hang_until = None
            return self._hung

    def throttle(self, bytes_per_second: int | None) -> None:
        """Pace output like a slow UART (115200 baud 8N1 is 11520 bytes/s); None: full speed."""
        if bytes_per_second is not None and bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive")
        with self._lock:
            self._rate = bytes_per_second

    def rate(self) -> int | None:
        with self._lock:
            return self._rate

    # -- noise --------------------------------------------------------------------
    def inject(self, data: bytes) -> None:
        """Garbage now, between responses."""
        self._wiring.emit(data)

    def inject_urc(self, text: str) -> None:
        """An unsolicited line now, between responses."""
        self._wiring.emit(as_noise_bytes(text))

    def noise_every(self, n_lines: int, noise: str | bytes, times: int | None = None) -> None:
        """After every `n_lines`-th line sent, inject `noise` (text: a URC; bytes: garbage)."""
        self._add(Noise("lines", as_noise_bytes(noise), max(1, n_lines), times))

    def noise_after_prompt(self, noise: str | bytes, times: int | None = None) -> None:
        """Right after each data-mode prompt (`>`, `>>`), inject `noise`."""
        self._add(Noise("prompt", as_noise_bytes(noise), 0, times))

    def noise_in_payload(
        self, noise: str | bytes, offset: int = 0, times: int | None = None
    ) -> None:
        """`offset` bytes into each DATA payload (0: between header and payload), inject `noise`."""
        self._add(Noise("payload", as_noise_bytes(noise), max(0, offset), times))

    def clear_noise(self) -> None:
        with self._lock:
            self._noise.clear()

    # -- what `Output` asks while sending ---------------------------------------------
    def line_noise(self) -> bytes:
        """Count one line sent; the noise now due after it."""
        with self._lock:
            due = b""
            for noise in self._of("lines"):
                noise.seen += 1
                if noise.seen % noise.every == 0:
                    due += self._spend(noise)
            return due

    def prompt_noise(self) -> bytes:
        with self._lock:
            return b"".join(self._spend(noise) for noise in self._of("prompt"))

    def payload_noise_offsets(self) -> list[int]:
        with self._lock:
            return sorted({noise.every for noise in self._of("payload")})

    def payload_noise(self, offset: int) -> bytes:
        """The noise due `offset` bytes into a payload (0: right after its header)."""
        with self._lock:
            return b"".join(
                self._spend(noise) for noise in self._of("payload") if noise.every == offset
            )

    def _of(self, place: NoisePlace) -> list[Noise]:
        return [noise for noise in self._noise if noise.place == place]

    def _spend(self, noise: Noise) -> bytes:
        if noise.times is not None:
            noise.times -= 1
            if noise.times <= 0:
                self._noise = [n for n in self._noise if n is not noise]
        return noise.data

    def _add(self, noise: Noise) -> None:
        with self._lock:
            self._noise.append(noise)
