"""sms/send, sms/list and sms/delete (SIM5320/SIM5360 AT manual chapter 7) in PDU mode:
the bridge encodes and decodes the PDUs itself (bridge/sms), so long and non-Latin
messages work. Everything is checked before the module hears a byte of it."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from bridge.at import ResultKind, cellular
from bridge.modem import Exchange, Reply
from bridge.services import sms_store
from bridge.services.base import Request, ServiceContext, action
from bridge.services.errors import ResultCodes, ServiceError, invalid, module_error, too_large
from bridge.services.sms_ledger import SentLedger
from bridge.sms import (
    IncomingPart,
    PartPlan,
    Reassembler,
    SubmitPdu,
    TooLarge,
    check_number,
    encode_submit,
    plan_parts,
)
from bridge.sms.parts import MAX_PARTS

RESULTS = ResultCodes.table("sms")
MAX_RECIPIENTS = 10
SEND_TIMEOUT = 60.0  # the SMSC's answer to AT+CMGS can take tens of seconds
# control characters have no place in a text message; line breaks do (GSM has CR and LF)
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
BOXES = {"unread": cellular.STAT_UNREAD, "read": cellular.STAT_READ, "all": cellular.STAT_ALL}
StorageIndex = Annotated[int, Field(strict=True, ge=0, le=65535)]


# InvalidNumber is a ValueError: pydantic reports it as the number's own problem
Number = Annotated[str, Field(strict=True), AfterValidator(check_number)]


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value  # one number is the common case


class SmsSendRequest(Request):
    to: Annotated[
        list[Number], BeforeValidator(_listed), Field(min_length=1, max_length=MAX_RECIPIENTS)
    ]
    text: Annotated[str, Field(strict=True, min_length=1)]
    delivery_report: Annotated[bool, Field(strict=True)] = False
    flash: Annotated[bool, Field(strict=True)] = False

    @field_validator("text")
    @classmethod
    def _printable(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters other than line breaks")
        return value

    @property
    def recipients(self) -> list[str]:
        return list(dict.fromkeys(self.to))  # a number given twice gets one message


class SmsListRequest(Request):
    box: Literal["unread", "read", "all"] = "all"


class SmsDeleteRequest(Request):
    ids: Annotated[list[StorageIndex], Field(min_length=1, max_length=255)] | None = None
    all: Annotated[bool, Field(strict=True)] = False

    @model_validator(mode="after")
    def _one_way(self) -> SmsDeleteRequest:
        if (self.ids is None) == (not self.all):
            raise ValueError('give either "ids" or "all": true')
        return self


def _plan(text: str) -> PartPlan:
    try:
        return plan_parts(text, MAX_PARTS)
    except TooLarge as exc:
        raise too_large("text", str(exc), limit=MAX_PARTS) from None


def cmgs_exchange(pdu: SubmitPdu, timeout: float = SEND_TIMEOUT) -> Exchange:
    """AT+CMGS=<length>, then at the `>` prompt the PDU and Ctrl-Z."""
    return Exchange(
        cellular.cmgs(pdu.tpdu_length),
        info=("+CMGS",),
        send_on=">",
        payload=[cellular.pdu_payload(pdu.hex)],
        timeout=timeout,
    )


def _submit(ctx: ServiceContext, pdu: SubmitPdu) -> int:
    """Send one part; its message reference."""
    exchange = cmgs_exchange(pdu)
    reply: Reply = ctx.run(exchange)
    if not reply.final.ok:
        if reply.final.kind is ResultKind.CMS_ERROR and reply.final.detail:
            raise RESULTS.failure(reply.final.detail, exchange.label())  # the network's no
        raise module_error(exchange, reply.final)
    reference = cellular.parse_cmgs(reply.first("+CMGS:") or "")
    if reference is None:
        raise module_error(exchange, reply.final)
    return reference


@action("sms", "send", SmsSendRequest, side_effects=True, commits_on=("AT+CMGS",))
def sms_send(ctx: ServiceContext, request: SmsSendRequest) -> dict[str, Any]:
    """Side effects: sends messages (never run twice after a crash)."""
    plan = _plan(request.text)
    ctx.require_sms()
    ledger = SentLedger(ctx.settings.files.state_dir, ctx.modem_id)
    sent: list[dict[str, Any]] = []
    for to in request.recipients:
        concat = ledger.next_concat_reference() if plan.concatenated else 0
        pdus = encode_submit(
            to,
            request.text,
            concat_reference=concat,
            status_report=request.delivery_report,
            flash=request.flash,
            plan=plan,
        )
        references: list[int] = []
        try:
            for pdu in pdus:
                references.append(_submit(ctx, pdu))
        except ServiceError as exc:
            exc.detail["sent"] = sent  # what went out before the failure
            raise
        finally:
            if request.delivery_report and references:
                ledger.await_reports(to, references)
        sent.append({"to": to, "parts": len(pdus), "references": references})
    return {"messages": sent}


@action("sms", "list", SmsListRequest, side_effects=False, commits_on=())
def sms_list(ctx: ServiceContext, request: SmsListRequest) -> dict[str, Any]:
    """No side effects: reads the storage (concatenated parts joined), deletes nothing."""
    joiner = Reassembler(timeout=math.inf)  # in memory: only what is listed now
    ctx.require_sms()
    messages = []
    for entry in sms_store.listed(ctx, BOXES[request.box]):
        part = sms_store.decoded(entry.pdu, entry.index)
        if isinstance(part, IncomingPart):
            whole = joiner.add(part, now=0.0)
            messages += [] if whole is None else [whole]
    messages += joiner.expire(math.inf)  # parts whose companions are not stored
    messages.sort(key=lambda m: min(m.storage_indexes, default=0))
    return {
        "messages": [
            {"ids": list(m.storage_indexes), **sms_store.message_fields(m)} for m in messages
        ]
    }


@action("sms", "delete", SmsDeleteRequest, side_effects=True, commits_on=("AT+CMGD",))
def sms_delete(ctx: ServiceContext, request: SmsDeleteRequest) -> dict[str, Any]:
    """Side effects: deletes stored messages. Every id is checked against the storage
    before the first is deleted."""
    ctx.require_sms()
    stored = [entry.index for entry in sms_store.listed(ctx)]
    ids = stored if request.all else list(dict.fromkeys(request.ids or []))
    for position, index in enumerate(request.ids or []):
        if index not in stored:
            raise invalid(f"ids[{position}]", "no message is stored at this index")
    for index in ids:
        sms_store.delete(ctx, index)
    return {"deleted": ids}
