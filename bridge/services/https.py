"""The https:// half of http/request (seed chapter 7, command names per ERRATA): the
module's HTTPS stack carries the request and relays the response; h11 frames both.

AT+CHTTPSSTART, AT+CHTTPSOPSE="<host>",<port>, then the request in AT+CHTTPSSEND=<len>
calls of at most 4096 bytes, each batch committed with a bare AT+CHTTPSSEND (OK, then
`+CHTTPSSEND: <result>`); then AT+CHTTPSRECV=<n> whenever `+CHTTPS: RECV EVENT` says
data waits, until the response is complete or the server has closed
(`+CHTTPSNOTIFY: PEER CLOSED`) and AT+CHTTPSRECV? shows nothing left. AT+CHTTPSCLSE and
AT+CHTTPSSTOP always follow, whatever happened, or the stack stays taken.

Errors (ERRATA's <result>; `detail.module_code` carries the number): 1 https_unknown_error,
2 https_busy, 3 https_server_closed, 4 https_timeout, 5 https_transfer_failed,
6 https_memory_error, 7 https_invalid_parameter, 8 https_network_error. AT+CHTTPSOPSE
answers only ERROR when the host is unknown, refuses or fails the TLS handshake:
https_connect_failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack

from bridge.at import DataBlock, Urc
from bridge.at import commands as at
from bridge.modem.exchange import Exchange, Reply, Verdict
from bridge.modem.script import Step, run_script
from bridge.services.base import ServiceContext, UrcWaiter
from bridge.services.certificates import name_cas
from bridge.services.errors import (
    TIMEOUT,
    ResultCodes,
    ServiceError,
    module_error,
    step_error,
)
from bridge.services.http_message import OutgoingRequest, ResponseReader, pieces
from bridge.services.http_models import HttpPlan

log = logging.getLogger("bridge.services.https")

CALL_LIMIT = 4096  # bytes per AT+CHTTPSSEND=<len> and per AT+CHTTPSRECV (ERRATA)
COMMIT_EVERY = 8192  # the module's send buffer is small (the application note waits
# above ~10 KiB): commit and wait for it to drain this often
COMMAND_TIMEOUT = 10.0  # START, CLSE, STOP and the commit's OK answer at once
CONNECT_FAILED = "https_connect_failed"

RESULTS = ResultCodes.table("https")
SERVER_CLOSED = "3"
_NOTICES = frozenset({"+CHTTPSSEND", "+CHTTPSEND", "+CHTTPS", "+CHTTPSNOTIFY"})


def https_exchange(
    ctx: ServiceContext,
    plan: HttpPlan,
    outgoing: OutgoingRequest,
    reader: ResponseReader,
    stack: ExitStack,
) -> None:
    """The request out and the whole response into `reader`; the session is closed and
    the stack released on the way out, also on failure."""
    # registered before the session opens, so no announcement is missed
    with ctx.urc_waiter(lambda urc: urc.name in _NOTICES) as waiter:
        notices = _Notices(ctx, waiter)
        run_script(ctx.run, [START], step_error)
        try:
            name_cas(ctx, list(ctx.settings.tls.ca_files))
            run_script(ctx.run, [_open_step(plan)], _not_connected(bool(ctx.settings.tls.ca_files)))
            _send(ctx, plan, outgoing, notices, stack)
            _receive_all(ctx, plan, reader, notices)
        finally:
            for step in RELEASE:  # whatever happened, or the stack stays taken
                with ctx.cleanup() as quiet:
                    quiet.run(step.exchange)


# -- the module's announcements --------------------------------------------------------


class _Notices:
    """What the module says about the session by URC: commit results, data waiting,
    the server gone. Read from the waiter only when the worker looks."""

    def __init__(self, ctx: ServiceContext, waiter: UrcWaiter) -> None:
        self.ctx = ctx
        self.waiter = waiter
        self.results: list[str] = []
        self.data_waiting = False
        self.peer_closed = False

    def _take(self, urc: Urc) -> None:
        if urc.name in ("+CHTTPSSEND", "+CHTTPSEND"):
            self.results.append(urc.value)
        elif urc.name == "+CHTTPS" and urc.value.upper() == "RECV EVENT":
            self.data_waiting = True
        elif urc.name == "+CHTTPSNOTIFY" and urc.value.upper() == "PEER CLOSED":
            self.peer_closed = True

    def drain(self) -> None:
        """Take in what has arrived, without waiting."""
        self.wait(lambda: True, 0.0)

    def wait(self, ready: Callable[[], bool], timeout: float) -> None:
        """Take in announcements until `ready()` (everything waiting is taken first);
        `timeout` when the module stays silent that long."""
        deadline = time.monotonic() + timeout
        while True:
            while (urc := self.ctx.next_urc(self.waiter, 0.0)) is not None:
                self._take(urc)
            if ready():
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServiceError(TIMEOUT, f"no answer from the server within {timeout:g}s")
            urc = self.ctx.next_urc(self.waiter, left)
            if urc is not None:
                self._take(urc)


# -- the steps ---------------------------------------------------------------------------


def _command(name: str) -> Exchange:
    return Exchange(at.execute(name), timeout=COMMAND_TIMEOUT, name=f"AT{name}")


# a stack left taken (a crash, a reset bridge) is released first
START = Step(_command("+CHTTPSSTART"), recover=_command("+CHTTPSSTOP"))
# AT+CHTTPSCLSE is ERROR when no session opened: harmless
RELEASE = (Step(_command("+CHTTPSCLSE")), Step(_command("+CHTTPSSTOP")))


def _open_step(plan: HttpPlan) -> Step:
    exchange = Exchange(
        at.write("+CHTTPSOPSE", plan.host, plan.port),
        timeout=plan.timeout,  # DNS, TCP and the TLS handshake
        name="AT+CHTTPSOPSE",
    )
    return Step(exchange)


def _not_connected(checked: bool) -> Callable[[Step, Reply], ServiceError]:
    """OPSE's failure; `checked`: the module checks the certificate (tls.ca_files)."""
    reason = "unknown host, refused, or TLS failed"
    if checked:
        reason += ", which includes a certificate that tls.ca_files does not vouch for"

    def error(step: Step, reply: Reply) -> ServiceError:
        said = reply.final.detail or reply.final.kind.value
        return ServiceError(
            CONNECT_FAILED,
            f"the module could not open the HTTPS session ({reason})",
            {"module_error": said, "module_code": int(said) if said.isdigit() else said},
        )

    return error


def _send(
    ctx: ServiceContext,
    plan: HttpPlan,
    outgoing: OutgoingRequest,
    notices: _Notices,
    stack: ExitStack,
) -> None:
    batch = 0
    for piece in pieces(outgoing.chunks(stack), CALL_LIMIT):
        exchange = Exchange(
            at.write("+CHTTPSSEND", at.integer(len(piece), field="body", low=1, high=CALL_LIMIT)),
            info=("+CHTTPSSEND",),
            timeout=plan.timeout,
            send_on=">",
            payload=(piece,),
            name="AT+CHTTPSSEND",
        )
        reply = ctx.run(exchange)
        if not reply.final.ok:
            notices.drain()
            if notices.peer_closed:
                raise RESULTS.failure(SERVER_CLOSED, exchange.label())
            raise module_error(exchange, reply.final)
        batch += len(piece)
        if batch >= COMMIT_EVERY:
            _commit(ctx, plan, notices)
            batch = 0
    if batch:
        _commit(ctx, plan, notices)


def _commit(ctx: ServiceContext, plan: HttpPlan, notices: _Notices) -> None:
    """Bare AT+CHTTPSSEND: OK, then `+CHTTPSSEND: <result>` once the data has left.
    No information prefix: the result is always an announcement, before OK or after."""
    notices.drain()
    notices.results.clear()
    ctx.check(
        Exchange(at.execute("+CHTTPSSEND"), info=(), timeout=COMMAND_TIMEOUT, name="AT+CHTTPSSEND")
    )
    notices.wait(lambda: bool(notices.results), plan.timeout)
    result = notices.results.pop(0)
    if result != "0":
        raise RESULTS.failure(result, "AT+CHTTPSSEND")


def _receive_all(
    ctx: ServiceContext, plan: HttpPlan, reader: ResponseReader, notices: _Notices
) -> None:
    """AT+CHTTPSRECV until the response is complete, or the server has closed and the
    module holds nothing more. Stops early past the inline limit."""
    while not (reader.complete or reader.error is not None or reader.sink.overflow):
        notices.drain()
        notices.data_waiting = False  # announced data is taken by this call
        if _receive(ctx, plan, reader):
            continue
        notices.drain()
        if notices.peer_closed:
            left = _cached(ctx)
            if left == 0 or (left is None and not _receive(ctx, plan, reader)):
                reader.finish()
                return
            continue
        notices.wait(lambda: notices.data_waiting or notices.peer_closed, plan.timeout)


def _receive(ctx: ServiceContext, plan: HttpPlan, reader: ResponseReader) -> int:
    """One AT+CHTTPSRECV: OK, at most one DATA block, `+CHTTPSRECV: <result>`; the number
    of bytes it brought."""
    got = 0

    def on_data(block: DataBlock) -> None:
        nonlocal got
        got += len(block.payload)
        reader.feed(block.payload)

    exchange = Exchange(
        at.write("+CHTTPSRECV", at.integer(CALL_LIMIT, field="recv", low=1, high=CALL_LIMIT)),
        info=("+CHTTPSRECV",),
        timeout=plan.timeout,
        follow=_receive_result,
        on_data=on_data,
        name="AT+CHTTPSRECV",
    )
    reply = ctx.run(exchange)
    said = reply.first("+CHTTPSRECV:") if not reply.final.ok else Urc(reply.completion or "").value
    if said is None or not said.isdigit():
        raise module_error(exchange, reply.final)
    if said != "0":
        raise RESULTS.failure(said, exchange.label())
    return got


def _receive_result(line: str) -> Verdict:
    urc = Urc(line)
    return Verdict.DONE if urc.name == "+CHTTPSRECV" and urc.value.isdigit() else Verdict.IGNORE


def _cached(ctx: ServiceContext) -> int | None:
    """AT+CHTTPSRECV? -> `+CHTTPSRECV: LEN,<n>`; None where the firmware lacks it."""
    reply = ctx.run(
        Exchange(at.read("+CHTTPSRECV"), info=("+CHTTPSRECV",), timeout=COMMAND_TIMEOUT)
    )
    value = (reply.first("+CHTTPSRECV:") or "").replace(" ", "")
    if not reply.final.ok or not value.upper().startswith("LEN,"):
        return None
    number = value[4:]
    return int(number) if number.isdigit() else None
