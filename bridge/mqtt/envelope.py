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


def parse_body(
    payload: bytes, limit: int
) -> tuple[Parsed | None, Transaction, ServiceError | None]:
    """The JSON object of a request and its transaction, or the error to answer."""
    if len(payload) > limit:
        return (
            None,
            None,
            ServiceError(
                TOO_LARGE,
                f"request of {len(payload)} bytes is over the limit of {limit}",
                {"limit": limit},
            ),
        )
    try:
        text = payload.decode("utf-8") if payload else "{}"
        body = json.loads(text)
    except UnicodeDecodeError:
        return None, None, ServiceError(INVALID_JSON, "payload is not UTF-8")
    except json.JSONDecodeError as exc:
        return None, None, ServiceError(INVALID_JSON, f"payload is not JSON: {exc.msg}")
    if not isinstance(body, dict):
        return None, None, ServiceError(INVALID_JSON, "payload must be a JSON object")
    transaction = body.pop("transaction", None)
    if transaction is not None and (
        isinstance(transaction, bool) or not isinstance(transaction, str | int | float)
    ):
        return None, None, invalid("transaction", "must be a string or a number")
    return Parsed(body, transaction), transaction, None


def validate(model: type[Request], body: dict[str, Any]) -> Request:
    """The request model; ServiceError(invalid_request) listing every field problem."""
    try:
        return model.model_validate(body)
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
