"""Parameter checks both FTP services apply to a command's parsed arguments."""

from __future__ import annotations

from bridge.emulator.api import Arg, ArgError, Command


def parsed(cmd: Command) -> list[Arg] | None:
    """The arguments, or None when the line does not parse."""
    try:
        return cmd.args()
    except ArgError:
        return None


def path_arg(arg: Arg) -> str | None:
    """A remote path: quoted (or ``{non-ascii}``) text, a bare token or number as text.
    Spaces around it are dropped (the seed's examples put one inside the quotes)."""
    if arg is None:
        return None
    text = str(arg).strip()
    return text or None


def text_arg(arg: Arg) -> str | None:
    """A name or password as given (a number becomes its digits)."""
    return None if arg is None else str(arg)


def number_arg(arg: Arg, low: int, high: int) -> int | None:
    if isinstance(arg, int) and low <= arg <= high:
        return arg
    return None


def type_arg(arg: Arg) -> str | None:
    """A transfer type: ``A`` (ASCII) or ``I`` (binary), with or without quotes."""
    if isinstance(arg, str) and arg.strip().upper() in ("A", "I"):
        return arg.strip().upper()
    return None
