"""Incoming calls of one modem: while a call rings, the module repeats `RING` (and, with
AT+CLIP=1, `+CLIP: "<number>",…` after it) every few seconds. One `incoming_call` event
per call, with the number from the first `+CLIP` (a `+CLIP` with another number is
another call: no URC says an unanswered one ended); with `sms.reject_calls`, one AT+CHUP
on the modem's worker (never from the reader thread the URCs arrive on)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from bridge.at import Urc, cellular
from bridge.at import commands as at
from bridge.modem import Exchange, Modem
from bridge.modem.events import EventType
from bridge.services.base import Action, Request, ServiceContext
from bridge.services.errors import ServiceError
from bridge.worker import Job, ModemWorker, Outcome

log = logging.getLogger("bridge.calls")

CALL_GAP = 8.0  # RING repeats every 3-5 s; a longer silence means that call is over


class _HangUp(Request):
    """The internal job's (empty) request."""


class CallWatcher:
    """See the module docstring."""

    def __init__(
        self, modem: Modem, worker: ModemWorker, *, reject: bool, gap: float = CALL_GAP
    ) -> None:
        self.modem = modem
        self.worker = worker
        self.reject = reject
        self.gap = gap
        self._lock = threading.Lock()
        self._last_ring: float | None = None
        self._announced = False
        self._caller_of_call: str | None = None  # the number announced for this call
        # the control lane: the caller is not kept ringing behind a long request
        self._hang_up = Action("call", "hang_up", _HangUp, self._run_hang_up, immediate=True)

    def start(self) -> None:
        self.modem.add_urc_listener(self._ring, "RING")
        self.modem.add_urc_listener(self._caller, "+CLIP")
        self.modem.add_urc_listener(self._voice_call, "VOICE CALL")

    def _rang(self) -> None:
        """A sign of a ringing call: a new call when the last one was long ago."""
        now = time.monotonic()
        with self._lock:
            if self._last_ring is None or now - self._last_ring > self.gap:
                self._announced = False
            self._last_ring = now

    def _ring(self, urc: Urc) -> None:
        self._rang()

    def _caller(self, urc: Urc) -> None:
        caller = cellular.parse_clip(urc.value)
        self._rang()
        with self._lock:
            # no URC ends an unanswered call: another number within the gap is another call
            if self._announced and caller == self._caller_of_call:
                return
            self._announced = True
            self._caller_of_call = caller
        self.modem.emit_event(EventType.INCOMING_CALL, **{"from": caller})
        if self.reject:
            job = Job(self._hang_up, _HangUp(), self._hung_up, label=f"{self.modem.id} AT+CHUP")
            if not self.worker.submit(job):
                log.warning("modem %s: queue full, the call is not rejected", self.modem.id)

    def _voice_call(self, urc: Urc) -> None:
        """`VOICE CALL: END: <time>`: the next RING is another call."""
        if urc.value.startswith("END"):
            with self._lock:
                self._last_ring = None
                self._announced = False

    def _run_hang_up(self, ctx: ServiceContext, request: _HangUp) -> dict[str, Any]:
        ctx.check(Exchange(at.execute("+CHUP")))
        return {}

    def _hung_up(self, outcome: Outcome) -> None:
        if isinstance(outcome, ServiceError):
            log.warning("modem %s: rejecting the call failed: %s", self.modem.id, outcome.message)
        else:
            log.info("modem %s: incoming call rejected", self.modem.id)
