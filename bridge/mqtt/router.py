"""Requests from the broker to the modems' workers, and their answers back.

Every request gets exactly one response, on `<base>/<owner>/response/<service>/<action>`
or the MQTT 5 Response Topic with its Correlation Data.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.log import redact
from bridge.mqtt.envelope import Transaction, parse_body, response, validate
from bridge.mqtt.link import Inbound, MqttLink
from bridge.mqtt.progress import ProgressReporter
from bridge.mqtt.topics import Topics
from bridge.services.base import Action
from bridge.services.errors import (
    CANCELLED,
    MODEM_OFFLINE,
    QUEUE_FULL,
    UNKNOWN_ACTION,
    ServiceError,
)
from bridge.worker import Job, ModemWorker, Outcome

log = logging.getLogger("bridge.mqtt")

JOBS = "jobs"


@dataclass(frozen=True)
class ReplyTarget:
    topic: str
    progress_topic: str
    correlation_data: bytes | None
    transaction: Transaction
    pooled: bool  # a pool job: the response names the modem that served it
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
        self._answered = answered
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mqtt-router", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop taking requests: those still arriving are answered `cancelled`."""
        self._closed.set()

    def join(self, timeout: float) -> None:
        self.link.inbox.put(Inbound("", b"", None, None))  # wakes the loop
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            try:
                message = self.link.inbox.get(timeout=1.0)
            except queue.Empty:
                continue
            if not message.topic:
                if self._closed.is_set():
                    return
                continue
            try:
                self.handle(message)
            except Exception:
                log.exception("handling a message on %s failed", message.topic)

    def handle(self, message: Inbound) -> None:
        parsed = self.topics.parse_request(message.topic)
        if parsed is None:
            if self._other is not None:
                self._other(message)
            return
        owner, key = parsed
        body, transaction, error = parse_body(message.payload, self.request_limit)
        target = ReplyTarget(
            topic=message.response_topic or self.topics.response(owner, key),
            progress_topic=self.topics.progress(owner, key),
            correlation_data=message.correlation_data,
            transaction=transaction,
            pooled=owner == JOBS,
            key=key,
            owner=owner,
        )
        if error is not None or body is None:
            self.answer(target, error or ServiceError("invalid_json", "empty"), None)
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
        worker = self._pick_worker(owner)
        if worker is None:
            self.answer(target, ServiceError(MODEM_OFFLINE, "no modem can take the job"), None)
            return
        modem_id = worker.modem.id
        reporter = ProgressReporter(lambda msg: self._send(target.progress_topic, msg), transaction)

        def done(outcome: Outcome) -> None:
            reporter.finish()
            self.answer(target, outcome, modem_id)

        job = Job(action, request, done, progress=reporter, label=f"{modem_id} {key}")
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

    def answer(self, target: ReplyTarget, outcome: Outcome, modem: str | None) -> None:
        payload = response(target.transaction, outcome, modem if target.pooled else None)
        self._send(target.topic, payload, target.correlation_data)
        served_by = modem or (None if target.pooled else target.owner)
        if self._answered is not None and served_by:
            self._answered(served_by, target.key, target.transaction, outcome)

    def _send(self, topic: str, payload: dict[str, Any], correlation: bytes | None = None) -> None:
        clean = redact(payload, self._secrets())
        self.link.publish(topic, json.dumps(clean).encode(), qos=1, correlation_data=correlation)
