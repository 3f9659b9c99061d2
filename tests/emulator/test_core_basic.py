"""The core's command loop over a real pty: echo, line assembly, result and error shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.emulator.api import ArgError, Command
from bridge.emulator.cmdline import parse_args, split_command
from bridge.emulator.core import Emulator
from tests.fixtures.emulator import AtClient, EmulatorFactory

ClientFactory = Callable[[Emulator], AtClient]


def test_echo_then_ate0_then_at_and_unknown(emulator_factory: EmulatorFactory) -> None:
    emulator = emulator_factory()
    client = AtClient(emulator.link)
    try:
        client.write(b"AT\r")
        assert client.read_exact(9, timeout=5) == b"AT\r\r\nOK\r\n"  # boots with echo on
        assert client.command("ATE0") == ["ATE0", "OK"]
        assert client.command("AT") == ["OK"]
        assert client.command("at") == ["OK"]
        assert client.command("AT+NOSUCH") == ["ERROR"]
        assert client.command("ATE1") == ["OK"]
        assert client.command("AT") == ["AT", "OK"]
    finally:
        client.close()


def test_at_client_factory_starts_with_echo_off(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = at_client_factory(emulator_factory())
    client.write(b"AT\r")
    assert client.read_exact(6, timeout=5) == b"\r\nOK\r\n"


def test_line_assembly(emulator_factory: EmulatorFactory, at_client_factory: ClientFactory) -> None:
    client = at_client_factory(emulator_factory())
    # LF ignored, several lines in one write, noise before the AT prefix, backspace edits.
    client.write(b"AT\r\nat+cgmm\r\nxxAT\rAT+CSX\x08Q\r")
    assert client.read_exact(6, timeout=5) == b"\r\nOK\r\n"
    assert client.read_line(5) == "SIMCOM_SIM5360E"
    assert client.read_line(5) == "OK"
    assert client.read_line(5) == "OK"
    assert client.read_line(5).startswith("+CSQ: ")
    assert client.read_line(5) == "OK"
    # A line that never says AT is ignored: the next command's answer comes first.
    client.write(b"hello\r")
    assert client.command("AT") == ["OK"]


def test_cme_error_shaped_by_cmee(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = at_client_factory(emulator_factory())
    assert client.command("AT+CMEE?") == ["+CMEE: 0", "OK"]
    assert client.command('AT+CPIN="1234"') == ["ERROR"]
    assert client.command("AT+CMEE=1") == ["OK"]
    assert client.command('AT+CPIN="1234"') == ["+CME ERROR: 3"]
    assert client.command("AT+CMEE=2") == ["OK"]
    assert client.command('AT+CPIN="1234"') == ["+CME ERROR: operation not allowed"]
    assert client.command("AT+CMEE=?") == ["+CMEE: (0-2)", "OK"]
    assert client.command("AT+CMEE=3") == ["ERROR"]
    assert client.command("AT+CMEE") == ["OK"]
    assert client.command("AT+CMEE?") == ["+CMEE: 0", "OK"]


def test_overlong_line_is_refused(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = at_client_factory(emulator_factory())
    assert client.command("AT+CSQ" + "9" * 5000) == ["ERROR"]
    assert client.command("AT") == ["OK"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ('"a b",1,,x', ["a b", 1, None, "x"]),
        (' "smtp.example.com" , 25 ', ["smtp.example.com", 25]),
        ('{non-ascii}"E6B58BE8AF952E747874",0', ["测试.txt", 0]),
        ("C:/Picture", ["C:/Picture"]),
        ('"x,y;z"', ["x,y;z"]),
        ("-5,+3", [-5, 3]),
        (",", [None, None]),
    ],
)
def test_parse_args(raw: str, expected: list[object]) -> None:
    assert parse_args(raw) == expected
    assert Command("+X", "write", raw, f"AT+X={raw}").args() == expected


@pytest.mark.parametrize("raw", ['"open', '"a"b', 'x"y', '{non-ascii}"zz"', "{non-ascii}x"])
def test_parse_args_refuses(raw: str) -> None:
    with pytest.raises(ArgError):
        parse_args(raw)


@pytest.mark.parametrize(
    ("line", "name", "form", "raw_args"),
    [
        ("AT+CSQ", "+CSQ", "exec", ""),
        ("at+csq=?", "+CSQ", "test", ""),
        ("AT+CCLK?", "+CCLK", "read", ""),
        ('AT+SMTPSRV="mail",25', "+SMTPSRV", "write", '"mail",25'),
        ("ATE0", "E", "write", "0"),
        ("ATI", "I", "exec", ""),
        ("AT&F", "&F", "exec", ""),
    ],
)
def test_split_command(line: str, name: str, form: str, raw_args: str) -> None:
    cmd = split_command(line)
    assert cmd is not None
    assert (cmd.name, cmd.form, cmd.raw_args, cmd.line) == (name, form, raw_args, line)


def test_split_command_bare_at_and_junk() -> None:
    assert split_command("AT") is None
    with pytest.raises(ArgError):
        split_command("XY+CSQ")


def test_output_without_a_listener_is_dropped_not_blocking(
    emulator_factory: EmulatorFactory,
) -> None:
    emulator = emulator_factory()
    line = "+NOISE: " + "x" * 100
    for _ in range(3000):  # ~330 KB: far more than a pty buffers
        emulator.context.urc(line)
    client = AtClient(emulator.link)
    try:
        assert client.command("ATE0") == ["ATE0", "OK"]
    finally:
        client.close()
    for _ in range(3000):  # and again after a host came and went
        emulator.context.urc(line)
    again = AtClient(emulator.link)
    try:
        assert again.command("AT") == ["OK"]
    finally:
        again.close()


def test_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    link = tmp_path / "ttySIM"
    with Emulator(link) as emulator:
        root = emulator.root
        assert link.is_symlink() and (root / "C").is_dir() and (root / "D").is_dir()
    assert not link.is_symlink() and not root.exists()
    kept = tmp_path / "kept"
    with Emulator(link, root=kept):
        pass
    assert (kept / "C").is_dir() and not link.is_symlink()


def test_command_log_lists_what_the_module_received(emulator_factory, at_client_factory) -> None:  # type: ignore[no-untyped-def]
    emulator = emulator_factory()
    client = at_client_factory(emulator)
    client.command("AT+CSQ")
    client.command("at+cgmm")
    assert list(emulator.command_log)[-2:] == ["AT+CSQ", "at+cgmm"]
