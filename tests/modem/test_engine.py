"""The engine against the emulator on a real pty: exchanges, data modes, URC routing,
late answers."""

from __future__ import annotations

import hashlib
import os
import queue
import threading

import pytest

from bridge.at import DataBlock, Urc
from bridge.at import commands as at
from bridge.emulator.core import Emulator
from bridge.modem import Exchange, ModemError, Verdict
from tests.fixtures.modem import ModemFactory


def collect_urcs(modem_urcs: list[Urc]) -> tuple[list[Urc], threading.Lock]:
    return modem_urcs, threading.Lock()


def download(modem_run, path: str) -> tuple[bytes, list[str]]:  # type: ignore[no-untyped-def]
    blocks: list[bytes] = []

    def sink(block: DataBlock) -> None:
        blocks.append(block.payload)

    reply = modem_run(
        Exchange(
            at.write("+CFTRANTX", at.path(path, field="path")),
            info=("+CFTRANTX",),
            timeout=10,
            on_data=sink,
        )
    )
    assert reply.final.ok, reply
    return b"".join(blocks), reply.lines


def test_simple_exchanges(emulator_factory, modem_factory: ModemFactory) -> None:  # type: ignore[no-untyped-def]
    modem = modem_factory(emulator_factory())
    reply = modem.run(Exchange(at.execute("+CSQ"), info=("+CSQ",)))
    assert reply.final.ok and reply.first("+CSQ:") is not None
    assert modem.identity is not None and modem.identity.model == "SIMCOM_SIM5360E"
    bad = modem.run(Exchange(b"AT+NOSUCHTHING\r"))
    assert not bad.final.ok


def test_upload_with_prompt_then_download_with_blocks(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    data = bytes(range(256)) * 300 + b"\x1a\x03\r\nOK\r\n"
    reply = modem.run(
        Exchange(
            at.write(
                "+CFTRANRX",
                at.path("C:/up.bin", field="path"),
                at.integer(len(data), field="len", low=0, high=10**9),
            ),
            send_on=">",
            payload=[data[i : i + 1000] for i in range(0, len(data), 1000)],
            timeout=10,
        )
    )
    assert reply.final.ok, reply
    assert (emulator.root / "C" / "up.bin").read_bytes() == data
    got, lines = download(modem.run, "C:/up.bin")
    assert got == data
    assert "+CFTRANTX: 0" in lines


def test_urcs_at_every_point_reach_listeners_and_change_nothing(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    seen: queue.SimpleQueue[Urc] = queue.SimpleQueue()
    modem.add_urc_listener(seen.put)
    payload = os.urandom(50_000)
    (emulator.root / "C" / "big.bin").write_bytes(payload)

    emulator.faults.noise_every(1, "+CREG: 1")  # after every line: info, results, headers' ends
    emulator.faults.noise_after_prompt('+CMTI: "SM",1')
    try:
        got, _ = download(modem.run, "C:/big.bin")
        up = modem.run(
            Exchange(
                at.write(
                    "+CFTRANRX",
                    at.path("C:/copy.bin", field="path"),
                    at.integer(len(payload), field="len", low=0, high=10**9),
                ),
                send_on=">",
                payload=[payload],
                timeout=10,
            )
        )
        csq = modem.run(Exchange(at.execute("+CSQ"), info=("+CSQ",)))
    finally:
        emulator.faults.clear_noise()
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    assert up.final.ok and (emulator.root / "C" / "copy.bin").read_bytes() == payload
    assert csq.final.ok and len(csq.lines) == 1 and csq.lines[0].startswith("+CSQ: ")
    names = []
    while not seen.empty():
        names.append(seen.get().text)
    assert names.count("+CREG: 1") >= 5
    assert '+CMTI: "SM",1' in names


def test_follow_keeps_the_exchange_open_after_ok(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    (emulator.root / "C" / "f.txt").write_bytes(b"hello")
    blocks: list[bytes] = []
    # CFTRANTX ends with +CFTRANTX: 0 then OK; judged by follow it completes on OK anyway:
    reply = modem.run(
        Exchange(
            at.write("+CFTRANTX", at.path("C:/f.txt", field="path")),
            info=("+CFTRANTX",),
            on_data=lambda b: blocks.append(b.payload),
        )
    )
    assert reply.final.ok and b"".join(blocks) == b"hello"
    # A URC-completed exchange: wait after OK for a line the emulator injects.
    emulator.faults.noise_every(1, "+CTEST: DONE", times=1)
    reply = modem.run(
        Exchange(
            at.execute(""),
            follow=lambda line: Verdict.DONE if line == "+CTEST: DONE" else Verdict.IGNORE,
            timeout=5,
        )
    )
    assert reply.completion == "+CTEST: DONE"


def test_a_late_answer_does_not_corrupt_the_next_command(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator, health_interval=60)
    emulator.faults.throttle(60)  # ATI's ~150 bytes take ~2.5 s
    with pytest.raises(ModemError) as exc:
        modem.run(Exchange(at.execute("I"), info=None, deadline=0.3))
    assert exc.value.code == "timeout"
    emulator.faults.throttle(None)
    reply = modem.run(Exchange(at.execute("+CGMR"), info=None, timeout=10))
    assert reply.final.ok
    assert len(reply.lines) == 1 and "Manufacturer" not in reply.lines[0], reply.lines
    assert modem.engine.stale_results >= 1
