"""Raw AT for the adventurous (`modem/at`, only with allow_raw_at) and `modem/restart`."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

from bridge.at import commands as at
from bridge.modem import Exchange
from bridge.modem.events import EventType
from bridge.services.base import Request, ServiceContext, action
from bridge.services.errors import FORBIDDEN, ServiceError, param


class RawAtRequest(Request):
    command: Annotated[str, Field(min_length=2, max_length=556)]
    timeout: Annotated[float, Field(gt=0, le=600)] = 10.0


# `AT`, and one read (`AT+CSQ?`) or test (`AT+CSQ=?`) command: it changes nothing
QUERY = re.compile(r"AT(?:[+&$^#%*]?[A-Z][A-Z0-9]*(?:\?|=\?))?", re.IGNORECASE)


def changes_something(request: RawAtRequest) -> bool:
    """A raw AT command may do anything, unless it is a plain query: after a crash a
    query is run again rather than answered `interrupted`, and its start is not journaled."""
    return QUERY.fullmatch(request.command.strip()) is None


@action("modem", "at", RawAtRequest, side_effects=changes_something, commits_on=())
def modem_at(ctx: ServiceContext, request: RawAtRequest) -> dict[str, Any]:
    if not ctx.modem_settings.allow_raw_at:
        raise ServiceError(FORBIDDEN, "raw AT is off (allow_raw_at = false)")
    line = param(lambda: at.raw_command(request.command))
    raw = Exchange(line, info=None, timeout=request.timeout, name="raw AT", cancel_prompt=True)
    reply = ctx.run(raw)
    final = reply.final
    result = final.kind.value + (f": {final.detail}" if final.detail else "")
    # read-backs such as AT+SMTPAUTH? carry passwords: the same redaction as the logs
    lines: list[str] = ctx.settings.redactor.redact(reply.lines)
    return {"lines": lines, "result": result}


class RestartRequest(Request):
    timeout: Annotated[float, Field(gt=0, le=600)] = 60.0


@action("modem", "restart", RestartRequest, side_effects=True, commits_on=())
def modem_restart(ctx: ServiceContext, request: RestartRequest) -> dict[str, Any]:
    # the module's boot is expected here, so the supervisor does not report it: this does
    # (a stuck module may come back from its recovery without one: nothing to report)
    if ctx.restart(request.timeout):
        ctx.emit_event(EventType.MODEM_REBOOTED)
    return {"state": ctx.state.state.value}
