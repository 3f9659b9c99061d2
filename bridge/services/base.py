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

    def run(self, exchange: Exchange) -> Reply:
        """One exchange, once the modem is online (waiting up to request_timeout)."""
        if self.cancelled.is_set():
            raise ServiceError(CANCELLED, "the request was cancelled")
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


@dataclass(frozen=True)
class Action:
    """`immediate`: a short control action (a stop) that must not wait behind the
    long request it acts on; it runs in its own lane of the modem's worker."""

    service: str
    name: str
    model: type[Request]
    run: ActionFn
    immediate: bool = False

    @property
    def key(self) -> str:
        return f"{self.service}/{self.name}"


REGISTRY: dict[str, Action] = {}


def action(
    service: str, name: str, model: type[RequestT], *, immediate: bool = False
) -> Callable[[Callable[[ServiceContext, RequestT], dict[str, Any]]], Callable[..., Any]]:
    """Register `fn` as `<service>/<name>` taking `model` (see Action for `immediate`)."""

    def register(
        fn: Callable[[ServiceContext, RequestT], dict[str, Any]],
    ) -> Callable[..., Any]:
        key = f"{service}/{name}"
        if key in REGISTRY:
            raise RuntimeError(f"action {key} registered twice")
        REGISTRY[key] = Action(service, name, model, fn, immediate)
        return fn

    return register


def load_actions() -> dict[str, Action]:
    """Import every service module (each registers its actions) and return them all."""
    import bridge.services as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return REGISTRY
