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
from bridge.modem.errors import ModemError
from bridge.modem.exchange import Exchange, Reply
from tests.modem.test_engine_abort import HandFedPort


@pytest.fixture
def port() -> Iterator[tuple[Engine, HandFedPort]]:
    fed = HandFedPort()
    engine = Engine("reading")
    engine.attach(fed)
    yield engine, fed
    engine.detach("test over")


def _in_thread(engine: Engine, exchange: Exchange) -> queue.SimpleQueue[Reply | ModemError]:
    """Run `exchange` on a thread named "caller"; its reply (or error) comes out."""
    out: queue.SimpleQueue[Reply | ModemError] = queue.SimpleQueue()

    def run() -> None:
        try:
            out.put(engine.run(exchange))
        except ModemError as exc:
            out.put(exc)

    threading.Thread(target=run, name="caller", daemon=True).start()
    return out


def _ok(result: queue.SimpleQueue[Reply | ModemError]) -> None:
    reply = result.get(timeout=5)
    assert isinstance(reply, Reply) and reply.final.ok, reply


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
    result = _in_thread(engine, exchange)
    fed.wait_written(b'AT+CFTRANTX="c:/a"\r')  # the module answers what it was asked
    fed.say(b'\r\n+CFTRANTX: DATA,4\r\nabcd\r\n+CMTI: "SM",1\r\n\r\nOK\r\n')
    _ok(result)
    assert readers == ["caller"]
    assert urcs.get(timeout=2) == ('+CMTI: "SM",1', "caller")


def test_between_commands_the_reader_thread_reads(port: tuple[Engine, HandFedPort]) -> None:
    engine, fed = port
    urcs = _urcs(engine)
    result = _in_thread(engine, Exchange(b"AT\r"))
    fed.wait_written(b"AT\r")
    fed.say(b"\r\nOK\r\n")
    _ok(result)
    fed.say(b'\r\n+CMTI: "SM",2\r\n')
    assert urcs.get(timeout=2) == ('+CMTI: "SM",2', "modem-reading-reader")


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
    try:
        result = _in_thread(engine, Exchange(b"AT+SLOW\r", timeout=5.0))
        fed.wait_written(b"AT+SLOW\r")
        threading.Event().wait(STEP_ASIDE * 20)  # the command lasts: the reader waits for its end
        fed.say(b"\r\nOK\r\n")
        _ok(result)
        fed.say(b'\r\n+CMTI: "SM",3\r\n')
        assert urcs.get(timeout=5)[0] == '+CMTI: "SM",3'
    finally:
        engine.detach("test over")
