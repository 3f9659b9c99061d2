"""The sans-IO sender: command lines built from validated parameters.

Strict in what we send: a parameter that would change the command's syntax (a
quote, CR, LF, Ctrl-Z, ESC or any other control character), a string over the
module's limit or a number out of range raises `ParameterError` and never becomes
bytes. Paths with non-ASCII characters use the module's `{non-ascii}"<hex>"` form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"\+?[A-Z][A-Z0-9]*|[A-Z&][0-9]?")
_FORBIDDEN_BYTES = re.compile(r'["\x00-\x1f\x7f]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUOTED = re.compile(r'"[^"]*"')


class ParameterError(ValueError):
    """A parameter the module must never see. `field` names it for the caller's
    error response; `reason` is one of: too_long, forbidden_character, non_ascii,
    out_of_range, empty, not_one_command."""

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Param:
    """One rendered parameter, already validated."""

    text: str


def _check_text(value: str, field: str, max_len: int | None, allow_empty: bool) -> None:
    if not value and not allow_empty:
        raise ParameterError(field, "empty", "must not be empty")
    bad = _FORBIDDEN_BYTES.search(value)
    if bad:
        raise ParameterError(
            field, "forbidden_character", f"contains forbidden character {bad.group()!r}"
        )
    if max_len is not None and len(value.encode("utf-8")) > max_len:
        raise ParameterError(field, "too_long", f"longer than {max_len} bytes")


def string(
    value: str,
    *,
    field: str,
    max_len: int | None = None,
    allow_empty: bool = False,
    allow_non_ascii: bool = False,
) -> Param:
    """A quoted string parameter (`"value"`). Non-ASCII text is refused unless the
    command carries a character set (subject, body), where it is sent as UTF-8."""
    _check_text(value, field, max_len, allow_empty)
    if not allow_non_ascii and not value.isascii():
        raise ParameterError(field, "non_ascii", "must be ASCII")
    return Param(f'"{value}"')


def path(value: str, *, field: str, max_len: int | None = None) -> Param:
    """A file path: quoted when ASCII, else `{non-ascii}"<hex of the UTF-8 bytes>"`.
    `max_len` counts the path's bytes, as the module does."""
    _check_text(value, field, max_len, allow_empty=False)
    if value.isascii():
        return Param(f'"{value}"')
    return Param('{non-ascii}"' + value.encode("utf-8").hex().upper() + '"')


def integer(value: int, *, field: str, low: int, high: int) -> Param:
    """A decimal parameter within [low, high]; booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(field, "out_of_range", "must be an integer")
    if not low <= value <= high:
        raise ParameterError(field, "out_of_range", f"must be within {low}..{high}")
    return Param(str(value))


def token(value: str, *, field: str, allowed: str = r"[A-Za-z0-9:/._-]+") -> Param:
    """A bare (unquoted) parameter such as `AT+FSCD=C:/` or `AT+CFTPTYPE=I`."""
    if not re.fullmatch(allowed, value):
        raise ParameterError(field, "forbidden_character", f"must match {allowed}")
    return Param(value)


def _name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a command name: {name!r}")
    return name


def write(name: str, *params: Param | None) -> bytes:
    """`AT<name>=<p1>,<p2>...\\r`; a None keeps its position empty (`AT+X=1,,3`)."""
    args = ",".join("" if p is None else p.text for p in params)
    return f"AT{_name(name)}={args}\r".encode()


def read(name: str) -> bytes:
    """`AT<name>?\\r`."""
    return f"AT{_name(name)}?\r".encode()


def supported(name: str) -> bytes:
    """The test form, asking for supported values: `AT<name>=?\\r`."""
    return f"AT{_name(name)}=?\r".encode()


def execute(name: str) -> bytes:
    """`AT<name>\\r` (also plain `AT` with name "")."""
    return f"AT{_name(name) if name else ''}\r".encode()


def raw_command(line: str, *, field: str = "command") -> bytes:
    """A user's raw command (modem/at): exactly one printable-ASCII command starting
    with AT; no CR, LF, Ctrl-Z, ESC, no `;` chaining outside quotes."""
    text = line.strip(" ")  # only spaces: a trailing CR or LF is an injection
    if not text.upper().startswith("AT"):
        raise ParameterError(field, "not_one_command", "must start with AT")
    if not text.isascii() or _CONTROL.search(text):
        raise ParameterError(field, "forbidden_character", "must be printable ASCII")
    if len(text) > 556:  # the module's command line buffer
        raise ParameterError(field, "too_long", "longer than 556 characters")
    if text.count('"') % 2 or ";" in _QUOTED.sub("", text):
        raise ParameterError(field, "not_one_command", "must be one command")
    return (text + "\r").encode("ascii")
