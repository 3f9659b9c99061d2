"""A command exchange as data (after Zephyr's modem_chat): the command, what its
answer looks like, when it is complete, and what it sends in data mode."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from bridge.at import DataBlock, FinalResult


class Verdict(Enum):
    """What a line after the final result means to the exchange waiting for it."""

    IGNORE = "ignore"  # not ours: only a URC
    KEEP = "keep"  # ours, more to come
    DONE = "done"  # ours, and the exchange is complete


@dataclass(frozen=True)
class Exchange:
    """One command and how to recognise its whole answer.

    `timeout` bounds the silence between two things the module says (a 50 MiB
    download is long but never quiet); `deadline`, when set, bounds the whole.
    `send_on` is the prompt (`>`, `>>`) or line (`+CFTPPUT: BEGIN`,
    `+CHTTPACT: REQUEST`) after which `payload` is written, chunk by chunk.
    `follow`, when set, keeps the exchange open after a final OK and judges each
    later line (`+SMTP: SUCCESS`, `+CFTPGET: 0`). `settle`, set with `follow`, is for
    firmware that may or may not add that line (V2.02 FTPS: `OK` then `+CFTPSLOGIN: 9`;
    V1.23: plain `OK`): a line `follow` completes on that came before OK completes the
    exchange at OK, and silence of `settle` seconds after OK completes it without one.
    `on_data` receives the
    length-framed blocks as they arrive, on the thread that runs the exchange.
    `cancel_prompt`, for a command that may open a `>` prompt nobody will fill (raw AT,
    `AT+CMGW=20`): ESC ends the prompt, and the exchange fails with `modem_error` once
    the module has answered; else the module would take every later command as text.
    """

    command: bytes
    info: tuple[str, ...] | None = ()
    timeout: float = 5.0
    deadline: float | None = None
    send_on: str | None = None
    payload: Iterable[bytes] | None = None
    follow: Callable[[str], Verdict] | None = None
    settle: float | None = None
    on_data: Callable[[DataBlock], None] | None = None
    name: str = field(default="")  # for logs; the command's name, never its parameters
    cancel_prompt: bool = False

    def label(self) -> str:
        if self.name:
            return self.name
        head = self.command.split(b"=", 1)[0].split(b"?", 1)[0].strip()
        return head.decode("ascii", "replace")


@dataclass
class Reply:
    """The whole answer: final result, information lines (and the lines `follow`
    kept), and the line that completed it after OK, if any. `pdus` maps the index
    of a `+CMGR:`/`+CMGL:` line in `lines` to the PDU line that came with it."""

    final: FinalResult
    lines: list[str] = field(default_factory=list)
    completion: str | None = None
    pdus: dict[int, str] = field(default_factory=dict)

    def with_pdus(self, prefix: str) -> list[tuple[str, str]]:
        """(value after `prefix`, PDU) for each line starting with `prefix` that
        carried a PDU: `[("3,0,,24", "0791…"), …]` for `+CMGL:`."""
        return [
            (line[len(prefix) :].strip(), self.pdus[i])
            for i, line in enumerate(self.lines)
            if line.startswith(prefix) and i in self.pdus
        ]

    def result(self, prefix: str) -> str | None:
        """The value of a command's own result line (`+CFTPSLOGIN:` -> `9`), whether it
        came before the final result or completed the exchange after it."""
        said = self.first(prefix)
        if said is None and self.completion is not None and self.completion.startswith(prefix):
            said = self.completion[len(prefix) :].strip()
        return said

    def first(self, prefix: str) -> str | None:
        """The value of the first line starting with `prefix` (`+CSQ:` -> `21,99`)."""
        for line in self.lines:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        return None
