"""Who reads the port: the caller of a command reads its answer itself (a synchronous
loop's speed, no thread hand-off per command); between commands the reader thread does,
so a URC is seen at once, also right after a long command ends."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pytest

import bridge.modem.engine as engine_module
from bridge.at import DataBlock
from bridge.modem.engine import STEP_ASIDE, Engine
from bridge.modem.exchange import Exchange
from tests.modem.test_engine_abort import HandFedPort, _in_thread


@pytest.fixture
def port() -> Iterator[tuple[Engine, HandFedPort]]:
    fed = HandFedPort()
    engine = Engine("reading")
    engine.attach(fed)
    yield engine, fed
    engine.detach("test over")


def _urcs(engine: Engine) -> queue.SimpleQueue[tuple[str, str]]:
    seen: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
    engine.add_urc_listener(lambda urc: seen.put((urc.text, threading.current_thread().name)))
    return seen


def test_the_caller_reads_its_answer_and_the_urcs_that_come_with_it(
    port: tuple[Engine, HandFedPort],
) -> None:
    engine, fed = port
    urcs = _urcs(engine)
    readers: list[str] = []

    def sink(block: DataBlock) -> None:
        readers.append(threading.current_thread().name)

    exchange = Exchange(b'AT+CFTRANTX="c:/a"\r', info=("+CFTRANTX",), on_data=sink)
    fed.say(b'\r\n+CFTRANTX: DATA,4\r\nabcd\r\n+CMTI: "SM",1\r\n\r\nOK\r\n')
    reply = engine.run(exchange)  # the answer is waiting: this thread reads it
    assert reply.final.ok
    me = threading.current_thread().name
    assert readers == [me]
    assert urcs.get(timeout=2) == ('+CMTI: "SM",1', me)


def test_between_commands_the_reader_thread_reads(port: tuple[Engine, HandFedPort]) -> None:
    engine, fed = port
    urcs = _urcs(engine)
    assert engine.run(_at(fed)).final.ok
    fed.say(b'\r\n+CMTI: "SM",2\r\n')
    text, thread = urcs.get(timeout=2)
    assert text == '+CMTI: "SM",2' and thread == "modem-reading-reader"


def test_a_urc_right_after_a_long_command_is_read_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command longer than STEP_ASIDE: the reader waits for its end rather than look
    again later (here only every 30 s), so the URC after it is routed at once."""
    monkeypatch.setattr(engine_module, "LOOK_UP", 30.0)
    fed = HandFedPort()
    engine = Engine("reading")
    engine.attach(fed)
    urcs = _urcs(engine)
    result = _in_thread(engine, Exchange(b"AT+SLOW\r", timeout=5.0))
    fed.wait_written(b"AT+SLOW\r")
    threading.Event().wait(STEP_ASIDE * 20)  # the command lasts: the reader waits for its end
    fed.say(b"\r\nOK\r\n")
    assert result.get(timeout=2).final.ok  # type: ignore[union-attr]
    fed.say(b'\r\n+CMTI: "SM",3\r\n')
    try:
        assert urcs.get(timeout=5)[0] == '+CMTI: "SM",3'
    finally:
        engine.detach("test over")


def _at(fed: HandFedPort) -> Exchange:
    fed.say(b"\r\nOK\r\n")
    return Exchange(b"AT\r")
