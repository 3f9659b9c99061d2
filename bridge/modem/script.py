"""Multi-step sequences as data (after Zephyr's modem_chat scripts): a list of steps,
each an exchange with its abort matches, run in order by one small runner.

The module settings a service sends before its operation, the initialisation after
every boot and a session's opening and closing are such lists; the code that builds
them says what is sent, the runner how a refusal ends the sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bridge.modem.exchange import Exchange, Reply

Run = Callable[[Exchange], Reply]


@dataclass(frozen=True)
class Step:
    """One exchange of a script. It fails when the module does not answer OK, when a
    line of its answer starts with one of `abort` (`+POP3: SERVER ERROR` before OK), or,
    with `result` set, when its own `<name>: <value>` line says other than `result`
    (`+CFTPSLOGIN: 8`). `recover`, when set, is sent after a first refusal and the step
    tried once more (a stack or session another request left taken is released)."""

    exchange: Exchange
    abort: tuple[str, ...] = ()
    result: str | None = None
    recover: Exchange | None = None

    @property
    def name(self) -> str:
        """`+CFTPSERV` for AT+CFTPSERV: the prefix of the command's own result lines."""
        return self.exchange.label().removeprefix("AT")

    def refused(self, reply: Reply) -> bool:
        if not reply.final.ok or any(line.startswith(self.abort) for line in reply.lines):
            return True
        said = reply.first(f"{self.name}:")
        return self.result is not None and said is not None and said != self.result


Failure = Callable[[Step, Reply], Exception]


def run_script(run: Run, steps: Iterable[Step], failure: Failure) -> list[Reply]:
    """Run `steps` in order; the first refused one raises `failure(step, reply)`."""
    replies: list[Reply] = []
    for step in steps:
        reply = run(step.exchange)
        if step.refused(reply) and step.recover is not None:
            run(step.recover)  # its own answer does not matter: the retry's does
            reply = run(step.exchange)
        if step.refused(reply):
            raise failure(step, reply)
        replies.append(reply)
    return replies
