"""What every action gets and how it is registered.

An action is a request model (pydantic, unknown fields rejected) and a function
`(ServiceContext, request) -> dict` that returns the response's `data` or raises
`ServiceError`. Registration is by decorator; `load_actions()` imports every module
of this package so the router never changes when a service is added.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from bridge.at import Urc
from bridge.config import ModemSettings, Settings
from bridge.files import FilesArea
from bridge.liveness import Liveness
from bridge.modem import Exchange, ModemError, Reply
from bridge.modem.engine import UrcWaiter as UrcWaiter  # re-exported: services type with it
from bridge.modem.errors import TIMEOUT as MODEM_TIMEOUT
from bridge.modem.initialise import Identity
from bridge.modem.modem import StateChange
from bridge.services.errors import (
    CANCELLED,
    MODEM_ERROR,
    TIMEOUT,
    ServiceError,
    from_modem,
    module_error,
)

log = logging.getLogger("bridge.services")

WAKE_EVERY = 0.05  # a URC wait looks at cancellation this often (well within 0.1 s)
SMS_SETUP_BOUND = 4 * 5.0  # the SMS settings: four commands of the default timeout


class Request(BaseModel):
    """Base of every request model: strict about unknown fields and about types (one rule
    for every field: `"5"` is not a number, `1` not a boolean)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


ProgressFn = Callable[[str, int | None, int | None], None]
"""progress(stage, bytes done or None, total or None)."""


class ModemPort(Protocol):
    """What of a Modem the context uses (a scripted fake in the transcript tests)."""

    id: str
    identity: Identity | None

    @property
    def state(self) -> StateChange: ...

    def run(self, exchange: Exchange, wait_online: float = 0.0) -> Reply: ...

    def urc_waiter(self, predicate: Callable[[Urc], bool]) -> AbstractContextManager[UrcWaiter]: ...

    def emit_event(self, event_type: str, **fields: Any) -> None: ...

    def restart(self, timeout: float) -> bool: ...

    def wait_quiet(self, quiet: float, bound: float) -> bool: ...

    def ensure_sms(self) -> str | None: ...


@dataclass
class ServiceContext:
    """Everything an action may use while it runs on its modem's worker, and the only
    way it reaches the modem: `run`/`check` an exchange, `urc_waiter` + `wait_urc` for a
    result that comes later, `cleanup()` for what must run after a cancellation."""

    modem: ModemPort  # for the context's own use: services go through the methods
    settings: Settings
    modem_settings: ModemSettings
    files: FilesArea
    progress: ProgressFn
    cancelled: threading.Event
    started: float  # time.monotonic() when the worker took the job
    online_wait: float | None = None  # None: what is left of request_timeout
    # told of every command before it goes out (the request journal notes side effects)
    on_send: Callable[[Exchange], None] | None = None
    # its signs of life and the wait it is in, for the watchdog (bridge.liveness)
    liveness: Liveness = dataclasses.field(default_factory=Liveness)

    @property
    def modem_id(self) -> str:
        return self.modem.id

    @property
    def modem_key(self) -> int:
        """Tells this modem from another of the same id (in another bridge)."""
        return id(self.modem)

    @property
    def identity(self) -> Identity | None:
        return self.modem.identity

    @property
    def state(self) -> StateChange:
        return self.modem.state

    def time_left(self) -> float:
        """Seconds left of the request's request_timeout."""
        elapsed = time.monotonic() - self.started
        return max(0.0, self.modem_settings.request_timeout - elapsed)

    def run(self, exchange: Exchange) -> Reply:
        """One exchange, once the modem is online (waiting up to request_timeout)."""
        if self.cancelled.is_set():
            raise ServiceError(CANCELLED, "the request was cancelled")
        wait = self.time_left() if self.online_wait is None else self.online_wait
        if self.on_send is not None:
            self.on_send(exchange)
        self.liveness.waiting(wait + exchange.timeout)
        try:
            return self.modem.run(exchange, wait_online=wait)
        except ModemError as exc:
            raise from_modem(exc) from exc
        finally:
            self.liveness.beat()

    def check(self, exchange: Exchange) -> Reply:
        """Like `run`, but anything but OK is `modem_error` with what the module said."""
        reply = self.run(exchange)
        if not reply.final.ok:
            raise module_error(exchange, reply.final)
        return reply

    def urc_waiter(self, predicate: Callable[[Urc], bool]) -> AbstractContextManager[UrcWaiter]:
        """Collect matching URCs from now on (register before the command that causes
        them, so a fast result is not missed); read them with `wait_urc`/`next_urc`."""
        return self.modem.urc_waiter(predicate)

    def next_urc(self, waiter: UrcWaiter, timeout: float) -> Urc | None:
        """The next collected URC within `timeout` (0: only what has arrived), None when
        none came; ServiceError(cancelled) within WAKE_EVERY of a cancellation, and the
        modem's error when the conversation ended (unplug, reboot, shutdown)."""
        deadline = time.monotonic() + timeout
        self.liveness.waiting(timeout)
        while True:
            if self.cancelled.is_set():
                raise ServiceError(CANCELLED, "the request was cancelled")
            left = deadline - time.monotonic()
            try:
                urc = waiter.wait(max(0.0, min(WAKE_EVERY, left)))
                self.liveness.beat()
                return urc
            except ModemError as exc:
                if exc.code != MODEM_TIMEOUT:
                    raise from_modem(exc) from exc
            if left <= WAKE_EVERY:
                return None

    def wait_urc(self, waiter: UrcWaiter, timeout: float) -> Urc:
        """Like `next_urc`, but silence for `timeout` seconds is ServiceError(timeout)."""
        urc = self.next_urc(waiter, timeout)
        if urc is None:
            raise ServiceError(TIMEOUT, f"no result from the module within {timeout:g}s")
        return urc

    @contextmanager
    def cleanup(self) -> Iterator[ServiceContext]:
        """A context for the clean end of an operation (logout, stop a stack, remove a
        staged file): neither the request's cancellation nor its deadline stops it, it
        does not wait for an offline modem, and a ServiceError inside is logged, not
        raised, so the request's own outcome is what is reported."""
        quiet = dataclasses.replace(
            self, cancelled=threading.Event(), started=time.monotonic(), online_wait=0.0
        )
        try:
            yield quiet
        except ServiceError as exc:
            log.warning("cleanup on modem %s failed: %s (%s)", self.modem_id, exc.code, exc.message)

    def emit_event(self, event_type: str, **fields: Any) -> None:
        """An event on `<base>/<modem>/event` (new_mail)."""
        self.modem.emit_event(event_type, **fields)

    def wait_quiet(self, quiet: float, bound: float) -> bool:
        """True once the module has been silent for `quiet` s (False after `bound`)."""
        self.liveness.waiting(bound)
        try:
            return self.modem.wait_quiet(quiet, bound)
        finally:
            self.liveness.beat()

    def require_sms(self) -> None:
        """SMS must be set up on the module (tried once more now): else `modem_error`
        with the reason, e.g. the SIM still busy (`+CMS ERROR: 314`) or PIN-locked."""
        if self.cancelled.is_set():
            raise ServiceError(CANCELLED, "the request was cancelled")
        self.liveness.waiting(SMS_SETUP_BOUND)
        try:
            reason = self.modem.ensure_sms()
        except ModemError as exc:
            raise from_modem(exc) from exc
        finally:
            self.liveness.beat()
        if reason is not None:
            raise ServiceError(
                MODEM_ERROR, f"SMS is not available on the module: {reason}", {"reason": reason}
            )

    def restart(self, timeout: float) -> bool:
        """Reset the module and wait until it is online again; True when it booted."""
        self.liveness.waiting(timeout)
        try:
            return self.modem.restart(timeout)
        except ModemError as exc:
            raise from_modem(exc) from exc
        finally:
            self.liveness.beat()


RequestT = TypeVar("RequestT", bound=Request)
ActionFn = Callable[[ServiceContext, Any], dict[str, Any]]


SideEffects = bool | Callable[[Any], bool]
"""Whether an action changes anything outside the bridge: a constant, or a function of
the request when that decides (http/request: POST does, GET does not)."""


@dataclass(frozen=True)
class Action:
    """`immediate`: a short control action (a stop) that must not wait behind the
    long request it acts on; it runs in its own lane of the modem's worker.

    `side_effects` decides what a restart does with a request a crash left unanswered:
    one without is run again, one with is answered `interrupted`. `commits_on` names
    the AT commands (`AT+SMTPSEND`) after whose sending the effect may have happened;
    empty, the effect may have happened as soon as the request ran."""

    service: str
    name: str
    model: type[Request]
    run: ActionFn
    immediate: bool = False
    side_effects: SideEffects = True
    commits_on: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.service}/{self.name}"

    def has_side_effects(self, request: Request) -> bool:
        if isinstance(self.side_effects, bool):
            return self.side_effects
        return self.side_effects(request)

    def commits(self, exchange: Exchange) -> bool:
        """Whether sending `exchange` may carry out this action's effect."""
        return command_name(exchange.command) in self.commits_on


def command_name(command: bytes) -> str:
    """`AT+SMTPSEND` of b"AT+SMTPSEND\r", `AT+CFTPPUT` of b'AT+CFTPPUT="/a"\r'; a read
    (`AT+X?`) or test (`AT+X=?`) form keeps its `?` and so names no command to commit."""
    head = command.split(b"\r", 1)[0].strip()
    if head.endswith(b"?"):
        return head.decode("ascii", "replace").upper()
    return head.split(b"=", 1)[0].decode("ascii", "replace").upper()


REGISTRY: dict[str, Action] = {}


def action(
    service: str,
    name: str,
    model: type[RequestT],
    *,
    side_effects: SideEffects,
    commits_on: tuple[str, ...],
    immediate: bool = False,
) -> Callable[[Callable[[ServiceContext, RequestT], dict[str, Any]]], Callable[..., Any]]:
    """Register `fn` as `<service>/<name>` taking `model`. Every action must say whether
    it has side effects and which commands commit them (see Action)."""

    def register(
        fn: Callable[[ServiceContext, RequestT], dict[str, Any]],
    ) -> Callable[..., Any]:
        key = f"{service}/{name}"
        if key in REGISTRY:
            raise RuntimeError(f"action {key} registered twice")
        if side_effects is False and commits_on:
            raise RuntimeError(f"action {key}: commits_on without side effects")
        REGISTRY[key] = Action(service, name, model, fn, immediate, side_effects, commits_on)
        return fn

    return register


def load_actions() -> dict[str, Action]:
    """Import every service module (each registers its actions) and return them all."""
    import bridge.services as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return REGISTRY
