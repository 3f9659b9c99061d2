"""ServiceContext, the one way a service reaches the modem: a URC wait notices a
cancellation within 0.1 s, and cleanup() runs past cancellation and the deadline."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest

import bridge.services as package
from bridge.at import commands as at
from bridge.modem import Exchange
from bridge.services.errors import ServiceError
from tests.services.transcript import command, play, settings, wire


def test_a_urc_wait_ends_within_a_tenth_of_a_second_of_the_cancel(tmp_path: Path) -> None:
    with play([], settings(tmp_path)) as transcript:
        ctx = transcript.ctx
        outcome: list[BaseException] = []
        cancelled_at: list[float] = []

        def wait() -> None:
            with ctx.urc_waiter(lambda urc: urc.name == "+SMTP") as waiter:
                try:
                    ctx.wait_urc(waiter, 60.0)
                except ServiceError as exc:
                    outcome.append(exc)
                    cancelled_at.append(time.monotonic())

        waiting = threading.Thread(target=wait)
        waiting.start()
        time.sleep(0.2)  # the wait itself is what is measured: it must be under way
        cancel = time.monotonic()
        ctx.cancelled.set()
        waiting.join(5)
        assert [getattr(e, "code", None) for e in outcome] == ["cancelled"]
        assert cancelled_at[0] - cancel < 0.1


def test_a_urc_wait_times_out_as_timeout(tmp_path: Path) -> None:
    with play([], settings(tmp_path)) as transcript:
        ctx = transcript.ctx
        with ctx.urc_waiter(lambda urc: True) as waiter, pytest.raises(ServiceError) as caught:
            ctx.wait_urc(waiter, 0.2)
        assert caught.value.code == "timeout"


def test_cleanup_runs_after_the_cancel_and_keeps_the_request_error(tmp_path: Path) -> None:
    turns = [(command("AT+POP3STOP"), wire("ERROR")), (command("AT+POP3SRV"), wire("OK"))]
    with play(turns, settings(tmp_path)) as transcript:
        ctx = transcript.ctx
        ctx.cancelled.set()
        ctx.started -= 3600  # far past request_timeout too
        with pytest.raises(ServiceError) as refused:
            ctx.run(Exchange(at.execute("+POP3STOP")))
        assert refused.value.code == "cancelled"  # the request's own context refuses
        with ctx.cleanup() as quiet:
            quiet.check(Exchange(at.execute("+POP3STOP")))  # ERROR: logged, not raised
            raise AssertionError("not reached: check raised")
        with ctx.cleanup() as quiet:
            assert quiet.run(Exchange(at.execute("+POP3SRV"))).final.ok
        transcript.assert_played()


def test_no_service_reaches_around_the_context() -> None:
    """Services go through ServiceContext: none reads `ctx.modem` or the engine."""
    offenders: list[str] = []
    for path in sorted(Path(package.__path__[0]).glob("*.py")):
        if path.name == "base.py":  # the context itself
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("modem", "engine"):
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "bridge.modem.engine":
                offenders.append(f"{path.name}:{node.lineno} imports the engine")
    assert offenders == []
