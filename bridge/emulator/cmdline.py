"""Splitting a received command line into `Command`s and parsing their parameters.

Kept apart from the command loop so the parameter grammar (quoted strings, the
``{non-ascii}`` hex form, integers, bare tokens, empty positions) has one home that
both the core and the services use through `Command.args()`.
"""

from __future__ import annotations

import re

from bridge.emulator.api import Arg, ArgError, Command

NON_ASCII = "{non-ascii}"
_INT = re.compile(r"[+-]?\d+")
_EXTENDED = re.compile(r"([+&$^%][A-Za-z0-9_]*)(.*)", re.DOTALL)
_BASIC = re.compile(r"(&?[A-Za-z])(.*)", re.DOTALL)


def split_command(line: str) -> Command | None:
    """The command of one line (``AT`` prefix included), or None for a bare ``AT``.

    Raises ArgError when the line does not start with ``AT``."""
    if line[:2].upper() != "AT":
        raise ArgError(f"no AT prefix: {line!r}")
    body = line[2:].strip()
    if not body:
        return None
    extended = _EXTENDED.fullmatch(body)
    if extended and extended.group(1)[0] != "&":
        name, rest = extended.group(1).upper(), extended.group(2)
        if rest == "=?":
            return Command(name, "test", "", line)
        if rest == "?":
            return Command(name, "read", "", line)
        if rest.startswith("="):
            return Command(name, "write", rest[1:], line)
        if rest.strip():
            raise ArgError(f"junk after {name}: {rest!r}")
        return Command(name, "exec", "", line)
    basic = _BASIC.fullmatch(body)
    if basic is None:
        raise ArgError(f"not a command: {body!r}")
    name, rest = basic.group(1).upper(), basic.group(2).strip()
    if rest == "?":
        return Command(name, "read", "", line)
    if rest.startswith("="):
        return Command(name, "write", rest[1:], line)
    if rest:
        # ATE0, ATV1, AT&F0: a basic command's number follows its letter directly.
        return Command(name, "write", rest, line)
    return Command(name, "exec", "", line)


def parse_args(raw: str) -> list[Arg]:
    """Parameters separated by commas outside quotes; see `bridge.emulator.api.Arg`."""
    if not raw.strip():
        return []
    args: list[Arg] = []
    pos = 0
    while True:
        arg, pos = _parse_one(raw, pos)
        args.append(arg)
        if pos >= len(raw):
            return args
        if raw[pos] != ",":
            raise ArgError(f"expected ',' at {pos} in {raw!r}")
        pos += 1


def _parse_one(raw: str, pos: int) -> tuple[Arg, int]:
    pos = _skip_spaces(raw, pos)
    if raw.startswith(NON_ASCII, pos):
        text, end = _quoted(raw, _skip_spaces(raw, pos + len(NON_ASCII)))
        try:
            return bytes.fromhex(text).decode("utf-8"), _skip_spaces(raw, end)
        except ValueError as exc:
            raise ArgError(f"bad {NON_ASCII} hex {text!r}") from exc
    if pos < len(raw) and raw[pos] == '"':
        text, end = _quoted(raw, pos)
        return text, _skip_spaces(raw, end)
    end = raw.find(",", pos)
    end = len(raw) if end < 0 else end
    token = raw[pos:end].strip()
    if '"' in token:
        raise ArgError(f"stray quote in {token!r}")
    if not token:
        return None, end
    if _INT.fullmatch(token):
        return int(token), end
    return token, end


def _quoted(raw: str, pos: int) -> tuple[str, int]:
    if pos >= len(raw) or raw[pos] != '"':
        raise ArgError(f"expected a quoted string at {pos} in {raw!r}")
    close = raw.find('"', pos + 1)
    if close < 0:
        raise ArgError(f"unterminated string in {raw!r}")
    return raw[pos + 1 : close], close + 1


def _skip_spaces(raw: str, pos: int) -> int:
    while pos < len(raw) and raw[pos] == " ":
        pos += 1
    return pos
