"""The module's message storage through a ServiceContext (27.005 in PDU mode): list, read
and delete stored PDUs, and what a stored PDU is. Indexes are always the ones the module
reports (firmware differs on whether they start at 0 or 1)."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bridge.at import cellular
from bridge.modem import Exchange
from bridge.services.base import ServiceContext
from bridge.services.errors import module_error
from bridge.sms import Deliver, IncomingPart, Message, PduError, StatusReport, decode_pdu

log = logging.getLogger("bridge.services.sms")

NO_SUCH_INDEX = ("321", "INVALID MEMORY INDEX")  # +CMS ERROR: 321 (or its AT+CMEE=2 text)
LIST_TIMEOUT = 30.0  # a full SIM takes a while to list

# Incoming SMS are read on the worker's control lane, beside sms/list and sms/delete on
# the normal one: while `reading_from` has switched the memory, no other lane may list,
# read or delete (it would act on the delivery reports). One per modem, re-entrant.
_memory_locks: dict[str, threading.RLock] = {}
_locks_lock = threading.Lock()


@contextmanager
def _storage(ctx: ServiceContext) -> Iterator[None]:
    with _locks_lock:
        lock = _memory_locks.setdefault(ctx.modem_settings.id, threading.RLock())
    with lock:
        yield


def listed(ctx: ServiceContext, stat: int = cellular.STAT_ALL) -> list[cellular.ListedPdu]:
    """Every stored message of `stat` (AT+CMGL), with its index and PDU."""
    with _storage(ctx):
        reply = ctx.check(Exchange(cellular.cmgl(stat), info=("+CMGL",), timeout=LIST_TIMEOUT))
    return cellular.parse_cmgl(reply.with_pdus("+CMGL:"))


def read(ctx: ServiceContext, index: int) -> str | None:
    """The PDU stored at `index` (AT+CMGR), None when the slot is empty."""
    exchange = Exchange(cellular.cmgr(index), info=("+CMGR",))
    with _storage(ctx):
        reply = ctx.run(exchange)
    if not reply.final.ok:
        if (reply.final.detail or "").strip().upper() in NO_SUCH_INDEX:
            return None
        raise module_error(exchange, reply.final)
    entries = reply.with_pdus("+CMGR:")
    return entries[0][1] if entries else None


def delete(ctx: ServiceContext, index: int) -> None:
    """Delete `index`; an already empty slot is no error (it is gone either way)."""
    exchange = Exchange(cellular.cmgd(index))
    with _storage(ctx):
        reply = ctx.run(exchange)
    if not reply.final.ok and (reply.final.detail or "").strip().upper() not in NO_SUCH_INDEX:
        raise module_error(exchange, reply.final)


@contextmanager
def reading_from(ctx: ServiceContext, memory: str) -> Iterator[None]:
    """Read and delete from `memory` (`SR`, where `+CDSI` points) inside, the bridge's
    own storage again afterwards, whatever happened."""
    with _storage(ctx):
        ctx.check(Exchange(cellular.cpms_read(memory), info=("+CPMS",)))
        try:
            yield
        finally:
            with ctx.cleanup() as quiet:
                quiet.check(Exchange(cellular.cpms(cellular.STORAGE), info=("+CPMS",)))


@dataclass(frozen=True)
class Undecodable:
    """A PDU that is no message part or report (a stored outgoing message, or one the
    decoder does not understand): published raw when it came in, never dropped unseen."""

    pdu: str
    error: str

    def seen_key(self) -> str:
        digest = hashlib.sha256(self.pdu.strip().upper().encode()).hexdigest()
        return f"pdu|{digest[:32]}"


def decoded(pdu: str, index: int | None) -> IncomingPart | StatusReport | Undecodable:
    """A stored or routed PDU as a message part, a delivery report, or Undecodable (logged,
    not its content)."""
    try:
        message = decode_pdu(pdu)
    except PduError as exc:
        log.warning("SMS at index %s is not readable: %s", index, exc)
        return Undecodable(pdu.strip(), str(exc))
    if isinstance(message, Deliver):
        return IncomingPart.from_deliver(message, index)
    return message


def undecodable_fields(item: Undecodable) -> dict[str, Any]:
    """The `sms_received` event of a PDU that could not be decoded (API.md)."""
    return {"from": None, "text": None, "sent": None, "pdu": item.pdu, "error": item.error}


def message_fields(message: Message) -> dict[str, Any]:
    """A message as sms/list and the `sms_received` event show it."""
    fields: dict[str, Any] = {
        "from": message.sender,
        "text": message.text,
        "sent": message.sent.isoformat(),
        "parts": message.parts,
        "complete": message.complete,
    }
    if message.missing:
        fields["missing"] = list(message.missing)
    return fields
