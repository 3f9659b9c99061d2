"""Fault injection, each mode shown by the bytes a host sees on the wire."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import serial

from bridge.emulator.core import BOOT_URCS, Emulator
from tests.emulator.test_core_fs import download
from tests.fixtures.emulator import AtClient, EmulatorFactory

ClientFactory = Callable[[Emulator], AtClient]
BOOT_LINES = [text for _, text in BOOT_URCS]


def _setup(factory: EmulatorFactory, connect: ClientFactory) -> tuple[Emulator, AtClient]:
    emulator = factory()
    return emulator, connect(emulator)


def test_unplug_and_replug_keep_module_state(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _setup(emulator_factory, at_client_factory)
    assert client.command("AT+CMEE=2") == ["OK"]
    # Cut in the middle of a data phase: that transfer is lost with the cable.
    client.write(b'AT+CFTRANRX="C:/cut.bin",100\r')
    client.wait_for_prompt(">", 5)
    client.write(b"x" * 10)
    emulator.faults.unplug()
    assert not emulator.link.exists() and not emulator.link.is_symlink()
    with pytest.raises((serial.SerialException, TimeoutError, OSError)):
        client.write(b"AT\r")
        client.read_line(0.5)
    client.close()
    emulator.faults.replug()
    assert emulator.link.is_symlink()
    again = at_client_factory(emulator)
    assert again.command("AT+CMEE?") == ["+CMEE: 2", "OK"]  # no reboot: settings kept
    assert not (emulator.root / "C" / "cut.bin").exists()


def test_replug_with_power_cycle_resets(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _setup(emulator_factory, at_client_factory)
    assert client.command("AT+CMEE=2") == ["OK"]
    emulator.faults.unplug()
    client.close()
    emulator.faults.replug(power_cycle=True)
    fresh = AtClient(emulator.link)
    try:
        assert fresh.command("AT+CMEE?") == ["AT+CMEE?", "+CMEE: 0", "OK"]
    finally:
        fresh.close()


def test_spontaneous_reboot_mid_operation(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _setup(emulator_factory, at_client_factory)
    client.write(b'AT+CFTRANRX="C:/half.bin",100\r')
    client.wait_for_prompt(">", 5)
    client.write(b"y" * 50)
    emulator.faults.reboot()
    assert [client.read_line(5) for _ in BOOT_LINES] == BOOT_LINES
    assert client.command("AT") == ["AT", "OK"]  # echo on: the module is fresh
    assert not (emulator.root / "C" / "half.bin").exists()


def test_hang_for_seconds_swallows_input(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _setup(emulator_factory, at_client_factory)
    started = time.monotonic()
    emulator.faults.hang(0.6)
    client.write(b"AT+CGMM\r")
    emulator.faults.inject_urc("+LOST: 1")  # nothing is sent while hung either
    with pytest.raises(TimeoutError):
        client.read_line(0.3)
    answer: list[str] = []
    while not answer:  # a host's retries: unanswered until the hang ends
        assert time.monotonic() - started < 5
        try:
            answer = client.command("AT", timeout=0.2)
        except TimeoutError:
            continue
    assert answer == ["OK"] and time.monotonic() - started >= 0.6
    # The command sent while hung was swallowed, not answered late.
    assert client.command("AT+CSQ") == ["+CSQ: 22,0", "OK"]


def test_hang_until_unhang(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _setup(emulator_factory, at_client_factory)
    emulator.faults.hang()
    with pytest.raises(TimeoutError):
        client.command("AT", timeout=0.3)
    assert emulator.faults.hanging()
    emulator.faults.unhang()
    assert client.command("AT") == ["OK"]


def test_inject_garbage_and_urc_between_responses(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _setup(emulator_factory, at_client_factory)
    emulator.faults.inject(b"\x00\xff\x1bgarbage")
    emulator.faults.inject_urc("+CHTTPSNOTIFY: PEER CLOSED")
    wire = b"\x00\xff\x1bgarbage\r\n+CHTTPSNOTIFY: PEER CLOSED\r\n"
    assert client.read_exact(len(wire), 5) == wire
    assert client.command("AT") == ["OK"]


def test_noise_every_n_lines(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _setup(emulator_factory, at_client_factory)
    emulator.faults.noise_every(2, "+NOISE: 1")
    assert client.command("ATI") == [
        "Manufacturer: SIMCOM INCORPORATED", "Model: SIMCOM_SIM5360E", "+NOISE: 1",
        "Revision: 4534B04SIM5360E", "IMEI: 351602000330570", "+NOISE: 1",
        "+GCAP: +CGSM,+DS,+ES", "OK",
    ]  # fmt: skip
    assert client.read_line(5) == "+NOISE: 1"
    emulator.faults.clear_noise()
    emulator.faults.noise_every(1, b"\x00\xfe", times=1)
    client.write(b"AT\r")
    wire = b"\r\nOK\r\n\x00\xfe"
    assert client.read_exact(len(wire), 5) == wire
    assert client.command("AT") == ["OK"]  # spent: once only


def test_noise_right_after_a_prompt(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _setup(emulator_factory, at_client_factory)
    emulator.faults.noise_after_prompt("+CSQ: 9,9")
    client.write(b'AT+CFTRANRX="C:/p.txt",3\r')
    wire = b"\r\n>\r\n+CSQ: 9,9\r\n"
    assert client.read_exact(len(wire), 5) == wire
    client.write(b"abc")
    assert client.read_line(5) == "OK"
    assert (emulator.root / "C" / "p.txt").read_bytes() == b"abc"


@pytest.mark.parametrize(
    ("offset", "payload_wire"),
    [
        (0, b"\r\n+NOISE\r\nhello"),
        (2, b"he\r\n+NOISE\r\nllo"),
        (5, b"hello"),  # the payload's end is past the inside: no noise
    ],
)
def test_noise_inside_a_payload(
    emulator_factory: EmulatorFactory,
    at_client_factory: ClientFactory,
    offset: int,
    payload_wire: bytes,
) -> None:
    emulator, client = _setup(emulator_factory, at_client_factory)
    (emulator.root / "C" / "h.txt").write_bytes(b"hello")
    emulator.faults.noise_in_payload("+NOISE", offset)
    client.write(b'AT+CFTRANTX="C:/h.txt"\r')
    wire = b"\r\n+CFTRANTX: DATA,5\r\n" + payload_wire + b"\r\n+CFTRANTX: 0\r\n\r\nOK\r\n"
    assert client.read_exact(len(wire), 5) == wire


def test_throttle_paces_output(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _setup(emulator_factory, at_client_factory)
    data = bytes(range(256)) * 40
    (emulator.root / "C" / "t.bin").write_bytes(data)
    emulator.faults.throttle(20000)
    started = time.monotonic()
    assert download(client, "C:/t.bin") == data
    throttled = time.monotonic() - started
    assert throttled >= len(data) / 20000
    emulator.faults.throttle(None)
    started = time.monotonic()
    assert download(client, "C:/t.bin") == data
    assert time.monotonic() - started < throttled / 2
    with pytest.raises(ValueError):
        emulator.faults.throttle(0)


def test_fail_service_once(emulator_factory: EmulatorFactory) -> None:
    emulator = emulator_factory()
    seen_by_services = emulator.context.faults
    assert seen_by_services.forced_failure("smtp") is None
    emulator.faults.fail_service("smtp", "NETWORK ERROR")
    emulator.faults.fail_service("ftp", 213)
    assert seen_by_services.forced_failure("pop3") is None
    assert seen_by_services.forced_failure("smtp") == "NETWORK ERROR"
    assert seen_by_services.forced_failure("smtp") is None
    assert seen_by_services.forced_failure("ftp") == 213
    with pytest.raises(ValueError):
        emulator.faults.fail_service("telnet", 1)
