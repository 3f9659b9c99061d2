"""The stable error codes of API.md, and the error that carries one to the response."""

from __future__ import annotations

from typing import Any

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


class ServiceError(Exception):
    """A request failed with `code` (one of the above, or a service's own such as
    `smtp_auth_error`); `detail` is JSON-safe and never holds a secret."""

    def __init__(self, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail or {}
