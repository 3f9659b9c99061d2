"""ussd/send (27.007 7.15, SIM5320 manual 5.6): a USSD code such as `*100#` and the
network's answer, decoded as its `<dcs>` says. A network that does not answer in time
is `timeout`, and the session is closed (`AT+CUSD=2`) so the next request starts clean."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from bridge.at import Urc, cellular
from bridge.modem import Exchange
from bridge.services.base import Request, ServiceContext, UrcWaiter, action
from bridge.services.errors import ResultCodes, ServiceError, param
from bridge.sms.ussd import ussd_text

RESULTS = ResultCodes.table("ussd")
ANSWERED = (0, 1)  # <m>: no further action needed / the network wants a reply
MORE_WANTED = 1


class UssdSendRequest(Request):
    code: Annotated[str, Field(strict=True, min_length=1, max_length=160)]
    timeout: Annotated[float, Field(strict=True, gt=0, le=180)] = 30.0

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not all(c in "0123456789*#+" for c in value):
            raise ValueError("must be digits, *, # and + only")
        return value


def _is_cusd(urc: Urc) -> bool:
    return urc.name == "+CUSD"


def _close(ctx: ServiceContext) -> None:
    with ctx.cleanup() as quiet:
        quiet.run(Exchange(cellular.cusd_cancel()))


def _answer(ctx: ServiceContext, waiter: UrcWaiter, timeout: float) -> str:
    try:
        return ctx.wait_urc(waiter, timeout).value
    except ServiceError:
        _close(ctx)  # timed out or cancelled: the network may still hold the session
        raise


@action("ussd", "send", UssdSendRequest, side_effects=True, commits_on=("AT+CUSD",))
def ussd_send(ctx: ServiceContext, request: UssdSendRequest) -> dict[str, Any]:
    """Side effects: a USSD request may change the account (top-ups, subscriptions)."""
    command = param(lambda: cellular.cusd(request.code))
    exchange = Exchange(command, info=("+CUSD",))
    with ctx.urc_waiter(_is_cusd) as waiter:
        reply = ctx.run(exchange)
        if not reply.final.ok:
            raise RESULTS.from_reply(exchange, reply, "+CUSD")
        value = reply.first("+CUSD:")  # a quick network answers before the OK
        if value is None:
            value = _answer(ctx, waiter, request.timeout)
    answer = cellular.parse_cusd(value)
    if answer is None or answer.status not in ANSWERED or answer.text is None:
        said = value if answer is None else str(answer.status)
        raise RESULTS.failure(said, "AT+CUSD")
    if answer.status == MORE_WANTED:
        _close(ctx)  # a menu waits for a reply this action never gives
    return {"text": ussd_text(answer.text, answer.dcs), "status": answer.status}
