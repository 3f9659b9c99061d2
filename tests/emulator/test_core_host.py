"""`Host`'s data-mode reads as handlers use them, over the real pty."""

from __future__ import annotations

from collections.abc import Callable

from bridge.emulator.api import Command, Host
from bridge.emulator.core import Emulator
from tests.fixtures.emulator import AtClient, EmulatorFactory

ClientFactory = Callable[[Emulator], AtClient]


def _reader(read: Callable[[Host], bytes | None]) -> Callable[[Command, Host], None]:
    def handler(cmd: Command, host: Host) -> None:
        host.prompt(">>" if cmd.name == "+TEXT" else ">")
        data = read(host)
        host.line("NONE" if data is None else f"GOT {data.hex()}")
        host.ok()

    return handler


def _setup(factory: EmulatorFactory, connect: ClientFactory) -> AtClient:
    emulator = factory()
    emulator.add_command("+ESC", _reader(lambda host: host.read_escaped(0.5)))
    emulator.add_command("+TEXT", _reader(lambda host: host.read_text(0.5)))
    emulator.add_command("+EXACT", _reader(lambda host: host.read_exact(4, 0.5)))
    return connect(emulator)


def test_read_escaped_unescapes_and_stops_at_a_lone_ctrl_z(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = _setup(emulator_factory, at_client_factory)
    client.write(b"AT+ESC\r")
    client.wait_for_prompt(">", 5)
    # What follows the lone Ctrl-Z is a new command line.
    client.write(b"a\x03\x03b\x03\x1ac\r\n\x1aAT\r")
    assert client.read_line(5) == "GOT " + b"a\x03b\x1ac\r\n".hex()
    assert client.read_line(5) == "OK"
    assert client.read_line(5) == "OK"


def test_read_text_ends_at_ctrl_z_and_esc_cancels(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = _setup(emulator_factory, at_client_factory)
    client.write(b"AT+TEXT\r")
    client.wait_for_prompt(">>", 5)
    client.write(b"Hello\r\nWorld\x1a")
    assert client.read_line(5) == "GOT " + b"Hello\r\nWorld".hex()
    assert client.read_line(5) == "OK"
    client.write(b"AT+TEXT\r")
    client.wait_for_prompt(">>", 5)
    client.write(b"never mind\x1b")
    assert client.read_line(5) == "NONE"
    assert client.read_line(5) == "OK"


def test_reads_time_out(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = _setup(emulator_factory, at_client_factory)
    client.write(b"AT+EXACT\r")
    client.wait_for_prompt(">", 5)
    client.write(b"abc")  # one byte short
    assert client.read_line(5) == "NONE"
    assert client.read_line(5) == "OK"
    client.write(b"AT+EXACT\r")
    client.wait_for_prompt(">", 5)
    client.write(b"abcdAT\r")
    assert client.read_line(5) == "GOT 61626364"
    assert [client.read_line(5), client.read_line(5)] == ["OK", "OK"]
