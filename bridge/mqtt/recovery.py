"""After a restart, before new requests: what the request journal holds unfinished.

The module is left clean first (bridge/services/leftovers.py), on every modem, ahead of
anything else in its queue. Then each request a crash left without a response goes
through the router again, flagged as crashed: one without side effects is run again,
one with is answered `interrupted`. Responses the broker never acknowledged are
published again.
"""

from __future__ import annotations

import logging

from bridge.journal import Journal
from bridge.mqtt.link import Inbound
from bridge.mqtt.router import Router
from bridge.services.leftovers import LEAVE_CLEAN, LeaveCleanRequest
from bridge.worker import Job, ModemWorker, Outcome

log = logging.getLogger("bridge.journal")


def recover(journal: Journal, router: Router, workers: dict[str, ModemWorker]) -> None:
    """Queue the clean-up and the crashed requests, republish unsent responses; quick:
    it waits for nothing (the workers run what it queued once their modems are online)."""
    unfinished = journal.unfinished()
    unsent = journal.unsent()
    if unfinished:
        log.info("request journal: %d request(s) left unanswered by a crash", len(unfinished))
        # any of them may have started a transfer (a side-effect-free start is not
        # journaled): let the module finish talking before the stops
        for worker in workers.values():
            _leave_clean(worker, LeaveCleanRequest(settle=True))
    for entry in unfinished:
        message = Inbound(entry.topic, entry.payload, entry.response_topic, entry.correlation)
        try:
            router.serve(message, entry.id, crashed=entry)
        except Exception:
            log.exception("recovering journal entry %s failed", entry.id)
    for entry in unsent:
        if entry.reply_topic is not None and entry.reply is not None:
            router.deliver(entry.id, entry.reply_topic, entry.reply, entry.correlation)
    if unsent:
        log.info("request journal: %d response(s) published again", len(unsent))
    journal.prune()


def _leave_clean(worker: ModemWorker, request: LeaveCleanRequest) -> None:
    def done(outcome: Outcome) -> None:
        if isinstance(outcome, dict):
            return
        log.warning("modem %s: leaving it clean failed: %s", worker.modem.id, outcome.message)

    label = f"{worker.modem.id} leave clean after a crash"
    if not worker.submit(Job(LEAVE_CLEAN, request, done, label=label)):
        log.warning("%s: the queue is full", label)
