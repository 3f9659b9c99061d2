"""Structured logs (JSON lines for journald/Docker, readable on a TTY) that never show a secret.

The same redaction is exposed as `redact()` for anything else that leaves the process,
such as MQTT payloads.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "<redacted>"

# Key names whose values are credentials wherever they appear (normalised: lower case, '_').
_SECRET_KEYS = frozenset(
    {"password", "passwd", "pwd", "secret", "token", "authorization", "api_key", "apikey"}
)
_SECRET_KEY_SUFFIXES = ("_password", "_passwd", "_pwd", "_secret", "_token", "_authorization")

# AT commands (and their read-backs) that carry a password as a positional argument:
# name -> 0-based argument positions (seed chapters 3.2, 4.1, 5.6; ERRATA for CFTPSLOGIN).
_AT_PASSWORD_ARGS: dict[str, tuple[int, ...]] = {
    "SMTPAUTH": (2,),  # AT+SMTPAUTH=<flag>,"<user>","<pwd>"
    "POP3SRV": (2,),  # AT+POP3SRV="<server>","<user>","<pwd>"[,<port>]
    "CFTPPW": (0,),  # AT+CFTPPW="<pwd>"
    "CFTPSLOGIN": (3,),  # AT+CFTPSLOGIN="<host>",<port>,"<user>","<pwd>"[,<type>]
    "CPIN": (0, 1),  # AT+CPIN="<pin>"[,"<newpin>"] (a PUK and a new PIN)
}
_WRITE_ONLY = ("CPIN",)  # its read-back (`+CPIN: READY`) carries no secret
_READ_BACKS = [name for name in _AT_PASSWORD_ARGS if name not in _WRITE_ONLY]
_AT_LINE = re.compile(
    r"(?P<head>(?:AT)?\+(?:(?P<name>" + "|".join(_READ_BACKS) + r")(?:=|:[ \t]*)"
    r"|(?P<written>" + "|".join(_WRITE_ONLY) + r")=))"
    r"(?P<args>[^\r\n]*)",
    re.IGNORECASE,
)
# A quoted argument, also in its `{non-ascii}` form, and with the quotes backslash-escaped
# when the line is itself inside a JSON or repr string; an unterminated quote runs to the end.
_QUOTED_ARG = re.compile(
    r'(?P<open>\s*(?:\{non-ascii\})?(?P<esc>\\?)")(?P<value>.*?)(?P<close>(?P=esc)"|$)'
)
_BARE_ARG = re.compile(r"(?P<open>\s*)(?P<value>\S+)")

_PLAIN = (bool, int, float)  # nothing to redact in them

# Fields the pipeline itself adds; a short password must not garble them.
_META_KEYS = frozenset({"timestamp", "level", "logger"})

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def is_secret_key(key: object) -> bool:
    """Whether a field of this name holds a credential (password, token, *_password, …)."""
    return isinstance(key, str) and _is_secret_name(key)


@functools.lru_cache(maxsize=4096)
def _is_secret_name(key: str) -> bool:
    """Field names repeat (every response has the same few): each is judged once."""
    name = key.lower().replace("-", "_")
    return name in _SECRET_KEYS or name.endswith(_SECRET_KEY_SUFFIXES)


def _split_arguments(args: str) -> list[str]:
    """Split at the commas outside quotes; the pieces keep their spaces and quotes."""
    pieces: list[str] = []
    start = 0
    quoted = False
    for index, char in enumerate(args):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            pieces.append(args[start:index])
            start = index + 1
    pieces.append(args[start:])
    return pieces


def _redact_argument(argument: str) -> str:
    match = _QUOTED_ARG.match(argument) or _BARE_ARG.match(argument)
    if match is None or not match["value"]:
        return argument  # an empty password says "none set", which is worth seeing
    return argument[: match.start("value")] + REDACTED + argument[match.end("value") :]


def _redact_at_line(match: re.Match[str]) -> str:
    positions = _AT_PASSWORD_ARGS[(match["name"] or match["written"]).upper()]
    pieces = _split_arguments(match["args"])
    for position in positions:
        if position < len(pieces):
            pieces[position] = _redact_argument(pieces[position])
    return match["head"] + ",".join(pieces)


class Redactor:
    """Replaces secrets in any JSON-like value, and is the structlog processor that does it.

    Three rules: every configured secret value wherever it occurs in a string; the value of
    any password-like key at any depth; the password arguments of AT command lines (and
    their read-backs), configured or not. Values that are not JSON-like become their repr,
    redacted, since that is what a log renderer would have shown.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(s for s in secrets if s)
        # Longest first, so that a secret containing another is replaced whole.
        values = sorted(set(self.secrets), key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, values))) if values else None

    def redact(self, obj: Any) -> Any:
        """A redacted copy of obj (the input is never changed)."""
        if obj is None or isinstance(obj, _PLAIN):
            return obj
        if isinstance(obj, str):
            return self._redact_text(obj)
        if isinstance(obj, bytes | bytearray):
            # surrogateescape round-trips any byte string, UTF-8 or not.
            text = bytes(obj).decode("utf-8", "surrogateescape")
            return type(obj)(self._redact_text(text).encode("utf-8", "surrogateescape"))
        if isinstance(obj, Mapping):
            return {key: self._redact_item(key, value) for key, value in obj.items()}
        if isinstance(obj, list):
            return [self.redact(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self.redact(item) for item in obj)
        return self._redact_text(repr(obj))

    def _redact_item(self, key: object, value: Any) -> Any:
        if is_secret_key(key) and value not in (None, "", b""):
            return REDACTED
        return self.redact(value)

    def _redact_text(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        if "+" not in text:  # no AT command line in it (the common case, and quick)
            return text
        return _AT_LINE.sub(_redact_at_line, text)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {
            key: value if key in _META_KEYS else self._redact_item(key, value)
            for key, value in event_dict.items()
        }


def redact(obj: Any, secrets: Iterable[str] = ()) -> Any:
    """`obj` with every secret replaced by "<redacted>" (see `Redactor` for the rules)."""
    return Redactor(secrets).redact(obj)


class _BridgeHandler(logging.StreamHandler[TextIO]):
    """The root handler configure_logging installs; its class lets a second call replace it."""


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _handler(
    out: TextIO, as_json: bool, secrets: Iterable[str], shared: list[Processor]
) -> logging.Handler:
    """The one handler: `shared` processors, then redaction, then JSON or console text."""
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=_is_tty(out), exception_formatter=structlog.dev.plain_traceback
        )
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks become text before redaction, so a secret in an exception is caught.
            structlog.processors.format_exc_info,
            Redactor(secrets),
            renderer,
        ],
    )
    handler = _BridgeHandler(out)
    handler.setFormatter(formatter)
    return handler


def configure_logging(
    level: str = "info",
    *,
    json: bool | None = None,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Send structlog and standard-library logging (paho's too) through one redacting pipeline.

    `json=None` chooses JSON lines unless the stream is a terminal. Calling it again
    replaces the previous configuration.
    """
    try:
        threshold = _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(_LEVELS)})") from None
    out = sys.stderr if stream is None else stream
    as_json = not _is_tty(out) if json is None else json

    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = _handler(out, as_json, secrets, shared)

    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _BridgeHandler)]:
        root.removeHandler(previous)
        previous.close()
    root.addHandler(handler)
    root.setLevel(threshold)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a later configure_logging (new secrets, new level) must reach
        # loggers that modules created at import time.
        cache_logger_on_first_use=False,
    )
