"""`sim5360-bridge emulate` as a separate process: talk to it, control it, stop it with SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from bridge.emulator.cli import control_command
from bridge.emulator.core import BOOT_URCS
from tests.fixtures.emulator import AtClient, EmulatorFactory

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


def test_emulate_stops_on_sigterm(tmp_path: Path) -> None:
    link = tmp_path / "ttySIM"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "emulate", "--link", str(link), "--boot-delay", "0"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        assert "emulator on" in proc.stderr.readline()
        assert link.is_symlink()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not link.is_symlink()
        assert not link.with_name("ttySIM.ctl").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_fault_flags(tmp_path: Path) -> None:
    link = tmp_path / "ttySIM"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "bridge.cli", "emulate", "--link", str(link),
            "--boot-delay", "0", "--no-echo", "--root", str(tmp_path / "module"),
            "--urc-noise", "2", "+NOISE: 1",
            "--garbage", "3", "00ff", "--throttle", "100000", "--fail", "smtp=NETWORK ERROR",
        ],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        assert "emulator on" in proc.stderr.readline()
        client = AtClient(link)
        try:
            client.write(b"AT+CGMM\r")  # no echo; noise counts lines from the first one sent
            wire = b"\r\nSIMCOM_SIM5360E\r\n\r\nOK\r\n\r\n+NOISE: 1\r\n"
            assert client.read_exact(len(wire), 10) == wire
            client.write(b"AT\r")
            assert client.read_exact(8, 10) == b"\r\nOK\r\n\x00\xff"
            client.write(b"AT\r")
            assert client.read_exact(19, 10) == b"\r\nOK\r\n\r\n+NOISE: 1\r\n"
        finally:
            client.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_control_commands(emulator_factory: EmulatorFactory) -> None:
    emulator = emulator_factory()
    faults = emulator.faults
    assert control_command(faults, "hang 30") == ""
    assert faults.hanging()
    assert control_command(faults, "unhang") == "" and not faults.hanging()
    assert control_command(faults, "throttle 11520") == "" and faults.rate() == 11520
    assert control_command(faults, "throttle off") == "" and faults.rate() is None
    assert control_command(faults, "fail ftp 213") == ""
    assert faults.forced_failure("ftp") == 213
    assert control_command(faults, "fail smtp NETWORK ERROR") == ""
    assert faults.forced_failure("smtp") == "NETWORK ERROR"
    assert control_command(faults, "unplug") == "" and not emulator.link.exists()
    assert control_command(faults, "replug") == "" and emulator.link.is_symlink()
    assert "unknown" in control_command(faults, "explode")
    assert "fail" in control_command(faults, "fail telnet 1")
    assert "hang" in control_command(faults, "hang soon")
