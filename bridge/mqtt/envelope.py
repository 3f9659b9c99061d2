"""Requests in and responses out, in API.md's envelope.

Parsing never raises: bad bytes, bad JSON and bad fields become a ServiceError with
the stable code (`invalid_json`, `invalid_request` with field paths, `too_large`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bridge.services.base import Request
from bridge.services.errors import (
    INVALID_JSON,
    TOO_LARGE,
    ServiceError,
    from_validation,
    invalid,
)

Transaction = str | int | float | None


@dataclass(frozen=True)
class Parsed:
    body: dict[str, Any]
    transaction: Transaction


OVERSIZE_STUB = b"\x00oversize:"  # no JSON starts so: what a journal keeps of one


def oversize_stub(payload: bytes) -> bytes:
    """What the journal keeps of a request over the size limit: its size, not its bytes
    (a 200 MB publish is not written to disk to be refused)."""
    return OVERSIZE_STUB + str(len(payload)).encode()


def _size(payload: bytes) -> int:
    """The request's size: its length, or the one its oversize stub records."""
    if payload.startswith(OVERSIZE_STUB) and payload[len(OVERSIZE_STUB) :].isdigit():
        return int(payload[len(OVERSIZE_STUB) :])
    return len(payload)


def parse_body(
    payload: bytes, limit: int
) -> tuple[Parsed | None, Transaction, ServiceError | None]:
    """The JSON object of a request and its transaction, or the error to answer."""
    size = _size(payload)
    if size > limit or payload.startswith(OVERSIZE_STUB):
        return (
            None,
            None,
            ServiceError(
                TOO_LARGE,
                f"request of {size} bytes is over the limit of {limit}",
                {"limit": limit},
            ),
        )
    try:
        text = payload.decode("utf-8") if payload else "{}"
        body = json.loads(text)
    except UnicodeDecodeError:
        return None, None, not_json("is not UTF-8")
    except json.JSONDecodeError as exc:
        return None, None, not_json(f"is not JSON: {exc.msg}")
    if not isinstance(body, dict):
        return None, None, not_json("must be a JSON object")
    transaction = body.pop("transaction", None)
    if transaction is not None and (
        isinstance(transaction, bool) or not isinstance(transaction, str | int | float)
    ):
        return None, None, invalid("transaction", "must be a string or a number")
    return Parsed(body, transaction), transaction, None


def not_json(reason: str) -> ServiceError:
    """`invalid_json` in the one shape of bad input: `detail.errors`, whose field is the
    payload itself ("")."""
    return ServiceError(
        INVALID_JSON, f"payload {reason}", {"errors": [{"field": "", "reason": reason}]}
    )


def validate(model: type[Request], body: dict[str, Any]) -> Request:
    """The request model; ServiceError(invalid_request) listing every field problem.
    Validated as the JSON it came as: strict types, yet an array is a tuple and a
    string an enum member, as JSON has no others."""
    try:
        return model.model_validate_json(json.dumps(body))
    except ValidationError as exc:
        raise from_validation(exc, model) from None


def response(
    transaction: Transaction,
    outcome: dict[str, Any] | ServiceError,
    modem: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"transaction": transaction}
    if isinstance(outcome, ServiceError):
        out["status"] = "error"
        if modem is not None:
            out["modem"] = modem
        out["error"] = {"code": outcome.code, "message": outcome.message, "detail": outcome.detail}
    else:
        out["status"] = "ok"
        if modem is not None:
            out["modem"] = modem
        out["data"] = outcome
    return out
