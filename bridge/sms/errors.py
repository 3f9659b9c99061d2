"""Why a message cannot be encoded or a PDU cannot be read."""

from __future__ import annotations


class InvalidNumber(ValueError):
    """A destination that is neither `+` and 3-20 digits nor 3-20 digits without it."""


class TooLarge(ValueError):
    """A text that needs more than `MAX_PARTS` parts."""

    def __init__(self, parts: int, limit: int) -> None:
        super().__init__(f"the text needs {parts} parts; at most {limit} are allowed")
        self.parts = parts
        self.limit = limit


class PduError(ValueError):
    """A PDU that is not a well-formed SMS-DELIVER or SMS-STATUS-REPORT."""
