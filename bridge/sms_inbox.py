"""Incoming SMS and delivery reports of one modem, published as events.

The URC listeners (`+CMTI`, `+CDSI`, `+CDS`, on the thread that reads the port) and the modem coming
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
RETRY_AFTER = 10.0  # work left by a full queue or a failed read is tried again
MAX_TRIES = 5  # a read failing this often is dropped (the next `online` reads all)
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
        self._current: _Work | None = None  # being read (put back if that fails)
        self._failures: dict[_Work, int] = {}
        self._scheduled = False
        self._stopping = False
        self.retry = RETRY_AFTER
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
        self._schedule()

    def _schedule(self) -> None:
        """One drain job at a time; a full queue leaves the work for the timer's retry."""
        with self._cond:
            if self._scheduled or not self._work:
                return
            self._scheduled = True
        job = Job(self._action, _Drain(), self._finished, label=f"{self.modem.id} sms/receive")
        if not self.worker.submit(job):
            log.warning("modem %s: queue full, incoming SMS read later", self.modem.id)
            with self._cond:
                self._scheduled = False
                self._cond.notify_all()  # the timer: retry in `retry` seconds

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
            self._current = self._work.pop(0)
            return self._current

    def _drain(self, ctx: ServiceContext, request: _Drain) -> dict[str, Any]:
        handled = 0
        try:
            while (work := self._take()) is not None:
                self._handle(ctx, work)
                with self._cond:
                    self._current = None
                    self._failures.pop(work, None)
                handled += 1
        except BaseException:
            self._failed()
            raise
        return {"handled": handled}

    def _failed(self) -> None:
        """The work being read goes back first in line (the timer or the next indication
        tries again), unless it failed MAX_TRIES times."""
        with self._cond:
            work, self._current = self._current, None
            self._scheduled = False
            self._cond.notify_all()
            if work is None:
                return
            self._failures[work] = tries = self._failures.get(work, 0) + 1
            if tries >= MAX_TRIES:
                del self._failures[work]
                log.error("modem %s: gave up reading SMS %s", self.modem.id, work.kind)
            elif work not in self._work:
                self._work.insert(0, work)

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
                key = self._take_pdu(ctx, entry.pdu, entry.index)
                if key is not None and not self.delete_after_read:
                    stored.add(key)
        with self._cond:
            self.parts.keep_only(stored)

    def _take_pdu(self, ctx: ServiceContext, pdu: str, index: int | None) -> str | None:
        """Publish what `pdu` completes, then (published or saved) delete it if asked; the
        key it is known by while stored (None for a report)."""
        item = sms_store.decoded(pdu, index)
        key = None
        if isinstance(item, StatusReport):
            self._report(item)
        else:
            key = item.seen_key()
            with self._cond:
                self._accept(item)
                self._cond.notify_all()  # the expiry timer: a new group may be due first
        if index is not None and self.delete_after_read:
            sms_store.delete(ctx, index)
        return key

    def _accept(self, item: IncomingPart | sms_store.Undecodable) -> None:
        """Under the lock: publish what `item` completes (an undecodable PDU raw, once)."""
        if isinstance(item, IncomingPart):
            message = self.parts.add(item, self.clock())
            if message is not None:
                self._publish(message)
        elif not self.parts.seen(key := item.seen_key()):
            self.modem.emit_event(EventType.SMS_RECEIVED, **sms_store.undecodable_fields(item))
            self.parts.published((key,), self.clock())

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
        """Under the lock; seen only once handed to the publisher: a crash before that
        repeats the message rather than loses it."""
        self.modem.emit_event(EventType.SMS_RECEIVED, **sms_store.message_fields(message))
        self.parts.published(message.keys, self.clock())

    # -- the reassembly timeout ------------------------------------------------------------

    def _expire_loop(self) -> None:
        while self._tick():
            pass

    def _tick(self) -> bool:
        """Wait, then publish what timed out or retry left work; False once stopping."""
        with self._cond:
            if self._stopping:
                return False
            wait = self._next_wait()
            retry = False
            if wait > 0:
                self._cond.wait(wait)
                retry = bool(self._work) and not self._scheduled and not self._stopping
            else:
                for message in self.parts.expire(self.clock()):
                    self._publish(message)
        if retry and self.modem.state.state is ModemState.ONLINE:
            self._schedule()
        return True

    def _next_wait(self) -> float:
        if self._work and not self._scheduled:
            return self.retry  # left by a full queue or a failed read
        if self._work or self._scheduled or self._current:
            return MAX_NAP  # a part noted but not yet read may complete a waiting group
        due = self.parts.next_expiry()
        return MAX_NAP if due is None else min(due - self.clock(), MAX_NAP)
