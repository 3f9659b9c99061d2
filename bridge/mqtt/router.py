"""Requests from the broker to the modems' workers, and their answers back.

In a pool (API.md "Pool") a job this bridge cannot start now is forwarded to the bridge
with the most free modems, on its direct topic, and acknowledged only once the broker
has the forward (until then the journal holds it); see bridge/mqtt/pool.py.

Every request gets exactly one response, on `<base>/<owner>/response/<service>/<action>`
or the MQTT 5 Response Topic with its Correlation Data. Each is journaled before its
PUBACK and its response journaled before it is published (bridge/journal.py), so that a
crash loses neither; a redelivery the journal recognises is acknowledged, not run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.journal import Entry, Journal
from bridge.log import Redactor
from bridge.modem import Exchange
from bridge.mqtt.envelope import (
    Parsed,
    Transaction,
    oversize_stub,
    parse_body,
    response,
    validate,
)
from bridge.mqtt.link import Inbound, MqttLink
from bridge.mqtt.pool import MAX_HOPS, PoolView, free_first
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
    pooled: bool  # a pool job: the response names the bridge and modem that served it
    entry: int = 0  # its request journal entry; 0: not journaled
    key: str = ""  # `<service>/<action>`
    owner: str = ""  # the modem id, or `jobs`


Answered = Callable[[str, str, Transaction, Outcome], None]
"""(modem, `<service>/<action>`, transaction, outcome): told of every response sent."""


@dataclass(frozen=True)
class PoolJob:
    """A pool job as received: what forwarding it needs."""

    message: Inbound
    key: str
    body: dict[str, Any]  # with its transaction
    hops: int
    entry: int
    recovered: bool  # left by a crash: waits here for a modem rather than fail at start


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
        name: str = "",
        pool: PoolView | None = None,
    ) -> None:
        """`name`: this bridge's (its client id); `pool`: the other bridges' capacity,
        None when the pool is off (pool jobs are then run or queued here)."""
        self.link = link
        self.topics = topics
        self.actions = actions
        self.workers = workers
        self.request_limit = request_limit
        self._secrets = secrets
        self._redactor: Redactor | None = None  # built at the first response: secrets are fixed
        self._other = other
        self.name = name
        self.pool = pool
        self.journal = journal
        self.deliveries = Deliveries(wake=self._wake)
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
                message: Inbound | None = self.link.inbox.get(timeout=1.0)
            except queue.Empty:
                message = None
            self.deliveries.apply()
            if message is None:  # a second idle: write the delivered marks held
                self.journal.flush()
                continue
            if not message.topic:
                if self._ending.is_set():
                    return
                continue
            ack_now = True
            try:
                ack_now = self.handle(message)
            except Exception:
                log.exception("handling a message on %s failed", message.topic)
            finally:
                if ack_now:  # journaled by now (or not ours to journal)
                    self.link.ack(message)
            if self.journal.prune_due():
                self.journal.prune()

    def handle(self, message: Inbound) -> bool:
        """Take one message; False when its PUBACK waits (a forwarded pool job)."""
        if message.retain and self.topics.is_command(message.topic):
            self._retained(message)
            return True
        parsed = self._parse(message.topic)
        if parsed is None:
            if self._misshapen(message):
                return True
            if self._other is not None:
                self._other(message)
            self.rebalance()  # the message may be a capacity that shows a free modem
            return True
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
        if entry is None:
            return True
        return self.serve(message, entry)

    def _misshapen(self, message: Inbound) -> bool:
        """A request to a modem of ours on a topic that names no `<service>/<action>`:
        answered `unknown_action` on the response topic that mirrors it (or its MQTT 5
        Response Topic), never run, not journaled."""
        wrong = self.topics.misshapen_request(message.topic)
        if wrong is None or wrong[0] not in self.workers:
            return False
        owner, levels = wrong
        if message.retain:
            return True  # sent again on every connect: not answered again and again
        _, transaction, _ = parse_body(message.payload, self.request_limit)
        mirrored = self.topics.response(owner, levels).rstrip("/")
        target = ReplyTarget(
            topic=message.response_topic or mirrored,
            progress_topic="",
            correlation_data=message.correlation_data,
            transaction=transaction,
            pooled=False,
            key=levels,
            owner=owner,
        )
        reason = f"no action {levels!r}: a request topic ends in <service>/<action>"
        self.answer(target, ServiceError(UNKNOWN_ACTION, reason), None)
        return True

    def _parse(self, topic: str) -> tuple[str, str] | None:
        """(owner, key) of a request: a modem's, or a pool job's (owner `jobs`), whether
        from the shared topic or forwarded to this bridge."""
        direct = self.topics.parse_direct(topic)
        if direct is not None:
            return (JOBS, direct[1]) if direct[0] == self.name else None
        return self.topics.parse_request(topic)

    def serve(self, message: Inbound, entry: int, crashed: Entry | None = None) -> bool:
        """Answer, queue or forward a journaled request; False when it was forwarded
        (its PUBACK waits for the forward's). `crashed`: its entry as a crash left it;
        then an action with side effects is answered `interrupted`, not run again."""
        parsed = self._parse(message.topic)
        if parsed is None:
            return True
        owner, key = parsed
        body, transaction, error = parse_body(message.payload, self.request_limit)
        hops = _hops(body) if owner == JOBS else 0
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
            return True
        if message.retain:
            self.answer(target, ServiceError(INVALID_REQUEST, RETAINED_REFUSED), None)
            return True
        if self._closed.is_set():
            self.answer(target, ServiceError(CANCELLED, "the bridge is shutting down"), None)
            return True
        action = self.actions.get(key)
        if action is None:
            self.answer(target, ServiceError(UNKNOWN_ACTION, f"no action {key}"), None)
            return True
        try:
            request = validate(action.model, body.body)
        except ServiceError as exc:
            self.answer(target, exc, None)
            return True
        if crashed is not None and action.has_side_effects(request):
            self.answer(target, interrupted(crashed.may_have_happened(action.commits_on)), None)
            return True
        pool_body = body.body if transaction is None else {**body.body, "transaction": transaction}
        if owner != JOBS:
            self._submit(target, action, request, [owner] if owner in self.workers else [])
            return True
        job = PoolJob(message, key, pool_body, hops, entry, crashed is not None)
        return self._place(target, action, request, job)

    def _retained(self, message: Inbound) -> None:
        """A retained command is sent again on every (re)subscribe: never run it. A
        request is answered `invalid_request` (not journaled); a notify or a button
        press is dropped. Logged once per topic."""
        if message.topic not in self._retained_seen:
            self._retained_seen.add(message.topic)
            log.warning(
                "retained message on %s not run: publish commands without retain", message.topic
            )
        if self._parse(message.topic) is not None:
            self.serve(message, 0)

    def _place(self, target: ReplyTarget, action: Action, request: Request, job: PoolJob) -> bool:
        """A pool job: run it now on an idle online modem; else forward it (the bridge
        with the most free modems, or, with no modem online here, any with one online);
        else queue it on the least loaded online modem here. False: forwarded."""
        order = free_first(self.workers.items())
        if order and self.workers[order[0]].idle:
            return self._submit(target, action, request, order)
        if self._forward(job, need_free=bool(order)):
            return False
        if not order and job.recovered:
            order = list(self.workers)  # at start-up: its modem comes online soon
        later = None
        if self.pool is not None and job.hops < MAX_HOPS:
            later = functools.partial(self._forward, job, need_free=True, ack=False)
        if self._submit(target, action, request, order, last=False, forward=later):
            return True
        if self._forward(job, need_free=False):  # every queue here is full
            return False
        self._submit(target, action, request, order)  # answers queue_full or modem_offline
        return True

    def rebalance(self) -> None:
        """Pass waiting pool jobs on to bridges that now have a free modem, rather than
        leave them behind a long job here (or on a modem gone offline)."""
        if self.pool is None:
            return
        room = self.pool.free_modems()
        for worker in self.workers.values():
            if room <= 0:
                return
            if worker.idle and worker.online:
                continue  # it starts them itself
            for waiting in worker.withdraw(room):
                room -= 1
                if waiting.forward is not None and waiting.forward():
                    continue
                if not worker.submit(waiting):
                    waiting.finish(ServiceError(QUEUE_FULL, "the queue is full"))

    def _forward(self, job: PoolJob, *, need_free: bool, ack: bool = True) -> bool:
        """Publish the job on the best other bridge's direct topic, hop count raised and
        the requester's response topic and correlation data kept; its journal entry is
        closed, and the original acknowledged (`ack`: not yet done), once the broker has
        the forward."""
        if self.pool is None or job.hops >= MAX_HOPS:
            return False
        peer = self.pool.best(need_free=need_free)
        if peer is None:
            return False
        topic = self.topics.direct(peer, job.key)
        data = json.dumps({**job.body, "hops": job.hops + 1}).encode()
        message, entry = job.message, job.entry

        def forwarded() -> None:  # the router's thread: the broker has the forward
            if entry:
                self.journal.forwarded(entry, topic)
            if ack:
                self.link.ack(message)

        info = self.link.publish(
            topic,
            data,
            qos=1,
            response_topic=message.response_topic,
            correlation_data=message.correlation_data,
        )
        self.deliveries.sent(info.mid, forwarded)
        log.debug("job on %s forwarded to %s (hop %d)", message.topic, peer, job.hops + 1)
        return True

    def _submit(
        self,
        target: ReplyTarget,
        action: Action,
        request: Request,
        modems: list[str],
        *,
        last: bool = True,
        forward: Callable[[], bool] | None = None,
    ) -> bool:
        """Queue the job on the first of `modems` whose queue has room; it answers
        `target` when it ends. With none: False, and (when `last`) the answer
        `modem_offline` (no modem) or `queue_full`."""
        for modem_id in modems:
            job = self._job(target, action, request, modem_id)
            job.forward = forward
            if self.workers[modem_id].submit(job):
                return True
        if last and not modems:
            self.answer(target, ServiceError(MODEM_OFFLINE, "no modem can take the job"), None)
        elif last:
            full = (
                f"modem {modems[0]}'s queue is full"
                if len(modems) == 1
                else f"the queues of modems {', '.join(modems)} are full"
            )
            self.answer(target, ServiceError(QUEUE_FULL, full), None)
        return False

    def _job(self, target: ReplyTarget, action: Action, request: Request, modem_id: str) -> Job:
        entry = target.entry
        reporter = ProgressReporter(
            lambda msg: self._send(target.progress_topic, msg), target.transaction
        )

        first = action.has_side_effects(request)  # its answer is journaled before it goes out

        def done(outcome: Outcome) -> None:
            reporter.finish()
            self.answer(target, outcome, modem_id, journal_first=first)

        return Job(
            action,
            request,
            done,
            progress=reporter,
            label=f"{modem_id} {action.key}",
            on_start=self._start_noted(action, request, entry),
            on_send=self._side_effects_noted(action, request, entry),
        )

    def _start_noted(self, action: Action, request: Request, entry: int) -> Callable[[], None]:
        """The hook that journals the start of a job with side effects (whether it may
        have happened can rest on it). Others are run again after a crash whether they
        had started or not: their start costs no write."""
        if not entry or not action.has_side_effects(request):
            return lambda: None
        return lambda: self.journal.running(entry)

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

    def answer(
        self,
        target: ReplyTarget,
        outcome: Outcome,
        modem: str | None,
        *,
        journal_first: bool = True,
    ) -> None:
        """Journal the response, then publish it: a crash between the two publishes it
        at the next start rather than losing it. A request without side effects
        (`journal_first` False) is answered first and journaled after, off the
        response's way: a crash between the two runs it again, one more response."""
        served = f"{self.name}/{modem}" if target.pooled and modem is not None else None
        payload = response(target.transaction, outcome, served)
        data = self._encode(payload)
        if target.entry and journal_first:
            self.journal.answered(target.entry, target.topic, data)
        self.deliver(target.entry, target.topic, data, target.correlation_data)
        if target.entry and not journal_first:
            self.journal.answered(target.entry, target.topic, data)
        served_by = modem or (None if target.pooled else target.owner)
        if self._answered is not None and served_by:
            self._answered(served_by, target.key, target.transaction, outcome)

    def deliver(self, entry: int, topic: str, data: bytes, correlation: bytes | None) -> None:
        """Publish a journaled response; the journal hears when the broker has it."""
        info = self.link.publish(topic, data, qos=1, correlation_data=correlation)
        if entry:  # the mark can wait for the router's next wake: no wake of its own
            mark = functools.partial(self.journal.delivered, entry)
            self.deliveries.sent(info.mid, mark, prompt=False)

    def _encode(self, payload: dict[str, Any]) -> bytes:
        if self._redactor is None:  # secrets are fixed: made once
            self._redactor = Redactor(self._secrets())
        return json.dumps(self._redactor.redact(payload)).encode()

    def _send(self, topic: str, payload: dict[str, Any], correlation: bytes | None = None) -> None:
        self.link.publish(topic, self._encode(payload), qos=1, correlation_data=correlation)


def _hops(body: Parsed | None) -> int:
    """Take the pool's hop count out of a job's body (0 for a job from a requester);
    one that is not a small whole number counts as the last hop."""
    if body is None:
        return 0
    hops = body.body.pop("hops", 0)
    if isinstance(hops, bool) or not isinstance(hops, int) or not 0 <= hops <= MAX_HOPS:
        return MAX_HOPS
    return hops


def interrupted(may_have_happened: bool) -> ServiceError:
    return ServiceError(
        INTERRUPTED,
        "the bridge stopped while this request was pending; it is not run again"
        + (": it may have been carried out" if may_have_happened else ""),
        {"may_have_happened": may_have_happened},
    )


class Deliveries:
    """What to do once the broker has a publish (by paho's message id): mark a journaled
    response delivered, or acknowledge a forwarded pool job. paho may report the PUBACK
    before `publish()` has returned the id to us, so early ones are remembered a while
    (the ids of other publishes too, hence the bound). PUBACKs arrive on paho's network
    thread, which holds paho's locks: they are only queued there, and `apply` (the
    router's thread) acts on them (a journal write, whose lock an fsync may hold). Only
    a PUBACK that must be acted on promptly wakes the router (`sent(prompt=True)`)."""

    EARLY_KEPT = 4096

    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self._wake = wake
        self._lock = threading.Lock()  # never held while calling paho
        self._pending: dict[int, Callable[[], None]] = {}
        self._early: dict[int, None] = {}
        self._acked: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._patient: set[int] = set()  # pending ids whose PUBACK wakes no one

    def sent(self, mid: int, on_ack: Callable[[], None], *, prompt: bool = True) -> None:
        """`on_ack` once the broker has `mid`: at once when it is there already, else
        when `apply` runs after the PUBACK (`prompt`: woken for it; else at its next
        wake, which comes within a second)."""
        with self._lock:
            early = mid in self._early
            if early:
                del self._early[mid]
            else:
                self._pending[mid] = on_ack
                if not prompt:
                    self._patient.add(mid)
        if early:
            on_ack()

    def acknowledged(self, mid: int) -> None:
        """paho's network thread: the broker has the message `mid`. Only queued; the
        router woken unless the id is known to wait (one not yet known does wake it)."""
        self._acked.put(mid)
        if mid not in self._patient:
            self._wake()

    def apply(self) -> None:
        """Act on the PUBACKs received so far (not on paho's thread)."""
        while True:
            try:
                mid = self._acked.get_nowait()
            except queue.Empty:
                return
            self._delivered(mid)

    def _delivered(self, mid: int) -> None:
        with self._lock:
            on_ack = self._pending.pop(mid, None)
            self._patient.discard(mid)
            if on_ack is None:
                self._early[mid] = None
                if len(self._early) > self.EARLY_KEPT:
                    del self._early[next(iter(self._early))]
                return
        on_ack()
