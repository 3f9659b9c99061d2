"""Incoming SMS and delivery reports of one modem, published as events.

The URC listeners (`+CMTI`, `+CDSI`, `+CDS`, on the reader thread) and the modem coming
online (the supervisor thread) only note what is to be read; one internal job on the
modem's worker reads it, joins the parts (state in `state_dir`, so a restart between two
parts loses nothing and a part read twice is published once), publishes and, with
`sms.delete_after_read`, deletes it. Coming online reads whatever was stored meanwhile
(while the bridge was away, or the module rebooted). A message whose parts do not all
come within `sms.reassembly_timeout` is published incomplete, from a timer thread, but
never while a noted part is still unread (it may be the missing one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.at import Urc, cellular
from bridge.config import Settings
from bridge.modem import Modem, ModemState
from bridge.modem.events import EventType
from bridge.modem.modem import StateChange
from bridge.services import sms_store
from bridge.services.base import Action, Request, ServiceContext
from bridge.services.errors import ServiceError
from bridge.services.sms_ledger import SentLedger
from bridge.sms import IncomingPart, Message, Reassembler, StatusReport
from bridge.worker import Job, ModemWorker, Outcome

log = logging.getLogger("bridge.sms")

MAX_NAP = 60.0  # the expiry timer looks again at least this often
REPORT_MEMORY = "SR"  # where the module stores the delivery reports +CDSI points at
RECEIVED = (cellular.STAT_UNREAD, cellular.STAT_READ)  # not the stored outgoing ones


@dataclass(frozen=True)
class _Work:
    """Something to read: `sweep` (the whole storage), `sms` or `report` (one index),
    `pdu` (a message or report routed to the host whole, `+CMT`/`+CDS`)."""

    kind: str
    index: int | None = None
    pdu: str | None = None


class _Drain(Request):
    """The internal job's (empty) request."""


class SmsInbox:
    """See the module docstring."""

    def __init__(
        self,
        modem: Modem,
        worker: ModemWorker,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.modem = modem
        self.clock = clock
        self.worker = worker
        self.delete_after_read = settings.sms.delete_after_read
        state_dir = settings.files.state_dir
        self.parts = Reassembler(
            settings.sms.reassembly_timeout, state_dir / f"sms-parts-{modem.id}.json"
        )
        self.ledger = SentLedger(state_dir, modem.id)
        self._cond = threading.Condition()  # guards the work list and the reassembler
        self._work: list[_Work] = []
        self._scheduled = False
        self._stopping = False
        # the control lane: a part must not wait behind a long transfer (a 10-minute FTP
        # get) while the reassembly timeout runs; the engine still sends one command
        # at a time, so it waits at most for the command under way
        self._action = Action("sms", "receive", _Drain, self._drain, immediate=True)
        self._timer = threading.Thread(
            target=self._expire_loop, name=f"modem-{modem.id}-sms-expiry", daemon=True
        )

    def start(self) -> None:
        """Before the modem starts, so its first `online` is heard."""
        self.modem.add_urc_listener(self._stored, "+CMTI")
        self.modem.add_urc_listener(self._stored, "+CDSI")
        self.modem.add_urc_listener(self._routed, "+CDS")
        self.modem.add_urc_listener(self._routed, "+CMT")  # not asked for (AT+CNMI), but whole
        self.modem.add_state_listener(self._state_changed)
        self._timer.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._timer.join(timeout=5)

    # -- listeners: note the work, never talk to the module here --------------------------

    def _stored(self, urc: Urc) -> None:
        stored = cellular.parse_stored_at(urc.value)
        if stored is not None:
            self._note(_Work("report" if urc.name == "+CDSI" else "sms", stored.index))

    def _routed(self, urc: Urc) -> None:
        if urc.pdu is not None:
            self._note(_Work("pdu", pdu=urc.pdu))

    def _state_changed(self, change: StateChange) -> None:
        if change.state is ModemState.ONLINE:
            self._note(_Work("sweep"))

    def _note(self, work: _Work) -> None:
        with self._cond:
            if work not in self._work:
                self._work.append(work)
            if self._scheduled:
                return
            self._scheduled = True
        job = Job(self._action, _Drain(), self._finished, label=f"{self.modem.id} sms/receive")
        if not self.worker.submit(job):
            log.warning("modem %s: queue full, incoming SMS read later", self.modem.id)
            with self._cond:
                self._scheduled = False

    def _finished(self, outcome: Outcome) -> None:
        if isinstance(outcome, ServiceError):
            log.warning("modem %s: reading SMS failed: %s", self.modem.id, outcome.message)

    # -- the job, on the modem's worker ------------------------------------------------------

    def _take(self) -> _Work | None:
        with self._cond:
            if not self._work:
                self._scheduled = False
                self._cond.notify_all()  # the expiry timer waits for reading to end
                return None
            return self._work.pop(0)

    def _drain(self, ctx: ServiceContext, request: _Drain) -> dict[str, Any]:
        handled = 0
        try:
            while (work := self._take()) is not None:
                self._handle(ctx, work)
                handled += 1
        except BaseException:
            with self._cond:
                self._scheduled = False  # the next indication or `online` tries again
            raise
        return {"handled": handled}

    def _handle(self, ctx: ServiceContext, work: _Work) -> None:
        if work.kind == "sweep":
            self._sweep(ctx)
        elif work.kind == "sms" and work.index is not None:
            pdu = sms_store.read(ctx, work.index)
            if pdu is not None:
                self._take_pdu(ctx, pdu, work.index)
        elif work.kind == "report" and work.index is not None:
            with sms_store.reading_from(ctx, REPORT_MEMORY):
                pdu = sms_store.read(ctx, work.index)
                if pdu is not None:
                    sms_store.delete(ctx, work.index)  # reports are never kept
            if pdu is not None:
                self._take_pdu(ctx, pdu, None)
        elif work.pdu is not None:
            self._take_pdu(ctx, work.pdu, None)

    def _sweep(self, ctx: ServiceContext) -> None:
        """Read the whole storage; then forget the parts that are no longer in it."""
        stored: set[str] = set()
        for entry in sms_store.listed(ctx):
            if entry.stat in RECEIVED:
                item = self._take_pdu(ctx, entry.pdu, entry.index)
                if isinstance(item, IncomingPart) and not self.delete_after_read:
                    stored.add(item.seen_key())
        with self._cond:
            self.parts.keep_only(stored)

    def _take_pdu(
        self, ctx: ServiceContext, pdu: str, index: int | None
    ) -> IncomingPart | StatusReport | None:
        """Publish what `pdu` completes; then (the part is saved) delete it if asked."""
        item = sms_store.decoded(pdu, index)
        if isinstance(item, StatusReport):
            self._report(item)
        elif isinstance(item, IncomingPart):
            with self._cond:
                message = self.parts.add(item, self.clock())
                self._cond.notify_all()  # the expiry timer: a new group may be due first
            if message is not None:
                self._publish(message)
        if index is not None and self.delete_after_read:
            sms_store.delete(ctx, index)
        return item

    def _report(self, report: StatusReport) -> None:
        if report.outcome == "pending":
            return  # the SMSC still tries; its final report follows
        sent = self.ledger.match_report(report.reference, report.recipient)
        delivered = report.outcome == "delivered"
        self.modem.emit_event(
            EventType.SMS_DELIVERED if delivered else EventType.SMS_FAILED,
            reference=report.reference,
            to=report.recipient if sent is None else sent.to,
        )

    def _publish(self, message: Message) -> None:
        self.modem.emit_event(EventType.SMS_RECEIVED, **sms_store.message_fields(message))

    # -- the reassembly timeout ------------------------------------------------------------

    def _expire_loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                due = self.parts.next_expiry()
                left = MAX_NAP if due is None else due - self.clock()
                if self._work or self._scheduled:
                    left = MAX_NAP  # a part noted but not yet read may complete a group
                if left > 0:
                    self._cond.wait(min(left, MAX_NAP))
                    continue
                late = self.parts.expire(self.clock())
            for message in late:
                self._publish(message)
