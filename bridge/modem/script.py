"""Multi-step sequences as data (after Zephyr's modem_chat scripts): a list of steps,
each an exchange with its abort matches, run in order by one small runner.

The module settings a service sends before its operation, the initialisation after
every boot and a session's opening and closing are such lists; the code that builds
them says what is sent, the runner how a refusal ends the sequence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bridge.modem.exchange import Exchange, Reply, Verdict

Run = Callable[[Exchange], Reply]


@dataclass(frozen=True)
class Step:
    """One exchange of a script. It fails when the module does not answer OK, when a
    line of its answer starts with one of `abort` (`+POP3: SERVER ERROR` before OK), or,
    with `result` set, when its own `<name>: <value>` line says other than `result`
    (`+CFTPSLOGIN: 8`). `result_within`, when set, is how long that line may still come
    after OK (V2.02 FTPS: `OK`, then `+CFTPSLOGIN: 9`; V1.23 ends at the plain `OK`).
    `recover`, when set, is sent after a first refusal and the step tried once more (a
    stack or session another request left taken is released)."""

    exchange: Exchange
    abort: tuple[str, ...] = ()
    result: str | None = None
    recover: Exchange | None = None
    result_within: float | None = None

    @property
    def name(self) -> str:
        """`+CFTPSERV` for AT+CFTPSERV: the prefix of the command's own result lines."""
        return self.exchange.label().removeprefix("AT")

    def sent(self) -> Exchange:
        """The exchange as run: waiting up to `result_within` after OK for its result."""
        if self.result_within is None:
            return self.exchange
        return result_after_ok(self.exchange, self.result_within)

    def said(self, reply: Reply) -> str | None:
        """The value of the command's own result line, before or after its OK."""
        return reply.result(f"{self.name}:")

    def refused(self, reply: Reply) -> bool:
        if not reply.final.ok or any(line.startswith(self.abort) for line in reply.lines):
            return True
        said = self.said(reply)
        return self.result is not None and said is not None and said != self.result


def result_after_ok(exchange: Exchange, within: float) -> Exchange:
    """`exchange` completed by its `<name>: <err>` line, before OK or up to `within`
    seconds after it (V2.02 FTPS), or by the plain OK of firmware that adds none."""
    prefix = f"{exchange.label().removeprefix('AT')}:"

    def follow(line: str) -> Verdict:
        return Verdict.DONE if line.startswith(prefix) else Verdict.IGNORE

    info = exchange.info
    if info is not None and prefix[:-1] not in info:
        info = (*info, prefix[:-1])
    return dataclasses.replace(exchange, info=info, follow=follow, settle=within)


Failure = Callable[[Step, Reply], Exception]


def run_script(run: Run, steps: Iterable[Step], failure: Failure) -> list[Reply]:
    """Run `steps` in order; the first refused one raises `failure(step, reply)`."""
    replies: list[Reply] = []
    for step in steps:
        reply = run(step.sent())
        if step.refused(reply) and step.recover is not None:
            run(step.recover)  # its own answer does not matter: the retry's does
            reply = run(step.sent())
        if step.refused(reply):
            raise failure(step, reply)
        replies.append(reply)
    return replies
