"""http/request (seed chapters 6 and 7): one HTTP/1.1 exchange through the module,
http:// with AT+CHTTPACT here, https:// with AT+CHTTPS* (bridge/services/https.py).

AT+CHTTPACT="<host>",<port> -> `+CHTTPACT: REQUEST` -> the request, escaped, ended by
a lone Ctrl-Z -> OK -> `+CHTTPACT: DATA,<len>` blocks -> `+CHTTPACT: 0`. The module
relays raw bytes both ways; h11 frames the request and reads the response.

Errors (seed table 6.2; `detail.module_code` carries the number): 220 http_unknown_error,
221 http_busy, 222 http_resolve_failed, 223 http_timeout, 224 http_transfer_failed,
225 http_memory_error, 226 http_invalid_parameter, 227 http_network_error; a response
that is not HTTP, or cut short, is http_bad_response. A 4xx or 5xx from the server is
no error: its status is the answer.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import h11

from bridge.at import DataBlock, Urc
from bridge.at import commands as at
from bridge.at.datamode import escaped_stream
from bridge.modem.exchange import Exchange, Verdict
from bridge.services.base import ServiceContext, action
from bridge.services.errors import MODEM_ERROR, ResultCodes, ServiceError, module_error
from bridge.services.http_message import BodySink, OutgoingRequest, ResponseReader
from bridge.services.http_models import HttpPlan, HttpRequestRequest, changes_something, plan
from bridge.services.https import https_exchange

REQUEST_LINE = "+CHTTPACT: REQUEST"

RESULTS = ResultCodes.table("http")


@action(
    "http",
    "request",
    HttpRequestRequest,
    side_effects=changes_something,
    commits_on=("AT+CHTTPACT", "AT+CHTTPSSEND"),
)
def http_request(ctx: ServiceContext, request: HttpRequestRequest) -> dict[str, Any]:
    checked = plan(request, ctx.files)  # before any AT command
    with ExitStack() as stack:
        conn = h11.Connection(our_role=h11.CLIENT)
        outgoing = OutgoingRequest(checked, conn, ctx.progress)
        sink = BodySink(checked.save_to, ctx.settings.files.inline_limit, stack)
        reader = ResponseReader(conn, sink, ctx.progress)
        ctx.progress("connecting", None, None)
        if checked.secure:
            https_exchange(ctx, checked, outgoing, reader, stack)
        else:
            _chttpact(ctx, checked, outgoing, reader, stack)
        if outgoing.body_short:
            raise ServiceError(
                MODEM_ERROR,
                "body_file changed or failed to read while it was sent",
                {"field": "body_file"},
            )
        return reader.result(ctx.files)


def _chttpact(
    ctx: ServiceContext,
    checked: HttpPlan,
    outgoing: OutgoingRequest,
    reader: ResponseReader,
    stack: ExitStack,
) -> None:
    def on_data(block: DataBlock) -> None:
        reader.feed(block.payload)

    exchange = Exchange(
        at.write("+CHTTPACT", checked.host, checked.port),
        info=("+CHTTPACT",),
        timeout=checked.timeout,  # the longest the module may stay silent
        send_on=REQUEST_LINE,
        payload=escaped_stream(outgoing.chunks(stack)),
        follow=_result,
        on_data=on_data,
        name="AT+CHTTPACT",
    )
    reply = ctx.run(exchange)
    if not reply.final.ok:
        # `+CME ERROR: <err>` before the request was taken: table 6.2's number or text
        raise RESULTS.from_reply(exchange, reply, "+CHTTPACT")
    value = Urc(reply.completion or "").value
    if not value.isdigit():
        raise module_error(exchange, reply.final)
    if value != "0":
        raise RESULTS.failure(value, "AT+CHTTPACT")
    reader.finish()  # the module reports 0 when the server has closed


def _result(line: str) -> Verdict:
    """`+CHTTPACT: <err>` ends the transfer; DATA blocks never reach here."""
    urc = Urc(line)
    return Verdict.DONE if urc.name == "+CHTTPACT" and urc.value.isdigit() else Verdict.IGNORE
