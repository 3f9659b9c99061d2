"""The SIM's PIN (`[[modems]] pin`): entered when the SIM asks, with care for its tries."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from bridge.at import Urc
from bridge.at import commands as at
from bridge.emulator.api import Command, Host
from bridge.emulator.core import Emulator
from bridge.modem import Exchange, Modem, ModemState, simlock
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


@pytest.mark.parametrize(("tries", "asks"), [(1, "SIM PIN"), (0, "SIM PUK")])
def test_the_last_try_and_the_puk_are_left_to_the_user(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory, tries: int, asks: str
) -> None:
    emulator = emulator_factory(sim_pin=PIN)
    emulator.sim.pin_tries = tries
    modem = modem_factory(emulator, pin=PIN)
    assert cpin(modem) == [f"+CPIN: {asks}"]
    assert (emulator.sim.pin_tries, emulator.sim.puk_tries, pins_sent(emulator)) == (tries, 10, 0)


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


def test_a_refused_pin_is_remembered_across_restarts(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory, tmp_path: Path
) -> None:
    emulator = emulator_factory(sim_pin=PIN)
    modem_factory(emulator, pin="0000", state_dir=tmp_path).stop()  # refused: 2 tries left
    assert "0000" not in (tmp_path / "sim-pin-modem.json").read_text()  # only its hash
    modem = modem_factory(emulator, pin="0000", state_dir=tmp_path)  # the bridge restarted
    assert cpin(modem) == ["+CPIN: SIM PIN"]
    assert (emulator.sim.pin_tries, pins_sent(emulator)) == (2, 1)
    modem.stop()
    modem_factory(emulator, pin=PIN, state_dir=tmp_path)  # the config corrected
    assert emulator.sim.unlocked


def test_no_pin_while_the_tries_left_are_unknown(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator = emulator_factory(sim_pin=PIN)
    emulator.add_command("+SPIC", lambda cmd, host: host.error())  # firmware without it
    modem = modem_factory(emulator, pin=PIN)
    assert cpin(modem) == ["+CPIN: SIM PIN"]
    assert pins_sent(emulator) == 0


def test_a_sim_that_asks_again_gets_the_pin_again(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator = emulator_factory(sim_pin=PIN)
    modem = modem_factory(emulator, pin=PIN)
    ready = threading.Event()

    def heard(urc: Urc) -> None:
        if urc.value == "READY":
            ready.set()

    modem.add_urc_listener(heard, "+CPIN")
    emulator.sim.unlocked = False  # the SIM reset on its own and says so
    emulator.faults.inject_urc("+CPIN: SIM PIN")
    assert ready.wait(10), "the PIN was not entered again"
    assert emulator.sim.unlocked and pins_sent(emulator) == 2


def test_a_pin_whose_answer_never_came_is_not_entered_again(
    emulator_factory: EmulatorFactory,
    modem_factory: ModemFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It may have been refused: the SIM's try is gone either way."""
    monkeypatch.setattr(simlock, "ENTRY_TIMEOUT", 0.5)
    emulator = emulator_factory(sim_pin=PIN)
    answer = emulator.general.commands()["+CPIN"]

    def silent_on_entry(cmd: Command, host: Host) -> None:
        if cmd.form != "write":
            answer(cmd, host)

    emulator.add_command("+CPIN", silent_on_entry)
    modem = modem_factory(emulator, pin=PIN)  # the timeout failed one initialisation
    assert cpin(modem) == ["+CPIN: SIM PIN"]
    assert pins_sent(emulator) == 1
