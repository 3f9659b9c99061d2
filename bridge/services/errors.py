"""The one error vocabulary of the services: API.md's stable codes, the error that carries
one to the response, and the only conversions into it (a refused AT parameter, a pydantic
validation error, a modem-layer error, a module's result code).

Every invalid input has one shape, whichever service and whichever check found it:
`detail.errors = [{"field": "to[0].address", "reason": "…"}]` and the message
`invalid request: <field>: <reason>`; the reason never repeats the field.
"""

from __future__ import annotations

import functools
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bridge.at import FinalResult, ParameterError
from bridge.modem import Exchange, ModemError, Reply
from bridge.modem.script import Step

INVALID_JSON = "invalid_json"
INVALID_REQUEST = "invalid_request"
UNKNOWN_ACTION = "unknown_action"
FORBIDDEN = "forbidden"
TOO_LARGE = "too_large"
QUEUE_FULL = "queue_full"
MODEM_OFFLINE = "modem_offline"
TIMEOUT = "timeout"
CANCELLED = "cancelled"
MODEM_ERROR = "modem_error"
INTERRUPTED = "interrupted"  # a crash stopped it; not run again (bridge/journal.py)
WHOLE_REQUEST = "(request)"  # the field of a problem with the request as a whole

T = TypeVar("T")


class ServiceError(Exception):
    """A request failed with `code` (one of the above, or a service's own such as
    `smtp_auth_error`); `detail` is JSON-safe and never holds a secret."""

    def __init__(self, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail or {}


# -- bad input -----------------------------------------------------------------------------


def invalid_fields(problems: Sequence[tuple[str, str]]) -> ServiceError:
    """`invalid_request` listing every (field, reason); the message names the first."""
    first_field, first_reason = problems[0]
    return ServiceError(
        INVALID_REQUEST,
        f"invalid request: {first_field}: {first_reason}",
        {"errors": [{"field": f, "reason": r} for f, r in problems]},
    )


def invalid(field_path: str, reason: str) -> ServiceError:
    """`invalid_request` for one field (`to[0].address`); `reason` in plain words,
    without the field's name."""
    return invalid_fields([(field_path, reason)])


def too_large(field_path: str, reason: str, limit: int | None = None) -> ServiceError:
    """`too_large` for one field over a module limit, in the invalid shape plus `limit`."""
    detail: dict[str, Any] = {"errors": [{"field": field_path, "reason": reason}]}
    if limit is not None:
        detail["limit"] = limit
    return ServiceError(TOO_LARGE, f"too large: {field_path}: {reason}", detail)


def from_parameter(exc: ParameterError) -> ServiceError:
    """What the AT layer refused to build: over-long is `too_large`, the rest invalid."""
    reason = str(exc).removeprefix(f"{exc.field}: ")
    if exc.reason == "too_long":
        return too_large(exc.field, reason)
    return invalid(exc.field, reason)


@contextmanager
def parameters() -> Iterator[None]:
    """Build AT parameters inside: a ParameterError leaves as the request's error."""
    try:
        yield
    except ParameterError as exc:
        raise from_parameter(exc) from None


def param(build: Callable[[], T]) -> T:
    """`build()`, a ParameterError becoming the request's error."""
    with parameters():
        return build()


def from_validation(exc: ValidationError, model: type[BaseModel]) -> ServiceError:
    """Every problem pydantic found, each with its path as the request spells it."""
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_input=False, include_url=False):
        problem = (field_path(model, error["loc"]), error["msg"].removeprefix("Value error, "))
        if problem not in problems:
            problems.append(problem)
    return invalid_fields(problems)


def field_path(model: type[BaseModel], loc: Sequence[int | str]) -> str:
    """`("to", 0, "MailboxField", "address")` -> `to[0].address`: list indexes in
    brackets, the union members pydantic names on the way left out."""
    text = ""
    hint: Any = model
    for item in loc:
        hint = _unwrapped(hint)
        if isinstance(item, int):
            text += f"[{item}]"
            hint = _member(typing.get_args(hint), 0)
            continue
        members = _union_members(hint)
        if members and _tagged(members, item) is not None:
            hint = _tagged(members, item)  # a union member: not part of the path
            continue
        text += f".{item}" if text else item
        hint = _child(hint, item)
    return text or WHOLE_REQUEST


def _unwrapped(hint: Any) -> Any:
    if typing.get_origin(hint) is typing.Annotated:
        return _unwrapped(typing.get_args(hint)[0])
    members = _union_members(hint)
    real = [m for m in members if m is not type(None)]
    return _unwrapped(real[0]) if len(real) == 1 else hint


def _union_members(hint: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(hint)
    return typing.get_args(hint) if origin in (typing.Union, types.UnionType) else ()


def _tagged(members: tuple[Any, ...], tag: str) -> Any:
    for member in members:
        inner = _unwrapped(member)
        if getattr(inner, "__name__", None) == tag:
            return inner
    return None


def _member(args: tuple[Any, ...], index: int) -> Any:
    return args[index] if len(args) > index else None


def _child(hint: Any, name: str) -> Any:
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        for key, info in hint.model_fields.items():
            if name in (key, info.alias):
                return info.annotation
        return None
    if typing.get_origin(hint) is dict:
        return _member(typing.get_args(hint), 1)
    return None


# -- the modem's answers --------------------------------------------------------------------


def from_modem(exc: ModemError) -> ServiceError:
    """A modem-layer error (timeout, offline, reboot, cancelled) as the request's."""
    return ServiceError(exc.code, exc.message, exc.detail)


def module_error(exchange: Exchange, final: FinalResult) -> ServiceError:
    """`modem_error` with what the module said, for an answer no table maps."""
    said = final.detail or final.kind.value
    return ServiceError(MODEM_ERROR, f"{exchange.label()} failed: {said}", {"module_error": said})


def step_error(step: Step, reply: Reply) -> ServiceError:
    """A refused step of a script no result table maps: `modem_error`."""
    return module_error(step.exchange, reply.final)


@functools.cache
def _tables() -> dict[str, Any]:
    text = resources.files("bridge.services").joinpath("results.toml").read_text("utf-8")
    return tomllib.loads(text)


def _word(value: str) -> str:
    return " ".join(value.upper().split())


@dataclass(frozen=True)
class ResultCodes:
    """One chapter's results (numbers such as FTP's 201-214, or words such as SMTP's
    `AUTH ERROR`) -> (stable code, message). `+CME ERROR: <n>` and its verbose text
    (AT+CMEE=2) map the same way; what the table lacks is `unknown` (or modem_error)."""

    codes: Mapping[int | str, tuple[str, str]]
    unknown: str | None = None  # the code of a value not in the table
    _by_text: dict[str, int | str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_text = {_word(text): key for key, (_, text) in self.codes.items()}
        object.__setattr__(self, "_by_text", by_text)

    @staticmethod
    def table(service: str) -> ResultCodes:
        """The service's table from results.toml (all of them in one place)."""
        entry = _tables()[service]
        codes: dict[int | str, tuple[str, str]] = {
            int(key) if key.isdigit() else key: (code, message)
            for key, (code, message) in entry["codes"].items()
        }
        return ResultCodes(codes, entry.get("unknown"))

    def key_of(self, value: str) -> int | str | None:
        """The table's key for a result as the module printed it, or None."""
        text = value.strip()
        if text.isdigit():
            return int(text) if int(text) in self.codes else None
        word = _word(text)
        return word if word in self.codes else self._by_text.get(word)

    def failure(self, value: str, command: str = "the command") -> ServiceError:
        """The error for a result the module reported (a number, a word, a text)."""
        key = self.key_of(value)
        if key is None:
            shown = value.strip()
            module_code: int | str = int(shown) if shown.isdigit() else shown
            if self.unknown is not None:
                message = f"{command} failed: {shown}"
                return ServiceError(self.unknown, message, {"module_code": module_code})
            return ServiceError(
                MODEM_ERROR,
                f"{command} failed: {shown}",
                {"module_error": shown, "module_code": module_code},
            )
        code, message = self.codes[key]
        return ServiceError(code, f"{message} ({key})", {"module_code": key})

    def from_reply(self, exchange: Exchange, reply: Reply, name: str) -> ServiceError:
        """A refused command: its `<name>: <result>` line (before or after OK), else the
        CME error's number or text, else the bare ERROR."""
        result = reply.result(f"{name}:")
        if result is not None and result.strip() != "0":
            return self.failure(result, exchange.label())
        detail = reply.final.detail
        if detail and (self.key_of(detail) is not None or self.unknown is None):
            return self.failure(detail, exchange.label())
        return module_error(exchange, reply.final)

    def step_error(self, step: Step, reply: Reply) -> ServiceError:
        """A refused step of a script, through this table (for `run_script`)."""
        return self.from_reply(step.exchange, reply, step.name)

    @property
    def stable_codes(self) -> frozenset[str]:
        return frozenset(code for code, _ in self.codes.values())
