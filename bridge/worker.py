"""One worker per modem: runs its requests one at a time from a bounded queue.

Every job ends in exactly one call of its `done` callback: the action's data, or a
ServiceError (including `cancelled` at shutdown and `queue_full` at the door).
Short control actions (`Action.immediate`, e.g. smtp/stop) have a lane of their
own, so they are not stuck behind the very request they are meant to stop; the
engine still sends one command at a time.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.config import ModemSettings, Settings
from bridge.files import FilesArea
from bridge.liveness import Liveness
from bridge.modem import Exchange, Modem, ModemError
from bridge.services.base import Action, ProgressFn, Request, ServiceContext
from bridge.services.errors import CANCELLED, MODEM_ERROR, ServiceError, from_modem

log = logging.getLogger("bridge.worker")

Outcome = dict[str, Any] | ServiceError


@dataclass
class Job:
    action: Action
    request: Request
    done: Callable[[Outcome], None]
    progress: ProgressFn = lambda stage, done, total: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    label: str = ""
    # the request journal's hooks: the worker took the job; a command is about to go out
    on_start: Callable[[], None] = lambda: None
    on_send: Callable[[Exchange], None] | None = None
    # a pool job still waiting may be passed on to another bridge: True when it was
    forward: Callable[[], bool] | None = None
    liveness: Liveness = field(default_factory=Liveness)  # the watchdog's view of it

    def finish(self, outcome: Outcome) -> None:
        try:
            self.done(outcome)
        except Exception:
            log.exception("answering %s failed", self.label or self.action.key)


class _Lane:
    """A bounded queue and the thread that empties it, one job at a time."""

    def __init__(
        self,
        name: str,
        size: int,
        run: Callable[[Job], Outcome],
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=size)
        self._run = run
        self._changed = changed  # queued, started or finished a job (the pool's capacity)
        self.current: Job | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def idle(self) -> bool:
        return self.current is None and self._queue.empty()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def put(self, job: Job) -> bool:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        self._changed()
        return True

    def withdraw(self, limit: int) -> list[Job]:
        """Take up to `limit` waiting jobs that may be forwarded out of the queue, oldest
        first (the pool: another bridge has a free modem)."""
        taken: list[Job] = []
        with self._queue.mutex:
            for job in list(self._queue.queue):
                if len(taken) >= limit:
                    break
                if job is not None and job.forward is not None:
                    self._queue.queue.remove(job)
                    taken.append(job)
            if taken:
                self._queue.not_full.notify(len(taken))
        if taken:
            self._changed()
        return taken

    def cancel_queued(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.finish(ServiceError(CANCELLED, "the bridge is shutting down"))
        self._queue.put(None)

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self.current = job
            self._changed()
            job.liveness.beat()  # its time in the queue was not its silence
            try:
                job.on_start()
                job.finish(self._run(job))
            finally:
                self.current = None
                self._changed()


class ModemWorker:
    """Runs jobs for one modem; see the module docstring."""

    def __init__(
        self, modem: Modem, settings: Settings, modem_settings: ModemSettings, files: FilesArea
    ) -> None:
        self.modem = modem
        self.settings = settings
        self.modem_settings = modem_settings
        self.files = files
        size = modem_settings.queue_size
        self._listeners: list[Callable[[], None]] = []
        self._lanes = {
            False: _Lane(f"modem-{modem.id}-worker", size, self._run, self._changed),
            True: _Lane(f"modem-{modem.id}-control", size, self._run, self._changed),
        }
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> None:
        for lane in self._lanes.values():
            lane.start()

    def add_load_listener(self, listener: Callable[[], None]) -> None:
        """Called (on any thread; it must only signal) when a job is queued, starts or
        ends, or the modem's state changes: the pool's capacity follows it."""
        self._listeners.append(listener)
        self.modem.add_state_listener(lambda change: listener())

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    @property
    def online(self) -> bool:
        return self.modem.state.state.value == "online"

    @property
    def idle(self) -> bool:
        """Nothing running and nothing queued (the pool takes jobs only then)."""
        return all(lane.idle for lane in self._lanes.values())

    @property
    def queued(self) -> int:
        """Jobs waiting (not running), for the service manager's status line."""
        return sum(lane.depth for lane in self._lanes.values())

    def wedged(self, now: float) -> str | None:
        """Why this worker makes no progress, or None: a job silent past the wait it is
        in (bridge.liveness; request_timeout when in none) plus grace, or a lane that
        died. A long job that keeps moving is not stuck."""
        floor = self.modem_settings.request_timeout
        for lane in self._lanes.values():
            job = lane.current
            silent = job.liveness.stuck_for(now, floor) if job is not None else None
            if job is not None and silent is not None:
                return f"{job.label or job.action.key} silent for {silent:.0f} s"
            if not lane.alive and not self._closed:
                return "a worker thread ended"
        return None

    def withdraw(self, limit: int) -> list[Job]:
        """Waiting pool jobs another bridge could start now (see `_Lane.withdraw`)."""
        taken: list[Job] = []
        for lane in self._lanes.values():
            taken += lane.withdraw(limit - len(taken))
        return taken

    def submit(self, job: Job) -> bool:
        """Queue a job; False when its queue is full or the worker is stopping."""
        with self._lock:
            return not self._closed and self._lanes[job.action.immediate].put(job)

    def stop(self, grace: float) -> None:
        """Stop taking jobs, answer queued ones `cancelled`, give running ones `grace`
        seconds, then cancel them too."""
        with self._lock:
            self._closed = True
        for lane in self._lanes.values():
            lane.cancel_queued()
        give_up = time.monotonic() + grace
        if all(lane.join(max(0.0, give_up - time.monotonic())) for lane in self._lanes.values()):
            return
        running = self.modem.engine.in_flight()  # taken first: a job's cleanup runs on
        for lane in self._lanes.values():
            if lane.current is not None:
                lane.current.cancelled.set()
        if running is not None:
            self.modem.engine.abort(ModemError(CANCELLED, "the bridge is shutting down"), running)
        self.modem.engine.fail_waiters(ModemError(CANCELLED, "the bridge is shutting down"))
        for lane in self._lanes.values():
            lane.join(10)

    def _run(self, job: Job) -> Outcome:
        ctx = ServiceContext(
            modem=self.modem,
            settings=self.settings,
            modem_settings=self.modem_settings,
            files=self.files,
            progress=functools.partial(_progressing, job),
            cancelled=job.cancelled,
            started=time.monotonic(),
            on_send=job.on_send,
            liveness=job.liveness,
        )
        try:
            return job.action.run(ctx, job.request)
        except ServiceError as exc:
            return exc
        except ModemError as exc:
            return from_modem(exc)
        except Exception as exc:  # a bug must answer the request, not kill the worker
            log.exception("%s failed", job.action.key)
            return ServiceError(MODEM_ERROR, f"internal error: {type(exc).__name__}")


def _progressing(job: Job, stage: str, done: int | None, total: int | None) -> None:
    """A progress report is a sign of life (and goes on to the job's reporter)."""
    job.liveness.alive()
    job.progress(stage, done, total)


class Wakeable:
    """A thread of its own that sleeps until `kick()` or a timeout, until `stop()`:
    what periodic jobs and the pool's capacity advertiser share."""

    def __init__(self, name: str) -> None:
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        self._kick.set()

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        raise NotImplementedError


class PeriodicJob(Wakeable):
    """Submits one internal job every `interval` seconds, and at once on `kick()`, while
    the modem is online: the status refresh and POP3 polling. A full queue skips a round."""

    def __init__(
        self,
        worker: ModemWorker,
        action: Action,
        request: Request,
        interval: float,
        done: Callable[[Outcome], None],
    ) -> None:
        self.worker = worker
        self.action = action
        self.request = request
        self.interval = interval
        self.done = done
        super().__init__(f"modem-{worker.modem.id}-{action.key}")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._kick.wait(self.interval)
            self._kick.clear()
            if self._stop.is_set():
                return
            if self.worker.modem.state.state.value != "online":
                continue
            label = f"{self.worker.modem.id} {self.action.key} (periodic)"
            if not self.worker.submit(Job(self.action, self.request, self.done, label=label)):
                log.info("%s: queue full, round skipped", label)
