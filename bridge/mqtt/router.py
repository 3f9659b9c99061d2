"""Requests from the broker to the modems' workers, and their answers back.

Every request gets exactly one response, on `<base>/<owner>/response/<service>/<action>`
or the MQTT 5 Response Topic with its Correlation Data. Each is journaled before its
PUBACK and its response journaled before it is published (bridge/journal.py), so that a
crash loses neither; a redelivery the journal recognises is acknowledged, not run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.journal import Entry, Journal
from bridge.log import redact
from bridge.modem import Exchange
from bridge.mqtt.envelope import Transaction, oversize_stub, parse_body, response, validate
from bridge.mqtt.link import Inbound, MqttLink
from bridge.mqtt.progress import ProgressReporter
from bridge.mqtt.topics import Topics
from bridge.services.base import Action, Request
from bridge.services.errors import (
    CANCELLED,
    INTERRUPTED,
    INVALID_REQUEST,
    MODEM_OFFLINE,
    QUEUE_FULL,
    UNKNOWN_ACTION,
    ServiceError,
)
from bridge.worker import Job, ModemWorker, Outcome

log = logging.getLogger("bridge.mqtt")

JOBS = "jobs"
RETAINED_REFUSED = "retained requests are not run: publish without retain (and clear it)"


@dataclass(frozen=True)
class ReplyTarget:
    topic: str
    progress_topic: str
    correlation_data: bytes | None
    transaction: Transaction
    pooled: bool  # a pool job: the response names the modem that served it
    entry: int = 0  # its request journal entry; 0: not journaled
    key: str = ""  # `<service>/<action>`
    owner: str = ""  # the modem id, or `jobs`


Answered = Callable[[str, str, Transaction, Outcome], None]
"""(modem, `<service>/<action>`, transaction, outcome): told of every response sent."""


class Router:
    """Reads the link's inbox on its own thread; see the module docstring."""

    def __init__(
        self,
        link: MqttLink,
        topics: Topics,
        actions: dict[str, Action],
        workers: dict[str, ModemWorker],
        *,
        request_limit: int,
        secrets: Callable[[], tuple[str, ...]],
        journal: Journal,
        other: Callable[[Inbound], None] | None = None,
        answered: Answered | None = None,
    ) -> None:
        self.link = link
        self.topics = topics
        self.actions = actions
        self.workers = workers
        self.request_limit = request_limit
        self._secrets = secrets
        self._other = other
        self.journal = journal
        self.deliveries = Deliveries(journal, wake=self._wake)
        self._answered = answered
        self._retained_seen: set[str] = set()
        self._closed = threading.Event()
        self._ending = threading.Event()  # join(): the loop ends (a wake alone does not)
        self._thread = threading.Thread(target=self._loop, name="mqtt-router", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop taking requests: those still arriving are answered `cancelled`."""
        self._closed.set()

    def join(self, timeout: float) -> None:
        self._ending.set()
        self._wake()
        self._thread.join(timeout)

    def _wake(self) -> None:
        self.link.inbox.put(Inbound("", b"", None, None))

    def _loop(self) -> None:
        while True:
            try:
                message = self.link.inbox.get(timeout=1.0)
            except queue.Empty:
                continue
            finally:
                self.deliveries.apply()
            if not message.topic:
                if self._ending.is_set():
                    return
                continue
            try:
                self.handle(message)
            except Exception:
                log.exception("handling a message on %s failed", message.topic)
            finally:
                self.link.ack(message)  # journaled by now (or not ours to journal)
            if self.journal.prune_due():
                self.journal.prune()

    def handle(self, message: Inbound) -> None:
        if message.retain and self.topics.is_command(message.topic):
            self._retained(message)
            return
        if self.topics.parse_request(message.topic) is None:
            if self._other is not None:
                self._other(message)
            return
        if len(message.payload) > self.request_limit:  # answered too_large, kept as a stub
            message = dataclasses.replace(message, payload=oversize_stub(message.payload))
        entry = self.journal.admit(
            message.topic,
            message.payload,
            response_topic=message.response_topic,
            correlation=message.correlation_data,
            mid=message.mid,
            dup=message.dup,
        )
        if entry is not None:
            self.serve(message, entry)

    def serve(self, message: Inbound, entry: int, crashed: Entry | None = None) -> None:
        """Answer or queue a journaled request. `crashed`: its entry as a crash left it;
        then an action with side effects is answered `interrupted`, not run again."""
        parsed = self.topics.parse_request(message.topic)
        if parsed is None:
            return
        owner, key = parsed
        body, transaction, error = parse_body(message.payload, self.request_limit)
        target = ReplyTarget(
            topic=message.response_topic or self.topics.response(owner, key),
            progress_topic=self.topics.progress(owner, key),
            correlation_data=message.correlation_data,
            transaction=transaction,
            pooled=owner == JOBS,
            entry=entry,
            key=key,
            owner=owner,
        )
        if error is not None or body is None:
            self.answer(target, error or ServiceError("invalid_json", "empty"), None)
            return
        if message.retain:
            self.answer(target, ServiceError(INVALID_REQUEST, RETAINED_REFUSED), None)
            return
        if self._closed.is_set():
            self.answer(target, ServiceError(CANCELLED, "the bridge is shutting down"), None)
            return
        action = self.actions.get(key)
        if action is None:
            self.answer(target, ServiceError(UNKNOWN_ACTION, f"no action {key}"), None)
            return
        try:
            request = validate(action.model, body.body)
        except ServiceError as exc:
            self.answer(target, exc, None)
            return
        if crashed is not None and action.has_side_effects(request):
            self.answer(target, interrupted(crashed.may_have_happened(action.commits_on)), None)
            return
        self._submit(target, owner, action, request)

    def _retained(self, message: Inbound) -> None:
        """A retained command is sent again on every (re)subscribe: never run it. A
        request is answered `invalid_request` (not journaled); a notify or a button
        press is dropped. Logged once per topic."""
        if message.topic not in self._retained_seen:
            self._retained_seen.add(message.topic)
            log.warning(
                "retained message on %s not run: publish commands without retain", message.topic
            )
        if self.topics.parse_request(message.topic) is not None:
            self.serve(message, 0)

    def _submit(self, target: ReplyTarget, owner: str, action: Action, request: Request) -> None:
        """Queue the job on a modem's worker; it answers `target` when it ends."""
        worker = self._pick_worker(owner)
        if worker is None:
            self.answer(target, ServiceError(MODEM_OFFLINE, "no modem can take the job"), None)
            return
        modem_id, entry = worker.modem.id, target.entry
        reporter = ProgressReporter(
            lambda msg: self._send(target.progress_topic, msg), target.transaction
        )

        def done(outcome: Outcome) -> None:
            reporter.finish()
            self.answer(target, outcome, modem_id)

        job = Job(
            action,
            request,
            done,
            progress=reporter,
            label=f"{modem_id} {action.key}",
            on_start=lambda: self.journal.running(entry),
            on_send=self._side_effects_noted(action, request, entry),
        )
        if not worker.submit(job):
            self.answer(
                target, ServiceError(QUEUE_FULL, f"modem {modem_id}'s queue is full"), modem_id
            )

    def _pick_worker(self, owner: str) -> ModemWorker | None:
        if owner != JOBS:
            return self.workers.get(owner)
        online = [w for w in self.workers.values() if w.modem.state.state.value == "online"]
        for worker in online:
            if worker.idle:
                return worker
        return online[0] if online else None

    def _side_effects_noted(
        self, action: Action, request: Request, entry: int
    ) -> Callable[[Exchange], None] | None:
        """The hook that journals the first command that may carry out the effect."""
        if not entry or not action.has_side_effects(request):
            return None
        noted = threading.Event()

        def on_send(exchange: Exchange) -> None:
            if not noted.is_set() and action.commits(exchange):
                self.journal.committed(entry)  # before the command goes out
                noted.set()

        return on_send

    def answer(self, target: ReplyTarget, outcome: Outcome, modem: str | None) -> None:
        """Journal the response, then publish it: a crash between the two publishes it
        at the next start rather than losing it."""
        payload = response(target.transaction, outcome, modem if target.pooled else None)
        data = self._encode(payload)
        if target.entry:
            self.journal.answered(target.entry, target.topic, data)
        self.deliver(target.entry, target.topic, data, target.correlation_data)
        served_by = modem or (None if target.pooled else target.owner)
        if self._answered is not None and served_by:
            self._answered(served_by, target.key, target.transaction, outcome)

    def deliver(self, entry: int, topic: str, data: bytes, correlation: bytes | None) -> None:
        """Publish a journaled response; the journal hears when the broker has it."""
        info = self.link.publish(topic, data, qos=1, correlation_data=correlation)
        if entry:
            self.deliveries.sent(info.mid, entry)

    def _encode(self, payload: dict[str, Any]) -> bytes:
        return json.dumps(redact(payload, self._secrets())).encode()

    def _send(self, topic: str, payload: dict[str, Any], correlation: bytes | None = None) -> None:
        self.link.publish(topic, self._encode(payload), qos=1, correlation_data=correlation)


def interrupted(may_have_happened: bool) -> ServiceError:
    return ServiceError(
        INTERRUPTED,
        "the bridge stopped while this request was pending; it is not run again"
        + (": it may have been carried out" if may_have_happened else ""),
        {"may_have_happened": may_have_happened},
    )


class Deliveries:
    """Which published response (by paho's message id) belongs to which journal entry,
    so that the broker's PUBACK marks it delivered. paho may report the PUBACK before
    `publish()` has returned the id to us, so early ones are remembered a while (the
    ids of other publishes too, hence the bound). PUBACKs arrive on paho's network
    thread, which holds paho's locks: they are only queued there, and `apply` (the
    router's thread) writes them to the journal, whose lock an fsync may hold."""

    EARLY_KEPT = 4096

    def __init__(self, journal: Journal, wake: Callable[[], None] = lambda: None) -> None:
        self._journal = journal
        self._wake = wake
        self._lock = threading.Lock()  # never held while calling paho
        self._entries: dict[int, int] = {}
        self._early: dict[int, None] = {}
        self._acked: queue.SimpleQueue[int] = queue.SimpleQueue()

    def sent(self, mid: int, entry: int) -> None:
        with self._lock:
            early = mid in self._early
            if early:
                del self._early[mid]
            else:
                self._entries[mid] = entry
        if early:
            self._journal.delivered(entry)

    def acknowledged(self, mid: int) -> None:
        """paho's network thread: the broker has the message `mid`. Only queued."""
        self._acked.put(mid)
        self._wake()

    def apply(self) -> None:
        """Mark the responses acknowledged so far delivered (not on paho's thread)."""
        while True:
            try:
                mid = self._acked.get_nowait()
            except queue.Empty:
                return
            self._delivered(mid)

    def _delivered(self, mid: int) -> None:
        with self._lock:
            entry = self._entries.pop(mid, None)
            if entry is None:
                self._early[mid] = None
                if len(self._early) > self.EARLY_KEPT:
                    del self._early[next(iter(self._early))]
                return
        self._journal.delivered(entry)
