"""`sim5360-bridge emulate` as a separate process: talk to it, control it, stop it with SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from bridge.emulator.core import BOOT_URCS
from tests.fixtures.emulator import AtClient

REPO = Path(__file__).resolve().parents[2]


def test_emulate_subcommand(tmp_path: Path) -> None:
    link = tmp_path / "ttySIM"
    control = tmp_path / "ctl"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "bridge.cli", "emulate", "--link", str(link),
            "--root", str(tmp_path / "module"), "--boot-delay", "0",
            "--host", "mail.example.com=127.0.0.1", "--control", str(control),
        ],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()  # printed once the port is up
        assert "emulator on" in banner, banner
        client = AtClient(link)
        try:
            assert client.command("AT") == ["AT", "OK"]
            assert client.command("ATE0") == ["ATE0", "OK"]
            assert client.command("AT+CGMM") == ["SIMCOM_SIM5360E", "OK"]
            with control.open("w") as ctl:
                ctl.write("urc +CSQ: 3,0\n")
            assert client.read_line(10) == "+CSQ: 3,0"
            with control.open("w") as ctl:
                ctl.write("reboot\n")
            assert [client.read_line(10) for _ in BOOT_URCS] == [t for _, t in BOOT_URCS]
        finally:
            client.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert not link.exists() and not link.is_symlink()
        assert not control.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_emulate_rejects_bad_flags(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "emulate", "--link", str(tmp_path / "t"),
         "--host", "no-equals-sign"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "NAME=VALUE" in result.stderr
