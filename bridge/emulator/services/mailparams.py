"""Parameter checks shared by the e-mail commands (seed chapters 3 and 4): the seed gives
each parameter a type and a length limit, and the module answers ERROR outside them."""

from __future__ import annotations

from bridge.emulator.api import Arg, ArgError


def text(arg: Arg, limit: int, *, required: bool = True, what: str = "value") -> str:
    """A quoted string of at most `limit` characters; empty only when not `required`."""
    if arg is None and not required:
        return ""
    if not isinstance(arg, str):
        raise ArgError(f"{what}: a quoted string expected")
    if required and not arg:
        raise ArgError(f"{what}: must not be empty")
    if len(arg) > limit:
        raise ArgError(f"{what}: longer than {limit} characters")
    return arg


def number(arg: Arg, low: int, high: int, *, what: str = "value") -> int:
    """An integer in low..high."""
    if not isinstance(arg, int) or not low <= arg <= high:
        raise ArgError(f"{what}: an integer in {low}..{high} expected")
    return arg


def quoted(value: str) -> str:
    """A value as the module prints it in a read-back: in double quotes, nothing escaped."""
    return f'"{value}"'
