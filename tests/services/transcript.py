"""A module that answers from a transcript: the seed's examples as (what the bridge writes,
what the module says) pairs, under the real engine, with no broker and no pty.

`ScriptedPort` stands where the serial port would: each write is matched against the
next expected bytes (a regular expression over what has been written, so a payload
such as an HTTP request can be matched loosely); on a match the module's answer is
read back. `context()` is a ServiceContext over it, for calling actions directly.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.at import Urc
from bridge.config import ModemSettings, Settings
from bridge.files import FilesArea
from bridge.modem.engine import Engine, UrcWaiter
from bridge.modem.exchange import Exchange, Reply
from bridge.modem.initialise import Identity
from bridge.modem.modem import ModemState, StateChange
from bridge.services.base import ServiceContext

Turn = tuple[bytes, bytes]
"""(regular expression the bridge's bytes must match, the module's answer)."""


def command(line: str) -> bytes:
    """The pattern of one command line exactly as written."""
    return re.escape(line.encode() + b"\r")


# the engine's probe: ESC (it ends a `>` prompt the module may have been left at), then AT
PROBE = re.escape(b"\x1bAT\r")


def wire(*lines: str) -> bytes:
    """Module framing: each response line as \\r\\n<line>\\r\\n."""
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines)


def block(name: str, payload: bytes) -> bytes:
    """A length-framed block: `<name>: DATA,<len>` and the bytes."""
    return f"\r\n{name}: DATA,{len(payload)}\r\n".encode() + payload


class ScriptedPort:
    """The transport the engine reads and writes (duck-typed SerialTransport)."""

    def __init__(self, turns: list[Turn]) -> None:
        self.turns = deque(turns)
        self.written = bytearray()
        self.unexpected: bytes | None = None
        # the module's side: answers go into a pipe the engine polls like a serial port
        self._answers, self._module = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def write(self, data: bytes) -> None:
        self.written += data
        while self.turns:
            expected, answer = self.turns[0]
            match = re.match(expected, bytes(self.written), re.DOTALL)
            if match is None:
                break
            del self.written[: match.end()]
            self.turns.popleft()
            if answer:
                self.say(answer)

    def say(self, answer: bytes) -> None:
        """The module sends `answer`."""
        os.write(self._module, answer)

    def fileno(self) -> int:
        return self._answers

    def read_now(self) -> bytes:
        try:
            return os.read(self._answers, 65536)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        os.close(self._module)
        os.close(self._answers)

    def done(self) -> bool:
        """Every turn played and nothing written beyond them."""
        return not self.turns and not self.written


class ScriptedModem:
    """A ModemPort over the real engine and a ScriptedPort."""

    id = "modem"

    def __init__(self, port: ScriptedPort) -> None:
        self.port = port
        self.engine = Engine("transcript")
        self.engine.attach(port)
        self.identity: Identity | None = Identity("861234567890123", "SIM5360E", "V2.02")
        self.events: list[tuple[str, dict[str, Any]]] = []

    @property
    def state(self) -> StateChange:
        return StateChange(ModemState.ONLINE, datetime.now(UTC), None)

    def run(self, exchange: Exchange, wait_online: float = 0.0) -> Reply:
        return self.engine.run(exchange)

    def urc_waiter(self, predicate: Callable[[Urc], bool]) -> AbstractContextManager[UrcWaiter]:
        return self.engine.urc_waiter(predicate)

    def emit_event(self, event_type: str, **fields: Any) -> None:
        self.events.append((event_type, fields))

    def restart(self, timeout: float) -> bool:
        raise AssertionError("no restart in a transcript")

    def wait_quiet(self, quiet: float, bound: float) -> bool:
        """As Modem.wait_quiet: the real engine watches the scripted module's silence."""
        return self.engine.wait_quiet(quiet, bound)

    def ensure_sms(self) -> str | None:
        return None  # a transcript's module is set up for SMS

    def close(self) -> None:
        self.engine.detach("transcript over")


def settings(files: Path, **sections: dict[str, Any]) -> Settings:
    return Settings.model_validate(
        {
            "modems": [{"id": "modem", "port": "/dev/null", "request_timeout": 5}],
            "files": {"dir": str(files), "state_dir": str(files / "state")},
            **sections,
        }
    )


class Transcript:
    """One transcript played against one action: `ctx` to call it with."""

    def __init__(self, turns: list[Turn], config: Settings) -> None:
        self.port = ScriptedPort(turns)
        self.modem = ScriptedModem(self.port)
        self.stages: list[str] = []
        ms: ModemSettings = config.modems[0]
        config.files.dir.mkdir(parents=True, exist_ok=True)
        self.ctx = ServiceContext(
            modem=self.modem,
            settings=config,
            modem_settings=ms,
            files=FilesArea(config.files.dir),
            progress=lambda stage, done, total: self.stages.append(stage),
            cancelled=threading.Event(),
            started=time.monotonic(),
        )

    def assert_played(self) -> None:
        assert self.port.done(), (list(self.port.turns)[:1], bytes(self.port.written))


@contextmanager
def play(turns: list[Turn], config: Settings) -> Iterator[Transcript]:
    """The transcript, its engine detached afterwards."""
    transcript = Transcript(turns, config)
    try:
        yield transcript
    finally:
        transcript.modem.close()
