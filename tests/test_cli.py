"""The command line: `at` against the emulator, and honest "not built" answers."""

from __future__ import annotations

import subprocess
import sys

from bridge.emulator.core import Emulator


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_at_prints_the_answer(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emulator: Emulator = emulator_factory()
    out = cli("at", "--port", str(emulator.link), "AT+CGMM")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["SIMCOM_SIM5360E", "OK"]


def test_at_error_exit_code(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emulator: Emulator = emulator_factory()
    out = cli("at", "--port", str(emulator.link), "AT+NOSUCH")
    assert out.returncode == 1
    assert out.stdout.strip().endswith("ERROR")


def test_at_refuses_injection_without_touching_the_port(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = cli("at", "--port", str(tmp_path / "none"), "AT+CSQ;+CRESET")
    assert out.returncode == 2 and "refused" in out.stderr


def test_at_missing_port(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = cli("at", "--port", str(tmp_path / "none"), "AT")
    assert out.returncode == 1 and "cannot open" in out.stderr
