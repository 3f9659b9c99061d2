"""The supervisor against the emulator's faults: unplug, reboot, hang, garbage."""

from __future__ import annotations

import os
import queue
import threading
import time

import pytest

from bridge.at import commands as at
from bridge.emulator.core import Emulator
from bridge.modem import Exchange, Modem, ModemError, ModemState
from bridge.modem.modem import StateChange
from tests.fixtures.modem import ModemFactory


def csq(modem: Modem, wait_online: float = 0.0) -> bool:
    return modem.run(Exchange(at.execute("+CSQ"), info=("+CSQ",)), wait_online).final.ok


def watch_states(modem: Modem) -> queue.SimpleQueue[StateChange]:
    changes: queue.SimpleQueue[StateChange] = queue.SimpleQueue()
    modem.add_state_listener(changes.put)
    return changes


def wait_state(
    changes: queue.SimpleQueue[StateChange], state: ModemState, timeout: float
) -> StateChange:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {state.value} within {timeout}s")
        change = changes.get(timeout=left)
        if change.state is state:
            return change


def start_transfer(
    modem: Modem, emulator: Emulator, size: int
) -> tuple[threading.Thread, list[BaseException]]:
    """A CFTRANTX download of `size` bytes on a slow line, in a thread; its error is listed."""
    (emulator.root / "C" / "t.bin").write_bytes(os.urandom(size))
    errors: list[BaseException] = []
    started = threading.Event()

    def run() -> None:
        try:
            modem.run(
                Exchange(
                    at.write("+CFTRANTX", at.path("C:/t.bin", field="path")),
                    info=("+CFTRANTX",),
                    timeout=10,
                    on_data=lambda _b: started.set(),
                )
            )
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(5), "the transfer did not start"
    return thread, errors


def test_unplug_twenty_times_idle_and_during_transfers(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    changes = watch_states(modem)
    for i in range(20):
        during_transfer = i % 2 == 1
        if during_transfer:
            emulator.faults.throttle(20_000)
            thread, errors = start_transfer(modem, emulator, 200_000)
        emulator.faults.unplug()
        wait_state(changes, ModemState.RECOVERING, 5)
        if during_transfer:
            thread.join(10)
            assert not thread.is_alive()
            assert len(errors) == 1 and isinstance(errors[0], ModemError), errors
            assert errors[0].code == "modem_offline"
            emulator.faults.throttle(None)
        back = time.monotonic()
        emulator.faults.replug()
        wait_state(changes, ModemState.ONLINE, 5)
        assert time.monotonic() - back < 2.0, f"round {i}: online again only after 2 s"
        assert csq(modem)


def test_reboot_mid_transfer(emulator_factory, modem_factory: ModemFactory) -> None:  # type: ignore[no-untyped-def]
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    changes = watch_states(modem)
    emulator.faults.throttle(20_000)
    thread, errors = start_transfer(modem, emulator, 200_000)
    emulator.faults.reboot()
    thread.join(10)
    emulator.faults.throttle(None)
    assert len(errors) == 1 and isinstance(errors[0], ModemError)
    assert errors[0].code == "modem_rebooted"
    wait_state(changes, ModemState.ONLINE, 10)
    assert csq(modem)
    # echo is back on after a reboot: initialisation turned it off again
    reply = modem.run(Exchange(at.execute("+CGMR"), info=None))
    assert reply.lines == [f"+CGMR: {modem.identity.revision}"] or reply.lines == [  # type: ignore[union-attr]
        modem.identity.revision  # type: ignore[union-attr]
    ]


def test_hang_for_thirty_seconds_then_recover(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator, offline_after=60.0)
    changes = watch_states(modem)
    emulator.faults.hang(30)
    with pytest.raises(ModemError) as exc:
        modem.run(Exchange(at.execute("+CSQ"), info=("+CSQ",), timeout=1.0))
    assert exc.value.code == "timeout"
    trouble = wait_state(changes, ModemState.RECOVERING, 15)
    assert trouble.error
    wait_state(changes, ModemState.ONLINE, 45)
    assert csq(modem)


def test_hang_for_good_ends_offline_with_idle_cpu(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator, offline_after=2.0, backoff_max=1.0)
    changes = watch_states(modem)
    emulator.faults.hang(None)
    offline = wait_state(changes, ModemState.OFFLINE, 20)
    assert offline.error
    cpu = time.process_time()
    wall = time.monotonic()
    time.sleep(3)  # measuring idleness needs a window of wall time
    used = (time.process_time() - cpu) / (time.monotonic() - wall)
    assert used < 0.15, f"{used:.0%} CPU while the module is hung"
    with pytest.raises(ModemError) as exc:
        csq(modem, wait_online=0.5)
    assert exc.value.code == "modem_offline"
    emulator.faults.unhang()
    wait_state(changes, ModemState.ONLINE, 15)
    assert csq(modem)


def test_a_mebibyte_of_garbage_between_commands(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    assert csq(modem)
    garbage = bytearray(bytes(b for b in os.urandom(1 << 20 + 1) if b not in b"\r\n")[: 1 << 20])
    for i in range(0, len(garbage), 997):  # line ends too, so it is lines of junk
        garbage[i] = 0x0A
    emulator.faults.inject(bytes(garbage))
    for _ in range(5):
        assert csq(modem, wait_online=5)
    assert modem.state.state is ModemState.ONLINE


def events_of(modem: Modem) -> queue.SimpleQueue[str]:
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    modem.add_event_listener(lambda event_type, **fields: events.put(event_type))
    return events


def back_with_one_reboot_reported(
    modem: Modem,
    changes: queue.SimpleQueue[StateChange],
    events: queue.SimpleQueue[str],
    timeout: float,
) -> None:
    wait_state(changes, ModemState.ONLINE, timeout)
    assert events.get(timeout=5) == "modem_rebooted"
    assert csq(modem)  # the supervisor is past the initialisation that could report it
    assert events.empty(), "reported twice"


def test_a_power_cycle_of_a_hung_module_is_reported_as_one_reboot(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator, offline_after=1.0, backoff_max=0.5)
    changes, events = watch_states(modem), events_of(modem)
    emulator.faults.hang(None)
    wait_state(changes, ModemState.OFFLINE, 20)
    emulator.faults.unplug()
    emulator.faults.replug(power_cycle=True)
    back_with_one_reboot_reported(modem, changes, events, 15)


def test_a_replug_without_a_power_cycle_is_no_reboot(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    changes, events = watch_states(modem), events_of(modem)
    emulator.faults.unplug()
    wait_state(changes, ModemState.RECOVERING, 5)
    emulator.faults.replug()
    wait_state(changes, ModemState.ONLINE, 5)
    assert csq(modem)
    assert events.empty()


def test_a_reboot_on_its_own_is_reported_once(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    changes, events = watch_states(modem), events_of(modem)
    emulator.faults.reboot()
    back_with_one_reboot_reported(modem, changes, events, 10)


def test_a_restart_of_a_stuck_module_waits_for_its_recovery(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator, offline_after=30.0)
    events = events_of(modem)
    emulator.faults.hang(4)
    started = time.monotonic()
    booted = modem.restart(20)  # the hang ends; the supervisor brings it back
    assert 4 <= time.monotonic() - started < 20
    assert csq(modem)
    assert not booted  # the reset went unheard: nothing for the caller to report
    assert events.empty()
    assert modem.restart(20)  # one heard: booted, and the caller's to report
    assert csq(modem)
    assert events.empty()


def test_a_restart_that_never_comes_back_answers_at_its_timeout(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator, offline_after=30.0)
    emulator.faults.hang(None)
    started = time.monotonic()
    with pytest.raises(ModemError) as exc:
        modem.restart(3)
    assert exc.value.code == "modem_offline"
    assert 3 <= time.monotonic() - started < 5


def test_a_reboot_whose_boot_urcs_were_missed_is_still_reported(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    """Over USB the port vanishes while the module boots, and its START may go out
    before the bridge has the port again: the echo the reboot turned back on tells."""
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    changes, events = watch_states(modem), events_of(modem)
    emulator.faults.unplug()
    wait_state(changes, ModemState.RECOVERING, 5)
    emulator.faults.reboot()  # its boot URCs go nowhere
    emulator.faults.replug()
    back_with_one_reboot_reported(modem, changes, events, 10)
