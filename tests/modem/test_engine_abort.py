"""The engine's cancel (shutdown) and settle rules against a port the test feeds by hand:
a cancel never leaves the module waiting for data it was promised, and a result line
that may or may not follow OK is waited for only `settle` seconds."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import pytest

from bridge.modem.engine import Engine
from bridge.modem.errors import ModemError
from bridge.modem.exchange import Exchange, Reply, Verdict
from tests.services.transcript import ScriptedPort

CANCEL = ModemError("cancelled", "the bridge is shutting down")


class HandFedPort(ScriptedPort):
    """A transport whose module says only what the test feeds it."""

    def __init__(self) -> None:
        super().__init__([])

    def feed(self, data: bytes) -> None:
        self.say(data)

    def wait_written(self, data: bytes, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if data in bytes(self.written):
                return
            assert time.monotonic() < deadline, (data, bytes(self.written))
            time.sleep(0.005)


@pytest.fixture
def port() -> Iterator[tuple[Engine, HandFedPort]]:
    fed = HandFedPort()
    engine = Engine("hand-fed")
    engine.attach(fed)
    yield engine, fed
    engine.detach("test over")


def _in_thread(engine: Engine, exchange: Exchange) -> queue.SimpleQueue[Reply | ModemError]:
    out: queue.SimpleQueue[Reply | ModemError] = queue.SimpleQueue()

    def run() -> None:
        try:
            out.put(engine.run(exchange))
        except ModemError as exc:
            out.put(exc)

    threading.Thread(target=run, daemon=True).start()
    return out


def _piece(follow: bool = False) -> Exchange:
    return Exchange(
        b'AT+CFTPSPUT="/a",4\r',
        timeout=2.0,
        send_on=">",
        payload=[b"data"],
        follow=(lambda line: Verdict.DONE) if follow else None,
        name="AT+CFTPSPUT",
    )


def test_a_cancel_before_the_prompt_still_sends_the_promised_data(
    port: tuple[Engine, HandFedPort],
) -> None:
    engine, fed = port
    result = _in_thread(engine, _piece())
    fed.wait_written(b'AT+CFTPSPUT="/a",4\r')
    engine.abort(CANCEL)
    fed.feed(b"\r\n>")
    fed.wait_written(b"data")  # the module gets its 4 bytes, not the next command
    fed.feed(b"\r\nOK\r\n")
    reply = result.get(timeout=2)
    assert isinstance(reply, Reply) and reply.final.ok, reply


def test_a_cancel_in_the_data_phase_ends_what_follows_the_final_result(
    port: tuple[Engine, HandFedPort],
) -> None:
    engine, fed = port
    result = _in_thread(engine, _piece(follow=True))
    fed.wait_written(b'AT+CFTPSPUT="/a",4\r')
    engine.abort(CANCEL)
    fed.feed(b"\r\n>")
    fed.wait_written(b"data")
    fed.feed(b"\r\nOK\r\n")  # a follow phase would wait on: the cancel ends it here
    error = result.get(timeout=2)
    assert isinstance(error, ModemError) and error.code == "cancelled", error


def test_a_cancel_without_a_data_phase_ends_the_exchange_at_once(
    port: tuple[Engine, HandFedPort],
) -> None:
    engine, fed = port
    result = _in_thread(engine, Exchange(b"AT+CFTPSGET\r", timeout=5.0, name="AT+CFTPSGET"))
    fed.wait_written(b"AT+CFTPSGET\r")
    started = time.monotonic()
    engine.abort(CANCEL)
    error = result.get(timeout=2)
    assert isinstance(error, ModemError) and error.code == "cancelled", error
    assert time.monotonic() - started < 0.5


def test_an_abort_for_an_exchange_that_ended_leaves_the_next_one_alone(
    port: tuple[Engine, HandFedPort],
) -> None:
    engine, fed = port
    first = _in_thread(engine, Exchange(b"AT+SMTPSEND\r", timeout=5.0, name="AT+SMTPSEND"))
    fed.wait_written(b"AT+SMTPSEND\r")
    token = engine.in_flight()
    fed.feed(b"\r\nOK\r\n")
    assert isinstance(first.get(timeout=2), Reply)
    second = _in_thread(engine, Exchange(b"AT+SMTPSTOP\r", timeout=5.0, name="AT+SMTPSTOP"))
    fed.wait_written(b"AT+SMTPSTOP\r")
    engine.abort(CANCEL, token)  # meant for the send: the stop begun since runs on
    engine.abort(CANCEL, object())
    fed.feed(b"\r\nOK\r\n")
    reply = second.get(timeout=2)
    assert isinstance(reply, Reply) and reply.final.ok, reply
    third = _in_thread(engine, Exchange(b"AT+CFTPSGET\r", timeout=5.0, name="AT+CFTPSGET"))
    fed.wait_written(b"AT+CFTPSGET\r")
    engine.abort(CANCEL, engine.in_flight())  # its own token does end it
    error = third.get(timeout=2)
    assert isinstance(error, ModemError) and error.code == "cancelled", error


def _settling(settle: float) -> Exchange:
    def follow(line: str) -> Verdict:
        return Verdict.DONE if line.startswith("+CFTPSSTART:") else Verdict.IGNORE

    return Exchange(
        b"AT+CFTPSSTART\r",
        info=("+CFTPSSTART",),
        timeout=5.0,
        follow=follow,
        settle=settle,
        name="AT+CFTPSSTART",
    )


def test_settle_ends_a_plain_ok_after_its_window_and_takes_a_line_within_it(
    port: tuple[Engine, HandFedPort],
) -> None:
    engine, fed = port
    result = _in_thread(engine, _settling(0.2))
    fed.wait_written(b"AT+CFTPSSTART\r")
    started = time.monotonic()
    fed.feed(b"\r\nOK\r\n")
    plain = result.get(timeout=2)
    waited = time.monotonic() - started
    assert isinstance(plain, Reply) and plain.final.ok and plain.completion is None, plain
    assert 0.2 <= waited < 1.0, waited

    result = _in_thread(engine, _settling(2.0))
    fed.wait_written(b"AT+CFTPSSTART\r" * 2)
    fed.feed(b"\r\nOK\r\n")
    fed.feed(b"\r\n+CFTPSSTART: 3\r\n")
    reply = result.get(timeout=2)
    assert isinstance(reply, Reply) and reply.result("+CFTPSSTART:") == "3", reply
