"""What the benchmarks share: the emulated module in a process of its own, the
plain-pyserial AT round trip every figure is compared with, percentiles, and a
description of the machine the figures came from (they mean little without it)."""

from __future__ import annotations

import collections
import math
import os
import platform
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Self

import serial

from bridge.testservers.lifecycle import ManagedServer, end_process

OK = b"OK\r\n"


def machine() -> dict[str, object]:
    """Where and under what load the figures were taken."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 and p99 (nearest rank) of durations, in milliseconds."""
    ranked = sorted(seconds)

    def rank(p: float) -> float:
        index = min(len(ranked) - 1, max(0, math.ceil(p * len(ranked)) - 1))
        return round(ranked[index] * 1000, 3)

    return {"p50_ms": rank(0.50), "p99_ms": rank(0.99)}


def scheduling_gaps(seconds: float = 1.0) -> dict[str, float]:
    """The machine's own noise: one thread that only reads the clock, for `seconds`;
    every pause over 1 ms is the scheduler or the hypervisor taking the CPU away. A
    shared VM's p99 moves with these, whatever runs on it."""
    gaps: list[int] = []
    clock = time.perf_counter_ns
    end = clock() + int(seconds * 1e9)
    last = clock()
    while last < end:
        now = clock()
        if now - last > 1_000_000:
            gaps.append(now - last)
        last = now
    return {
        "gaps_over_1ms_per_s": round(len(gaps) / seconds, 1),
        "max_gap_ms": round(max(gaps, default=0) / 1e6, 2),
    }


class EmulatorProcess(ManagedServer):
    """`sim5360-bridge emulate` in its own process (so it does not share the bench's
    GIL), booted with echo off; `link` is its port. Its stderr is kept for errors."""

    def __init__(self, *, start_timeout: float = 20.0) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="bench-emu-")
        work = Path(self._dir.name)
        self.link = work / "ttySIM"
        self.root = work / "fs"
        (self.root / "C").mkdir(parents=True)
        self._start_timeout = start_timeout
        self._said: collections.deque[bytes] = collections.deque(maxlen=50)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["emulate", "--link", str(self.link), "--root", str(self.root)]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", *argv, "--boot-delay", "0", "--no-echo"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._await_banner()

    def _await_banner(self) -> None:
        """Its banner comes once the pty is there; the rest of stderr is drained."""
        assert self._proc is not None and self._proc.stderr is not None
        stream = self._proc.stderr
        give_up = time.monotonic() + self._start_timeout
        while True:
            left = give_up - time.monotonic()
            if left <= 0 or not select.select([stream], [], [], left)[0]:
                self.stop()
                raise TimeoutError(f"the emulator did not start: {self.said()}")
            line = stream.readline()
            if not line:
                self.stop()
                raise RuntimeError(f"the emulator exited: {self.said()}")
            self._said.append(line)
            if b"SIM5360 emulator on" in line:
                break
        threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    def _drain(self, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            self._said.append(line)

    def said(self) -> str:
        return b"".join(self._said).decode(errors="replace")[-2000:]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            end_process(proc)
        self._dir.cleanup()


class RawAt:
    """The baseline: a single-thread pyserial loop, write `AT` and read to `OK`."""

    def __init__(self, link: Path) -> None:
        self.port = serial.Serial(str(link), 115200, timeout=2)

    def round_trip(self, command: bytes = b"AT\r") -> float:
        started = time.perf_counter()
        self.port.write(command)
        answer = b""
        while not answer.endswith(OK):
            chunk = self.port.read(self.port.in_waiting or 1)
            if not chunk:
                raise TimeoutError(f"no OK to {command!r}; got {answer!r}")
            answer += chunk
        return time.perf_counter() - started

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
