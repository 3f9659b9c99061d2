"""What every action gets and how it is registered.

An action is a request model (pydantic, unknown fields rejected) and a function
`(ServiceContext, request) -> dict` that returns the response's `data` or raises
`ServiceError`. Registration is by decorator; `load_actions()` imports every module
of this package so the router never changes when a service is added.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from bridge.at import FinalResult
from bridge.config import ModemSettings, Settings
from bridge.files import FilesArea
from bridge.modem import Exchange, Modem, ModemError, Reply
from bridge.services.errors import CANCELLED, MODEM_ERROR, ServiceError


class Request(BaseModel):
    """Base of every request model: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ProgressFn = Callable[[str, int | None, int | None], None]
"""progress(stage, bytes done or None, total or None)."""


@dataclass
class ServiceContext:
    """Everything an action may use while it runs on its modem's worker."""

    modem: Modem
    settings: Settings
    modem_settings: ModemSettings
    files: FilesArea
    progress: ProgressFn
    cancelled: threading.Event
    started: float  # time.monotonic() when the worker took the job
    # told of every command before it goes out (the request journal notes side effects)
    on_send: Callable[[Exchange], None] | None = None

    def run(self, exchange: Exchange) -> Reply:
        """One exchange, once the modem is online (waiting up to request_timeout)."""
        if self.cancelled.is_set():
            raise ServiceError(CANCELLED, "the request was cancelled")
        if self.on_send is not None:
            self.on_send(exchange)
        left = self.modem_settings.request_timeout - (time.monotonic() - self.started)
        try:
            return self.modem.run(exchange, wait_online=max(0.0, left))
        except ModemError as exc:
            raise ServiceError(exc.code, exc.message, exc.detail) from exc

    def check(self, exchange: Exchange) -> Reply:
        """Like `run`, but anything but OK is `modem_error` with what the module said."""
        reply = self.run(exchange)
        if not reply.final.ok:
            raise module_error(exchange, reply.final)
        return reply


def module_error(exchange: Exchange, final: FinalResult) -> ServiceError:
    said = final.detail or final.kind.value
    return ServiceError(MODEM_ERROR, f"{exchange.label()} failed: {said}", {"module_error": said})


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
