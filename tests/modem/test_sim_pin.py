"""The SIM's PIN (`[[modems]] pin`): entered when the SIM asks, with care for its tries."""

from __future__ import annotations

import logging

import pytest

from bridge.at import commands as at
from bridge.emulator.core import Emulator
from bridge.modem import Exchange, Modem, ModemState
from tests.fixtures.emulator import EmulatorFactory
from tests.fixtures.modem import ModemFactory
from tests.modem.test_supervisor import wait_state, watch_states

PIN = "4711"


def cpin(modem: Modem) -> list[str]:
    return modem.run(Exchange(at.read("+CPIN"), info=("+CPIN",))).lines


def pins_sent(emulator: Emulator) -> int:
    return sum(1 for line in emulator.command_log if line.upper().startswith("AT+CPIN="))


def rebooted(emulator: Emulator, modem: Modem) -> None:
    """The module reboots (its SIM locked again) and the bridge initialises it again."""
    changes = watch_states(modem)
    emulator.faults.reboot()
    wait_state(changes, ModemState.RECOVERING, 5)
    wait_state(changes, ModemState.ONLINE, 10)


def test_the_pin_unlocks_the_sim_at_every_boot(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator = emulator_factory(sim_pin=PIN)
    modem = modem_factory(emulator, pin=PIN)
    assert emulator.sim.unlocked and cpin(modem) == ["+CPIN: READY"]
    rebooted(emulator, modem)  # the SIM is locked again: the bridge unlocks it again
    assert cpin(modem) == ["+CPIN: READY"]
    assert pins_sent(emulator) == 2
    assert PIN not in caplog.text  # nor in a debug line


def test_no_pin_is_sent_to_a_sim_that_does_not_ask(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator = emulator_factory()
    modem_factory(emulator, pin=PIN)
    assert pins_sent(emulator) == 0


def test_a_refused_pin_is_never_entered_again(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator = emulator_factory(sim_pin=PIN)
    modem = modem_factory(emulator, pin="0000")
    assert (emulator.sim.pin_tries, pins_sent(emulator)) == (2, 1)
    assert cpin(modem) == ["+CPIN: SIM PIN"]  # the modem itself is online
    rebooted(emulator, modem)  # initialised again: the same PIN is not tried
    assert cpin(modem) == ["+CPIN: SIM PIN"]
    assert (emulator.sim.pin_tries, pins_sent(emulator)) == (2, 1)


def test_the_last_try_is_left_to_the_user(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator = emulator_factory(sim_pin=PIN)
    emulator.sim.pin_tries = 1
    modem = modem_factory(emulator, pin=PIN)
    assert cpin(modem) == ["+CPIN: SIM PIN"]
    assert (emulator.sim.pin_tries, pins_sent(emulator)) == (1, 0)


def test_a_puk_is_never_guessed(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator = emulator_factory(sim_pin=PIN)
    emulator.sim.pin_tries = 0
    modem = modem_factory(emulator, pin=PIN)
    assert cpin(modem) == ["+CPIN: SIM PUK"]
    assert (emulator.sim.puk_tries, pins_sent(emulator)) == (10, 0)


def test_the_daemon_takes_the_pin_from_its_config(  # type: ignore[no-untyped-def]
    emulator_factory: EmulatorFactory, broker, bridge_factory, probe_factory
) -> None:
    emulator = emulator_factory(sim_pin=PIN)
    probe = probe_factory(broker)
    probe.subscribe("sim5360/bridge/info")
    bridge_factory(broker, emulator, modem=f'pin = "{PIN}"')
    assert emulator.sim.unlocked
    info = probe.wait_for("sim5360/bridge/info")
    assert info["config"]["modems"][0]["pin"] == "<redacted>"
