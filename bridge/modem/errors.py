"""Errors of the modem layer as values with stable codes (see API.md)."""

from __future__ import annotations

from typing import Any

OFFLINE = "modem_offline"
TIMEOUT = "timeout"
REBOOTED = "modem_rebooted"
MODEM_ERROR = "modem_error"
CANCELLED = "cancelled"


class ModemError(Exception):
    """A command did not get its answer. `code` is one of the constants above;
    `detail` carries what the module said (`module_error`), never a secret."""

    def __init__(self, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail or {}
